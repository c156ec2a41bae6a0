//! The journal agent end to end: netio writes to a real systemd-journald,
//! and what `journalctl -o json` reads back has every documented field and
//! adds up to the generated traffic exactly, also when journald is absent
//! at start or killed mid-run (the fallback on stderr then holds the rest).
//!
//! A journald that stops reading (SIGSTOP) while netio runs as systemd
//! would run it must stall neither the watchdog nor the stop.
//!
//! These tests start and stop the one journald at /run/systemd/journal, so
//! they run one at a time (JOURNALD lock) and leave a journald running.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::journald::{journal_of, journald_kill, journald_start, JournalNetio, JOURNALD};
use common::service::{loud_config, Killed, Notify};
use common::{exchange, num, unique_name, Program, Scratch};
use serde_json::Value;

/// Sums of process records per PID, over journal records (string numbers)
/// and fallback records (JSON numbers) alike.
fn process_sums<'a>(records: impl Iterator<Item = &'a Value>) -> BTreeMap<u64, (u64, u64)> {
    let mut sums = BTreeMap::new();
    for v in records.filter(|v| v["NETIO_EVENT"] == "traffic" && v["NETIO_SCOPE"] == "process") {
        let e = sums.entry(num(v, "NETIO_PID").unwrap()).or_insert((0, 0));
        e.0 += num(v, "NETIO_SENT_BYTES").unwrap();
        e.1 += num(v, "NETIO_RECEIVED_BYTES").unwrap();
    }
    sums
}

fn fallback_records(stderr: &[String]) -> Vec<Value> {
    stderr
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn traffic(tracked: &Program, size: &str) -> (u32, u64, u64) {
    let (s, _) = exchange(
        tracked,
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", size],
    );
    (s.pid, s.sent, s.received)
}

/// A tracked traffic program and a journal-writing netio that tracks it.
fn setup(tag: &str) -> (Scratch, Program, JournalNetio) {
    let scratch = Scratch::new(tag);
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let netio = JournalNetio::start(&scratch, &name);
    (scratch, tracked, netio)
}

/// The journal and the fallback together hold every byte of each run.
fn assert_exact_across(journal: &[Value], fallback: &[Value], runs: &[(u32, u64, u64)]) {
    let all: Vec<&Value> = journal.iter().chain(fallback.iter()).collect();
    let sums = process_sums(all.iter().copied());
    for &(pid, sent, received) in runs {
        assert_eq!(
            sums.get(&(pid as u64)).copied(),
            Some((sent, received)),
            "pid {pid}: journal + fallback vs truth"
        );
    }
}

/// Fields each record kind must carry in the journal (docs/records.md).
fn required(v: &Value) -> Vec<&'static str> {
    let mut f = vec![
        "MESSAGE",
        "MESSAGE_ID",
        "PRIORITY",
        "SYSLOG_IDENTIFIER",
        "NETIO_EVENT",
        "NETIO_SCHEMA",
    ];
    match (v["NETIO_EVENT"].as_str(), v["NETIO_SCOPE"].as_str()) {
        (Some("traffic"), scope) => {
            f.extend([
                "NETIO_SCOPE",
                "NETIO_TARGET",
                "NETIO_SENT_BYTES",
                "NETIO_RECEIVED_BYTES",
                "NETIO_SENT_BYTES_PER_SEC",
                "NETIO_RECEIVED_BYTES_PER_SEC",
                "NETIO_INTERVAL_MS",
                "NETIO_BACKEND",
            ]);
            match scope {
                Some("target") => f.push("NETIO_PROCESSES"),
                Some("target_peer") => f.push("NETIO_PEER_ADDRESS"),
                // The processes past the busiest N, in one record.
                Some("process") if v.get("NETIO_PID").is_none() => f.push("NETIO_PROCESSES"),
                Some("process") => f.extend(["NETIO_PID", "NETIO_COMM"]),
                _ => f.extend(["NETIO_PID", "NETIO_COMM", "NETIO_PEER_ADDRESS"]),
            }
        }
        (Some("started"), _) => f.extend([
            "NETIO_VERSION",
            "NETIO_KERNEL",
            "NETIO_BACKEND",
            "NETIO_BACKEND_DETAIL",
            "NETIO_TARGETS",
            "NETIO_PROCESSES",
        ]),
        (Some("process_exited"), _) => f.extend([
            "NETIO_TARGET",
            "NETIO_PID",
            "NETIO_COMM",
            "NETIO_SENT_BYTES",
            "NETIO_RECEIVED_BYTES",
        ]),
        (Some("processes_changed"), _) => f.extend([
            "NETIO_TARGET",
            "NETIO_APPEARED",
            "NETIO_EXITED",
            "NETIO_INTERVAL_MS",
        ]),
        (Some("stopping"), _) => f.push("NETIO_VERSION"),
        _ => {}
    }
    f
}

