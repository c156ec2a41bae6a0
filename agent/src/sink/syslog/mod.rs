//! Syslog output: each record as one syslog message, to a local socket
//! (RFC 3164-style, what `/dev/log` readers parse) or to a remote collector
//! (RFC 5424 over UDP, TCP with octet-counting framing, or TLS), with every
//! field but `MESSAGE` as RFC 5424 structured data under `SD_ID`.
//!
//! A collector that is down or slow must never stall the sampling loop:
//! `write` only renders the record and puts it in a bounded queue, and a
//! sender thread delivers the queue, reconnecting with exponential backoff.
//! When the queue is full new records are dropped and counted; the count
//! goes to the collector as a `degraded` record (reason `syslog_dropped`)
//! in the place where the records are missing, so its stream shows the
//! gap and its size, and to the other outputs (the journal, other
//! destinations) at the end of the interval in which they were dropped.
//!
//! Plain TCP syslog has no acknowledgements: a record written into the
//! kernel's buffer just before the collector dies cannot be known lost.
//! Before each message the sender checks whether the collector has closed
//! its end, which covers a collector that stopped or restarted between
//! records; the rest is the protocol's limit (RELP's job, not syslog's).

mod format;
mod sender;
mod tls;

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use self::format::Format;
use self::sender::{send_loop, Destination};
use self::tls::tls_config;
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

/// A syslog destination; see the module doc.
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
    pub fn new(config: &Syslog) -> Result<Self, String> {
        let name = config.describe();
        let tls = match config.transport {
            Transport::Tls => Some(
                tls_config(config)
                    .map(Arc::new)
                    .map_err(|e| format!("syslog {name}: {e}"))?,
            ),
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
            .map_err(|e| format!("syslog {name}: cannot start its sender thread: {e}"))?;
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
                eprintln!(
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
            eprintln!(
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
