//! Loopback TCP clients named by process: every local client connects from
//! the same address, so a target's bytes with each are told apart by the
//! process that called connect(), named with its PID, uid and name, and
//! exact per client (docs/records.md, "Local clients").

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use serde_json::Value;

use crate::common;

use common::{
    event, exchange, num, text, tracked_program, unique_name, Bytes, Netio, Program, Records,
    Scratch, Truth, TARGET,
};

const NOBODY: u32 = 65534;

/// A client as the test knows it: its ground truth, and who it is.
struct Client {
    truth: Truth,
    uid: u32,
}

/// netio tracks a threaded netio-traffic server on `listen`; three
/// untracked client processes (two names, one as nobody) make one, two and
/// three bulk connections to it from `host`, one client after another. Every peer record
/// of the server's must name one of them, and each one's bytes must be the
/// client's own count.
fn three_clients_of_one_address(listen: &str, host: &str, address: &str) {
    let (scratch, tracked, netio) = tracked_program("local", "1s");
    let size = ["--size", "300000"];
    let server = tracked.server("threaded", listen, &[&["--count", "6"][..], &size].concat());
    let connect = server.addr(host);
    let backup = Program::named(&scratch, "backup-job");
    let run = |p: &Program, connections: u32, uid: u32| {
        let count = connections.to_string();
        let args = [&["--count", count.as_str()][..], &size].concat();
        let truth = p.client_with("threaded", &connect, &args, |cmd| {
            if uid != 0 {
                cmd.uid(uid).gid(uid);
            }
        });
        Client { truth, uid }
    };
    let clients = [
        run(&Program::original(), 1, 0),
        run(&backup, 2, 0),
        run(&backup, 3, NOBODY),
    ];
    let s = server.finish();
    let records = netio.stop();
    let mut truth = BTreeMap::new();
    truth.insert(
        s.pid,
        BTreeMap::from([(address.to_string(), server_bytes(&clients))]),
    );
    records.assert_exact_per_peer(&truth);
    assert_each_client_named(&records, s.pid, address, &clients);
}

/// What the server moved with all clients: each one's, turned round.
fn server_bytes(clients: &[Client]) -> Bytes {
    clients.iter().fold(Bytes::default(), |all, c| {
        all.plus(&Bytes {
            sent: c.truth.received,
            received: c.truth.sent,
        })
    })
}

/// The server's peer records, summed by the client process they name, are
/// each client's bytes; every one names its client's uid and name too.
fn assert_each_client_named(records: &Records, server: u32, address: &str, clients: &[Client]) {
    let mut by_pid: BTreeMap<u64, Bytes> = BTreeMap::new();
    let peers: Vec<&Value> = records
        .traffic()
        .filter(|v| text(v, "NETIO_SCOPE") == Some("peer"))
        .filter(|v| common::record_pid(v) == Some(server))
        .collect();
    for v in peers {
        let bytes = Bytes {
            sent: num(v, "NETIO_SENT_BYTES").unwrap_or(0),
            received: num(v, "NETIO_RECEIVED_BYTES").unwrap_or(0),
        };
        assert_eq!(text(v, "NETIO_PEER_ADDRESS"), Some(address), "{v}");
        assert_eq!(text(v, "NETIO_TRANSPORT"), Some("tcp"), "{v}");
        let pid = num(v, "NETIO_PEER_PID").unwrap_or_else(|| panic!("no client process: {v}"));
        let client = clients
            .iter()
            .find(|c| u64::from(c.truth.pid) == pid)
            .unwrap_or_else(|| panic!("peer PID {pid} is none of the clients: {v}"));
        let comm = text(&client.truth.raw, "comm").expect("the client says its name");
        assert_eq!(text(v, "NETIO_PEER_COMM"), Some(comm), "{v}");
        assert_eq!(num(v, "NETIO_PEER_UID"), Some(u64::from(client.uid)), "{v}");
        let message = text(v, "MESSAGE").unwrap_or_default();
        assert!(
            message.contains(&format!("peer_pid={pid} peer_comm=\"{comm}\"")),
            "MESSAGE names the client: {message}"
        );
        let sum = by_pid.entry(pid).or_default();
        *sum = sum.plus(&bytes);
    }
    let expected: BTreeMap<u64, Bytes> = clients
        .iter()
        .map(|c| {
            let b = Bytes {
                sent: c.truth.received,
                received: c.truth.sent,
            };
            (u64::from(c.truth.pid), b)
        })
        .collect();
    assert_eq!(by_pid, expected, "the server's bytes per client process");
}

#[test]
fn loopback_ipv4_clients_are_told_apart_by_process() {
    three_clients_of_one_address("127.0.0.1:0", "127.0.0.1", "127.0.0.1");
}

#[test]
fn loopback_ipv6_clients_are_told_apart_by_process() {
    three_clients_of_one_address("[::1]:0", "[::1]", "::1");
}

#[test]
fn ipv4_clients_of_a_dual_stack_listener_are_told_apart_by_process() {
    three_clients_of_one_address("[::]:0", "127.0.0.1", "127.0.0.1");
}

/// A local user who holds more loopback connections open than netio has
/// room to remember (capacity.peers + capacity.processes) makes the next
/// client show by address: its bytes are exact all the same, and a
/// `degraded` record says why. It cannot make the client show as another.
#[test]
fn loopback_connections_past_capacity_show_by_address_and_are_reported() {
    let scratch = Scratch::new("local-full");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let netio = Netio::start_with(
        &scratch,
        "1s",
        &[(TARGET, &[name.as_str()])],
        "[capacity]\nprocesses = 4\npeers = 60\n",
    );
    let as_nobody = |cmd: &mut std::process::Command| {
        cmd.uid(NOBODY).gid(NOBODY);
    };
    let held = ["--count", "200"];
    let attacker = Program::original().server_with("paced", "127.0.0.1:0", &held, as_nobody);
    let (server, client) = std::thread::scope(|s| {
        let addr = attacker.addr("127.0.0.1");
        let holder = s.spawn(move || {
            let args = [&held[..], &["--phases", "1k:4000"]].concat();
            Program::original().client_with("paced", &addr, &args, as_nobody)
        });
        // Its 200 connections are made in milliseconds and held for 4 s.
        std::thread::sleep(Duration::from_millis(1500));
        let args = ["--count", "1", "--request", "5000", "--reply", "70000"];
        let truths = exchange(
            &tracked,
            &Program::original(),
            "short",
            "127.0.0.1:0",
            "127.0.0.1",
            &args,
        );
        holder.join().unwrap();
        truths
    });
    attacker.finish();
    let records = netio.stop();
    records.assert_exact(&server.per_pid, "127.0.0.1");
    let named: Vec<&Value> = records
        .traffic()
        .filter(|v| common::record_pid(v) == Some(server.pid) && v.get("NETIO_PEER_PID").is_some())
        .collect();
    assert!(
        named.is_empty(),
        "client {} is named, though netio had no room: {named:?}",
        client.pid
    );
    assert!(
        records.records.iter().any(|v| event(v) == Some("degraded")
            && text(v, "NETIO_REASON") == Some("local_client_map_full")
            && num(v, "NETIO_COUNT") >= Some(1)),
        "a degraded record must report the connections netio had no room for"
    );
}
