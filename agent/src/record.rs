//! The records netio writes: every kind and every field is named here, once.
//! Sinks render a `Record`; they never invent fields. docs/records.md
//! documents the same names, and a test checks the two agree. How MESSAGE
//! is composed, and quoted, is in record/message.rs.

mod message;

pub use message::printable;
use message::Message;

/// The schema version in `NETIO_SCHEMA`: bumped when a field changes
/// meaning or goes away (adding one is compatible).
pub const SCHEMA: u64 = 1;

/// Whether journald keeps a field of this name: every field name must pass,
/// since journald drops the others without a word (docs/records.md).
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Field names, journal style: uppercase, `NETIO_` prefix.
pub mod field {
    pub const MESSAGE: &str = "MESSAGE";
    pub const MESSAGE_ID: &str = "MESSAGE_ID";
    pub const PRIORITY: &str = "PRIORITY";
    pub const SYSLOG_IDENTIFIER: &str = "SYSLOG_IDENTIFIER";
    pub const EVENT: &str = "NETIO_EVENT";
    pub const SCHEMA: &str = "NETIO_SCHEMA";
    pub const SCOPE: &str = "NETIO_SCOPE";
    pub const TARGET: &str = "NETIO_TARGET";
    pub const PID: &str = "NETIO_PID";
    pub const COMM: &str = "NETIO_COMM";
    pub const PEER_ADDRESS: &str = "NETIO_PEER_ADDRESS";
    pub const SENT_BYTES: &str = "NETIO_SENT_BYTES";
    pub const RECEIVED_BYTES: &str = "NETIO_RECEIVED_BYTES";
    pub const INTERVAL_MS: &str = "NETIO_INTERVAL_MS";
    pub const BACKEND: &str = "NETIO_BACKEND";
    pub const BACKEND_DETAIL: &str = "NETIO_BACKEND_DETAIL";
    pub const BACKENDS_PASSED_OVER: &str = "NETIO_BACKENDS_PASSED_OVER";
    pub const VERSION: &str = "NETIO_VERSION";
    pub const KERNEL: &str = "NETIO_KERNEL";
    pub const TARGETS: &str = "NETIO_TARGETS";
    pub const PROCESSES: &str = "NETIO_PROCESSES";
    pub const REASON: &str = "NETIO_REASON";
    pub const COUNT: &str = "NETIO_COUNT";
    pub const LOST_BYTES: &str = "NETIO_LOST_BYTES";
    pub const SENT_BYTES_PER_SEC: &str = "NETIO_SENT_BYTES_PER_SEC";
    pub const RECEIVED_BYTES_PER_SEC: &str = "NETIO_RECEIVED_BYTES_PER_SEC";
    pub const PPID: &str = "NETIO_PPID";
    pub const DIRECTION: &str = "NETIO_DIRECTION";
    pub const RATE: &str = "NETIO_RATE_BYTES_PER_SEC";
    pub const THRESHOLD: &str = "NETIO_THRESHOLD_BYTES_PER_SEC";
    pub const SUSTAIN_MS: &str = "NETIO_SUSTAIN_MS";
    pub const DURATION_MS: &str = "NETIO_DURATION_MS";
    pub const CONFIG: &str = "NETIO_CONFIG";
}

/// Record kinds: the `NETIO_EVENT` value, a fixed `MESSAGE_ID` (explained
/// in packaging/netio.catalog for `journalctl -x`) and a syslog priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Started,
    Traffic,
    ThresholdExceeded,
    ThresholdReminder,
    ThresholdRecovered,
    ProcessAppeared,
    ProcessExited,
    ConfigReloaded,
    ConfigRejected,
    Degraded,
    Stopping,
}

