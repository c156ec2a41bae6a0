//! The thread that delivers one destination's queue: connections per
//! transport, framing, noticing a collector that went away, and backoff.
//!
//! TCP says nothing of what the collector read, so a stream connection
//! proves itself by staying up: records sent on it are in flight until it
//! has been up `STABLE`, and lost (counted) if the collector ends it
//! before then, unless it closed cleanly with every byte acknowledged (on
//! Linux a socket closed with unread data resets the connection). A
//! collector that accepts and closes at once therefore loses no record
//! uncounted, and the backoff, which only a connection that stayed up
//! resets, keeps netio from reconnecting at full speed.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::ServerName;

use super::format::Format;
use super::tls::tls_error;
use super::{dropped_record, Item, Losses, Shared, State};
use crate::config::{Syslog, Transport};

/// The first wait before reconnecting, doubled after each failure up to
/// `MAX_BACKOFF`: a collector that restarts is found again within seconds,
/// and one that is down for hours costs a connection attempt every few.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a stream connection must stay up before what was sent on it
/// counts as delivered, and before the backoff resets: a collector that
/// refuses a client (a TLS alert) or a record (closing on it) does so
/// within milliseconds.
pub(super) const STABLE: Duration = Duration::from_secs(1);

/// How long a connection attempt or one message's send may take. A send
/// that takes longer (a collector that stopped reading) is treated as a
/// broken connection: the message is sent again on a new one.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how the sender thread connects.
pub(super) struct Destination {
    pub(super) config: Syslog,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) format: Format,
}

/// A connection and what was sent on it before it proved itself.
struct Link {
    conn: Conn,
    opened: Instant,
    /// Up for `STABLE` (datagram transports: from the start).
    proven: bool,
    /// What was sent on it while not proven, in order: the bytes on the
    /// wire of each, and for a gap record the losses it reported (told
    /// again if it is lost).
    sent: Vec<(usize, Option<Losses>)>,
}

/// The sender's state between messages.
struct Sender<'a> {
    shared: &'a Shared,
    dest: &'a Destination,
    name: String,
    link: Option<Link>,
    backoff: Duration,
    /// No connection attempt before this (a connection ended unproven).
    not_before: Option<Instant>,
    /// The last failure said on stderr: each new one is said once, and
    /// recovery once.
    failing: Option<String>,
}

/// The sender thread: delivers the queue's head until it is sent or known
/// unsendable, then the next, so records reach the collector in order.
pub(super) fn send_loop(shared: &Shared, dest: &Destination) {
    let mut s = Sender {
        shared,
        dest,
        name: dest.config.describe(),
        link: None,
        backoff: MIN_BACKOFF,
        not_before: None,
        failing: None,
    };
    loop {
        let head = {
            let mut st = shared.lock();
            loop {
                if let Some(item) = st.items.front() {
                    break Some(match item {
                        Item::Message(m) => (Ok(m.clone()), st.closing),
                        Item::Gap(l) => (Err(*l), st.closing),
                    });
                }
                // Nothing to send: wait, but not past the moment the link
                // in flight proves itself or not.
                let proving = s
                    .link
                    .as_ref()
                    .filter(|l| !l.proven)
                    .map(|l| l.opened + STABLE);
                if st.closing && proving.is_none() {
                    break None;
                }
                st = match proving {
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break Some((Err(Losses::default()), st.closing));
                        }
                        shared
                            .queued
                            .wait_timeout(st, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => shared.queued.wait(st).unwrap_or_else(|e| e.into_inner()),
                };
            }
        };
        let Some((item, closing)) = head else {
            let mut st = shared.lock();
            st.done = true;
            shared.drained.notify_all();
            return;
        };
        // Right before sending, after any wait: a collector that went away
        // while the queue was empty must not take the next record with it
        // (the write would succeed, into a socket the collector no longer
        // reads). A link it ended may have put a gap record at the head.
        if s.check_link() {
            continue;
        }
        let (message, gap) = match item {
            Ok(m) => (m, None),
            // Woken to check the link in flight: nothing to send.
            Err(l) if l.total() == 0 => continue,
            Err(l) => match dest.format.render(
                &dropped_record(&s.name, dest.config.queue as usize, &l),
                SystemTime::now(),
            ) {
                Ok(m) => (m, Some(l)),
                Err(e) => {
                    tell!("netio: syslog {}: {e}", s.name);
                    pop(shared);
                    continue;
                }
            },
        };
        if s.deliver(&message, gap, closing).is_break() {
            let mut st = shared.lock();
            st.done = true;
            shared.drained.notify_all();
            return;
        }
    }
}

