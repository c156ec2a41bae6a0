//! Which traffic records an interval writes below its targets' totals, so
//! that their number is bounded by the config, not by the processes and
//! clients a target has: each target's busiest processes (each with its
//! busiest peers) and one record for the rest, and each target's busiest
//! peers over all its processes and `other` for the rest
//! (docs/records.md, "How many records").

use netio_probes::TargetId;

use crate::config::RecordsConfig;
use crate::interval::{self, ProcDelta, Totals};
use crate::record::{Record, TrafficFields, Who};
use crate::tracking::Tracker;

/// A tracked process that moved bytes in the interval, and who it is.
#[derive(Debug, Clone)]
pub struct ProcessRow {
    pub pid: u32,
    pub comm: String,
    pub uid: Option<u32>,
    pub exe: Option<String>,
    /// Its bytes, each peer once.
    pub delta: ProcDelta,
}

/// The process records of an interval, target by target in the order the
/// rows came (by PID): the `top_processes` busiest of each target, each
/// followed by its `top_peers` busiest peers and `other`, then one record
/// for the rest of the target's processes, if there is a rest.
pub fn process_records(
    rows: Vec<ProcessRow>,
    tracker: &Tracker,
    cfg: &RecordsConfig,
    base: TrafficFields<'_>,
) -> Vec<Record> {
    let mut by_target: Vec<(TargetId, Vec<ProcessRow>)> = Vec::new();
    for row in rows {
        match by_target.iter_mut().find(|(t, _)| *t == row.delta.target) {
            Some((_, list)) => list.push(row),
            None => by_target.push((row.delta.target, vec![row])),
        }
    }
    let mut records = Vec::new();
    for (target, list) in by_target {
        let fields = TrafficFields {
            target: tracker.target_name(target),
            ..base
        };
        let (shown, rest) = interval::busiest(list, cfg.top_processes as usize, |r| r.delta.total);
        for row in &shown {
            process_and_peers(row, cfg.top_peers as usize, fields, &mut records);
        }
        if !rest.is_empty() {
            let mut sum = netio_probes::TrafficVal::default();
            rest.iter()
                .for_each(|r| interval::add(&mut sum, r.delta.total));
            let f = TrafficFields {
                sent: sum.sent,
                received: sum.received,
                ..fields
            };
            records.push(Record::other_processes_traffic(&f, rest.len() as u64));
        }
    }
    records
}

/// One process's record, then its peers' (the busiest `top`, then `other`).
fn process_and_peers(
    row: &ProcessRow,
    top: usize,
    fields: TrafficFields<'_>,
    records: &mut Vec<Record>,
) {
    let fields = TrafficFields {
        sent: row.delta.total.sent,
        received: row.delta.total.received,
        ..fields
    };
    let who = Who {
        pid: row.pid,
        comm: &row.comm,
        uid: row.uid,
        exe: row.exe.as_deref(),
    };
    records.push(Record::process_traffic(&fields, &who));
    if top == 0 {
        return;
    }
    for (peer, v) in interval::peer_rows(row.delta.peers.clone(), top) {
        let f = TrafficFields {
            sent: v.sent,
            received: v.received,
            ..fields
        };
        records.push(Record::peer_traffic(&f, &who, &peer.to_string()));
    }
}

/// A target's peer records over all its processes (movers' bytes
/// included, as in its total): the busiest `top`, then `other`.
pub fn target_peer_records(
    totals: &Totals,
    target: TargetId,
    top: usize,
    fields: TrafficFields<'_>,
) -> Vec<Record> {
    interval::target_peer_rows(totals, target, top)
        .into_iter()
        .map(|(peer, v)| {
            let f = TrafficFields {
                sent: v.sent,
                received: v.received,
                ..fields
            };
            Record::target_peer_traffic(&f, &peer.to_string())
        })
        .collect()
}
