//! Holds many processes and TCP connections on loopback, each with a little
//! traffic, so that netio's own CPU and memory can be measured at scale.
//!
//!     bench-hold --procs N --conns M [--period-ms P] [--bytes B]
//!
//! Forks N children; each connects M times to a listener of its own on an
//! address of its own, the i-th child's 127.100.0.1 + i (so N x M
//! connections, both ends in one child, one peer address per child, and no
//! child's ports limit another's: 100,000 connections from one address would
//! not fit its ephemeral ports) and then, every
//! P milliseconds (default 1000), sends B bytes (default 64) each way on each
//! connection: four TCP events per connection per period, the children's
//! exchanges spread over the period, and missed periods skipped. Prints
//! `ready procs=N conns=N*M` once every child is set up, then runs until
//! killed; the children die with it (PR_SET_PDEATHSIG).
//! Run it under a name netio's config targets: every child is tracked.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    procs: u32,
    conns: u32,
    period: Duration,
    bytes: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        procs: 0,
        conns: 0,
        period: Duration::from_millis(1000),
        bytes: 64,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [k, v] = pair else {
            return Err(format!("{} needs a value", pair[0]));
        };
        let n: u64 = v
            .parse()
            .map_err(|_| format!("{k}: {v:?} is not a number"))?;
        match k.as_str() {
            "--procs" => a.procs = n as u32,
            "--conns" => a.conns = n as u32,
            "--period-ms" => a.period = Duration::from_millis(n),
            "--bytes" => a.bytes = n as usize,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.procs == 0 || a.conns == 0 || a.bytes == 0 {
        return Err("--procs, --conns and --bytes must be at least 1".into());
    }
    Ok(a)
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both are fresh descriptors nobody else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The child's life: set up its connections, say so on `ready`, then
/// exchange B bytes each way on each of them every period, forever.
fn child(a: &Args, index: u32, ready: OwnedFd) -> Result<(), String> {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 100, 0, 1)) + index);
    let listener = TcpListener::bind((ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut pairs = Vec::with_capacity(a.conns as usize);
    for _ in 0..a.conns {
        let c = connect_from(ip, addr).map_err(|e| format!("connect: {e}"))?;
        let (s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        c.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        pairs.push((c, s));
    }
    let mut ready = std::fs::File::from(ready);
    ready
        .write_all(b"+")
        .map_err(|e| format!("report ready: {e}"))?;
    drop(ready);
    let out = vec![7u8; a.bytes];
    let mut buf = vec![0u8; a.bytes];
    // Each child's first exchange at its own point of the period, so the
    // load is spread evenly rather than all children waking at once.
    let phase = a.period.mul_f64(f64::from(index) / f64::from(a.procs));
    let mut next = Instant::now() + phase;
    std::thread::sleep(phase);
    loop {
        for (c, s) in &mut pairs {
            c.write_all(&out).map_err(|e| format!("send: {e}"))?;
            s.read_exact(&mut buf)
                .map_err(|e| format!("receive: {e}"))?;
            s.write_all(&buf).map_err(|e| format!("reply: {e}"))?;
            c.read_exact(&mut buf)
                .map_err(|e| format!("receive reply: {e}"))?;
        }
        // A child that fell behind (the host busy) skips the periods it
        // missed instead of running them back to back: catching up would
        // ask more of a loaded host than the nominal rate and, with
        // thousands of children, never let it recover.
        next += a.period;
        let now = Instant::now();
        if next < now {
            next = now + a.period;
        }
        std::thread::sleep(next.saturating_duration_since(now));
    }
}

/// A connection from `ip` (bound before connecting, the port chosen at
/// connect by the whole 4-tuple) to `to`.
fn connect_from(ip: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        return Err(std::io::Error::other("not IPv4"));
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| {
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(ip).to_be();
        sa.sin_port = port.to_be();
        sa
    };
    // SAFETY: plain socket creation; ownership moves into OwnedFd at once.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is fresh.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    let (from, dest) = (sockaddr(ip, 0), sockaddr(*to.ip(), to.port()));
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: one is a live c_int of the size given; the sockaddrs are whole.
    let ok = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
            && libc::bind(
                fd.as_raw_fd(),
                (&from as *const libc::sockaddr_in).cast(),
                len,
            ) == 0
            && libc::connect(
                fd.as_raw_fd(),
                (&dest as *const libc::sockaddr_in).cast(),
                len,
            ) == 0
    };
    if !ok {
        return Err(std::io::Error::last_os_error());
    }
    Ok(TcpStream::from(fd))
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "bench-hold: {e}\nusage: bench-hold --procs N --conns M [--period-ms P] [--bytes B]"
            );
            return ExitCode::from(2);
        }
    };
    let (rd, wr) = pipe();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    if a.procs > 1 << 23 {
        eprintln!(
            "bench-hold: at most {} processes (their addresses)",
            1 << 23
        );
        return ExitCode::from(2);
    }
    for index in 0..a.procs {
        // SAFETY: this process is single-threaded, so the child may go on
        // running Rust code after fork.
        match unsafe { libc::fork() } {
            -1 => {
                eprintln!("bench-hold: fork: {}", std::io::Error::last_os_error());
                return ExitCode::FAILURE;
            }
            0 => {
                // SAFETY: prctl and getppid have no memory preconditions.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                }
                drop(rd);
                let ready = wr.try_clone().expect("dup the ready pipe");
                drop(wr);
                if let Err(e) = child(&a, index, ready) {
                    eprintln!("bench-hold: child: {e}");
                }
                // SAFETY: leaves without running the parent's exit handlers.
                unsafe { libc::_exit(1) };
            }
            _ => {}
        }
    }
    drop(wr);
    let mut rd = std::fs::File::from(rd);
    let mut got = 0u32;
    let mut buf = [0u8; 256];
    while got < a.procs {
        match rd.read(&mut buf) {
            Ok(0) => {
                eprintln!("bench-hold: only {got} of {} children got ready", a.procs);
                return ExitCode::FAILURE;
            }
            Ok(n) => got += n as u32,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("bench-hold: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "ready procs={} conns={}",
        a.procs,
        u64::from(a.procs) * u64::from(a.conns)
    );
    loop {
        // SAFETY: pause has no preconditions; SIGTERM ends the process and
        // the children follow through PR_SET_PDEATHSIG.
        unsafe { libc::pause() };
    }
}
