//! Which traffic records an interval writes below its targets' totals, so
//! that their number is bounded by the config, not by the processes and
//! clients a target has: each target's busiest processes (each with its
//! busiest peers) and one record for the rest, and each target's busiest
//! peers over all its processes and `other` for the rest
//! (docs/records.md, "How many records").

use netio_probes::TargetId;

use crate::config::RecordsConfig;
use crate::interval::{self, ProcDelta, Totals};
use crate::peer_names::PeerNames;
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
    names: &PeerNames,
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
            process_and_peers(row, cfg.top_peers as usize, names, fields, &mut records);
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
    names: &PeerNames,
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
        let address = peer.to_string();
        records.push(Record::peer_traffic(&f, &who, names.shown(&peer, &address)));
    }
}

/// A target's peer records over all its processes (movers' bytes
/// included, as in its total): the busiest `top`, then `other`.
pub fn target_peer_records(
    totals: &Totals,
    target: TargetId,
    top: usize,
    names: &PeerNames,
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
            let address = peer.to_string();
            Record::target_peer_traffic(&f, names.shown(&peer, &address))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use netio_probes::{PeerAddr, TrafficVal};

    use super::*;
    use crate::record::{field, Value};

    fn ip(last: u8) -> PeerAddr {
        PeerAddr::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    fn row(pid: u32, peers: Vec<(PeerAddr, TrafficVal)>) -> ProcessRow {
        let mut total = TrafficVal::default();
        peers
            .iter()
            .for_each(|(_, v)| interval::add(&mut total, *v));
        ProcessRow {
            pid,
            comm: "postgres".into(),
            uid: None,
            exe: None,
            delta: ProcDelta {
                target: TargetId::from(0u16),
                total,
                peers,
            },
        }
    }

    fn v(sent: u64) -> TrafficVal {
        TrafficVal { sent, received: 0 }
    }

    fn num(r: &Record, name: &str) -> Option<u64> {
        match r.get(name)? {
            Value::Num(n) => Some(*n),
            Value::Str(_) => None,
        }
    }

    #[test]
    fn the_busiest_processes_are_named_with_their_peers_and_the_rest_is_one_record() {
        let rows = vec![
            row(10, vec![(ip(1), v(5))]),
            row(11, vec![(ip(2), v(50)), (ip(3), v(1)), (ip(4), v(2))]),
            row(12, vec![(ip(5), v(1))]),
            row(13, vec![(ip(6), v(40))]),
            row(14, vec![(ip(7), v(2))]),
        ];
        let cfg = RecordsConfig {
            top_processes: 2,
            top_peers: 1,
            ..RecordsConfig::default()
        };
        let base = TrafficFields {
            target: "",
            sent: 0,
            received: 0,
            interval_ms: 1000,
            backend: "tracepoint",
        };
        let records = process_records(rows, &Tracker::default(), &cfg, &PeerNames::default(), base);
        let shape: Vec<(Option<u64>, Option<&Value>, Option<u64>)> = records
            .iter()
            .map(|r| {
                (
                    num(r, field::PID),
                    r.get(field::PEER_ADDRESS),
                    num(r, field::SENT_BYTES),
                )
            })
            .collect();
        let peer = |s: &str| Some(Value::Str(s.into()));
        let (p2, other, p6) = (peer("10.0.0.2"), peer("other"), peer("10.0.0.6"));
        assert_eq!(
            shape,
            vec![
                (Some(11), None, Some(53)),
                (Some(11), p2.as_ref(), Some(50)),
                (Some(11), other.as_ref(), Some(3)),
                (Some(13), None, Some(40)),
                (Some(13), p6.as_ref(), Some(40)),
                (None, None, Some(8)),
            ],
            "the two busiest by PID, each with its busiest peer and `other`, then the rest"
        );
        assert_eq!(num(&records[5], field::PROCESSES), Some(3));
    }
}
