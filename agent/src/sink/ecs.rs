//! The JSON output with Elastic Common Schema names (`json_schema = "ecs"`,
//! docs/siem.md): the same record, each field under its one ECS name
//! (`MAPPING`), plus the few fields ECS derives from it.

use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::{Map, Value as Json};

use crate::record::{field, Kind, Record, Value};
use crate::sink::json::json_value;
use crate::sink::level;
use crate::sink::time::rfc3339_utc;

/// The ECS version whose names these are.
pub const ECS_VERSION: &str = "8.11.0";

/// Each netio field and its ECS name. `NETIO_PEER_ADDRESS` goes to
/// `source.ip` when it is an address, and to `netio.peer_address` when it
/// is `other` (the peers folded together) or a Unix peer's name.
pub const MAPPING: [(&str, &str); 54] = [
    (field::MESSAGE, "message"),
    (field::MESSAGE_ID, "event.code"),
    (field::PRIORITY, "log.syslog.severity.code"),
    (field::SYSLOG_IDENTIFIER, "log.syslog.appname"),
    (field::EVENT, "event.action"),
    (field::SCHEMA, "netio.schema"),
    (field::SCOPE, "netio.scope"),
    (field::TARGET, "service.name"),
    (field::PID, "process.pid"),
    (field::COMM, "process.name"),
    (field::UID, "user.id"),
    (field::EXE, "process.executable"),
    (field::PPID, "process.parent.pid"),
    (field::PEER_ADDRESS, "source.ip"),
    (field::TRANSPORT, "network.transport"),
    // A Unix peer is a local process: ECS has no source.process.
    (field::PEER_PID, "netio.peer_pid"),
    (field::PEER_UID, "netio.peer_uid"),
    (field::PEER_COMM, "netio.peer_comm"),
    // The client (source) sends to the database (destination): what the
    // database read is the source's bytes, what it sent the destination's.
    (field::RECEIVED_BYTES, "source.bytes"),
    (field::SENT_BYTES, "destination.bytes"),
    (field::SENT_BYTES_PER_SEC, "netio.sent_bytes_per_sec"),
    (
        field::RECEIVED_BYTES_PER_SEC,
        "netio.received_bytes_per_sec",
    ),
    (field::INTERVAL_MS, "netio.interval_ms"),
    (field::BACKEND, "netio.backend"),
    (field::BACKEND_DETAIL, "netio.backend_detail"),
    (field::BACKENDS_PASSED_OVER, "netio.backends_passed_over"),
    (field::PINNING, "netio.pinning"),
    (field::PINNING_DETAIL, "netio.pinning_detail"),
    (field::ADOPTED_VERSION, "netio.adopted_version"),
    (field::GAP_MS, "netio.gap_ms"),
    (field::TRACKING_SINCE_MS, "netio.tracking_since_ms"),
    (field::VERSION, "agent.version"),
    (field::KERNEL, "host.os.kernel"),
    (field::TARGETS, "netio.targets"),
    (field::PROCESSES, "netio.processes"),
    (field::REASON, "event.reason"),
    (field::COUNT, "netio.count"),
    (field::LOST_BYTES, "netio.lost_bytes"),
    (field::DIRECTION, "netio.direction"),
    (field::RATE, "netio.rate_bytes_per_sec"),
    (field::THRESHOLD, "netio.threshold_bytes_per_sec"),
    (field::SUSTAIN_MS, "netio.sustain_ms"),
    (field::DURATION_MS, "netio.duration_ms"),
    (field::CONFIG, "netio.config"),
    (field::SOCKET_OWNER_PID, "netio.socket_owner_pid"),
    (field::PEERS, "netio.peers"),
    (field::APPEARED, "netio.appeared"),
    (field::EXITED, "netio.exited"),
    (field::BREACH_MS, "netio.breach_ms"),
    (field::FOLDED_PEERS_MIN, "netio.folded_peers_min"),
    (field::TARGETS_ADDED, "netio.targets_added"),
    (field::TARGETS_REMOVED, "netio.targets_removed"),
    (field::TARGETS_REMATCHED, "netio.targets_rematched"),
    (field::THRESHOLDS_CHANGED, "netio.thresholds_changed"),
];

/// Where a `NETIO_PEER_ADDRESS` that is not an address goes.
pub const PEER_NOT_AN_ADDRESS: &str = "netio.peer_address";

/// ECS `event.kind`: measurements are metrics, a crossed threshold is an
/// alert, the rest are events.
pub fn event_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Traffic => "metric",
        Kind::ThresholdExceeded | Kind::ThresholdReminder => "alert",
        _ => "event",
    }
}

fn ecs_name(name: &str) -> Option<&'static str> {
    MAPPING.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// Sets `path` (dotted) in a nested object.
fn insert(root: &mut Map<String, Json>, path: &str, value: Json) {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_string(), value);
            return;
        }
        let next = node
            .entry(part.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
        if !next.is_object() {
            *next = Json::Object(Map::new());
        }
        node = next.as_object_mut().unwrap();
    }
}

