//! What `netio top` asks the running service and what it answers: one
//! snapshot of the service's own counters, as JSON. The service
//! (snapshot_server.rs) writes it, `netio top` (top/client.rs) reads it;
//! this is the one definition both sides share (docs/top.md, "Protocol").
//!
//! Every count is since this netio started, up to one kernel read
//! (`taken_ms`): the sum of the records it wrote up to the interval that
//! ended last, plus what the kernel counted since, so `netio top` can take
//! rates from two snapshots and a test can hold totals against the records.

use serde::{Deserialize, Serialize};

/// The protocol's version: a request names it, an answer carries it, and
/// a service that speaks another answers with an error line.
pub const PROTOCOL: u32 = 1;

/// The request line a client sends: `snapshot 1\n`.
pub fn request() -> String {
    format!("snapshot {PROTOCOL}\n")
}

/// The most a request may be; more is refused.
pub const MAX_REQUEST: usize = 64;

/// At most this many processes and peers per target are answered, the
/// busiest first; the rest are counted in `*_omitted`.
pub const MAX_ROWS: usize = 200;

/// The whole answer, one JSON line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub protocol: u32,
    /// The service's version and PID.
    pub netio: String,
    pub pid: u32,
    /// When it started and when the kernel read behind these numbers was
    /// made (Unix ms); `intervals`: how many intervals it has written.
    pub started_ms: u64,
    pub taken_ms: u64,
    /// The same read on the service's monotonic clock (ms since it
    /// started): rates are taken over its differences.
    pub uptime_ms: u64,
    pub interval_ms: u64,
    pub intervals: u64,
    pub backend: String,
    /// "pinned", "adopted" or "off".
    pub pinning: String,
    /// What the backend cannot see, and every loss since start.
    pub degraded: Vec<Degraded>,
    pub targets: Vec<Target>,
}

/// One kind of degradation: a blind spot of the backend (count 0) or a
/// `degraded` record's reason with its counts summed since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Degraded {
    pub reason: String,
    pub count: u64,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    /// Processes tracked now.
    pub processes: u64,
    /// Bytes since this netio started.
    pub sent: u64,
    pub received: u64,
    /// Its thresholds that are not quiet: above a limit, in breach, or
    /// recovering (below again, not yet for the sustain time).
    pub thresholds: Vec<Threshold>,
    /// Tracked processes with traffic, each with its bytes since tracked.
    pub procs: Vec<Proc>,
    pub procs_omitted: u64,
    /// Peers with traffic since start, each with its bytes since.
    pub peers: Vec<Peer>,
    pub peers_omitted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    /// None: the target's total; else the peer's address or "other".
    pub peer: Option<String>,
    /// "sent" or "received".
    pub direction: String,
    /// "above", "breach" or "recovering".
    pub state: String,
    /// The limit, bytes per second, and the last interval's rate.
    pub limit: u64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: u32,
    /// Tells apart two processes that had the same PID in turn.
    pub gen: u32,
    pub comm: String,
    pub sent: u64,
    pub received: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// An address (a loopback client's with its PID, `127.0.0.1 pid=4242`),
    /// or "other" for what was counted without one.
    pub addr: String,
    /// A peer process's name (a Unix peer's, a loopback client's), as the
    /// records gave it (escaped when shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    pub sent: u64,
    pub received: u64,
}

/// The answer to a request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub protocol: u32,
    pub error: String,
}

/// Keeps the busiest `MAX_ROWS` of `rows` (by bytes both ways) and
/// returns how many it left out.
pub fn keep_busiest<T>(rows: &mut Vec<T>, bytes: impl Fn(&T) -> u64) -> u64 {
    rows.sort_by_key(|r| std::cmp::Reverse(bytes(r)));
    let omitted = rows.len().saturating_sub(MAX_ROWS) as u64;
    rows.truncate(MAX_ROWS);
    omitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let s = Snapshot {
            protocol: PROTOCOL,
            targets: vec![Target {
                name: "db".into(),
                sent: 5,
                peers: vec![
                    Peer {
                        addr: "10.0.0.7".into(),
                        comm: None,
                        sent: 5,
                        received: 0,
                    },
                    Peer {
                        addr: "unix:pid=7,uid=33".into(),
                        comm: Some("php-fpm".into()),
                        sent: 1,
                        received: 2,
                    },
                ],
                ..Target::default()
            }],
            ..Snapshot::default()
        };
        let line = serde_json::to_string(&s).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Snapshot>(&line).unwrap(), s);
    }

    #[test]
    fn only_the_busiest_rows_are_kept() {
        let mut rows: Vec<u64> = (0..(MAX_ROWS as u64 + 5)).collect();
        assert_eq!(keep_busiest(&mut rows, |r| *r), 5);
        assert_eq!(rows.len(), MAX_ROWS);
        assert_eq!(rows[0], MAX_ROWS as u64 + 4);
        assert!(!rows.contains(&0));
    }
}
