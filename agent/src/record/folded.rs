//! The records that stand for many, which keep an interval's volume
//! bounded however many processes and clients a target has: a target's
//! peers over all its processes, the processes past the busiest N in one
//! record, and a target's processes that appeared and exited, counted.

use super::message::Message;
use super::{field, Kind, Peer, Record, TrafficFields};
use crate::human;

impl Record {
    /// A target's bytes with one peer (or `other`: the peers past the
    /// busiest N) over all its processes, in one interval.
    pub fn target_peer_traffic<'a>(t: &TrafficFields<'_>, peer: impl Into<Peer<'a>>) -> Self {
        let peer = peer.into();
        let msg = Message::default()
            .str("target", t.target)
            .opt_peer(Some(&peer))
            .phrase(&format!("{}:", t.words()))
            .num("sent", t.sent)
            .num("received", t.received)
            .num("interval_ms", t.interval_ms);
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "target_peer"))
            .peer(&peer)
            .message(msg)
    }

    /// The bytes of a target's processes past the busiest N, in one record
    /// that says how many processes it holds and names none.
    pub fn other_processes_traffic(t: &TrafficFields<'_>, processes: u64) -> Self {
        let msg = Message::default()
            .str("target", t.target)
            .phrase(&format!(
                "{} {}:",
                human::count(processes, "other process", "other processes"),
                t.words()
            ))
            .num("processes", processes)
            .num("sent", t.sent)
            .num("received", t.received)
            .num("interval_ms", t.interval_ms);
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "process"))
            .num(field::PROCESSES, processes)
            .message(msg)
    }

    /// How many of a target's processes appeared and exited in one
    /// interval (`[records] lifecycle = "summary"`); their bytes are in
    /// the interval's traffic records.
    pub fn processes_changed(target: &str, appeared: u64, exited: u64, interval_ms: u64) -> Self {
        let words = format!(
            "{} appeared and {} exited in {}:",
            human::count(appeared, "process", "processes"),
            exited,
            human::duration_ms(interval_ms)
        );
        let msg = Message::default()
            .str("target", target)
            .phrase(&words)
            .num("appeared", appeared)
            .num("exited", exited)
            .num("interval_ms", interval_ms);
        Record::new(Kind::ProcessesChanged)
            .str(field::TARGET, target)
            .num(field::APPEARED, appeared)
            .num(field::EXITED, exited)
            .num(field::INTERVAL_MS, interval_ms)
            .message(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Value;
    use super::*;

    fn t() -> TrafficFields<'static> {
        TrafficFields {
            target: "db",
            sent: 5120,
            received: 880,
            interval_ms: 10_000,
            backend: "tracepoint",
        }
    }

    #[test]
    fn a_target_peer_record_names_the_peer_and_no_process() {
        let r = Record::target_peer_traffic(&t(), "10.0.0.7");
        assert_eq!(
            r.summary(),
            "target=\"db\" peer=\"10.0.0.7\" sent 5 KiB (512 B/s) and received 880 B (88 B/s) \
             in 10 s: sent=5120 received=880 interval_ms=10000"
        );
        assert_eq!(r.get(field::SCOPE), Some(&Value::Str("target_peer".into())));
        assert_eq!(r.get(field::PID), None);
        assert_eq!(r.get(field::SENT_BYTES_PER_SEC), Some(&Value::Num(512)));
    }

    #[test]
    fn the_other_processes_record_says_how_many_and_names_none() {
        let r = Record::other_processes_traffic(&t(), 1990);
        assert_eq!(
            r.summary(),
            "target=\"db\" 1990 other processes sent 5 KiB (512 B/s) and received 880 B \
             (88 B/s) in 10 s: processes=1990 sent=5120 received=880 interval_ms=10000"
        );
        assert_eq!(r.get(field::SCOPE), Some(&Value::Str("process".into())));
        assert_eq!(r.get(field::PROCESSES), Some(&Value::Num(1990)));
        assert_eq!((r.get(field::PID), r.get(field::COMM)), (None, None));
    }

    #[test]
    fn processes_changed_counts_both_ways() {
        let r = Record::processes_changed("db", 1000, 998, 10_000);
        assert_eq!(
            r.summary(),
            "target=\"db\" 1000 processes appeared and 998 exited in 10 s: appeared=1000 \
             exited=998 interval_ms=10000"
        );
        assert_eq!(r.get(field::EXITED), Some(&Value::Num(998)));
        assert_eq!(r.kind().priority(), 5);
    }
}
