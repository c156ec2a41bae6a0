//! Ground truth: byte counters fed only from system-call return values, the
//! counted I/O loops that feed them, and the final JSON report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// Largest single read or write; keeps the kernel doing many syscalls so
/// per-call accounting bugs show up.
pub const CHUNK: usize = 64 * 1024;

/// Bytes this process moved over TCP. Shared by all threads of a process.
#[derive(Default)]
pub struct Tally {
    sent: AtomicU64,
    received: AtomicU64,
    peers: Mutex<BTreeSet<String>>,
    connections: AtomicU64,
}

impl Tally {
    pub fn add_sent(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn add_received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Records a connection and the peer address exactly as the kernel gave
    /// it, so tests can see e.g. `::ffff:127.0.0.1` on a dual-stack listener.
    pub fn connection(&self, peer: std::net::IpAddr) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.peers.lock().unwrap().insert(peer.to_string());
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn peers(&self) -> Vec<String> {
        self.peers.lock().unwrap().iter().cloned().collect()
    }
}

/// Deterministic payload; its content is irrelevant, its length is not.
/// Built once: regenerating it per connection made the 5,000-connection
/// scenario CPU-bound in debug builds.
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| (0..CHUNK).map(|i| (i % 251) as u8).collect())
}

/// Writes exactly `total` bytes in writes of at most `chunk`, sleeping
/// `pause` between writes (the trickle of the MSG_WAITALL scenario).
pub fn send_counted(
    mut stream: &TcpStream,
    total: u64,
    chunk: usize,
    pause: Duration,
    tally: &Tally,
) -> io::Result<()> {
    let buf = pattern();
    let chunk = chunk.clamp(1, CHUNK);
    let mut left = total;
    while left > 0 {
        let want = left.min(chunk as u64) as usize;
        let mut off = 0;
        while off < want {
            let n = match stream.write(&buf[off..want]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            tally.add_sent(n);
            off += n;
        }
        left -= want as u64;
        if !pause.is_zero() && left > 0 {
            std::thread::sleep(pause);
        }
    }
    Ok(())
}

/// How often a paced sender tops up to its schedule.
const PACE_TICK: Duration = Duration::from_millis(10);

/// Bytes a phase of `rate` bytes per second has sent `elapsed` into it.
fn scheduled(rate: u64, elapsed: Duration) -> u64 {
    (rate as u128 * elapsed.as_micros() / 1_000_000) as u64
}

/// The total a paced sender sends for `phases`.
pub fn paced_total(phases: &[(u64, Duration)]) -> u64 {
    phases.iter().map(|&(rate, len)| scheduled(rate, len)).sum()
}

/// Sends each phase's `rate` bytes per second for its duration. The
/// schedule is absolute (bytes due since the phase began, topped up every
/// tick), so a late wake-up is caught up rather than lowering the rate.
pub fn send_paced(stream: &TcpStream, phases: &[(u64, Duration)], tally: &Tally) -> io::Result<()> {
    let mut phase_start = Instant::now();
    for &(rate, len) in phases {
        let total = scheduled(rate, len);
        let mut sent = 0u64;
        loop {
            let elapsed = phase_start.elapsed().min(len);
            let due = scheduled(rate, elapsed).min(total);
            if due > sent {
                send_counted(stream, due - sent, CHUNK, Duration::ZERO, tally)?;
                sent = due;
            }
            if sent >= total && elapsed >= len {
                break;
            }
            let next = (elapsed + PACE_TICK).min(len);
            std::thread::sleep(next.saturating_sub(phase_start.elapsed()));
        }
        // The next phase starts when this one was due to end, not when its
        // last write returned.
        phase_start += len;
    }
    Ok(())
}

/// Reads until the peer closes its side; returns the byte count.
pub fn recv_to_eof(mut stream: &TcpStream, tally: &Tally) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                tally.add_received(n);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads exactly `total` bytes; EOF before that is an error.
pub fn recv_exact(mut stream: &TcpStream, total: usize, tally: &Tally) -> io::Result<()> {
    let mut buf = vec![0u8; total.clamp(1, CHUNK)];
    let mut left = total;
    while left > 0 {
        let want = left.min(buf.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("peer closed with {left} of {total} bytes still expected"),
                ))
            }
            Ok(n) => {
                tally.add_received(n);
                left -= n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The one JSON line a run ends with.
pub struct Report {
    pub role: &'static str,
    pub scenario: String,
    /// Bytes per process that did TCP I/O; the forking server fills in one
    /// entry per child.
    pub per_pid: BTreeMap<u32, (u64, u64)>,
    pub connections: u64,
    pub peers: Vec<String>,
    pub extra: Map<String, Value>,
}

impl Report {
    /// A report for a process whose own threads did all the I/O.
    pub fn single(role: &'static str, scenario: &str, tally: &Tally) -> Self {
        let mut per_pid = BTreeMap::new();
        per_pid.insert(crate::sys::pid(), (tally.sent(), tally.received()));
        Self {
            role,
            scenario: scenario.to_owned(),
            per_pid,
            connections: tally.connections(),
            peers: tally.peers(),
            extra: Map::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        let sent: u64 = self.per_pid.values().map(|b| b.0).sum();
        let received: u64 = self.per_pid.values().map(|b| b.1).sum();
        let per_pid: Map<String, Value> = self
            .per_pid
            .iter()
            // A process that moved nothing is not something netio reports.
            .filter(|(_, b)| b.0 != 0 || b.1 != 0)
            .map(|(pid, b)| (pid.to_string(), json!({"sent": b.0, "received": b.1})))
            .collect();
        json!({
            "role": self.role,
            "scenario": self.scenario,
            "pid": crate::sys::pid(),
            "comm": crate::sys::comm(),
            "sent": sent,
            "received": received,
            "per_pid": per_pid,
            "connections": self.connections,
            "peers": self.peers,
            "extra": self.extra,
        })
    }

    pub fn print(&self) {
        println!("{}", self.to_json());
    }
}
