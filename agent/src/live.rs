//! What the service answers `netio top` with: its counts since it started,
//! kept up at every interval from the same sums its records are written
//! from, plus, between intervals, what the kernel counted since the last
//! one (the counters' growth not yet reported). So a snapshot taken just
//! after an interval holds exactly the sum of the records written so far.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime};

use netio_probes::{PeerAddr, TargetId, TrafficVal};

use crate::interval::{self, ProcDelta, ProcKey, Totals};
use crate::peer_names::{self, PeerNames};
use crate::snapshot::{self, Degraded, Snapshot};
use crate::state::unix_ms;
use crate::tracking::Tracker;

/// Peers kept since start before new ones are folded into `other`: a
/// bound on memory against a scan of the whole address space.
const MAX_PEERS: usize = 65536;

pub struct Live {
    started: Instant,
    started_ms: u64,
    pub backend: String,
    pub pinning: String,
    pub interval_ms: u64,
    intervals: u64,
    targets: HashMap<TargetId, TrafficVal>,
    peers: HashMap<(TargetId, PeerAddr), TrafficVal>,
    /// The names the records gave the local clients among `peers`, kept
    /// while they are shown: a client idle for an interval keeps its name.
    peer_comms: HashMap<PeerAddr, String>,
    degraded: BTreeMap<(String, String), Degraded>,
    thresholds: Vec<(TargetId, snapshot::Threshold)>,
}

impl Live {
    pub fn new(backend: &str, interval_ms: u64) -> Live {
        Live {
            started: Instant::now(),
            started_ms: unix_ms(SystemTime::now()),
            backend: backend.to_string(),
            pinning: String::new(),
            interval_ms,
            intervals: 0,
            targets: HashMap::new(),
            peers: HashMap::new(),
            peer_comms: HashMap::new(),
            degraded: BTreeMap::new(),
            thresholds: Vec::new(),
        }
    }

