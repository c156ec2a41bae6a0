//! Records sized for real volumes (docs/records.md, "How many records"): a
//! server that forks a process per connection, as PostgreSQL does, gets a
//! number of records per interval that its configuration bounds, however
//! many connections it serves, with every byte still in the totals, in the
//! per-client records of the target and in the process records (the
//! busiest by PID, the rest in one); `lifecycle = "each"` still tells each
//! process that appeared and exited, for all targets or for one.

use crate::common;

use std::collections::BTreeMap;

use serde_json::Value;

use common::{event, num, unique_name, Bytes, Netio, Program, Scratch, TARGET};

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn bytes(v: &Value) -> Bytes {
    Bytes {
        sent: num(v, "NETIO_SENT_BYTES").unwrap_or(0),
        received: num(v, "NETIO_RECEIVED_BYTES").unwrap_or(0),
    }
}

fn sum<'a>(records: impl Iterator<Item = &'a Value>) -> Bytes {
    records.fold(Bytes::default(), |a, v| {
        let b = bytes(v);
        Bytes {
            sent: a.sent + b.sent,
            received: a.received + b.received,
        }
    })
}

fn scope<'a>(records: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> {
    records
        .iter()
        .filter(move |v| event(v) == Some("traffic") && s(v, "NETIO_SCOPE") == Some(name))
}

/// The forking server's run: `count` connections, each of `size` bytes
/// both ways, from 127.0.0.1 to 127.0.0.`sources`, `parallel` at once.
fn fork_per_connection(
    tracked: &Program,
    count: u64,
    size: u64,
    sources: u64,
) -> (common::Truth, common::Truth) {
    let (count, size, sources) = (count.to_string(), size.to_string(), sources.to_string());
    let child = unique_name("ntc");
    let server = tracked.server(
        "forking",
        "127.0.0.1:0",
        &["--count", &count, "--size", &size, "--child-name", &child],
    );
    let client = Program::original().client(
        "forking",
        &server.addr("127.0.0.1"),
        &[
            "--count",
            &count,
            "--size",
            &size,
            "--parallel",
            "16",
            "--sources",
            &sources,
        ],
    );
    let server = server.finish();
    assert_eq!(
        (server.sent, server.received),
        (client.received, client.sent),
        "traffic generator disagrees with itself"
    );
    (server, client)
}

/// Each source address's bytes as the server saw them: connection i came
/// from 127.0.0.(1 + i % sources), each moving `size` bytes both ways.
fn per_source(count: u64, size: u64, sources: u64) -> BTreeMap<String, Bytes> {
    (0..sources)
        .map(|a| {
            let conns = (0..count).filter(|i| i % sources == a).count() as u64;
            let b = Bytes {
                sent: conns * size,
                received: conns * size,
            };
            (format!("127.0.0.{}", a + 1), b)
        })
        .collect()
}

/// docs/records.md's bound on one target's records in one interval, for
/// `T` target peers, `M` processes and `P` peers per process, with the
/// lifecycle summarised: the target's, its peers' and `other`, its
/// processes' and the one for the rest, their peers' and `other`, and the
/// lifecycle count.
fn per_interval_bound(t: u64, m: u64, p: u64) -> u64 {
    1 + (t + 1) + (m + 1) + m * (p + 1) + 1
}

