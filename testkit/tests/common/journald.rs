//! A real systemd-journald for the tests that need one, and netio
//! writing to it. journald has fixed paths (/run/systemd/journal), so the
//! tests of one binary that use it hold `JOURNALD` while they do.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{backend, netio_bin, write_config, Scratch, TARGET};

pub static JOURNALD: Mutex<()> = Mutex::new(());

pub const SOCKET: &str = "/run/systemd/journal/socket";

pub fn journald_answers() -> bool {
    UnixDatagram::unbound()
        .and_then(|s| s.connect(SOCKET))
        .is_ok()
}

pub fn journald_start() {
    if journald_answers() {
        return;
    }
    std::fs::create_dir_all("/run/systemd/journal").unwrap();
    // Detached: it must not hold the test's output pipes open.
    Command::new("setsid")
        .args(["-f", "/lib/systemd/systemd-journald"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start systemd-journald (Debian package systemd)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !journald_answers() {
        assert!(Instant::now() < deadline, "systemd-journald did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn journald_kill() {
    let _ = Command::new("pkill")
        .args(["-KILL", "-x", "systemd-journal"])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while journald_answers() {
        assert!(Instant::now() < deadline, "systemd-journald did not die");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything journald stored from one netio process.
pub fn journal_of(pid: u32) -> Vec<Value> {
    let _ = Command::new("journalctl").arg("--sync").status();
    let out = Command::new("journalctl")
        .args([
            "-o",
            "json",
            "--no-pager",
            "--all",
            &format!("_PID={pid}"),
            "SYSLOG_IDENTIFIER=netio",
        ])
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// netio with `--output journal`; its stderr (notes and fallback records)
/// is collected line by line.
pub struct JournalNetio {
    child: Child,
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl JournalNetio {
    pub fn start(scratch: &Scratch, name: &str) -> Self {
        let config = write_config(scratch, "1s", &[(TARGET, &[name])]);
        let mut child = Command::new(netio_bin())
            .args(["run", "--config"])
            .arg(&config)
            .args(["--backend", &backend(), "--output", "journal"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netio");
        let err = child.stderr.take().unwrap();
        let stderr =
            std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).collect());
        JournalNetio {
            child,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the started record, in the journal or in the fallback.
    pub fn wait_started(&mut self, in_journal: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if in_journal
                && journal_of(self.pid())
                    .iter()
                    .any(|v| v["NETIO_EVENT"] == "started")
            {
                return;
            }
            if !in_journal
                && std::fs::read_to_string(format!("/proc/{}/status", self.pid())).is_ok()
            {
                // The fallback goes to our stderr pipe; give netio time to attach.
                std::thread::sleep(Duration::from_secs(2));
                return;
            }
            assert!(Instant::now() < deadline, "netio wrote no started record");
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "netio exited early"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then (exit status, stderr lines).
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        (status, self.stderr.take().unwrap().join().unwrap())
    }
}
