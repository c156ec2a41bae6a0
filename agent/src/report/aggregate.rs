//! The report's arithmetic, pure: journal entries in (as `journalctl -o
//! json` writes them, every value a string), sums per row out. Entries are
//! added one at a time and not kept, so memory grows with the rows (targets,
//! processes or peers), not with the span.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::record::field;

/// The unit and uid journald records for netio.service's own entries
/// (docs/siem.md, "Trust"): anything else is not netio's, whatever it says.
pub const TRUSTED_UNIT: &str = "netio.service";
pub const TRUSTED_UID: &str = "0";

/// journald's own fields the report reads: who sent the entry, and when.
pub const UNIT: &str = "_SYSTEMD_UNIT";
pub const UID: &str = "_UID";
pub const REALTIME: &str = "__REALTIME_TIMESTAMP";

/// Which traffic records a report sums: those of one scope only, since a
/// target's record already holds its processes' bytes, and a process's its
/// peers' (docs/records.md, `traffic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Target,
    Process,
    Peer,
}

impl By {
    /// The `NETIO_SCOPE` of the records this sums, and `--by`'s word.
    pub fn scope(self) -> &'static str {
        match self {
            By::Target => "target",
            By::Process => "process",
            By::Peer => "peer",
        }
    }

    pub fn parse(s: &str) -> Option<By> {
        [By::Target, By::Process, By::Peer]
            .into_iter()
            .find(|b| b.scope() == s)
    }
}

/// What a row groups: the target, and the process (`--by process`) or the
/// peer address over all the target's processes (`--by peer`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub target: String,
    pub pid: Option<u64>,
    pub comm: Option<String>,
    pub peer: Option<String>,
    /// `--by peer`: a loopback TCP client's PID, and its uid where the
    /// record gave one (its address is every local client's; a Unix peer's
    /// address holds both already).
    pub peer_pid: Option<u64>,
    pub peer_uid: Option<u64>,
}

/// Whether a peer record's peer is a loopback TCP client named by its
/// process (a Unix peer's process is in its address).
fn local_client(v: &Value) -> bool {
    text(v, field::TRANSPORT) == Some("tcp") && v.get(field::PEER_PID).is_some()
}

/// One row's sums over the records of its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub sent: u64,
    pub received: u64,
    /// The highest one-record rates: one interval of the row's target,
    /// process, or of one process with the peer.
    pub peak_sent_per_sec: u64,
    pub peak_received_per_sec: u64,
    pub records: u64,
    /// `--by peer`: a local client's process name, as its latest record
    /// with one gave it (a Unix peer's, while its PID was that process's).
    pub peer_comm: Option<String>,
    /// When the record that gave `peer_comm` was received.
    pub peer_comm_us: u64,
    /// journald's receive times of the first and last record, µs since 1970.
    pub first_us: u64,
    pub last_us: u64,
}

/// A threshold's breaches in the span: which threshold (a target's, or a
/// per-peer one's peer) and direction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BreachKey {
    pub target: String,
    pub peer: Option<String>,
    pub direction: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breaches {
    pub exceeded: u64,
    pub reminders: u64,
    pub recovered: u64,
    /// The highest rate an exceeded or reminder record gave.
    pub peak_rate: u64,
    /// The limit in the last record (a reload may change it).
    pub threshold: u64,
    pub first_us: u64,
    pub last_us: u64,
    /// The last record in the span was not a recovery: still above, or
    /// netio stopped before it recovered.
    pub open: bool,
}

/// `degraded` records of one reason: something netio lost or could not do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Degraded {
    pub records: u64,
    pub count: u64,
    pub lost_bytes: u64,
}

