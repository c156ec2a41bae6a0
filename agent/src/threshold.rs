//! Rate thresholds: a pure state machine per watched rate. Each interval
//! the sampling loop hands in the rates it measured; what comes out is the
//! notices to write (exceeded, reminder, recovered). No kernel, no clock:
//! interval lengths come in as numbers, so every rule is unit-tested.
//!
//! The rules (docs/config.md): a rate that stays above its limit for the
//! sustain time is a breach; while it lasts a reminder goes out at most
//! every `reminder`; it ends once the rate has stayed at or below the limit
//! for the sustain time again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use netio_probes::{PeerAddr, TargetId, TrafficVal};

use crate::config::Transports;
use crate::interval::per_second as rate;
use crate::record::Kind;

/// Which way the watched bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// One watched rate: a target's total, or its traffic with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Watch {
    pub target: TargetId,
    pub peer: Option<PeerAddr>,
    pub direction: Direction,
}

/// A limit on one rate, from a target's `[target.threshold]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Bytes per second.
    pub rate: u64,
    pub sustain: Duration,
    pub reminder: Duration,
}

/// A target's limits, as the config gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub sent: Option<u64>,
    pub received: Option<u64>,
    pub peer_sent: Option<u64>,
    pub peer_received: Option<u64>,
    pub transport: Transports,
    pub sustain: Duration,
    pub reminder: Duration,
}

/// One interval's measurement of one watched rate against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub watch: Watch,
    /// The rate measured over the interval, bytes per second.
    pub rate: u64,
    pub limit: Limit,
}

/// A notice to write: what happened to which rate, for how long the rate
/// has been above (exceeded, reminder) or below (recovered) its limit, and
/// how long the breach has lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    pub check: Check,
    pub duration_ms: u64,
    /// From the start of the first interval above the limit to the end of
    /// the last one, dips too short to recover included.
    pub breach_ms: u64,
}

/// Where one rate stands against its limit, in interval time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Breach {
    above_ms: u64,
    below_ms: u64,
    active: bool,
    since_notice_ms: u64,
    /// While active: the breach so far, up to the end of its last
    /// interval above the limit.
    breach_ms: u64,
}

/// What one interval gave: a notice's kind, its duration and the breach's.
type Observed = Option<(Kind, u64, u64)>;

impl Breach {
    /// One interval of `interval_ms` at `rate`; `reached` says whether an
    /// elapsed time counts as a wanted one.
    fn observe(
        &mut self,
        rate: u64,
        limit: &Limit,
        interval_ms: u64,
        reached: impl Fn(u64, u64) -> bool,
    ) -> Observed {
        let sustain_ms = limit.sustain.as_millis() as u64;
        if rate > limit.rate {
            if self.active {
                // A dip too short to recover is part of the breach.
                self.breach_ms += self.below_ms + interval_ms;
            }
            self.below_ms = 0;
            self.above_ms += interval_ms;
            if !self.active && reached(self.above_ms, sustain_ms) {
                self.active = true;
                self.since_notice_ms = 0;
                self.breach_ms = self.above_ms;
                return Some((Kind::ThresholdExceeded, self.above_ms, self.breach_ms));
            }
            if self.active {
                self.since_notice_ms += interval_ms;
                if reached(self.since_notice_ms, limit.reminder.as_millis() as u64) {
                    self.since_notice_ms = 0;
                    return Some((Kind::ThresholdReminder, self.above_ms, self.breach_ms));
                }
            }
            return None;
        }
        self.above_ms = 0;
        if self.active {
            self.below_ms += interval_ms;
            if reached(self.below_ms, sustain_ms) {
                self.active = false;
                let below = self.below_ms;
                self.below_ms = 0;
                return Some((Kind::ThresholdRecovered, below, self.breach_ms));
            }
        }
        None
    }

    /// A rate that is quiet and below its limit needs no memory.
    fn worth_keeping(&self) -> bool {
        self.active || self.above_ms > 0
    }
}

