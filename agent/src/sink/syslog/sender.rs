//! The thread that delivers one destination's queue: connections per
//! transport, framing, noticing a collector that went away, and backoff.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::ServerName;

use super::format::Format;
use super::tls::tls_error;
use super::{dropped_record, Item, Shared};
use crate::config::{Syslog, Transport};

/// The first wait before reconnecting, doubled after each failure up to
/// `MAX_BACKOFF`: a collector that restarts is found again within seconds,
/// and one that is down for hours costs a connection attempt every few.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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

/// The sender thread: delivers the queue's head until it is sent, then the
/// next, so records reach the collector in order and none is skipped.
pub(super) fn send_loop(shared: &Shared, dest: &Destination) {
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
                        tell!("netio: syslog {name}: {e}");
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
                    tell!("netio: syslog {name}: delivering records again");
                }
            }
            Err(e) => {
                conn = None;
                let why = e.to_string();
                if failing.as_deref() != Some(why.as_str()) {
                    tell!("netio: syslog {name}: {why}; records wait in its queue and are retried");
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