impl Kind {
    #[cfg(test)]
    pub const ALL: [Kind; 11] = [
        Kind::Started,
        Kind::Traffic,
        Kind::ThresholdExceeded,
        Kind::ThresholdReminder,
        Kind::ThresholdRecovered,
        Kind::ProcessAppeared,
        Kind::ProcessExited,
        Kind::ConfigReloaded,
        Kind::ConfigRejected,
        Kind::Degraded,
        Kind::Stopping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::Traffic => "traffic",
            Kind::ThresholdExceeded => "threshold_exceeded",
            Kind::ThresholdReminder => "threshold_reminder",
            Kind::ThresholdRecovered => "threshold_recovered",
            Kind::ProcessAppeared => "process_appeared",
            Kind::ProcessExited => "process_exited",
            Kind::ConfigReloaded => "config_reloaded",
            Kind::ConfigRejected => "config_rejected",
            Kind::Degraded => "degraded",
            Kind::Stopping => "stopping",
        }
    }

    pub fn message_id(self) -> &'static str {
        match self {
            Kind::Started => "e0e90a05de1142d883189e240e88196e",
            Kind::Traffic => "6e6059a2f2b64d14920758e625c563d6",
            Kind::ThresholdExceeded => "c545973dce4b44e0859c49a47ab9ab19",
            Kind::ThresholdReminder => "c38dbace38b145a9a45ef3504669bcea",
            Kind::ThresholdRecovered => "7a8a09f12833467bb68f1df09f2a4a4a",
            Kind::ProcessAppeared => "aeff48f73f5f43ce81429b20998b84cd",
            Kind::ProcessExited => "ddbdc53f1b634302bbe99c87c97ee059",
            Kind::ConfigReloaded => "cde7aabadddd4de48c5a418c4d0fb3e6",
            Kind::ConfigRejected => "1236841136694ed28b95ebb3ea034f53",
            Kind::Degraded => "c4a52bbde3c54f89b24d808f6d875fd5",
            Kind::Stopping => "dc22ca6f7e304a90a811672b022fa7e4",
        }
    }

    /// syslog priority: 3 error (a config refused), 4 warning (a threshold
    /// crossed, something lost), 5 notice (the agent's and the targets'
    /// lifecycle, a recovery), 6 info (routine measurements).
    pub fn priority(self) -> u8 {
        match self {
            Kind::ConfigRejected => 3,
            Kind::ThresholdExceeded | Kind::ThresholdReminder | Kind::Degraded => 4,
            Kind::Started
            | Kind::Stopping
            | Kind::ThresholdRecovered
            | Kind::ProcessAppeared
            | Kind::ProcessExited
            | Kind::ConfigReloaded => 5,
            Kind::Traffic => 6,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Num(u64),
}

impl Value {
    /// The value as the text outputs carry it: numbers in decimal.
    pub fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => n.to_string(),
        }
    }
}

/// One record: an ordered list of fields, MESSAGE first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    kind: Kind,
    pub fields: Vec<(&'static str, Value)>,
}

impl Record {
    fn new(kind: Kind) -> Self {
        Record {
            kind,
            fields: vec![
                (field::MESSAGE, Value::Str(String::new())),
                (field::MESSAGE_ID, Value::Str(kind.message_id().into())),
                (field::PRIORITY, Value::Num(kind.priority().into())),
                (field::SYSLOG_IDENTIFIER, Value::Str("netio".into())),
                (field::EVENT, Value::Str(kind.name().into())),
                (field::SCHEMA, Value::Num(SCHEMA)),
            ],
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `MESSAGE` as text: what the outputs that carry only the summary show.
    pub fn summary(&self) -> String {
        self.fields
            .iter()
            .find(|(n, _)| *n == field::MESSAGE)
            .map(|(_, v)| v.text())
            .unwrap_or_default()
    }

    fn str(mut self, name: &'static str, v: impl Into<String>) -> Self {
        self.fields.push((name, Value::Str(v.into())));
        self
    }

    fn num(mut self, name: &'static str, v: u64) -> Self {
        self.fields.push((name, Value::Num(v)));
        self
    }

    fn message(mut self, m: Message) -> Self {
        self.fields[0].1 = Value::Str(m.done());
        self
    }

    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// `passed_over`: the backends tried before the one in use, and why
    /// each did not work.
    pub fn started(
        version: &str,
        kernel: &str,
        backend: &str,
        detail: &str,
        passed_over: &[(String, String)],
        targets: &[String],
        processes: usize,
    ) -> Self {
        let skipped: Vec<String> = passed_over
            .iter()
            .map(|(b, why)| format!("{b}: {why}"))
            .collect();
        let passed = skipped.join("; ");
        let msg = Message::new("netio")
            .token(version)
            .words("started:")
            .str("backend", backend)
            .str("kernel", kernel)
            .str("targets", &targets.join(","))
            .num("processes", processes as u64)
            .opt_str("passed_over", (!passed.is_empty()).then_some(&passed));
        Record::new(Kind::Started)
            .str(field::VERSION, version)
            .str(field::KERNEL, kernel)
            .str(field::BACKEND, backend)
            .str(field::BACKEND_DETAIL, detail)
            .str(field::BACKENDS_PASSED_OVER, passed)
            .str(field::TARGETS, targets.join(","))
            .num(field::PROCESSES, processes as u64)
            .message(msg)
    }

    pub fn stopping(version: &str) -> Self {
        Record::new(Kind::Stopping)
            .str(field::VERSION, version)
            .message(Message::new("netio").token(version).words("stopping"))
    }

    /// A target's total bytes in one interval; written every interval,
    /// zeros included, so a silent database is visible as such.
    pub fn target_traffic(t: &TrafficFields<'_>, processes: u64) -> Self {
        let msg = Message::default()
            .str("target", t.target)
            .num("sent", t.sent)
            .num("received", t.received)
            .num("sent_per_sec", t.per_sec(t.sent))
            .num("received_per_sec", t.per_sec(t.received))
            .num("processes", processes)
            .num("interval_ms", t.interval_ms);
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "target"))
            .num(field::PROCESSES, processes)
            .message(msg)
    }

