//! The records netio writes: every kind and every field is named here, once.
//! Sinks render a `Record`; they never invent fields. docs/records.md
//! documents the same names, and a test checks the two agree.

use std::fmt::Write as _;

/// The schema version in `NETIO_SCHEMA`: bumped when a field changes
/// meaning or goes away (adding one is compatible).
pub const SCHEMA: u64 = 1;

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
    pub const VERSION: &str = "NETIO_VERSION";
    pub const KERNEL: &str = "NETIO_KERNEL";
    pub const TARGETS: &str = "NETIO_TARGETS";
    pub const PROCESSES: &str = "NETIO_PROCESSES";
    pub const REASON: &str = "NETIO_REASON";
    pub const COUNT: &str = "NETIO_COUNT";
    pub const LOST_BYTES: &str = "NETIO_LOST_BYTES";
}

/// Record kinds: the `NETIO_EVENT` value, a fixed `MESSAGE_ID` (explained
/// in packaging/netio.catalog for `journalctl -x`) and a syslog priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Started,
    Traffic,
    Degraded,
    Stopping,
}

impl Kind {
    #[cfg(test)]
    pub const ALL: [Kind; 4] = [Kind::Started, Kind::Traffic, Kind::Degraded, Kind::Stopping];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::Traffic => "traffic",
            Kind::Degraded => "degraded",
            Kind::Stopping => "stopping",
        }
    }

    pub fn message_id(self) -> &'static str {
        match self {
            Kind::Started => "e0e90a05de1142d883189e240e88196e",
            Kind::Traffic => "6e6059a2f2b64d14920758e625c563d6",
            Kind::Degraded => "c4a52bbde3c54f89b24d808f6d875fd5",
            Kind::Stopping => "dc22ca6f7e304a90a811672b022fa7e4",
        }
    }

    /// syslog priority: 4 warning (something lost), 5 notice (lifecycle),
    /// 6 info (routine measurements).
    pub fn priority(self) -> u8 {
        match self {
            Kind::Degraded => 4,
            Kind::Started | Kind::Stopping => 5,
            Kind::Traffic => 6,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Num(u64),
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

    /// Sinks that map priorities or IDs differently (syslog) start here.
    #[allow(dead_code)]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn str(mut self, name: &'static str, v: impl Into<String>) -> Self {
        self.fields.push((name, Value::Str(v.into())));
        self
    }

    fn num(mut self, name: &'static str, v: u64) -> Self {
        self.fields.push((name, Value::Num(v)));
        self
    }

    fn message(mut self, m: String) -> Self {
        self.fields[0].1 = Value::Str(m);
        self
    }

    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn started(
        version: &str,
        kernel: &str,
        backend: &str,
        detail: &str,
        targets: &[String],
        processes: usize,
    ) -> Self {
        Record::new(Kind::Started)
            .str(field::VERSION, version)
            .str(field::KERNEL, kernel)
            .str(field::BACKEND, backend)
            .str(field::BACKEND_DETAIL, detail)
            .str(field::TARGETS, targets.join(","))
            .num(field::PROCESSES, processes as u64)
            .message(format!(
                "netio {version} started: backend={backend} kernel={kernel} targets={} processes={processes}",
                targets.join(",")
            ))
    }

    pub fn stopping(version: &str) -> Self {
        Record::new(Kind::Stopping)
            .str(field::VERSION, version)
            .message(format!("netio {version} stopping"))
    }

    /// One process's bytes in one interval.
    pub fn process_traffic(t: &TrafficFields<'_>) -> Self {
        let msg = format!(
            "{} pid={} comm={} sent={} received={} interval_ms={}",
            t.target, t.pid, t.comm, t.sent, t.received, t.interval_ms
        );
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "process"))
            .message(msg)
    }

    /// One process's bytes with one peer in one interval.
    pub fn peer_traffic(t: &TrafficFields<'_>, peer: &str) -> Self {
        let msg = format!(
            "{} pid={} comm={} peer={peer} sent={} received={} interval_ms={}",
            t.target, t.pid, t.comm, t.sent, t.received, t.interval_ms
        );
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "peer"))
            .str(field::PEER_ADDRESS, peer)
            .message(msg)
    }

    /// Something was lost or could not be done; `count` of it since the last
    /// such record.
    pub fn degraded(reason: &str, count: u64, lost_bytes: Option<u64>, detail: &str) -> Self {
        let mut msg = format!("netio degraded: {reason} count={count}");
        let mut r = Record::new(Kind::Degraded)
            .str(field::REASON, reason)
            .num(field::COUNT, count);
        if let Some(b) = lost_bytes {
            let _ = write!(msg, " lost_bytes={b}");
            r = r.num(field::LOST_BYTES, b);
        }
        if !detail.is_empty() {
            let _ = write!(msg, " ({detail})");
        }
        r.message(msg)
    }
}

/// The fields every traffic record carries.
pub struct TrafficFields<'a> {
    pub target: &'a str,
    pub pid: u32,
    pub comm: &'a str,
    pub sent: u64,
    pub received: u64,
    pub interval_ms: u64,
    pub backend: &'a str,
}

impl TrafficFields<'_> {
    fn add(&self, r: Record) -> Record {
        r.str(field::TARGET, self.target)
            .num(field::PID, self.pid as u64)
            .str(field::COMM, self.comm)
            .num(field::SENT_BYTES, self.sent)
            .num(field::RECEIVED_BYTES, self.received)
            .num(field::INTERVAL_MS, self.interval_ms)
            .str(field::BACKEND, self.backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_message_carries_the_numbers_as_key_value() {
        let t = TrafficFields {
            target: "db",
            pid: 7,
            comm: "postgres",
            sent: 10,
            received: 20,
            interval_ms: 1000,
            backend: "tracepoint",
        };
        let r = Record::peer_traffic(&t, "::1");
        let Value::Str(m) = r.get(field::MESSAGE).unwrap() else {
            panic!()
        };
        assert!(
            m.contains("sent=10") && m.contains("received=20") && m.contains("peer=::1"),
            "{m}"
        );
        assert_eq!(r.get(field::SENT_BYTES), Some(&Value::Num(10)));
        assert_eq!(r.get(field::PEER_ADDRESS), Some(&Value::Str("::1".into())));
    }

    #[test]
    fn every_kind_has_its_own_128_bit_message_id() {
        let ids: std::collections::HashSet<_> = Kind::ALL.iter().map(|k| k.message_id()).collect();
        assert_eq!(ids.len(), Kind::ALL.len());
        for id in ids {
            assert!(
                id.len() == 32
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
    }

    #[test]
    fn every_field_name_is_journal_safe() {
        // journald silently drops fields that break these rules.
        let t = TrafficFields {
            target: "db",
            pid: 1,
            comm: "c",
            sent: 0,
            received: 0,
            interval_ms: 0,
            backend: "b",
        };
        let records = [
            Record::started("v", "k", "b", "d", &["db".into()], 1),
            Record::stopping("v"),
            Record::process_traffic(&t),
            Record::peer_traffic(&t, "1.2.3.4"),
            Record::degraded("r", 1, Some(2), "x"),
        ];
        for r in &records {
            for (name, _) in &r.fields {
                assert!(name.len() <= 64 && !name.starts_with('_'), "{name}");
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                    "{name}"
                );
                assert!(!name.starts_with(|c: char| c.is_ascii_digit()), "{name}");
            }
        }
    }
}