/// Every watched rate's state between intervals.
#[derive(Debug, Default)]
pub struct Thresholds {
    breaches: HashMap<Watch, Breach>,
}

impl Thresholds {
    /// Where `watch` stands after the last interval, for `netio top`:
    /// "above" its limit (not yet for the sustain time), in "breach", or
    /// "recovering" (in breach and below again); None when quiet.
    pub fn phase(&self, watch: &Watch) -> Option<&'static str> {
        let b = self.breaches.get(watch)?;
        match (b.active, b.below_ms > 0) {
            (true, false) => Some("breach"),
            (true, true) => Some("recovering"),
            (false, _) if b.above_ms > 0 => Some("above"),
            _ => None,
        }
    }

    /// The checks of one interval for one target: its totals, and every
    /// peer seen now or with a breach open (its rate is zero when it moved
    /// nothing this interval). `other` too: it sums the peers a full map
    /// could not tell apart, and one of them may be over the limit on its
    /// own, so the sum is held to the per-peer limit rather than let a
    /// heavy client hide in it (docs/config.md).
    pub fn checks(
        &self,
        target: TargetId,
        limits: &Limits,
        total: TrafficVal,
        peers: &HashMap<(TargetId, PeerAddr), TrafficVal>,
        interval_ms: u64,
    ) -> Vec<Check> {
        let mut out = Vec::new();
        let mut push = |peer, direction, limit: Option<u64>, bytes| {
            if let Some(rate_limit) = limit {
                out.push(Check {
                    watch: Watch {
                        target,
                        peer,
                        direction,
                    },
                    rate: rate(bytes, interval_ms),
                    limit: Limit {
                        rate: rate_limit,
                        sustain: limits.sustain,
                        reminder: limits.reminder,
                    },
                });
            }
        };
        // The target's bytes of the transports it watches: its total less
        // its peers' over the others.
        let counted = |p: &PeerAddr| limits.transport.counts(p.transport());
        let mut total = total;
        for (_, v) in peers
            .iter()
            .filter(|((t, p), _)| *t == target && !counted(p))
        {
            total.sent = total.sent.saturating_sub(v.sent);
            total.received = total.received.saturating_sub(v.received);
        }
        push(None, Direction::Sent, limits.sent, total.sent);
        push(None, Direction::Received, limits.received, total.received);
        let mut seen: Vec<PeerAddr> = peers
            .keys()
            .filter(|(t, p)| *t == target && counted(p))
            .map(|(_, p)| *p)
            .chain(
                self.breaches
                    .keys()
                    .filter(|w| w.target == target)
                    .filter_map(|w| w.peer),
            )
            .collect();
        seen.sort();
        seen.dedup();
        for peer in seen {
            let v = peers.get(&(target, peer)).copied().unwrap_or_default();
            push(Some(peer), Direction::Sent, limits.peer_sent, v.sent);
            push(
                Some(peer),
                Direction::Received,
                limits.peer_received,
                v.received,
            );
        }
        out
    }

    /// Applies one interval's checks, in order, and returns the notices
    /// they give. Rates not checked this interval are forgotten.
    ///
    /// Interval lengths are measured, and come out a millisecond short as
    /// often as not: a span counts as reached within `half_interval_ms`, so
    /// `for = "2s"` with 1s intervals means two intervals, not three.
    pub fn apply(
        &mut self,
        checks: &[Check],
        interval_ms: u64,
        half_interval_ms: u64,
    ) -> Vec<Notice> {
        let reached = |elapsed: u64, wanted: u64| elapsed + half_interval_ms >= wanted;
        let mut keep = HashSet::new();
        let mut notices = Vec::new();
        for check in checks {
            let breach = self.breaches.entry(check.watch).or_default();
            let notice = breach.observe(check.rate, &check.limit, interval_ms, reached);
            if breach.worth_keeping() {
                keep.insert(check.watch);
            }
            if let Some((kind, duration_ms, breach_ms)) = notice {
                notices.push(Notice {
                    kind,
                    check: *check,
                    duration_ms,
                    breach_ms,
                });
            }
        }
        self.breaches.retain(|w, _| keep.contains(w));
        notices
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    const SECOND: u64 = 1000;

    fn target() -> TargetId {
        TargetId::from(0u16)
    }

    fn peer(last: u8) -> PeerAddr {
        PeerAddr::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    fn limits(sent: u64, sustain_s: u64, reminder_s: u64) -> Limits {
        Limits {
            sent: Some(sent),
            sustain: Duration::from_secs(sustain_s),
            reminder: Duration::from_secs(reminder_s),
            ..Limits::default()
        }
    }

    #[test]
    fn the_phase_goes_above_breach_recovering_quiet() {
        let mut th = Thresholds::default();
        let l = limits(100, 2, 60);
        let w = Watch {
            target: target(),
            peer: None,
            direction: Direction::Sent,
        };
        let mut phases = Vec::new();
        for bytes in [0, 500, 500, 500, 0, 0, 0] {
            run(&mut th, &l, &[bytes]);
            phases.push(th.phase(&w));
        }
        let above = Some("above");
        let (breach, recovering) = (Some("breach"), Some("recovering"));
        assert_eq!(
            phases,
            [None, above, breach, breach, recovering, None, None]
        );
    }

    /// Runs the target's sent rate through `rates` (bytes per one-second
    /// interval) and returns each interval's notices as (kind, duration).
    fn run(th: &mut Thresholds, l: &Limits, rates: &[u64]) -> Vec<Vec<(Kind, u64)>> {
        rates
            .iter()
            .map(|&bytes| {
                let total = TrafficVal {
                    sent: bytes,
                    received: 0,
                };
                let checks = th.checks(target(), l, total, &HashMap::new(), SECOND);
                th.apply(&checks, SECOND, SECOND / 2)
                    .into_iter()
                    .map(|n| (n.kind, n.duration_ms))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_breach_fires_once_after_the_sustain_time_reminds_and_recovers() {
        let mut th = Thresholds::default();
        let l = limits(100, 3, 2);
        let got = run(&mut th, &l, &[200, 200, 200, 200, 200, 50, 50, 50, 50]);
        use Kind::*;
        assert_eq!(
            got,
            vec![
                vec![],
                vec![],
                vec![(ThresholdExceeded, 3000)],
                vec![],
                vec![(ThresholdReminder, 5000)],
                vec![],
                vec![],
                vec![(ThresholdRecovered, 3000)],
                vec![],
            ]
        );
    }

    /// Like `run`, with each notice's breach length.
    fn breaches(th: &mut Thresholds, l: &Limits, rates: &[u64]) -> Vec<(usize, Kind, u64)> {
        let mut out = Vec::new();
        for (i, &bytes) in rates.iter().enumerate() {
            let total = TrafficVal {
                sent: bytes,
                received: 0,
            };
            let checks = th.checks(target(), l, total, &HashMap::new(), SECOND);
            for n in th.apply(&checks, SECOND, SECOND / 2) {
                out.push((i, n.kind, n.breach_ms));
            }
        }
        out
    }

    #[test]
    fn the_breach_lasts_from_its_first_interval_above_to_its_last_dips_included() {
        let mut th = Thresholds::default();
        // Above from #0, a 1 s dip (too short to recover) at #4, above
        // again to #6, then below: the breach is #0..=#6, 7 s.
        let rates = [200, 200, 200, 200, 0, 200, 200, 0, 0, 0, 0];
        use Kind::*;
        assert_eq!(
            breaches(&mut th, &limits(100, 3, 3), &rates),
            vec![
                (2, ThresholdExceeded, 3000),
                (6, ThresholdReminder, 7000),
                (9, ThresholdRecovered, 7000),
            ]
        );
        // A new breach starts from nothing.
        let got = breaches(&mut th, &limits(100, 1, 60), &[200, 0]);
        assert_eq!(
            got,
            vec![(0, ThresholdExceeded, 1000), (1, ThresholdRecovered, 1000)]
        );
    }

    #[test]
    fn a_rate_equal_to_its_limit_is_not_above_it() {
        let mut th = Thresholds::default();
        let got = run(&mut th, &limits(100, 1, 60), &[100, 100, 100]);
        assert!(got.iter().all(Vec::is_empty), "{got:?}");
    }

    #[test]
    fn a_dip_below_the_limit_restarts_the_sustain_time() {
        let mut th = Thresholds::default();
        let got = run(&mut th, &limits(100, 3, 60), &[200, 200, 0, 200, 200, 200]);
        let fired: Vec<usize> = (0..got.len()).filter(|&i| !got[i].is_empty()).collect();
        assert_eq!(fired, vec![5], "{got:?}");
        assert_eq!(got[5], vec![(Kind::ThresholdExceeded, 3000)]);
    }

    #[test]
    fn a_rise_during_recovery_keeps_the_breach_open() {
        let mut th = Thresholds::default();
        let got = run(
            &mut th,
            &limits(100, 2, 600),
            &[200, 200, 0, 200, 0, 0, 200],
        );
        use Kind::*;
        assert_eq!(got[1], vec![(ThresholdExceeded, 2000)]);
        assert!(got[2].is_empty() && got[3].is_empty(), "{got:?}");
        assert_eq!(got[5], vec![(ThresholdRecovered, 2000)]);
        assert!(
            got[6].is_empty(),
            "a new breach needs the sustain time again"
        );
    }

    #[test]
    fn an_interval_a_millisecond_short_still_counts_as_whole() {
        let mut th = Thresholds::default();
        let l = limits(100, 2, 600);
        let total = TrafficVal {
            sent: 1000,
            received: 0,
        };
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let checks = th.checks(target(), &l, total, &HashMap::new(), 999);
            kinds.extend(
                th.apply(&checks, 999, SECOND / 2)
                    .into_iter()
                    .map(|n| n.kind),
            );
        }
        assert_eq!(kinds, vec![Kind::ThresholdExceeded]);
    }

    #[test]
    fn every_seen_peer_is_checked_and_other_too() {
        let th = Thresholds::default();
        let l = Limits {
            peer_sent: Some(10),
            sustain: Duration::from_secs(1),
            reminder: Duration::from_secs(60),
            ..Limits::default()
        };
        let v = TrafficVal {
            sent: 50,
            received: 50,
        };
        let other_target = TargetId::from(1u16);
        let peers = HashMap::from([
            ((target(), peer(2)), v),
            ((target(), peer(1)), v),
            ((target(), PeerAddr::Other), v),
            ((other_target, peer(3)), v),
        ]);
        let checks = th.checks(target(), &l, TrafficVal::default(), &peers, SECOND);
        let watched: Vec<Option<PeerAddr>> = checks.iter().map(|c| c.watch.peer).collect();
        assert_eq!(
            watched,
            vec![Some(peer(1)), Some(peer(2)), Some(PeerAddr::Other)]
        );
        assert!(checks.iter().all(|c| c.watch.direction == Direction::Sent));
        assert!(checks.iter().all(|c| c.rate == 50));
    }

    #[test]
    fn a_threshold_on_one_transport_counts_its_bytes_and_those_of_unknown_transport() {
        let th = Thresholds::default();
        let unix = PeerAddr::Unix(netio_probes::UnixPeer {
            pid: 42,
            uid: 33,
            started_ns: 1,
        });
        let bytes = |sent| TrafficVal { sent, received: 0 };
        let peers = HashMap::from([
            ((target(), peer(1)), bytes(100)),
            ((target(), unix), bytes(900)),
            ((target(), PeerAddr::Other), bytes(5)),
        ]);
        let checked = |transport| {
            let l = Limits {
                sent: Some(1),
                peer_sent: Some(1),
                transport,
                ..limits(1, 1, 60)
            };
            let checks = th.checks(target(), &l, bytes(1005), &peers, SECOND);
            let total = checks.iter().find(|c| c.watch.peer.is_none()).unwrap().rate;
            let mut watched: Vec<PeerAddr> = checks.iter().filter_map(|c| c.watch.peer).collect();
            watched.sort();
            (total, watched)
        };
        assert_eq!(
            checked(Transports::All),
            (1005, vec![peer(1), unix, PeerAddr::Other])
        );
        assert_eq!(
            checked(Transports::Tcp),
            (105, vec![peer(1), PeerAddr::Other])
        );
        assert_eq!(
            checked(Transports::Unix),
            (905, vec![unix, PeerAddr::Other])
        );
    }

    #[test]
    fn a_heavy_client_hidden_in_other_breaches_the_per_peer_limit() {
        let mut th = Thresholds::default();
        let l = Limits {
            peer_sent: Some(1000),
            sustain: Duration::from_secs(1),
            reminder: Duration::from_secs(60),
            ..Limits::default()
        };
        let light = TrafficVal {
            sent: 10,
            received: 0,
        };
        let heavy = TrafficVal {
            sent: 500_000,
            received: 0,
        };
        let peers = HashMap::from([
            ((target(), peer(1)), light),
            ((target(), PeerAddr::Other), heavy),
        ]);
        let checks = th.checks(target(), &l, TrafficVal::default(), &peers, SECOND);
        let n = th.apply(&checks, SECOND, SECOND / 2);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].kind, Kind::ThresholdExceeded);
        assert_eq!(n[0].check.watch.peer, Some(PeerAddr::Other));
        assert_eq!(n[0].check.rate, 500_000);
    }

    #[test]
    fn a_peer_with_an_open_breach_is_checked_at_zero_when_silent_and_recovers() {
        let mut th = Thresholds::default();
        let l = Limits {
            peer_received: Some(10),
            sustain: Duration::from_secs(1),
            reminder: Duration::from_secs(60),
            ..Limits::default()
        };
        let loud = HashMap::from([(
            (target(), peer(7)),
            TrafficVal {
                sent: 0,
                received: 100,
            },
        )]);
        let checks = th.checks(target(), &l, TrafficVal::default(), &loud, SECOND);
        let n = th.apply(&checks, SECOND, SECOND / 2);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].kind, Kind::ThresholdExceeded);
        assert_eq!(n[0].check.watch.peer, Some(peer(7)));
        assert_eq!(n[0].check.watch.direction, Direction::Received);

        let checks = th.checks(target(), &l, TrafficVal::default(), &HashMap::new(), SECOND);
        assert_eq!(checks.len(), 1, "the silent peer is still watched");
        assert_eq!(checks[0].rate, 0);
        let n = th.apply(&checks, SECOND, SECOND / 2);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].kind, Kind::ThresholdRecovered);
        let checks = th.checks(target(), &l, TrafficVal::default(), &HashMap::new(), SECOND);
        assert!(checks.is_empty(), "recovered and quiet: forgotten");
    }

    #[test]
    fn a_breach_whose_check_stops_is_forgotten() {
        let mut th = Thresholds::default();
        let l = limits(100, 1, 60);
        let got = run(&mut th, &l, &[200]);
        assert_eq!(got[0], vec![(Kind::ThresholdExceeded, 1000)]);
        // The threshold is removed (a reload): no checks, nothing kept.
        assert!(th.apply(&[], SECOND, SECOND / 2).is_empty());
        let got = run(&mut th, &l, &[200]);
        assert_eq!(got[0], vec![(Kind::ThresholdExceeded, 1000)], "fires anew");
    }
}