    /// One process's bytes in one interval.
    pub fn process_traffic(t: &TrafficFields<'_>, pid: u32, comm: &str) -> Self {
        let msg = t.message(pid, comm, None);
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "process"))
            .num(field::PID, pid as u64)
            .str(field::COMM, comm)
            .message(msg)
    }

    /// One process's bytes with one peer (or `other`: the peers past the
    /// busiest N) in one interval.
    pub fn peer_traffic(t: &TrafficFields<'_>, pid: u32, comm: &str, peer: &str) -> Self {
        let msg = t.message(pid, comm, Some(peer));
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "peer"))
            .num(field::PID, pid as u64)
            .str(field::COMM, comm)
            .str(field::PEER_ADDRESS, peer)
            .message(msg)
    }

    /// A threshold crossed (`Exceeded`, then `Reminder` while it lasts) or
    /// left behind (`Recovered`).
    pub fn threshold(kind: Kind, t: &ThresholdFields<'_>) -> Self {
        let what = match kind {
            Kind::ThresholdExceeded => "rate threshold exceeded:",
            Kind::ThresholdReminder => "rate threshold still exceeded:",
            _ => "rate threshold recovered:",
        };
        let msg = Message::default()
            .str("target", t.target)
            .words(t.direction)
            .words(what)
            .opt_str("peer", t.peer)
            .str("direction", t.direction)
            .num("rate", t.rate)
            .num("threshold", t.threshold)
            .num("duration_ms", t.duration_ms);
        let mut r = Record::new(kind)
            .str(field::TARGET, t.target)
            .str(field::DIRECTION, t.direction);
        if let Some(p) = t.peer {
            r = r.str(field::PEER_ADDRESS, p);
        }
        r.num(field::RATE, t.rate)
            .num(field::THRESHOLD, t.threshold)
            .num(field::SUSTAIN_MS, t.sustain_ms)
            .num(field::DURATION_MS, t.duration_ms)
            .message(msg)
    }

    pub fn process_appeared(target: &str, pid: u32, ppid: u32, comm: &str) -> Self {
        Record::new(Kind::ProcessAppeared)
            .str(field::TARGET, target)
            .num(field::PID, pid as u64)
            .num(field::PPID, ppid as u64)
            .str(field::COMM, comm)
            .message(
                Message::default()
                    .str("target", target)
                    .words("process appeared:")
                    .num("pid", pid as u64)
                    .num("ppid", ppid as u64)
                    .str("comm", comm),
            )
    }

    /// A tracked process is gone; its totals over the time it was tracked.
    pub fn process_exited(target: &str, pid: u32, comm: &str, sent: u64, received: u64) -> Self {
        Record::new(Kind::ProcessExited)
            .str(field::TARGET, target)
            .num(field::PID, pid as u64)
            .str(field::COMM, comm)
            .num(field::SENT_BYTES, sent)
            .num(field::RECEIVED_BYTES, received)
            .message(
                Message::default()
                    .str("target", target)
                    .words("process exited:")
                    .num("pid", pid as u64)
                    .str("comm", comm)
                    .num("sent", sent)
                    .num("received", received),
            )
    }

    pub fn config_reloaded(path: &str, detail: &str) -> Self {
        let msg = Message::new("configuration reloaded:")
            .str("config", path)
            .opt_str("detail", (!detail.is_empty()).then_some(detail));
        Record::new(Kind::ConfigReloaded)
            .str(field::CONFIG, path)
            .message(msg)
    }

    pub fn config_rejected(path: &str, error: &str) -> Self {
        Record::new(Kind::ConfigRejected)
            .str(field::CONFIG, path)
            .str(field::REASON, error)
            .message(
                Message::new(
                    "configuration reload refused, the previous configuration stays in force:",
                )
                .str("reason", error),
            )
    }

    /// Something was lost or could not be done; `count` of it since the last
    /// such record.
    pub fn degraded(reason: &str, count: u64, lost_bytes: Option<u64>, detail: &str) -> Self {
        let msg = Message::new("netio degraded:")
            .str("reason", reason)
            .num("count", count)
            .opt_num("lost_bytes", lost_bytes)
            .opt_str("detail", (!detail.is_empty()).then_some(detail));
        let mut r = Record::new(Kind::Degraded)
            .str(field::REASON, reason)
            .num(field::COUNT, count);
        if let Some(b) = lost_bytes {
            r = r.num(field::LOST_BYTES, b);
        }
        r.message(msg)
    }
}

