//! netio as systemd runs it, on a machine where systemd is not PID 1:
//! `systemd-analyze` verifies the shipped unit and scores its sandbox; a
//! test plays the service manager's side of the notify protocol; netio runs
//! under the unit's capability bounding set and file-system protections,
//! rebuilt here with the same kernel interfaces systemd uses, and must
//! attach and count exactly; and every system call netio makes must be one
//! the unit's `SystemCallFilter=` lets through.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::unit::{self, service_settings, setting, unit_path, Sandbox, Staging};
use common::{
    backend, event, netio_bin, unique_name, write_config, Netio, Program, Scratch, TARGET,
};

// ---------------------------------------------------------------- the unit

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("run systemd-analyze (the systemd package)")
}

#[test]
fn systemd_verifies_the_unit_and_scores_its_sandbox_2_5_or_better() {
    let _turn = crate::turn(module_path!());
    let scratch = Scratch::new("unit");
    // As installed: ExecStart= must name an executable, which here is the
    // netio just built.
    let unit = std::fs::read_to_string(unit_path())
        .unwrap()
        .replace("/usr/bin/netio", &netio_bin().display().to_string());
    let path = scratch.path("netio.service");
    std::fs::write(&path, unit).unwrap();
    let p = path.to_str().unwrap();

    // The man pages are checked by the package tests, where they exist.
    let verify = systemd_analyze(&["verify", "--man=no", p]);
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {}\n{complaints}",
        verify.status
    );

    let security = systemd_analyze(&["security", "--offline=true", "--no-pager", p]);
    let report = String::from_utf8_lossy(&security.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for netio.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    println!("systemd-analyze security --offline=true: exposure {score} (0 safest, 10 worst)");
    assert!(
        score <= 2.5,
        "exposure {score} is above 2.5; what systemd-analyze holds against the unit:\n{}",
        report
            .lines()
            .filter(|l| l.contains('✗'))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn journald_is_told_not_to_rate_limit_netios_records() {
    let _turn = crate::turn(module_path!());
    // Without systemd as PID 1 there is no unit for journald to apply it
    // to; what is checked is that the unit asks (systemd passes it on to
    // journald as the unit's rate limit).
    let settings = service_settings();
    let limit: Vec<&String> = settings
        .iter()
        .filter(|(k, _)| k == "LogRateLimitIntervalSec")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(limit, ["0"], "LogRateLimitIntervalSec= in netio.service");
}

#[test]
fn reload_validates_the_config_before_signalling() {
    let _turn = crate::turn(module_path!());
    let reload: Vec<String> = service_settings()
        .into_iter()
        .filter(|(k, _)| k == "ExecReload")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(reload.len(), 2, "ExecReload= lines: {reload:?}");
    assert!(
        reload[0].starts_with("/usr/bin/netio check-config "),
        "the first ExecReload= must validate the config: {reload:?}"
    );
    assert!(
        reload[1].contains("kill -HUP $MAINPID"),
        "the second ExecReload= must signal netio: {reload:?}"
    );
    // ... and check-config refuses what a reload would refuse, so a broken
    // file fails the reload job instead of reaching the agent.
    let scratch = Scratch::new("reload-check");
    let bad = scratch.path("bad.toml");
    std::fs::write(&bad, "interval = \"soon\"\n").unwrap();
    let out = Command::new(netio_bin())
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "check-config accepted a broken file");
    assert_eq!(setting("Type"), "notify");
}

// ---------------------------------------------------------------- notify

/// What netio sent to the notify socket, each with its arrival time.
struct NotifyListener {
    path: PathBuf,
    rx: mpsc::Receiver<(Instant, String)>,
    got: Vec<(Instant, String)>,
}

impl NotifyListener {
    fn new(scratch: &Scratch) -> Self {
        let path = scratch.path("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        Self {
            path,
            rx,
            got: Vec::new(),
        }
    }

    /// Waits until a message with `line` among its assignments arrives.
    fn wait_for(&mut self, line: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, msg)) => {
                    self.got.push((at, msg.clone()));
                    if msg.lines().any(|l| l == line) {
                        return msg;
                    }
                }
                Err(_) => panic!(
                    "no {line} from netio within {timeout:?}; got: {:?}",
                    self.messages()
                ),
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.got.push(m);
        }
    }

    fn messages(&self) -> Vec<&str> {
        self.got.iter().map(|(_, m)| m.as_str()).collect()
    }
}