#[test]
fn a_fork_per_connection_server_writes_records_that_do_not_grow_with_its_connections() {
    const COUNT: u64 = 2000;
    const SIZE: u64 = 10_007;
    // Fewer clients than `target_peers`: each under its own address in
    // every interval, so each is exact.
    const SOURCES: u64 = 8;
    let scratch = Scratch::new("volume-fork");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    // An empty [records]: the defaults, which an operator gets.
    let netio = Netio::start_with(&scratch, "1s", &[(TARGET, &[name.as_str()])], "[records]\n");
    let (server, _) = fork_per_connection(&tracked, COUNT, SIZE, SOURCES);
    let records = netio.stop().records;
    assert_eq!(
        server.per_pid.len() as u64,
        COUNT,
        "one child per connection"
    );

    let mine: Vec<Value> = records
        .iter()
        .filter(|v| s(v, "NETIO_TARGET") == Some(TARGET) && event(v) != Some("degraded"))
        .cloned()
        .collect();
    let intervals = scope(&mine, "target").count() as u64;
    let bound = intervals * per_interval_bound(10, 10, 10);
    let kinds = mine
        .iter()
        .fold(BTreeMap::<String, u64>::new(), |mut m, v| {
            let k = format!(
                "{}/{}",
                event(v).unwrap_or("?"),
                s(v, "NETIO_SCOPE").unwrap_or("-")
            );
            *m.entry(k).or_default() += 1;
            m
        });
    eprintln!(
        "{} records of the target in {intervals} intervals: {kinds:?}",
        mine.len()
    );
    assert!(
        (mine.len() as u64) <= bound && (mine.len() as u64) < COUNT,
        "{} records of the target for {COUNT} connections in {intervals} intervals: more \
         than docs/records.md's bound at the defaults ({bound}), which does not grow with \
         the connections; by kind: {kinds:?}",
        mine.len()
    );

    let truth = Bytes {
        sent: server.sent,
        received: server.received,
    };
    assert_eq!(
        sum(scope(&mine, "target")),
        truth,
        "target records vs truth"
    );
    assert_eq!(
        sum(scope(&mine, "process")),
        truth,
        "process records, the busiest and the one for the rest, vs truth"
    );
    let mut clients: BTreeMap<String, Bytes> = BTreeMap::new();
    for v in scope(&mine, "target_peer") {
        let b = clients
            .entry(s(v, "NETIO_PEER_ADDRESS").unwrap().to_string())
            .or_default();
        let add = bytes(v);
        b.sent += add.sent;
        b.received += add.received;
    }
    assert_eq!(
        clients,
        per_source(COUNT, SIZE, SOURCES),
        "target peer records by client"
    );

    let changed: Vec<&Value> = mine
        .iter()
        .filter(|v| event(v) == Some("processes_changed"))
        .collect();
    let count = |key: &str| changed.iter().map(|v| num(v, key).unwrap()).sum::<u64>();
    // The server itself, exec'd after netio started, and each child.
    assert_eq!(
        (count("NETIO_APPEARED"), count("NETIO_EXITED")),
        (COUNT + 1, COUNT + 1),
        "processes_changed records: {changed:?}"
    );
    assert!(
        changed.len() as u64 <= intervals,
        "one processes_changed record per interval at most"
    );
}

