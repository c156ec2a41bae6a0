//! The journal sink against a fake journald (a socket the test reads) and a
//! real one, and the message catalog against the record kinds.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::sleep;

use super::*;
use crate::record::{field, Kind, Value};

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
    assert!(sink.outage.is_none());
}

#[test]
fn values_with_a_newline_use_the_length_prefixed_form_and_numbers_are_decimal() {
    let record = Record::degraded("two\nlines", 42, Some(7), "");
    let entry = encode(&record).unwrap();
    let text = String::from_utf8_lossy(&entry);
    // MESSAGE has the newline escaped; the field keeps it.
    let message = "MESSAGE=netio degraded: reason=\"two\\nlines\" count=42 lost_bytes=7\n";
    assert!(text.starts_with(message), "{text}");
    let mut binary = format!("\n{}\n", field::REASON).into_bytes();
    binary.extend_from_slice(&9u64.to_le_bytes());
    binary.extend_from_slice(b"two\nlines\n");
    assert!(entry.windows(binary.len()).any(|w| w == binary), "{text}");
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
    // Each line is stamped with the time it was written, then the record.
    let unstamped = |line: &str| {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let stamp = v
            .as_object_mut()
            .and_then(|o| o.remove(field::TIMESTAMP))
            .unwrap_or_else(|| panic!("no timestamp: {line}"));
        humantime::parse_rfc3339(stamp.as_str().unwrap()).unwrap();
        v
    };
    let lines: Vec<_> = fallback.lines().iter().map(|l| unstamped(l)).collect();
    let json: Vec<_> = records
        .iter()
        .map(|r| unstamped(&to_json(r, std::time::SystemTime::now())))
        .collect();
    assert_eq!(lines, json, "every record, in order, one JSON line each");
    let said = notes.lines();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("netio: journald is not reachable at ")
            && said[0].contains(&dir.socket().display().to_string())
            && said[0].contains("the test's buffer"),
        "{said:?}"
    );
    assert_eq!(sink.outage.as_ref().unwrap().records, 3);

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
    assert!(sink.outage.is_none());
    assert_eq!(fallback.lines().len(), 3, "nothing more to the fallback");
    let said = notes.lines();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[1].starts_with("netio: journald is back at ")
            && said[1].contains("3 records went to the test's buffer"),
        "{said:?}"
    );
}

/// A fallback with room for `room` lines, refusing the rest as a full
/// stderr does.
struct Full {
    got: Captured,
    room: usize,
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "full"));
        }
        self.room -= 1;
        self.got.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn records_a_full_fallback_refuses_are_counted_and_reported_when_journald_is_back() {
    let dir = TempDir::new();
    let (fallback, notes) = (Captured::default(), Captured::default());
    let full = Full {
        got: fallback.clone(),
        room: 2,
    };
    let mut sink = JournalSink::with_writers(
        dir.socket(),
        Box::new(full),
        "stderr",
        Box::new(notes.clone()),
    )
    .unwrap();
    for i in 0..5 {
        // Never an error, never a wait: the loop goes on.
        sink.write(&Record::degraded("while_away", i, None, ""))
            .unwrap();
    }
    sink.flush().unwrap();
    assert_eq!(fallback.lines().len(), 2);
    let journald = fake_journald(&dir.socket());
    sink.write(&Record::stopping("9.9")).unwrap();
    let lost = next_entry(&journald);
    assert_eq!(value(&lost, field::REASON), LOST_REASON.as_bytes());
    assert_eq!(value(&lost, field::COUNT), b"3");
    let gap = next_entry(&journald);
    assert_eq!(value(&gap, field::REASON), OUTAGE_REASON.as_bytes());
    assert_eq!(value(&gap, field::COUNT), b"2");
    assert_eq!(value(&next_entry(&journald), field::EVENT), b"stopping");
    let said = notes.lines();
    assert!(
        said.last()
            .unwrap()
            .contains("2 records went to stderr, 3 were lost"),
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
fn finish_returns_once_journald_has_read_every_entry() {
    let dir = TempDir::new();
    let journald = fake_journald(&dir.socket());
    let (mut sink, fallback, _notes) = sink_at(&dir.socket());
    const RECORDS: usize = 5;
    for i in 0..RECORDS {
        sink.write(&Record::degraded("last", i as u64, None, ""))
            .unwrap();
    }
    // A journald that gets to its socket only after a while.
    let read = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&read);
    let reader = std::thread::spawn(move || {
        sleep(Duration::from_millis(300));
        for _ in 0..RECORDS {
            receive(&journald).unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
        }
        journald
    });
    let started = Instant::now();
    sink.finish();
    let waited = started.elapsed();
    // What journald had taken when finish returned.
    let taken = read.load(Ordering::SeqCst);
    let _journald = reader.join().unwrap();
    assert_eq!(
        taken, RECORDS,
        "finish returned before journald read them all"
    );
    assert!(
        waited < FINISH_WAIT,
        "finish waited out its bound ({waited:?}) though journald read everything"
    );
    assert!(fallback.lines().is_empty());
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
    let mut small = Record::degraded(&unique("test-newline"), 3, Some(4), "first\nsecond");
    // A process name may hold a newline and an escape: the field keeps them.
    small
        .fields
        .push((field::COMM, Value::Str("first\nsecond\x1b".into())));
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
    include_str!("../../../../packaging/netio.catalog")
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
