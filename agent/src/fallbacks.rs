//! The targets' fallback counters, interval by interval: bytes the kernel
//! counted for a target when the full traffic map had no entry for them,
//! not even their process's `other` (docs/kernels.md, "When the traffic
//! map is full"). They count in the target's totals and, as `other`, in its
//! per-peer thresholds; what is lost is which process and peer they were,
//! which a `degraded` record says.

use std::collections::HashMap;

use netio_probes::{Fallback, TargetId, TrafficVal};

/// Why a target's bytes are in no process or peer record, for its
/// `degraded` record.
pub const TARGET_FALLBACK: (&str, &str) = (
    "target_fallback",
    "the traffic map was full and a process had no entry of its own: these bytes are in the \
     target's totals and thresholds (under the peer `other`), but in no process or peer record; \
     raise capacity.processes",
);

/// One target's interval: the bytes and events of its fallback counters,
/// and at least how many peers went to `other` or here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetInterval {
    pub target: TargetId,
    pub bytes: TrafficVal,
    pub events: u64,
    pub peers_folded: u64,
}

/// The last read of each target's fallback counters.
#[derive(Debug, Default)]
pub struct Fallbacks {
    last: HashMap<TargetId, Fallback>,
}

impl Fallbacks {
    /// Each target's last read, for the next netio (state.rs).
    pub fn last(&self) -> impl Iterator<Item = (&TargetId, &Fallback)> {
        self.last.iter()
    }

    /// Takes the last netio's last reads as this one's (state.rs).
    pub fn restore(&mut self, last: impl IntoIterator<Item = (TargetId, Fallback)>) {
        self.last = last.into_iter().collect();
    }

    /// What each target's counters gained since the last read, from a read
    /// of them now; targets with nothing new are left out. The counters
    /// only grow (the array entry is never deleted); `peers_folded` comes
    /// per read already.
    pub fn diff(
        &mut self,
        reads: impl IntoIterator<Item = (TargetId, Fallback)>,
    ) -> Vec<TargetInterval> {
        let mut out = Vec::new();
        for (target, now) in reads {
            let last = self.last.insert(target, now).unwrap_or_default();
            let t = TargetInterval {
                target,
                bytes: TrafficVal {
                    sent: now.sent.saturating_sub(last.sent),
                    received: now.received.saturating_sub(last.received),
                },
                events: now.events.saturating_sub(last.events),
                peers_folded: now.peers_folded,
            };
            if t.bytes != TrafficVal::default() || t.events > 0 || t.peers_folded > 0 {
                out.push(t);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(sent: u64, received: u64, events: u64, peers: u64) -> Fallback {
        Fallback {
            sent,
            received,
            events,
            peers_folded: peers,
        }
    }

    #[test]
    fn an_interval_is_what_the_counters_gained_and_quiet_targets_are_left_out() {
        let (a, b) = (TargetId::from(0u16), TargetId::from(1u16));
        let mut f = Fallbacks::default();
        let first = f.diff([(a, read(100, 10, 2, 1)), (b, read(0, 0, 0, 0))]);
        assert_eq!(
            first,
            vec![TargetInterval {
                target: a,
                bytes: TrafficVal {
                    sent: 100,
                    received: 10
                },
                events: 2,
                peers_folded: 1,
            }]
        );
        let second = f.diff([(a, read(100, 10, 2, 0)), (b, read(5, 0, 1, 0))]);
        assert_eq!(second.len(), 1, "a gained nothing: {second:?}");
        assert_eq!(second[0].target, b);
        assert_eq!(second[0].bytes.sent, 5);
        let third = f.diff([(a, read(130, 10, 3, 2))]);
        assert_eq!(
            (third[0].bytes.sent, third[0].events, third[0].peers_folded),
            (30, 1, 2)
        );
    }

    #[test]
    fn peers_folded_alone_is_an_interval_to_report() {
        // Bytes that went to a process's `other` entry, not here: the
        // folded peers still tell the `other` threshold how many it sums.
        let mut f = Fallbacks::default();
        let got = f.diff([(TargetId::from(3u16), read(0, 0, 0, 4))]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].peers_folded, 4);
        assert_eq!(got[0].bytes, TrafficVal::default());
    }
}