/// Everything a report says, as it is being summed.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub by: By,
    rows: BTreeMap<Key, Row>,
    /// `--by peer`: the targets whose current interval (since their last
    /// target record) has target peer records, whose process peer
    /// records then count nothing more.
    target_peers_seen: BTreeMap<String, bool>,
    pub breaches: BTreeMap<BreachKey, Breaches>,
    pub degraded: BTreeMap<String, Degraded>,
    /// Trusted entries read, of any kind.
    pub entries: u64,
    /// Entries skipped as not netio.service's (journalctl already selects
    /// by the same fields: this is the second lock).
    pub untrusted: u64,
    /// Trusted entries without a field they need, or with a number that is
    /// not one: none, unless the journal was damaged.
    pub malformed: u64,
    pub first_us: Option<u64>,
    pub last_us: Option<u64>,
}

/// A field's one value: journald writes a field given more than once as
/// an array, and binary data as an array of numbers; neither is netio's.
fn text<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)?.as_str()
}

fn number(v: &Value, name: &str) -> Option<u64> {
    text(v, name)?.parse().ok()
}

/// Whether journald says netio.service's root sent this entry.
pub fn trusted(v: &Value) -> bool {
    text(v, UNIT) == Some(TRUSTED_UNIT) && text(v, UID) == Some(TRUSTED_UID)
}

impl Aggregate {
    pub fn new(by: By) -> Self {
        Aggregate {
            by,
            rows: BTreeMap::new(),
            target_peers_seen: BTreeMap::new(),
            breaches: BTreeMap::new(),
            degraded: BTreeMap::new(),
            entries: 0,
            untrusted: 0,
            malformed: 0,
            first_us: None,
            last_us: None,
        }
    }

    /// Adds one journal entry: the kinds a report does not use, and traffic
    /// records of another scope, pass without effect.
    pub fn add(&mut self, v: &Value) {
        if !trusted(v) {
            self.untrusted += 1;
            return;
        }
        self.entries += 1;
        let Some(at) = number(v, REALTIME) else {
            self.malformed += 1;
            return;
        };
        let ok = match text(v, field::EVENT) {
            Some("traffic") => self.traffic(v, at),
            Some(kind @ ("threshold_exceeded" | "threshold_reminder" | "threshold_recovered")) => {
                self.breach(v, kind, at)
            }
            Some("degraded") => self.degraded(v),
            _ => Some(()),
        };
        if ok.is_none() {
            self.malformed += 1;
            return;
        }
        self.first_us = Some(self.first_us.map_or(at, |f| f.min(at)));
        self.last_us = Some(self.last_us.map_or(at, |l| l.max(at)));
    }

    fn traffic(&mut self, v: &Value, at: u64) -> Option<()> {
        let scope = text(v, field::SCOPE)?;
        if self.by == By::Peer && !self.peer_row(scope, text(v, field::TARGET)?) {
            return Some(());
        }
        if self.by != By::Peer && scope != self.by.scope() {
            return Some(());
        }
        let target = text(v, field::TARGET)?.to_string();
        let key = match self.by {
            By::Target => Key {
                target,
                pid: None,
                comm: None,
                peer: None,
                peer_pid: None,
                peer_uid: None,
            },
            // The record of the processes past the busiest N names none.
            By::Process if v.get(field::PID).is_none() && number(v, field::PROCESSES).is_some() => {
                Key {
                    target,
                    pid: None,
                    comm: None,
                    peer: None,
                    peer_pid: None,
                    peer_uid: None,
                }
            }
            By::Process => Key {
                target,
                pid: Some(number(v, field::PID)?),
                comm: Some(text(v, field::COMM)?.to_string()),
                peer: None,
                peer_pid: None,
                peer_uid: None,
            },
            By::Peer => Key {
                target,
                pid: None,
                comm: None,
                peer: Some(text(v, field::PEER_ADDRESS)?.to_string()),
                peer_pid: number(v, field::PEER_PID).filter(|_| local_client(v)),
                peer_uid: number(v, field::PEER_UID).filter(|_| local_client(v)),
            },
        };
        let sent = number(v, field::SENT_BYTES)?;
        let received = number(v, field::RECEIVED_BYTES)?;
        let sent_rate = number(v, field::SENT_BYTES_PER_SEC)?;
        let received_rate = number(v, field::RECEIVED_BYTES_PER_SEC)?;
        let row = self.rows.entry(key).or_insert_with(|| Row {
            first_us: at,
            last_us: at,
            ..Row::default()
        });
        row.sent = row.sent.saturating_add(sent);
        row.received = row.received.saturating_add(received);
        row.peak_sent_per_sec = row.peak_sent_per_sec.max(sent_rate);
        row.peak_received_per_sec = row.peak_received_per_sec.max(received_rate);
        row.records += 1;
        if let Some(comm) = text(v, field::PEER_COMM).filter(|_| self.by == By::Peer) {
            if row.peer_comm.is_none() || at >= row.peer_comm_us {
                row.peer_comm = Some(comm.to_string());
                row.peer_comm_us = at;
            }
        }
        row.first_us = row.first_us.min(at);
        row.last_us = row.last_us.max(at);
        Some(())
    }

