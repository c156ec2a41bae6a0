//! Rate thresholds and SIGHUP reloads, driven by a paced client whose rate
//! is known: `threshold_exceeded` only once a rate has stayed above its
//! limit for the sustain time, reminders no more often than `reminder`,
//! `threshold_recovered` once it has stayed below for the sustain time; a
//! reload applies a new limit, a broken file is rejected and changes
//! nothing, and the byte totals stay exact throughout.
//!
//! netio measures rates per interval, so every check here is made against
//! netio's own interval records (their rates and `NETIO_INTERVAL_MS`), and
//! those records are in turn held to the traffic generator's ground truth.

use crate::common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use common::{event, num, unique_name, Bytes, Idle, Netio, Program, Scratch};

const MIB: u64 = 1024 * 1024;

const EXCEEDED: &str = "threshold_exceeded";
const REMINDER: &str = "threshold_reminder";
const RECOVERED: &str = "threshold_recovered";

fn is_threshold(v: &Value) -> bool {
    matches!(event(v), Some(EXCEEDED | REMINDER | RECOVERED))
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn n(v: &Value, key: &str) -> u64 {
    num(v, key).unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn sighup(netio: &Netio) {
    // SAFETY: kill on the pid of a child that has not been reaped.
    let rc = unsafe { libc::kill(netio.pid() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill(SIGHUP): {}", std::io::Error::last_os_error());
}

/// Which rate a threshold watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Sent,
    Received,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }

    fn bytes(self, b: Bytes) -> u64 {
        match self {
            Direction::Sent => b.sent,
            Direction::Received => b.received,
        }
    }
}

/// One interval as netio reported it.
#[derive(Debug)]
struct Interval {
    /// The rate the threshold is checked against, as netio computes it:
    /// bytes * 1000 / interval_ms, rounded down.
    rate: u64,
    ms: u64,
}

/// A threshold record and the interval whose end wrote it.
#[derive(Debug)]
struct Notice {
    interval: usize,
    record: Value,
}

impl Notice {
    fn kind(&self) -> &str {
        event(&self.record).unwrap_or_default()
    }
}

/// netio's intervals for one target (the rate of `peer`, or the target's
/// total when `peer` is None) and the threshold records for that rate.
/// A flush writes the target's record first, then process and peer
/// records, then threshold records: records between two target records
/// belong to one interval.
#[derive(Debug)]
struct Timeline {
    intervals: Vec<Interval>,
    notices: Vec<Notice>,
}

impl Timeline {
    fn new(records: &[Value], target: &str, peer: Option<&str>, dir: Direction) -> Self {
        let mut intervals: Vec<Interval> = Vec::new();
        let mut peer_bytes: Vec<u64> = Vec::new();
        let mut notices = Vec::new();
        for v in records {
            if s(v, "NETIO_TARGET") != Some(target) {
                continue;
            }
            let scope = s(v, "NETIO_SCOPE");
            if event(v) == Some("traffic") && scope == Some("target") {
                let bytes = Bytes {
                    sent: n(v, "NETIO_SENT_BYTES"),
                    received: n(v, "NETIO_RECEIVED_BYTES"),
                };
                let ms = n(v, "NETIO_INTERVAL_MS");
                let rate = dir.bytes(bytes) * 1000 / ms.max(1);
                let reported = match dir {
                    Direction::Sent => n(v, "NETIO_SENT_BYTES_PER_SEC"),
                    Direction::Received => n(v, "NETIO_RECEIVED_BYTES_PER_SEC"),
                };
                assert_eq!(rate, reported, "the record's own rate field: {v}");
                intervals.push(Interval { rate, ms });
                peer_bytes.push(0);
            } else if event(v) == Some("traffic") && scope == Some("peer") {
                if peer.is_some() && s(v, "NETIO_PEER_ADDRESS") == peer {
                    let b = Bytes {
                        sent: n(v, "NETIO_SENT_BYTES"),
                        received: n(v, "NETIO_RECEIVED_BYTES"),
                    };
                    *peer_bytes
                        .last_mut()
                        .unwrap_or_else(|| panic!("peer record before any interval: {v}")) +=
                        dir.bytes(b);
                }
            } else if is_threshold(v)
                && s(v, "NETIO_DIRECTION") == Some(dir.name())
                && s(v, "NETIO_PEER_ADDRESS") == peer
            {
                assert!(
                    !intervals.is_empty(),
                    "threshold record before the first interval's records: {v}"
                );
                notices.push(Notice {
                    interval: intervals.len() - 1,
                    record: v.clone(),
                });
            }
        }
        if peer.is_some() {
            for (i, b) in intervals.iter_mut().zip(peer_bytes) {
                i.rate = b * 1000 / i.ms.max(1);
            }
        }
        Timeline { intervals, notices }
    }

    /// Sum of `ms` over intervals `from..=to`.
    fn ms(&self, from: usize, to: usize) -> u64 {
        self.intervals[from..=to].iter().map(|i| i.ms).sum()
    }

    /// The first interval of the run of intervals ending at `at` whose
    /// rates all satisfy `pred`.
    fn run_start(&self, at: usize, pred: impl Fn(u64) -> bool) -> usize {
        let mut s = at;
        while s > 0 && pred(self.intervals[s - 1].rate) {
            s -= 1;
        }
        s
    }

    fn show(&self) -> String {
        let mut out = String::new();
        for (i, iv) in self.intervals.iter().enumerate() {
            out.push_str(&format!("  #{i:<3} {:>5} ms  {:>9} B/s", iv.ms, iv.rate));
            for nt in self.notices.iter().filter(|nt| nt.interval == i) {
                out.push_str(&format!(
                    "  <- {} (rate {}, duration_ms {})",
                    nt.kind(),
                    n(&nt.record, "NETIO_RATE_BYTES_PER_SEC"),
                    n(&nt.record, "NETIO_DURATION_MS")
                ));
            }
            out.push('\n');
        }
        out
    }
}

/// What one breach should look like.
struct Limit<'a> {
    target: &'a str,
    peer: Option<&'a str>,
    dir: Direction,
    bytes_per_sec: u64,
    sustain_ms: u64,
    reminder_ms: u64,
    /// How much shorter than `for` (or `reminder`) the intervals may add up
    /// to when a record is written: netio counts whole intervals, and
    /// measured intervals are a millisecond or so off the configured one.
    early_ms: u64,
    /// A record is late when the intervals had already added up to within
    /// `late_ms` of `for` (or `reminder`) one interval earlier.
    late_ms: u64,
}

/// Checks one breach against the documented behaviour, using netio's
/// intervals: nothing before the rate has been above the limit for the
/// sustain time; then exactly one `threshold_exceeded` at the first
/// interval where it has; reminders no more often than `reminder`, only
/// while above; exactly one `threshold_recovered` at the first interval
/// where the rate has been at or below the limit for the sustain time;
/// nothing after. Returns the number of reminders.
fn check_breach(tl: &Timeline, l: &Limit<'_>) -> Result<usize, String> {
    let above = |r: u64| r > l.bytes_per_sec;
    let below = |r: u64| r <= l.bytes_per_sec;
    // Whether `ms` of intervals count as `want`, and whether they already
    // did one interval earlier (`before`).
    let reached = |ms: u64, want: u64| ms + l.early_ms >= want;
    let was_due = |before: u64, want: u64| before + l.late_ms >= want;
    let close = |d: u64, ms: u64| d.abs_diff(ms) <= l.early_ms;
    for nt in &tl.notices {
        let v = &nt.record;
        let (id, priority) = match nt.kind() {
            EXCEEDED => ("c545973dce4b44e0859c49a47ab9ab19", 4),
            REMINDER => ("c38dbace38b145a9a45ef3504669bcea", 4),
            _ => ("7a8a09f12833467bb68f1df09f2a4a4a", 5),
        };
        let fields_ok = s(v, "MESSAGE_ID") == Some(id)
            && num(v, "PRIORITY") == Some(priority)
            && s(v, "NETIO_TARGET") == Some(l.target)
            && s(v, "NETIO_DIRECTION") == Some(l.dir.name())
            && s(v, "NETIO_PEER_ADDRESS") == l.peer
            && num(v, "NETIO_THRESHOLD_BYTES_PER_SEC") == Some(l.bytes_per_sec)
            && num(v, "NETIO_SUSTAIN_MS") == Some(l.sustain_ms)
            && s(v, "MESSAGE").is_some_and(|m| !m.is_empty());
        if !fields_ok {
            return Err(format!("wrong fields in {v}"));
        }
        let rate = n(v, "NETIO_RATE_BYTES_PER_SEC");
        let measured = tl.intervals[nt.interval].rate;
        if rate != measured {
            return Err(format!(
                "{} says rate {rate} but its interval's records say {measured}",
                nt.kind()
            ));
        }
    }

    let exceeded: Vec<&Notice> = tl.notices.iter().filter(|n| n.kind() == EXCEEDED).collect();
    let [ex] = exceeded[..] else {
        return Err(format!(
            "{} threshold_exceeded records, want 1",
            exceeded.len()
        ));
    };
    if tl.notices[0].kind() != EXCEEDED {
        return Err("a threshold record came before threshold_exceeded".into());
    }
    let k = ex.interval;
    if !above(tl.intervals[k].rate) {
        return Err(format!(
            "threshold_exceeded in interval #{k}, whose rate is not above"
        ));
    }
    let start = tl.run_start(k, above);
    if start == 0 {
        return Err("the rate was never below the limit before the breach: the test proves nothing about staying quiet".into());
    }
    let run = tl.ms(start, k);
    if !reached(run, l.sustain_ms) {
        return Err(format!(
            "threshold_exceeded after only {run} ms above the limit (for = {} ms)",
            l.sustain_ms
        ));
    }
    let before = run - tl.intervals[k].ms;
    if was_due(before, l.sustain_ms) {
        return Err(format!(
            "threshold_exceeded late: {} intervals ({before} ms) above the limit already made up for = {} ms, yet it came an interval later",
            k - start,
            l.sustain_ms
        ));
    }
    let duration = n(&ex.record, "NETIO_DURATION_MS");
    if !close(duration, run) || !reached(duration, l.sustain_ms) {
        return Err(format!(
            "threshold_exceeded NETIO_DURATION_MS is {duration}, the intervals above add up to {run}"
        ));
    }

    let recovered: Vec<&Notice> = tl
        .notices
        .iter()
        .filter(|n| n.kind() == RECOVERED)
        .collect();
    let [rec] = recovered[..] else {
        return Err(format!(
            "{} threshold_recovered records, want 1",
            recovered.len()
        ));
    };
    if tl.notices.last().map(Notice::kind) != Some(RECOVERED) {
        return Err("a threshold record came after threshold_recovered".into());
    }
    let r = rec.interval;
    if !below(tl.intervals[r].rate) {
        return Err(format!(
            "threshold_recovered in interval #{r}, whose rate is above"
        ));
    }
    let calm = tl.run_start(r, below);
    let quiet = tl.ms(calm, r);
    if calm <= k || !reached(quiet, l.sustain_ms) {
        return Err(format!(
            "threshold_recovered after only {quiet} ms at or below the limit (for = {} ms)",
            l.sustain_ms
        ));
    }
    let before = quiet - tl.intervals[r].ms;
    if was_due(before, l.sustain_ms) {
        return Err(format!(
            "threshold_recovered late: {} intervals ({before} ms) at or below the limit already made up for = {} ms, yet it came an interval later",
            r - calm,
            l.sustain_ms
        ));
    }
    let duration = n(&rec.record, "NETIO_DURATION_MS");
    if !close(duration, quiet) {
        return Err(format!(
            "threshold_recovered NETIO_DURATION_MS is {duration}, the intervals below add up to {quiet}"
        ));
    }
    // The breach: from the first interval of the run above that fired to
    // the last interval above before the calm.
    let lasted = tl.ms(tl.run_start(k, above), calm - 1);
    let breach = num(&rec.record, "NETIO_BREACH_MS");
    if !breach.is_some_and(|b| close(b, lasted)) {
        return Err(format!(
            "threshold_recovered NETIO_BREACH_MS is {breach:?}, the breach's intervals add up to {lasted}"
        ));
    }
    // Any earlier dip below the limit during the breach was too short to
    // recover.
    let mut j = k + 1;
    while j < calm {
        if below(tl.intervals[j].rate) {
            let s0 = j;
            while j < calm && below(tl.intervals[j].rate) {
                j += 1;
            }
            if was_due(tl.ms(s0, j - 1), l.sustain_ms) {
                return Err(format!(
                    "the rate was below the limit for {} ms from interval #{s0} without threshold_recovered",
                    tl.ms(s0, j - 1)
                ));
            }
        }
        j += 1;
    }

    let mut previous = k;
    let mut reminders = 0;
    for nt in tl.notices.iter().filter(|n| n.kind() == REMINDER) {
        let m = nt.interval;
        if m <= previous || m >= calm || !above(tl.intervals[m].rate) {
            return Err(format!(
                "threshold_reminder in interval #{m}: not while the breach lasted above the limit"
            ));
        }
        let since = tl.ms(previous + 1, m);
        if !reached(since, l.reminder_ms) {
            return Err(format!(
                "threshold_reminder {since} ms after the previous notice (reminder = {} ms)",
                l.reminder_ms
            ));
        }
        let all_above = tl.intervals[previous + 1..m].iter().all(|i| above(i.rate));
        let before = since - tl.intervals[m].ms;
        if all_above && was_due(before, l.reminder_ms) {
            return Err(format!(
                "threshold_reminder late: {} intervals ({before} ms) above the limit since the previous notice already made up reminder = {} ms",
                m - previous - 1,
                l.reminder_ms
            ));
        }
        let d = n(&nt.record, "NETIO_DURATION_MS");
        let run = tl.ms(tl.run_start(m, above), m);
        if !close(d, run) {
            return Err(format!(
                "threshold_reminder NETIO_DURATION_MS is {d}, the intervals above add up to {run}"
            ));
        }
        previous = m;
        reminders += 1;
    }
    Ok(reminders)
}

/// A target of `process` and of `idle`: with the idle process it has one
/// all along, so its target record ends every interval (a target with no
/// process is said once), which `Timeline` counts on.
fn threshold_config(target: &str, process: &str, idle: &Idle, threshold: &str) -> String {
    format!(
        "interval = \"1s\"\n\n[[target]]\nname = \"{target}\"\nprocess = [\"{process}\", \"{}\"]\n\n[target.threshold]\n{threshold}",
        idle.name
    )
}

#[test]
fn target_threshold_fires_once_after_sustain_reminds_and_recovers() {
    let scratch = Scratch::new("threshold");
    let name = unique_name("ntthr");
    let idle = Idle::start(&scratch);
    let tracked = Program::named(&scratch, &name);
    let target = "thr";
    let config = scratch.path("netio.toml");
    write(
        &config,
        &threshold_config(
            target,
            &name,
            &idle,
            "sent = \"1MiB/s\"\nreceived = \"16MiB/s\"\nfor = \"2s\"\nreminder = \"3s\"\n",
        ),
    );
    let mut netio = Netio::start_file(&config);

    // Quiet (a quarter of the limit), then twice the limit for 8 s, then
    // quiet again. The server echoes, so it sends and receives at the rate.
    let server = tracked.server("paced", "127.0.0.1:0", &["--count", "1"]);
    let client = Program::original().client(
        "paced",
        &server.addr("127.0.0.1"),
        &["--phases", "256k:2000,2m:8000,256k:3000"],
    );
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    netio.wait_until(Duration::from_secs(8), |r| {
        r.iter().any(|v| event(v) == Some(RECOVERED))
    });
    let records = netio.stop();
    records.assert_exact_for(&[(target, &truth.per_pid)], "127.0.0.1");

    let tl = Timeline::new(&records.records, target, None, Direction::Sent);
    let limit = Limit {
        target,
        peer: None,
        dir: Direction::Sent,
        bytes_per_sec: MIB,
        sustain_ms: 2000,
        reminder_ms: 3000,
        early_ms: 500,
        late_ms: 0,
    };
    let reminders = check_breach(&tl, &limit)
        .unwrap_or_else(|e| panic!("{e}\nsent rate per interval:\n{}", tl.show()));
    assert!(
        reminders >= 1,
        "8 s above a 1MiB/s limit with for=2s, reminder=3s must give a reminder:\n{}",
        tl.show()
    );
    let above = tl.intervals.iter().filter(|i| i.rate > MIB).count();
    assert!(
        (6..=10).contains(&above),
        "the paced client was above the limit for 8 s, netio saw {above} intervals above:\n{}",
        tl.show()
    );

    let received = Timeline::new(&records.records, target, None, Direction::Received);
    assert!(
        received.notices.is_empty(),
        "the receive rate never came near its 16MiB/s limit, yet: {:?}",
        received.notices
    );
}

/// docs/records.md: "Rates are measured per interval, so the sustain time
/// is counted in whole intervals." With interval = 100ms and for = 1s, the
/// record belongs at the end of the tenth interval above (or below) the
/// limit, not the eleventh because ten measured intervals add up to 996 ms.
#[test]
fn threshold_sustain_and_reminder_count_whole_intervals() {
    let scratch = Scratch::new("threshold-whole");
    let name = unique_name("ntwhl");
    let idle = Idle::start(&scratch);
    let tracked = Program::named(&scratch, &name);
    let target = "whole";
    let config = scratch.path("netio.toml");
    write(
        &config,
        &threshold_config(
            target,
            &name,
            &idle,
            "sent = \"1MiB/s\"\nfor = \"1s\"\nreminder = \"1s\"\n",
        )
        .replace("interval = \"1s\"", "interval = \"100ms\""),
    );
    let mut netio = Netio::start_file(&config);
    let server = tracked.server("paced", "127.0.0.1:0", &["--count", "1"]);
    let client = Program::original().client(
        "paced",
        &server.addr("127.0.0.1"),
        &["--phases", "256k:1500,4m:3500,256k:2000"],
    );
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    netio.wait_until(Duration::from_secs(5), |r| {
        r.iter().any(|v| event(v) == Some(RECOVERED))
    });
    let records = netio.stop();
    records.assert_exact_for(&[(target, &truth.per_pid)], "127.0.0.1");

    let tl = Timeline::new(&records.records, target, None, Direction::Sent);
    let limit = Limit {
        target,
        peer: None,
        dir: Direction::Sent,
        bytes_per_sec: MIB,
        sustain_ms: 1000,
        reminder_ms: 1000,
        early_ms: 50,
        late_ms: 10,
    };
    let reminders = check_breach(&tl, &limit)
        .unwrap_or_else(|e| panic!("{e}\nsent rate per 100ms interval:\n{}", tl.show()));
    assert!(
        reminders >= 1,
        "3.5 s above with reminder = 1s:\n{}",
        tl.show()
    );
}

#[test]
fn peer_threshold_names_the_one_peer_above_its_limit() {
    let scratch = Scratch::new("peer-threshold");
    let name = unique_name("ntpeer");
    let idle = Idle::start(&scratch);
    let tracked = Program::named(&scratch, &name);
    let target = "peerthr";
    let config = scratch.path("netio.toml");
    write(
        &config,
        &threshold_config(
            target,
            &name,
            &idle,
            "peer_sent = \"1MiB/s\"\npeer_received = \"1MiB/s\"\nfor = \"2s\"\nreminder = \"1h\"\n",
        ),
    );
    let mut netio = Netio::start_file(&config);

    // Two clients at once: after a quiet start, 127.0.0.1 at twice the
    // per-peer limit, ::1 at an eighth of it throughout. Together they are
    // above the limit too, so a threshold that summed peers, or charged a
    // peer with its process's rate, would fire for ::1 as well.
    let server = tracked.server("paced", "[::]:0", &["--count", "2"]);
    let (heavy_addr, light_addr) = (server.addr("127.0.0.1"), server.addr("[::1]"));
    let (heavy, light) = std::thread::scope(|s| {
        let heavy = s.spawn(|| {
            Program::original().client("paced", &heavy_addr, &["--phases", "128k:1500,2m:5000"])
        });
        let light = s
            .spawn(|| Program::original().client("paced", &light_addr, &["--phases", "128k:6500"]));
        (heavy.join().unwrap(), light.join().unwrap())
    });
    let truth = server.finish();
    let recovered = |r: &[Value]| r.iter().filter(|v| event(v) == Some(RECOVERED)).count();
    netio.wait_until(Duration::from_secs(8), |r| recovered(r) >= 2);
    let records = netio.stop();

    // Exact totals, split exactly between the two peers.
    assert_process_total(&records, &truth);
    let peers = records.peer_totals();
    let by_peer = peers.get(&truth.pid).cloned().unwrap_or_default();
    assert_eq!(
        by_peer.get("127.0.0.1").copied(),
        Some(Bytes {
            sent: heavy.received,
            received: heavy.sent
        }),
        "127.0.0.1 peer totals: {by_peer:?}"
    );
    assert_eq!(
        by_peer.get("::1").copied(),
        Some(Bytes {
            sent: light.received,
            received: light.sent
        }),
        "::1 peer totals: {by_peer:?}"
    );

    for dir in [Direction::Sent, Direction::Received] {
        let tl = Timeline::new(&records.records, target, Some("127.0.0.1"), dir);
        let limit = Limit {
            target,
            peer: Some("127.0.0.1"),
            dir,
            bytes_per_sec: MIB,
            sustain_ms: 2000,
            reminder_ms: 3_600_000,
            early_ms: 500,
            late_ms: 0,
        };
        let reminders = check_breach(&tl, &limit).unwrap_or_else(|e| {
            panic!(
                "peer 127.0.0.1, {}: {e}\nrate per interval:\n{}",
                dir.name(),
                tl.show()
            )
        });
        assert_eq!(reminders, 0, "reminder = 1h");
    }
    let named: Vec<&Value> = records
        .records
        .iter()
        .filter(|v| is_threshold(v))
        .filter(|v| s(v, "NETIO_PEER_ADDRESS") != Some("127.0.0.1"))
        .collect();
    assert!(
        named.is_empty(),
        "only 127.0.0.1 was above its per-peer limit, yet: {named:?}"
    );
}

#[test]
fn sighup_applies_a_new_threshold_rejects_a_broken_file_and_keeps_counts_exact() {
    let scratch = Scratch::new("reload");
    let name = unique_name("ntrld");
    let idle = Idle::start(&scratch);
    let tracked = Program::named(&scratch, &name);
    let target = "rl";
    let config = scratch.path("netio.toml");
    let path = config.to_str().expect("UTF-8 path").to_owned();
    let rest = "for = \"2s\"\nreminder = \"1h\"\n";
    write(
        &config,
        &threshold_config(target, &name, &idle, &format!("sent = \"8MiB/s\"\n{rest}")),
    );
    let mut netio = Netio::start_file(&config);

    // 2MiB/s: under the first limit (8MiB/s), over the second (1MiB/s);
    // then 256KiB/s, under both.
    let server = tracked.server("paced", "127.0.0.1:0", &["--count", "1"]);
    let addr = server.addr("127.0.0.1");
    let client = std::thread::spawn(move || {
        Program::original().client("paced", &addr, &["--phases", "2m:11000,256k:4000"])
    });

    // Three whole intervals between the limits, under the first config.
    let between = |v: &Value| {
        event(v) == Some("traffic")
            && s(v, "NETIO_SCOPE") == Some("target")
            && (MIB + 1..=8 * MIB).contains(&n(v, "NETIO_SENT_BYTES_PER_SEC"))
    };
    assert!(
        netio.wait_until(Duration::from_secs(15), |r| {
            r.iter().filter(|v| between(v)).count() >= 3
        }),
        "netio never saw three intervals at 1-8 MiB/s"
    );

    write(
        &config,
        &threshold_config(target, &name, &idle, &format!("sent = \"1MiB/s\"\n{rest}")),
    );
    sighup(&netio);
    let has = |r: &[Value], kind: &str| r.iter().any(|v| event(v) == Some(kind));
    assert!(
        netio.wait_until(Duration::from_secs(5), |r| has(r, "config_reloaded")),
        "no config_reloaded record after SIGHUP"
    );
    assert!(
        netio.wait_until(Duration::from_secs(8), |r| has(r, EXCEEDED)),
        "the new 1MiB/s limit never fired for a 2MiB/s rate"
    );

    // A syntax error on line 9, reported by line and key.
    let broken = threshold_config(
        target,
        &name,
        &idle,
        "sent = \"1MiB/s\"\nfor = \"2s\nreminder = \"1h\"\n",
    );
    let bad_line = broken
        .lines()
        .position(|l| l == "for = \"2s")
        .expect("the broken line")
        + 1;
    write(&config, &broken);
    sighup(&netio);
    assert!(
        netio.wait_until(Duration::from_secs(5), |r| has(r, "config_rejected")),
        "no config_rejected record after SIGHUP with a broken file"
    );
    // The second config stays in force: its breach recovers at its limit
    // once the client slows down.
    assert!(
        netio.wait_until(Duration::from_secs(15), |r| has(r, RECOVERED)),
        "no threshold_recovered after the client slowed down"
    );
    let client = client.join().expect("client thread");
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    let records = netio.stop();
    records.assert_exact_for(&[(target, &truth.per_pid)], "127.0.0.1");

    let all = &records.records;
    let index = |kind: &str| -> Vec<usize> {
        all.iter()
            .enumerate()
            .filter(|(_, v)| event(v) == Some(kind))
            .map(|(i, _)| i)
            .collect()
    };
    let [reloaded] = index("config_reloaded")[..] else {
        panic!("want one config_reloaded: {all:?}")
    };
    let [rejected] = index("config_rejected")[..] else {
        panic!("want one config_rejected: {all:?}")
    };
    let [exceeded] = index(EXCEEDED)[..] else {
        panic!("want one threshold_exceeded: {all:?}")
    };
    let [recovered] = index(RECOVERED)[..] else {
        panic!("want one threshold_recovered: {all:?}")
    };
    assert!(
        index(REMINDER).is_empty(),
        "reminder = 1h, yet a reminder was written"
    );

    let rl = &all[reloaded];
    assert_eq!(s(rl, "NETIO_CONFIG"), Some(path.as_str()), "{rl}");
    assert_eq!(num(rl, "PRIORITY"), Some(5), "{rl}");
    let before = all[..reloaded].iter().filter(|v| between(v)).count();
    assert!(
        before >= 3,
        "the old limit was tested by only {before} intervals at 1-8 MiB/s"
    );
    assert!(
        reloaded < exceeded && exceeded < rejected && rejected < recovered,
        "order: config_reloaded #{reloaded}, threshold_exceeded #{exceeded}, config_rejected #{rejected}, threshold_recovered #{recovered}"
    );

    let ex = &all[exceeded];
    assert_eq!(num(ex, "NETIO_THRESHOLD_BYTES_PER_SEC"), Some(MIB), "{ex}");
    assert!(n(ex, "NETIO_RATE_BYTES_PER_SEC") > MIB, "{ex}");
    // `for = "2s"` with 1s intervals: two measured intervals, each maybe a
    // millisecond short (sustain counts whole intervals, see docs/records.md).
    assert!(n(ex, "NETIO_DURATION_MS") >= 1500, "{ex}");
    assert_eq!(s(ex, "NETIO_TARGET"), Some(target), "{ex}");
    assert_eq!(s(ex, "NETIO_DIRECTION"), Some("sent"), "{ex}");

    let rj = &all[rejected];
    assert_eq!(s(rj, "NETIO_CONFIG"), Some(path.as_str()), "{rj}");
    assert_eq!(num(rj, "PRIORITY"), Some(3), "{rj}");
    let reason = s(rj, "NETIO_REASON").unwrap_or_default();
    assert!(
        reason.contains(&format!("line {bad_line}")) && reason.contains("for"),
        "NETIO_REASON should name line {bad_line} and the key `for`: {reason:?}"
    );

    let rc = &all[recovered];
    assert_eq!(
        num(rc, "NETIO_THRESHOLD_BYTES_PER_SEC"),
        Some(MIB),
        "after the rejected reload the 1MiB/s limit must still be in force: {rc}"
    );
    assert!(n(rc, "NETIO_RATE_BYTES_PER_SEC") <= MIB, "{rc}");
    assert!(n(rc, "NETIO_DURATION_MS") >= 1500, "{rc}");
    let traffic_after = all[rejected..]
        .iter()
        .filter(|v| event(v) == Some("traffic") && s(v, "NETIO_SCOPE") == Some("target"))
        .count();
    assert!(
        traffic_after >= 2,
        "netio must keep running after a rejected reload"
    );
}

/// Local clients are peers like any other: one above the per-peer limit
/// over a Unix socket is named by its process, its bytes count in the
/// target's rates, and a target told `transport = "tcp"` counts none of
/// them. Two targets, each serving one local client at twice both limits.
#[test]
fn a_local_client_above_its_limit_is_named_by_its_process_unless_tcp_alone_is_watched() {
    let scratch = Scratch::new("unix-threshold");
    let idle = Idle::start(&scratch);
    let (both, tcp_only) = (unique_name("ntuxb"), unique_name("ntuxt"));
    let limits = "sent = \"1MiB/s\"\npeer_sent = \"1MiB/s\"\nfor = \"2s\"\nreminder = \"1h\"\n";
    let config = scratch.path("netio.toml");
    write(
        &config,
        &format!(
            "{}\n[[target]]\nname = \"uxtcp\"\nprocess = [\"{tcp_only}\"]\n\n[target.threshold]\n{limits}transport = \"tcp\"\n",
            threshold_config("uxall", &both, &idle, limits)
        ),
    );
    let mut netio = Netio::start_file(&config);
    let serve_one = |name: &str, socket: &str| {
        let listen = format!("unix:{}", scratch.path(socket).display());
        let server = Program::named(&scratch, name).server("paced", &listen, &["--count", "1"]);
        let client =
            Program::original().client("paced", &server.addr(""), &["--phases", "2m:5000"]);
        (server.finish(), client)
    };
    let ((server, client), (tcp_server, _)) = std::thread::scope(|s| {
        let all = s.spawn(|| serve_one(&both, "all.sock"));
        let tcp = s.spawn(|| serve_one(&tcp_only, "tcp.sock"));
        (all.join().unwrap(), tcp.join().unwrap())
    });
    let recovered = |r: &[Value]| r.iter().filter(|v| event(v) == Some(RECOVERED)).count();
    assert!(
        netio.wait_until(Duration::from_secs(8), |r| recovered(r) >= 2),
        "uxall's two breaches never recovered"
    );
    let records = netio.stop();

    let of = |target: &str| -> Vec<&Value> {
        records
            .records
            .iter()
            .filter(|v| is_threshold(v) && s(v, "NETIO_TARGET") == Some(target))
            .collect()
    };
    let exceeded = |target: &str, peer: bool| -> Vec<&Value> {
        of(target)
            .into_iter()
            .filter(|v| event(v) == Some(EXCEEDED) && v.get("NETIO_PEER_ADDRESS").is_some() == peer)
            .collect()
    };
    let address = common::unix_peer_of(client.pid);
    let by_peer = exceeded("uxall", true);
    assert_eq!(by_peer.len(), 1, "one per-peer breach: {:?}", of("uxall"));
    let v = by_peer[0];
    assert_eq!(s(v, "NETIO_PEER_ADDRESS"), Some(address.as_str()), "{v}");
    assert_eq!(s(v, "NETIO_TRANSPORT"), Some("unix"), "{v}");
    assert_eq!(num(v, "NETIO_PEER_PID"), Some(u64::from(client.pid)), "{v}");
    assert_eq!(s(v, "NETIO_DIRECTION"), Some("sent"), "{v}");
    assert_eq!(
        exceeded("uxall", false).len(),
        1,
        "the target's own breach: {:?}",
        of("uxall")
    );
    assert!(
        of("uxtcp").is_empty(),
        "a target watching TCP alone, whose only client is local: {:?}",
        of("uxtcp")
    );
    // Its bytes are counted all the same: a threshold filters, it hides
    // nothing.
    assert_process_total(&records, &server);
    assert_process_total(&records, &tcp_server);
}

/// netio's total for the process of `truth` is its ground truth.
fn assert_process_total(records: &common::Records, truth: &common::Truth) {
    assert_eq!(
        records.process_totals().get(&truth.pid).copied(),
        Some(Bytes {
            sent: truth.sent,
            received: truth.received
        }),
        "process totals of {}",
        truth.pid
    );
}

/// Loopback TCP clients share an address, not a peer: of two local client
/// processes on 127.0.0.1, the one above the per-peer limit is the one
/// breach, named by its process; the one below it, on the same address, is
/// not folded into it.
#[test]
fn of_two_loopback_clients_only_the_one_above_its_limit_breaches_named_by_its_process() {
    let scratch = Scratch::new("local-threshold");
    let idle = Idle::start(&scratch);
    let name = unique_name("ntlc");
    let limits = "peer_sent = \"1MiB/s\"\nfor = \"2s\"\nreminder = \"1h\"\n";
    let config = scratch.path("netio.toml");
    write(&config, &threshold_config("local", &name, &idle, limits));
    let mut netio = Netio::start_file(&config);
    let server = Program::named(&scratch, &name).server("paced", "127.0.0.1:0", &["--count", "2"]);
    let addr = server.addr("127.0.0.1");
    let (heavy, light) = std::thread::scope(|s| {
        let run = |phases: &'static str| {
            let addr = addr.clone();
            s.spawn(move || Program::original().client("paced", &addr, &["--phases", phases]))
        };
        let (heavy, light) = (run("2m:5000"), run("600k:5000"));
        (heavy.join().unwrap(), light.join().unwrap())
    });
    let server = server.finish();
    let recovered = |r: &[Value]| r.iter().any(|v| event(v) == Some(RECOVERED));
    assert!(
        netio.wait_until(Duration::from_secs(8), recovered),
        "the heavy client's breach never recovered"
    );
    let records = netio.stop();
    let exceeded: Vec<&Value> = records
        .records
        .iter()
        .filter(|v| is_threshold(v) && event(v) == Some(EXCEEDED))
        .collect();
    assert_eq!(
        exceeded.len(),
        1,
        "one breach, the heavy client's: {exceeded:?}"
    );
    let v = exceeded[0];
    assert_eq!(s(v, "NETIO_PEER_ADDRESS"), Some("127.0.0.1"), "{v}");
    assert_eq!(s(v, "NETIO_TRANSPORT"), Some("tcp"), "{v}");
    assert_eq!(num(v, "NETIO_PEER_PID"), Some(u64::from(heavy.pid)), "{v}");
    assert_eq!(s(v, "NETIO_PEER_COMM"), Some("netio-traffic"), "{v}");
    assert_ne!(heavy.pid, light.pid);
    assert_process_total(&records, &server);
}
