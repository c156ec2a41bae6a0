//! Accuracy tests: netio's per-process byte counts must equal, exactly, the
//! bytes the tracked netio-traffic process says its system calls moved, for
//! every way of moving TCP bytes the feature promises to see. Needs root, a
//! BPF-capable kernel and a built `netio` (see `common::netio_bin`).

use crate::common;

use std::time::{Duration, Instant};

use common::{
    event, exchange, num, process_totals, record_bytes, record_pid, tracked_program,
    tracked_server, unique_name, Bytes, Netio, Program, Scratch, TARGET,
};

const TEN_MIB: u64 = 10 * 1024 * 1024;
const ONE_MIB: u64 = 1024 * 1024;

fn s(n: u64) -> String {
    n.to_string()
}

#[test]
fn bulk_ipv4_counts_every_byte_both_ways() {
    let t = tracked_server(
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", &s(TEN_MIB)],
        "127.0.0.1",
    );
    assert_eq!(
        (t.sent, t.received),
        (TEN_MIB, TEN_MIB),
        "scenario moved the wrong amount"
    );
}

#[test]
fn bulk_ipv6_counts_every_byte_both_ways() {
    let t = tracked_server("bulk", "[::1]:0", "[::1]", &["--size", &s(TEN_MIB)], "::1");
    assert_eq!(
        (t.sent, t.received),
        (TEN_MIB, TEN_MIB),
        "scenario moved the wrong amount"
    );
}

#[test]
fn dual_stack_listener_counts_ipv4_client_under_plain_ipv4_peer() {
    let t = tracked_server(
        "bulk",
        "[::]:0",
        "127.0.0.1",
        &["--size", &s(TEN_MIB)],
        "127.0.0.1",
    );
    assert_eq!(
        t.peers,
        ["::ffff:127.0.0.1"],
        "the server should have seen a v4-mapped peer, else this test proves nothing about mapping"
    );
}

#[test]
fn recv_waitall_of_trickled_writes_counts_every_byte() {
    let t = tracked_server(
        "waitall",
        "127.0.0.1:0",
        "127.0.0.1",
        &[
            "--size",
            "200000",
            "--chunk",
            "1000",
            "--pause-ms",
            "2",
            "--reply",
            "1000",
        ],
        "127.0.0.1",
    );
    assert_eq!(t.received, 200_000, "scenario moved the wrong amount");
    eprintln!(
        "MSG_WAITALL receive took {:?} recv call(s)",
        t.extra("waitall_calls")
    );
}

#[test]
fn peeked_bytes_are_not_counted_as_received() {
    let t = tracked_server(
        "peek",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", &s(ONE_MIB)],
        "127.0.0.1",
    );
    assert_eq!(t.received, ONE_MIB, "scenario moved the wrong amount");
    let peeked = t.extra("peeked_bytes").unwrap_or(0);
    assert!(
        peeked > ONE_MIB,
        "the server peeked only {peeked} bytes; the test would prove nothing"
    );
}

#[test]
fn sendfile_counts_every_file_byte_sent() {
    let t = tracked_server(
        "sendfile",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", &s(TEN_MIB)],
        "127.0.0.1",
    );
    assert_eq!(
        (t.sent, t.received),
        (TEN_MIB, 0),
        "scenario moved the wrong amount"
    );
}

#[test]
fn splice_from_socket_into_pipe_counts_every_byte_received() {
    let t = tracked_server(
        "splice",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", &s(TEN_MIB)],
        "127.0.0.1",
    );
    assert_eq!(t.received, TEN_MIB, "scenario moved the wrong amount");
}

#[test]
fn splice_echo_counts_both_directions() {
    let size = 4 * ONE_MIB;
    let t = tracked_server(
        "splice-echo",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", &s(size)],
        "127.0.0.1",
    );
    assert_eq!(
        (t.sent, t.received),
        (size, size),
        "scenario moved the wrong amount"
    );
}

