//! A target's socket used by a process netio does not track: the target
//! hands a connection it accepted, or one it connected, to a helper of
//! nobody's over SCM_RIGHTS, or nobody's process takes it with
//! pidfd_getfd. Those bytes are the target's connection's: netio must count
//! them for the target, exactly, in records that name the process that
//! moved them (docs/kernels.md, "Whose bytes").

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use common::{
    record_bytes, record_pid, tracked_program, unique_name, Bytes, Netio, Program, Records,
    Scratch, Truth, TARGET,
};

const NOBODY: &str = "65534";
const SIZE: u64 = 4 * 1024 * 1024;

/// The `take` process, as nobody, waiting at `path` for the socket.
struct Taker {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Taker {
    fn start(path: &std::path::Path, as_client: bool) -> Taker {
        let size = SIZE.to_string();
        let role = if as_client { "client" } else { "server" };
        let mut child = Command::new(common::traffic_bin())
            .args(["take", "--hand-to"])
            .arg(path)
            .args(["--take-as", role, "--size", &size, "--uid", NOBODY])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the taker");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        assert!(line.contains("ready"), "the taker did not start: {line:?}");
        Taker { child, stdout }
    }

    fn finish(mut self) -> Truth {
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait for the taker");
        assert!(status.success(), "the taker failed: {status}");
        Truth::parse(rest.trim(), "taker")
    }
}

/// The ground truth per peer: each process's TCP bytes `tcp` with
/// 127.0.0.1, and the owner's bytes on the Unix socket it handed the
/// connection over with the taker's process: netio counts those too.
fn with_channel(
    tcp: &BTreeMap<u32, Bytes>,
    owner: &Truth,
    taker: &Truth,
) -> BTreeMap<u32, BTreeMap<String, Bytes>> {
    let mut all: BTreeMap<u32, BTreeMap<String, Bytes>> = tcp
        .iter()
        .map(|(pid, b)| (*pid, BTreeMap::from([("127.0.0.1".to_owned(), *b)])))
        .collect();
    let channel = &owner.raw["extra"]["channel"];
    // The peer as SO_PEERCRED gives it. Its uid is the taker's when it
    // listened (root: it becomes nobody after), which netio reads from the
    // same credentials; only the PID is checked apart, below.
    let peer = common::text(channel, "peer").expect("the owner names its channel's peer");
    assert!(
        peer.starts_with(&format!("unix:pid={},", taker.pid)),
        "the kernel says the owner's channel leads to {peer}, not the taker {}",
        taker.pid
    );
    let bytes = Bytes {
        sent: common::num(channel, "sent").expect("channel bytes sent"),
        received: common::num(channel, "received").expect("channel bytes received"),
    };
    all.entry(owner.pid)
        .or_default()
        .insert(peer.to_owned(), bytes);
    all
}

/// netio's records of the mover `pid` must name it: nobody's process,
/// netio-traffic, on the socket of `owner`; its executable where netio
/// could still read it.
fn assert_named(records: &Records, pid: u32, owner: u32) {
    let mine: Vec<_> = records
        .traffic()
        .filter(|v| v["NETIO_SCOPE"] == "process" && record_pid(v) == Some(pid))
        .collect();
    assert!(!mine.is_empty(), "no process record for the mover {pid}");
    for v in mine {
        assert_eq!(v["NETIO_TARGET"], TARGET, "{v}");
        assert_eq!(v["NETIO_COMM"], "netio-traffic", "{v}");
        assert_eq!(common::num(v, "NETIO_UID"), Some(65534), "{v}");
        assert_eq!(
            common::num(v, "NETIO_SOCKET_OWNER_PID"),
            Some(owner as u64),
            "{v}"
        );
        // The executable only where it still ran when netio read of it.
        if let Some(exe) = v["NETIO_EXE"].as_str() {
            assert!(exe.ends_with("netio-traffic"), "NETIO_EXE {exe:?}: {v}");
        }
    }
}

/// The target's server accepts, moves `parent` bytes each way itself, and
/// hands the socket over `by` to nobody's taker, which does the rest.
fn accepted_socket_handed_over(tag: &str, by: &str, parent: u64, owner_uid: Option<&str>) {
    let h = hand_over(tag, by, parent, owner_uid, None);
    h.records.assert_exact_per_peer(&h.per_peer);
    assert_named(&h.records, h.taker, h.owner);
}

/// A hand-over's records, its ground truth per PID and per PID and peer,
/// the owner and taker.
struct HandOver {
    records: Records,
    truth: BTreeMap<u32, Bytes>,
    per_peer: BTreeMap<u32, BTreeMap<String, Bytes>>,
    owner: u32,
    taker: u32,
}

/// The hand-over of `accepted_socket_handed_over`; with `capacity`, under
/// that `[capacity]` and with no read of the counters before the stop, and
/// first a tracked exchange whose counters stay in the map meanwhile.
fn hand_over(
    tag: &str,
    by: &str,
    parent: u64,
    owner_uid: Option<&str>,
    capacity: Option<&str>,
) -> HandOver {
    let scratch = Scratch::new(tag);
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let targets: &[(&str, &[&str])] = &[(TARGET, &[name.as_str()])];
    let mut truth: BTreeMap<u32, Bytes> = BTreeMap::new();
    let netio = match capacity {
        None => Netio::start(&scratch, "1s", targets),
        Some(c) => {
            let netio = Netio::start_with(&scratch, "60s", targets, c);
            let args = ["--count", "1", "--request", "1000", "--reply", "1000"];
            let filler = tracked.server("short", "127.0.0.1:0", &args);
            Program::original().client("short", &filler.addr("127.0.0.1"), &args);
            truth.extend(filler.finish().per_pid);
            netio
        }
    };
    let path = scratch.path("taker.sock");
    let taker = Taker::start(&path, false);
    let (size, parent_s) = (SIZE.to_string(), parent.to_string());
    let mut args = vec![
        "--hand-to",
        path.to_str().unwrap(),
        "--hand-by",
        by,
        "--parent-bytes",
        &parent_s,
    ];
    if let Some(uid) = owner_uid {
        args.extend(["--uid", uid]);
    }
    let server = tracked.server("hand-over", "127.0.0.1:0", &args);
    let owner = server.pid();
    // The forking scenario's client expects the owner's echo, then the rest.
    let client = Program::original().client(
        "forking",
        &server.addr("127.0.0.1"),
        &["--count", "1", "--size", &size, "--parent-bytes", &parent_s],
    );
    let server = server.finish();
    let taker = taker.finish();
    assert_eq!(
        (client.sent, client.received),
        (server.received + taker.received, server.sent + taker.sent),
        "traffic generator disagrees with itself"
    );
    let records = netio.stop();
    truth.extend(server.per_pid.clone());
    truth.extend(taker.per_pid.clone());
    let per_peer = with_channel(&truth, &server, &taker);
    for (pid, peers) in &per_peer {
        truth.insert(*pid, peers.values().fold(Bytes::default(), Bytes::plus));
    }
    HandOver {
        records,
        truth,
        per_peer,
        owner,
        taker: taker.pid,
    }
}

/// The mover's bytes when the traffic map has no room for its counter
/// (an earlier exchange's counters and the owner's fill it; a mover has no
/// `other`): they still count for the owner's target, and a `degraded`
/// record says they lost their process and peer.
#[test]
fn a_movers_bytes_the_full_map_has_no_room_for_count_for_the_target() {
    let h = hand_over(
        "hand-full",
        "scm",
        65_537,
        None,
        Some("[capacity]\nprocesses = 1\npeers = 1\n"),
    );
    let mut want = Bytes::default();
    h.truth.values().for_each(|b| want.add(*b));
    let (mut target, mut processes, mut fallback) =
        (Bytes::default(), Bytes::default(), Bytes::default());
    for v in &h.records.records {
        if v["NETIO_EVENT"] == "traffic" && v["NETIO_SCOPE"] == "target" {
            target.add(record_bytes(v));
        }
        if v["NETIO_EVENT"] == "traffic" && v["NETIO_SCOPE"] == "process" {
            processes.add(record_bytes(v));
        }
        if v["NETIO_EVENT"] == "degraded" && v["NETIO_REASON"] == "target_fallback" {
            assert_eq!(v["NETIO_TARGET"], TARGET, "{v}");
            fallback.add(record_bytes(v));
        }
    }
    assert_eq!(
        target, want,
        "the owner's and the mover's bytes: {:?}",
        h.records.records
    );
    // The owner's bytes may have found its `other`, the mover's cannot.
    let mover = h.truth[&h.taker];
    assert!(
        fallback.sent >= mover.sent && fallback.received >= mover.received,
        "the mover's bytes ({mover}) are counted without their process ({fallback}): {:?}",
        h.records.records
    );
    processes.add(fallback);
    assert_eq!(processes, target, "process records and fallback add up");
}

#[test]
fn an_accepted_socket_passed_to_nobody_before_its_first_byte_is_counted_for_the_target() {
    accepted_socket_handed_over("hand-scm-0", "scm", 0, None);
}

#[test]
fn an_accepted_socket_passed_to_nobody_after_some_bytes_is_counted_for_the_target() {
    accepted_socket_handed_over("hand-scm-n", "scm", 65_537, None);
}

#[test]
fn an_accepted_socket_taken_with_pidfd_getfd_by_nobody_is_counted_for_the_target() {
    accepted_socket_handed_over("hand-getfd", "getfd", 0, Some(NOBODY));
}

/// The target connects out, sends some bytes, and hands the connected
/// socket to nobody's taker, which sends and reads the rest.
#[test]
fn a_connected_socket_passed_to_nobody_is_counted_for_the_target() {
    let (scratch, tracked, netio) = tracked_program("hand-connect", "1s");
    let path = scratch.path("taker.sock");
    let taker = Taker::start(&path, true);
    let size = SIZE.to_string();
    let peer = Program::original().server("bulk", "127.0.0.1:0", &["--size", &size]);
    let owner = tracked.client(
        "hand-over",
        &peer.addr("127.0.0.1"),
        &[
            "--hand-to",
            path.to_str().unwrap(),
            "--parent-bytes",
            "1000",
            "--uid",
            NOBODY,
        ],
    );
    let taker = taker.finish();
    let peer = peer.finish();
    assert_eq!(
        (peer.received, peer.sent),
        (owner.sent + taker.sent, owner.received + taker.received),
        "traffic generator disagrees with itself"
    );
    let records = netio.stop();
    let mut truth: BTreeMap<u32, Bytes> = owner.per_pid.clone();
    truth.extend(taker.per_pid.clone());
    records.assert_exact_per_peer(&with_channel(&truth, &owner, &taker));
    assert_named(&records, taker.pid, owner.pid);
}
