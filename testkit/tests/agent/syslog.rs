//! Syslog output end to end, against real rsyslog from Debian started by
//! each test on loopback with its own config, socket, port and files (the
//! system's rsyslog, if any, is never touched): local messages keep their
//! summary; remote RFC 5424 records arrive exactly once, in order, with
//! structured data that rsyslog parses back into netio's own values; a
//! collector that is down, comes later, or is killed and restarted never
//! stalls netio and every record not delivered is counted; TLS works with
//! a certificate made by the test and refuses a wrong one, saying why. The
//! shipped journal forwarder has a module of its own (forwarder.rs).

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{exchange, free_port, unique_name, Netio, Program, Records, Scratch, TARGET};
use serde_json::Value;

mod forwarder;
mod losses;

const SD_ID: &str = "netio@32473";

/// How long netio's sender needs a TCP connection up before it counts what
/// it sent on it as delivered (agent/src/sink/syslog/sender.rs).
const STABLE: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- rsyslog

/// What every collector writes per message: the header fields rsyslog
/// parsed, the message, and the structured data as mmpstrucdata parsed it.
const OUTPUT: &str = r#"
module(load="mmpstrucdata")
template(name="netio_test_json" type="list") {
  constant(value="{")
  property(outname="appname" name="app-name" format="jsonf") constant(value=",")
  property(outname="procid" name="procid" format="jsonf") constant(value=",")
  property(outname="msgid" name="msgid" format="jsonf") constant(value=",")
  property(outname="pri" name="pri" format="jsonf") constant(value=",")
  property(outname="msg" name="msg" format="jsonf") constant(value=",")
  property(outname="sd" name="$!rfc5424-sd" format="jsonf")
  constant(value="}\n")
}
ruleset(name="netio_test") {
  action(type="mmpstrucdata" sd_name.lowercase="off")
  action(type="omfile" file="OUTFILE" template="netio_test_json")
}
"#;

/// An rsyslogd of the test's own.
struct Rsyslog {
    child: Option<Child>,
    config: PathBuf,
    pidfile: PathBuf,
    log: PathBuf,
    out: PathBuf,
    /// The TCP port it listens on, when it does.
    port: Option<u16>,
    /// The unix socket it reads, when it does.
    socket: Option<PathBuf>,
}

fn require_rsyslog() {
    assert!(
        Path::new("/usr/sbin/rsyslogd").exists(),
        "rsyslogd missing: install the Debian packages rsyslog and rsyslog-gnutls (scripts/test does)"
    );
}

impl Rsyslog {
    /// Writes the config `{dir}/{name}.conf`: `inputs` (which must feed
    /// ruleset `netio_test`) and the collector output to `{name}.out`.
    fn configure(dir: &Path, name: &str, inputs: &str) -> Self {
        require_rsyslog();
        let work = dir.join(format!("{name}.work"));
        std::fs::create_dir_all(&work).unwrap();
        let out = dir.join(format!("{name}.out"));
        let config = dir.join(format!("{name}.conf"));
        let text = format!(
            "global(workDirectory=\"{}\" maxMessageSize=\"256k\" parser.escapeControlCharactersOnReceive=\"off\")\n{inputs}\n{}",
            work.display(),
            OUTPUT.replace("OUTFILE", &out.display().to_string())
        );
        std::fs::write(&config, text).unwrap();
        Rsyslog {
            child: None,
            pidfile: dir.join(format!("{name}.pid")),
            log: dir.join(format!("{name}.log")),
            config,
            out,
            port: None,
            socket: None,
        }
    }

    /// A collector on a loopback TCP port; `tls`: its gtls settings.
    fn tcp(dir: &Path, name: &str, port: u16, tls: Option<&Tls>) -> Self {
        let inputs = match tls {
            None => format!(
                "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"netio_test\")"
            ),
            Some(t) => format!(
                "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n\
                 module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"netio_test\")",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ),
        };
        let mut r = Self::configure(dir, name, &inputs);
        r.port = Some(port);
        r
    }

