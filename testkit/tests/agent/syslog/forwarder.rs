//! packaging/rsyslog/netio-forward.conf, run as shipped (only the
//! collector's address and port replaced) between the journal and a
//! collector, with netio running as netio.service runs it: root, in the
//! unit's cgroup, sandboxed, writing to the journal. Meanwhile a local user
//! (uid 65534) writes entries that look like netio's every way journald
//! takes them. The collector must get every record of netio's, with every
//! field, and none of theirs (docs/siem.md, "Trust").

use super::{parsed_sd, text, traffic, Rsyslog};
use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::journald::{
    entries_with, journal_of, journald_start, native_entry, JournalNetio, Via, Writer, Written,
    DEV_LOG, JOURNALD,
};
use common::unit::{Sandbox, Staging, UnitCgroup};
use common::TARGET;
use common::{free_port, netio_bin, unique_name, unique_suffix, write_config, Program, Scratch};
use serde_json::Value;

/// The uid the attacker runs as.
const NOBODY: u32 = 65534;

/// The fields of a journal entry that netio wrote and the forwarding
/// example must carry as structured data.
fn netio_fields(entry: &Value) -> BTreeMap<String, String> {
    entry
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            k.starts_with("NETIO_")
                || ["MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER"].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

/// The shipped example with only the collector's address and port
/// replaced, and rsyslog's work directory the test's.
fn shipped_forwarder(scratch: &Scratch, port: u16) -> Rsyslog {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/rsyslog/netio-forward.conf"),
    )
    .unwrap();
    for placeholder in [r#"target="collector.example.net""#, r#"port="514""#] {
        assert_eq!(
            shipped.matches(placeholder).count(),
            1,
            "the example has one {placeholder}"
        );
    }
    let forward = shipped
        .replace(r#"target="collector.example.net""#, r#"target="127.0.0.1""#)
        .replace(r#"port="514""#, &format!("port=\"{port}\""));
    let work = scratch.path("forwarder.work");
    std::fs::create_dir_all(&work).unwrap();
    let config = scratch.path("forwarder.conf");
    std::fs::write(
        &config,
        format!("global(workDirectory=\"{}\")\n{forward}", work.display()),
    )
    .unwrap();
    Rsyslog {
        child: None,
        config,
        pidfile: scratch.path("forwarder.pid"),
        log: scratch.path("forwarder.log"),
        out: scratch.path("forwarder.out"),
        port: None,
        socket: None,
    }
}

/// A look-alike of one of netio's records, `kind` `traffic` (a target's
/// interval with no bytes) or `threshold_recovered`, claiming netio's PID
/// and the fields only journald may set. `token` in MESSAGE tells it apart.
fn look_alike(kind: &str, token: &str, netio_pid: Option<u32>) -> Vec<(&'static str, String)> {
    let s = |v: &str| v.to_string();
    let mut fields = match kind {
        "traffic" => vec![
            ("MESSAGE", format!("{TARGET} sent=0 received=0 {token}")),
            ("MESSAGE_ID", s("6e6059a2f2b64d14920758e625c563d6")),
            ("PRIORITY", s("6")),
            ("NETIO_SCOPE", s("target")),
            ("NETIO_SENT_BYTES", s("0")),
            ("NETIO_RECEIVED_BYTES", s("0")),
            ("NETIO_SENT_BYTES_PER_SEC", s("0")),
            ("NETIO_RECEIVED_BYTES_PER_SEC", s("0")),
            ("NETIO_INTERVAL_MS", s("1000")),
            ("NETIO_PROCESSES", s("1")),
        ],
        "threshold_recovered" => vec![
            ("MESSAGE", format!("{TARGET} sent rate recovered {token}")),
            ("MESSAGE_ID", s("7a8a09f12833467bb68f1df09f2a4a4a")),
            ("PRIORITY", s("5")),
            ("NETIO_DIRECTION", s("sent")),
            ("NETIO_RATE_BYTES_PER_SEC", s("0")),
            ("NETIO_THRESHOLD_BYTES_PER_SEC", s("1000000")),
            ("NETIO_SUSTAIN_MS", s("3000")),
            ("NETIO_DURATION_MS", s("3000")),
        ],
        other => panic!("no look-alike of {other}"),
    };
    fields.extend([
        ("SYSLOG_IDENTIFIER", s("netio")),
        ("NETIO_EVENT", s(kind)),
        ("NETIO_SCHEMA", s("1")),
        ("NETIO_TARGET", s(TARGET)),
        ("_SYSTEMD_UNIT", s("netio.service")),
        ("_UID", s("0")),
        ("_EXE", s("/usr/bin/netio")),
    ]);
    if let Some(pid) = netio_pid {
        fields.extend([("SYSLOG_PID", pid.to_string()), ("_PID", pid.to_string())]);
    }
    fields
}

/// The entries the attacker wrote: how, and the token each carries.
struct Forgeries {
    prefix: String,
    since: SystemTime,
    written: Vec<(String, String)>,
}

impl Forgeries {
    fn new() -> Self {
        Self {
            prefix: format!("forged-{}", unique_suffix()),
            since: SystemTime::now(),
            written: Vec::new(),
        }
    }

    /// A fresh token for an entry written `how`.
    fn token(&mut self, how: &str) -> String {
        let token = format!("{}-{}", self.prefix, self.written.len());
        self.written.push((how.to_string(), token.clone()));
        token
    }

    /// journald's entry for `token`, once it has stored it.
    fn stored(&self, token: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = entries_with(token, self.since).into_iter().next() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "journald did not store the entry {token}: the test would prove nothing"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes with `writer` and waits until journald has stored it, the
    /// writer's process still there for journald to look up.
    fn write(&mut self, how: &str, writer: &Writer, via: Via, payload: impl Fn(&str) -> Vec<u8>) {
        let token = self.token(how);
        let written: Written = writer.write(via, &payload(&token));
        self.stored(&token);
        drop(written);
    }

    /// Runs the command `build` makes for a token, as the attacker, with
    /// the text it gives as its standard input.
    fn run(&mut self, how: &str, build: impl Fn(&str) -> (Command, String)) {
        let token = self.token(how);
        let (mut cmd, input) = build(&token);
        let mut child = cmd
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{how}: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "{how} failed");
        self.stored(&token);
    }

    /// Each entry as journald stored it, with how it was written.
    fn as_stored(&self) -> Vec<(String, Value)> {
        self.written
            .iter()
            .map(|(how, token)| (how.clone(), self.stored(token)))
            .collect()
    }
}

/// What journald recorded about an entry's sender.
fn sender(how: &str, e: &Value) -> String {
    let f = |k: &str| e[k].as_str().unwrap_or("-").to_string();
    format!(
        "{how}: _UID={} _SYSTEMD_UNIT={} _SYSTEMD_USER_UNIT={} _TRANSPORT={}",
        f("_UID"),
        f("_SYSTEMD_UNIT"),
        f("_SYSTEMD_USER_UNIT"),
        f("_TRANSPORT")
    )
}

/// Whether this kernel lets an unprivileged user make a user namespace.
fn nobody_can_unshare_user() -> bool {
    Command::new("unshare")
        .args(["-Ur", "true"])
        .uid(NOBODY)
        .gid(NOBODY)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// netio as netio.service runs it: root, in the unit's cgroup, in the
/// unit's sandbox, from a staging copy (as /usr/bin would hold it).
fn netio_as_the_service(
    scratch: &Scratch,
    name: &str,
    unit: &UnitCgroup,
) -> (JournalNetio, Staging) {
    let config = write_config(scratch, "1s", &[(TARGET, &[name])]);
    let (staging, bin, conf) = Staging::new(&netio_bin(), &config);
    let sandbox = Sandbox::from_unit(&staging.0);
    let netio = JournalNetio::start_bin_with(&bin, &conf, |cmd| {
        unit.exec_in(cmd);
        sandbox.apply(cmd);
    });
    (netio, staging)
}

/// Probes from root in the unit's cgroup until one reaches the collector:
/// imjournal ignores what is in the journal when it starts, so netio's
/// first record must come after it has found the journal's end. Returns
/// the last probe's process, still there.
fn wait_until_forwarding(unit: &UnitCgroup, collector: &Rsyslog, forwarder: &Rsyslog) -> Written {
    let prober = Writer {
        cgroup: Some(unit.dir.clone()),
        ..Writer::root()
    };
    let probe = native_entry(&[
        ("SYSLOG_IDENTIFIER", "netio".into()),
        ("NETIO_EVENT", "probe".into()),
        ("MESSAGE", format!("forwarder ready? {PROBE}")),
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = prober.write(Via::Native, &probe);
        std::thread::sleep(Duration::from_millis(300));
        if collector.messages().iter().any(is_probe) {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "the forwarder passed on no probe within 30 s; its log:\n{}",
            std::fs::read_to_string(&forwarder.log).unwrap_or_default()
        );
    }
}

/// What the readiness probes say.
const PROBE: &str = "probe of the forwarding test";

fn is_probe(m: &Value) -> bool {
    m["msgid"] == "probe" && m["msg"].as_str().is_some_and(|t| t.contains(PROBE))
}

/// Every other way a user can write to the journal in netio's name, netio
/// (PID `pid`) running as the unit in `unit`.
fn forge_while_netio_runs(forged: &mut Forgeries, pid: u32, unit: &UnitCgroup) {
    let nobody = Writer::nobody();
    forged.write("native protocol", &nobody, Via::Native, |t| {
        native_entry(&look_alike("traffic", t, Some(pid)))
    });
    forged.write("native protocol, a recovery", &nobody, Via::Native, |t| {
        native_entry(&look_alike("threshold_recovered", t, Some(pid)))
    });
    let fields = |t: &str| String::from_utf8(native_entry(&look_alike("traffic", t, Some(pid))));
    forged.run("logger --journald", |t| {
        let mut cmd = Command::new("logger");
        cmd.arg("--journald");
        (cmd, fields(t).unwrap())
    });
    if nobody_can_unshare_user() {
        forged.run("logger --journald as root of a user namespace", |t| {
            let mut cmd = Command::new("unshare");
            cmd.args(["-Ur", "logger", "--journald"]);
            (cmd, fields(t).unwrap())
        });
    } else {
        eprintln!("this kernel refuses user namespaces to users: that attack is not tried");
    }
    forged.run("syslog(3) to /dev/log", |t| {
        let mut cmd = Command::new("logger");
        cmd.args(["-u", DEV_LOG, "-t", "netio"])
            .arg(format!("--id={pid}"))
            .arg(format!("NETIO_EVENT=traffic sent=0 received=0 {t}"));
        (cmd, String::new())
    });
    forged.write(
        "stdout stream naming netio.service",
        &nobody,
        Via::Stdout,
        |t| {
            let header = "netio\nnetio.service\n6\n0\n0\n0\n0\n";
            format!("{header}NETIO_EVENT=traffic sent=0 {t}\n").into_bytes()
        },
    );
    // The unit's cgroup is root's: the user cannot join it...
    let join = Command::new("sh")
        .arg("-c")
        .arg(format!("echo 0 > {}", unit.procs().display()))
        .uid(NOBODY)
        .gid(NOBODY)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        !join.success(),
        "uid {NOBODY} joined {}",
        unit.dir.display()
    );
    // ...but may make one named netio.service in what systemd delegates
    // to them, user@UID.service.
    let user_unit = UnitCgroup::create(&format!(
        "user.slice/user-{NOBODY}.slice/user@{NOBODY}.service"
    ));
    user_unit.delegate(NOBODY);
    let in_own = Writer {
        cgroup: Some(user_unit.dir.clone()),
        own_cgroup: Some(PathBuf::from("app.slice/netio.service")),
        ..Writer::nobody()
    };
    forged.write(
        "a user's own cgroup netio.service",
        &in_own,
        Via::Native,
        |t| native_entry(&look_alike("traffic", t, Some(pid))),
    );
}

#[test]
fn shipped_rsyslog_example_forwards_every_record_of_netio_service_and_no_entry_a_user_forged() {
    let _lock = JOURNALD.lock().unwrap_or_else(|e| e.into_inner());
    journald_start();
    let scratch = Scratch::new("syslog-imjournal");
    let port = free_port();
    let mut collector = Rsyslog::tcp(&scratch.dir, "collector", port, None);
    collector.start();
    let mut forwarder = shipped_forwarder(&scratch, port);
    forwarder.start();
    let unit = UnitCgroup::create("system.slice/netio.service");
    let mut forged = Forgeries::new();
    let last_probe = wait_until_forwarding(&unit, &collector, &forwarder);

    // The attacker takes over the PID of the unit's last probe as soon as
    // it exits, while journald still holds what it read about that PID.
    let victim = last_probe.pid;
    drop(last_probe);
    let taker = Writer {
        pid: Some(victim),
        ..Writer::nobody()
    };
    forged.write(
        "the PID of an exited process of the unit",
        &taker,
        Via::Native,
        |t| native_entry(&look_alike("traffic", t, None)),
    );

    let name = unique_name("ntj");
    let tracked = Program::named(&scratch, &name);
    let (mut netio, _staging) = netio_as_the_service(&scratch, &name, &unit);
    netio.wait_started(true);
    let pid = netio.pid();
    forge_while_netio_runs(&mut forged, pid, &unit);
    traffic(&tracked);
    let (status, stderr) = netio.stop();
    assert!(status.success(), "netio failed: {stderr:?}");

    let journal: Vec<Value> = journal_of(pid)
        .into_iter()
        .filter(|e| e["NETIO_EVENT"].is_string())
        .collect();
    assert!(
        journal.iter().any(|e| e["NETIO_EVENT"] == "traffic"
            && e["NETIO_SCOPE"] == "peer"
            && e["NETIO_SENT_BYTES"] != "0"),
        "no peer record with bytes in the journal: the test proves little"
    );
    for e in &journal {
        assert!(
            e["_SYSTEMD_UNIT"] == "netio.service" && e["_UID"] == "0",
            "journald does not see netio as netio.service here: {e}"
        );
    }
    let stored = forged.as_stored();
    let view: Vec<String> = stored.iter().map(|(how, e)| sender(how, e)).collect();
    eprintln!(
        "journald's view of the forged entries:\n{}",
        view.join("\n")
    );
    for ((_, e), line) in stored.iter().zip(&view) {
        assert_ne!(e["_UID"], "0", "an attacker's entry has _UID=0: {line}");
    }

    // imjournal reads the journal in order: once netio's last record is at
    // the collector, the forwarder has decided on every forged entry.
    let messages = collector.messages_of(pid, |m| m.iter().any(|x| x["msgid"] == "stopping"));
    let all = collector.messages();
    let passed: Vec<&String> = forged
        .written
        .iter()
        .zip(&view)
        .filter(|((_, token), _)| all.iter().any(|m| m.to_string().contains(token.as_str())))
        .map(|(_, line)| line)
        .collect();
    assert!(
        passed.is_empty(),
        "forged entries reached the collector as netio's records:\n{passed:#?}"
    );
    let strays: Vec<&Value> = all
        .iter()
        .filter(|m| m["procid"] != pid.to_string().as_str() && !is_probe(m))
        .collect();
    assert!(
        strays.is_empty(),
        "messages netio did not write: {strays:?}"
    );
    for (i, (m, e)) in messages.iter().zip(&journal).enumerate() {
        assert_eq!(
            parsed_sd(m),
            netio_fields(e),
            "message {i}: the forwarded structured data vs the journal's fields"
        );
        assert_eq!(m["msg"], e["MESSAGE"], "message {i}: MESSAGE");
        assert_eq!(m["msgid"], e["NETIO_EVENT"], "message {i}: MSGID");
    }
    assert_eq!(
        messages.len(),
        journal.len(),
        "every journal record forwarded once; forwarder log:\n{}",
        std::fs::read_to_string(&forwarder.log).unwrap_or_default()
    );
    forwarder.stop_with(libc::SIGTERM);
}
