//! journald's native protocol: a record encoded as one entry, and the
//! socket that sends it as a datagram or, when too big, as a sealed memfd.

use std::fs::File;
use std::io::{self, Write};
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::ptr;

use crate::record::{valid_field_name, Record, Value};

/// One entry in journald's native format. A bad field name is an error, not
/// a field journald drops silently; checked per record, as that costs
/// nothing next to the send.
pub(super) fn encode(record: &Record) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    for (name, value) in &record.fields {
        if !valid_field_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "field name {name:?} would be dropped by journald: \
                     names must be A-Z, 0-9 and _, start with a letter, at most 64 bytes"
                ),
            ));
        }
        out.extend_from_slice(name.as_bytes());
        match value {
            Value::Num(n) => {
                out.push(b'=');
                out.extend_from_slice(n.to_string().as_bytes());
            }
            // A newline would end the field early in the `NAME=value` form:
            // the length-prefixed form carries any bytes.
            Value::Str(s) if s.contains('\n') => {
                out.push(b'\n');
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Str(s) => {
                out.push(b'=');
                out.extend_from_slice(s.as_bytes());
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// journald's socket as the sink sends to it.
pub(super) struct Socket {
    /// Unbound and unconnected: every send names journald's socket, so a
    /// journald that restarts (a new socket at the same path) is found again
    /// without reconnecting.
    socket: UnixDatagram,
    addr: libc::sockaddr_un,
    addr_len: libc::socklen_t,
}

impl Socket {
    pub(super) fn new(path: &Path) -> io::Result<Self> {
        let (addr, addr_len) = unix_addr(path)?;
        Ok(Socket {
            socket: UnixDatagram::unbound()?,
            addr,
            addr_len,
        })
    }

    /// Sends one entry: a datagram if it fits, else a sealed memfd (as
    /// sd_journal_sendv does), since a datagram cannot exceed the socket's
    /// send buffer.
    pub(super) fn send(&self, entry: &[u8]) -> io::Result<()> {
        match self.send_msg(entry, None) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) => {
                let memfd = sealed_memfd(entry)?;
                self.send_msg(&[], Some(memfd.as_fd()))
            }
            other => other,
        }
    }

    /// Bytes of entries sent that journald has not read yet: an AF_UNIX
    /// datagram stays charged to its sender until the receiver takes it.
    pub(super) fn unread(&self) -> io::Result<usize> {
        let mut queued: libc::c_int = 0;
        // SAFETY: SIOCOUTQ writes one int through the pointer.
        let rc = unsafe { libc::ioctl(self.socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(queued.max(0) as usize)
    }

    /// One `sendmsg` to journald's socket, never blocking (MSG_DONTWAIT):
    /// a full socket buffer is EAGAIN, not a stalled sampling loop.
    fn send_msg(&self, data: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // u64 elements: cmsg headers need their natural alignment.
        let mut control = [0u64; 4];
        // SAFETY: a zeroed msghdr is valid (no name, no data, no control).
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = ptr::addr_of!(self.addr) as *mut libc::c_void;
        msg.msg_namelen = self.addr_len;
        if !data.is_empty() {
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
        }
        if let Some(fd) = fd {
            let fd_len = mem::size_of::<RawFd>() as u32;
            // SAFETY: CMSG_* only compute sizes and offsets here; the
            // buffer is large enough for one fd (checked) and aligned, so
            // CMSG_FIRSTHDR is non-null and the writes stay inside it.
            unsafe {
                let space = libc::CMSG_SPACE(fd_len) as usize;
                assert!(space <= mem::size_of_val(&control));
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = space as _;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
                ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
            }
        }
        // SAFETY: msg points at live buffers of the lengths it states.
        let sent = unsafe {
            libc::sendmsg(
                self.socket.as_raw_fd(),
                &msg,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// journald's address, built once: it also rejects a path too long for a
/// unix socket at construction rather than at every send.
fn unix_addr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain bytes; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    let bytes = path.as_os_str().as_bytes();
    // One byte stays zero: the terminating NUL.
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} cannot be a unix socket path", path.display()),
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// A memfd holding `data`, sealed against any change: journald only reads
/// a passed fd that is sealed, since the sender could otherwise alter it
/// while journald parses it.
fn sealed_memfd(data: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: a valid C string and flags; the result is checked.
    let raw = unsafe {
        libc::memfd_create(
            c"netio-journal-entry".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create just returned this fd and nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    file.write_all(data)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on an fd we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file.into())
}