    /// A collector reading a private unix socket, as /dev/log readers do.
    fn local(dir: &Path, name: &str) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let inputs = format!(
            "module(load=\"imuxsock\" SysSock.Use=\"off\")\ninput(type=\"imuxsock\" Socket=\"{}\" RateLimit.Interval=\"0\" ruleset=\"netio_test\")",
            socket.display()
        );
        let mut r = Self::configure(dir, name, &inputs);
        r.socket = Some(socket);
        r
    }

    fn ready(&self) -> bool {
        match (self.port, &self.socket) {
            (Some(p), _) => TcpStream::connect(("127.0.0.1", p)).is_ok(),
            (None, Some(s)) => s.exists(),
            (None, None) => true,
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let _ = std::fs::remove_file(&self.pidfile);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&self.config)
            .arg("-i")
            .arg(&self.pidfile)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn rsyslogd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.ready() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "rsyslogd exited at start ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "rsyslogd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends it with `signal`, by the PID it was started with.
    fn stop_with(&mut self, signal: libc::c_int) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill on the pid of a child we have not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
            let _ = child.wait();
        }
    }

    /// Everything it wrote, one JSON object per message, with `sd` (the
    /// JSON text mmpstrucdata made, if the message had structured data)
    /// parsed.
    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("collector line is not JSON ({e}): {l}"));
                let sd = v["sd"].as_str().unwrap_or("").trim().to_string();
                v["sd"] = if sd.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&sd)
                        .unwrap_or_else(|e| panic!("structured data is not JSON ({e}): {l}"))
                };
                v
            })
            .collect()
    }

    /// The messages from one netio process, once `done` holds for them
    /// (or after 20 s, for the assertions to say what is missing).
    fn messages_of(&self, pid: u32, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let procid = pid.to_string();
        loop {
            let mine: Vec<Value> = self
                .messages()
                .into_iter()
                .filter(|m| m["procid"] == procid.as_str())
                .collect();
            if done(&mine) || Instant::now() > deadline {
                return mine;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop_with(libc::SIGKILL);
    }
}

// ---------------------------------------------------------------- checks

fn event(v: &Value) -> &str {
    v["NETIO_EVENT"].as_str().unwrap_or("")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A stdout record as the collector should have it: every field but
/// MESSAGE, values as text.
fn expected_sd(record: &Value) -> BTreeMap<String, String> {
    record
        .as_object()
        .unwrap()
        .iter()
        // The JSON output's own timestamp; syslog stamps its header.
        .filter(|(k, _)| *k != "MESSAGE" && *k != "NETIO_TIMESTAMP")
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

/// The structured data rsyslog parsed out of a message.
fn parsed_sd(message: &Value) -> BTreeMap<String, String> {
    message["sd"][SD_ID]
        .as_object()
        .unwrap_or_else(|| panic!("no {SD_ID} structured data in {message}"))
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

/// A message that stands for `netio`'s stdout record `record`.
fn same(message: &Value, record: &Value) -> bool {
    message["sd"][SD_ID].is_object() && parsed_sd(message) == expected_sd(record)
}

/// Asserts every collector message is the record at the same position,
/// header and structured data alike.
fn assert_same_sequence(messages: &[Value], records: &[Value], pri_base: u64, app: &str) {
    for (i, (m, r)) in messages.iter().zip(records).enumerate() {
        assert_eq!(
            parsed_sd(m),
            expected_sd(r),
            "message {i}: structured data differs from netio's JSON"
        );
        assert_eq!(m["msg"], r["MESSAGE"], "message {i}: MSG vs MESSAGE");
        assert_eq!(m["msgid"], event(r), "message {i}: MSGID");
        assert_eq!(m["appname"], app, "message {i}: APP-NAME");
        let pri = pri_base + r["PRIORITY"].as_u64().unwrap();
        assert_eq!(m["pri"], pri.to_string(), "message {i}: PRI");
    }
    assert_eq!(
        messages.len(),
        records.len(),
        "the collector has {} messages, netio wrote {} records",
        messages.len(),
        records.len()
    );
}

/// A tracked copy of the traffic generator and a netio writing JSON to
/// stdout and, with `syslog` (a `[[syslog]]` table), to syslog.
fn netio_with(scratch: &Scratch, interval: &str, syslog: &str) -> (Program, Netio) {
    let name = unique_name("nts");
    let tracked = Program::named(scratch, &name);
    let netio = Netio::start_with(scratch, interval, &[(TARGET, &[name.as_str()])], syslog);
    (tracked, netio)
}

fn traffic(tracked: &Program) {
    exchange(
        tracked,
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", "200k"],
    );
}

fn stopped_pid(netio: &Netio) -> u32 {
    netio.pid()
}

// ---------------------------------------------------------------- tests

#[test]
fn local_socket_gets_every_record_with_its_summary_and_priority() {
    let scratch = Scratch::new("syslog-local");
    let mut collector = Rsyslog::local(&scratch.dir, "local");
    collector.start();
    let socket = collector.socket.clone().unwrap();
    let syslog = format!(
        "[[syslog]]\ntransport = \"local\"\naddress = {:?}\nfacility = \"local5\"\n",
        socket.display().to_string()
    );
    let (tracked, netio) = netio_with(&scratch, "1s", &syslog);
    let pid = stopped_pid(&netio);
    traffic(&tracked);
    let Records { records, stderr } = netio.stop();
    let messages = collector.messages_of(pid, |m| m.len() >= records.len());
    assert!(
        records.iter().any(|r| event(r) == "traffic"),
        "no traffic record"
    );
    for (i, (m, r)) in messages.iter().zip(&records).enumerate() {
        // RFC 3164 has a space after the tag's colon; rsyslog keeps it.
        assert_eq!(
            m["msg"].as_str().unwrap().trim_start(),
            r["MESSAGE"].as_str().unwrap(),
            "message {i}: the summary arrives intact"
        );
        assert_eq!(m["appname"], "netio");
        let pri = 21 * 8 + r["PRIORITY"].as_u64().unwrap();
        assert_eq!(
            m["pri"],
            pri.to_string(),
            "message {i}: local5 and the record's priority"
        );
    }
    assert_eq!(messages.len(), records.len(), "netio stderr:\n{stderr}");
}

#[test]
fn remote_tcp_delivers_every_record_once_in_order_with_structured_data_equal_to_the_json() {
    let scratch = Scratch::new("syslog-tcp");
    let port = free_port();
    let mut collector = Rsyslog::tcp(&scratch.dir, "tcp", port, None);
    collector.start();
    let syslog = format!(
        "[[syslog]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nfacility = \"local3\"\napp_name = \"netio-test\"\n"
    );
    let (tracked, netio) = netio_with(&scratch, "500ms", &syslog);
    let pid = stopped_pid(&netio);
    traffic(&tracked);
    traffic(&tracked);
    let Records { records, stderr } = netio.stop();
    let messages = collector.messages_of(pid, |m| m.len() >= records.len());
    for kind in ["started", "traffic", "process_exited", "stopping"] {
        assert!(
            records.iter().any(|r| event(r) == kind),
            "no {kind} record on stdout"
        );
    }
    assert!(
        records
            .iter()
            .any(|r| r["NETIO_SCOPE"] == "peer" && r["NETIO_SENT_BYTES"].as_u64() > Some(0)),
        "no peer record with bytes: the test proves little"
    );
    assert_same_sequence(&messages, &records, 19 * 8, "netio-test");
    assert!(
        !stderr.contains("syslog"),
        "nothing to say about a healthy collector:\n{stderr}"
    );
}

#[test]
fn remote_udp_delivers_records_with_structured_data_equal_to_the_json() {
    let scratch = Scratch::new("syslog-udp");
    let port = free_port();
    let mut collector = Rsyslog::configure(
        &scratch.dir,
        "udp",
        &format!(
            "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"netio_test\")"
        ),
    );
    collector.start();
    // Nothing to connect to: give imudp its moment to bind.
    std::thread::sleep(Duration::from_secs(1));
    let syslog = format!("[[syslog]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{port}\"\n");
    let (tracked, netio) = netio_with(&scratch, "500ms", &syslog);
    let pid = stopped_pid(&netio);
    traffic(&tracked);
    let Records { records, .. } = netio.stop();
    let messages = collector.messages_of(pid, |m| m.len() >= records.len());
    // Loopback loses no datagram this small and this few.
    assert_same_sequence(&messages, &records, 3 * 8, "netio");
}

/// The degraded records a collector got about records netio dropped.
fn drop_reports(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| {
            let sd = parsed_sd(m);
            (sd.get("NETIO_EVENT").map(String::as_str) == Some("degraded")
                && sd.get("NETIO_REASON").map(String::as_str) == Some("syslog_dropped"))
            .then(|| sd["NETIO_COUNT"].parse().unwrap())
        })
        .collect()
}

/// Matches the collector's messages (drop reports aside) to netio's
/// records in order; returns how many records no message stands for.
fn unmatched(messages: &[Value], records: &[Value]) -> usize {
    let mut next = 0;
    let mut missing = 0;
    for m in messages
        .iter()
        .filter(|m| parsed_sd(m).get("NETIO_REASON").map(String::as_str) != Some("syslog_dropped"))
    {
        let at = records[next..]
            .iter()
            .position(|r| same(m, r))
            .unwrap_or_else(|| {
                panic!("collector message {m} is not among netio's records from {next} on (out of order or twice)")
            });
        missing += at;
        next += at + 1;
    }
    missing + records.len() - next
}

#[test]
fn collector_down_at_start_then_killed_and_restarted_never_stalls_netio_and_counts_every_dropped_record(
) {
    let scratch = Scratch::new("syslog-outage");
    let port = free_port();
    let mut collector = Rsyslog::tcp(&scratch.dir, "outage", port, None);
    // A queue of 3 records: the outages below outlast it. The idle
    // target writes a record every interval while the other runs nothing.
    let idle = common::Idle::start(&scratch);
    let syslog = format!(
        "[[syslog]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nqueue = 3\n{}",
        idle.target("tick")
    );
    let (tracked, netio) = netio_with(&scratch, "500ms", &syslog);
    let pid = stopped_pid(&netio);

    // Down at start, for six intervals.
    std::thread::sleep(Duration::from_secs(3));
    collector.start();
    let first = collector.messages_of(pid, |m| m.len() >= 4);
    let connected = Instant::now();
    assert!(
        !drop_reports(&first).is_empty(),
        "the records that did not fit the queue are reported: {first:?}"
    );
    traffic(&tracked);

    // Killed between two intervals' records, on a connection up long
    // enough that netio counts what it sent as delivered (a collector
    // that dies at once is the accept-and-close test's), and down for six
    // intervals. The next record must not be written into the dead
    // connection and lost uncounted.
    let settled = collector.messages_of(pid, |m| m.len() > first.len() + 2);
    std::thread::sleep((connected + 3 * STABLE).saturating_duration_since(Instant::now()));
    let mut count = settled.len();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = collector.messages().len();
        if now == count {
            break;
        }
        count = now;
    }
    collector.stop_with(libc::SIGKILL);
    traffic(&tracked);
    std::thread::sleep(Duration::from_secs(3));
    let before_restart = collector.messages_of(pid, |_| true).len();
    collector.start();
    traffic(&tracked);
    let Records { records, stderr } = netio.stop();

    // The last record the collector is sent (the main output's drop
    // reports are not).
    let last = records
        .iter()
        .rev()
        .find(|r| r["NETIO_REASON"] != "syslog_dropped")
        .unwrap()
        .clone();
    let messages = collector.messages_of(pid, |m| m.iter().any(|m| same(m, &last)));
    assert!(
        messages.len() > before_restart,
        "records resume after the restart; netio stderr:\n{stderr}"
    );
    // The main output (netio's stdout here) is told of the drops too, in
    // records of its own that the collector never gets.
    let (told, records): (Vec<Value>, Vec<Value>) = records
        .into_iter()
        .partition(|r| r["NETIO_REASON"] == "syslog_dropped");
    let told: u64 = told
        .iter()
        .map(|r| r["NETIO_COUNT"].as_u64().unwrap())
        .sum();
    let reported: u64 = drop_reports(&messages).iter().sum();
    let missing = unmatched(&messages, &records);
    assert_eq!(
        told as usize, missing,
        "the drop counts netio's main output got vs the records the collector lacks; netio stderr:\n{stderr}"
    );
    assert!(reported > 0, "the outages were longer than the queue");
    assert_eq!(
        reported as usize, missing,
        "the drop counts the collector got vs the records it lacks; netio stderr:\n{stderr}"
    );
    // No interval was stretched by the collector's absence.
    for r in records
        .iter()
        .filter(|r| event(r) == "traffic" && r["NETIO_SCOPE"] == "target")
    {
        let ms = r["NETIO_INTERVAL_MS"].as_u64().unwrap();
        assert!(ms <= 800, "an interval of {ms} ms (configured 500 ms)");
    }
    assert!(
        stderr.contains("queue of 3 records is full"),
        "netio says when it starts dropping:\n{stderr}"
    );
}

// ---------------------------------------------------------------- TLS

/// Certificates made by the test with the openssl CLI: a CA, a server
/// certificate it signs for 127.0.0.1, one it signs for another name, and
/// a self-signed one.
struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA in `dir`, and a server key and certificate `name`.{key,pem} for
/// `san`, signed by the CA or, with `self_signed`, by itself.
fn certificates(dir: &Path, name: &str, san: &str, self_signed: bool) -> Tls {
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=netio test CA",
            ],
        );
    }
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    let ext = format!("subjectAltName={san}");
    if self_signed {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                "/CN=impostor",
                "-addext",
                &ext,
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ],
        );
    } else {
        let csr = format!("{name}.csr");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=netio test collector",
            ],
        );
        let extfile = dir.join(format!("{name}.ext"));
        std::fs::File::create(&extfile)
            .unwrap()
            .write_all(ext.as_bytes())
            .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                extfile.to_str().unwrap(),
            ],
        );
    }
    Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join(pem),
        key: dir.join(key),
    }
}

