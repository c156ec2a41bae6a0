//! netio's stderr, which under systemd is a stream into journald: while the
//! agent runs (`never_block`), a write never waits for its reader. What
//! the reader has not taken yet waits in a bounded queue of whole lines;
//! a line that does not fit is dropped, counted, and the count said once
//! the reader takes lines again. The other commands write as usual: a
//! person reading a slow pipe loses no line of theirs.
//!
//! Non-blocking without touching the descriptor others share: a socket is
//! written with MSG_DONTWAIT; a pipe or terminal is opened again through
//! /proc/self/fd/2, a file description of netio's own that can be
//! O_NONBLOCK; a regular file is written as it is (it never waits long).

use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most bytes of lines waiting for stderr's reader: a few minutes of
/// warnings, or a few hundred fallback records, held without blocking.
const QUEUE_BYTES: usize = 64 * 1024;

/// How a write reaches stderr without waiting.
enum Way {
    /// `write` as stderr is: a file, or the blocking mode of the commands.
    Plain,
    /// `send` with MSG_DONTWAIT: stderr is a socket (journald's stream).
    Socket,
    /// `write` on a non-blocking file description of stderr's pipe or
    /// terminal, opened again through /proc.
    Reopened(OwnedFd),
}

/// One stderr: its queue of lines not written yet and what it dropped.
pub struct Stderr {
    fd: RawFd,
    way: Way,
    blocking: bool,
    /// Lines waiting for the reader; the first may be written in part.
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the first line already written.
    head_written: usize,
    queued_bytes: usize,
    /// Lines of netio's own notes dropped since the last count was said.
    dropped: u64,
}

impl Stderr {
    /// Blocking writes on `fd`, as every command but `run` wants.
    const fn blocking(fd: RawFd) -> Self {
        Stderr {
            fd,
            way: Way::Plain,
            blocking: true,
            queue: VecDeque::new(),
            head_written: 0,
            queued_bytes: 0,
            dropped: 0,
        }
    }

    /// Writes on `fd` that never wait for its reader.
    pub fn never_blocking(fd: RawFd) -> Self {
        let mut s = Self::blocking(fd);
        s.blocking = false;
        s.way = nonblocking_way(fd);
        s
    }

    /// Queues `line` (a newline is added) and writes what the reader takes
    /// now. `false`: the queue was full and the line is dropped.
    pub fn line(&mut self, line: &str) -> bool {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if self.blocking {
            return write_all_blocking(self.fd, &bytes);
        }
        self.push();
        if self.queued_bytes + bytes.len() > QUEUE_BYTES {
            return false;
        }
        self.queued_bytes += bytes.len();
        self.queue.push_back(bytes);
        self.push();
        true
    }

    /// A note of netio's own: dropped ones are counted and, once the
    /// queue has room again, said in one line before the next note.
    pub fn note(&mut self, line: &str) {
        self.push();
        if self.dropped > 0 && self.queue.is_empty() {
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

    /// Writes queued lines while the reader takes them, never waiting.
    fn push(&mut self) {
        while let Some(head) = self.queue.front() {
            let rest = &head[self.head_written..];
            match self.write_once(rest) {
                Ok(n) if n == rest.len() => {
                    self.queued_bytes -= head.len();
                    self.queue.pop_front();
                    self.head_written = 0;
                }
                Ok(n) => {
                    self.head_written += n;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // No reader at all (EPIPE, a closed descriptor): nothing
                // queued can ever be read.
                Err(_) => {
                    self.queue.clear();
                    self.queued_bytes = 0;
                    self.head_written = 0;
                    return;
                }
            }
        }
    }

    fn write_once(&self, bytes: &[u8]) -> io::Result<usize> {
        // SAFETY: writes from a live buffer of the stated length.
        let n = unsafe {
            match &self.way {
                Way::Plain => libc::write(self.fd, bytes.as_ptr().cast(), bytes.len()),
                Way::Socket => libc::send(
                    self.fd,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                ),
                Way::Reopened(fd) => {
                    libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len())
                }
            }
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Gives the reader until `deadline` to take what is queued.
    pub fn drain(&mut self, deadline: Instant) {
        self.push();
        while !self.queue.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            self.push();
        }
    }

    /// Lines waiting for the reader.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// How to write `fd` without waiting: by its type.
fn nonblocking_way(fd: RawFd) -> Way {
    // SAFETY: a zeroed stat is valid; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Way::Plain;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Way::Socket,
        libc::S_IFIFO | libc::S_IFCHR => {
            let path = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL in a path");
            // SAFETY: a valid C string and flags; the result is checked.
            let raw = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
                )
            };
            if raw < 0 {
                return Way::Plain;
            }
            // SAFETY: open just returned this fd and nothing else owns it.
            Way::Reopened(unsafe { OwnedFd::from_raw_fd(raw) })
        }
        _ => Way::Plain,
    }
}

fn write_all_blocking(fd: RawFd, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: writes from a live buffer of the stated length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
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

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two fds it is given.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two fresh fds that nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn read_all(fd: &OwnedFd) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no wait.
            if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
                break;
            }
            // SAFETY: reads into a local buffer of its length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_full_pipe_neither_blocks_nor_tears_lines_and_the_drops_are_said() {
        let (r, w) = pipe();
        let mut s = Stderr::never_blocking(w.as_raw_fd());
        assert!(matches!(s.way, Way::Reopened(_)), "a pipe is opened again");
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
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn a_socket_is_sent_to_without_waiting() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut s = Stderr::never_blocking(a.as_raw_fd());
        assert!(matches!(s.way, Way::Socket));
        let started = Instant::now();
        let line = "y".repeat(4000);
        let kept = (0..500).filter(|_| s.line(&line)).count();
        assert!(started.elapsed() < Duration::from_secs(2), "a send waited");
        assert!(kept < 500, "a socket nobody reads fills up");
        drop(b);
    }
}
