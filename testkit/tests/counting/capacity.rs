//! Full maps lose nothing silently: when the peer map is full, a process's
//! new peers are counted in its `other` peer record, its totals stay exact,
//! and a `degraded` record says what happened. Per-peer thresholds hold
//! for the `other` sum too. When not even a process's `other` has room, its
//! bytes still count for its target. A tracked process cannot fill
//! the tracking of its own descendants: however many children it makes,
//! the next one is tracked.

use std::time::Duration;

use crate::common;

use common::{
    event, exchange, num, record_bytes, tracked_program, unique_name, Bytes, Netio, Program,
    Scratch, TARGET,
};

#[test]
fn full_peer_map_folds_new_peers_into_other_and_keeps_totals_exact() {
    let scratch = Scratch::new("capacity");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    // Room for one process: its fallback entry and a single peer.
    let netio = Netio::start_with(
        &scratch,
        "10s",
        &[(TARGET, &[name.as_str()])],
        "[capacity]\nprocesses = 1\npeers = 1\n",
    );
    let server = tracked.server(
        "short",
        "[::]:0",
        &["--count", "2", "--request", "1000", "--reply", "3000"],
    );
    let client = Program::original();
    let v4 = client.client(
        "short",
        &server.addr("127.0.0.1"),
        &["--count", "1", "--request", "1000", "--reply", "3000"],
    );
    let v6 = client.client(
        "short",
        &server.addr("[::1]"),
        &["--count", "1", "--request", "1000", "--reply", "3000"],
    );
    let truth = server.finish();
    assert_eq!(
        (v4.sent + v6.sent, v4.received + v6.received),
        (truth.received, truth.sent)
    );
    let records = netio.stop();

    let totals = records.process_totals();
    let got = totals
        .get(&truth.pid)
        .unwrap_or_else(|| panic!("no record for pid {}: {:?}", truth.pid, records.records));
    assert_eq!(
        (got.sent, got.received),
        (truth.sent, truth.received),
        "process totals must stay exact"
    );

    let peers = records.peer_totals();
    let peers = &peers[&truth.pid];
    assert_eq!(
        peers.len(),
        2,
        "one peer counted apart and one folded: {peers:?}"
    );
    let other = peers
        .get("other")
        .unwrap_or_else(|| panic!("no `other` peer record: {peers:?}"));
    assert_eq!(
        (other.sent, other.received),
        (3000, 1000),
        "the second client's bytes"
    );
    let peer_sum: (u64, u64) = peers
        .values()
        .fold((0, 0), |a, b| (a.0 + b.sent, a.1 + b.received));
    assert_eq!(peer_sum, (truth.sent, truth.received));

    let degraded: Vec<_> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("degraded"))
        .collect();
    assert!(
        degraded
            .iter()
            .any(|v| v["NETIO_REASON"] == "peer_map_full" && num(v, "NETIO_COUNT") >= Some(1)),
        "a degraded record must report the full peer map: {degraded:?}"
    );
}

/// Target-scope traffic records of the test's target so far: one an
/// interval, each written after that interval's read.
fn target_records(records: &[serde_json::Value]) -> usize {
    records
        .iter()
        .filter(|v| event(v) == Some("traffic"))
        .filter(|v| v["NETIO_SCOPE"] == "target" && v["NETIO_TARGET"] == TARGET)
        .count()
}