    /// `--by peer`: whether a record of `scope` is summed. A target's peer
    /// records (over all its processes) are preferred: once an interval of
    /// the target has them, which come right after its target record, its
    /// process peer records of the same interval hold the same bytes
    /// again. Journals written before there were target peer records, or
    /// with `target_peers = 0`, have the process peer records only.
    fn peer_row(&mut self, scope: &str, target: &str) -> bool {
        let seen = self
            .target_peers_seen
            .entry(target.to_string())
            .or_default();
        match scope {
            "target" => {
                *seen = false;
                false
            }
            "target_peer" => {
                *seen = true;
                true
            }
            "peer" => !*seen,
            _ => false,
        }
    }

    fn breach(&mut self, v: &Value, kind: &str, at: u64) -> Option<()> {
        let key = BreachKey {
            target: text(v, field::TARGET)?.to_string(),
            peer: text(v, field::PEER_ADDRESS).map(str::to_string),
            direction: text(v, field::DIRECTION)?.to_string(),
        };
        let rate = number(v, field::RATE)?;
        let threshold = number(v, field::THRESHOLD)?;
        let b = self.breaches.entry(key).or_insert_with(|| Breaches {
            first_us: at,
            last_us: at,
            ..Breaches::default()
        });
        match kind {
            "threshold_recovered" => b.recovered += 1,
            "threshold_exceeded" => b.exceeded += 1,
            _ => b.reminders += 1,
        }
        if kind != "threshold_recovered" {
            b.peak_rate = b.peak_rate.max(rate);
        }
        b.first_us = b.first_us.min(at);
        // journalctl gives entries in time order: the latest decides.
        if at >= b.last_us {
            b.last_us = at;
            b.open = kind != "threshold_recovered";
            b.threshold = threshold;
        }
        Some(())
    }

    fn degraded(&mut self, v: &Value) -> Option<()> {
        let reason = text(v, field::REASON)?.to_string();
        let count = number(v, field::COUNT)?;
        let d = self.degraded.entry(reason).or_default();
        d.records += 1;
        d.count = d.count.saturating_add(count);
        d.lost_bytes = d
            .lost_bytes
            .saturating_add(number(v, field::LOST_BYTES).unwrap_or(0));
        Some(())
    }

    /// The rows, busiest (most bytes sent and received) first; ties in key
    /// order, so the same journal always gives the same report.
    pub fn rows(&self) -> Vec<(&Key, &Row)> {
        let mut rows: Vec<(&Key, &Row)> = self.rows.iter().collect();
        rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.sent as u128 + r.received as u128));
        rows
    }

    /// The rows' sums: all traffic of the span, counted once.
    pub fn total(&self) -> (u64, u64) {
        self.rows.values().fold((0, 0), |(s, r), row| {
            (s.saturating_add(row.sent), r.saturating_add(row.received))
        })
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
