//! Syslog output: each record as one syslog message, to a local socket
//! (RFC 3164-style, what `/dev/log` readers parse) or to a remote collector
//! (RFC 5424 over UDP, TCP with octet-counting framing, or TLS), with every
//! field but `MESSAGE` as RFC 5424 structured data under `SD_ID`.
//!
//! A collector that is down or slow must never stall the sampling loop:
//! `write` only renders the record and puts it in a bounded queue, and a
//! sender thread delivers the queue, reconnecting with exponential backoff.
//! When the queue is full new records are dropped and counted; the count
//! goes to the collector as a `degraded` record (reason `syslog_dropped`)
//! in the place where the records are missing, so its stream shows the
//! gap and its size, and to the other outputs (the journal, other
//! destinations) at the end of the interval in which they were dropped.
//!
//! Plain TCP syslog has no acknowledgements: a record written into the
//! kernel's buffer just before the collector dies cannot be known lost.
//! Before each message the sender checks whether the collector has closed
//! its end, which covers a collector that stopped or restarted between
//! records; the rest is the protocol's limit (RELP's job, not syslog's).

use std::collections::VecDeque;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::{Syslog, Transport};
use crate::record::{field, Record, Value};
use crate::sink::time::{rfc3164_local, rfc3339_utc};
use crate::sink::Sink;

/// The SD-ID of netio's structured data: a name in netio's own namespace,
/// `name@<private enterprise number>` (RFC 5424 section 7.2.2). 32473 is
/// the number IANA reserves for documentation and examples (RFC 5612);
/// netio has no number of its own, so its SD-ID is fixed and documented
/// (docs/siem.md) rather than pretending to one.
pub const SD_ID: &str = "netio@32473";

/// The `NETIO_REASON` of the record that counts records the queue had no
/// room for.
pub const DROPPED_REASON: &str = "syslog_dropped";

/// The `degraded` record for `n` records that found the queue of the
/// destination `name` (`queue` records) full: sent to the destination in
/// their place, and to the other outputs.
fn dropped_record(name: &str, queue: usize, n: u64) -> Record {
    Record::degraded(
        DROPPED_REASON,
        n,
        None,
        &format!(
            "the queue for syslog {name} ({queue} records) was full while the collector was down or slow; {n} records were not sent to it"
        ),
    )
}

/// The first wait before reconnecting, doubled after each failure up to
/// `MAX_BACKOFF`: a collector that restarts is found again within seconds,
/// and one that is down for hours costs a connection attempt every few.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a connection attempt or one message's send may take. A send
/// that takes longer (a collector that stopped reading) is treated as a
/// broken connection: the message is sent again on a new one.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// At exit, how long the queue may take to drain to a reachable collector.
const EXIT_DRAIN: Duration = Duration::from_secs(5);

/// The CA bundle of Debian's ca-certificates, used when `ca_file` is unset.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How one destination renders records.
#[derive(Clone)]
struct Format {
    transport: Transport,
    facility: u8,
    app_name: String,
    hostname: String,
    pid: u32,
}

/// RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]` get a backslash.
fn sd_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether a field name can be an SD-PARAM name: 1 to 32 printable ASCII
/// characters other than `=`, space, `]` and `"`.
pub fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| (33..=126).contains(&b) && !b"=]\"".contains(&b))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Num(n) => n.to_string(),
    }
}

impl Format {
    fn pri(&self, record: &Record) -> u16 {
        self.facility as u16 * 8 + record.kind().priority() as u16
    }

    fn message(record: &Record) -> String {
        record
            .fields
            .iter()
            .find(|(n, _)| *n == field::MESSAGE)
            .map(|(_, v)| value_text(v))
            .unwrap_or_default()
    }

    /// The message without transport framing.
    fn render(&self, record: &Record, now: SystemTime) -> io::Result<Vec<u8>> {
        let mut out = String::with_capacity(512);
        if self.transport == Transport::Local {
            // What syslog(3) sends to /dev/log: no hostname (the reader adds
            // its own), local time, and a line of text.
            let _ = write!(
                out,
                "<{}>{} {}[{}]: {}",
                self.pri(record),
                rfc3164_local(now),
                self.app_name,
                self.pid,
                Self::message(record).replace('\n', " ")
            );
            return Ok(out.into_bytes());
        }
        let _ = write!(
            out,
            "<{}>1 {} {} {} {} {} [{SD_ID}",
            self.pri(record),
            rfc3339_utc(now),
            self.hostname,
            self.app_name,
            self.pid,
            record.kind().name()
        );
        for (name, value) in &record.fields {
            if *name == field::MESSAGE {
                continue;
            }
            if !valid_param_name(name) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("field name {name:?} cannot be an RFC 5424 SD-PARAM name (at most 32 characters)"),
                ));
            }
            let _ = write!(out, " {name}=\"");
            sd_escape(&value_text(value), &mut out);
            out.push('"');
        }
        out.push_str("] ");
        out.push_str(&Self::message(record));
        Ok(out.into_bytes())
    }
}

