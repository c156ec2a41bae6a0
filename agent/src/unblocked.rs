//! Lines written to a descriptor whose reader may stop reading (stderr and
//! stdout, which under systemd are streams into journald, or a pipe to a
//! slow program): while the agent runs, a write never waits for the
//! reader. What the reader has not taken yet waits in a bounded queue of
//! whole lines; a line that does not fit is refused, for the caller to
//! count. In blocking mode (every command but `run`) lines are written as
//! usual: a person reading a slow pipe loses no line of theirs.
//!
//! Non-blocking without touching the descriptor others share: a socket is
//! written with MSG_DONTWAIT; a pipe or terminal is opened again through
//! /proc/self/fd/N, a file description of netio's own that can be
//! O_NONBLOCK; a regular file is written as it is (it never waits long).

use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How a write reaches the descriptor without waiting.
enum Way {
    /// `write` as the descriptor is: a file, or the blocking mode.
    Plain,
    /// `send` with MSG_DONTWAIT: a socket (journald's stream).
    Socket,
    /// `write` on a non-blocking file description of the same pipe or
    /// terminal, opened again through /proc.
    Reopened(OwnedFd),
}

/// One descriptor's queue of lines not written yet.
pub struct LineQueue {
    fd: RawFd,
    way: Way,
    blocking: bool,
    /// The most bytes of lines that may wait for the reader.
    capacity: usize,
    /// Lines waiting for the reader; the first may be written in part.
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the first line already written.
    head_written: usize,
    queued_bytes: usize,
    /// Why the descriptor can never be written again (EPIPE: no reader).
    broken: Option<io::ErrorKind>,
}

impl LineQueue {
    /// Blocking writes on `fd`, as every command but `run` wants.
    pub const fn blocking(fd: RawFd) -> Self {
        LineQueue {
            fd,
            way: Way::Plain,
            blocking: true,
            capacity: 0,
            queue: VecDeque::new(),
            head_written: 0,
            queued_bytes: 0,
            broken: None,
        }
    }

    /// Writes on `fd` that never wait for its reader, holding at most
    /// `capacity` bytes of lines it has not taken.
    pub fn never_blocking(fd: RawFd, capacity: usize) -> Self {
        let mut s = Self::blocking(fd);
        s.blocking = false;
        s.capacity = capacity;
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
        if self.queued_bytes + bytes.len() > self.capacity {
            return false;
        }
        self.queued_bytes += bytes.len();
        self.queue.push_back(bytes);
        self.push();
        true
    }

    /// Why the descriptor can never be written again, once a write said so
    /// (what was queued then is dropped).
    pub fn broken(&self) -> Option<io::ErrorKind> {
        self.broken
    }

    /// Nothing is waiting for the reader.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Writes queued lines while the reader takes them, never waiting.
    pub fn push(&mut self) {
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
                Err(e) => {
                    self.broken = Some(e.kind());
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

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two fds it is given.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two fresh fds that nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// What the pipe holds now, without waiting.
    pub fn read_all(fd: &OwnedFd) -> String {
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
    fn a_pipe_is_opened_again_and_a_socket_sent_to_without_waiting() {
        let (_r, w) = pipe();
        assert!(matches!(
            LineQueue::never_blocking(w.as_raw_fd(), 1).way,
            Way::Reopened(_)
        ));
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut s = LineQueue::never_blocking(a.as_raw_fd(), 64 * 1024);
        assert!(matches!(s.way, Way::Socket));
        let started = Instant::now();
        let line = "y".repeat(4000);
        let kept = (0..500).filter(|_| s.line(&line)).count();
        assert!(started.elapsed() < Duration::from_secs(2), "a send waited");
        assert!(kept < 500, "a socket nobody reads fills up");
        drop(b);
    }
}