fn tls_syslog(port: u16, ca: &Path) -> String {
    format!(
        "[[syslog]]\ntransport = \"tls\"\naddress = \"127.0.0.1:{port}\"\nca_file = {:?}\n",
        ca.display().to_string()
    )
}

#[test]
fn tls_with_a_certificate_from_the_configured_ca_delivers_every_record() {
    let scratch = Scratch::new("syslog-tls");
    let tls = certificates(&scratch.dir, "good", "IP:127.0.0.1", false);
    let port = free_port();
    let mut collector = Rsyslog::tcp(&scratch.dir, "tls", port, Some(&tls));
    collector.start();
    let (tracked, netio) = netio_with(&scratch, "500ms", &tls_syslog(port, &tls.ca));
    let pid = stopped_pid(&netio);
    traffic(&tracked);
    let Records { records, stderr } = netio.stop();
    let messages = collector.messages_of(pid, |m| m.len() >= records.len());
    assert_same_sequence(&messages, &records, 3 * 8, "netio");
    assert!(!stderr.contains("syslog"), "{stderr}");
}

/// netio against a TLS collector whose certificate it must refuse: nothing
/// arrives, and netio says which host and why, and keeps running.
fn refused(cert_name: &str, san: &str, self_signed: bool, why: &str) {
    let scratch = Scratch::new(&format!("syslog-{cert_name}"));
    let good = certificates(&scratch.dir, "unused", "IP:127.0.0.1", false);
    let bad = certificates(&scratch.dir, cert_name, san, self_signed);
    let served = Tls {
        ca: good.ca.clone(),
        cert: bad.cert,
        key: bad.key,
    };
    let port = free_port();
    let mut collector = Rsyslog::tcp(&scratch.dir, cert_name, port, Some(&served));
    collector.start();
    let (_tracked, netio) = netio_with(&scratch, "500ms", &tls_syslog(port, &good.ca));
    let pid = stopped_pid(&netio);
    std::thread::sleep(Duration::from_secs(2));
    let Records { records, stderr } = netio.stop();
    assert!(records.iter().any(|r| event(r) == "traffic"));
    let said = format!(
        "netio: syslog tls 127.0.0.1:{port}: TLS: the certificate of 127.0.0.1 is refused: {why}"
    );
    assert!(
        stderr.contains(&said),
        "netio must say {said:?}; it said:\n{stderr}"
    );
    assert!(
        stderr.contains("records not delivered at exit"),
        "and count what it could not deliver:\n{stderr}"
    );
    assert!(
        collector.messages_of(pid, |_| true).is_empty(),
        "a refused collector gets nothing"
    );
}

