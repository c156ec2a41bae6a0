//! `netio report` against a journal the tests fill: netio running in the
//! netio.service cgroup writes its records to a real journald, and the
//! report's sums must equal those records and the generated traffic, per
//! target, process and peer. Entries a local user (uid 65534) writes in
//! netio's name, fields and all, must not count (docs/siem.md, "Trust").
//! The journald tests take turns on `JOURNALD`.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::journald::{
    entries_with, journald_start, native_entry, JournalNetio, Via, Writer, Written, JOURNALD,
};
use common::unit::UnitCgroup;
use common::{
    exchange, netio_bin, num, output_within, unique_name, unique_suffix, write_config, Program,
    Scratch, Truth,
};
use serde_json::Value;

/// `netio report ARGS`, which must succeed; (stdout, stderr).
fn report(args: &[&str]) -> (String, String) {
    let out = output_within(
        Command::new(netio_bin()).arg("report").args(args),
        Duration::from_secs(60),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "netio report {args:?} failed ({}): {stderr}",
        out.status
    );
    (stdout, stderr)
}

fn report_json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (stdout, stderr) = report(&all);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("report --json is not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

/// `--since` for everything from `t` on, to the second.
fn since_arg(t: SystemTime) -> String {
    format!("@{}", t.duration_since(UNIX_EPOCH).unwrap().as_secs() - 1)
}

/// The report's rows of one target, by their key (pid, or peer) as text.
fn rows_of(v: &Value, target: &str, key: &str) -> Vec<(String, u64, u64)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == target)
        .map(|r| {
            let k = match &r[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k, num(r, "sent").unwrap(), num(r, "received").unwrap())
        })
        .collect()
}

