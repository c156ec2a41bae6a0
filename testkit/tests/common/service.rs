//! netio as a service manager runs it: the manager's end of the notify
//! socket (READY=1, the watchdog), a netio killed if a test leaves it
//! running, and the unit's durations as netio.service writes them.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Idle, Scratch};

/// A 100 ms config of `targets` targets whose names are `name_len` bytes
/// long, each running an idle process (a target that runs nothing is said
/// once): large records every interval, to fill an output that is not read.
/// The processes live as long as the returned `Idle`s.
pub fn loud_config(scratch: &Scratch, targets: usize, name_len: usize) -> (PathBuf, Vec<Idle>) {
    let names: Vec<String> = (0..targets)
        .map(|i| format!("t{i}-{}", "n".repeat(name_len)))
        .collect();
    let idle: Vec<Idle> = (0..targets).map(|_| Idle::start(scratch)).collect();
    let procs: Vec<Vec<&str>> = idle.iter().map(|p| vec![p.name.as_str()]).collect();
    let targets: Vec<(&str, &[&str])> = names
        .iter()
        .zip(&procs)
        .map(|(n, p)| (n.as_str(), p.as_slice()))
        .collect();
    (super::write_config(scratch, "100ms", &targets), idle)
}

/// The service manager's end of the notify socket: each message with the
/// time it came.
pub struct Notify {
    pub path: std::path::PathBuf,
    got: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
}

impl Notify {
    pub fn new(scratch: &Scratch) -> Self {
        let path = scratch.path("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = std::sync::Arc::clone(&got);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                g.lock().unwrap().push((Instant::now(), msg));
            }
        });
        Notify { path, got }
    }

    pub fn has(&self, line: &str) -> bool {
        self.got
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.lines().any(|l| l == line))
    }

    /// Asserts that WATCHDOG=1 came from `since` to now with no gap of
    /// `watchdog` (WATCHDOG_USEC) or more, `while_` saying what was going on.
    pub fn assert_beating(&self, since: Instant, watchdog: Duration, while_: &str) {
        let beats = self.beats(since);
        let shown: Vec<Duration> = beats.iter().map(|b| *b - since).collect();
        let mut last = since;
        for at in beats.iter().chain([&Instant::now()]) {
            assert!(
                *at - last < watchdog,
                "no WATCHDOG=1 for {:?} while {while_} (WATCHDOG_USEC {watchdog:?}): beats {shown:?}",
                *at - last,
            );
            last = *at;
        }
    }

    /// When each WATCHDOG=1 came, from `since` on.
    pub fn beats(&self, since: Instant) -> Vec<Instant> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, m)| *at >= since && m == "WATCHDOG=1")
            .map(|(at, _)| *at)
            .collect()
    }
}

/// A child killed when dropped (a netio that did not stop).
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    /// SIGTERM, and asserts that netio exits, successfully, within the
    /// unit's TimeoutStopSec, `while_` saying what was going on.
    pub fn stops_in_time(&mut self, while_: &str) {
        let limit = unit_duration(&super::unit::setting("TimeoutStopSec"));
        let asked = Instant::now();
        // SAFETY: kill on our own child.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let status = loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                asked.elapsed() < limit,
                "netio did not exit within TimeoutStopSec={limit:?} of SIGTERM while {while_}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "netio exited with {status}");
    }
}

/// A unit duration such as `30s` or `2min` as netio.service writes it.
pub fn unit_duration(text: &str) -> Duration {
    let (n, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = n.parse().expect("a number");
    match unit {
        "" | "s" => Duration::from_secs(n),
        "min" => Duration::from_secs(n * 60),
        other => panic!("unit {other} in {text}"),
    }
}
