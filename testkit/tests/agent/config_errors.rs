//! Bad configuration files: `netio check-config FILE` and `netio run
//! --config FILE` both refuse each one with exit status 2 (never a panic),
//! naming the file, and the line and the key wherever the file has them
//! (syntax, type and key errors, and values the parser accepts but netio
//! refuses). And the other way round: what `check-config` prints for a good
//! file is itself a valid config, with the values netio uses.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{netio_bin, Scratch};

/// A valid config with every section; each case breaks one thing in it.
const BASE: &str = r#"interval = "1s"
backend = "auto"
output = "json"

[capacity]
processes = 64
peers = 64

[records]
per_process = true
top_peers = 3

[[target]]
name = "db"
process = ["dbd"]

[target.threshold]
sent = "1MiB/s"
for = "2s"
reminder = "3s"
"#;

/// `BASE` with the line `old` replaced by `new` (which may be several
/// lines, or empty to drop it).
pub(crate) fn with(old: &str, new: &str) -> String {
    assert!(BASE.lines().any(|l| l == old), "BASE has no line {old:?}");
    BASE.lines()
        .map(|l| if l == old { new } else { l })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `BASE` without its `[target.threshold]` table.
fn without_threshold() -> &'static str {
    &BASE[..BASE.find("\n[target.threshold]").unwrap() + 1]
}

/// `BASE` with a `[[syslog]]` table of these lines at its end.
fn syslog(lines: &[&str]) -> String {
    format!("{BASE}\n[[syslog]]\n{}\n", lines.join("\n"))
}

/// `BASE` with `extra` lines after the line `after`.
pub(crate) fn after(after: &str, extra: &str) -> String {
    with(after, &format!("{after}\n{extra}"))
}

enum File {
    Text(String),
    Bytes(Vec<u8>),
    Missing,
    Directory,
}

pub(crate) struct Case {
    what: &'static str,
    file: File,
    /// The line the error must name, by its content (the first line
    /// that equals it).
    line: Option<&'static str>,
    /// A word the error must contain: the key, or the table.
    key: Option<&'static str>,
}

pub(crate) fn case(
    what: &'static str,
    text: String,
    line: Option<&'static str>,
    key: &'static str,
) -> Case {
    Case {
        what,
        file: File::Text(text),
        line,
        key: Some(key),
    }
}

