//! The text and JSON outputs on stdout, which under systemd is a stream
//! into journald and elsewhere may be a pipe to a slow program: a record
//! never waits for the reader (unblocked.rs), so the sampling loop, the
//! watchdog and SIGTERM never stall on it. Records the reader has not
//! taken wait in a bounded queue; one that does not fit is lost, counted,
//! and a `stdout_records_lost` record says how many, next in line once
//! there is room.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::record::Record;
use crate::sink::Sink;
use crate::unblocked::LineQueue;

/// The `NETIO_REASON` of the record that counts the records stdout's reader
/// was too slow for.
pub const LOST_REASON: &str = "stdout_records_lost";

/// The most bytes of records waiting for stdout's reader: several
/// intervals of a busy host's records (a traffic record is ~300 bytes).
const QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// At exit, the longest netio waits for stdout's reader to take the rest.
const FINISH_WAIT: Duration = Duration::from_secs(2);

/// One output's renderer (text or JSON) writing into the queue of stdout.
pub struct StdoutSink {
    render: Box<dyn Sink>,
    /// What `render` wrote for the record at hand.
    rendered: Rc<RefCell<Vec<u8>>>,
    lines: LineQueue,
    /// Records lost since the last `stdout_records_lost` record.
    lost: u64,
}

impl StdoutSink {
    /// `render` makes a renderer writing into the buffer it is given.
    pub fn new<S: Sink + 'static>(fd: i32, render: impl FnOnce(Rendered) -> S) -> Self {
        Self::with_capacity(fd, QUEUE_BYTES, render)
    }

    fn with_capacity<S: Sink + 'static>(
        fd: i32,
        capacity: usize,
        render: impl FnOnce(Rendered) -> S,
    ) -> Self {
        let rendered = Rc::new(RefCell::new(Vec::new()));
        StdoutSink {
            render: Box::new(render(Rendered(rendered.clone()))),
            rendered,
            lines: LineQueue::never_blocking(fd, capacity),
            lost: 0,
        }
    }

    /// Renders `record` and queues its line; `false` when it had no room.
    fn queue(&mut self, record: &Record) -> io::Result<bool> {
        self.render.write(record)?;
        self.render.flush()?;
        let bytes = std::mem::take(&mut *self.rendered.borrow_mut());
        let text = String::from_utf8_lossy(&bytes);
        let line = text.strip_suffix('\n').unwrap_or(&text);
        // A record the renderer leaves out (a repeat) has no line.
        Ok(line.is_empty() || self.lines.line(line))
    }

    /// The count of lost records, queued as soon as there is room for it.
    fn report_lost(&mut self) -> io::Result<()> {
        if self.lost == 0 {
            return Ok(());
        }
        let detail =
            "records written while stdout's reader did not keep up: netio never waits for it";
        let record = Record::degraded(LOST_REASON, self.lost, None, detail);
        if self.queue(&record)? {
            self.lost = 0;
        }
        Ok(())
    }
}

impl StdoutSink {
    /// An error once stdout can never be written again (its reader is gone:
    /// EPIPE), so that the agent stops as it would on a blocking stdout.
    fn check_broken(&self) -> io::Result<()> {
        match self.lines.broken() {
            Some(kind) => Err(io::Error::new(kind, "stdout's reader is gone")),
            None => Ok(()),
        }
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.report_lost()?;
        if !self.queue(record)? {
            self.lost += 1;
        }
        self.check_broken()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.report_lost()?;
        self.lines.push();
        self.check_broken()
    }

    fn finish(&mut self) {
        let _ = self.report_lost();
        self.lines.drain(Instant::now() + FINISH_WAIT);
    }
}

/// The buffer a renderer writes one record into.
pub struct Rendered(Rc<RefCell<Vec<u8>>>);

impl Write for Rendered {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::json::JsonSink;
    use crate::unblocked::tests::{pipe, read_all};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_reader_that_is_gone_is_an_error() {
        let (r, w) = pipe();
        let mut sink = StdoutSink::new(w.as_raw_fd(), JsonSink::new);
        sink.write(&Record::degraded("test", 1, None, "")).unwrap();
        drop(r);
        sink.write(&Record::degraded("test", 2, None, "")).ok();
        let e = sink.flush().expect_err("no reader: an error");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    }

    #[test]
    fn a_reader_that_stops_loses_whole_records_counted_and_never_waits() {
        let (r, w) = pipe();
        let mut sink = StdoutSink::with_capacity(w.as_raw_fd(), 16 * 1024, JsonSink::new);
        let started = Instant::now();
        // Far more than the pipe (64 KiB) and the queue hold together.
        let detail = "x".repeat(900);
        let records = 1000;
        for i in 0..records {
            sink.write(&Record::degraded("test", i, None, &detail))
                .unwrap();
        }
        sink.flush().unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "a write waited");
        assert!(sink.lost > 0, "records past the queue are lost");
        // The reader catches up: the queue, then the count of the lost.
        let mut all = read_all(&r);
        for _ in 0..100 {
            sink.flush().unwrap();
            all += &read_all(&r);
        }
        sink.finish();
        all += &read_all(&r);
        let lines: Vec<&str> = all.lines().collect();
        let kept = lines.iter().filter(|l| l.contains(&detail)).count() as u64;
        // A loss record is small: it may find room between two records
        // that did not, so the losses can be told in several.
        let told: u64 = lines
            .iter()
            .filter(|l| l.contains(LOST_REASON))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                v["NETIO_COUNT"].as_u64().expect("a count")
            })
            .sum();
        assert!(told > 0, "the loss is reported");
        assert_eq!(
            kept + told,
            records,
            "every record whole or told lost, none twice"
        );
        assert_eq!(sink.lost, 0, "every loss told");
        assert!(lines
            .iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }
}
