//! Human-readable output: one line per record, the time it was written
//! (RFC 3339, UTC), its priority, then its MESSAGE (which carries the
//! numbers as key=value), control characters escaped so that none reaches
//! a terminal raw. A traffic record that the one after it repeats (a
//! target's only process, a process's only peer) is left out.

use std::io::{self, Write};
use std::time::SystemTime;

use crate::record::{printable, Record};
use crate::sink::time::rfc3339_utc;
use crate::sink::{level, Sink};

pub struct TextSink<W: Write> {
    out: W,
    /// The clock the lines are stamped by: a fixed one in tests.
    now: fn() -> SystemTime,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W) -> Self {
        TextSink {
            out,
            now: SystemTime::now,
        }
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        if record.repeated {
            // The narrower record after it says the same, and who.
            return Ok(());
        }
        let summary = record.summary();
        let message = printable(&summary);
        let at = rfc3339_utc((self.now)());
        let level = level(record.kind().priority());
        writeln!(self.out, "{at} {level:<7} {message}")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::record::{TrafficFields, Value, Who};

    fn line(record: &Record) -> String {
        let mut sink = TextSink::new(Vec::new());
        sink.now = || UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        sink.write(record).unwrap();
        String::from_utf8(sink.out).unwrap()
    }

    const AT: &str = "2023-11-14T22:13:20.123456Z";

    #[test]
    fn every_line_opens_with_the_time_it_was_written_in_rfc3339_utc() {
        let mut sink = TextSink::new(Vec::new());
        let before = SystemTime::now();
        sink.write(&Record::stopping("1.0")).unwrap();
        let out = String::from_utf8(sink.out).unwrap();
        let (stamp, rest) = out.split_once(' ').unwrap();
        let at = humantime::parse_rfc3339(stamp).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert!(stamp.ends_with('Z'), "{stamp}: UTC");
        assert!(at + Duration::from_micros(1) >= before, "{stamp}");
        assert_eq!(rest, "notice  netio 1.0 stopping\n");
        assert!(line(&Record::stopping("1.0")).starts_with(&format!("{AT} notice ")));
    }

    #[test]
    fn a_target_with_one_process_and_one_peer_is_one_line() {
        use crate::record::mark_repeats;
        let t = |sent| TrafficFields {
            target: "db",
            sent,
            received: 0,
            interval_ms: 1000,
            backend: "kprobe",
        };
        let pg = |pid| Who {
            pid,
            comm: "pg",
            uid: None,
            exe: None,
        };
        let lines = |mut records: Vec<Record>| {
            mark_repeats(&mut records);
            let mut sink = TextSink::new(Vec::new());
            for r in &records {
                sink.write(r).unwrap();
            }
            let out = String::from_utf8(sink.out).unwrap();
            out.lines().map(|l| l[28..].to_string()).collect::<Vec<_>>()
        };
        let one = lines(vec![
            Record::target_traffic(&t(10), 1, 1),
            Record::process_traffic(&t(10), &pg(7)),
            Record::peer_traffic(&t(10), &pg(7), "10.0.0.1"),
        ]);
        assert_eq!(one.len(), 1, "{one:?}");
        assert!(one[0].contains("peer=\"10.0.0.1\""), "{one:?}");
        // Two processes: the target's line stands; each process's one peer
        // speaks for it.
        let two = lines(vec![
            Record::target_traffic(&t(30), 2, 2),
            Record::process_traffic(&t(10), &pg(7)),
            Record::peer_traffic(&t(10), &pg(7), "10.0.0.1"),
            Record::process_traffic(&t(20), &pg(8)),
            Record::peer_traffic(&t(15), &pg(8), "10.0.0.1"),
            Record::peer_traffic(&t(5), &pg(8), "10.0.0.2"),
        ]);
        let scopes: Vec<&str> = two
            .iter()
            .map(|l| match (l.contains("pid="), l.contains("peer=")) {
                (false, _) => "target",
                (true, false) => "process",
                (true, true) => "peer",
            })
            .collect();
        assert_eq!(
            scopes,
            ["target", "peer", "process", "peer", "peer"],
            "{two:?}"
        );
        // Idle: the target's line alone.
        assert_eq!(lines(vec![Record::target_traffic(&t(0), 1, 0)]).len(), 1);
        // With the target's peers: one process with one client is still one
        // line, and without process records the target's one peer speaks
        // for it.
        let with_target_peer = lines(vec![
            Record::target_traffic(&t(10), 1, 1),
            Record::target_peer_traffic(&t(10), "10.0.0.1"),
            Record::process_traffic(&t(10), &pg(7)),
            Record::peer_traffic(&t(10), &pg(7), "10.0.0.1"),
        ]);
        assert_eq!(with_target_peer.len(), 1, "{with_target_peer:?}");
        assert!(
            with_target_peer[0].contains("pid=7 "),
            "{with_target_peer:?}"
        );
        let no_process = lines(vec![
            Record::target_traffic(&t(10), 1, 1),
            Record::target_peer_traffic(&t(10), "10.0.0.1"),
        ]);
        assert_eq!(no_process.len(), 1, "{no_process:?}");
        assert!(
            no_process[0].contains("peer=\"10.0.0.1\""),
            "{no_process:?}"
        );
        // Two clients: the target's peers are lines of their own.
        let two_clients = lines(vec![
            Record::target_traffic(&t(30), 1, 2),
            Record::target_peer_traffic(&t(20), "10.0.0.1"),
            Record::target_peer_traffic(&t(10), "10.0.0.2"),
            Record::process_traffic(&t(30), &pg(7)),
        ]);
        assert_eq!(two_clients.len(), 3, "{two_clients:?}");
    }

    #[test]
    fn one_line_per_record_with_no_raw_control_character() {
        let t = TrafficFields {
            target: "db",
            sent: 10,
            received: 20,
            interval_ms: 1000,
            backend: "kprobe",
        };
        let who = crate::record::Who {
            pid: 7,
            comm: "e\x1b[2K\r\nsent=0\u{9b}",
            uid: Some(0),
            exe: Some("/x\ny"),
        };
        let r = Record::process_traffic(&t, &who);
        let out = line(&r);
        assert_eq!(
            out,
            format!("{AT} info    target=\"db\" pid=7 comm=\"e\\u001b[2K\\r\\nsent=0\\u009b\" uid=0 exe=\"/x\\ny\" sent 10 B (10 B/s) and received 20 B (20 B/s) in 1 s: sent=10 received=20 interval_ms=1000\n")
        );
        let mut r = Record::stopping("1.2");
        r.fields[0].1 = Value::Str("a\nb\x1bc".into());
        assert_eq!(line(&r), format!("{AT} notice  a\\nb\\u001bc\n"));
    }
}