#[test]
fn journal_records_carry_every_documented_field_and_add_up_exactly() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let (_scratch, tracked, mut netio) = setup("journal");
    netio.wait_started(true);
    let (pid, sent, received) = traffic(&tracked, "3m");
    let netio_pid = netio.pid();
    let (status, stderr) = netio.stop();
    assert!(status.success(), "netio failed: {stderr:?}");

    let records = journal_of(netio_pid);
    for kind in ["started", "traffic", "process_exited", "stopping"] {
        assert!(
            records.iter().any(|v| v["NETIO_EVENT"] == kind),
            "no {kind} record in the journal"
        );
    }
    for v in &records {
        assert_eq!(v["SYSLOG_IDENTIFIER"], "netio");
        assert_eq!(v["_TRANSPORT"], "journal", "sent with the native protocol");
        for field in required(v) {
            assert!(
                v.get(field).is_some_and(|x| x.is_string()),
                "{field} missing from {v}"
            );
        }
    }
    let sums = process_sums(records.iter());
    assert_eq!(
        sums.get(&(pid as u64)).copied(),
        Some((sent, received)),
        "journal totals vs ground truth; all: {sums:?}"
    );
}

#[test]
fn journald_absent_at_start_then_started_loses_nothing_and_reports_the_gap() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_kill();
    let (_scratch, tracked, mut netio) = setup("journal-absent");
    netio.wait_started(false);
    let first = traffic(&tracked, "1m");
    std::thread::sleep(Duration::from_millis(1500)); // an interval ends in the outage
    journald_start();
    let second = traffic(&tracked, "2m");
    std::thread::sleep(Duration::from_millis(1500)); // an interval ends with journald back
    let netio_pid = netio.pid();
    let (status, stderr) = netio.stop();
    assert!(status.success(), "netio failed: {stderr:?}");
    assert!(
        stderr
            .iter()
            .filter(|l| l.contains("not reachable"))
            .count()
            == 1,
        "netio must say once that journald is away: {stderr:?}"
    );

    let journal = journal_of(netio_pid);
    let fallback = fallback_records(&stderr);
    assert!(
        fallback.iter().any(|v| v["NETIO_EVENT"] == "started"),
        "the started record went to the fallback"
    );
    assert_exact_across(&journal, &fallback, &[first, second]);
    let gap = journal
        .iter()
        .find(|v| v["NETIO_EVENT"] == "degraded" && v["NETIO_REASON"] == "journal_unavailable")
        .unwrap_or_else(|| panic!("no journal_unavailable record in the journal"));
    let count: u64 = gap["NETIO_COUNT"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        count as usize,
        fallback.len(),
        "the gap record counts the records sent to the fallback"
    );
    assert!(
        journal
            .iter()
            .any(|v| v["NETIO_EVENT"] == "traffic" && num(v, "NETIO_PID") == Some(second.0 as u64)),
        "records resume in the journal"
    );
}

#[test]
fn journald_killed_mid_run_does_not_stop_netio_or_lose_totals() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let (_scratch, tracked, mut netio) = setup("journal-killed");
    netio.wait_started(true);
    let first = traffic(&tracked, "1m");
    std::thread::sleep(Duration::from_millis(1500));
    journald_kill();
    let second = traffic(&tracked, "2m");
    let netio_pid = netio.pid();
    let (status, stderr) = netio.stop();
    journald_start();
    assert!(
        status.success(),
        "netio must survive journald's death: {status} {stderr:?}"
    );

    let journal = journal_of(netio_pid);
    let fallback = fallback_records(&stderr);
    assert!(
        !fallback.is_empty(),
        "records after the kill go to the fallback: {stderr:?}"
    );
    assert_exact_across(&journal, &fallback, &[first, second]);
}