/// The record as one ECS JSON object, nested as ECS documents are.
pub fn to_ecs(record: &Record, now: SystemTime) -> Json {
    let mut root = Map::new();
    root.insert("@timestamp".into(), Json::String(rfc3339_utc(now)));
    insert(&mut root, "ecs.version", ECS_VERSION.into());
    let kind = record.kind();
    insert(&mut root, "event.kind", event_kind(kind).into());
    insert(&mut root, "event.module", "netio".into());
    insert(
        &mut root,
        "event.dataset",
        format!("netio.{}", kind.name()).into(),
    );
    insert(&mut root, "log.level", level(kind.priority()).into());
    for (name, value) in &record.fields {
        let json = json_value(value);
        let path = match (*name, value) {
            (field::PEER_ADDRESS, Value::Str(s)) if s.parse::<IpAddr>().is_err() => {
                PEER_NOT_AN_ADDRESS
            }
            // A field without a mapping is a bug the tests catch; in the
            // field it keeps its netio name rather than vanish.
            _ => ecs_name(name).unwrap_or(name),
        };
        insert(&mut root, path, json);
    }
    Json::Object(root)
}

pub fn to_ecs_json(record: &Record, now: SystemTime) -> String {
    to_ecs(record, now).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::record::{postgres, samples};

    fn get<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
        path.split('.').try_fold(v, |v, p| v.get(p))
    }

    #[test]
    fn every_field_has_one_ecs_name_and_no_two_share_one() {
        let written: BTreeSet<&str> = samples()
            .iter()
            .flat_map(|r| r.fields.iter().map(|(n, _)| *n))
            .collect();
        let mapped: BTreeSet<&str> = MAPPING.iter().map(|(n, _)| *n).collect();
        assert_eq!(written, mapped, "every field written is mapped, no other");
        let names: BTreeSet<&str> = MAPPING.iter().map(|(_, e)| *e).collect();
        assert_eq!(names.len(), MAPPING.len());
        // No name may be a prefix of another: a value would hide an object.
        for a in &names {
            for b in &names {
                assert!(!b.starts_with(&format!("{a}.")), "{a} and {b}");
            }
        }
    }

    #[test]
    fn every_field_comes_back_from_its_ecs_name() {
        for r in samples() {
            let ecs = to_ecs(&r, SystemTime::now());
            for (name, value) in &r.fields {
                let want = match value {
                    Value::Str(s) => Json::String(s.clone()),
                    Value::Num(n) => Json::from(*n),
                };
                let path = match (*name, value) {
                    (field::PEER_ADDRESS, Value::Str(s)) if s.parse::<IpAddr>().is_err() => {
                        PEER_NOT_AN_ADDRESS
                    }
                    _ => ecs_name(name).unwrap(),
                };
                assert_eq!(get(&ecs, path), Some(&want), "{name} at {path} in {ecs}");
            }
            assert_eq!(get(&ecs, "ecs.version"), Some(&Json::from(ECS_VERSION)));
        }
    }

    #[test]
    fn peer_records_name_the_client_and_the_bytes_both_ways() {
        let t = crate::record::TrafficFields {
            target: "db",
            sent: 10,
            received: 20,
            interval_ms: 1000,
            backend: "fentry",
        };
        let r = Record::peer_traffic(&t, &postgres(), "10.1.2.3");
        let ecs = to_ecs(&r, SystemTime::now());
        assert_eq!(get(&ecs, "source.ip"), Some(&Json::from("10.1.2.3")));
        assert_eq!(get(&ecs, "source.bytes"), Some(&Json::from(20)));
        assert_eq!(get(&ecs, "destination.bytes"), Some(&Json::from(10)));
        assert_eq!(get(&ecs, "process.pid"), Some(&Json::from(7)));
        assert_eq!(get(&ecs, "process.name"), Some(&Json::from("postgres")));
        assert_eq!(get(&ecs, "user.id"), Some(&Json::from(105)));
        let exe = Json::from("/usr/lib/postgresql/15/bin/postgres");
        assert_eq!(get(&ecs, "process.executable"), Some(&exe));
        assert_eq!(get(&ecs, "event.kind"), Some(&Json::from("metric")));
        let other = to_ecs(
            &Record::peer_traffic(&t, &postgres(), "other"),
            SystemTime::now(),
        );
        assert_eq!(get(&other, "source.ip"), None, "`other` is not an IP");
        assert_eq!(get(&other, PEER_NOT_AN_ADDRESS), Some(&Json::from("other")));
    }

    #[test]
    fn thresholds_are_alerts_until_they_recover() {
        for r in samples() {
            let want = match r.kind() {
                Kind::Traffic => "metric",
                Kind::ThresholdExceeded | Kind::ThresholdReminder => "alert",
                _ => "event",
            };
            let ecs = to_ecs(&r, SystemTime::now());
            assert_eq!(get(&ecs, "event.kind"), Some(&Json::from(want)));
        }
    }

    /// docs/siem.md's table is the published mapping: one row per field,
    /// with the name the code uses.
    #[test]
    fn siem_md_has_the_mapping_table_of_the_code() {
        let doc = include_str!("../../../docs/siem.md");
        for (name, ecs) in MAPPING {
            let row = format!("| `{name}` | `{ecs}` |");
            assert!(doc.contains(&row), "docs/siem.md lacks the row {row}");
        }
        assert!(doc.contains(&format!("`{PEER_NOT_AN_ADDRESS}`")));
        assert!(doc.contains(ECS_VERSION));
    }
}
