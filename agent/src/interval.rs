//! Interval arithmetic over plain data: the kernel's counters only grow, so
//! an interval's bytes are the difference between two reads; this module
//! turns reads into per-process deltas, sums them per target and per
//! (target, peer), and folds a process's peers into its busiest N and
//! `other`. No kernel and no I/O, so all of it is unit-tested.

use std::collections::{BTreeMap, HashMap};

use netio_probes::{PeerAddr, TargetId, TrafficVal};

/// A process as the kernel counts it: thread group id and generation (two
/// processes that reuse one PID have different generations).
pub type ProcKey = (u32, u32);

/// One counter: one process's bytes with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counter {
    pub process: ProcKey,
    pub target: TargetId,
    pub peer: PeerAddr,
}

/// What one process moved in one interval: in all, and per peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcDelta {
    pub target: TargetId,
    pub total: TrafficVal,
    pub peers: Vec<(PeerAddr, TrafficVal)>,
}

/// The bytes per second of `bytes` moved in `interval_ms`, rounded down.
pub fn per_second(bytes: u64, interval_ms: u64) -> u64 {
    (bytes as u128 * 1000 / interval_ms.max(1) as u128) as u64
}

pub fn add(to: &mut TrafficVal, v: TrafficVal) {
    to.sent += v.sent;
    to.received += v.received;
}

/// The last read of every counter, which the next read is diffed against.
#[derive(Debug, Default)]
pub struct Counters {
    last: HashMap<Counter, TrafficVal>,
}

impl Counters {
    /// The bytes each process moved since the last read, by process, from
    /// a read of every counter. A counter that went down was deleted and
    /// made again in between: all of it is new. Processes that moved
    /// nothing are left out.
    pub fn diff(
        &mut self,
        current: impl IntoIterator<Item = (Counter, TrafficVal)>,
    ) -> BTreeMap<ProcKey, ProcDelta> {
        let mut out: BTreeMap<ProcKey, ProcDelta> = BTreeMap::new();
        for (counter, v) in current {
            let prev = self.last.insert(counter, v).unwrap_or_default();
            put(&mut out, counter, since(prev, v));
        }
        out
    }

    /// What `diff` would give for this read, leaving the last read as it
    /// is: the bytes not yet reported, for `netio top` (live.rs).
    pub fn pending(
        &self,
        current: impl IntoIterator<Item = (Counter, TrafficVal)>,
    ) -> BTreeMap<ProcKey, ProcDelta> {
        let mut out: BTreeMap<ProcKey, ProcDelta> = BTreeMap::new();
        for (counter, v) in current {
            let prev = self.last.get(&counter).copied().unwrap_or_default();
            put(&mut out, counter, since(prev, v));
        }
        out
    }

    /// Drops a counter the kernel deleted (its process is gone).
    pub fn forget(&mut self, counter: &Counter) {
        self.last.remove(counter);
    }

    /// Every counter's last read, for the next netio (state.rs).
    pub fn last(&self) -> impl Iterator<Item = (&Counter, &TrafficVal)> {
        self.last.iter()
    }

    /// Takes the last netio's last reads as this one's (state.rs).
    pub fn restore(&mut self, last: impl IntoIterator<Item = (Counter, TrafficVal)>) {
        self.last = last.into_iter().collect();
    }
}

/// A counter's growth from `prev` to `v`; all of `v` if it went down.
fn since(prev: TrafficVal, v: TrafficVal) -> TrafficVal {
    TrafficVal {
        sent: v.sent.checked_sub(prev.sent).unwrap_or(v.sent),
        received: v.received.checked_sub(prev.received).unwrap_or(v.received),
    }
}

/// Adds one counter's delta to its process's, unless it is nothing.
fn put(out: &mut BTreeMap<ProcKey, ProcDelta>, counter: Counter, delta: TrafficVal) {
    if delta == TrafficVal::default() {
        return;
    }
    let d = out.entry(counter.process).or_insert_with(|| ProcDelta {
        target: counter.target,
        total: TrafficVal::default(),
        peers: Vec::new(),
    });
    add(&mut d.total, delta);
    d.peers.push((counter.peer, delta));
}