/// This host's name for RFC 5424's HOSTNAME: `-` (the nil value) when it
/// has none.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        CStr::from_bytes_until_nul(&buf)
            .ok()
            .and_then(|c| c.to_str().ok())
            .unwrap_or("")
            .to_string()
    } else {
        String::new()
    };
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b)) {
        "-".into()
    } else {
        name
    }
}

enum Item {
    /// A rendered message.
    Message(Vec<u8>),
    /// This many records were dropped here.
    Gap(u64),
}

struct State {
    items: VecDeque<Item>,
    /// `Message` items in `items`: the queue's fill.
    messages: usize,
    /// Records dropped since the last `Gap` was queued.
    dropped: u64,
    /// Set at exit: deliver what is queued, then stop.
    closing: bool,
    /// The sender has stopped.
    done: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Something was queued, or closing began.
    queued: Condvar,
    /// The queue emptied, or the sender stopped.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where and how the sender thread connects.
struct Destination {
    config: Syslog,
    tls: Option<Arc<rustls::ClientConfig>>,
    format: Format,
}

/// A syslog destination; see the module doc.
pub struct SyslogSink {
    shared: Arc<Shared>,
    format: Format,
    capacity: usize,
    name: String,
    /// The queue was full and the drop noted on stderr; cleared once a
    /// record fits again.
    dropping: bool,
    /// Records dropped since the other outputs were last told.
    unreported: u64,
}

impl SyslogSink {
    /// Sets up a destination; fails only on what cannot work at all (a
    /// TLS file that cannot be read). An unreachable collector is not an
    /// error: records wait for it.
    pub fn new(config: &Syslog) -> Result<Self, String> {
        let name = config.describe();
        let tls = match config.transport {
            Transport::Tls => Some(
                tls_config(config)
                    .map(Arc::new)
                    .map_err(|e| format!("syslog {name}: {e}"))?,
            ),
            _ => None,
        };
        let format = Format {
            transport: config.transport,
            facility: config.facility_code(),
            app_name: config.app_name.clone(),
            hostname: hostname(),
            pid: std::process::id(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                items: VecDeque::new(),
                messages: 0,
                dropped: 0,
                closing: false,
                done: false,
            }),
            queued: Condvar::new(),
            drained: Condvar::new(),
        });
        let destination = Destination {
            config: config.clone(),
            tls,
            format: format.clone(),
        };
        let sender = Arc::clone(&shared);
        thread::Builder::new()
            .name("netio-syslog".into())
            .spawn(move || send_loop(&sender, &destination))
            .map_err(|e| format!("syslog {name}: cannot start its sender thread: {e}"))?;
        Ok(SyslogSink {
            shared,
            format,
            capacity: config.queue as usize,
            name,
            dropping: false,
            unreported: 0,
        })
    }
}

impl Sink for SyslogSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let message = self.format.render(record, SystemTime::now())?;
        let mut st = self.shared.lock();
        if st.messages >= self.capacity {
            st.dropped += 1;
            self.unreported += 1;
            if !self.dropping {
                self.dropping = true;
                eprintln!(
                    "netio: syslog {}: its queue of {} records is full (the collector is down or slow); dropping records and counting them",
                    self.name, self.capacity
                );
            }
            return Ok(());
        }
        self.dropping = false;
        if st.dropped > 0 {
            let n = std::mem::take(&mut st.dropped);
            st.items.push_back(Item::Gap(n));
        }
        st.items.push_back(Item::Message(message));
        st.messages += 1;
        self.shared.queued.notify_one();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The sender delivers as records come; nothing waits for it here.
        Ok(())
    }

    fn take_lost(&mut self) -> Option<Record> {
        let n = std::mem::take(&mut self.unreported);
        (n > 0).then(|| dropped_record(&self.name, self.capacity, n))
    }
}

impl Drop for SyslogSink {
    /// At exit: lets the sender deliver the queue for a while, then says
    /// what it could not.
    fn drop(&mut self) {
        let deadline = Instant::now() + EXIT_DRAIN;
        let mut st = self.shared.lock();
        if st.dropped > 0 {
            let n = std::mem::take(&mut st.dropped);
            st.items.push_back(Item::Gap(n));
        }
        st.closing = true;
        self.shared.queued.notify_all();
        while !st.items.is_empty() && !st.done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .shared
                .drained
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let lost = undelivered(&st);
        if lost > 0 {
            eprintln!(
                "netio: syslog {}: {lost} records not delivered at exit",
                self.name
            );
        }
    }
}