#[test]
fn five_thousand_short_connections_are_all_counted() {
    let started = Instant::now();
    let t = tracked_server(
        "short",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--count", "5000", "--request", "100", "--reply", "400"],
        "127.0.0.1",
    );
    assert_eq!(
        (t.sent, t.received),
        (5000 * 400, 5000 * 100),
        "scenario moved the wrong amount"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "5,000 short connections took {took:?} under netio"
    );
}

#[test]
fn threaded_server_threads_are_summed_into_their_process() {
    let t = tracked_server(
        "threaded",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--count", "20", "--size", "262144"],
        "127.0.0.1",
    );
    assert_eq!(t.per_pid.len(), 1, "a threaded server is one process");
    assert_eq!((t.sent, t.received), (20 * 262_144, 20 * 262_144));
}

#[test]
fn forked_children_that_rename_themselves_are_tracked_through_their_parent() {
    let child_name = unique_name("ntc");
    let t = tracked_server(
        "forking",
        "127.0.0.1:0",
        "127.0.0.1",
        &[
            "--count",
            "20",
            "--size",
            "262144",
            "--child-name",
            &child_name,
        ],
        "127.0.0.1",
    );
    assert_eq!(
        t.per_pid.len(),
        20,
        "expected one ground-truth entry per child"
    );
    let comms = t.raw["extra"]["child_comms"]
        .as_object()
        .expect("child_comms");
    assert!(
        comms
            .values()
            .all(|c| c.as_str() == Some(child_name.as_str())),
        "children did not all rename themselves to {child_name}: {comms:?}"
    );
}

#[test]
fn forked_children_that_reexec_another_binary_stay_tracked() {
    let (scratch, tracked, netio) = tracked_program("reexec", "1s");
    let other = Program::named(&scratch, &unique_name("ntx"));
    let reexec = other.path.to_str().expect("UTF-8 scratch path").to_owned();
    let (server, _) = exchange(
        &tracked,
        &Program::original(),
        "forking",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--count", "10", "--size", "262144", "--reexec", &reexec],
    );
    let records = netio.stop();
    let comms = server.raw["extra"]["child_comms"]
        .as_object()
        .expect("child_comms");
    assert!(
        comms
            .values()
            .all(|c| c.as_str() == Some(other.name().as_str())),
        "children did not all re-exec as {}: {comms:?}",
        other.name()
    );
    records.assert_exact(&server.per_pid, "127.0.0.1");
}

/// Parent and child move bytes on one socket: the first to use it owns
/// its socket-local counters, and the other's bytes must still be its own.
#[test]
fn parent_and_forked_child_sharing_one_socket_are_each_counted_exactly() {
    let child_name = unique_name("ntc");
    let t = tracked_server(
        "forking",
        "127.0.0.1:0",
        "127.0.0.1",
        &[
            "--count",
            "10",
            "--size",
            "262144",
            "--parent-bytes",
            "65536",
            "--child-name",
            &child_name,
        ],
        "127.0.0.1",
    );
    assert_eq!(
        t.per_pid.len(),
        11,
        "the parent and each of its 10 children should have moved bytes"
    );
    let parent = t.per_pid[&t.pid];
    assert_eq!(
        (parent.sent, parent.received),
        (10 * 65536, 10 * 65536),
        "the parent moved the wrong amount on the shared sockets"
    );
}

/// A process that gets the PID of one that exited, and goes on with the
/// socket that one used first, is another process and is counted apart.
/// On the socket path the socket's counters belong to the first; the
/// second's bytes must not join them (netio tells the two apart by their
/// generation, and checks the owner again when the PID's tracking changes).
#[test]
fn a_process_reusing_an_exited_ones_pid_on_its_socket_is_counted_apart() {
    let (_scratch, tracked, netio) = tracked_program("pidreuse", "1s");
    let (count, request, reply) = (3u64, 1000u64, 3000u64);
    let (c, rq, rp) = (s(count), s(request), s(reply));
    let args = ["--count", &c, "--request", &rq, "--reply", &rp];
    let (server, _) = exchange(
        &tracked,
        &Program::original(),
        "pid-reuse",
        "127.0.0.1:0",
        "127.0.0.1",
        &args,
    );
    let records = netio.stop();
    let children = server.raw["extra"]["children"]
        .as_array()
        .expect("children");
    let pids: std::collections::BTreeSet<u64> =
        children.iter().filter_map(|c| num(c, "pid")).collect();
    assert_eq!(
        (children.len(), pids.len()),
        (count as usize, 1),
        "the children should have shared one PID: {children:?}"
    );
    let pid = pids.into_iter().next().expect("one PID") as u32;
    let exits: Vec<Bytes> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("process_exited") && record_pid(v) == Some(pid))
        .map(record_bytes)
        .collect();
    assert_eq!(
        exits,
        vec![
            Bytes {
                sent: reply,
                received: request
            };
            count as usize
        ],
        "netio's process_exited records for PID {pid}, which each of the {count} children \
         should have, in order, with its one exchange"
    );
    records.assert_exact(&server.per_pid, "127.0.0.1");
}

