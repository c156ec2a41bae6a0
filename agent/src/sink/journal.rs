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

use crate::record::{valid_field_name, Record, Value};
use crate::sink::json::to_json;
use crate::sink::Sink;

/// Where journald listens for native-protocol datagrams.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The `NETIO_REASON` of the record that reports an outage of the journal.
pub const OUTAGE_REASON: &str = "journal_unavailable";

/// One entry in journald's native format. A bad field name is an error here
/// because journald would drop the field silently and the record would
/// arrive incomplete with nobody told.
///
/// Checked on every record rather than cached: a few dozen short names cost
/// nothing next to the send, and a record can carry any of them.
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
    /// How long writes may still wait, this interval, for journald to drain
    /// its socket queue (EAGAIN) before records go to the fallback.
    patience: Duration,
}

/// Per interval, the longest writes wait in all for a busy journald. Its
/// datagram queue is short (net.unix.max_dgram_qlen: 10 without systemd,
/// 512 with it) and an interval's records come in one burst, but journald
/// drains it in microseconds: a bounded wait keeps the records in the
/// journal without ever stalling the sampling loop for long.
const PATIENCE_PER_INTERVAL: Duration = Duration::from_millis(250);

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
            patience: PATIENCE_PER_INTERVAL,
        })
    }

    /// The outage in progress, if journald is not taking records now. The
    /// sink reports outages itself; this is for a caller that shows status
    /// (none does yet, hence the allow).
    #[allow(dead_code)]
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

impl JournalSink {
    /// `send`, waiting out a full queue (EAGAIN) while this interval's
    /// patience lasts.
    fn send_patiently(&mut self, entry: &[u8]) -> io::Result<()> {
        const STEP: Duration = Duration::from_millis(1);
        loop {
            match self.send(entry) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.patience >= STEP => {
                    std::thread::sleep(STEP);
                    self.patience -= STEP;
                }
                other => return other,
            }
        }
    }
}

