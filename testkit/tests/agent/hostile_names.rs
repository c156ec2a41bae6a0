//! Process names chosen by an attacker: a tracked server running as user
//! nobody forks children that exec copies of the traffic generator named
//! like netio's own `key=value` text, or holding terminal escapes and a
//! newline. netio's MESSAGE, parsed quote-aware, must still give netio's own
//! keys, the bytes each child really moved and its name as written, and no
//! output (text, RFC 3164, the RFC 5424 message) may carry a raw control
//! character (docs/records.md, "MESSAGE").

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{backend, netio_bin, unique_name, write_config_with, Program, Scratch, TARGET};

/// The names the attacker's children exec under: each at most 15 bytes,
/// so the kernel's comm is the name exactly.
const HOSTILE: [&str; 2] = ["x sent=0 rcv=0", "e\x1b[2K\r\nsent=0"];

/// The bytes each child moves: the client uploads this, the child echoes it.
const SIZE: &str = "150k";

/// What each MESSAGE key must equal: the structured field of the same
/// record. A key not listed here is not netio's.
const KEYS: [(&str, &str); 32] = [
    ("target", "NETIO_TARGET"),
    ("pid", "NETIO_PID"),
    ("ppid", "NETIO_PPID"),
    ("comm", "NETIO_COMM"),
    ("uid", "NETIO_UID"),
    ("exe", "NETIO_EXE"),
    ("peer", "NETIO_PEER_ADDRESS"),
    ("peer_pid", "NETIO_PEER_PID"),
    ("peer_comm", "NETIO_PEER_COMM"),
    ("sent", "NETIO_SENT_BYTES"),
    ("received", "NETIO_RECEIVED_BYTES"),
    ("sent_per_sec", "NETIO_SENT_BYTES_PER_SEC"),
    ("received_per_sec", "NETIO_RECEIVED_BYTES_PER_SEC"),
    ("processes", "NETIO_PROCESSES"),
    ("peers", "NETIO_PEERS"),
    ("breach_ms", "NETIO_BREACH_MS"),
    ("targets_added", "NETIO_TARGETS_ADDED"),
    ("targets_removed", "NETIO_TARGETS_REMOVED"),
    ("targets_rematched", "NETIO_TARGETS_REMATCHED"),
    ("thresholds_changed", "NETIO_THRESHOLDS_CHANGED"),
    ("interval_ms", "NETIO_INTERVAL_MS"),
    ("backend", "NETIO_BACKEND"),
    ("kernel", "NETIO_KERNEL"),
    ("targets", "NETIO_TARGETS"),
    ("passed_over", "NETIO_BACKENDS_PASSED_OVER"),
    ("pinning", "NETIO_PINNING"),
    ("adopted", "NETIO_ADOPTED_VERSION"),
    ("gap_ms", "NETIO_GAP_MS"),
    ("reason", "NETIO_REASON"),
    ("count", "NETIO_COUNT"),
    ("lost_bytes", "NETIO_LOST_BYTES"),
    ("socket_owner_pid", "NETIO_SOCKET_OWNER_PID"),
];

/// A `key=value` value as a quote-aware parser sees it.
#[derive(Debug, PartialEq)]
enum Val {
    Quoted(String),
    Bare(String),
}

/// A logfmt-style parse: `key=value` pairs where a value is bare (to the
/// next space) or a double-quoted string with backslash escapes (decoded
/// as a JSON string literal); words without `=` are prose and skipped.
fn logfmt(s: &str) -> Result<Vec<(String, Val)>, String> {
    let b = s.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] != b' ' && b[i] != b'=' {
            if b[i] == b'"' {
                return Err(format!("a quote outside a value at byte {i}"));
            }
            i += 1;
        }
        if i == b.len() || b[i] == b' ' {
            continue;
        }
        let key = s[start..i].to_string();
        i += 1;
        if i < b.len() && b[i] == b'"' {
            let open = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            let literal = s
                .get(open..=i)
                .ok_or_else(|| format!("unterminated quoted value of {key}"))?;
            let value: String = serde_json::from_str(literal)
                .map_err(|e| format!("value of {key} {literal:?}: {e}"))?;
            pairs.push((key, Val::Quoted(value)));
            i += 1;
        } else {
            let v = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            pairs.push((key, Val::Bare(s[v..i].to_string())));
        }
    }
    Ok(pairs)
}