impl Sender<'_> {
    /// Sends the queue's head (`gap`: it is a gap record for these
    /// losses). Break: closing and the collector is not reachable.
    fn deliver(
        &mut self,
        message: &[u8],
        gap: Option<Losses>,
        closing: bool,
    ) -> std::ops::ControlFlow<()> {
        if self.link.is_none() {
            if let Some(at) = self.not_before.take() {
                // At exit, a collector that just failed gets no more tries:
                // what is left is counted as not delivered.
                if closing {
                    return std::ops::ControlFlow::Break(());
                }
                wait_until(self.shared, at);
            }
            match connect(self.dest) {
                Ok(conn) => {
                    let datagram = matches!(conn, Conn::Unix(_) | Conn::Udp(_));
                    self.link = Some(Link {
                        conn,
                        opened: Instant::now(),
                        proven: datagram,
                        sent: Vec::new(),
                    });
                }
                Err(e) => return self.failed(&e.to_string(), closing),
            }
        }
        let link = self.link.as_mut().expect("connected above");
        match link.conn.send(message) {
            Ok(()) => {
                let proven = link.proven;
                if !proven {
                    link.sent.push((link.conn.wire_len(message.len()), gap));
                }
                let mut st = self.shared.lock();
                pop_locked(self.shared, &mut st);
                if !proven && gap.is_none() {
                    st.in_flight += 1;
                }
                drop(st);
                if proven {
                    self.recovered();
                }
                std::ops::ControlFlow::Continue(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                // Never sendable on this transport: dropped in its place,
                // counted, and the queue moves on.
                tell_limited!(
                    "syslog record too large",
                    "netio: syslog {}: a record of {} bytes is too large for {} ({e}): dropped and counted",
                    self.name,
                    message.len(),
                    self.dest.config.transport.name()
                );
                let mut st = self.shared.lock();
                if let Some(Item::Message(_)) = st.items.pop_front() {
                    st.messages -= 1;
                    st.unreported.add(Losses::too_large(1));
                    push_gap(&mut st, Losses::too_large(1));
                }
                std::ops::ControlFlow::Continue(())
            }
            Err(e) => {
                let why = self
                    .end_link(Some(e.to_string()), 0)
                    .unwrap_or_else(|| e.to_string());
                self.failed(&why, closing)
            }
        }
    }

    /// A failure: said once per cause, then a wait that doubles.
    fn failed(&mut self, why: &str, closing: bool) -> std::ops::ControlFlow<()> {
        if self.failing.as_deref() != Some(why) {
            tell!(
                "netio: syslog {}: {why}; records wait in its queue and are retried",
                self.name
            );
            self.failing = Some(why.to_string());
        }
        if closing {
            return std::ops::ControlFlow::Break(());
        }
        // An unproven link that ended set the wait already.
        if self.not_before.is_none() {
            self.not_before = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
        std::ops::ControlFlow::Continue(())
    }

    fn recovered(&mut self) {
        if self.failing.take().is_some() {
            tell!("netio: syslog {}: delivering records again", self.name);
        }
    }

    /// Before each message and when a link in flight is due: a link that
    /// stayed up `STABLE` proves itself; one the collector ended is let go
    /// (true).
    fn check_link(&mut self) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        match link.conn.peer() {
            Peer::Up if !link.proven && link.opened.elapsed() >= STABLE => {
                link.proven = true;
                let n = link.sent.drain(..).filter(|(_, g)| g.is_none()).count();
                self.shared.lock().in_flight -= n as u64;
                self.backoff = MIN_BACKOFF;
                self.recovered();
            }
            Peer::Up => {}
            Peer::Gone(why, unacked) => {
                if let Some(why) = self.end_link(why, unacked) {
                    if self.failing.as_deref() != Some(why.as_str()) {
                        tell!("netio: syslog {}: {why}", self.name);
                        self.failing = Some(why);
                    }
                }
                return true;
            }
        }
        false
    }

    /// Drops the link, which ended because of `why` (None: a clean close,
    /// `unacked` bytes at the end of what was sent not acknowledged). One
    /// that had not proven itself delays the next attempt and counts as
    /// lost what was in flight on it: all of it after a reset or a TLS
    /// alert, after a clean close the records not acknowledged (the
    /// collector read the rest: on Linux a socket closed with unread data
    /// resets the connection). Returns what to say.
    fn end_link(&mut self, why: Option<String>, unacked: usize) -> Option<String> {
        let link = self.link.take()?;
        if link.proven {
            return None;
        }
        self.not_before = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        let messages = link.sent.iter().filter(|(_, g)| g.is_none()).count() as u64;
        let lost_from = match &why {
            Some(_) => 0,
            None => {
                let (mut i, mut bytes) = (link.sent.len(), 0);
                while i > 0 && bytes < unacked {
                    i -= 1;
                    bytes += link.sent[i].0;
                }
                i
            }
        };
        let mut st = self.shared.lock();
        st.in_flight -= messages;
        let lost_sent = &link.sent[lost_from..];
        if lost_sent.is_empty() {
            return None;
        }
        let why = why.unwrap_or_else(|| format!("closed with {unacked} bytes not acknowledged"));
        let lost =
            Losses::unconfirmed(lost_sent.iter().filter(|(_, g)| g.is_none()).count() as u64);
        st.unreported.add(lost);
        let mut told = lost;
        for (_, g) in lost_sent {
            if let Some(g) = g {
                told.add(*g);
            }
        }
        if told.total() > 0 && !st.closing {
            push_gap(&mut st, told);
        }
        drop(st);
        // How each ended varies (a reset, bytes left): said within a limit,
        // the fixed line below once per spell of failures.
        tell_limited!(
            "syslog connection ended early",
            "netio: syslog {}: the collector ended a connection: {why}",
            self.name
        );
        Some(format!(
            "the collector ended the connection within {} s of accepting it; records sent on it are counted as lost, and reconnecting backs off",
            STABLE.as_secs()
        ))
    }
}