/// netio.service's own traffic records of `target`, as journalctl selects
/// them: what the report must have read.
fn trusted_traffic(target: &str, since: &str) -> Vec<Value> {
    let _ = Command::new("journalctl").arg("--sync").status();
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--all"])
        .arg(format!("--since={since}"))
        .args([
            "_SYSTEMD_UNIT=netio.service",
            "_UID=0",
            "NETIO_EVENT=traffic",
        ])
        .arg(format!("NETIO_TARGET={target}"))
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Sums of the records of one scope, by the field that names their row.
fn sums(records: &[Value], scope: &str, key: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for r in records.iter().filter(|r| r["NETIO_SCOPE"] == scope) {
        let k = r[key].as_str().unwrap_or_default().to_string();
        let e = out.entry(k).or_insert((0, 0));
        e.0 += num(r, "NETIO_SENT_BYTES").unwrap();
        e.1 += num(r, "NETIO_RECEIVED_BYTES").unwrap();
    }
    out
}

fn as_map(rows: &[(String, u64, u64)]) -> BTreeMap<String, (u64, u64)> {
    rows.iter().map(|(k, s, r)| (k.clone(), (*s, *r))).collect()
}

/// A tracked client's run against an untracked server on `host`.
fn client_run(tracked: &Program, host: &str, size: &str) -> Truth {
    let (_, client) = exchange(
        &Program::original(),
        tracked,
        "bulk",
        &format!("{host}:0"),
        host,
        &["--size", size],
    );
    client
}

#[test]
fn report_totals_equal_the_records_read_and_the_traffic_by_target_process_and_peer() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let unit = UnitCgroup::create("system.slice/netio.service");
    let scratch = Scratch::new("report");
    let name = unique_name("ntr");
    let target = format!("report-{}", unique_suffix());
    let tracked = Program::named(&scratch, &name);
    let config = write_config(&scratch, "1s", &[(&target, &[name.as_str()])]);
    let start = SystemTime::now();
    let mut netio = JournalNetio::start_bin_with(&netio_bin(), &config, |cmd| unit.exec_in(cmd));
    netio.wait_started(true);
    // Three processes, two peers: 127.0.0.1 talks to two of them.
    let runs = [
        client_run(&tracked, "127.0.0.1", "1m"),
        client_run(&tracked, "127.0.0.2", "3m"),
        client_run(&tracked, "127.0.0.1", "512k"),
    ];
    let (status, stderr) = netio.stop();
    assert!(status.success(), "netio failed: {stderr:?}");
    let since = since_arg(start);

    let records = trusted_traffic(&target, &since);
    assert!(
        records.iter().any(|r| r["NETIO_SCOPE"] == "peer"),
        "no peer records of netio.service in the journal: the test would prove little"
    );
    let (sent, received) = runs
        .iter()
        .fold((0, 0), |a, t| (a.0 + t.sent, a.1 + t.received));

    let by_target = report_json(&["--since", &since, "--until", "0s", "--by", "target"]);
    assert_eq!(by_target["by"], "target");
    let rows = rows_of(&by_target, &target, "target");
    assert_eq!(as_map(&rows), sums(&records, "target", "NETIO_TARGET"));
    assert_eq!(
        rows,
        vec![(target.clone(), sent, received)],
        "vs the traffic"
    );
    let all_rows = by_target["rows"].as_array().unwrap();
    let row_sum = all_rows.iter().fold((0, 0), |a, r| {
        (
            a.0 + num(r, "sent").unwrap(),
            a.1 + num(r, "received").unwrap(),
        )
    });
    assert_eq!(
        (
            num(&by_target["total"], "sent"),
            num(&by_target["total"], "received")
        ),
        (Some(row_sum.0), Some(row_sum.1)),
        "the total is the rows' sum"
    );

    let by_process = report_json(&["--since", &since, "--by", "process"]);
    let rows = rows_of(&by_process, &target, "pid");
    assert_eq!(as_map(&rows), {
        let mut by_pid = BTreeMap::new();
        for r in records.iter().filter(|r| r["NETIO_SCOPE"] == "process") {
            let e = by_pid
                .entry(num(r, "NETIO_PID").unwrap().to_string())
                .or_insert((0, 0));
            e.0 += num(r, "NETIO_SENT_BYTES").unwrap();
            e.1 += num(r, "NETIO_RECEIVED_BYTES").unwrap();
        }
        by_pid
    });
    let mut want: Vec<(String, u64, u64)> = runs
        .iter()
        .map(|t| (t.pid.to_string(), t.sent, t.received))
        .collect();
    want.sort_by_key(|(_, s, r)| std::cmp::Reverse(s + r));
    assert_eq!(
        rows, want,
        "one row per process, busiest first, vs the traffic"
    );

    let by_peer = report_json(&["--since", &since, "--by", "peer"]);
    let rows = rows_of(&by_peer, &target, "peer");
    assert_eq!(as_map(&rows), sums(&records, "peer", "NETIO_PEER_ADDRESS"));
    let one = (
        runs[0].sent + runs[2].sent,
        runs[0].received + runs[2].received,
    );
    let two = (runs[1].sent, runs[1].received);
    assert_eq!(
        rows,
        vec![
            ("127.0.0.2".to_string(), two.0, two.1),
            ("127.0.0.1".to_string(), one.0, one.1),
        ],
        "one row per peer over both its processes, busiest first, vs the traffic"
    );

    // The table says the same in binary units, busiest first.
    let (table, _) = report(&["--since", &since, "--by", "peer"]);
    let lines: Vec<&str> = table.lines().filter(|l| l.starts_with(&target)).collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].contains("127.0.0.2") && lines[1].contains("127.0.0.1"),
        "{table}"
    );
    assert!(lines[0].contains(" MiB"), "sizes in binary units: {table}");
}

