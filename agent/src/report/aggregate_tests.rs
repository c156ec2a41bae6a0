use serde_json::{json, Value};

use super::*;

/// A journal entry as `journalctl -o json` gives it: strings throughout,
/// from netio.service's root unless `fields` says otherwise.
fn entry(at: u64, fields: &[(&str, &str)]) -> Value {
    let mut v = json!({
        "_SYSTEMD_UNIT": "netio.service",
        "_UID": "0",
        "__REALTIME_TIMESTAMP": at.to_string(),
    });
    for (k, x) in fields {
        v[*k] = Value::String(x.to_string());
    }
    v
}

fn traffic(at: u64, scope: &str, target: &str, extra: &[(&str, &str)], bytes: (u64, u64)) -> Value {
    let (s, r) = (bytes.0.to_string(), bytes.1.to_string());
    let (sr, rr) = ((bytes.0 / 2).to_string(), (bytes.1 / 2).to_string());
    let mut f = vec![
        ("NETIO_EVENT", "traffic"),
        ("NETIO_SCOPE", scope),
        ("NETIO_TARGET", target),
        ("NETIO_SENT_BYTES", s.as_str()),
        ("NETIO_RECEIVED_BYTES", r.as_str()),
        ("NETIO_SENT_BYTES_PER_SEC", sr.as_str()),
        ("NETIO_RECEIVED_BYTES_PER_SEC", rr.as_str()),
        ("NETIO_INTERVAL_MS", "2000"),
    ];
    f.extend_from_slice(extra);
    entry(at, &f)
}

/// Two intervals of one target with two processes; the first process has
/// two peers, the second one: each level adds up to the one above.
fn interval_records(at: u64) -> Vec<Value> {
    let p1 = [("NETIO_PID", "10"), ("NETIO_COMM", "db")];
    let p2 = [("NETIO_PID", "11"), ("NETIO_COMM", "db")];
    let peer = |p: &[(&'static str, &'static str)], a: &'static str| {
        let mut f = p.to_vec();
        f.push(("NETIO_PEER_ADDRESS", a));
        f
    };
    vec![
        traffic(at, "target", "db", &[("NETIO_PROCESSES", "2")], (1000, 100)),
        traffic(at, "process", "db", &p1, (700, 70)),
        traffic(at, "peer", "db", &peer(&p1, "10.0.0.1"), (600, 60)),
        traffic(at, "peer", "db", &peer(&p1, "10.0.0.2"), (100, 10)),
        traffic(at, "process", "db", &p2, (300, 30)),
        traffic(at, "peer", "db", &peer(&p2, "10.0.0.2"), (300, 30)),
    ]
}

fn summed(by: By, entries: &[Value]) -> Aggregate {
    let mut a = Aggregate::new(by);
    entries.iter().for_each(|e| a.add(e));
    a
}

fn rows(a: &Aggregate) -> Vec<(Key, u64, u64)> {
    a.rows()
        .into_iter()
        .map(|(k, r)| (k.clone(), r.sent, r.received))
        .collect()
}

fn key(target: &str, pid: Option<u64>, peer: Option<&str>) -> Key {
    Key {
        target: target.into(),
        pid,
        comm: pid.map(|_| "db".into()),
        peer: peer.map(str::to_string),
        peer_pid: None,
        peer_uid: None,
    }
}

#[test]
fn each_level_is_summed_from_its_own_records_only_so_nothing_counts_twice() {
    let mut all = interval_records(1_000_000);
    all.extend(interval_records(3_000_000));
    let t = summed(By::Target, &all);
    assert_eq!(rows(&t), vec![(key("db", None, None), 2000, 200)]);
    assert_eq!(t.total(), (2000, 200));
    let p = summed(By::Process, &all);
    assert_eq!(
        rows(&p),
        vec![
            (key("db", Some(10), None), 1400, 140),
            (key("db", Some(11), None), 600, 60),
        ]
    );
    assert_eq!(p.total(), (2000, 200));
    // 10.0.0.2 talked to both processes: one row, both processes' bytes.
    let peers = summed(By::Peer, &all);
    assert_eq!(
        rows(&peers),
        vec![
            (key("db", None, Some("10.0.0.1")), 1200, 120),
            (key("db", None, Some("10.0.0.2")), 800, 80),
        ]
    );
    assert_eq!(peers.total(), (2000, 200));
    assert_eq!(peers.entries, 12);
    assert_eq!(
        (peers.first_us, peers.last_us),
        (Some(1_000_000), Some(3_000_000))
    );
}