/// A long-lived server whose clients come and go: 96 distinct client
/// addresses (three times the 32 peers the map has room for), in batches
/// of 16 with netio's reads between them, then one new client. The idle
/// peers are retired, so the new client is counted under its own address,
/// to the byte, and nothing is folded into `other`; every client and the
/// process and target totals stay exact.
#[test]
fn a_new_client_after_three_times_the_peer_capacity_keeps_its_own_address() {
    const PEERS: u32 = 32;
    const BATCH: u32 = 16;
    let (request, reply) = (1000u64, 200_000u64);
    let scratch = Scratch::new("capacity-churn");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let mut netio = Netio::start_with(
        &scratch,
        "300ms",
        &[(TARGET, &[name.as_str()])],
        &format!("[capacity]\nprocesses = 1\npeers = {PEERS}\n[records]\ntop_peers = 1000\n"),
    );
    let batches = 3 * PEERS / BATCH;
    let total = (batches * BATCH + 1).to_string();
    let (req, rep) = (request.to_string(), reply.to_string());
    let sizes = ["--request", req.as_str(), "--reply", rep.as_str()];
    let mut args = vec!["--count", total.as_str(), "--timeout-secs", "120"];
    args.extend(sizes);
    let server = tracked.server("short", "127.0.0.1:0", &args);
    let client = Program::original();
    let count = BATCH.to_string();
    let mut clients = Vec::new();
    for b in 0..batches {
        let from =
            std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(127, 1, 0, 1)) + b * BATCH);
        let from = from.to_string();
        let mut args = vec!["--count", count.as_str(), "--from", from.as_str()];
        args.extend(sizes);
        clients.push(client.client("short", &server.addr("127.0.0.1"), &args));
        // Reads after the batch (one may have been on its way already):
        // its peers are idle by the last.
        let seen = target_records(&netio.records_so_far());
        assert!(
            netio.wait_until(Duration::from_secs(30), |r| target_records(r) >= seen + 3),
            "netio wrote no interval records"
        );
    }
    let newcomer = "127.2.0.1";
    let mut args = vec!["--count", "1", "--from", newcomer];
    args.extend(sizes);
    clients.push(client.client("short", &server.addr("127.0.0.1"), &args));
    let truth = server.finish();
    let sent: u64 = clients.iter().map(|c| c.sent).sum();
    let received: u64 = clients.iter().map(|c| c.received).sum();
    assert_eq!((sent, received), (truth.received, truth.sent));
    let records = netio.stop();

    let got = records
        .process_totals()
        .get(&truth.pid)
        .copied()
        .unwrap_or_default();
    assert_eq!(
        (got.sent, got.received),
        (truth.sent, truth.received),
        "process totals must stay exact"
    );
    let target: (u64, u64) = records
        .traffic()
        .filter(|v| v["NETIO_SCOPE"] == "target" && v["NETIO_TARGET"] == TARGET)
        .fold((0, 0), |a, v| {
            let b = common::record_bytes(v);
            (a.0 + b.sent, a.1 + b.received)
        });
    assert_eq!(
        target,
        (truth.sent, truth.received),
        "target totals must stay exact"
    );

    let peers = records.peer_totals();
    let peers = peers.get(&truth.pid).cloned().unwrap_or_default();
    let new = peers.get(newcomer).copied().unwrap_or_default();
    assert_eq!(
        (new.sent, new.received),
        (reply, request),
        "the new client, under its own address: {peers:?}"
    );
    assert!(
        !peers.contains_key("other"),
        "no client folded into `other`: {:?}",
        peers.get("other")
    );
    let wrong: Vec<_> = peers
        .iter()
        .filter(|(_, b)| (b.sent, b.received) != (reply, request))
        .collect();
    assert!(
        wrong.is_empty(),
        "clients not counted exactly once: {wrong:?}"
    );
    assert_eq!(
        peers.len() as u32,
        batches * BATCH + 1,
        "one peer record set per client"
    );
    let full: Vec<_> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("degraded") && v["NETIO_REASON"] == "peer_map_full")
        .collect();
    assert!(full.is_empty(), "the peer map never filled: {full:?}");
}

/// A per-peer limit holds for `other` too: a heavy client that the full
/// map folded there raises the alarm a client counted apart would, and the
/// record says it is `other` and that it folds at least one peer.
#[test]
fn a_per_peer_threshold_fires_for_a_heavy_client_hidden_in_other() {
    let scratch = Scratch::new("capacity-threshold");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    // Two servers, each with its `other`, and one peer slot, which the
    // light client takes first; the heavy one is folded. With 10 s
    // intervals, a 1 s sustain is reached by the one interval the stop ends.
    let config = scratch.path("netio.toml");
    std::fs::write(
        &config,
        format!(
            "interval = \"10s\"\n[capacity]\nprocesses = 2\npeers = 1\n\n\
             [[target]]\nname = \"{TARGET}\"\nprocess = [\"{name}\"]\n\
             [target.threshold]\npeer_sent = \"100KiB/s\"\nfor = \"1s\"\n"
        ),
    )
    .unwrap();
    let netio = Netio::start_file(&config);
    let light = ["--count", "1", "--request", "1000", "--reply", "1000"];
    let heavy = ["--count", "1", "--request", "1000", "--reply", "3000000"];
    let light_server = tracked.server("short", "127.0.0.1:0", &light);
    let heavy_server = tracked.server("short", "[::1]:0", &heavy);
    let client = Program::original();
    client.client("short", &light_server.addr("127.0.0.1"), &light);
    client.client("short", &heavy_server.addr("[::1]"), &heavy);
    light_server.finish();
    heavy_server.finish();
    let records = netio.stop();

    let peers = records.peer_totals();
    let other = peers.values().find_map(|p| p.get("other"));
    assert_eq!(
        other.map(|b| b.sent),
        Some(3_000_000),
        "the heavy client should have been folded into `other`: {peers:?}"
    );
    let exceeded: Vec<_> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("threshold_exceeded"))
        .collect();
    assert_eq!(
        exceeded.len(),
        1,
        "one warning, for the heavy client in `other`: {exceeded:?}"
    );
    let r = exceeded[0];
    assert_eq!(r["NETIO_PEER_ADDRESS"], "other", "{r}");
    assert_eq!(r["NETIO_DIRECTION"], "sent", "{r}");
    assert!(
        num(r, "NETIO_FOLDED_PEERS_MIN") >= Some(1),
        "the record says how many peers `other` folds: {r}"
    );
}