/// Bytes on a connection that stays open belong to the interval they moved
/// in: where the kernel holds them in the socket, netio must drain them at
/// each interval's end, not only when the socket is closed.
#[test]
fn bytes_on_a_connection_still_open_are_reported_at_their_interval_end() {
    let (_scratch, tracked, mut netio) = tracked_program("open", "1s");
    let (count, request, reply) = (200u64, 100u64, 300u64);
    let args = [
        "--count".to_string(),
        s(count),
        "--request".into(),
        s(request),
        "--reply".into(),
        s(reply),
    ];
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Program::original().server("pingpong", "127.0.0.1:0", &arg_refs);
    let addr = server.addr("127.0.0.1");
    let mut client_args = args.to_vec();
    client_args.extend(["--open-ms".into(), "6000".into()]);
    // The exchanges take well under a second; then the client holds the
    // connection open for 6 s.
    let client = std::thread::spawn(move || {
        let refs: Vec<&str> = client_args.iter().map(String::as_str).collect();
        tracked.client("pingpong", &addr, &refs)
    });
    let want = common::Bytes {
        sent: count * request,
        received: count * reply,
    };
    let reported = netio.wait_until(Duration::from_secs(4), |records| {
        process_totals(records).values().any(|b| *b == want)
    });
    let truth = client.join().expect("client thread");
    server.finish();
    let records = netio.stop();
    records.assert_exact(&truth.per_pid, "127.0.0.1");
    assert!(
        reported,
        "the client's {want} were not all reported within 4 s while its connection stayed open"
    );
}

/// One socket, two peers in turn: the tracked client's connection to one
/// server is closed and dissolved (connect AF_UNSPEC), and the same socket
/// connects to another. Counters kept with the socket must follow its peer.
#[test]
fn a_socket_reconnected_to_another_peer_counts_each_peer_exactly() {
    let (_scratch, tracked, netio) = tracked_program("reconnect", "1s");
    let args = ["--count", "1", "--request", "3000", "--reply", "5000"];
    let first = Program::original().server("short", "127.0.0.1:0", &args);
    let second = Program::original().server("short", "127.0.0.2:0", &args);
    let then = second.addr("127.0.0.2");
    let mut client_args = args.to_vec();
    client_args.extend(["--then-connect", &then]);
    let truth = tracked.client("short", &first.addr("127.0.0.1"), &client_args);
    first.finish();
    second.finish();
    let records = netio.stop();
    let each = common::Bytes {
        sent: 3000,
        received: 5000,
    };
    let both = common::Bytes {
        sent: 6000,
        received: 10000,
    };
    assert_eq!(
        truth.per_pid.get(&truth.pid),
        Some(&both),
        "the client moved the wrong amount"
    );
    assert_eq!(records.process_totals().get(&truth.pid), Some(&both));
    let peers = records.peer_totals().remove(&truth.pid).unwrap_or_default();
    let want: std::collections::BTreeMap<String, common::Bytes> = [
        ("127.0.0.1".to_string(), each),
        ("127.0.0.2".to_string(), each),
    ]
    .into();
    assert_eq!(
        peers, want,
        "each peer of the reconnected socket should have exactly its own bytes"
    );
}