/// An interval as this version writes it: the target record, its peers
/// over all its processes (a folded `other` among them), then a named
/// process with its peer and the record of the processes past the top.
fn interval_with_target_peers(at: u64) -> Vec<Value> {
    let p1 = [("NETIO_PID", "10"), ("NETIO_COMM", "db")];
    let mut peer1 = p1.to_vec();
    peer1.push(("NETIO_PEER_ADDRESS", "10.0.0.1"));
    let tp = |a| [("NETIO_PEER_ADDRESS", a)];
    vec![
        traffic(at, "target", "db", &[("NETIO_PROCESSES", "5")], (1000, 100)),
        traffic(at, "target_peer", "db", &tp("10.0.0.1"), (600, 60)),
        traffic(at, "target_peer", "db", &tp("other"), (400, 40)),
        traffic(at, "process", "db", &p1, (600, 60)),
        traffic(at, "peer", "db", &peer1, (600, 60)),
        traffic(at, "process", "db", &[("NETIO_PROCESSES", "4")], (400, 40)),
    ]
}

#[test]
fn by_peer_prefers_the_target_peer_records_and_reads_older_intervals_without_them() {
    // An interval of an older netio (process peers only), then one of this.
    let mut all = interval_records(1_000_000);
    all.extend(interval_with_target_peers(3_000_000));
    let peers = summed(By::Peer, &all);
    assert_eq!(
        rows(&peers),
        vec![
            (key("db", None, Some("10.0.0.1")), 1200, 120),
            (key("db", None, Some("10.0.0.2")), 400, 40),
            (key("db", None, Some("other")), 400, 40),
        ],
        "10.0.0.1's process peer record of the second interval is not counted again"
    );
    assert_eq!(peers.total(), (2000, 200), "each byte once");
    let p = summed(By::Process, &all);
    assert_eq!(
        rows(&p),
        vec![
            (key("db", Some(10), None), 1300, 130),
            (key("db", None, None), 400, 40),
            (key("db", Some(11), None), 300, 30),
        ],
        "the processes past the top are one row without a PID"
    );
    assert_eq!(p.total(), (2000, 200));
}

#[test]
fn entries_not_from_netio_service_as_root_are_not_counted() {
    let real = traffic(1, "target", "db", &[], (10, 1));
    let mut forged = Vec::new();
    for (unit, uid) in [
        (Some("netio.service"), Some("65534")),
        (Some("user@65534.service"), Some("0")),
        (None, Some("0")),
        (Some("netio.service"), None),
    ] {
        let mut v = traffic(2, "target", "db", &[], (1_000_000, 1_000_000));
        let o = v.as_object_mut().unwrap();
        match unit {
            Some(u) => o.insert("_SYSTEMD_UNIT".into(), u.into()),
            None => o.remove("_SYSTEMD_UNIT"),
        };
        match uid {
            Some(u) => o.insert("_UID".into(), u.into()),
            None => o.remove("_UID"),
        };
        forged.push(v);
    }
    // A field written twice is an array in journalctl's JSON: not netio's.
    let mut twice = traffic(3, "target", "db", &[], (1_000_000, 0));
    twice["_UID"] = json!(["0", "0"]);
    forged.push(twice);
    let mut all = vec![real];
    all.extend(forged);
    let a = summed(By::Target, &all);
    assert_eq!(a.total(), (10, 1));
    assert_eq!((a.entries, a.untrusted), (1, 5));
}