/// One interval's sums: per target, and per target and peer.
#[derive(Debug, Default)]
pub struct Totals {
    pub targets: HashMap<TargetId, TrafficVal>,
    pub peers: HashMap<(TargetId, PeerAddr), TrafficVal>,
}

impl Totals {
    pub fn add(&mut self, d: &ProcDelta) {
        add(self.targets.entry(d.target).or_default(), d.total);
        for (peer, v) in &d.peers {
            add(self.peers.entry((d.target, *peer)).or_default(), *v);
        }
    }

    /// Bytes the target counted without knowing whose or with whom: in
    /// its totals, and its peer `other`.
    pub fn add_unattributed(&mut self, target: TargetId, v: TrafficVal) {
        add(self.targets.entry(target).or_default(), v);
        add(self.peers.entry((target, PeerAddr::Other)).or_default(), v);
    }

    pub fn target(&self, target: TargetId) -> TrafficVal {
        self.targets.get(&target).copied().unwrap_or_default()
    }
}

/// The peer records of one process, in order: the busiest `top`, then
/// `other` with the rest folded, if there is a rest.
pub fn peer_rows(peers: Vec<(PeerAddr, TrafficVal)>, top: usize) -> Vec<(PeerAddr, TrafficVal)> {
    let (shown, other) = top_peers(peers, top);
    shown
        .into_iter()
        .chain(other.map(|v| (PeerAddr::Other, v)))
        .collect()
}

/// A target's peers over all its processes (`totals.peers`), as its
/// records give them: the busiest `top`, then `other` with the rest.
pub fn target_peer_rows(
    totals: &Totals,
    target: TargetId,
    top: usize,
) -> Vec<(PeerAddr, TrafficVal)> {
    let peers = totals
        .peers
        .iter()
        .filter(|((t, _), _)| *t == target)
        .map(|((_, p), v)| (*p, *v))
        .collect();
    peer_rows(peers, top)
}

/// Splits `items` into the `top` busiest (by bytes both ways, ties in the
/// order given), kept in the order given, and the rest.
pub fn busiest<T>(items: Vec<T>, top: usize, bytes: impl Fn(&T) -> TrafficVal) -> (Vec<T>, Vec<T>) {
    if items.len() <= top {
        return (items, Vec::new());
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| {
        let v = bytes(&items[i]);
        (std::cmp::Reverse(v.sent as u128 + v.received as u128), i)
    });
    let mut shown = vec![false; items.len()];
    order.iter().take(top).for_each(|&i| shown[i] = true);
    let (mut kept, mut rest) = (Vec::new(), Vec::new());
    for (item, shown) in items.into_iter().zip(shown) {
        if shown {
            kept.push(item);
        } else {
            rest.push(item);
        }
    }
    (kept, rest)
}