/// Puts losses at the head of the queue, merged with a gap already there.
fn push_gap(st: &mut State, lost: Losses) {
    if let Some(Item::Gap(l)) = st.items.front_mut() {
        l.add(lost);
    } else {
        st.items.push_front(Item::Gap(lost));
    }
}

/// Removes the delivered head of the queue.
fn pop(shared: &Shared) {
    let mut st = shared.lock();
    pop_locked(shared, &mut st);
}

fn pop_locked(shared: &Shared, st: &mut State) {
    if let Some(Item::Message(_)) = st.items.pop_front() {
        st.messages -= 1;
    }
    if st.items.is_empty() {
        shared.drained.notify_all();
    }
}

/// Sleeps until `at`, or less if closing begins (then one last attempt
/// follows).
fn wait_until(shared: &Shared, at: Instant) {
    let mut st = shared.lock();
    while !st.closing {
        let left = at.saturating_duration_since(Instant::now());
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

/// A connection's other end, as seen without waiting.
enum Peer {
    Up,
    /// Gone: how (a reset, a TLS alert), or None for a clean close with
    /// this many bytes sent not acknowledged.
    Gone(Option<String>, usize),
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
    fn peer(&mut self) -> Peer {
        let gone = match self {
            Conn::Unix(_) | Conn::Udp(_) => None,
            Conn::Tcp(s) if readable(s) => drained_to_eof(s),
            Conn::Tls(s) if readable(&s.sock) => drained_to_eof(s.as_mut()),
            Conn::Tcp(_) | Conn::Tls(_) => None,
        };
        let sock = match self {
            Conn::Tcp(s) => &*s,
            Conn::Tls(s) => &s.sock,
            Conn::Unix(_) | Conn::Udp(_) => return Peer::Up,
        };
        match gone {
            None => Peer::Up,
            Some(Some(why)) => Peer::Gone(Some(why), 0),
            Some(None) => Peer::Gone(None, unacknowledged(sock)),
        }
    }

    /// Bytes a message of `len` takes on the wire, at least: its frame,
    /// and in TLS a record's header and tag.
    fn wire_len(&self, len: usize) -> usize {
        let frame = len + len.to_string().len() + 1;
        match self {
            Conn::Tls(_) => frame + 22,
            _ => frame,
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

/// Bytes sent that the peer's TCP has not acknowledged (SIOCOUTQ).
fn unacknowledged(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int through the pointer.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if rc < 0 {
        usize::MAX
    } else {
        n.max(0) as usize
    }
}

/// Reads what the peer sent without waiting (TLS: session tickets and
/// alerts, consumed by rustls): None while it is up; at the end of the
/// stream Some(None), on an error (a reset, a TLS alert) Some(it).
fn drained_to_eof<S: Read + AsSocket>(s: &mut S) -> Option<Option<String>> {
    if let Err(e) = s.socket().set_nonblocking(true) {
        return Some(Some(e.to_string()));
    }
    let mut buf = [0u8; 4096];
    let gone = loop {
        match s.read(&mut buf) {
            Ok(0) => break Some(None),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(Some(e.to_string())),
        }
    };
    match s.socket().set_nonblocking(false) {
        Err(e) if gone.is_none() => Some(Some(e.to_string())),
        _ => gone,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_octet_counted() {
        let mut out = Vec::new();
        write_framed(&mut out, "héllo".as_bytes()).unwrap();
        assert_eq!(out, "6 héllo".as_bytes());
    }
}