impl Sink for JournalSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let entry = encode(record)?;
        // The gap record goes first, so the journal reads in order: the
        // outage, then what came after it.
        self.try_recover()?;
        if self.outage.is_none() {
            match self.send_patiently(&entry) {
                Ok(()) => return Ok(()),
                // EAGAIN once patience is spent too: waiting longer would
                // stall the sampling loop, dropping would lose the record.
                Err(e) => self.begin_outage(&e),
            }
        }
        self.write_fallback(record)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Once per interval even when it wrote nothing: a journald that came
        // back hears about the gap now, not at the next record.
        self.try_recover()?;
        self.patience = PATIENCE_PER_INTERVAL;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::os::unix::fs::FileExt;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::thread::sleep;

    use super::*;
    use crate::record::{field, Kind};

    /// A writer the test can read back: the sink's fallback or notes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    /// A sink, its fallback and its notes.
    fn sink_at(path: &Path) -> (JournalSink, Captured, Captured) {
        let (fallback, notes) = (Captured::default(), Captured::default());
        let sink = JournalSink::with_writers(
            path,
            Box::new(fallback.clone()),
            "the test's buffer",
            Box::new(notes.clone()),
        )
        .unwrap();
        (sink, fallback, notes)
    }

    /// Unique within this machine: tests of one run share journald and /tmp.
    fn unique(tag: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = N.fetch_add(1, Ordering::Relaxed);
        format!("{tag}-{}-{nanos}-{n}", std::process::id())
    }

    /// A private directory for a fake journald's socket, removed at the end.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(unique("netio-journal"));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn socket(&self) -> PathBuf {
            self.0.join("socket")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Plays journald: a socket bound where the sink sends.
    fn fake_journald(path: &Path) -> UnixDatagram {
        let _ = fs::remove_file(path);
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    /// One datagram, and the fd passed with it if any.
    fn receive(socket: &UnixDatagram) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 4 << 20];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: msghdr pointing at live buffers of the lengths it states;
        // the cmsg walk stays within `control` as the kernel filled it.
        unsafe {
            let mut msg: libc::msghdr = mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = mem::size_of_val(&control);
            let n = libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut fd = None;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            {
                let raw = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            buf.truncate(n as usize);
            Ok((buf, fd))
        }
    }

    /// The fields of one entry as journald's parser reads them.
    fn parse(mut entry: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut fields = Vec::new();
        while !entry.is_empty() {
            let end = entry
                .iter()
                .position(|&b| b == b'\n')
                .expect("unterminated field");
            let line = &entry[..end];
            if let Some(eq) = line.iter().position(|&b| b == b'=') {
                let name = String::from_utf8(line[..eq].to_vec()).unwrap();
                fields.push((name, line[eq + 1..].to_vec()));
                entry = &entry[end + 1..];
            } else {
                let name = String::from_utf8(line.to_vec()).unwrap();
                let rest = &entry[end + 1..];
                let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                fields.push((name, rest[8..8 + len].to_vec()));
                assert_eq!(rest[8 + len], b'\n', "binary field not closed by a newline");
                entry = &rest[8 + len + 1..];
            }
        }
        fields
    }

    /// What the journal should hold for `record`: every field, numbers in
    /// decimal.
    fn expected(record: &Record) -> Vec<(String, Vec<u8>)> {
        record
            .fields
            .iter()
            .map(|(name, value)| {
                let v = match value {
                    Value::Str(s) => s.clone().into_bytes(),
                    Value::Num(n) => n.to_string().into_bytes(),
                };
                (name.to_string(), v)
            })
            .collect()
    }

    /// The next entry a fake journald receives, read from the memfd if one
    /// came instead of data.
    fn next_entry(socket: &UnixDatagram) -> Vec<(String, Vec<u8>)> {
        let (data, fd) = receive(socket).expect("no entry arrived");
        match fd {
            Some(fd) => parse(&memfd_content(&File::from(fd))),
            None => parse(&data),
        }
    }

    /// All of a passed memfd. The sender's writes left the shared file
    /// offset at the end, so read by position (journald maps it).
    fn memfd_content(file: &File) -> Vec<u8> {
        let mut content = vec![0; file.metadata().unwrap().len() as usize];
        file.read_exact_at(&mut content, 0).unwrap();
        content
    }

    fn value<'a>(entry: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
        &entry
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    }

    #[test]
    fn a_record_with_a_bad_field_name_is_refused_naming_the_field() {
        let dir = TempDir::new();
        let journald = fake_journald(&dir.socket());
        journald.set_nonblocking(true).unwrap();
        let (mut sink, fallback, notes) = sink_at(&dir.socket());
        let mut record = Record::degraded("bad_name", 1, None, "");
        record.fields.push(("NETIO_lower", Value::Num(1)));

        let err = sink.write(&record).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"NETIO_lower\""), "{err}");
        // Refused whole: not half-sent, not diverted.
        assert_eq!(
            receive(&journald).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(fallback.lines().is_empty() && notes.lines().is_empty());
        assert!(sink.outage().is_none());
    }

    #[test]
    fn values_with_a_newline_use_the_length_prefixed_form_and_numbers_are_decimal() {
        let record = Record::degraded("r", 42, Some(7), "two\nlines");
        let entry = encode(&record).unwrap();
        let text = String::from_utf8_lossy(&entry);
        assert!(text.starts_with("MESSAGE\n"), "{text}");
        let message = "netio degraded: r count=42 lost_bytes=7 (two\nlines)";
        let mut binary = b"MESSAGE\n".to_vec();
        binary.extend_from_slice(&(message.len() as u64).to_le_bytes());
        binary.extend_from_slice(message.as_bytes());
        binary.push(b'\n');
        assert!(entry.starts_with(&binary));
        assert!(text.contains("\nNETIO_COUNT=42\n") && text.contains("\nNETIO_LOST_BYTES=7\n"));
        assert!(text.contains("\nSYSLOG_IDENTIFIER=netio\n"), "{text}");
        assert_eq!(parse(&entry), expected(&record));
    }

    #[test]
    fn a_missing_journald_sends_records_to_the_fallback_says_so_once_and_reports_the_gap() {
        let dir = TempDir::new();
        let (mut sink, fallback, notes) = sink_at(&dir.socket());
        let records: Vec<Record> = (0..3)
            .map(|i| Record::degraded("while_away", i, None, ""))
            .collect();
        for r in &records {
            sink.write(r).unwrap();
        }
        sink.flush().unwrap();
        let lines = fallback.lines();
        let json: Vec<String> = records.iter().map(to_json).collect();
        assert_eq!(lines, json, "every record, in order, one JSON line each");
        let said = notes.lines();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("netio: journald is not reachable at ")
                && said[0].contains(&dir.socket().display().to_string())
                && said[0].contains("the test's buffer"),
            "{said:?}"
        );
        assert_eq!(sink.outage().unwrap().records, 3);

        // journald appears: the next write reports the gap, then goes on.
        let journald = fake_journald(&dir.socket());
        let after = Record::stopping("9.9");
        sink.write(&after).unwrap();
        let gap = next_entry(&journald);
        assert_eq!(value(&gap, field::EVENT), b"degraded");
        assert_eq!(value(&gap, field::REASON), OUTAGE_REASON.as_bytes());
        assert_eq!(value(&gap, field::COUNT), b"3");
        assert_eq!(
            value(&gap, field::MESSAGE_ID),
            Kind::Degraded.message_id().as_bytes()
        );
        let message = String::from_utf8(value(&gap, field::MESSAGE).to_vec()).unwrap();
        assert!(message.contains("the test's buffer"), "{message}");
        assert_eq!(next_entry(&journald), expected(&after));
        assert!(sink.outage().is_none());
        assert_eq!(fallback.lines().len(), 3, "nothing more to the fallback");
        let said = notes.lines();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[1].starts_with("netio: journald is back at ")
                && said[1].contains("3 records went to the test's buffer"),
            "{said:?}"
        );
    }

    #[test]
    fn a_journald_that_stops_later_is_noticed_and_found_again_after_its_restart() {
        let dir = TempDir::new();
        let (mut sink, fallback, notes) = sink_at(&dir.socket());
        let journald = fake_journald(&dir.socket());
        sink.write(&Record::degraded("before", 1, None, ""))
            .unwrap();
        assert_eq!(value(&next_entry(&journald), field::REASON), b"before");

        // Gone, its socket file left behind: ECONNREFUSED, not ENOENT.
        drop(journald);
        sink.write(&Record::degraded("during", 1, None, ""))
            .unwrap();
        sink.write(&Record::degraded("during", 2, None, ""))
            .unwrap();
        assert_eq!(fallback.lines().len(), 2);
        assert_eq!(notes.lines().len(), 1, "{:?}", notes.lines());

        // A new journald at the same path: found with no reconnecting, and
        // flush alone is enough to report the gap.
        let journald = fake_journald(&dir.socket());
        sink.flush().unwrap();
        let gap = next_entry(&journald);
        assert_eq!(value(&gap, field::REASON), OUTAGE_REASON.as_bytes());
        assert_eq!(value(&gap, field::COUNT), b"2");
        sink.write(&Record::degraded("after", 1, None, "")).unwrap();
        assert_eq!(value(&next_entry(&journald), field::REASON), b"after");
        assert_eq!(notes.lines().len(), 2, "{:?}", notes.lines());
    }

    #[test]
    fn a_journald_that_cannot_keep_up_neither_blocks_nor_loses_a_record() {
        let dir = TempDir::new();
        let journald = fake_journald(&dir.socket());
        let (mut sink, fallback, notes) = sink_at(&dir.socket());
        // Never read: the socket buffer fills, and sends get EAGAIN.
        let mut written = 0u64;
        while fallback.lines().len() < 10 {
            assert!(written < 1_000_000, "sends never failed");
            sink.write(&Record::degraded("flood", written, None, ""))
                .unwrap();
            written += 1;
        }
        let said = notes.lines();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("netio: journald is not keeping up at "),
            "{said:?}"
        );

        journald.set_nonblocking(true).unwrap();
        let mut received = 0u64;
        while receive(&journald).is_ok() {
            received += 1;
        }
        journald.set_nonblocking(false).unwrap();
        sink.write(&Record::degraded("flood", written, None, ""))
            .unwrap();
        written += 1;
        let gap = next_entry(&journald);
        assert_eq!(value(&gap, field::REASON), OUTAGE_REASON.as_bytes());
        assert_eq!(value(&gap, field::COUNT), b"10");
        assert_eq!(value(&next_entry(&journald), field::REASON), b"flood");
        received += 1;
        assert_eq!(received + 10, written, "every record went somewhere");
    }

    #[test]
    fn an_entry_too_big_for_a_datagram_goes_as_a_sealed_memfd() {
        let dir = TempDir::new();
        let journald = fake_journald(&dir.socket());
        let (mut sink, fallback, notes) = sink_at(&dir.socket());
        // Larger than any datagram the socket's default send buffer allows.
        let default_buffer: usize = fs::read_to_string("/proc/sys/net/core/wmem_default")
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(212_992);
        let big = "0123456789abcde\n".repeat((default_buffer.max(256 << 10) + 4096) / 16);
        let record = Record::degraded("big", 1, None, &big);
        sink.write(&record).unwrap();

        let (data, fd) = receive(&journald).unwrap();
        assert!(data.is_empty(), "the fd comes with an empty datagram");
        let file = File::from(fd.expect("no fd passed"));
        // SAFETY: fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        let all = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        assert_eq!(seals & all, all, "seals {seals:#x}");
        // assert!, not assert_eq!: a failure would print 256 KiB twice.
        assert!(parse(&memfd_content(&file)) == expected(&record));
        assert!(fallback.lines().is_empty() && notes.lines().is_empty());
    }

    /// Starts a systemd-journald for the tests unless one already serves
    /// its socket, once per process, and leaves it running: journald has
    /// fixed paths, so the tests of one run (and later runs) share it.
    fn real_journald() {
        static READY: OnceLock<Result<(), String>> = OnceLock::new();
        if let Err(e) = READY.get_or_init(start_journald) {
            panic!("{e}");
        }
    }

    fn journald_serves() -> bool {
        UnixDatagram::unbound()
            .and_then(|s| s.connect(JOURNAL_SOCKET))
            .is_ok()
    }

    fn start_journald() -> Result<(), String> {
        let dir = Path::new(JOURNAL_SOCKET).parent().unwrap();
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Another test process may be doing the same right now.
        let lock = File::create("/run/netio-test-journald.lock").map_err(|e| e.to_string())?;
        // SAFETY: flock on an fd we own; released when `lock` closes.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } < 0 {
            return Err(io::Error::last_os_error().to_string());
        }
        if journald_serves() {
            return Ok(());
        }
        let binary = [
            "/lib/systemd/systemd-journald",
            "/usr/lib/systemd/systemd-journald",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no systemd-journald on this machine: install the Debian package systemd")?;
        // No stdio of ours: a journald holding the test's stdout would keep
        // a `cargo test | tee` pipeline open after the tests end. Its own
        // process group: a ^C to the tests does not stop it halfway.
        let mut command = Command::new(binary);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // Nor any other inherited fd (cargo's jobserver pipe, say): a
        // journald that outlives the tests must not hold their pipes open.
        // SAFETY: close_range is a plain syscall, async-signal-safe; it
        // only marks fds close-on-exec (best effort: ignored if the kernel
        // is older than 5.11).
        unsafe {
            command.pre_exec(|| {
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| format!("{binary}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !journald_serves() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{binary} exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{binary} did not open {JOURNAL_SOCKET} in 10 s"));
            }
            sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The entries journald stored with this NETIO_REASON, once it has them.
    fn stored(reason: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // journald writes asynchronously: --sync waits until it has.
            let _ = Command::new("journalctl")
                .arg("--sync")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            // --all: without it journalctl prints fields over 4096 bytes as null.
            let out = Command::new("journalctl")
                .args(["-o", "json", "--all", "--no-pager"])
                .arg(format!("{}={reason}", field::REASON))
                .output()
                .expect("journalctl");
            let entries: Vec<_> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if !entries.is_empty() || Instant::now() > deadline {
                return entries;
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// journalctl's JSON for a value: a string, or an array of bytes when
    /// the value is not printable UTF-8.
    fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
        match v {
            serde_json::Value::String(s) => s.clone().into_bytes(),
            serde_json::Value::Array(a) => a.iter().map(|b| b.as_u64().unwrap() as u8).collect(),
            other => panic!("unexpected value {other}"),
        }
    }

    #[test]
    fn records_reach_a_real_journald_intact_with_newlines_and_large_values() {
        real_journald();
        let (mut sink, fallback, notes) = sink_at(Path::new(JOURNAL_SOCKET));
        let small = Record::degraded(&unique("test-newline"), 3, Some(4), "first\nsecond");
        let big_detail = "journald stores this much too.\n".repeat(300 << 10 >> 5);
        let big = Record::degraded(&unique("test-memfd"), 1, None, &big_detail);
        sink.write(&small).unwrap();
        sink.write(&big).unwrap();
        sink.flush().unwrap();
        assert!(fallback.lines().is_empty(), "{:?}", notes.lines());

        for record in [&small, &big] {
            let Some(Value::Str(reason)) = record.get(field::REASON) else {
                panic!()
            };
            let entries = stored(reason);
            assert_eq!(entries.len(), 1, "journald stored {}", entries.len());
            let entry = &entries[0];
            // Sent with the native protocol, and no field lost on the way.
            assert_eq!(entry["_TRANSPORT"], "journal");
            for (name, want) in expected(record) {
                let got = entry
                    .get(&name)
                    .unwrap_or_else(|| panic!("journald dropped {name}"));
                assert!(json_bytes(got) == want, "{name} differs");
            }
        }
    }

    fn catalog() -> &'static str {
        include_str!("../../../packaging/netio.catalog")
    }

    #[test]
    fn the_catalog_has_one_complete_entry_per_kind_and_no_other() {
        let mut ids = Vec::new();
        for entry in catalog().split("\n-- ").skip(1) {
            let (header, text) = entry.split_once("\n\n").expect("no text");
            let mut lines = header.lines();
            let id = lines.next().unwrap().split_whitespace().next().unwrap();
            let header: Vec<&str> = lines.collect();
            for prefix in [
                "Subject: ",
                "Defined-By: netio",
                "Support: ",
                "Documentation: man:netio(8)",
            ] {
                assert!(
                    header.iter().any(|l| l.starts_with(prefix)),
                    "{id}: no {prefix:?}"
                );
            }
            assert!(!text.trim().is_empty(), "{id}: no text");
            ids.push(id.to_string());
        }
        let unique: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(unique.len(), ids.len(), "an id twice: {ids:?}");
        let kinds: BTreeSet<&str> = Kind::ALL.iter().map(|k| k.message_id()).collect();
        assert_eq!(unique, kinds, "catalog ids against record.rs's kinds");
        assert!(!catalog().contains("://"), "no URLs in the catalog");
    }

    #[test]
    fn journalctl_accepts_the_catalog_with_every_kind() {
        let root = TempDir::new();
        let dir = root.0.join("usr/lib/systemd/catalog");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("netio.catalog"), catalog()).unwrap();
        let run = |arg: &str| {
            let out = Command::new("journalctl")
                .arg(format!("--root={}", root.0.display()))
                .arg(arg)
                .output()
                .expect("journalctl: install the Debian package systemd");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        run("--update-catalog");
        let listed = run("--list-catalog");
        for kind in Kind::ALL {
            assert!(
                listed.contains(&format!("{} netio: ", kind.message_id())),
                "{} missing from:\n{listed}",
                kind.name()
            );
        }
    }
}