fn kill(pid: u32, sig: libc::c_int) {
    // SAFETY: kill on the pid of a child that has not been reaped.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

#[test]
fn notify_protocol_ready_watchdog_reloading_stopping_in_order() {
    let _turn = crate::turn(module_path!());
    let scratch = Scratch::new("notify");
    let mut notify = NotifyListener::new(&scratch);
    let name = unique_name("ntn");
    // An interval far longer than the test: every WATCHDOG=1 must come from
    // the loop waking for the watchdog, not from interval ends.
    let config = write_config(&scratch, "1h", &[(TARGET, &[name.as_str()])]);
    let watchdog = Duration::from_millis(600);
    let sock = notify.path.clone();
    let mut netio = Netio::start_file_with(&config, |cmd| {
        cmd.env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", watchdog.as_micros().to_string());
    });

    let ready = notify.wait_for("READY=1", Duration::from_secs(10));
    assert!(
        ready.contains("STATUS=counting 0 processes of 1 target"),
        "READY=1 should carry what netio counts: {ready:?}"
    );
    // Fed through a few watchdog periods.
    std::thread::sleep(watchdog * 4);

    // A valid reload: RELOADING=1 (with the monotonic time systemd wants),
    // then READY=1 once the new config is in force.
    let tracked = Program::named(&scratch, &name);
    let _server = tracked.server("bulk", "127.0.0.1:0", &["--size", "1000"]);
    std::fs::write(
        &config,
        format!(
            "interval = \"1h\"\n\n[[target]]\nname = \"{TARGET}\"\nprocess = [\"{name}\", \"other-name\"]\n"
        ),
    )
    .unwrap();
    kill(netio.pid(), libc::SIGHUP);
    let reloading = notify.wait_for("RELOADING=1", Duration::from_secs(10));
    assert!(
        reloading.lines().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))),
        "RELOADING=1 without MONOTONIC_USEC: {reloading:?}"
    );
    let again = notify.wait_for("READY=1", Duration::from_secs(10));
    assert!(
        again.contains("STATUS=counting 1 process of 1 target"),
        "READY=1 after the reload should count the server it found: {again:?}"
    );
    assert!(netio.wait_until(Duration::from_secs(5), |r| r
        .iter()
        .any(|v| event(v) == Some("config_reloaded"))));

    // A broken file: refused, but the service manager still hears the
    // reload end.
    std::fs::write(&config, "interval = 5\n").unwrap();
    kill(netio.pid(), libc::SIGHUP);
    notify.wait_for("RELOADING=1", Duration::from_secs(10));
    notify.wait_for("READY=1", Duration::from_secs(10));
    assert!(netio.wait_until(Duration::from_secs(5), |r| r
        .iter()
        .any(|v| event(v) == Some("config_rejected"))));

    let pid = netio.pid();
    let records = netio.stop();
    notify.drain();
    assert!(
        records.records.iter().any(|v| event(v) == Some("stopping")),
        "no stopping record (pid {pid})"
    );

    // The order, watchdog keep-alives aside.
    let states: Vec<&str> = notify
        .messages()
        .into_iter()
        .filter(|m| *m != "WATCHDOG=1")
        .map(|m| m.lines().next().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "STOPPING=1"
        ],
        "every message: {:?}",
        notify.messages()
    );
    // Keep-alives: none before READY, and never a gap the service manager
    // would take for a hang (half the period is what netio aims at).
    let first = notify.got.first().map(|(_, m)| m.as_str());
    assert!(first.is_some_and(|m| m.starts_with("READY=1")), "{first:?}");
    let beats: Vec<Instant> = notify
        .got
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1" || m.starts_with("READY=1"))
        .map(|(at, _)| *at)
        .collect();
    assert!(
        beats.len() >= 6,
        "only {} keep-alives in more than {:?}",
        beats.len(),
        watchdog * 4
    );
    let worst = beats.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        worst < watchdog,
        "{worst:?} between keep-alives, with WATCHDOG_USEC of {watchdog:?}"
    );
}

