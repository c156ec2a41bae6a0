//! netio's stderr, which under systemd is a stream into journald: while the
//! agent runs (`never_block`), a write never waits for its reader
//! (unblocked.rs). A note of netio's own that does not fit the queue is
//! dropped, counted, and the count said once the reader takes lines again.

use std::io;
use std::sync::Mutex;
use std::time::Instant;

use crate::unblocked::LineQueue;

/// The most bytes of lines waiting for stderr's reader: a few minutes of
/// warnings, or a few hundred fallback records, held without blocking.
const QUEUE_BYTES: usize = 64 * 1024;

/// stderr: its queue of lines and the notes it dropped.
struct Stderr {
    lines: LineQueue,
    /// Lines of netio's own notes dropped since the last count was said.
    dropped: u64,
}

impl Stderr {
    const fn blocking(fd: i32) -> Self {
        Stderr {
            lines: LineQueue::blocking(fd),
            dropped: 0,
        }
    }

    fn never_blocking(fd: i32) -> Self {
        Stderr {
            lines: LineQueue::never_blocking(fd, QUEUE_BYTES),
            dropped: 0,
        }
    }

    fn line(&mut self, line: &str) -> bool {
        self.lines.line(line)
    }

    /// A note of netio's own: dropped ones are counted and, once the
    /// queue has room again, said in one line before the next note.
    fn note(&mut self, line: &str) {
        self.lines.push();
        if self.dropped > 0 && self.lines.is_empty() {
            let n = self.dropped;
            let said = format!(
                "netio: {n} line{} of netio's stderr {} dropped while its reader did not keep up",
                if n == 1 { "" } else { "s" },
                if n == 1 { "was" } else { "were" }
            );
            if self.line(&said) {
                self.dropped = 0;
            }
        }
        if !self.line(line) {
            self.dropped += 1;
        }
    }

    fn push(&mut self) {
        self.lines.push();
    }

    fn drain(&mut self, deadline: Instant) {
        self.lines.drain(deadline);
    }
}

/// The process's stderr: blocking until `never_block`.
static STDERR: Mutex<Stderr> = Mutex::new(Stderr::blocking(libc::STDERR_FILENO));

fn stderr() -> std::sync::MutexGuard<'static, Stderr> {
    STDERR.lock().unwrap_or_else(|e| e.into_inner())
}

/// From now on stderr never blocks the caller (the agent's loop).
pub fn never_block() {
    *stderr() = Stderr::never_blocking(libc::STDERR_FILENO);
}

/// A note of netio's own (what `tell!` writes): dropped when the reader
/// is that far behind, and the drops counted and said.
pub fn note(line: &str) {
    stderr().note(line);
}

/// A line whose drop the caller counts itself (a fallback record):
/// `false` when it was dropped.
pub fn try_line(line: &str) -> bool {
    stderr().line(line)
}

/// At exit: what is queued gets until `deadline` to be read.
pub fn drain(deadline: Instant) {
    stderr().drain(deadline);
}

/// stderr as a `Write` for the journal sink's fallback: each write is one
/// whole line, refused (WouldBlock) when stderr's queue has no room.
pub struct Lines;

impl io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if try_line(text.strip_suffix('\n').unwrap_or(&text)) {
            Ok(buf.len())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "stderr's reader is not keeping up",
            ))
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        stderr().push();
        Ok(())
    }
}

/// netio's own notes on stderr as a `Write` (the journal sink's notes):
/// one line per write, dropped and counted like every `tell!`.
pub struct Notes;

impl io::Write for Notes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let line = text.strip_suffix('\n').unwrap_or(&text);
        if !line.is_empty() {
            note(line);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unblocked::tests::{pipe, read_all};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn a_full_pipe_neither_blocks_nor_tears_lines_and_the_drops_are_said() {
        let (r, w) = pipe();
        let mut s = Stderr::never_blocking(w.as_raw_fd());
        let started = Instant::now();
        // Far more than the pipe (64 KiB) and the queue hold together.
        let line = "x".repeat(1000);
        for _ in 0..1000 {
            s.note(&line);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "a write waited");
        assert!(s.dropped > 0, "lines past the queue are dropped");
        let dropped = s.dropped;
        let first = read_all(&r);
        // The reader catches up: the queue goes out, then the count.
        s.drain(Instant::now() + Duration::from_secs(1));
        let second = read_all(&r);
        s.note("netio: after");
        let third = read_all(&r);
        let all = format!("{first}{second}{third}");
        let lines: Vec<&str> = all.lines().collect();
        assert!(lines.iter().all(|l| *l == line
            || *l == "netio: after"
            || l.contains("of netio's stderr were dropped")));
        assert_eq!(lines.len() as u64, 1000 - dropped + 2, "{dropped} dropped");
        assert!(
            third.contains(&format!("{dropped} lines of netio's stderr were dropped")),
            "{third}"
        );
        assert_eq!(s.lines.queued(), 0);
    }
}
