//! Syslog output (docs/siem.md): each record as one message, RFC 3164 to a
//! local socket or RFC 5424 to a remote collector over UDP, TCP or TLS.
//! `write` only renders and queues, so a collector that is down or slow
//! never stalls the sampling loop; a sender thread (sender.rs) delivers the
//! bounded queue, and every record it does not deliver (a full queue, a
//! record too large for the transport, records on a connection the
//! collector ended at once) is counted and reported, to the collector
//! where the records are missing and to the other outputs.

mod format;
mod sender;
#[cfg(test)]
mod tests;
mod tls;

pub use self::tls::TlsSetupError;

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use self::format::Format;
use self::sender::{send_loop, Destination};
use self::tls::tls_config;
use super::SinkError;
use crate::config::{Syslog, Transport};
use crate::record::Record;
use crate::sink::Sink;

/// The `NETIO_REASON` of the record that counts records a destination did
/// not deliver.
pub const DROPPED_REASON: &str = "syslog_dropped";

/// Records a destination did not deliver, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Losses {
    /// They found the queue full.
    queue_full: u64,
    /// Too large for the transport (EMSGSIZE): never sendable.
    too_large: u64,
    /// Sent on a connection the collector ended before it had stayed up
    /// (sender.rs, `STABLE`): taken as not read.
    unconfirmed: u64,
}

impl Losses {
    pub(super) fn too_large(n: u64) -> Self {
        Losses {
            too_large: n,
            ..Self::default()
        }
    }

    pub(super) fn unconfirmed(n: u64) -> Self {
        Losses {
            unconfirmed: n,
            ..Self::default()
        }
    }

    pub(super) fn total(&self) -> u64 {
        self.queue_full + self.too_large + self.unconfirmed
    }

    pub(super) fn add(&mut self, other: Losses) {
        self.queue_full += other.queue_full;
        self.too_large += other.too_large;
        self.unconfirmed += other.unconfirmed;
    }
}

/// The `degraded` record for the records `lost` by the destination `name`
/// (`queue` records): sent to the destination in their place, and to the
/// other outputs.
fn dropped_record(name: &str, queue: usize, lost: &Losses) -> Record {
    let n = lost.total();
    let mut why = Vec::new();
    if lost.queue_full > 0 {
        why.push(format!(
            "{} found its queue ({queue} records) full while the collector was down or slow",
            lost.queue_full
        ));
    }
    if lost.too_large > 0 {
        why.push(format!(
            "{} were too large for the transport",
            lost.too_large
        ));
    }
    if lost.unconfirmed > 0 {
        why.push(format!(
            "{} were sent on connections the collector ended within {} s of accepting them",
            lost.unconfirmed,
            sender::STABLE.as_secs()
        ));
    }
    Record::degraded(
        DROPPED_REASON,
        n,
        None,
        &format!(
            "{n} records were not delivered to syslog {name}: {}",
            why.join("; ")
        ),
    )
}

/// At exit, how long the queue may take to drain to a reachable collector.
const EXIT_DRAIN: Duration = Duration::from_secs(5);

enum Item {
    /// A rendered message.
    Message(Vec<u8>),
    /// These records were lost here.
    Gap(Losses),
}

struct State {
    items: VecDeque<Item>,
    /// `Message` items in `items`: the queue's fill.
    messages: usize,
    /// Records dropped at a full queue since the last `Gap` was queued.
    dropped: u64,
    /// Losses not reported to the other outputs yet (`take_lost`).
    unreported: Losses,
    /// Records the sender sent on a connection that has not stayed up
    /// yet: delivered or lost, it does not know yet.
    in_flight: u64,
    /// Set at exit: deliver what is queued, then stop.
    closing: bool,
    /// The sender has stopped.
    done: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Something was queued, or closing began.
    queued: Condvar,
    /// The queue emptied, or the sender stopped.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One `[[syslog]]` destination: its queue and what it dropped.
pub struct SyslogSink {
    shared: Arc<Shared>,
    format: Format,
    capacity: usize,
    name: String,
    /// The queue was full and the drop noted on stderr; cleared once a
    /// record fits again.
    dropping: bool,
}

impl SyslogSink {
    /// Sets up a destination; fails only on what cannot work at all (a
    /// TLS file that cannot be read). An unreachable collector is not an
    /// error: records wait for it.
    pub fn new(config: &Syslog) -> Result<Self, SinkError> {
        let name = config.describe();
        let tls = match config.transport {
            Transport::Tls => {
                Some(
                    tls_config(config)
                        .map(Arc::new)
                        .map_err(|error| SinkError::Tls {
                            name: name.clone(),
                            error,
                        })?,
                )
            }
            _ => None,
        };
        let format = Format::new(config);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                items: VecDeque::new(),
                messages: 0,
                dropped: 0,
                unreported: Losses::default(),
                in_flight: 0,
                closing: false,
                done: false,
            }),
            queued: Condvar::new(),
            drained: Condvar::new(),
        });
        let destination = Destination {
            config: config.clone(),
            tls,
            format: format.clone(),
        };
        let sender = Arc::clone(&shared);
        thread::Builder::new()
            .name("netio-syslog".into())
            .spawn(move || send_loop(&sender, &destination))
            .map_err(|error| SinkError::SenderThread {
                name: name.clone(),
                error,
            })?;
        Ok(SyslogSink {
            shared,
            format,
            capacity: config.queue as usize,
            name,
            dropping: false,
        })
    }
}

impl Sink for SyslogSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let message = self.format.render(record, SystemTime::now())?;
        let mut st = self.shared.lock();
        if st.messages >= self.capacity {
            st.dropped += 1;
            st.unreported.queue_full += 1;
            if !self.dropping {
                self.dropping = true;
                tell!(
                    "netio: syslog {}: its queue of {} records is full (the collector is down or slow); dropping records and counting them",
                    self.name, self.capacity
                );
            }
            return Ok(());
        }
        self.dropping = false;
        if st.dropped > 0 {
            let n = std::mem::take(&mut st.dropped);
            st.items.push_back(Item::Gap(Losses {
                queue_full: n,
                ..Losses::default()
            }));
        }
        st.items.push_back(Item::Message(message));
        st.messages += 1;
        self.shared.queued.notify_one();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The sender delivers as records come; nothing waits for it here.
        Ok(())
    }

    fn take_lost(&mut self) -> Option<Record> {
        let lost = std::mem::take(&mut self.shared.lock().unreported);
        (lost.total() > 0).then(|| dropped_record(&self.name, self.capacity, &lost))
    }
}

impl Drop for SyslogSink {
    /// At exit: lets the sender deliver the queue for a while, then says
    /// what it could not.
    fn drop(&mut self) {
        let deadline = Instant::now() + EXIT_DRAIN;
        let mut st = self.shared.lock();
        if st.dropped > 0 {
            let n = std::mem::take(&mut st.dropped);
            st.items.push_back(Item::Gap(Losses {
                queue_full: n,
                ..Losses::default()
            }));
        }
        st.closing = true;
        self.shared.queued.notify_all();
        // The sender is done once the queue is empty and what it sent last
        // is known delivered or lost.
        while !st.done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .shared
                .drained
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let lost = undelivered(&st);
        if lost > 0 {
            tell!(
                "netio: syslog {}: {lost} records not delivered at exit",
                self.name
            );
        }
    }
}

/// Records neither delivered nor reported to the other outputs: those
/// still queued or in flight, and losses not taken by `take_lost` yet.
fn undelivered(st: &State) -> u64 {
    st.messages as u64 + st.in_flight + st.unreported.total()
}
