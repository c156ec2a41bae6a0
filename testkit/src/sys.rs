//! Thin wrappers over the Linux system calls the scenarios need and std does
//! not offer (MSG_PEEK/MSG_WAITALL receives, sendfile, splice, fork, exec,
//! prctl). Each returns `io::Result` so the scenario code stays readable.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(crate) fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Repeats a call interrupted by a signal. A counted byte must never be lost
/// to EINTR, and no byte can have moved when EINTR is returned.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `recv(2)` with explicit flags (std only exposes `peek` without a length
/// guarantee and has no MSG_WAITALL).
pub fn recv(fd: &impl AsRawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    retry(|| {
        // SAFETY: buf is a valid writable region of buf.len() bytes.
        check_size(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) })
    })
}

/// Waits until `fd` is readable (or its peer closed), up to `timeout`
/// (forever when None).
pub fn wait_readable(fd: &impl AsRawFd, timeout: Option<std::time::Duration>) -> io::Result<()> {
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match retry(|| check(unsafe { libc::poll(&mut p, 1, ms) }))? {
        0 => Err(io::Error::from(io::ErrorKind::TimedOut)),
        _ => Ok(()),
    }
}

/// Dissolves a TCP socket's connection (`connect` with AF_UNSPEC) so the
/// same socket can connect again.
pub fn disconnect(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: a zeroed sockaddr with only the family set, as the call wants.
    let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
    sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: sa lives across the call; the length is its size.
    check(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &sa,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Connects an existing (disconnected) socket to an IPv4 address.
pub fn connect_v4(fd: &impl AsRawFd, addr: std::net::SocketAddrV4) -> io::Result<()> {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sin lives across the call; the length is its size.
    check(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// One `sendfile(2)` call; `offset` is advanced by the kernel.
pub fn sendfile(
    out: &impl AsRawFd,
    input: &impl AsRawFd,
    offset: &mut libc::off_t,
    count: usize,
) -> io::Result<usize> {
    retry(|| {
        // SAFETY: offset points to a live off_t.
        check_size(unsafe { libc::sendfile(out.as_raw_fd(), input.as_raw_fd(), offset, count) })
    })
}

/// One `splice(2)` call between two fds without offsets (sockets and pipes
/// have none).
pub fn splice(input: RawFd, output: RawFd, len: usize) -> io::Result<usize> {
    retry(|| {
        // SAFETY: null offsets are valid for pipes and sockets.
        check_size(unsafe {
            libc::splice(
                input,
                std::ptr::null_mut(),
                output,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE,
            )
        })
    })
}

/// A close-on-exec pipe as (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both fds are fresh and owned by us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Lets an fd survive `execve`, for the re-exec'd forking child.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl on an fd we hold.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) })?;
    Ok(())
}

/// Sets this thread's comm (the name netio matches processes on). The
/// kernel silently truncates to 15 bytes, so we refuse longer names to keep
/// tests honest about what name they expect.
pub fn set_comm(name: &[u8]) -> io::Result<()> {
    if name.len() > 15 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "comm {:?} is longer than 15 bytes",
                String::from_utf8_lossy(name)
            ),
        ));
    }
    let c = CString::new(name)?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    check(unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// The kernel's comm for this process, as netio would see it (lossily,
/// where it is not UTF-8).
pub fn comm() -> String {
    std::fs::read("/proc/self/comm")
        .map(|b| String::from_utf8_lossy(&b).trim_end().to_owned())
        .unwrap_or_default()
}

/// Becomes `uid` (user and group, no supplementary groups) for good: the
/// unprivileged user of an attack.
pub fn drop_privileges(uid: u32) -> io::Result<()> {
    // SAFETY: plain credential calls; a null list with length 0 is valid.
    check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
    check(unsafe { libc::setgid(uid) })?;
    check(unsafe { libc::setuid(uid) })?;
    Ok(())
}

/// Ends the calling thread only (the raw `exit`, not `exit_group`), with no
/// unwinding: the process runs on in its other threads. What
/// `pthread_exit` ends with, without its unwinding through Rust frames.
pub fn exit_thread() -> ! {
    loop {
        // SAFETY: SYS_exit takes a status and does not return.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
    }
}

/// The state letter /proc shows for `pid` (R, S, Z, ...), if it exists.
pub fn proc_state(pid: libc::pid_t) -> Option<char> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).map(|&b| b as char)
}

