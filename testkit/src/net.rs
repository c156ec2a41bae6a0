//! Loopback-only socket setup: listeners (including an explicit dual-stack
//! one), connects and accepts that can never block past a timeout, on a
//! TCP address or a Unix socket.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::unix::{self, UnixAddr};

/// Where a server listens and its clients connect: a loopback TCP address,
/// or a Unix socket (unix.rs).
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(UnixAddr),
}

/// What a Unix connection's peer address is recorded as: it has none.
pub const NO_ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Endpoint {
    /// The peer's address for the tally: a Unix socket's is NO_ADDRESS's.
    pub fn ip(&self) -> IpAddr {
        match self {
            Endpoint::Tcp(a) => a.ip(),
            Endpoint::Unix(_) => NO_ADDRESS.ip(),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => a.fmt(f),
            Endpoint::Unix(u) => write!(f, "unix:{}", u.path.display()),
        }
    }
}

pub fn listen_on(ep: &Endpoint) -> io::Result<TcpListener> {
    match ep {
        Endpoint::Tcp(a) => listen(*a),
        Endpoint::Unix(u) => unix::listen(u),
    }
}

pub fn connect_to(ep: &Endpoint, timeout: Duration) -> io::Result<TcpStream> {
    match ep {
        Endpoint::Tcp(a) => connect(*a, timeout),
        Endpoint::Unix(u) => {
            let stream = unix::connect(u)?;
            set_timeouts(&stream, timeout)?;
            Ok(stream)
        }
    }
}

/// Refuses anything that is not a loopback or wildcard address: this tool
/// must never send a byte off the machine.
fn check_local(addr: &SocketAddr, wildcard_ok: bool) -> io::Result<()> {
    let ip = addr.ip();
    let mapped_loopback = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    };
    if ip.is_loopback() || mapped_loopback || (wildcard_ok && ip.is_unspecified()) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} is not a loopback address"),
        ))
    }
}

fn setsockopt_int(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: value is a live c_int and its size is passed.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Binds and listens. IPv6 listeners get IPV6_V6ONLY=0 explicitly: the
/// dual-stack scenario must not depend on the `bindv6only` sysctl.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    check_local(&addr, true)?;
    let SocketAddr::V6(v6) = addr else {
        return TcpListener::bind(addr);
    };
    // SAFETY: plain socket creation; ownership moves into OwnedFd at once.
    let raw = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    setsockopt_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0)?;
    setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = v6.port().to_be();
    sa.sin6_addr.s6_addr = v6.ip().octets();
    sa.sin6_flowinfo = v6.flowinfo();
    sa.sin6_scope_id = v6.scope_id();
    // SAFETY: sa is a fully initialised sockaddr_in6 of the size given.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen on our bound socket.
    if unsafe { libc::listen(fd.as_raw_fd(), 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(fd))
}

/// Waits at most `timeout` for a connection, so a server whose client never
/// shows up fails instead of hanging.
pub fn accept(listener: &TcpListener, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: pfd is one valid pollfd.
        let ret = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if ret == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            ));
        }
        break;
    }
    let (stream, peer) = if unix::is_unix(listener) {
        (unix::accept(listener)?, NO_ADDRESS)
    } else {
        listener.accept()?
    };
    set_timeouts(&stream, timeout)?;
    Ok((stream, peer))
}

pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    check_local(&addr, false)?;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    set_timeouts(&stream, timeout)?;
    Ok(stream)
}

/// Connects from the loopback address `from` (bound first, any port).
pub fn connect_from(addr: SocketAddr, from: Ipv4Addr, timeout: Duration) -> io::Result<TcpStream> {
    check_local(&addr, false)?;
    check_local(&SocketAddr::from((from, 0)), false)?;
    let SocketAddr::V4(to) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a source address needs an IPv4 destination",
        ));
    };
    // SAFETY: plain socket creation; ownership moves into OwnedFd at once.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(from).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sin is a fully initialised sockaddr_in of the size given.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let stream = TcpStream::from(fd);
    set_timeouts(&stream, timeout)?;
    crate::sys::connect_v4(&stream, to)?;
    Ok(stream)
}

/// Bounds every later read, write, sendfile and splice on the socket.
pub fn set_timeouts(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))
}