#[test]
fn busiest_first_with_the_highest_one_interval_rates() {
    let all = vec![
        traffic(1, "target", "small", &[], (10, 10)),
        traffic(1, "target", "big", &[], (5000, 0)),
        traffic(2, "target", "big", &[], (800, 9000)),
        traffic(2, "target", "small", &[], (4, 4)),
    ];
    let a = summed(By::Target, &all);
    let got: Vec<_> = a
        .rows()
        .into_iter()
        .map(|(k, r)| {
            (
                k.target.clone(),
                r.peak_sent_per_sec,
                r.peak_received_per_sec,
                r.records,
                r.first_us,
                r.last_us,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("big".into(), 2500, 4500, 2, 1, 2),
            ("small".into(), 5, 5, 2, 1, 2)
        ]
    );
}

fn threshold(at: u64, kind: &str, peer: Option<&str>, rate: &str) -> Value {
    let mut f = vec![
        ("NETIO_EVENT", kind),
        ("NETIO_TARGET", "db"),
        ("NETIO_DIRECTION", "sent"),
        ("NETIO_RATE_BYTES_PER_SEC", rate),
        ("NETIO_THRESHOLD_BYTES_PER_SEC", "1000"),
        ("NETIO_SUSTAIN_MS", "2000"),
        ("NETIO_DURATION_MS", "2000"),
    ];
    if let Some(p) = peer {
        f.push(("NETIO_PEER_ADDRESS", p));
    }
    entry(at, &f)
}

#[test]
fn breaches_are_counted_per_threshold_and_the_last_record_says_if_one_is_open() {
    let all = vec![
        threshold(1, "threshold_exceeded", None, "5000"),
        threshold(2, "threshold_reminder", None, "7000"),
        threshold(3, "threshold_recovered", None, "10"),
        threshold(4, "threshold_exceeded", None, "3000"),
        threshold(5, "threshold_exceeded", Some("10.0.0.1"), "2000"),
        threshold(6, "threshold_recovered", Some("10.0.0.1"), "0"),
    ];
    let a = summed(By::Target, &all);
    let target = &a.breaches[&BreachKey {
        target: "db".into(),
        peer: None,
        direction: "sent".into(),
    }];
    assert_eq!(
        target,
        &Breaches {
            exceeded: 2,
            reminders: 1,
            recovered: 1,
            peak_rate: 7000,
            threshold: 1000,
            first_us: 1,
            last_us: 4,
            open: true,
        }
    );
    let peer = &a.breaches[&BreachKey {
        target: "db".into(),
        peer: Some("10.0.0.1".into()),
        direction: "sent".into(),
    }];
    assert_eq!((peer.exceeded, peer.recovered, peer.open), (1, 1, false));
    assert_eq!(peer.peak_rate, 2000, "a recovery's rate is not a peak");
}

#[test]
fn degraded_records_are_summed_per_reason() {
    let all = vec![
        entry(
            1,
            &[
                ("NETIO_EVENT", "degraded"),
                ("NETIO_REASON", "bytes_lost"),
                ("NETIO_COUNT", "2"),
                ("NETIO_LOST_BYTES", "4096"),
            ],
        ),
        entry(
            2,
            &[
                ("NETIO_EVENT", "degraded"),
                ("NETIO_REASON", "bytes_lost"),
                ("NETIO_COUNT", "1"),
                ("NETIO_LOST_BYTES", "10"),
            ],
        ),
        entry(
            3,
            &[
                ("NETIO_EVENT", "degraded"),
                ("NETIO_REASON", "journal_unavailable"),
                ("NETIO_COUNT", "7"),
            ],
        ),
    ];
    let a = summed(By::Target, &all);
    assert_eq!(
        a.degraded["bytes_lost"],
        Degraded {
            records: 2,
            count: 3,
            lost_bytes: 4106
        }
    );
    assert_eq!(a.degraded["journal_unavailable"].count, 7);
}

#[test]
fn a_record_missing_a_number_is_counted_as_malformed_not_as_zero() {
    let mut bad = traffic(1, "target", "db", &[], (10, 10));
    bad["NETIO_SENT_BYTES"] = json!("ten");
    let mut no_time = traffic(1, "target", "db", &[], (10, 10));
    no_time
        .as_object_mut()
        .unwrap()
        .remove("__REALTIME_TIMESTAMP");
    let good = traffic(2, "target", "db", &[], (3, 4));
    let a = summed(By::Target, &[bad, no_time, good]);
    assert_eq!(a.total(), (3, 4));
    assert_eq!((a.entries, a.malformed), (3, 2));
}

#[test]
fn loopback_clients_of_one_address_are_rows_of_their_own_by_process() {
    let client = |pid: &'static str, comm: &'static str| {
        vec![
            ("NETIO_PEER_ADDRESS", "127.0.0.1"),
            ("NETIO_TRANSPORT", "tcp"),
            ("NETIO_PEER_PID", pid),
            ("NETIO_PEER_UID", "33"),
            ("NETIO_PEER_COMM", comm),
        ]
    };
    let entries = [
        traffic(1, "target", "db", &[], (700, 70)),
        traffic(
            1,
            "target_peer",
            "db",
            &client("41", "redis-cli"),
            (600, 60),
        ),
        traffic(1, "target_peer", "db", &client("42", "backup"), (100, 10)),
        traffic(2, "target", "db", &[], (50, 5)),
        traffic(2, "target_peer", "db", &client("42", "backup"), (50, 5)),
    ];
    let a = summed(By::Peer, &entries);
    let got: Vec<_> = a
        .rows()
        .into_iter()
        .map(|(k, r)| (k.peer_pid, k.peer_uid, r.peer_comm.clone(), r.sent))
        .collect();
    assert_eq!(
        got,
        [
            (Some(41), Some(33), Some("redis-cli".to_string()), 600),
            (Some(42), Some(33), Some("backup".to_string()), 150),
        ]
    );
}