pub fn pid() -> u32 {
    std::process::id()
}

/// `fork(2)`: `Ok(None)` in the child, `Ok(Some(pid))` in the parent. Only
/// safe to use while the process is single-threaded, which the forking
/// server guarantees by never starting threads.
pub fn fork() -> io::Result<Option<libc::pid_t>> {
    // SAFETY: callers are single-threaded (see above).
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 { None } else { Some(pid) })
}

/// Makes `pid + 1` the PID the next fork in this PID namespace gets, unless
/// another fork on the machine comes first (root only).
pub fn set_last_pid(pid: libc::pid_t) -> io::Result<()> {
    std::fs::write("/proc/sys/kernel/ns_last_pid", pid.to_string())
}

/// Waits for a child and returns its raw wait status.
pub fn waitpid(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    retry(|| {
        // SAFETY: status is a valid out-pointer.
        check(unsafe { libc::waitpid(pid, &mut status, 0) })
    })?;
    Ok(status)
}

/// Reaps every child that has exited, without waiting: (PID, wait status).
pub fn reap_exited() -> Vec<(libc::pid_t, libc::c_int)> {
    let mut reaped = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
            pid if pid > 0 => reaped.push((pid, status)),
            _ => return reaped,
        }
    }
}

fn set_flag(fd: RawFd, flag: libc::c_int, on: bool) -> io::Result<()> {
    // SAFETY: plain fcntl on an fd the caller holds.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on { flags | flag } else { flags & !flag };
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(|_| ())
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    set_flag(fd, libc::O_NONBLOCK, true)
}

pub fn set_blocking(fd: RawFd) -> io::Result<()> {
    set_flag(fd, libc::O_NONBLOCK, false)
}

/// Which of two fds `readable_first` found readable.
pub enum Ready {
    First,
    Second,
}

/// Waits up to `timeout` until `first` or `second` is readable; `first`
/// wins when both are.
pub fn readable_first(
    first: RawFd,
    second: RawFd,
    timeout: std::time::Duration,
) -> io::Result<Ready> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    let mut p = [first, second].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: two valid pollfds.
    match retry(|| check(unsafe { libc::poll(p.as_mut_ptr(), 2, ms) }))? {
        0 => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("nothing within {timeout:?}"),
        )),
        _ if p[0].revents != 0 => Ok(Ready::First),
        _ => Ok(Ready::Second),
    }
}

/// Appends what a non-blocking `fd` holds now to `out`.
pub fn read_available(fd: RawFd, out: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        // SAFETY: buf is a valid writable region of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return Ok(()),
            n if n > 0 => out.extend_from_slice(&buf[..n as usize]),
            _ => {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(()),
                    _ => return Err(e),
                }
            }
        }
    }
}

/// Describes a wait status for error messages, or `None` for a clean exit.
pub fn exit_problem(status: libc::c_int) -> Option<String> {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => None,
            code => Some(format!("exited with code {code}")),
        }
    } else if libc::WIFSIGNALED(status) {
        Some(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else {
        Some(format!("stopped with wait status {status:#x}"))
    }
}

/// Argument vector prepared before forking, so the child allocates nothing
/// between `fork` and `execv`.
pub struct ExecPlan {
    path: CString,
    args: Vec<CString>,
}

impl ExecPlan {
    pub fn new(path: &str, args: &[String]) -> io::Result<Self> {
        let path = CString::new(path)?;
        let args = args
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { path, args })
    }

    /// Replaces the process image; returns only on failure.
    pub fn exec(&self) -> io::Error {
        let mut argv: Vec<*const libc::c_char> = self.args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: argv is a NULL-terminated array of NUL-terminated strings
        // that outlive the call.
        unsafe { libc::execv(self.path.as_ptr(), argv.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// Leaves immediately without running destructors or flushing stdio: a
/// forked child must not flush buffers it inherited from the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Kills this process with SIGALRM after `secs`, so a hung scenario can
/// never outlive its test. Not inherited across fork, so children re-arm it.
pub fn arm_deadline(secs: u32) {
    // SAFETY: alarm only schedules a signal.
    unsafe { libc::alarm(secs) };
}
