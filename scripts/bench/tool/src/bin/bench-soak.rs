//! The soak benchmark's traffic: servers that count every byte they move,
//! and clients that come from a new loopback address every second.
//!
//!     bench-soak server --mode fork|long
//!     bench-soak client --fork-port P --long-port Q --secs N [OPTIONS]
//!
//! A server listens on 127.0.0.1 and prints `ready port=N`. `fork` serves
//! each connection in a child it forks (fork-per-connection, as PostgreSQL
//! does; the children keep its name); `long` serves every connection itself,
//! on a thread of its own. On SIGTERM it stops accepting, finishes what it
//! serves and prints its ground truth, `{"sent":S,"received":R,
//! "connections":C}`: the sum of its system calls' return values.
//!
//! A connection: the client sends an 8-byte little-endian count D and its
//! upload, half-closes; the server reads to EOF, sends D bytes and closes.
//!
//! The client, each second i of --secs, binds to a new address (the i-th of
//! 127.1.0.1, 127.1.0.2, ...: bind before connect) and makes --fork-conns
//! connections to the forking server and --long-conns to the long-lived one,
//! each uploading --up bytes and downloading --down. Every --heavy-every
//! seconds a heavy client from a new address of 127.2.x.y downloads
//! --heavy-rate bytes a second from the long-lived server for --heavy-secs:
//! one client above a per-peer threshold. It prints what it did at the end.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

const CHUNK: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes moved, from system calls' return values only.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    received: AtomicU64,
    connections: AtomicU64,
}

fn args() -> Vec<(String, String)> {
    let a: Vec<String> = std::env::args().skip(2).collect();
    a.chunks(2)
        .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
        .collect()
}

fn opt(args: &[(String, String)], key: &str, default: u64) -> Result<u64, String> {
    match args.iter().find(|(k, _)| k == key) {
        None => Ok(default),
        Some((_, v)) => v
            .parse()
            .map_err(|_| format!("{key}: {v:?} is not a number")),
    }
}

/// The server's half of a connection: read to EOF, send what was asked.
fn serve(mut s: &TcpStream, t: &Tally) -> std::io::Result<()> {
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let mut buf = vec![0u8; CHUNK];
    let mut head = Vec::with_capacity(8);
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        t.received.fetch_add(n as u64, Ordering::Relaxed);
        let want = 8 - head.len().min(8);
        head.extend_from_slice(&buf[..n.min(want)]);
    }
    let mut left = match head.try_into() {
        Ok(h) => u64::from_le_bytes(h),
        Err(_) => 0,
    };
    while left > 0 {
        let n = match s.write(&buf[..left.min(CHUNK as u64) as usize]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        t.sent.fetch_add(n as u64, Ordering::Relaxed);
        left -= n as u64;
    }
    Ok(())
}

/// Waits up to 200 ms for `fd` to be readable (false on timeout or signal).
fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 200) > 0 }
}

