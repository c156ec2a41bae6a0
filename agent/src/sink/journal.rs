//! The systemd journal sink: each record becomes one journal entry, sent
//! with journald's native protocol so every `NETIO_*` field stays a field
//! (`journalctl NETIO_TARGET=db`), not text inside a message.
//!
//! The sampling loop must never wait on journald and netio must outlive it:
//! sends never block, and while journald is missing or cannot keep up the
//! records go, one JSON line each, to a fallback writer (stderr) and are
//! counted. Once journald takes records again, a `degraded` record with
//! reason `journal_unavailable` says how many went elsewhere and for how
//! long, so the journal itself shows the gap.

use std::fs::File;
use std::io::{self, Write};
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::ptr;
use std::time::{Duration, Instant};

use crate::record::{Record, Value};
use crate::sink::{to_json, Sink};

/// Where journald listens for native-protocol datagrams.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The `NETIO_REASON` of the record that reports an outage of the journal.
pub const OUTAGE_REASON: &str = "journal_unavailable";

/// Whether journald keeps a field of this name. journald 252 drops, without
/// a word, fields whose names are not `[A-Z0-9_]`, start with a digit or an
/// underscore (those are its own trusted fields), or exceed 64 bytes.
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// One entry in journald's native format. A bad field name is an error here
/// because journald would drop the field silently and the record would
/// arrive incomplete with nobody told.
fn encode(record: &Record) -> io::Result<Vec<u8>> {
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

/// A time during which journald did not take netio's records.
#[derive(Debug)]
pub struct Outage {
    pub since: Instant,
    /// Records written to the fallback instead, so far.
    pub records: u64,
    /// Why the first of them could not be sent.
    pub cause: String,
}

/// Writes records to the journal; see the module doc for what happens when
/// journald is away.
pub struct JournalSink {
    path: PathBuf,
    /// Unbound and unconnected: every send names journald's socket, so a
    /// journald that restarts (a new socket at the same path) is found again
    /// without reconnecting.
    socket: UnixDatagram,
    addr: libc::sockaddr_un,
    addr_len: libc::socklen_t,
    fallback: Box<dyn Write + Send>,
    /// Named in the notes and in the outage record: where to look for the
    /// records that are not in the journal.
    fallback_name: String,
    /// The one-line notes saying journald went away and came back.
    notes: Box<dyn Write + Send>,
    outage: Option<Outage>,
}

impl JournalSink {
    /// journald's usual socket; records fall back to stderr.
    pub fn new() -> io::Result<Self> {
        Self::with_socket(JOURNAL_SOCKET)
    }

    /// Another socket path; records fall back to stderr.
    pub fn with_socket(path: impl Into<PathBuf>) -> io::Result<Self> {
        Self::with_writers(
            path,
            Box::new(io::stderr()),
            "stderr",
            Box::new(io::stderr()),
        )
    }

    /// Everything chosen by the caller: the socket, where records go while
    /// journald is away (`fallback`, called `fallback_name` in the notes)
    /// and where the notes go.
    pub fn with_writers(
        path: impl Into<PathBuf>,
        fallback: Box<dyn Write + Send>,
        fallback_name: &str,
        notes: Box<dyn Write + Send>,
    ) -> io::Result<Self> {
        let path = path.into();
        let (addr, addr_len) = unix_addr(&path)?;
        Ok(JournalSink {
            path,
            socket: UnixDatagram::unbound()?,
            addr,
            addr_len,
            fallback,
            fallback_name: fallback_name.to_string(),
            notes,
            outage: None,
        })
    }

    /// The outage in progress, if journald is not taking records now.
    pub fn outage(&self) -> Option<&Outage> {
        self.outage.as_ref()
    }

    /// Sends one entry: a datagram if it fits, else a sealed memfd (as
    /// sd_journal_sendv does), since a datagram cannot exceed the socket's
    /// send buffer.
    fn send(&self, entry: &[u8]) -> io::Result<()> {
        match self.send_msg(entry, None) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) => {
                let memfd = sealed_memfd(entry)?;
                self.send_msg(&[], Some(memfd.as_fd()))
            }
            other => other,
        }
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
                msg.msg_controllen = space;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as usize;
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

    /// During an outage: offers journald the record that reports it. If
    /// journald takes it, the outage is over and said so once on stderr.
    fn try_recover(&mut self) -> io::Result<()> {
        let Some(outage) = &self.outage else {
            return Ok(());
        };
        let elapsed = Duration::from_millis(outage.since.elapsed().as_millis() as u64);
        let gap = Record::degraded(
            OUTAGE_REASON,
            outage.records,
            None,
            &format!(
                "journald at {} did not take records for {} ({}); they were written to {} instead",
                self.path.display(),
                humantime::format_duration(elapsed),
                outage.cause,
                self.fallback_name
            ),
        );
        if self.send(&encode(&gap)?).is_ok() {
            let records = outage.records;
            self.note(&format!(
                "netio: journald is back at {}; {records} records went to {} during the {} it was away",
                self.path.display(),
                self.fallback_name,
                humantime::format_duration(elapsed)
            ));
            self.outage = None;
        }
        Ok(())
    }

    /// journald did not take a record: from now on records go to the
    /// fallback until it does. Said once, here, not per record.
    fn begin_outage(&mut self, cause: &io::Error) {
        let why = if cause.kind() == io::ErrorKind::WouldBlock {
            "is not keeping up"
        } else {
            "is not reachable"
        };
        self.note(&format!(
            "netio: journald {why} at {} ({cause}); writing records to {} until it takes them again",
            self.path.display(),
            self.fallback_name
        ));
        self.outage = Some(Outage {
            since: Instant::now(),
            records: 0,
            cause: cause.to_string(),
        });
    }

    /// A record journald did not take, as one JSON line, counted for the
    /// outage record. If even the fallback fails the record is lost, and
    /// the caller must hear of it.
    fn write_fallback(&mut self, record: &Record) -> io::Result<()> {
        writeln!(self.fallback, "{}", to_json(record))?;
        if let Some(outage) = &mut self.outage {
            outage.records += 1;
        }
        Ok(())
    }

    /// A note for whoever reads netio's stderr. Best effort: a note that
    /// cannot be written must not stop the records.
    fn note(&mut self, line: &str) {
        let _ = writeln!(self.notes, "{line}");
        let _ = self.notes.flush();
    }
}

impl Sink for JournalSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let entry = encode(record)?;
        // The gap record goes first, so the journal reads in order: the
        // outage, then what came after it.
        self.try_recover()?;
        if self.outage.is_none() {
            match self.send(&entry) {
                Ok(()) => return Ok(()),
                // EAGAIN too: waiting for room would stall the sampling
                // loop, and dropping the record would lose it silently.
                Err(e) => self.begin_outage(&e),
            }
        }
        self.write_fallback(record)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Once per interval even when it wrote nothing: a journald that came
        // back hears about the gap now, not at the next record.
        self.try_recover()?;
        self.fallback.flush()
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
