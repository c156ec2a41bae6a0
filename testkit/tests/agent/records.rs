//! What a newcomer reads (docs/records.md): every text and JSON line
//! carries the time it was written, RFC 3339 in UTC; MESSAGE says its
//! numbers in units while the fields stay raw; a target that runs nothing
//! is said once, not every interval, while a running one without traffic
//! is said every interval; a reload's record names what it changed.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::{backend, event, netio_bin, num, require_root, unique_name, Idle, Netio, Scratch};

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Seconds since the epoch of `2026-05-01T12:34:56.123456Z`, or why it is
/// not RFC 3339 in UTC with microseconds.
fn rfc3339_utc(t: &str) -> Result<f64, String> {
    let b = t.as_bytes();
    let shape = b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return Err(format!("{t:?} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"));
    }
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    Ok(secs as f64 + n(20..26) as f64 / 1e6)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Fails unless `stamp` is RFC 3339 UTC and within `started..now`.
fn assert_stamp(stamp: Option<&str>, started: f64, line: &str) {
    let stamp = stamp.unwrap_or_else(|| panic!("no timestamp: {line}"));
    let at = rfc3339_utc(stamp).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(
        at >= started - 1.0 && at <= now() + 1.0,
        "timestamp {stamp} is not the time of writing: {line}"
    );
}

#[test]
fn json_records_carry_their_time_and_a_target_that_runs_nothing_is_said_once() {
    let scratch = Scratch::new("records-json");
    let idle = Idle::start(&scratch);
    let absent = unique_name("nta");
    let started = now();
    let netio = Netio::start(
        &scratch,
        "1s",
        &[
            ("absent", &[absent.as_str()]),
            ("idle", &[idle.name.as_str()]),
        ],
    );
    std::thread::sleep(Duration::from_millis(4200));
    let records = netio.stop();
    drop(idle);
    for v in &records.records {
        assert_stamp(s(v, "NETIO_TIMESTAMP"), started, &v.to_string());
    }
    let targets = |name: &str| -> Vec<&Value> {
        records
            .traffic()
            .filter(|v| s(v, "NETIO_SCOPE") == Some("target") && s(v, "NETIO_TARGET") == Some(name))
            .collect()
    };
    let absent = targets("absent");
    assert_eq!(
        absent.len(),
        1,
        "a target with no process is said once, not every interval: {absent:?}"
    );
    assert_eq!(num(absent[0], "NETIO_PROCESSES"), Some(0));
    assert!(
        s(absent[0], "MESSAGE").is_some_and(|m| m.contains("not running (no process)")),
        "{}",
        absent[0]
    );
    let idle = targets("idle");
    assert!(
        idle.len() >= 4,
        "a running target without traffic is said every interval: {idle:?}"
    );
    for v in idle {
        let m = s(v, "MESSAGE").unwrap();
        assert!(
            m.contains(" no traffic in ") && m.contains(", 1 process, 0 peers: sent=0 received=0 "),
            "{m}"
        );
        assert_eq!(num(v, "NETIO_PROCESSES"), Some(1), "{v}");
        assert_eq!(num(v, "NETIO_SENT_BYTES"), Some(0), "{v}");
        assert!(num(v, "NETIO_INTERVAL_MS").is_some(), "raw integers: {v}");
    }
}

#[test]
fn text_lines_open_with_their_time_in_rfc3339_utc() {
    require_root();
    let scratch = Scratch::new("records-text");
    let absent = unique_name("nta");
    let config = common::write_config(&scratch, "1s", &[("absent", &[absent.as_str()])]);
    let started = now();
    let mut child = Command::new(netio_bin())
        .args([
            "run",
            "--backend",
            &backend(),
            "--output",
            "text",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netio");
    std::thread::sleep(Duration::from_millis(3500));
    // SAFETY: kill on the pid of a child not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "netio: {status}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 3, "started, the target, stopping: {out}");
    for line in &lines {
        let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
        assert_stamp(Some(stamp), started, line);
        assert!(
            ["error", "warning", "notice", "info"]
                .iter()
                .any(|l| rest.starts_with(l)),
            "the priority's word after the time: {line}"
        );
    }
    let absent_lines = lines
        .iter()
        .filter(|l| l.contains("target=\"absent\""))
        .count();
    assert_eq!(absent_lines, 1, "said once: {out}");
}

#[test]
fn a_reload_record_names_the_targets_added_removed_and_rethresholded() {
    let scratch = Scratch::new("records-reload");
    let (a, b, c) = (unique_name("ntr"), unique_name("ntr"), unique_name("ntr"));
    let path = scratch.path("netio.toml");
    let config = |targets: &[(&str, &str, &str)]| {
        let mut t = String::from("interval = \"1s\"\n");
        for (name, process, threshold) in targets {
            t.push_str(&format!(
                "\n[[target]]\nname = \"{name}\"\nprocess = [\"{process}\"]\n{threshold}"
            ));
        }
        std::fs::write(&path, t).unwrap();
    };
    config(&[
        ("kept", &a, "[target.threshold]\nsent = \"1MiB/s\"\n"),
        ("gone", &b, ""),
    ]);
    let mut netio = Netio::start_file(&path);
    config(&[
        ("kept", &a, "[target.threshold]\nsent = \"8Mbit/s\"\n"),
        ("new", &c, ""),
    ]);
    // SAFETY: kill on the pid of a child not yet reaped.
    unsafe { libc::kill(netio.pid() as libc::pid_t, libc::SIGHUP) };
    assert!(
        netio.wait_until(Duration::from_secs(5), |r| r
            .iter()
            .any(|v| event(v) == Some("config_reloaded"))),
        "no config_reloaded after SIGHUP"
    );
    let records = netio.stop();
    let r = records
        .records
        .iter()
        .find(|v| event(v) == Some("config_reloaded"))
        .unwrap();
    assert_eq!(s(r, "NETIO_TARGETS_ADDED"), Some("new"), "{r}");
    assert_eq!(s(r, "NETIO_TARGETS_REMOVED"), Some("gone"), "{r}");
    assert_eq!(s(r, "NETIO_TARGETS_REMATCHED"), Some(""), "{r}");
    assert_eq!(s(r, "NETIO_THRESHOLDS_CHANGED"), Some("kept"), "{r}");
    let m = s(r, "MESSAGE").unwrap();
    assert!(
        m.contains(
            "1 target added, 1 target removed, thresholds changed for 1 target: \
             targets_added=\"new\" targets_removed=\"gone\" thresholds_changed=\"kept\""
        ),
        "{m}"
    );
}