fn cases() -> Vec<Case> {
    let t = |what, text: String, line: &'static str, key| case(what, text, Some(line), key);
    let v = |what, text: String, key| case(what, text, None, key);
    let mut c = vec![
        // Wrong types.
        t(
            "interval as a number",
            with(r#"interval = "1s""#, "interval = 10"),
            "interval = 10",
            "interval",
        ),
        t(
            "interval as a boolean",
            with(r#"interval = "1s""#, "interval = true"),
            "interval = true",
            "interval",
        ),
        t(
            "backend as a number",
            with(r#"backend = "auto""#, "backend = 5"),
            "backend = 5",
            "backend",
        ),
        t(
            "output as a list",
            with(r#"output = "json""#, r#"output = ["json"]"#),
            r#"output = ["json"]"#,
            "output",
        ),
        t(
            "processes as a string",
            with("processes = 64", r#"processes = "many""#),
            r#"processes = "many""#,
            "processes",
        ),
        t(
            "peers as a float",
            with("peers = 64", "peers = 1.5"),
            "peers = 1.5",
            "peers",
        ),
        t(
            "peers past u32",
            with("peers = 64", "peers = 99999999999"),
            "peers = 99999999999",
            "peers",
        ),
        t(
            "per_process as a string",
            with("per_process = true", r#"per_process = "yes""#),
            r#"per_process = "yes""#,
            "per_process",
        ),
        t(
            "negative top_peers",
            with("top_peers = 3", "top_peers = -1"),
            "top_peers = -1",
            "top_peers",
        ),
        t(
            "process as a string",
            with(r#"process = ["dbd"]"#, r#"process = "dbd""#),
            r#"process = "dbd""#,
            "process",
        ),
        t(
            "name as a number",
            with(r#"name = "db""#, "name = 7"),
            "name = 7",
            "name",
        ),
        t(
            "unit as a number",
            after(r#"process = ["dbd"]"#, "unit = 5"),
            "unit = 5",
            "unit",
        ),
        t(
            "cgroup as a list",
            after(r#"process = ["dbd"]"#, r#"cgroup = ["/a"]"#),
            r#"cgroup = ["/a"]"#,
            "cgroup",
        ),
        t(
            "rate as a number",
            with(r#"sent = "1MiB/s""#, "sent = 1048576"),
            "sent = 1048576",
            "sent",
        ),
        t(
            "for as a number",
            with(r#"for = "2s""#, "for = 2"),
            "for = 2",
            "for",
        ),
        t(
            "reminder as a boolean",
            with(r#"reminder = "3s""#, "reminder = true"),
            "reminder = true",
            "reminder",
        ),
        t(
            "threshold as a string",
            format!("{}threshold = \"high\"\n", without_threshold()),
            r#"threshold = "high""#,
            "threshold",
        ),
        t(
            "target as a string",
            "interval = \"1s\"\ntarget = \"db\"\n".into(),
            r#"target = "db""#,
            "target",
        ),
        t(
            "[target] instead of [[target]]",
            with("[[target]]", "[target]"),
            "[target]",
            "target",
        ),
        // Unknown keys, in every table.
        t(
            "unknown top-level key",
            after(r#"interval = "1s""#, "bogus = 1"),
            "bogus = 1",
            "bogus",
        ),
        t(
            "unknown table",
            after(r#"output = "json""#, "[logging]\nlevel = 1"),
            "[logging]",
            "logging",
        ),
        t(
            "unknown key in [capacity]",
            after("peers = 64", "maps = 1"),
            "maps = 1",
            "maps",
        ),
        t(
            "unknown key in [records]",
            after("top_peers = 3", "per_peer = true"),
            "per_peer = true",
            "per_peer",
        ),
        t(
            "unknown key in [[target]]",
            after(r#"process = ["dbd"]"#, r#"processes = ["x"]"#),
            r#"processes = ["x"]"#,
            "processes",
        ),
        t(
            "unknown key in [target.threshold]",
            after(r#"for = "2s""#, r#"sustain = "2s""#),
            r#"sustain = "2s""#,
            "sustain",
        ),
        // Durations.
        t(
            "zero interval",
            with(r#"interval = "1s""#, r#"interval = "0s""#),
            r#"interval = "0s""#,
            "interval",
        ),
        t(
            "interval below 100ms",
            with(r#"interval = "1s""#, r#"interval = "50ms""#),
            r#"interval = "50ms""#,
            "interval",
        ),
        t(
            "negative interval",
            with(r#"interval = "1s""#, r#"interval = "-1s""#),
            r#"interval = "-1s""#,
            "interval",
        ),
        t(
            "interval without a unit",
            with(r#"interval = "1s""#, r#"interval = "10""#),
            r#"interval = "10""#,
            "interval",
        ),
        t(
            "interval in words",
            with(r#"interval = "1s""#, r#"interval = "fast""#),
            r#"interval = "fast""#,
            "interval",
        ),
        t(
            "interval past u64 seconds",
            with(
                r#"interval = "1s""#,
                r#"interval = "99999999999999999999s""#,
            ),
            r#"interval = "99999999999999999999s""#,
            "interval",
        ),
        t(
            "for in words",
            with(r#"for = "2s""#, r#"for = "soon""#),
            r#"for = "soon""#,
            "for",
        ),
        t(
            "zero reminder",
            with(r#"reminder = "3s""#, r#"reminder = "0s""#),
            r#"reminder = "0s""#,
            "reminder",
        ),
        // Rates.
        t(
            "rate in words",
            with(r#"sent = "1MiB/s""#, r#"sent = "fast""#),
            r#"sent = "fast""#,
            "sent",
        ),
        t(
            "rate without /s",
            with(r#"sent = "1MiB/s""#, r#"sent = "50MiB""#),
            r#"sent = "50MiB""#,
            "sent",
        ),
        t(
            "zero rate",
            with(r#"sent = "1MiB/s""#, r#"sent = "0MiB/s""#),
            r#"sent = "0MiB/s""#,
            "sent",
        ),
        t(
            "negative rate",
            with(r#"sent = "1MiB/s""#, r#"sent = "-5MiB/s""#),
            r#"sent = "-5MiB/s""#,
            "sent",
        ),
        t(
            "rate per minute",
            with(r#"sent = "1MiB/s""#, r#"peer_received = "1MiB/min""#),
            r#"peer_received = "1MiB/min""#,
            "peer_received",
        ),
        // Values that parse but make no sense.
        t(
            "unknown backend",
            with(r#"backend = "auto""#, r#"backend = "ebpf""#),
            r#"backend = "ebpf""#,
            "backend",
        ),
        t(
            "unknown output",
            with(r#"output = "json""#, r#"output = "xml""#),
            r#"output = "xml""#,
            "output",
        ),
        t(
            "zero processes capacity",
            with("processes = 64", "processes = 0"),
            "processes = 0",
            "processes",
        ),
        t(
            "duplicate target names",
            format!("{BASE}\n[[target]]\nname = \"db\" # again\nprocess = [\"other\"]\n"),
            r#"name = "db" # again"#,
            "name",
        ),
        t(
            "a process in two targets",
            format!("{BASE}\n[[target]]\nname = \"db2\"\nprocess = [\"dbd\"] # again\n"),
            r#"process = ["dbd"] # again"#,
            "process",
        ),
        t(
            "empty process list, no unit or cgroup",
            with(r#"process = ["dbd"]"#, "process = []"),
            "process = []",
            "process",
        ),
        t(
            "no process key, no unit or cgroup",
            with(r#"process = ["dbd"]"#, ""),
            "[[target]]",
            "process",
        ),
        t(
            "process name with a path",
            with(r#"process = ["dbd"]"#, r#"process = ["/usr/sbin/dbd"]"#),
            r#"process = ["/usr/sbin/dbd"]"#,
            "process",
        ),
        t(
            "empty process name",
            with(r#"process = ["dbd"]"#, r#"process = [""]"#),
            r#"process = [""]"#,
            "process",
        ),
        t(
            "empty target name",
            with(r#"name = "db""#, r#"name = """#),
            r#"name = """#,
            "name",
        ),
        t(
            "relative cgroup path",
            after(
                r#"process = ["dbd"]"#,
                r#"cgroup = "system.slice/db.service""#,
            ),
            r#"cgroup = "system.slice/db.service""#,
            "cgroup",
        ),
        t(
            "cgroup path with ..",
            after(
                r#"process = ["dbd"]"#,
                r#"cgroup = "/system.slice/../db.service""#,
            ),
            r#"cgroup = "/system.slice/../db.service""#,
            "cgroup",
        ),
        t(
            "unit with a slash",
            after(
                r#"process = ["dbd"]"#,
                r#"unit = "system.slice/db.service""#,
            ),
            r#"unit = "system.slice/db.service""#,
            "unit",
        ),
        t(
            "empty unit",
            after(r#"process = ["dbd"]"#, r#"unit = """#),
            r#"unit = """#,
            "unit",
        ),
        t(
            "threshold without a rate",
            with(r#"sent = "1MiB/s""#, ""),
            "[target.threshold]",
            "threshold",
        ),
        v(
            "no [[target]]",
            BASE[..BASE.find("[[target]]").unwrap()].to_string(),
            "target",
        ),
        v("no interval", with(r#"interval = "1s""#, ""), "interval"),
        // Syslog destinations and the JSON schema.
        t(
            "unknown json_schema",
            after(r#"output = "json""#, r#"json_schema = "elastic""#),
            r#"json_schema = "elastic""#,
            "json_schema",
        ),
        t(
            "unknown syslog transport",
            syslog(&["transport = \"tcpp\"", "address = \"127.0.0.1:514\""]),
            r#"transport = "tcpp""#,
            "transport",
        ),
        t(
            "unknown key in [[syslog]]",
            syslog(&["address = \"/dev/log\"", "port = 514"]),
            "port = 514",
            "port",
        ),
        t(
            "syslog queue as a string",
            syslog(&["address = \"/dev/log\"", "queue = \"big\""]),
            r#"queue = "big""#,
            "queue",
        ),
        v(
            "[[syslog]] without an address",
            syslog(&["transport = \"tcp\""]),
            "address",
        ),
        t(
            "remote syslog address without a port",
            syslog(&["transport = \"tcp\"", "address = \"logs.example.net\""]),
            "address = \"logs.example.net\"",
            "address",
        ),
        t(
            "remote syslog address with port 0",
            syslog(&["transport = \"udp\"", "address = \"127.0.0.1:0\""]),
            "address = \"127.0.0.1:0\"",
            "address",
        ),
        t(
            "local syslog address that is not a path",
            syslog(&["transport = \"local\"", "address = \"dev/log\""]),
            "address = \"dev/log\"",
            "address",
        ),
        t(
            "unknown syslog facility",
            syslog(&["address = \"/dev/log\"", "facility = \"local9\""]),
            "facility = \"local9\"",
            "facility",
        ),
        t(
            "syslog app_name with a space",
            syslog(&["address = \"/dev/log\"", "app_name = \"net io\""]),
            "app_name = \"net io\"",
            "app_name",
        ),
        t(
            "syslog queue of zero",
            syslog(&["address = \"/dev/log\"", "queue = 0"]),
            "queue = 0",
            "queue",
        ),
        t(
            "ca_file on a tcp destination",
            syslog(&[
                "transport = \"tcp\"",
                "address = \"127.0.0.1:514\"",
                "ca_file = \"/etc/ca.pem\"",
            ]),
            "ca_file = \"/etc/ca.pem\"",
            "ca_file",
        ),
        t(
            "client_cert without client_key",
            syslog(&[
                "transport = \"tls\"",
                "address = \"127.0.0.1:6514\"",
                "client_cert = \"/etc/c.pem\"",
            ]),
            "client_cert = \"/etc/c.pem\"",
            "client_key",
        ),
        // Syntax.
        t(
            "unterminated string",
            with(r#"name = "db""#, r#"name = "db"#),
            r#"name = "db"#,
            "name",
        ),
        t(
            "missing =",
            with(r#"for = "2s""#, r#"for "2s""#),
            r#"for "2s""#,
            "for",
        ),
        t(
            "broken table header",
            with("[[target]]", "[[target]"),
            "[[target]",
            "target",
        ),
        t(
            "key given twice",
            after(r#"interval = "1s""#, r#"interval = "2s""#),
            r#"interval = "2s""#,
            "interval",
        ),
        t(
            "NUL byte",
            with(r#"output = "json""#, "output = \"json\"\0"),
            "output = \"json\"\0",
            "output",
        ),
    ];
    // Files that are not a config at all.
    c.push(case("empty file", String::new(), None, "interval"));
    let mut bytes = BASE.as_bytes().to_vec();
    let at = BASE.find("process").unwrap();
    bytes.splice(at..at, b"# caf\xe9 \xff\n".iter().copied());
    c.push(Case {
        what: "invalid UTF-8",
        file: File::Bytes(bytes),
        line: Some("# caf"),
        key: None,
    });
    let mut huge = BASE.to_string();
    while huge.len() <= 1 << 20 {
        huge.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    c.push(Case {
        what: "file over 1 MiB (valid TOML)",
        file: File::Text(huge),
        line: None,
        key: None,
    });
    c.push(Case {
        what: "missing file",
        file: File::Missing,
        line: None,
        key: None,
    });
    c.push(Case {
        what: "a directory",
        file: File::Directory,
        line: None,
        key: None,
    });
    c
}

/// Runs `cmd`, killing it after `limit`; `None` if it had to be killed.
fn run_limited(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return Some(child.wait_with_output().expect("collect output"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `text` says `line N` (and not `line N0`).
fn names_line(text: &str, n: usize) -> bool {
    let needle = format!("line {n}");
    text.match_indices(&needle).any(|(i, _)| {
        !text[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// What is wrong with netio's answer to a bad config, if anything.
fn problems(c: &Case, path: &Path, expected_line: Option<usize>, args: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(netio_bin());
    cmd.args(args);
    let label = args.join(" ");
    let Some(out) = run_limited(&mut cmd, Duration::from_secs(20)) else {
        return vec![format!("`netio {label}` was still running after 20 s")];
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let mut p = Vec::new();
    if out.status.code() != Some(2) {
        p.push(format!(
            "`netio {label}` exited with {}, want 2",
            out.status
        ));
    }
    if err.contains("panicked") {
        p.push(format!("`netio {label}` panicked"));
    }
    if !err.contains(&path.display().to_string()) {
        p.push(format!("`netio {label}`: stderr does not name the file"));
    }
    if let Some(n) = expected_line {
        if !names_line(&err, n) {
            p.push(format!("`netio {label}`: stderr does not say `line {n}`"));
        }
    }
    if let Some(key) = c.key {
        if !err.contains(key) {
            p.push(format!("`netio {label}`: stderr does not name `{key}`"));
        }
    }
    if !p.is_empty() {
        p.push(format!(
            "  stderr: {}",
            err.lines().take(4).collect::<Vec<_>>().join("\n          ")
        ));
    }
    p
}

/// Writes each case's file and runs `check-config` and `run` on it; every
/// way netio's answer falls short, by case.
pub(crate) fn refusals(scratch: &Scratch, cases: &[Case]) -> Result<(), String> {
    let mut failures = Vec::new();
    let mut failed = std::collections::BTreeSet::new();
    for (i, c) in cases.iter().enumerate() {
        let path: PathBuf = scratch.path(&format!("case-{i:02}.conf"));
        let mut expected_line = None;
        match &c.file {
            File::Text(text) => {
                std::fs::write(&path, text).unwrap();
                expected_line = c.line.map(|l| {
                    text.lines()
                        .position(|x| x == l)
                        .unwrap_or_else(|| panic!("{}: no line {l:?} in the case", c.what))
                        + 1
                });
            }
            File::Bytes(bytes) => {
                std::fs::write(&path, bytes).unwrap();
                expected_line = c.line.map(|l| {
                    bytes
                        .split(|&b| b == b'\n')
                        .position(|x| x.starts_with(l.as_bytes()))
                        .unwrap_or_else(|| panic!("{}: no line {l:?} in the case", c.what))
                        + 1
                });
            }
            File::Missing => {}
            File::Directory => std::fs::create_dir(&path).unwrap(),
        }
        let p = path.to_str().expect("UTF-8 path");
        for args in [
            vec!["check-config", p],
            vec!["run", "--config", p, "--output", "json"],
        ] {
            for problem in problems(c, &path, expected_line, &args) {
                failed.insert(c.what);
                failures.push(format!("{}: {problem}", c.what));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} bad configs were not refused properly:\n{}",
            failed.len(),
            cases.len(),
            failures.join("\n")
        ))
    }
}

#[test]
fn every_bad_config_exits_2_naming_file_line_and_key() {
    let scratch = Scratch::new("bad-configs");
    let base = scratch.path("base.conf");
    std::fs::write(&base, BASE).unwrap();
    let out = run_limited(
        Command::new(netio_bin()).arg("check-config").arg(&base),
        Duration::from_secs(20),
    )
    .expect("check-config of the base config hung");
    assert!(
        out.status.success(),
        "the base config must be valid for the cases to mean anything: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    if let Err(e) = refusals(&scratch, &cases) {
        panic!("{e}");
    }
}

/// "300000000000y" parses as a Duration, but no clock can count to it:
/// check-config must refuse it, and `run` must refuse it the same way
/// rather than panic when it schedules the first interval.
#[test]
fn interval_too_long_for_the_clock_is_refused_without_a_panic() {
    let scratch = Scratch::new("huge-interval");
    let cases = [case(
        "interval of 300 billion years",
        with(r#"interval = "1s""#, r#"interval = "300000000000y""#),
        None,
        "interval",
    )];
    if let Err(e) = refusals(&scratch, &cases) {
        panic!("{e}");
    }
}

/// Runs `netio check-config FILE`, which must succeed; returns what it
/// printed minus its first line (the `# FILE: valid` comment).
pub(crate) fn effective(path: &Path) -> String {
    let out = run_limited(
        Command::new(netio_bin()).arg("check-config").arg(path),
        Duration::from_secs(20),
    )
    .expect("check-config hung");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "check-config {} failed ({}):\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (first, rest) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    assert!(
        first.starts_with('#') && first.contains(&path.display().to_string()),
        "first line should be a comment naming the file: {first:?}"
    );
    rest.to_string()
}

/// check-config's output, written back to a file, checks again and prints
/// the same config.
fn assert_reparses(scratch: &Scratch, path: &Path) -> String {
    let first = effective(path);
    let again = scratch.path("effective.conf");
    std::fs::write(&again, &first).unwrap();
    let second = effective(&again);
    assert_eq!(
        first, second,
        "check-config's output, checked again, reads differently"
    );
    first
}

#[test]
fn shipped_netio_conf_is_valid_and_check_config_output_reparses() {
    let scratch = Scratch::new("shipped-conf");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../netio.conf");
    let text = assert_reparses(&scratch, &shipped);
    for target in ["mariadb", "postgresql", "redis"] {
        assert!(
            text.contains(&format!("name = \"{target}\"")),
            "target {target} of the shipped config is missing from:\n{text}"
        );
    }
}

/// Names with characters TOML must escape survive the round trip.
#[test]
fn check_config_output_reparses_with_names_that_need_escaping() {
    let scratch = Scratch::new("escaping");
    let path = scratch.path("names.conf");
    std::fs::write(
        &path,
        r#"interval = "1s"
[[target]]
name = "quote \" backslash \\ tab \t escape \u001b ünïcode"
process = ["dbd"]
"#,
    )
    .unwrap();
    assert_reparses(&scratch, &path);
}

/// Bytes per second that a rate printed by check-config stands for,
/// e.g. "1500000B/s", "1.4 MiB/s" or "50 MB/s"; None if it is not exact.
fn rate_value(printed: &str) -> Option<u64> {
    let s = printed.trim().strip_suffix("/s")?.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = (&s[..split], s[split..].trim());
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        "tb" => 1000 * 1000 * 1000 * 1000,
        "tib" => 1 << 40,
        _ => return None,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    // number * mult, exactly, or None when it is not a whole byte count.
    let digits = format!("{int}{frac}");
    let scaled = digits.parse::<u128>().ok()? * mult as u128;
    let div = 10u128.pow(frac.len() as u32);
    let whole = scaled / div;
    (whole * div == scaled).then_some(whole as u64)
}

#[test]
fn rate_value_parses_exact_rates_only() {
    assert_eq!(rate_value("1500000B/s"), Some(1_500_000));
    assert_eq!(rate_value("1.5 MiB/s"), Some(1_572_864));
    assert_eq!(rate_value("50 MB/s"), Some(50_000_000));
    assert_eq!(rate_value("1.4 MiB/s"), None);
}

/// check-config "prints it as netio understands it": a threshold printed
/// as "1.4 MiB/s" when netio compares against 1500000 bytes/s is a
/// different config once copied back.
#[test]
fn check_config_prints_thresholds_as_the_exact_rates_netio_uses() {
    let scratch = Scratch::new("rates");
    let path = scratch.path("rates.conf");
    std::fs::write(
        &path,
        r#"interval = "1s"
[[target]]
name = "db"
process = ["dbd"]
[target.threshold]
sent = "1500000B/s"
received = "50MB/s"
peer_sent = "1KB/s"
peer_received = "3GiB/s"
"#,
    )
    .unwrap();
    let text = effective(&path);
    let mut wrong = Vec::new();
    for (key, want) in [
        ("sent", 1_500_000u64),
        ("received", 50_000_000),
        ("peer_sent", 1000),
        ("peer_received", 3 << 30),
    ] {
        let printed = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("check-config printed no {key}:\n{text}"));
        let value = rate_value(printed.trim_matches('"'));
        if value != Some(want) {
            wrong.push(format!(
                "{key}: configured {want} bytes/s, printed {printed} ({})",
                value.map_or("not an exact byte count".into(), |v| format!("{v} bytes/s"))
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n\ncheck-config printed:\n{text}",
        wrong.join("\n")
    );
}