#[test]
fn each_mode_tells_every_process_and_the_cap_folds_the_rest_into_one_record() {
    const COUNT: u64 = 40;
    const SIZE: u64 = 30_011;
    let scratch = Scratch::new("volume-each");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let records = "[records]\nlifecycle = \"each\"\ntop_processes = 3\ntop_peers = 0\n\
                   target_peers = 2\n";
    let netio = Netio::start_with(&scratch, "60s", &[(TARGET, &[name.as_str()])], records);
    let (server, _) = fork_per_connection(&tracked, COUNT, SIZE, 4);
    let records = netio.stop().records;

    let appeared = records
        .iter()
        .filter(|v| event(v) == Some("process_appeared"))
        .filter_map(|v| num(v, "NETIO_PID"))
        .collect::<std::collections::BTreeSet<_>>();
    let exited = records
        .iter()
        .filter(|v| event(v) == Some("process_exited"))
        .filter_map(|v| num(v, "NETIO_PID"))
        .collect::<std::collections::BTreeSet<_>>();
    for pid in server.per_pid.keys() {
        let pid = u64::from(*pid);
        assert!(
            appeared.contains(&pid) && exited.contains(&pid),
            "child {pid}: a process_appeared and a process_exited record each"
        );
    }
    assert!(
        !records
            .iter()
            .any(|v| event(v) == Some("processes_changed")),
        "no counts in each mode"
    );

    let truth = Bytes {
        sent: server.sent,
        received: server.received,
    };
    let targets: Vec<&Value> = scope(&records, "target").collect();
    assert_eq!(sum(targets.iter().copied()), truth);
    let named: Vec<&Value> = scope(&records, "process")
        .filter(|v| v.get("NETIO_PID").is_some())
        .collect();
    let rest: Vec<&Value> = scope(&records, "process")
        .filter(|v| v.get("NETIO_PID").is_none())
        .collect();
    assert!(
        named.len() <= 3 * targets.len() && rest.len() <= targets.len(),
        "at most 3 named process records and one for the rest per interval: {} and {} in {} \
         intervals",
        named.len(),
        rest.len(),
        targets.len()
    );
    assert!(!rest.is_empty(), "40 children in one interval: some folded");
    assert_eq!(
        named.len() as u64
            + rest
                .iter()
                .map(|v| num(v, "NETIO_PROCESSES").unwrap())
                .sum::<u64>(),
        COUNT,
        "each child once, named or counted in the rest (the parent moved nothing)"
    );
    for v in &named {
        let pid = num(v, "NETIO_PID").unwrap() as u32;
        assert_eq!(
            Some(&bytes(v)),
            server.per_pid.get(&pid),
            "named child {pid}"
        );
    }
    assert_eq!(sum(named.iter().chain(rest.iter()).copied()), truth);
    assert!(
        !records.iter().any(|v| s(v, "NETIO_SCOPE") == Some("peer")),
        "top_peers = 0: no process's peer records"
    );
    let clients: Vec<&Value> = scope(&records, "target_peer").collect();
    assert!(
        clients.len() <= 3 * targets.len(),
        "two clients and `other` per interval"
    );
    // One interval, four clients of equal bytes: the first two by address
    // under their own, the other two folded.
    let mut want = per_source(COUNT, SIZE, 4);
    let (c, d) = (
        want.remove("127.0.0.3").unwrap(),
        want.remove("127.0.0.4").unwrap(),
    );
    want.insert(
        "other".into(),
        Bytes {
            sent: c.sent + d.sent,
            received: c.received + d.received,
        },
    );
    let got: BTreeMap<String, Bytes> = clients
        .iter()
        .map(|v| (s(v, "NETIO_PEER_ADDRESS").unwrap().to_string(), bytes(v)))
        .collect();
    assert_eq!(
        got, want,
        "target peer records: the busiest two, then `other`"
    );
}

#[test]
fn a_targets_own_lifecycle_key_holds_for_it_and_the_records_table_for_the_rest() {
    let scratch = Scratch::new("volume-lifecycle");
    let (each, summary) = (unique_name("nte"), unique_name("nts"));
    let config = scratch.path("netio.toml");
    std::fs::write(
        &config,
        format!(
            "interval = \"60s\"\n[records]\nlifecycle = \"summary\"\n\
             [[target]]\nname = \"each\"\nprocess = [\"{each}\"]\nlifecycle = \"each\"\n\
             [[target]]\nname = \"summary\"\nprocess = [\"{summary}\"]\n"
        ),
    )
    .unwrap();
    let netio = Netio::start_file(&config);
    let (e, _) = fork_per_connection(&Program::named(&scratch, &each), 5, 1000, 1);
    fork_per_connection(&Program::named(&scratch, &summary), 5, 1000, 1);
    let records = netio.stop().records;
    let of = |target: &str, kind: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|v| s(v, "NETIO_TARGET") == Some(target) && event(v) == Some(kind))
            .collect()
    };
    let appeared: Vec<u64> = of("each", "process_appeared")
        .iter()
        .filter_map(|v| num(v, "NETIO_PID"))
        .collect();
    for pid in e.per_pid.keys() {
        assert!(appeared.contains(&u64::from(*pid)), "each: child {pid}");
    }
    assert_eq!(
        of("each", "process_exited").len(),
        6,
        "the server and 5 children"
    );
    assert!(of("each", "processes_changed").is_empty());
    assert!(of("summary", "process_appeared").is_empty());
    assert!(of("summary", "process_exited").is_empty());
    let changed = of("summary", "processes_changed");
    assert_eq!(changed.len(), 1, "one interval: {changed:?}");
    assert_eq!(
        (
            num(changed[0], "NETIO_APPEARED"),
            num(changed[0], "NETIO_EXITED")
        ),
        (Some(6), Some(6)),
        "the server and its 5 children"
    );
}