/// One RFC 5424 message: its MSGID, structured data (unescaped) and MSG.
struct Message5424 {
    msgid: String,
    sd: BTreeMap<String, String>,
    msg: String,
}

fn parse_5424(frame: &str) -> Result<Message5424, String> {
    let mut head = frame.splitn(7, ' ');
    let msgid = head.nth(5).ok_or("short header")?.to_string();
    let rest = head.next().ok_or("no structured data")?;
    let mut rest = rest
        .strip_prefix("[netio@32473")
        .ok_or("no netio@32473 element")?;
    let mut sd = BTreeMap::new();
    loop {
        if let Some(after) = rest.strip_prefix("] ") {
            return Ok(Message5424 {
                msgid,
                sd,
                msg: after.to_string(),
            });
        }
        let param = rest.strip_prefix(' ').ok_or("SD-PARAM without a space")?;
        let (name, value) = param.split_once("=\"").ok_or("SD-PARAM without =\"")?;
        let mut chars = value.char_indices();
        let mut text = String::new();
        let end = loop {
            match chars.next().ok_or("unterminated PARAM-VALUE")? {
                (_, '\\') => match chars.next().ok_or("escape at the end")? {
                    (_, c @ ('"' | '\\' | ']')) => text.push(c),
                    (_, c) => {
                        text.push('\\');
                        text.push(c);
                    }
                },
                (i, '"') => break i,
                (_, c) => text.push(c),
            }
        };
        sd.insert(name.to_string(), text);
        rest = &value[end + 1..];
    }
}

/// Octet-counted RFC 5424 frames (RFC 6587) from every connection netio
/// makes, until `stop`.
fn tcp_collector(listener: TcpListener, stop: Arc<AtomicBool>) -> JoinHandle<Vec<String>> {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut conns = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    conns.push(std::thread::spawn(move || {
                        let mut all = Vec::new();
                        let _ = s.read_to_end(&mut all);
                        all
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let mut frames = Vec::new();
        for c in conns {
            let all = c.join().unwrap();
            let mut rest = &all[..];
            while let Some(sp) = rest.iter().position(|&b| b == b' ') {
                let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                let frame = &rest[sp + 1..sp + 1 + len];
                frames.push(String::from_utf8(frame.to_vec()).expect("a UTF-8 frame"));
                rest = &rest[sp + 1 + len..];
            }
        }
        frames
    })
}

/// Datagrams from the local syslog destination, until `stop`.
fn unix_collector(socket: UnixDatagram, stop: Arc<AtomicBool>) -> JoinHandle<Vec<Vec<u8>>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(_) if stop.load(Ordering::Relaxed) => return got,
                Err(_) => {}
            }
        }
    })
}

/// The control characters in `s` other than the line ends `allowed`.
fn controls(s: &str, allowed: &[char]) -> Vec<char> {
    s.chars()
        .filter(|c| c.is_control() && !allowed.contains(c))
        .collect()
}

/// What is wrong with one record's MESSAGE against its structured data.
fn check_message(m: &Message5424) -> Vec<String> {
    let pairs = match logfmt(&m.msg) {
        Ok(p) => p,
        Err(e) => return vec![format!("cannot parse: {e}")],
    };
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (key, val) in &pairs {
        if !seen.insert(key.as_str()) {
            problems.push(format!("key {key} twice"));
        }
        let Some((_, field)) = KEYS.iter().find(|(k, _)| k == key) else {
            problems.push(format!("key {key} is not netio's"));
            continue;
        };
        let Some(want) = m.sd.get(*field) else {
            problems.push(format!("key {key} but the record has no {field}"));
            continue;
        };
        let (Val::Bare(v) | Val::Quoted(v)) = val;
        if v != want {
            problems.push(format!("{key} is {val:?}, {field} is {want:?}"));
        }
    }
    problems
}