/// The churn: a tracked server's short-lived children fill the
/// traffic map with their counters until the next read, and a process of
/// the target that starts after them gets no entry, not even its `other`.
/// Its bytes still count for the target, to the byte, and raise the
/// target's threshold; a `degraded` record says which bytes lost their
/// process and peer. Here the children are the escape scenario's paused
/// ones, killed once its worker runs, and the map is small.
#[test]
fn a_process_the_full_map_has_no_entry_for_still_counts_for_its_target() {
    let scratch = Scratch::new("fallback");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let worker = Program::named(&scratch, &unique_name("ntw"));
    // Room for 8 counters: the server's and 7 of its 64 children's, so the
    // worker forked after them has none. No read before the stop.
    let config = scratch.path("netio.toml");
    std::fs::write(
        &config,
        format!(
            "interval = \"60s\"\n[capacity]\nprocesses = 4\npeers = 4\n\n\
             [[target]]\nname = \"{TARGET}\"\nprocess = [\"{name}\"]\n\
             [target.threshold]\nsent = \"1KiB/s\"\nfor = \"1s\"\n"
        ),
    )
    .unwrap();
    let netio = Netio::start_file(&config);
    let path = worker.path.to_str().expect("UTF-8 scratch path").to_owned();
    let args = [
        "--paused",
        "64",
        "--size",
        "100000005",
        "--reexec",
        &path,
        "--deadline-secs",
        "300",
        "--timeout-secs",
        "120",
    ];
    let (server, _) = exchange(
        &tracked,
        &Program::original(),
        "escape",
        "127.0.0.1:0",
        "127.0.0.1",
        &args,
    );
    let pid = server.extra("worker_pid").expect("worker_pid") as u32;
    let want = Bytes {
        sent: 100_000_005,
        received: 100_000_005,
    };
    assert_eq!(server.per_pid[&pid], want);
    let records = netio.stop();

    let sum = |filter: &dyn Fn(&serde_json::Value) -> bool| {
        let mut b = Bytes::default();
        for v in records.records.iter().filter(|v| filter(v)) {
            b.add(record_bytes(v));
        }
        b
    };
    let target = sum(&|v| {
        event(v) == Some("traffic") && v["NETIO_SCOPE"] == "target" && v["NETIO_TARGET"] == TARGET
    });
    assert_eq!(
        target, want,
        "the target's totals must hold the worker's bytes: {:?}",
        records.records
    );
    let processes = sum(&|v| event(v) == Some("traffic") && v["NETIO_SCOPE"] == "process");
    let fallback = sum(&|v| {
        event(v) == Some("degraded")
            && v["NETIO_REASON"] == "target_fallback"
            && v["NETIO_TARGET"] == TARGET
    });
    assert!(
        !fallback.is_zero(),
        "a degraded record must say the target counted bytes without their process: {:?}",
        records.records
    );
    let mut attributed = processes;
    attributed.add(fallback);
    assert_eq!(
        attributed, target,
        "the process records and the fallback's bytes add up to the target's"
    );
    let exceeded: Vec<_> = records
        .records
        .iter()
        .filter(|v| {
            event(v) == Some("threshold_exceeded")
                && v["NETIO_TARGET"] == TARGET
                && v["NETIO_DIRECTION"] == "sent"
                && v.get("NETIO_PEER_ADDRESS").is_none()
        })
        .collect();
    assert_eq!(exceeded.len(), 1, "the target's threshold: {exceeded:?}");
    let lost: Vec<_> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("degraded") && v["NETIO_REASON"] == "bytes_lost")
        .collect();
    assert!(lost.is_empty(), "no byte lost: {lost:?}");
}

