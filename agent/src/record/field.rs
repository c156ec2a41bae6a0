//! Field names, journal style: uppercase, `NETIO_` prefix; and the rule
//! journald holds every field name to.

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

pub const MESSAGE: &str = "MESSAGE";
/// When the record was written, RFC 3339 in UTC: added by the JSON output
/// and the journal's stderr fallback (the journal and syslog stamp their
/// own, ECS has `@timestamp`), so it is not one of a record's own fields.
pub const TIMESTAMP: &str = "NETIO_TIMESTAMP";
pub const MESSAGE_ID: &str = "MESSAGE_ID";
pub const PRIORITY: &str = "PRIORITY";
pub const SYSLOG_IDENTIFIER: &str = "SYSLOG_IDENTIFIER";
pub const EVENT: &str = "NETIO_EVENT";
pub const SCHEMA: &str = "NETIO_SCHEMA";
pub const SCOPE: &str = "NETIO_SCOPE";
pub const TARGET: &str = "NETIO_TARGET";
pub const PID: &str = "NETIO_PID";
pub const COMM: &str = "NETIO_COMM";
pub const UID: &str = "NETIO_UID";
pub const EXE: &str = "NETIO_EXE";
pub const PEER_ADDRESS: &str = "NETIO_PEER_ADDRESS";
/// How a peer's bytes went: "tcp" or "unix" (not on `other`, which folds both).
pub const TRANSPORT: &str = "NETIO_TRANSPORT";
/// A Unix socket's peer process, from the socket's credentials.
pub const PEER_PID: &str = "NETIO_PEER_PID";
pub const PEER_UID: &str = "NETIO_PEER_UID";
/// Its name, read from /proc while its PID was still its own; absent once
/// it has exited.
pub const PEER_COMM: &str = "NETIO_PEER_COMM";
pub const FOLDED_PEERS_MIN: &str = "NETIO_FOLDED_PEERS_MIN";
pub const SENT_BYTES: &str = "NETIO_SENT_BYTES";
pub const RECEIVED_BYTES: &str = "NETIO_RECEIVED_BYTES";
pub const INTERVAL_MS: &str = "NETIO_INTERVAL_MS";
pub const BACKEND: &str = "NETIO_BACKEND";
pub const BACKEND_DETAIL: &str = "NETIO_BACKEND_DETAIL";
pub const BACKENDS_PASSED_OVER: &str = "NETIO_BACKENDS_PASSED_OVER";
pub const PINNING: &str = "NETIO_PINNING";
pub const PINNING_DETAIL: &str = "NETIO_PINNING_DETAIL";
pub const ADOPTED_VERSION: &str = "NETIO_ADOPTED_VERSION";
pub const GAP_MS: &str = "NETIO_GAP_MS";
pub const TRACKING_SINCE_MS: &str = "NETIO_TRACKING_SINCE_MS";
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
pub const SOCKET_OWNER_PID: &str = "NETIO_SOCKET_OWNER_PID";
pub const DIRECTION: &str = "NETIO_DIRECTION";
pub const RATE: &str = "NETIO_RATE_BYTES_PER_SEC";
pub const THRESHOLD: &str = "NETIO_THRESHOLD_BYTES_PER_SEC";
pub const SUSTAIN_MS: &str = "NETIO_SUSTAIN_MS";
pub const DURATION_MS: &str = "NETIO_DURATION_MS";
pub const BREACH_MS: &str = "NETIO_BREACH_MS";
pub const PEERS: &str = "NETIO_PEERS";
pub const APPEARED: &str = "NETIO_APPEARED";
pub const EXITED: &str = "NETIO_EXITED";
pub const CONFIG: &str = "NETIO_CONFIG";
pub const TARGETS_ADDED: &str = "NETIO_TARGETS_ADDED";
pub const TARGETS_REMOVED: &str = "NETIO_TARGETS_REMOVED";
pub const TARGETS_REMATCHED: &str = "NETIO_TARGETS_REMATCHED";
pub const THRESHOLDS_CHANGED: &str = "NETIO_THRESHOLDS_CHANGED";