#[test]
fn names_that_look_like_key_value_or_hold_escapes_cannot_forge_or_garble_records() {
    let scratch = Scratch::new("hostile-names");
    std::fs::set_permissions(&scratch.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tracked_name = unique_name("ntq");
    let tracked = Program::named(&scratch, &tracked_name);
    let copies: Vec<Program> = HOSTILE
        .iter()
        .map(|n| Program::named(&scratch, n))
        .collect();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket_path = scratch.path("log.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let tcp = tcp_collector(listener, stop.clone());
    let local = unix_collector(socket, stop.clone());
    let syslog = format!(
        "[[syslog]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n\n\
         [[syslog]]\ntransport = \"local\"\naddress = {:?}\n",
        socket_path.display().to_string()
    );
    let config = write_config_with(
        &scratch,
        "1s",
        &[(TARGET, &[tracked_name.as_str()])],
        &syslog,
    );

    // netio with its text output on stdout, read as raw bytes.
    let mut netio = Command::new(netio_bin())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--backend", &backend(), "--output", "text"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netio");
    let mut stdout = netio.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stderr = netio.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut text = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&text).contains(" started: ") {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => text.extend(chunk),
            Err(_) => {
                let _ = netio.kill();
                panic!("netio did not start; stderr:\n{}", errors.join().unwrap());
            }
        }
    }

    // The attacker: the tracked server runs as nobody, and its child
    // execs a copy of the traffic generator under the hostile name; its
    // client, a loopback one named by its process, is a copy of that name
    // too, run as nobody.
    let mut children: BTreeMap<u32, (&str, common::Bytes)> = BTreeMap::new();
    for (name, copy) in HOSTILE.iter().zip(&copies) {
        let path = copy.path.to_str().unwrap();
        let args = ["--count", "1", "--size", SIZE, "--reexec", path];
        let server = tracked.server_with("forking", "127.0.0.1:0", &args, |cmd| {
            cmd.uid(65534).gid(65534);
        });
        let client = copy.client_with(
            "forking",
            &server.addr("127.0.0.1"),
            &["--count", "1", "--size", SIZE],
            |cmd| {
                cmd.uid(65534).gid(65534);
            },
        );
        let truth = server.finish();
        assert_eq!((truth.sent, truth.received), (client.received, client.sent));
        let (&pid, &bytes) = truth
            .per_pid
            .iter()
            .find(|(p, _)| **p != truth.pid)
            .expect("the forked child's bytes");
        assert_eq!(
            truth.raw["extra"]["child_comms"][pid.to_string()],
            *name,
            "the kernel's comm of the child is the name as written"
        );
        children.insert(pid, (name, bytes));
    }

    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill on the pid of a child we have not reaped yet.
    unsafe { libc::kill(netio.id() as libc::pid_t, libc::SIGTERM) };
    let status = netio.wait().unwrap();
    reader.join().unwrap();
    text.extend(rx.try_iter().flatten());
    let errors = errors.join().unwrap();
    assert!(status.success(), "netio: {status}; stderr:\n{errors}");
    stop.store(true, Ordering::Relaxed);
    let frames = tcp.join().unwrap();
    let datagrams = local.join().unwrap();

    let mut problems = Vec::new();
    let text = String::from_utf8(text).expect("the text output is UTF-8");
    let raw = controls(&text, &['\n']);
    if !raw.is_empty() {
        problems.push(format!("text output: raw control characters {raw:?}"));
    }
    let lines: Vec<&str> = text.lines().collect();
    for d in &datagrams {
        let line = String::from_utf8_lossy(d);
        let raw = controls(&line, &[]);
        if !raw.is_empty() {
            problems.push(format!(
                "RFC 3164 line: raw control characters {raw:?}: {line:?}"
            ));
        }
    }
    let messages: Vec<Message5424> = frames
        .iter()
        .map(|f| parse_5424(f).unwrap_or_else(|e| panic!("RFC 5424 frame {f:?}: {e}")))
        .collect();
    let mut counted: BTreeMap<u32, common::Bytes> = BTreeMap::new();
    for m in &messages {
        let raw = controls(&m.msg, &[]);
        if !raw.is_empty() {
            problems.push(format!("RFC 5424 MSG: raw control characters {raw:?}"));
        }
        for p in check_message(m) {
            problems.push(format!("{} {:?}: {p}", m.msgid, m.msg));
        }
        let pid = m.sd.get("NETIO_PID").and_then(|p| p.parse().ok());
        let Some((name, _)) = pid.and_then(|p| children.get(&p)) else {
            continue;
        };
        if m.msgid == "traffic" && m.sd["NETIO_SCOPE"] == "peer" {
            // The client's name, as its peer: the real name in the field,
            // one quoted value in MESSAGE (check_message: the same).
            if m.sd.get("NETIO_PEER_COMM").map(String::as_str) != Some(*name) {
                problems.push(format!(
                    "peer record {:?} does not name the client {name:?}",
                    m.sd
                ));
            }
        }
        if m.msgid == "traffic" && m.sd["NETIO_SCOPE"] == "process" {
            assert_eq!(m.sd["NETIO_COMM"], *name, "NETIO_COMM keeps the real name");
            let pairs = logfmt(&m.msg).unwrap_or_default();
            let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v);
            if get("comm") != Some(&Val::Quoted(name.to_string())) {
                problems.push(format!("MESSAGE {:?} does not give comm {name:?}", m.msg));
            }
            // The executable's path holds the name too: one quoted value.
            match get("exe") {
                Some(Val::Quoted(exe)) if exe.ends_with(&format!("/{name}")) => {}
                other => problems.push(format!(
                    "MESSAGE {:?} gives exe {other:?}, not the path of {name:?}",
                    m.msg
                )),
            }
            let num = |k: &str| match get(k) {
                Some(Val::Bare(v)) => v.parse::<u64>().ok(),
                _ => None,
            };
            let c = counted.entry(pid.unwrap()).or_default();
            c.sent += num("sent").unwrap_or(0);
            c.received += num("received").unwrap_or(0);
        }
    }
    for (pid, (name, truth)) in &children {
        let got = counted.get(pid).copied().unwrap_or_default();
        if got != *truth {
            problems.push(format!(
                "{name:?} (pid {pid}): MESSAGE says {got}, the child moved {truth}"
            ));
        }
    }
    let msgs: Vec<&str> = messages.iter().map(|m| m.msg.as_str()).collect();
    // A text line is the time (27 bytes), a space, the priority's word
    // padded to 7, a space and MESSAGE.
    let shown: Vec<&str> = lines.iter().map(|l| l.get(36..).unwrap_or("")).collect();
    for l in &lines {
        assert!(
            l.get(26..28) == Some("Z "),
            "a text line opens with its time: {l:?}"
        );
    }
    let local: Vec<String> = datagrams
        .iter()
        .map(|d| {
            let line = String::from_utf8_lossy(d);
            line.split_once("]: ")
                .map(|(_, m)| m.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\nnetio stderr:\n{errors}",
        problems.len(),
        problems.join("\n")
    );
    // The text output leaves out only traffic records that the next one
    // repeats (docs/records.md); the rest, in order, are the messages.
    let mut left_out = Vec::new();
    let mut next = shown.iter().peekable();
    for m in &messages {
        if next.peek() == Some(&&m.msg.as_str()) {
            next.next();
        } else if m.msgid == "traffic" {
            left_out.push(m.msg.as_str());
        } else {
            panic!("the text output lacks {:?}: {shown:#?}", m.msg);
        }
    }
    assert!(
        next.next().is_none(),
        "the text output shows each record's MESSAGE, in order: {shown:#?} vs {msgs:#?}"
    );
    assert!(
        left_out.len() < msgs.len() / 2,
        "the text output left out {left_out:#?}"
    );
    assert_eq!(
        local, msgs,
        "the RFC 3164 lines carry each record's MESSAGE"
    );
}