#[test]
fn tls_refuses_a_self_signed_certificate_naming_the_host_and_the_ca_file() {
    let dir_ca = "it is not signed by a CA in";
    refused("selfsigned", "IP:127.0.0.1", true, dir_ca);
}

#[test]
fn tls_refuses_a_certificate_for_another_name() {
    refused(
        "othername",
        "DNS:collector.example.net",
        false,
        "it is not issued for the name \"127.0.0.1\"",
    );
}

// ---------------------------------------------------------------- ECS

/// `json_schema = "ecs"` reaches the JSON output: every line is an ECS
/// document, and the process record's ECS fields hold the server's exact
/// bytes (read: source.bytes, sent: destination.bytes).
#[test]
fn ecs_json_output_names_the_process_and_its_exact_bytes() {
    let scratch = Scratch::new("ecs");
    let name = unique_name("nte");
    let tracked = Program::named(&scratch, &name);
    let config = common::write_config_with(
        &scratch,
        "500ms",
        &[(TARGET, &[name.as_str()])],
        "json_schema = \"ecs\"",
    );
    let child = Command::new(common::netio_bin())
        .args(["run", "--config"])
        .arg(&config)
        .args(["--backend", &common::backend(), "--output", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netio");
    // Attaching takes a moment; the server's truth counts only its own run.
    std::thread::sleep(Duration::from_secs(3));
    let (server, _) = exchange(
        &tracked,
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", "300k"],
    );
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: kill on the pid of a child we have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(docs.iter().any(|d| d["event"]["action"] == "stopping"));
    let (mut sent, mut received) = (0, 0);
    for d in &docs {
        assert_eq!(d["ecs"]["version"], "8.11.0", "{d}");
        assert!(d.get("NETIO_EVENT").is_none(), "netio's names remain: {d}");
        if d["event"]["action"] == "traffic" && d["netio"]["scope"] == "process" {
            assert_eq!(d["event"]["kind"], "metric");
            if d["process"]["pid"] == server.pid {
                assert_eq!(d["process"]["name"], name.as_str());
                sent += d["destination"]["bytes"].as_u64().unwrap();
                received += d["source"]["bytes"].as_u64().unwrap();
            }
        }
        if d["event"]["action"] == "traffic"
            && d["netio"]["scope"] == "peer"
            && d["process"]["pid"] == server.pid
        {
            assert_eq!(d["source"]["ip"], "127.0.0.1", "{d}");
        }
    }
    assert_eq!(
        (sent, received),
        (server.sent, server.received),
        "ECS destination.bytes/source.bytes vs the server's own count"
    );
}