/// Records in the queue, counting those a `Gap` stands for.
fn undelivered(st: &State) -> u64 {
    st.items
        .iter()
        .map(|i| match i {
            Item::Message(_) => 1,
            Item::Gap(n) => *n,
        })
        .sum::<u64>()
        + st.dropped
}

/// The sender thread: delivers the queue's head until it is sent, then the
/// next; see the module doc.
fn send_loop(shared: &Shared, dest: &Destination) {
    let name = dest.config.describe();
    let mut conn: Option<Conn> = None;
    let mut backoff = MIN_BACKOFF;
    // The last failure said on stderr: each new one is said once, and
    // recovery once.
    let mut failing: Option<String> = None;
    loop {
        let (message, closing) = {
            let mut st = shared.lock();
            loop {
                if let Some(item) = st.items.front() {
                    let m = match item {
                        Item::Message(m) => Ok(m.clone()),
                        Item::Gap(n) => Err(*n),
                    };
                    break (m, st.closing);
                }
                if st.closing {
                    st.done = true;
                    shared.drained.notify_all();
                    return;
                }
                st = shared.queued.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let message = match message {
            Ok(m) => m,
            Err(n) => {
                let gap = dropped_record(&name, dest.config.queue as usize, n);
                match dest.format.render(&gap, SystemTime::now()) {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("netio: syslog {name}: {e}");
                        pop(shared);
                        continue;
                    }
                }
            }
        };
        if conn.as_mut().is_some_and(Conn::peer_gone) {
            conn = None;
        }
        let result = match &mut conn {
            Some(c) => c.send(&message),
            None => connect(dest).and_then(|mut c| {
                let r = c.send(&message);
                conn = Some(c);
                r
            }),
        };
        match result {
            Ok(()) => {
                pop(shared);
                backoff = MIN_BACKOFF;
                if failing.take().is_some() {
                    eprintln!("netio: syslog {name}: delivering records again");
                }
            }
            Err(e) => {
                conn = None;
                let why = e.to_string();
                if failing.as_deref() != Some(why.as_str()) {
                    eprintln!(
                        "netio: syslog {name}: {why}; records wait in its queue and are retried"
                    );
                    failing = Some(why);
                }
                if closing {
                    let mut st = shared.lock();
                    st.done = true;
                    shared.drained.notify_all();
                    return;
                }
                wait_backoff(shared, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Removes the delivered head of the queue.
fn pop(shared: &Shared) {
    let mut st = shared.lock();
    if let Some(Item::Message(_)) = st.items.pop_front() {
        st.messages -= 1;
    }
    if st.items.is_empty() {
        shared.drained.notify_all();
    }
}

/// Sleeps `d`, or less if closing begins (then one last attempt follows).
fn wait_backoff(shared: &Shared, d: Duration) {
    let deadline = Instant::now() + d;
    let mut st = shared.lock();
    while !st.closing {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        st = shared
            .queued
            .wait_timeout(st, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
}

impl Conn {
    /// One message, framed for its transport: octet counting (RFC 6587
    /// section 3.4.1) on streams, one datagram each otherwise.
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.send(message).map(drop),
            Conn::Udp(s) => s.send(message).map(drop),
            Conn::Tcp(s) => write_framed(s, message),
            Conn::Tls(s) => write_framed(s.as_mut(), message).and_then(|_| s.flush()),
        }
    }

    /// Whether a stream's collector has closed its end (it never sends
    /// anything else): checked before each message, so that a collector
    /// that went away between records does not take the next one with it.
    fn peer_gone(&mut self) -> bool {
        match self {
            Conn::Unix(_) | Conn::Udp(_) => false,
            Conn::Tcp(s) => readable(s) && drained_to_eof(s),
            Conn::Tls(s) => readable(&s.sock) && drained_to_eof(s.as_mut()),
        }
    }
}

fn write_framed(w: &mut impl Write, message: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(message.len() + 8);
    frame.extend_from_slice(message.len().to_string().as_bytes());
    frame.push(b' ');
    frame.extend_from_slice(message);
    w.write_all(&frame)
}

fn readable(s: &TcpStream) -> bool {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Reads what the peer sent without waiting (TLS: session tickets and
/// alerts, consumed by rustls): true at end of stream or on an error.
fn drained_to_eof<S: Read + AsSocket>(s: &mut S) -> bool {
    if s.socket().set_nonblocking(true).is_err() {
        return true;
    }
    let mut buf = [0u8; 4096];
    let gone = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break true,
        }
    };
    gone || s.socket().set_nonblocking(false).is_err()
}

trait AsSocket {
    fn socket(&self) -> &TcpStream;
}

impl AsSocket for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl AsSocket for TlsStream {
    fn socket(&self) -> &TcpStream {
        &self.sock
    }
}

fn connect(dest: &Destination) -> io::Result<Conn> {
    let c = &dest.config;
    if c.transport == Transport::Local {
        let s = UnixDatagram::unbound()?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.connect(&c.address)?;
        return Ok(Conn::Unix(s));
    }
    let (host, port) = c
        .host_port()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address is not host:port"))?;
    let addrs: Vec<_> = (host, port).to_socket_addrs()?.collect();
    if c.transport == Transport::Udp {
        let addr = addrs
            .first()
            .ok_or_else(|| io::Error::other(format!("{host} has no address")))?;
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let s = UdpSocket::bind(bind)?;
        s.connect(addr)?;
        return Ok(Conn::Udp(s));
    }
    let mut last = io::Error::other(format!("{host} has no address"));
    let mut tcp = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, IO_TIMEOUT) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let Some(tls) = &dest.tls else {
        return Ok(Conn::Tcp(tcp));
    };
    let server = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    let session = rustls::ClientConnection::new(Arc::clone(tls), server)
        .map_err(|e| io::Error::other(format!("TLS with {host}: {e}")))?;
    let mut stream = rustls::StreamOwned::new(session, tcp);
    // The handshake now, not with the first record: a refused certificate
    // is said as such, naming the host and why.
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            let _ = stream.sock.shutdown(Shutdown::Both);
            return Err(tls_error(host, c, e));
        }
    }
    Ok(Conn::Tls(Box::new(stream)))
}

/// A TLS failure as an operator can act on it.
fn tls_error(host: &str, c: &Syslog, e: io::Error) -> io::Error {
    let ca = c
        .ca_file
        .as_deref()
        .unwrap_or(Path::new(SYSTEM_CA_FILE))
        .display()
        .to_string();
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let text = match inner {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let why = match cert {
                rustls::CertificateError::UnknownIssuer => {
                    format!("it is not signed by a CA in {ca}")
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    format!("it is not issued for the name {host:?}")
                }
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => "it has expired".into(),
                other => other.to_string(),
            };
            format!("TLS: the certificate of {host} is refused: {why}")
        }
        Some(other) => format!("TLS handshake with {host} failed: {other}"),
        None => format!("TLS handshake with {host} failed: {e}"),
    };
    io::Error::new(io::ErrorKind::PermissionDenied, text)
}

fn tls_config(c: &Syslog) -> Result<rustls::ClientConfig, String> {
    let ca_file: PathBuf = c
        .ca_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
    let mut roots = rustls::RootCertStore::empty();
    let certs = read_certs(&ca_file, "ca_file")?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "ca_file {}: no usable CA certificate in it",
            ca_file.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match (&c.client_cert, &c.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client_cert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("client_key {}: no private key read: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client_cert and client_key do not go together: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: cannot read certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::record::samples;

    fn format(transport: Transport) -> Format {
        Format {
            transport,
            facility: 16,
            app_name: "netio".into(),
            hostname: "db1".into(),
            pid: 42,
        }
    }

    #[test]
    fn every_field_name_fits_an_sd_param_name() {
        for r in samples() {
            for (name, _) in &r.fields {
                assert!(valid_param_name(name), "{name}");
            }
        }
    }

    #[test]
    fn rfc5424_carries_every_field_but_message_as_escaped_structured_data() {
        let r = Record::degraded("a\"b\\c]d", 3, Some(4), "x");
        let t = UNIX_EPOCH + Duration::from_micros(1_714_566_896_123_456);
        let m = String::from_utf8(format(Transport::Tcp).render(&r, t).unwrap()).unwrap();
        // local0 (16) * 8 + warning (4).
        let head =
            "<132>1 2024-05-01T12:34:56.123456Z db1 netio 42 degraded [netio@32473 MESSAGE_ID=\"";
        assert!(m.starts_with(head), "{m}");
        assert!(
            m.contains(r#" NETIO_REASON="a\"b\\c\]d" NETIO_COUNT="3" NETIO_LOST_BYTES="4"]"#),
            "{m}"
        );
        assert!(
            m.ends_with("] netio degraded: a\"b\\c]d count=3 lost_bytes=4 (x)"),
            "{m}"
        );
        assert!(!m.contains("MESSAGE=\""), "{m}");
    }

    #[test]
    fn local_messages_are_rfc3164_with_the_summary() {
        let r = Record::stopping("1.2");
        let m = String::from_utf8(
            format(Transport::Local)
                .render(&r, SystemTime::now())
                .unwrap(),
        )
        .unwrap();
        let (pri, rest) = m.split_once('>').unwrap();
        assert_eq!(pri, "<133");
        // "Mmm dd hh:mm:ss " is 16 bytes.
        assert_eq!(&rest[16..], "netio[42]: netio 1.2 stopping", "{m}");
    }

    #[test]
    fn frames_are_octet_counted() {
        let mut out = Vec::new();
        write_framed(&mut out, "héllo".as_bytes()).unwrap();
        assert_eq!(out, "6 héllo".as_bytes());
    }
}