#[test]
fn watchdog_for_another_pid_is_not_fed() {
    let _turn = crate::turn(module_path!());
    let scratch = Scratch::new("notify-pid");
    let mut notify = NotifyListener::new(&scratch);
    let config = write_config(&scratch, "1h", &[(TARGET, &["ntn-nothing"])]);
    let sock = notify.path.clone();
    let netio = Netio::start_file_with(&config, |cmd| {
        cmd.env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", "200000")
            .env("WATCHDOG_PID", "1");
    });
    notify.wait_for("READY=1", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(800));
    let _ = netio.stop();
    notify.drain();
    assert!(
        !notify.messages().contains(&"WATCHDOG=1"),
        "WATCHDOG_PID names another process, yet netio fed the watchdog: {:?}",
        notify.messages()
    );
}

// ---------------------------------------------------------------- the sandbox

#[test]
fn with_the_units_capabilities_and_sandbox_it_attaches_and_counts_exactly() {
    let _turn = crate::turn(module_path!());
    // The package tests do the same with the installed /usr/bin/netio.
    unit::counts_exactly_as_the_unit_runs_it(&netio_bin());
}

#[test]
fn without_cap_perfmon_it_refuses_to_start_and_says_why() {
    let _turn = crate::turn(module_path!());
    // The control: the sandbox really takes capabilities away, so the test
    // above proves the unit's set is enough.
    let scratch = Scratch::new("sandbox-control");
    let config = write_config(&scratch, "1s", &[(TARGET, &["ntu-nothing"])]);
    let (staging, bin, conf) = Staging::new(&netio_bin(), &config);
    let sandbox = Sandbox::from_unit(&staging.0).without("CAP_PERFMON");
    let mut cmd = Command::new(&bin);
    cmd.args([
        "run",
        "--config",
        conf.to_str().unwrap(),
        "--backend",
        &backend(),
    ])
    .args(["--output", "json"]);
    sandbox.apply(&mut cmd);
    let out = common::output_within(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "netio ran without CAP_PERFMON: {stderr}"
    );
    assert!(
        stderr.contains("no backend could be loaded")
            && (stderr.contains("ermission") || stderr.contains("EPERM")),
        "netio should say it lacks a permission: {stderr}"
    );
}

// ---------------------------------------------------------------- seccomp

/// `systemd-analyze syscall-filter`'s groups, each with its members
/// (system calls and nested groups).
fn syscall_groups() -> BTreeMap<String, Vec<String>> {
    let out = systemd_analyze(&["syscall-filter", "--no-pager"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && t.starts_with('@') {
            current = Some(t.to_string());
            groups.entry(t.to_string()).or_default();
        } else if let Some(g) = &current {
            groups.get_mut(g).unwrap().push(t.to_string());
        }
    }
    assert!(groups.contains_key("@system-service"), "{text}");
    groups
}

fn expand(item: &str, groups: &BTreeMap<String, Vec<String>>, out: &mut BTreeSet<String>) {
    if item.starts_with('@') {
        for m in groups
            .get(item)
            .unwrap_or_else(|| panic!("unknown group {item}"))
        {
            expand(m, groups, out);
        }
    } else {
        out.insert(item.to_string());
    }
}

/// The system calls the unit's SystemCallFilter= lines allow: the first
/// line is an allow list, later `~` lines take calls away (systemd's rule).
fn allowed_syscalls() -> BTreeSet<String> {
    let groups = syscall_groups();
    let mut allowed = BTreeSet::new();
    for (i, (_, v)) in service_settings()
        .into_iter()
        .filter(|(k, _)| k == "SystemCallFilter")
        .enumerate()
    {
        let (deny, list) = match v.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, v.as_str()),
        };
        assert!(deny || i == 0, "allow lists after a deny list: {v}");
        let mut set = BTreeSet::new();
        for item in list.split_whitespace() {
            expand(item, &groups, &mut set);
        }
        if deny {
            allowed.retain(|s| !set.contains(s));
        } else {
            allowed.extend(set);
        }
    }
    allowed
}

