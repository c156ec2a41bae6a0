//! Unix-socket endpoints for the scenarios: a listener and connections on a
//! filesystem path, stream or seqpacket, and messages that carry a
//! descriptor (SCM_RIGHTS). They reach the scenarios as std's `TcpListener`
//! and `TcpStream`, which are socket descriptors: every call the scenarios
//! make on them (read, write, recv, send, shutdown, timeouts, splice,
//! sendfile) is the same system call on a Unix socket, so one body of
//! scenario code serves both transports and counts them alike. Only what
//! std does with IP addresses differs (accept parses the peer's address,
//! connect takes one), and is here.

use std::fs::File;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::sys;

/// A Unix socket's path, and whether it is SOCK_SEQPACKET (else SOCK_STREAM).
#[derive(Clone, Debug)]
pub struct UnixAddr {
    pub path: PathBuf,
    pub seqpacket: bool,
}

fn socket(seqpacket: bool) -> io::Result<OwnedFd> {
    let kind = if seqpacket {
        libc::SOCK_SEQPACKET
    } else {
        libc::SOCK_STREAM
    };
    // SAFETY: plain socket creation; ownership moves into OwnedFd at once.
    let raw = unsafe { libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn sockaddr(a: &UnixAddr) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = a.path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= sa.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a Unix socket path", a.path.display()),
        ));
    }
    for (d, &s) in sa.sun_path.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((sa, len as libc::socklen_t))
}

/// Binds `a` (a stale socket file there is removed first) and listens.
pub fn listen(a: &UnixAddr) -> io::Result<TcpListener> {
    let fd = socket(a.seqpacket)?;
    let (sa, len) = sockaddr(a)?;
    match std::fs::remove_file(&a.path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // SAFETY: sa is an initialised sockaddr_un of `len` bytes.
    sys::check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    // SAFETY: listen only takes the fd.
    sys::check(unsafe { libc::listen(fd.as_raw_fd(), 1024) })?;
    Ok(TcpListener::from(fd))
}

pub fn connect(a: &UnixAddr) -> io::Result<TcpStream> {
    let fd = socket(a.seqpacket)?;
    let (sa, len) = sockaddr(a)?;
    // SAFETY: as in listen.
    sys::check(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    Ok(TcpStream::from(fd))
}

/// Whether a listener is a Unix socket's.
pub fn is_unix(fd: &impl AsRawFd) -> bool {
    // SAFETY: all-zero is a valid sockaddr_storage; getsockname fills at
    // most `len` bytes of it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let ret = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    ret == 0 && i32::from(ss.ss_family) == libc::AF_UNIX
}

/// Accepts one connection on a Unix listener the caller polled readable.
pub fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    // SAFETY: no address is asked for; the new fd is owned at once.
    let raw = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh fd nobody else owns.
    Ok(TcpStream::from(unsafe { OwnedFd::from_raw_fd(raw) }))
}

/// Room for the control message of one descriptor.
const CMSG_ROOM: usize = 64;

/// Sends `payload` with one descriptor (a fresh /dev/null) in SCM_RIGHTS;
/// returns what sendmsg returned: the payload bytes sent, never the
/// ancillary data.
pub fn send_with_fd(stream: &TcpStream, payload: &[u8]) -> io::Result<usize> {
    let passed = File::open("/dev/null")?;
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let mut control = [0u8; CMSG_ROOM];
    // SAFETY: all-zero is a valid msghdr; the pointers set below outlive
    // the call, and the CMSG macros stay within `control`, which has room
    // for one descriptor's header and data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    let fd_len = std::mem::size_of::<libc::c_int>() as u32;
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_len) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), passed.as_raw_fd());
    }
    // SAFETY: msg is fully set up above.
    sys::retry(|| {
        sys::check_size(unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
    })
}

/// Receives into `buf` with room for passed descriptors; returns what
/// recvmsg returned and how many descriptors came, which it closes.
pub fn recv_with_fds(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, u64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u8; CMSG_ROOM];
    // SAFETY: as in send_with_fd; the kernel writes at most msg_controllen
    // bytes of control data, and the loop below reads only the headers it
    // wrote.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len();
    let n = sys::retry(|| {
        sys::check_size(unsafe {
            libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC)
        })
    })?;
    let mut fds = 0;
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    drop(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    fds += 1;
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, fds))
}