fn server(args: &[(String, String)]) -> Result<(), String> {
    let fork = match args
        .iter()
        .find(|(k, _)| k == "--mode")
        .map(|(_, v)| v.as_str())
    {
        Some("fork") => true,
        Some("long") => false,
        _ => return Err("--mode fork or --mode long".into()),
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("ready port={port}");
    std::io::stdout().flush().ok();
    let t = Arc::new(Tally::default());
    if fork {
        serve_forking(&listener, &t)?;
    } else {
        let mut workers = Vec::new();
        while !STOP.load(Ordering::Relaxed) {
            if !readable(listener.as_raw_fd()) {
                continue;
            }
            let Ok((s, _)) = listener.accept() else {
                continue;
            };
            t.connections.fetch_add(1, Ordering::Relaxed);
            let t = Arc::clone(&t);
            workers.push(std::thread::spawn(move || {
                if let Err(e) = serve(&s, &t) {
                    eprintln!("bench-soak: long server: {e}");
                }
            }));
            workers.retain(|w| !w.is_finished());
        }
        for w in workers {
            let _ = w.join();
        }
    }
    println!(
        "{{\"sent\":{},\"received\":{},\"connections\":{}}}",
        t.sent.load(Ordering::Relaxed),
        t.received.load(Ordering::Relaxed),
        t.connections.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Fork per connection. The children report `sent received` lines (under
/// PIPE_BUF, so they never interleave) on a pipe the parent reads as it goes.
fn serve_forking(listener: &TcpListener, t: &Tally) -> Result<(), String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptors nobody else owns.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut rd = std::fs::File::from(rd);
    let mut pending = String::new();
    let mut children = 0u64;
    let mut drain = |pending: &mut String| {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = rd.read(&mut buf) {
            pending.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let mut it = line
                .split_whitespace()
                .map(|x| x.parse::<u64>().unwrap_or(0));
            t.sent.fetch_add(it.next().unwrap_or(0), Ordering::Relaxed);
            t.received
                .fetch_add(it.next().unwrap_or(0), Ordering::Relaxed);
        }
    };
    let reap = |block: bool| -> u64 {
        let mut n = 0;
        // SAFETY: waitpid on any child; a null status pointer is allowed.
        while unsafe {
            libc::waitpid(
                -1,
                std::ptr::null_mut(),
                if block { 0 } else { libc::WNOHANG },
            )
        } > 0
        {
            n += 1;
        }
        n
    };
    while !STOP.load(Ordering::Relaxed) {
        children -= reap(false);
        drain(&mut pending);
        if !readable(listener.as_raw_fd()) {
            continue;
        }
        let Ok((s, _)) = listener.accept() else {
            continue;
        };
        t.connections.fetch_add(1, Ordering::Relaxed);
        // SAFETY: this process is single-threaded, so the child may run on.
        match unsafe { libc::fork() } {
            -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
            0 => {
                let mine = Tally::default();
                let code = match serve(&s, &mine) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("bench-soak: fork server child: {e}");
                        1
                    }
                };
                let line = format!(
                    "{} {}\n",
                    mine.sent.load(Ordering::Relaxed),
                    mine.received.load(Ordering::Relaxed)
                );
                // SAFETY: a plain write of a short line to the inherited pipe.
                unsafe { libc::write(wr.as_raw_fd(), line.as_ptr().cast(), line.len()) };
                // SAFETY: leaves without the parent's exit handlers.
                unsafe { libc::_exit(code) };
            }
            _ => children += 1,
        }
    }
    while children > 0 {
        children -= reap(true);
        drain(&mut pending);
    }
    drop(wr);
    drain(&mut pending);
    Ok(())
}

/// The n-th address of a /16 of 127.0.0.0/8, skipping .0 and .255.
fn address(net: u8, n: u64) -> Ipv4Addr {
    Ipv4Addr::new(127, net, ((n / 254) % 256) as u8, (n % 254 + 1) as u8)
}

/// One connection from `from` (bound before connecting): uploads `up`
/// bytes after the 8-byte request for `down`, then reads to EOF.
fn exchange(from: Ipv4Addr, port: u16, up: u64, down: u64) -> std::io::Result<()> {
    // SAFETY: plain socket creation; ownership moves into OwnedFd at once.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is fresh.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: one is a live c_int of the size given; sa is a full sockaddr_in.
    unsafe {
        // The port is then chosen at connect, by the whole 4-tuple.
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            4,
        );
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(from).to_be();
        if libc::bind(fd.as_raw_fd(), (&sa as *const libc::sockaddr_in).cast(), 16) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        sa.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        sa.sin_port = port.to_be();
        if libc::connect(fd.as_raw_fd(), (&sa as *const libc::sockaddr_in).cast(), 16) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let mut s = TcpStream::from(fd);
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(&down.to_le_bytes())?;
    let buf = vec![5u8; CHUNK];
    let mut left = up;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        s.write_all(&buf[..n])?;
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let got = std::io::copy(&mut s, &mut std::io::sink())?;
    if got != down {
        return Err(std::io::Error::other(format!("got {got} of {down} bytes")));
    }
    Ok(())
}

fn client(args: &[(String, String)]) -> Result<(), String> {
    let fork_port = opt(args, "--fork-port", 0)? as u16;
    let long_port = opt(args, "--long-port", 0)? as u16;
    let secs = opt(args, "--secs", 0)?;
    let fork_conns = opt(args, "--fork-conns", 20)?;
    let long_conns = opt(args, "--long-conns", 5)?;
    let up = opt(args, "--up", 4096)?;
    let down = opt(args, "--down", 16384)?;
    let heavy_every = opt(args, "--heavy-every", 300)?;
    let heavy_secs = opt(args, "--heavy-secs", 60)?;
    let heavy_rate = opt(args, "--heavy-rate", 2 << 20)?;
    if fork_port == 0 || long_port == 0 || secs == 0 {
        return Err("--fork-port, --long-port and --secs are required".into());
    }
    let failures = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let at = move |s: u64| start + Duration::from_secs(s);
    // The heavy clients: one every --heavy-every seconds, from its middle.
    let heavy = {
        let failures = Arc::clone(&failures);
        std::thread::spawn(move || {
            let mut clients = 0u64;
            let mut t = heavy_every / 2;
            while heavy_every > 0 && t + heavy_secs <= secs {
                let from = address(2, clients);
                clients += 1;
                for s in t..t + heavy_secs {
                    std::thread::sleep(at(s).saturating_duration_since(Instant::now()));
                    if let Err(e) = exchange(from, long_port, 0, heavy_rate) {
                        eprintln!("bench-soak: heavy client {from}: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                t += heavy_every;
            }
            clients
        })
    };
    let mut conns = 0u64;
    for i in 0..secs {
        std::thread::sleep(at(i).saturating_duration_since(Instant::now()));
        let from = address(1, i);
        for port in std::iter::repeat_n(fork_port, fork_conns as usize)
            .chain(std::iter::repeat_n(long_port, long_conns as usize))
        {
            conns += 1;
            if let Err(e) = exchange(from, port, up, down) {
                eprintln!("bench-soak: client {from}: {e}");
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let heavy_clients = heavy.join().map_err(|_| "heavy client thread panicked")?;
    println!(
        "{{\"seconds\":{secs},\"addresses\":{secs},\"connections\":{conns},\
         \"fork_conns\":{fork_conns},\"long_conns\":{long_conns},\"up\":{up},\"down\":{down},\
         \"heavy_clients\":{heavy_clients},\"heavy_every\":{heavy_every},\
         \"heavy_secs\":{heavy_secs},\"heavy_rate\":{heavy_rate},\"failures\":{}}}",
        failures.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> ExitCode {
    let a = args();
    let r = match std::env::args().nth(1).as_deref() {
        Some("server") => server(&a),
        Some("client") => client(&a),
        _ => Err("usage: bench-soak server --mode fork|long | client --fork-port P --long-port Q --secs N".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-soak: {e}");
            ExitCode::from(2)
        }
    }
}
