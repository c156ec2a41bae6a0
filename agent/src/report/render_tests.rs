use serde_json::{json, Value};

use super::*;

#[test]
fn sizes_read_in_binary_units_with_one_decimal() {
    assert_eq!(size(0), "0 B");
    assert_eq!(size(1023), "1023 B");
    assert_eq!(size(1024), "1.0 KiB");
    assert_eq!(size(27_158_528), "25.9 MiB");
    // Not "1024.0 KiB": a value that rounds up to the next unit takes it.
    assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
    assert_eq!(size(u64::MAX), "16.0 EiB");
    assert_eq!(rate(1_048_576), "1.0 MiB/s");
}

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

fn peer(at: u64, comm: &str, addr: &str, sent: &str) -> Value {
    entry(
        at,
        &[
            ("NETIO_EVENT", "traffic"),
            ("NETIO_SCOPE", "peer"),
            ("NETIO_TARGET", "redis"),
            ("NETIO_PID", "812"),
            ("NETIO_COMM", comm),
            ("NETIO_PEER_ADDRESS", addr),
            ("NETIO_SENT_BYTES", sent),
            ("NETIO_RECEIVED_BYTES", "1000"),
            ("NETIO_SENT_BYTES_PER_SEC", sent),
            ("NETIO_RECEIVED_BYTES_PER_SEC", "1000"),
        ],
    )
}

fn sample() -> Aggregate {
    let mut a = Aggregate::new(By::Peer);
    // 2026-12-02T00:00:00Z and a second later.
    let t0 = 1_796_169_600_000_000;
    a.add(&peer(t0, "redis-server", "127.0.0.1", "2048"));
    a.add(&peer(t0, "redis-server", "127.0.0.2", "27158528"));
    a.add(&entry(
        t0 + 1_000_000,
        &[
            ("NETIO_EVENT", "threshold_exceeded"),
            ("NETIO_TARGET", "redis"),
            ("NETIO_DIRECTION", "sent"),
            ("NETIO_RATE_BYTES_PER_SEC", "11010048"),
            ("NETIO_THRESHOLD_BYTES_PER_SEC", "1048576"),
        ],
    ));
    a
}

fn span() -> Span {
    Span {
        since: Some(End {
            written: "1h".into(),
            journalctl: "@1796166000.000000".into(),
            at_us: Some(1_796_166_000_000_000),
        }),
        until: None,
    }
}

#[test]
fn the_table_is_busiest_first_in_human_units_with_totals_and_breaches() {
    let t = text(&sample(), &span());
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "netio.service traffic by peer, since 1h ago (2026-12-01T23:00:00Z) until now: \
         3 records read, 2026-12-02T00:00:00Z to 2026-12-02T00:00:01Z"
    );
    assert_eq!(
        &lines[2..6],
        &[
            "TARGET  PEER           SENT  RECEIVED   PEAK SENT  PEAK RECEIVED  RECORDS",
            "redis   127.0.0.2  25.9 MiB    1000 B  25.9 MiB/s       1000 B/s        1",
            "redis   127.0.0.1   2.0 KiB    1000 B   2.0 KiB/s       1000 B/s        1",
            "total              25.9 MiB   2.0 KiB",
        ]
    );
    assert_eq!(lines[7], "threshold breaches");
    assert_eq!(
        lines[8],
        "TARGET  PEER  DIRECTION  EXCEEDED  RECOVERED   PEAK RATE  THRESHOLD  LAST                  NOW"
    );
    assert_eq!(
        lines[9],
        "redis   -     sent              1          0  10.5 MiB/s  1.0 MiB/s  2026-12-02T00:00:01Z  above"
    );
}

#[test]
fn json_keeps_raw_integers_and_rfc3339_times() {
    let v = json(&sample(), &span());
    assert_eq!(v["by"], "peer");
    assert_eq!(v["since"], "2026-12-01T23:00:00.000000Z");
    assert_eq!(v["until"], Value::Null);
    assert_eq!(v["total"], json!({"sent": 27_160_576u64, "received": 2000}));
    assert_eq!(
        v["rows"][0],
        json!({
            "target": "redis",
            "peer": "127.0.0.2",
            "sent": 27_158_528u64,
            "received": 1000,
            "peak_sent_per_sec": 27_158_528u64,
            "peak_received_per_sec": 1000,
            "records": 1,
            "first": "2026-12-02T00:00:00.000000Z",
            "last": "2026-12-02T00:00:00.000000Z",
        })
    );
    assert_eq!(v["breaches"][0]["peak_rate"], 11_010_048);
    assert_eq!(v["breaches"][0]["open"], true);
    assert_eq!(v["skipped"], json!({"untrusted": 0, "malformed": 0}));
}

#[test]
fn names_from_the_journal_reach_the_terminal_escaped() {
    let mut a = Aggregate::new(By::Peer);
    a.add(&peer(1, "x", "\u{1b}[2Jevil\nline", "1"));
    let t = text(&a, &Span::default());
    assert!(!t.contains('\u{1b}'), "{t}");
    assert!(t.contains("\\u001b[2Jevil\\nline"), "{t}");
    // JSON keeps the value itself, escaped only as JSON escapes.
    assert_eq!(
        json(&a, &Span::default())["rows"][0]["peer"],
        "\u{1b}[2Jevil\nline"
    );
}

#[test]
fn an_empty_span_says_why_process_and_peer_rows_may_be_missing() {
    let t = text(&Aggregate::new(By::Peer), &Span::default());
    assert!(
        t.contains("since the journal's start until now: 0 records read"),
        "{t}"
    );
    assert!(t.contains("no peer traffic records in the span (process and peer records need"));
    assert!(t.contains("no threshold breaches in the span"));
}

#[test]
fn a_local_client_is_shown_with_its_process_name_escaped() {
    let mut a = Aggregate::new(By::Peer);
    let t0 = 1_796_169_600_000_000;
    let unix = "unix:pid=4242,uid=33";
    let mut named = peer(t0, "mariadbd", unix, "4096");
    named["NETIO_PEER_COMM"] = Value::String("php\u{1b}[2Jfpm".into());
    a.add(&named);
    // Later, the client gone: its records name no process.
    a.add(&peer(t0 + 1_000_000, "mariadbd", unix, "4096"));
    let t = text(&a, &Span::default());
    assert!(t.contains("unix:pid=4242,uid=33 (php\\u001b[2Jfpm)"), "{t}");
    let v = json(&a, &Span::default());
    assert_eq!(v["rows"][0]["peer"], unix);
    assert_eq!(v["rows"][0]["peer_comm"], "php\u{1b}[2Jfpm");
    assert_eq!(v["rows"][0]["sent"], 8192);
}