#[test]
fn every_system_call_netio_makes_passes_the_units_filter() {
    let _turn = crate::turn(module_path!());
    let allowed = allowed_syscalls();
    let families: BTreeSet<String> = setting("RestrictAddressFamilies")
        .split_whitespace()
        .map(str::to_string)
        .collect();

    let scratch = Scratch::new("seccomp");
    let name = unique_name("nts");
    let config = write_config(&scratch, "1s", &[(TARGET, &[name.as_str()])]);
    let trace = scratch.path("strace.log");
    let out = scratch.path("netio.out");
    // strace follows netio's threads; -qq drops strace's own chatter.
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-o", trace.to_str().unwrap(), "--"])
        .arg(netio_bin())
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--backend",
            &backend(),
        ])
        .args(["--output", "json"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace (the strace package)");
    let started = |p: &Path| {
        std::fs::read_to_string(p).is_ok_and(|s| s.contains("\"NETIO_EVENT\":\"started\""))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started(&out) {
        assert!(
            Instant::now() < deadline,
            "netio under strace did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // netio is strace's child: find it to signal it.
    let children = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        strace.id(),
        strace.id()
    ))
    .unwrap();
    let netio: u32 = children.split_whitespace().next().unwrap().parse().unwrap();

    // The paths a running agent takes: traffic, a new process, a reload,
    // an interval's end, the stop.
    let tracked = Program::named(&scratch, &name);
    common::exchange(
        &tracked,
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", "100000"],
    );
    kill(netio, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(1500));
    kill(netio, libc::SIGTERM);
    let status = strace.wait().unwrap();
    assert!(status.success(), "netio under strace: {status}");

    let log = std::fs::read_to_string(&trace).unwrap();
    // After netio's execve: the lines before are strace starting it.
    let log = &log[log.find("execve(").expect("execve in the trace")..];
    let mut used = BTreeSet::new();
    let mut socket_families = BTreeSet::new();
    for line in log.lines().skip(1) {
        let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
        let rest = rest.strip_prefix("<... ").unwrap_or(rest);
        let call: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if call.is_empty()
            || !(rest[call.len()..].starts_with('(') || rest[call.len()..].starts_with(" resumed"))
        {
            continue;
        }
        if call == "socket" {
            if let Some(f) = rest
                .strip_prefix("socket(")
                .and_then(|r| r.split([',', ')']).next())
            {
                socket_families.insert(f.to_string());
            }
        }
        used.insert(call);
    }
    assert!(used.contains("bpf"), "no bpf() in the trace: {used:?}");
    println!(
        "netio's system calls: {}",
        used.iter().cloned().collect::<Vec<_>>().join(" ")
    );
    let refused: Vec<&String> = used.difference(&allowed).collect();
    assert!(
        refused.is_empty(),
        "netio.service's SystemCallFilter= would refuse {refused:?}"
    );
    let refused: Vec<&String> = socket_families.difference(&families).collect();
    assert!(
        refused.is_empty(),
        "netio.service's RestrictAddressFamilies= would refuse {refused:?}"
    );
}