    /// An interval's sums, as its records were written from them, and
    /// the names they gave local clients.
    pub fn interval(&mut self, totals: &Totals, names: &PeerNames) {
        self.intervals += 1;
        for (id, v) in &totals.targets {
            interval::add(self.targets.entry(*id).or_default(), *v);
        }
        for (&(id, peer), v) in &totals.peers {
            let full = self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&(id, peer));
            let key = if full {
                (id, PeerAddr::Other)
            } else {
                (id, peer)
            };
            interval::add(self.peers.entry(key).or_default(), *v);
            if let (false, Some(comm)) = (full, names.comm(&peer)) {
                self.peer_comms.insert(peer, comm.to_owned());
            }
        }
    }

    /// A `degraded` record's reason and counts, or a blind spot (count 0).
    pub fn degraded(&mut self, reason: &str, count: u64, detail: &str) {
        let d = self
            .degraded
            .entry((reason.to_string(), detail.to_string()))
            .or_insert_with(|| Degraded {
                reason: reason.to_string(),
                count: 0,
                detail: detail.to_string(),
            });
        d.count += count;
    }

    /// The thresholds that are not quiet after this interval.
    pub fn set_thresholds(&mut self, t: Vec<(TargetId, snapshot::Threshold)>) {
        self.thresholds = t;
    }

    /// The snapshot of `targets` (name, id) now: the sums since start plus
    /// `pending`, the counters' growth since the last interval.
    pub fn snapshot(
        &self,
        targets: &[(String, TargetId)],
        tracker: &Tracker,
        pending: &BTreeMap<ProcKey, ProcDelta>,
        names: &PeerNames,
    ) -> Snapshot {
        // The pending bytes by the target they count for, as `flush` will.
        let mut now = Totals::default();
        let mut procs: HashMap<ProcKey, TrafficVal> = HashMap::new();
        let known: HashMap<_, _> = tracker.procs().collect();
        for (key, d) in pending {
            let target = match known.get(key) {
                Some(p) if p.ignored => continue,
                Some(p) => p.target,
                None => d.target,
            };
            now.add(&ProcDelta {
                target,
                total: d.total,
                peers: d.peers.clone(),
            });
            procs.insert(*key, d.total);
        }
        let sum = |a: TrafficVal, b: TrafficVal| TrafficVal {
            sent: a.sent + b.sent,
            received: a.received + b.received,
        };
        let mut out = Vec::new();
        for (name, id) in targets {
            let total = sum(
                self.targets.get(id).copied().unwrap_or_default(),
                now.target(*id),
            );
            let mut rows: Vec<snapshot::Proc> = known
                .iter()
                .filter(|(_, p)| p.target == *id && !p.ignored)
                .map(|(&&(pid, gen), p)| {
                    let v = sum(p.total, procs.get(&(pid, gen)).copied().unwrap_or_default());
                    snapshot::Proc {
                        pid,
                        gen,
                        comm: p.comm.clone(),
                        sent: v.sent,
                        received: v.received,
                    }
                })
                .filter(|p| p.sent + p.received > 0)
                .collect();
            let procs_omitted = snapshot::keep_busiest(&mut rows, |p| p.sent + p.received);
            let mut peers: HashMap<PeerAddr, TrafficVal> = HashMap::new();
            for (&(t, peer), v) in self.peers.iter().chain(now.peers.iter()) {
                if t == *id {
                    interval::add(peers.entry(peer).or_default(), *v);
                }
            }
            let mut peer_rows: Vec<snapshot::Peer> = peers
                .into_iter()
                .map(|(addr, v)| snapshot::Peer {
                    addr: peer_names::distinct(&addr),
                    comm: names
                        .comm(&addr)
                        .or_else(|| self.peer_comms.get(&addr).map(String::as_str))
                        .map(str::to_owned),
                    sent: v.sent,
                    received: v.received,
                })
                .collect();
            let peers_omitted = snapshot::keep_busiest(&mut peer_rows, |p| p.sent + p.received);
            out.push(snapshot::Target {
                name: name.clone(),
                processes: tracker.processes_of(*id),
                sent: total.sent,
                received: total.received,
                thresholds: self
                    .thresholds
                    .iter()
                    .filter(|(t, _)| t == id)
                    .map(|(_, th)| th.clone())
                    .collect(),
                procs: rows,
                procs_omitted,
                peers: peer_rows,
                peers_omitted,
            });
        }
        Snapshot {
            protocol: snapshot::PROTOCOL,
            netio: crate::VERSION.to_string(),
            pid: std::process::id(),
            started_ms: self.started_ms,
            taken_ms: unix_ms(SystemTime::now()),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            interval_ms: self.interval_ms,
            intervals: self.intervals,
            backend: self.backend.clone(),
            pinning: self.pinning.clone(),
            degraded: self.degraded.values().cloned().collect(),
            targets: out,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn ip(n: u8) -> PeerAddr {
        PeerAddr::Ip(IpAddr::from([10, 0, 0, n]))
    }

    fn v(sent: u64, received: u64) -> TrafficVal {
        TrafficVal { sent, received }
    }

    #[test]
    fn a_snapshot_adds_what_is_pending_to_the_sums_of_the_intervals() {
        let id = TargetId::from(0u16);
        let mut live = Live::new("tracepoint", 1000);
        let mut totals = Totals::default();
        totals.add(&ProcDelta {
            target: id,
            total: v(10, 2),
            peers: vec![(ip(1), v(10, 2))],
        });
        live.interval(&totals, &PeerNames::default());
        let pending = BTreeMap::from([(
            (7, 1),
            ProcDelta {
                target: id,
                total: v(5, 0),
                peers: vec![(ip(2), v(5, 0))],
            },
        )]);
        let targets = [("db".to_string(), id)];
        let s = live.snapshot(
            &targets,
            &Tracker::default(),
            &pending,
            &PeerNames::default(),
        );
        assert_eq!((s.targets[0].sent, s.targets[0].received), (15, 2));
        assert_eq!(s.targets[0].peers.len(), 2);
        assert_eq!(s.targets[0].peers[0].addr, "10.0.0.1");
        assert_eq!(s.intervals, 1);
        let s = live.snapshot(
            &targets,
            &Tracker::default(),
            &BTreeMap::new(),
            &PeerNames::default(),
        );
        assert_eq!((s.targets[0].sent, s.targets[0].received), (10, 2));
    }

    #[test]
    fn a_local_client_keeps_its_process_name_while_it_is_shown() {
        let id = TargetId::from(0u16);
        let mut live = Live::new("tracepoint", 1000);
        let unix = netio_probes::UnixPeer {
            pid: 4242,
            uid: 33,
            started_ns: 1,
        };
        let peer = PeerAddr::Unix(unix);
        let mut names = PeerNames::default();
        names.seen((unix.pid, unix.started_ns), unix.uid, "php-fpm".into());
        names.update([peer].iter());
        let mut totals = Totals::default();
        totals.add(&ProcDelta {
            target: id,
            total: v(5, 0),
            peers: vec![(peer, v(5, 0)), (ip(1), v(1, 0))],
        });
        live.interval(&totals, &names);
        // Idle since: the names of the last interval no longer have it.
        let s = live.snapshot(
            &[("db".into(), id)],
            &Tracker::default(),
            &BTreeMap::new(),
            &PeerNames::default(),
        );
        let comm = |addr: &str| {
            let p = s.targets[0].peers.iter().find(|p| p.addr == addr);
            p.map(|p| p.comm.clone())
        };
        assert_eq!(comm("unix:pid=4242,uid=33"), Some(Some("php-fpm".into())));
        assert_eq!(comm("10.0.0.1"), Some(None));
    }
}
