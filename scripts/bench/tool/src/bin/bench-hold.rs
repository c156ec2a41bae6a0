//! Holds many processes and TCP connections on loopback, each with a little
//! traffic, so that netio's own CPU and memory can be measured at scale.
//!
//!     bench-hold --procs N --conns M [--period-ms P] [--bytes B]
//!
//! Forks N children; each connects M times to a listener of its own on
//! 127.0.0.1 (so N x M connections, both ends in one child) and then, every
//! P milliseconds (default 1000), sends B bytes (default 64) each way on each
//! connection: four TCP events per connection per period. Prints
//! `ready procs=N conns=N*M` once every child is set up, then runs until
//! killed; the children die with it (PR_SET_PDEATHSIG).
//! Run it under a name netio's config targets: every child is tracked.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
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
fn child(a: &Args, ready: OwnedFd) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut pairs = Vec::with_capacity(a.conns as usize);
    for _ in 0..a.conns {
        let c = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
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
    let mut next = Instant::now();
    loop {
        for (c, s) in &mut pairs {
            c.write_all(&out).map_err(|e| format!("send: {e}"))?;
            s.read_exact(&mut buf)
                .map_err(|e| format!("receive: {e}"))?;
            s.write_all(&buf).map_err(|e| format!("reply: {e}"))?;
            c.read_exact(&mut buf)
                .map_err(|e| format!("receive reply: {e}"))?;
        }
        next += a.period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
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
    for _ in 0..a.procs {
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
                if let Err(e) = child(&a, ready) {
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
