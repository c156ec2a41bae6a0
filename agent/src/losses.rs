//! What the kernel side could not count or deliver in an interval, from
//! its loss counters (which only grow): each kind that moved becomes one
//! `degraded` record, so no loss is silent.

use netio_probes::Stats;

/// One kind of loss in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub reason: &'static str,
    pub count: u64,
    pub lost_bytes: Option<u64>,
    pub detail: &'static str,
}

/// The losses between two reads of the counters, in a fixed order.
pub fn between(last: &Stats, now: &Stats) -> Vec<Loss> {
    let loss = |reason, count, lost_bytes, detail| Loss {
        reason,
        count,
        lost_bytes,
        detail,
    };
    [
        loss(
            "peer_map_full",
            now.peer_overflow - last.peer_overflow,
            None,
            "new peers were counted in the peer record `other`; raise capacity.peers",
        ),
        loss(
            "bytes_lost",
            now.lost_events - last.lost_events,
            Some(now.lost_bytes - last.lost_bytes),
            "the traffic map was full and a process had no fallback entry; raise capacity.processes",
        ),
        loss(
            "process_map_full",
            now.track_full - last.track_full,
            None,
            "new processes of a target could not be tracked; raise capacity.processes",
        ),
        loss(
            "events_dropped",
            now.events_dropped - last.events_dropped,
            None,
            "process events were lost; the next /proc rescan recovers the tracked set",
        ),
        loss(
            "stash_full",
            now.stash_full - last.stash_full,
            None,
            "calls in flight could not be paired with their return",
        ),
        loss(
            "socket_owner_map_full",
            now.owner_full - last.owner_full,
            None,
            "sockets of tracked processes got no owner: bytes other processes move on them \
             are not counted; raise capacity.peers",
        ),
    ]
    .into_iter()
    .filter(|l| l.count > 0)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kinds_that_moved_are_reported_with_their_growth() {
        let last = Stats {
            peer_overflow: 5,
            lost_events: 1,
            lost_bytes: 100,
            ..Stats::default()
        };
        let now = Stats {
            peer_overflow: 5,
            lost_events: 3,
            lost_bytes: 1100,
            stash_full: 2,
            ..Stats::default()
        };
        let got = between(&last, &now);
        let reasons: Vec<&str> = got.iter().map(|l| l.reason).collect();
        assert_eq!(reasons, vec!["bytes_lost", "stash_full"]);
        assert_eq!((got[0].count, got[0].lost_bytes), (2, Some(1000)));
        assert_eq!((got[1].count, got[1].lost_bytes), (2, None));
        assert!(between(&now, &now).is_empty());
    }
}