/// The fields every traffic record carries.
#[derive(Clone, Copy)]
pub struct TrafficFields<'a> {
    pub target: &'a str,
    pub sent: u64,
    pub received: u64,
    pub interval_ms: u64,
    pub backend: &'a str,
}

impl TrafficFields<'_> {
    fn per_sec(&self, bytes: u64) -> u64 {
        crate::interval::per_second(bytes, self.interval_ms)
    }

    /// A process or peer record's MESSAGE.
    fn message(&self, pid: u32, comm: &str, peer: Option<&str>) -> Message {
        Message::default()
            .str("target", self.target)
            .num("pid", pid as u64)
            .str("comm", comm)
            .opt_str("peer", peer)
            .num("sent", self.sent)
            .num("received", self.received)
            .num("interval_ms", self.interval_ms)
    }

    fn add(&self, r: Record) -> Record {
        r.str(field::TARGET, self.target)
            .num(field::SENT_BYTES, self.sent)
            .num(field::RECEIVED_BYTES, self.received)
            .num(field::SENT_BYTES_PER_SEC, self.per_sec(self.sent))
            .num(field::RECEIVED_BYTES_PER_SEC, self.per_sec(self.received))
            .num(field::INTERVAL_MS, self.interval_ms)
            .str(field::BACKEND, self.backend)
    }
}

/// What a threshold record says.
pub struct ThresholdFields<'a> {
    pub target: &'a str,
    pub peer: Option<&'a str>,
    /// "sent" or "received".
    pub direction: &'static str,
    /// The rate observed in the interval that decided it, bytes/s.
    pub rate: u64,
    pub threshold: u64,
    pub sustain_ms: u64,
    /// How long the rate has been above (or, recovered, below) the limit.
    pub duration_ms: u64,
}