/// A PostgreSQL-like target (one forked child per connection, the parent
/// doing no client I/O) matched by name, read back from the journal: every
/// child's bytes under its own PID, and the target totals add up.
#[test]
fn forking_target_matched_by_name_adds_up_in_the_journal() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let (_scratch, tracked, mut netio) = setup("journal-fork");
    netio.wait_started(true);
    let (server, _) = exchange(
        &tracked,
        &Program::original(),
        "forking",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--count", "8", "--size", "300000"],
    );
    let netio_pid = netio.pid();
    let (status, stderr) = netio.stop();
    assert!(status.success(), "netio failed: {stderr:?}");
    assert_eq!(server.per_pid.len(), 8, "one ground-truth entry per child");

    // A busy journald may push a record to the fallback (reported, never
    // lost): count both, so a slow CI machine does not fail this test.
    let journal = journal_of(netio_pid);
    let fallback = fallback_records(&stderr);
    let runs: Vec<(u32, u64, u64)> = server
        .per_pid
        .iter()
        .map(|(p, b)| (*p, b.sent, b.received))
        .collect();
    assert_exact_across(&journal, &fallback, &runs);
    let target_total = journal
        .iter()
        .chain(fallback.iter())
        .filter(|v| v["NETIO_EVENT"] == "traffic" && v["NETIO_SCOPE"] == "target")
        .fold((0, 0), |a, v| {
            (
                a.0 + num(v, "NETIO_SENT_BYTES").unwrap(),
                a.1 + num(v, "NETIO_RECEIVED_BYTES").unwrap(),
            )
        });
    assert_eq!(
        target_total,
        (server.sent, server.received),
        "target records vs truth"
    );
    let appeared = journal
        .iter()
        .filter(|v| v["NETIO_EVENT"] == "process_appeared")
        .count();
    let exited = journal
        .iter()
        .filter(|v| v["NETIO_EVENT"] == "process_exited")
        .count();
    assert!(
        appeared >= 8 && exited >= 8,
        "a lifecycle record per child: {appeared} appeared, {exited} exited"
    );
}

// ------------------------------------------------ a journald that stops reading

/// journald stopped (SIGSTOP) while it lives; resumed when dropped, so
/// that a failing test leaves it reading for the others.
struct Stopped(i32);

impl Stopped {
    fn journald() -> Self {
        let out = Command::new("pgrep")
            .args(["-x", "systemd-journal"])
            .output()
            .expect("pgrep");
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("the test's journald runs");
        // SAFETY: kill on the journald the tests started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// netio as systemd runs it: stderr is a stream into journald (its stdout
/// protocol), records go to journald's native socket, the watchdog is fed.
/// journald then stops reading: both fill. The loop must keep feeding the
/// watchdog, report what was lost once journald reads again, and exit on
/// SIGTERM within the unit's TimeoutStopSec.
#[test]
fn a_journald_that_stops_reading_stalls_neither_the_watchdog_nor_the_stop() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let scratch = Scratch::new("journal-stopped");
    let notify = Notify::new(&scratch);
    // Large records, many per interval: journald's queues fill in a second.
    let (config, _idle) = loud_config(&scratch, 20, 3000);
    let watchdog = Duration::from_secs(2);

    let mut stream =
        UnixStream::connect(common::journald::STDOUT).expect("journald's stdout socket");
    // The stream protocol's header, as systemd writes it for a service:
    // identifier, unit, priority, level prefix, and three forwards off.
    stream.write_all(b"netio\n\n6\n0\n0\n0\n0\n").unwrap();
    let child = Command::new(common::netio_bin())
        .args(["run", "--config"])
        .arg(&config)
        .args(["--backend", &common::backend(), "--output", "journal"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(OwnedFd::from(stream)))
        .spawn()
        .expect("spawn netio");
    let mut netio = Killed(child);
    let pid = netio.0.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !notify.has("READY=1") {
        assert!(Instant::now() < deadline, "netio never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));

    // journald stops reading for 6 s.
    let stopped = Stopped::journald();
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    notify.assert_beating(since, watchdog, "journald was stopped");

    // journald reads again: the journal is told what it missed.
    drop(stopped);
    let deadline = Instant::now() + Duration::from_secs(15);
    let (gap, lost) = loop {
        let journal = journal_of(pid);
        let reason = |r: &str| {
            journal
                .iter()
                .find(|v| v["NETIO_EVENT"] == "degraded" && v["NETIO_REASON"] == r)
                .cloned()
        };
        if let (Some(g), Some(l)) = (
            reason("journal_unavailable"),
            reason("journal_records_lost"),
        ) {
            break (g, l);
        }
        assert!(
            Instant::now() < deadline,
            "no journal_unavailable and journal_records_lost records after journald resumed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let n = |v: &Value| num(v, "NETIO_COUNT").unwrap();
    assert!(n(&lost) > 0 && n(&gap) > 0, "{gap}\n{lost}");

    // Stopped again, then the service stops: within TimeoutStopSec.
    let stopped = Stopped::journald();
    std::thread::sleep(Duration::from_secs(3));
    netio.stops_in_time("journald was stopped");
    drop(stopped);
}