/// A process's peers for its records: the `top` busiest (by bytes both
/// ways, ties by address) each on its own, and the rest, with the bytes of
/// `other` (peers the kernel could not tell apart), folded into one sum,
/// `None` when it is zero.
pub fn top_peers(
    mut peers: Vec<(PeerAddr, TrafficVal)>,
    top: usize,
) -> (Vec<(PeerAddr, TrafficVal)>, Option<TrafficVal>) {
    peers.sort_by(|a, b| {
        (b.1.sent + b.1.received)
            .cmp(&(a.1.sent + a.1.received))
            .then(a.0.cmp(&b.0))
    });
    let mut shown = Vec::new();
    let mut other = TrafficVal::default();
    for (peer, v) in peers {
        if shown.len() < top && peer != PeerAddr::Other {
            shown.push((peer, v));
        } else {
            add(&mut other, v);
        }
    }
    let other = (other != TrafficVal::default()).then_some(other);
    (shown, other)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn ip(last: u8) -> PeerAddr {
        PeerAddr::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    fn v(sent: u64, received: u64) -> TrafficVal {
        TrafficVal { sent, received }
    }

    fn counter(tgid: u32, peer: PeerAddr) -> Counter {
        Counter {
            process: (tgid, 1),
            target: TargetId::from(0u16),
            peer,
        }
    }

    #[test]
    fn pending_is_what_diff_gives_and_leaves_the_last_read() {
        let mut c = Counters::default();
        c.diff([(counter(1, ip(1)), v(10, 1))]);
        let read = [(counter(1, ip(1)), v(15, 1)), (counter(2, ip(2)), v(3, 0))];
        let pending = c.pending(read);
        assert_eq!(pending[&(1, 1)].total, v(5, 0));
        assert_eq!(pending[&(2, 1)].total, v(3, 0));
        assert_eq!(c.pending(read), pending, "pending changed the last read");
        assert_eq!(c.diff(read), pending);
        assert!(c.pending(read).is_empty());
    }

    #[test]
    fn per_second_rounds_down_and_never_divides_by_zero() {
        assert_eq!(per_second(1000, 1000), 1000);
        assert_eq!(per_second(1999, 2000), 999);
        assert_eq!(
            per_second(5, 0),
            5000,
            "a zero-length interval counts as 1 ms"
        );
    }

    #[test]
    fn an_interval_is_the_difference_between_two_reads_grouped_by_process() {
        let mut c = Counters::default();
        let first = c.diff([
            (counter(10, ip(1)), v(100, 10)),
            (counter(10, ip(2)), v(50, 0)),
            (counter(11, ip(1)), v(0, 0)),
        ]);
        assert_eq!(first.len(), 1, "a process that moved nothing is left out");
        let d = &first[&(10, 1)];
        assert_eq!(d.total, v(150, 10));
        assert_eq!(d.peers, vec![(ip(1), v(100, 10)), (ip(2), v(50, 0))]);

        let second = c.diff([
            (counter(10, ip(1)), v(130, 10)),
            (counter(10, ip(2)), v(50, 0)),
            (counter(11, ip(1)), v(7, 3)),
        ]);
        assert_eq!(second[&(10, 1)].total, v(30, 0));
        assert_eq!(second[&(10, 1)].peers, vec![(ip(1), v(30, 0))]);
        assert_eq!(second[&(11, 1)].total, v(7, 3));
    }

    #[test]
    fn a_counter_that_went_down_was_made_again_and_counts_whole() {
        let mut c = Counters::default();
        c.diff([(counter(10, ip(1)), v(100, 100))]);
        let d = c.diff([(counter(10, ip(1)), v(40, 200))]);
        assert_eq!(d[&(10, 1)].total, v(40, 100));
    }

    #[test]
    fn a_forgotten_counter_starts_from_zero_again() {
        let mut c = Counters::default();
        c.diff([(counter(10, ip(1)), v(100, 0))]);
        c.forget(&counter(10, ip(1)));
        let d = c.diff([(counter(10, ip(1)), v(100, 0))]);
        assert_eq!(d[&(10, 1)].total, v(100, 0));
    }

    #[test]
    fn totals_sum_per_target_and_per_target_and_peer() {
        let t0 = TargetId::from(0u16);
        let t1 = TargetId::from(1u16);
        let mut totals = Totals::default();
        for (target, peers) in [
            (t0, vec![(ip(1), v(1, 2)), (ip(2), v(3, 4))]),
            (t0, vec![(ip(1), v(10, 20))]),
            (t1, vec![(ip(1), v(100, 200))]),
        ] {
            let mut total = TrafficVal::default();
            peers.iter().for_each(|(_, x)| add(&mut total, *x));
            totals.add(&ProcDelta {
                target,
                total,
                peers,
            });
        }
        assert_eq!(totals.target(t0), v(14, 26));
        assert_eq!(totals.target(t1), v(100, 200));
        assert_eq!(totals.target(TargetId::from(2u16)), v(0, 0));
        assert_eq!(totals.peers[&(t0, ip(1))], v(11, 22));
        assert_eq!(totals.peers[&(t1, ip(1))], v(100, 200));

        totals.add_unattributed(t1, v(5, 6));
        assert_eq!(totals.target(t1), v(105, 206));
        assert_eq!(totals.peers[&(t1, PeerAddr::Other)], v(5, 6));
        assert_eq!(totals.target(t0), v(14, 26), "the other target's stay");
    }

    #[test]
    fn top_peers_shows_the_busiest_and_folds_the_rest_with_other() {
        let peers = vec![
            (ip(3), v(1, 1)),
            (PeerAddr::Other, v(1000, 0)),
            (ip(1), v(5, 5)),
            (ip(2), v(0, 10)),
            (ip(4), v(100, 0)),
        ];
        let (shown, other) = top_peers(peers.clone(), 2);
        assert_eq!(shown, vec![(ip(4), v(100, 0)), (ip(1), v(5, 5))]);
        assert_eq!(other, Some(v(1001, 11)), "ip(2), ip(3) and other");

        let (shown, other) = top_peers(peers, 10);
        assert_eq!(shown.len(), 4, "never `other` on its own");
        assert_eq!(shown[1], (ip(1), v(5, 5)), "ties by address");
        assert_eq!(shown[2], (ip(2), v(0, 10)));
        assert_eq!(other, Some(v(1000, 0)));
    }

    #[test]
    fn busiest_keeps_the_top_in_their_order_and_gives_the_rest() {
        let items = vec![
            (1, v(5, 0)),
            (2, v(0, 50)),
            (3, v(1, 1)),
            (4, v(30, 30)),
            (5, v(5, 0)),
        ];
        let (kept, rest) = busiest(items.clone(), 3, |i| i.1);
        let ids = |x: &[(u32, TrafficVal)]| x.iter().map(|i| i.0).collect::<Vec<_>>();
        assert_eq!(
            ids(&kept),
            vec![1, 2, 4],
            "ties by the order given: 1 before 5"
        );
        assert_eq!(ids(&rest), vec![3, 5]);
        let (kept, rest) = busiest(items, 5, |i| i.1);
        assert_eq!((kept.len(), rest.len()), (5, 0));
    }

    #[test]
    fn a_targets_peers_are_summed_over_its_processes_and_folded_past_the_top() {
        let (t0, t1) = (TargetId::from(0u16), TargetId::from(1u16));
        let mut totals = Totals::default();
        for (target, peers) in [
            (t0, vec![(ip(1), v(10, 0)), (ip(2), v(1, 0))]),
            (t0, vec![(ip(1), v(10, 0)), (ip(3), v(2, 0))]),
            (t0, vec![(PeerAddr::Other, v(7, 0))]),
            (t1, vec![(ip(4), v(100, 0))]),
        ] {
            let mut total = TrafficVal::default();
            peers.iter().for_each(|(_, x)| add(&mut total, *x));
            totals.add(&ProcDelta {
                target,
                total,
                peers,
            });
        }
        assert_eq!(
            target_peer_rows(&totals, t0, 2),
            vec![
                (ip(1), v(20, 0)),
                (ip(3), v(2, 0)),
                (PeerAddr::Other, v(8, 0))
            ],
            "one client of two processes is one row; the rest and `other` fold"
        );
        assert_eq!(target_peer_rows(&totals, t1, 2), vec![(ip(4), v(100, 0))]);
    }

    #[test]
    fn top_peers_without_a_rest_has_no_other() {
        let (shown, other) = top_peers(vec![(ip(1), v(1, 0))], 10);
        assert_eq!(shown, vec![(ip(1), v(1, 0))]);
        assert_eq!(other, None);
    }
}