/// One record of every kind and scope, for tests that check names and docs.
#[cfg(test)]
pub fn samples() -> Vec<Record> {
    let t = TrafficFields {
        target: "db",
        sent: 10,
        received: 20,
        interval_ms: 1000,
        backend: "tracepoint",
    };
    let th = ThresholdFields {
        target: "db",
        peer: Some("10.0.0.1"),
        direction: "sent",
        rate: 5,
        threshold: 4,
        sustain_ms: 3000,
        duration_ms: 3000,
    };
    vec![
        Record::started(
            "v",
            "k",
            "b",
            "d",
            &[("fentry".into(), "EPERM".into())],
            &["db".into()],
            1,
        ),
        Record::target_traffic(&t, 2),
        Record::process_traffic(&t, 7, "postgres"),
        Record::peer_traffic(&t, 7, "postgres", "::1"),
        Record::threshold(Kind::ThresholdExceeded, &th),
        Record::threshold(Kind::ThresholdReminder, &th),
        Record::threshold(Kind::ThresholdRecovered, &th),
        Record::process_appeared("db", 7, 1, "postgres"),
        Record::process_exited("db", 7, "postgres", 1, 2),
        Record::config_reloaded("/etc/netio/netio.conf", ""),
        Record::config_rejected("/etc/netio/netio.conf", "line 1: bad"),
        Record::degraded("r", 1, Some(2), "x"),
        Record::stopping("v"),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn traffic_message_carries_the_numbers_as_key_value() {
        let t = TrafficFields {
            target: "db",
            sent: 10,
            received: 20,
            interval_ms: 500,
            backend: "tracepoint",
        };
        let r = Record::peer_traffic(&t, 7, "postgres", "::1");
        let Value::Str(m) = r.get(field::MESSAGE).unwrap() else {
            panic!()
        };
        assert!(
            m.contains("sent=10") && m.contains("received=20") && m.contains("peer=\"::1\""),
            "{m}"
        );
        assert_eq!(r.get(field::SENT_BYTES), Some(&Value::Num(10)));
        assert_eq!(r.get(field::RECEIVED_BYTES_PER_SEC), Some(&Value::Num(40)));
        assert_eq!(r.get(field::PEER_ADDRESS), Some(&Value::Str("::1".into())));
    }

    #[test]
    fn every_kind_has_its_own_128_bit_message_id() {
        let ids: BTreeSet<_> = Kind::ALL.iter().map(|k| k.message_id()).collect();
        assert_eq!(ids.len(), Kind::ALL.len());
        for id in ids {
            assert!(
                id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
        let kinds: BTreeSet<_> = samples().iter().map(|r| r.kind().name()).collect();
        assert_eq!(
            kinds.len(),
            Kind::ALL.len(),
            "samples() must cover every kind"
        );
    }

    #[test]
    fn every_field_name_is_journal_safe() {
        for r in samples() {
            for (name, _) in &r.fields {
                assert!(valid_field_name(name), "{name}");
            }
        }
    }

    #[test]
    fn field_names_journald_keeps_are_valid_and_the_others_are_not() {
        for good in ["MESSAGE", "NETIO_SENT_BYTES", "A", "X9_", &"N".repeat(64)] {
            assert!(valid_field_name(good), "{good}");
        }
        let too_long = "N".repeat(65);
        for bad in [
            "",
            "netio_pid",
            "NETIO-PID",
            "_PID",
            "9LIVES",
            "NETIO PID",
            "NETIÖ",
            "NETIO=PID",
            &too_long,
        ] {
            assert!(!valid_field_name(bad), "{bad}");
        }
    }

    /// docs/records.md is the public schema: it must name exactly the
    /// fields and kinds the code writes.
    #[test]
    fn records_md_documents_exactly_the_fields_and_kinds_written() {
        let doc = include_str!("../../docs/records.md");
        let documented: BTreeSet<String> = doc
            .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .filter(|w| {
                (w.starts_with("NETIO_") && w.len() > "NETIO_".len())
                    || ["MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER"].contains(w)
            })
            .map(str::to_string)
            .collect();
        let written: BTreeSet<String> = samples()
            .iter()
            .flat_map(|r| r.fields.iter().map(|(n, _)| n.to_string()))
            .collect();
        assert_eq!(
            documented.difference(&written).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "documented but never written"
        );
        assert_eq!(
            written.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "written but not documented"
        );
        for k in Kind::ALL {
            assert!(
                doc.contains(&format!("## `{}`", k.name())),
                "docs/records.md has no section for {}",
                k.name()
            );
            assert!(
                doc.contains(k.message_id()),
                "docs/records.md lacks the MESSAGE_ID of {}",
                k.name()
            );
        }
    }
}