/// The attack: a tracked server forks 4,200 paused children (more
/// than the default `capacity.processes`, 4096), then a worker that
/// setsid()s, double-forks and execs a program of another name as nobody;
/// then the paused children are killed. The worker is init's child by then
/// and no /proc rescan finds it again: it is counted only if it was tracked
/// at its fork. Its bytes must be counted exactly, at the default capacity.
#[test]
fn a_worker_forked_past_a_crowd_of_children_is_still_counted() {
    let (scratch, tracked, netio) = tracked_program("escape", "1s");
    let worker = Program::named(&scratch, &unique_name("ntw"));
    let path = worker.path.to_str().expect("UTF-8 scratch path").to_owned();
    let args = [
        "--paused",
        "4200",
        "--size",
        "20000005",
        "--reexec",
        &path,
        "--uid",
        "65534",
        "--deadline-secs",
        "300",
        // Forking 4,200 children takes a while in an emulated guest.
        "--timeout-secs",
        "120",
    ];
    let (server, _) = exchange(
        &tracked,
        &Program::original(),
        "escape",
        "127.0.0.1:0",
        "127.0.0.1",
        &args,
    );
    assert_eq!(server.extra("paused"), Some(4200));
    let pid = server.extra("worker_pid").expect("worker_pid") as u32;
    assert_eq!(
        server.per_pid[&pid],
        Bytes {
            sent: 20_000_005,
            received: 20_000_005
        }
    );
    let records = netio.stop();
    let got = records
        .process_totals()
        .get(&pid)
        .copied()
        .unwrap_or_default();
    assert_eq!(
        got, server.per_pid[&pid],
        "the worker {pid}'s bytes, counted after its parent's 4,200 children"
    );
    records.assert_exact(&server.per_pid, "127.0.0.1");
    let full: Vec<_> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("degraded") && v["NETIO_REASON"] == "process_map_full")
        .collect();
    assert!(full.is_empty(), "no process went untracked: {full:?}");
}

/// Restores pid_max when dropped, whatever the test did.
struct PidMax(String);

impl Drop for PidMax {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/pid_max", &self.0);
    }
}

/// The tracked map holds the PIDs up to pid_max as it was at start. Raised
/// after that, a tracked process's child on a PID past it cannot be
/// tracked: a `degraded` record says so and names the target, rather than
/// the child's bytes going missing unsaid.
#[test]
fn a_child_on_a_pid_past_the_tracked_map_is_reported_for_its_target() {
    // Alone: every process forked while the PIDs past pid_max are handed
    // out gets one, past every other netio's tracked map too.
    let _alone = common::pid_space_alone();
    let (_scratch, tracked, netio) = tracked_program("pid-max", "1s");
    let old = std::fs::read_to_string("/proc/sys/kernel/pid_max").expect("read pid_max");
    let before: u32 = old.trim().parse().expect("pid_max is a number");
    if before >= (1 << 22) - 2000 {
        eprintln!("pid_max is at its limit already: nothing past the tracked map to test");
        return;
    }
    let restore = PidMax(old.trim().to_string());
    let want = before + 1000;
    std::fs::write("/proc/sys/kernel/pid_max", (want + 1000).to_string()).expect("raise pid_max");
    let server = Program::original().server("bulk", "127.0.0.1:0", &["--size", "1000"]);
    let client = tracked.client(
        "bulk",
        &server.addr("127.0.0.1"),
        &["--size", "1000", "--take-pid", &want.to_string()],
    );
    server.finish();
    drop(restore);
    assert_eq!(
        client.pid, want,
        "the tracked client's child did not get PID {want}"
    );
    let records = netio.stop();
    let untracked: Vec<_> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("degraded") && v["NETIO_REASON"] == "process_untracked")
        .collect();
    assert!(
        untracked
            .iter()
            .any(|v| v["NETIO_TARGET"] == TARGET && num(v, "NETIO_COUNT") >= Some(1)),
        "a degraded record must name the target whose child on PID {want} was not tracked: \
         {untracked:?}"
    );
}
