//! What the kernel side could not count or deliver in an interval, from
//! its loss counters (which only grow): each kind that moved becomes one
//! `degraded` record, so no loss is silent. And what one target could not
//! do (`Alarm`): a `degraded` record that names the target.

use netio_probes::{Stats, TargetId};

/// Something a target could not do, `count` times since the last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub reason: &'static str,
    pub target: TargetId,
    pub count: u64,
    pub detail: &'static str,
}

/// A process of the target (a child of a tracked one, or one the rescan
/// found) could not be tracked: its bytes are not counted.
pub const PROCESS_UNTRACKED: (&str, &str) = (
    "process_untracked",
    "a process of this target could not be tracked and its bytes are not counted: its PID is \
     beyond the tracked map, sized to pid_max when netio started; restart netio",
);

/// Cgroups of the target did not fit the cgroup map: processes exec'd into
/// them are found by the next /proc rescan, not at exec.
pub const CGROUP_MAP_FULL: (&str, &str) = (
    "cgroup_map_full",
    "cgroups of this target did not fit the cgroup map (sized at start): processes exec'd into \
     them are tracked from the next rescan, not from their first byte; restart netio",
);

/// Adds one `(reason, detail)` of `target` to `alarms`.
pub fn raise(
    alarms: &mut Vec<Alarm>,
    (reason, detail): (&'static str, &'static str),
    target: TargetId,
    n: u64,
) {
    match alarms
        .iter_mut()
        .find(|a| a.reason == reason && a.target == target)
    {
        Some(a) => a.count += n,
        None => alarms.push(Alarm {
            reason,
            target,
            count: n,
            detail,
        }),
    }
}

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
            "the traffic map was full and the bytes' target had no fallback counter (its id is \
             past the target_fallback array): not counted",
        ),
        loss(
            "process_map_full",
            now.track_full - last.track_full,
            None,
            "new processes of a target could not be tracked (PIDs beyond the tracked map)",
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
        loss(
            "local_client_map_full",
            now.local_full - last.local_full,
            None,
            "loopback TCP connections were not remembered: their clients show by address, \
             not by process (bytes are counted all the same)",
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
    fn alarms_add_up_by_reason_and_target() {
        let (a, b) = (TargetId::from(0), TargetId::from(1));
        let mut alarms = Vec::new();
        raise(&mut alarms, PROCESS_UNTRACKED, a, 1);
        raise(&mut alarms, PROCESS_UNTRACKED, b, 1);
        raise(&mut alarms, PROCESS_UNTRACKED, a, 2);
        raise(&mut alarms, CGROUP_MAP_FULL, a, 5);
        let got: Vec<_> = alarms
            .iter()
            .map(|x| (x.reason, x.target, x.count))
            .collect();
        assert_eq!(
            got,
            [
                ("process_untracked", a, 3),
                ("process_untracked", b, 1),
                ("cgroup_map_full", a, 5)
            ]
        );
    }

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