/// One entry in the journal, from `writer`, stored before this returns:
/// the writer's process stays until the handle is dropped, so that
/// journald finds it in /proc when it reads the entry.
fn write_stored(
    writer: &Writer,
    fields: &[(&'static str, String)],
    token: &str,
    since: SystemTime,
) -> Written {
    let written = writer.write(Via::Native, &native_entry(fields));
    wait_stored(token, since);
    written
}

fn wait_stored(token: &str, since: SystemTime) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while entries_with(token, since).is_empty() {
        assert!(
            Instant::now() < deadline,
            "journald did not store the entry {token}: the test would prove nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A traffic record of `target` in netio's fields, `bytes` each way.
fn traffic_entry(
    target: &str,
    scope: &str,
    bytes: u64,
    token: &str,
) -> Vec<(&'static str, String)> {
    let s = |v: &str| v.to_string();
    let mut f = vec![
        (
            "MESSAGE",
            format!("target=\"{target}\" sent={bytes} {token}"),
        ),
        ("MESSAGE_ID", s("6e6059a2f2b64d14920758e625c563d6")),
        ("PRIORITY", s("6")),
        ("SYSLOG_IDENTIFIER", s("netio")),
        ("NETIO_EVENT", s("traffic")),
        ("NETIO_SCHEMA", s("1")),
        ("NETIO_SCOPE", s(scope)),
        ("NETIO_TARGET", s(target)),
        ("NETIO_SENT_BYTES", bytes.to_string()),
        ("NETIO_RECEIVED_BYTES", bytes.to_string()),
        ("NETIO_SENT_BYTES_PER_SEC", bytes.to_string()),
        ("NETIO_RECEIVED_BYTES_PER_SEC", bytes.to_string()),
        ("NETIO_INTERVAL_MS", s("1000")),
        ("NETIO_BACKEND", s("tracepoint")),
        // journald drops these from a sender and sets its own.
        ("_SYSTEMD_UNIT", s("netio.service")),
        ("_UID", s("0")),
    ];
    match scope {
        "target" => f.push(("NETIO_PROCESSES", s("1"))),
        _ => f.extend([("NETIO_PID", s("4242")), ("NETIO_COMM", s("db"))]),
    }
    if scope == "peer" {
        f.push(("NETIO_PEER_ADDRESS", s("127.0.0.9")));
    }
    f
}

fn exceeded_entry(target: &str, rate: u64, token: &str) -> Vec<(&'static str, String)> {
    let s = |v: &str| v.to_string();
    vec![
        (
            "MESSAGE",
            format!("target=\"{target}\" sent rate threshold exceeded: {token}"),
        ),
        ("MESSAGE_ID", s("c545973dce4b44e0859c49a47ab9ab19")),
        ("PRIORITY", s("4")),
        ("SYSLOG_IDENTIFIER", s("netio")),
        ("NETIO_EVENT", s("threshold_exceeded")),
        ("NETIO_SCHEMA", s("1")),
        ("NETIO_TARGET", s(target)),
        ("NETIO_DIRECTION", s("sent")),
        ("NETIO_RATE_BYTES_PER_SEC", rate.to_string()),
        ("NETIO_THRESHOLD_BYTES_PER_SEC", s("1000")),
        ("NETIO_SUSTAIN_MS", s("1000")),
        ("NETIO_DURATION_MS", s("1000")),
        ("_SYSTEMD_UNIT", s("netio.service")),
        ("_UID", s("0")),
    ]
}

/// Root in the unit's cgroup writes one record of each scope and a breach,
/// which the report must count; uid 65534 writes the same with other
/// numbers, by the native protocol, `logger --journald`, and under the PID
/// of an exited process of the unit (journald then still says
/// `_SYSTEMD_UNIT=netio.service`, but `_UID=65534`): none may count.
#[test]
fn report_counts_netio_services_entries_and_none_a_user_forged_in_its_name() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let unit = UnitCgroup::create("system.slice/netio.service");
    let target = format!("trust-{}", unique_suffix());
    let start = SystemTime::now();
    let tag = |how: &str| format!("{target}-{how}");
    let root = Writer {
        cgroup: Some(unit.dir.clone()),
        ..Writer::root()
    };
    for scope in ["target", "process", "peer"] {
        let t = tag(&format!("root-{scope}"));
        write_stored(&root, &traffic_entry(&target, scope, 1000, &t), &t, start);
    }
    let t = tag("root-exceeded");
    write_stored(&root, &exceeded_entry(&target, 2000, &t), &t, start);

    let nobody = Writer::nobody();
    for scope in ["target", "process", "peer"] {
        let t = tag(&format!("nobody-{scope}"));
        write_stored(
            &nobody,
            &traffic_entry(&target, scope, 7_000_000, &t),
            &t,
            start,
        );
    }
    let t = tag("nobody-exceeded");
    write_stored(&nobody, &exceeded_entry(&target, 9_000_000, &t), &t, start);
    let t = tag("logger");
    let fields = native_entry(&traffic_entry(&target, "target", 7_000_000, &t));
    let mut child = Command::new("logger")
        .arg("--journald")
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::piped())
        .spawn()
        .expect("logger");
    child.stdin.take().unwrap().write_all(&fields).unwrap();
    assert!(child.wait().unwrap().success(), "logger --journald failed");
    wait_stored(&t, start);
    // A unit process whose entry journald has read exits, and the attacker
    // takes its PID at once, while journald still holds what it read.
    let t = tag("root-probe");
    let probe = write_stored(
        &root,
        &[
            ("SYSLOG_IDENTIFIER", "netio".into()),
            ("MESSAGE", t.clone()),
        ],
        &t,
        start,
    );
    let victim = probe.pid;
    drop(probe);
    let taker = Writer {
        pid: Some(victim),
        ..Writer::nobody()
    };
    let t = tag("pid-taken");
    write_stored(
        &taker,
        &traffic_entry(&target, "target", 7_000_000, &t),
        &t,
        start,
    );
    let view: Vec<String> = entries_with(&target, start)
        .iter()
        .map(|e| {
            format!(
                "{}: _UID={} _SYSTEMD_UNIT={}",
                e["MESSAGE"].as_str().unwrap_or_default(),
                e["_UID"].as_str().unwrap_or("-"),
                e["_SYSTEMD_UNIT"].as_str().unwrap_or("-")
            )
        })
        .collect();
    eprintln!("journald's view of the entries:\n{}", view.join("\n"));

    let since = since_arg(start);
    for (by, key) in [("target", "target"), ("process", "pid"), ("peer", "peer")] {
        let v = report_json(&["--since", &since, "--by", by]);
        let rows = rows_of(&v, &target, key);
        assert_eq!(rows.len(), 1, "--by {by}: one row of root's: {v}");
        assert_eq!(
            (rows[0].1, rows[0].2),
            (1000, 1000),
            "--by {by}: only netio.service's root counts: {v}"
        );
    }
    let v = report_json(&["--since", &since]);
    let breaches: Vec<&Value> = v["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["target"] == target.as_str())
        .collect();
    assert_eq!(breaches.len(), 1, "{v}");
    assert_eq!(
        (num(breaches[0], "exceeded"), num(breaches[0], "peak_rate")),
        (Some(1), Some(2000)),
        "only root's breach counts: {v}"
    );
    assert_eq!(breaches[0]["open"], true);
}

/// Without journalctl, or with a journal that holds nothing of netio's,
/// the report says so in words and never panics.
#[test]
fn report_without_journalctl_or_records_says_what_is_missing() {
    let out = output_within(
        Command::new(netio_bin())
            .arg("report")
            .env("PATH", "/nonexistent"),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("journalctl was not found") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let scratch = Scratch::new("report-empty");
    let dir = scratch.path("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.display().to_string();
    let (stdout, stderr) = report(&["--json", "--directory", &dir_s]);
    assert!(
        stderr.contains(&format!(
            "no records of netio.service in the journal in {dir_s}"
        )),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (num(&v, "records"), v["rows"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );

    let out = output_within(
        Command::new(netio_bin()).args(["report", "--directory", &dir_s, "--since", "someday"]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("journalctl failed")
            && stderr.contains("Failed to parse timestamp: someday"),
        "journalctl's own reason: {stderr}"
    );
}

/// netio.service's threshold records of `target`, as journalctl selects
/// them.
fn trusted_thresholds(target: &str, since: &str) -> Vec<Value> {
    let _ = Command::new("journalctl").arg("--sync").status();
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--all"])
        .arg(format!("--since={since}"))
        .args(["_SYSTEMD_UNIT=netio.service", "_UID=0"])
        .args([
            "NETIO_EVENT=threshold_exceeded",
            "NETIO_EVENT=threshold_reminder",
            "NETIO_EVENT=threshold_recovered",
        ])
        .arg(format!("NETIO_TARGET={target}"))
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A real breach: netio as the unit, a 1MiB/s limit on what the target
/// sends, 3 s at twice that, then quiet. The report's breach row must say
/// what netio's threshold records say: how often, how high, recovered.
#[test]
fn report_lists_the_breaches_netio_wrote_with_their_peak_rate() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let unit = UnitCgroup::create("system.slice/netio.service");
    let scratch = Scratch::new("report-breach");
    let name = unique_name("ntb");
    let target = format!("breach-{}", unique_suffix());
    let tracked = Program::named(&scratch, &name);
    let config = scratch.path("netio.toml");
    std::fs::write(
        &config,
        format!(
            "interval = \"1s\"\n\n[[target]]\nname = \"{target}\"\nprocess = [\"{name}\"]\n\n\
             [target.threshold]\nsent = \"1MiB/s\"\nfor = \"1s\"\n"
        ),
    )
    .unwrap();
    let start = SystemTime::now();
    let mut netio = JournalNetio::start_bin_with(&netio_bin(), &config, |cmd| unit.exec_in(cmd));
    netio.wait_started(true);
    // The server echoes: it sends at the client's rate.
    let server = tracked.server("paced", "127.0.0.1:0", &["--count", "1"]);
    Program::original().client(
        "paced",
        &server.addr("127.0.0.1"),
        &["--phases", "2m:3000,64k:2500"],
    );
    server.finish();
    std::thread::sleep(Duration::from_millis(1500));
    let (status, stderr) = netio.stop();
    assert!(status.success(), "netio failed: {stderr:?}");
    let since = since_arg(start);

    let records = trusted_thresholds(&target, &since);
    let count = |kind: &str| records.iter().filter(|r| r["NETIO_EVENT"] == kind).count() as u64;
    let peak = records
        .iter()
        .filter(|r| r["NETIO_EVENT"] != "threshold_recovered")
        .filter_map(|r| num(r, "NETIO_RATE_BYTES_PER_SEC"))
        .max();
    assert!(
        count("threshold_exceeded") >= 1 && count("threshold_recovered") >= 1,
        "3 s at 2MiB/s over a 1MiB/s limit, then quiet, must exceed and recover: {records:?}"
    );

    let v = report_json(&["--since", &since]);
    let breaches: Vec<&Value> = v["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["target"] == target.as_str())
        .collect();
    assert_eq!(breaches.len(), 1, "one threshold, one row: {v}");
    let b = breaches[0];
    assert_eq!(b["direction"], "sent");
    assert_eq!(b["peer"], Value::Null);
    assert_eq!(
        (num(b, "exceeded"), num(b, "reminders"), num(b, "recovered")),
        (
            Some(count("threshold_exceeded")),
            Some(count("threshold_reminder")),
            Some(count("threshold_recovered"))
        ),
        "the report vs netio's threshold records: {v}"
    );
    assert_eq!(num(b, "peak_rate"), peak);
    assert!(peak.unwrap() > 1 << 20, "the peak is above the limit");
    assert_eq!(num(b, "threshold"), Some(1 << 20));
    assert_eq!(b["open"], false, "it recovered: {v}");

    let (table, _) = report(&["--since", &since]);
    let line = table
        .lines()
        .skip_while(|l| *l != "threshold breaches")
        .find(|l| l.starts_with(&target))
        .unwrap_or_else(|| panic!("no breach line for {target}:\n{table}"));
    assert!(
        line.contains("1.0 MiB/s") && line.ends_with("recovered"),
        "{line}"
    );
}

/// Every loopback client of a tracked server comes from 127.0.0.1: `--by
/// peer` gives each client process a row of its own, named by its PID, uid
/// and name as netio's records in the journal gave them, with its bytes.
#[test]
fn report_by_peer_gives_each_loopback_client_process_its_own_named_row() {
    use std::os::unix::fs::PermissionsExt;
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let unit = UnitCgroup::create("system.slice/netio.service");
    let scratch = Scratch::new("report-local");
    std::fs::set_permissions(&scratch.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let name = unique_name("ntr");
    let target = format!("report-local-{}", unique_suffix());
    let tracked = Program::named(&scratch, &name);
    let config = write_config(&scratch, "1s", &[(&target, &[name.as_str()])]);
    let start = SystemTime::now();
    let mut netio = JournalNetio::start_bin_with(&netio_bin(), &config, |cmd| unit.exec_in(cmd));
    netio.wait_started(true);
    let size = ["--count", "1", "--size", "1m"];
    let server = tracked.server("threaded", "127.0.0.1:0", &["--count", "2", "--size", "1m"]);
    let addr = server.addr("127.0.0.1");
    let backup = Program::named(&scratch, "backup-job");
    let clients = [
        (Program::original().client("threaded", &addr, &size), 0),
        (
            backup.client_with("threaded", &addr, &size, |cmd| {
                cmd.uid(65534).gid(65534);
            }),
            65534,
        ),
    ];
    server.finish();
    let (status, stderr) = netio.stop();
    assert!(status.success(), "netio failed: {stderr:?}");

    let v = report_json(&["--since", &since_arg(start), "--by", "peer"]);
    let mut rows: Vec<(String, u64, u64, String, u64, u64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == target.as_str())
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            let n = |k: &str| num(r, k).unwrap_or(u64::MAX);
            (
                s("peer"),
                n("peer_pid"),
                n("peer_uid"),
                s("peer_comm"),
                n("sent"),
                n("received"),
            )
        })
        .collect();
    rows.sort();
    let mut want: Vec<_> = clients
        .iter()
        .map(|(c, uid)| {
            let comm = c.raw["comm"].as_str().unwrap().to_string();
            (
                "127.0.0.1".to_string(),
                u64::from(c.pid),
                *uid,
                comm,
                c.received,
                c.sent,
            )
        })
        .collect();
    want.sort();
    assert_eq!(rows, want, "one named row per client process: {v}");
}
