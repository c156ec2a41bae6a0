//! Syslog output (docs/siem.md): each record as one message, RFC 3164 to a
//! local socket or RFC 5424 to a remote collector over UDP, TCP or TLS.
//! `write` only renders and queues, so a collector that is down or slow
//! never stalls the sampling loop; a sender thread (sender.rs) delivers the
//! bounded queue, and what a full queue drops is counted and reported, to
//! the collector where the records are missing and to the other outputs.

mod format;
mod sender;
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

/// The `NETIO_REASON` of the record that counts records the queue had no
/// room for.
pub const DROPPED_REASON: &str = "syslog_dropped";

/// The `degraded` record for `n` records that found the queue of the
/// destination `name` (`queue` records) full: sent to the destination in
/// their place, and to the other outputs.
fn dropped_record(name: &str, queue: usize, n: u64) -> Record {
    Record::degraded(
        DROPPED_REASON,
        n,
        None,
        &format!(
            "the queue for syslog {name} ({queue} records) was full while the collector was down or slow; {n} records were not sent to it"
        ),
    )
}

/// At exit, how long the queue may take to drain to a reachable collector.
const EXIT_DRAIN: Duration = Duration::from_secs(5);

enum Item {
    /// A rendered message.
    Message(Vec<u8>),
    /// This many records were dropped here.
    Gap(u64),
}

struct State {
    items: VecDeque<Item>,
    /// `Message` items in `items`: the queue's fill.
    messages: usize,
    /// Records dropped since the last `Gap` was queued.
    dropped: u64,
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
    /// Records dropped since the other outputs were last told.
    unreported: u64,
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
            unreported: 0,
        })
    }
}

impl Sink for SyslogSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let message = self.format.render(record, SystemTime::now())?;
        let mut st = self.shared.lock();
        if st.messages >= self.capacity {
            st.dropped += 1;
            self.unreported += 1;
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
            st.items.push_back(Item::Gap(n));
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
        let n = std::mem::take(&mut self.unreported);
        (n > 0).then(|| dropped_record(&self.name, self.capacity, n))
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
            st.items.push_back(Item::Gap(n));
        }
        st.closing = true;
        self.shared.queued.notify_all();
        while !st.items.is_empty() && !st.done {
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

/// Records in the queue, counting those a `Gap` stands for.
fn undelivered(st: &State) -> u64 {
    st.items
        .iter()
        .map(|i| match i {
            Item::Message(_) => 1,
            Item::Gap(n) => *n,
        })
        .sum::<u64>()
        + st.dropped
}