#[test]
fn process_running_before_netio_starts_is_tracked() {
    let scratch = Scratch::new("preexisting");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let args = ["--size", &s(ONE_MIB)];
    let server = tracked.server("bulk", "127.0.0.1:0", &args);
    let netio = Netio::start(&scratch, "1s", &[(TARGET, &[name.as_str()])]);
    let _client = Program::original().client("bulk", &server.addr("127.0.0.1"), &args);
    let truth = server.finish();
    netio.stop().assert_exact(&truth.per_pid, "127.0.0.1");
}

#[test]
fn process_started_after_netio_is_counted_from_its_first_byte() {
    let (_scratch, tracked, netio) = tracked_program("late", "1s");
    let args = ["--size", &s(ONE_MIB)];
    let server = Program::original().server("bulk", "127.0.0.1:0", &args);
    // The tracked client connects and sends as soon as it starts.
    let truth = tracked.client("bulk", &server.addr("127.0.0.1"), &args);
    server.finish();
    netio.stop().assert_exact(&truth.per_pid, "127.0.0.1");
}

#[test]
fn process_exiting_mid_interval_is_reported_at_that_interval_end() {
    let (_scratch, tracked, mut netio) = tracked_program("exit", "2s");
    let args = ["--size", "262144"];
    let server = Program::original().server("bulk", "127.0.0.1:0", &args);
    let mut client_args = args.to_vec();
    client_args.extend(["--hold-ms", "500"]);
    let truth = tracked.client("bulk", &server.addr("127.0.0.1"), &client_args);
    server.finish();
    let want = truth.per_pid.get(&truth.pid).copied();
    // The interval in which the client exited ends within 2s; allow a
    // second interval and some slack before declaring the bytes lost.
    let reported = netio.wait_until(Duration::from_secs(6), |records| {
        process_totals(records).get(&truth.pid).copied() == want
    });
    let records = netio.stop();
    records.assert_exact(&truth.per_pid, "127.0.0.1");
    assert!(
        reported,
        "pid {} exited after 0.5s but its bytes appeared only when netio was stopped, not at the end of an interval",
        truth.pid
    );
}

#[test]
fn untracked_processes_produce_no_records() {
    let scratch = Scratch::new("untracked");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    // Shares the tracked name as a prefix, so prefix matching would be caught.
    let lookalike = Program::named(&scratch, &format!("{name}x"));
    let netio = Netio::start(&scratch, "1s", &[(TARGET, &[name.as_str()])]);
    let args = ["--size", &s(ONE_MIB)];
    let (us, uc) = exchange(
        &lookalike,
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &args,
    );
    // A tracked pair in the same run shows netio was counting at all.
    let (ts, _) = exchange(
        &tracked,
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", "65536"],
    );
    let records = netio.stop();
    let reported = records.traffic_pids();
    for (who, pid) in [("untracked server", us.pid), ("untracked client", uc.pid)] {
        assert!(
            !reported.contains(&pid),
            "netio reported traffic for the {who} (pid {pid})"
        );
    }
    records.assert_exact(&ts.per_pid, "127.0.0.1");
}

/// With an interval far longer than the test, every byte can only appear
/// through the flush of the partial interval on SIGTERM or SIGINT.
fn shutdown_flushes_partial_interval(signal: libc::c_int) {
    let (_scratch, tracked, netio) = tracked_program("shutdown", "1h");
    let (server, _client) = exchange(
        &tracked,
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", "123457"],
    );
    let records = netio.stop_with(signal);
    records.assert_exact(&server.per_pid, "127.0.0.1");
    let interval = records
        .traffic()
        .filter_map(|v| common::num(v, "NETIO_INTERVAL_MS"))
        .max()
        .unwrap_or(0);
    assert!(
        interval < 60_000,
        "the flushed interval should be the partial one, got {interval} ms"
    );
}

#[test]
fn sigterm_flushes_the_partial_interval() {
    shutdown_flushes_partial_interval(libc::SIGTERM);
}

#[test]
fn sigint_flushes_the_partial_interval() {
    shutdown_flushes_partial_interval(libc::SIGINT);
}
