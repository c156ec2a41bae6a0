//! The /proc rescan, and which processes it reads. The kernel tracks what it
//! matches at exec and fork and says so in events; /proc is read in full only
//! when something may have escaped both (at start, on reload, when what the
//! kernel matches by changed, when it dropped events, when the PIDs made since
//! the last rescan cannot be known), and otherwise only for the processes no
//! event tells of: those made since the last rescan, the ones a constraint
//! refused for now, and a slice of a slow sweep (docs/kernels.md, "When /proc
//! is read").

use std::collections::{HashMap, HashSet};
use std::fs;
use std::time::Duration;

use netio_probes::{MapError, Probes};

use super::{Appeared, Tracker};
use crate::config::Config;
use crate::discovery::{self, Life, ProcInfo};
use crate::warn::Warnings;

/// The lowest PID the kernel hands out once its counter has wrapped
/// (RESERVED_PIDS in kernel/pid.c).
const RESERVED_PIDS: u32 = 300;

/// The most PIDs made since the last rescan that are read one by one; past
/// that a full scan costs about as much.
const MAX_NEW: usize = 32_768;

/// The rolling sweep reads every process once in this long.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(60);

/// A process netio tracks already is read by the sweep in one round of
/// this many: it is read only for a changed uid, and as a check on the
/// kernel's exit hook. At 10,000 tracked processes these reads were most of
/// netio's CPU (docs/benchmarks.md, "Scale").
pub const KNOWN_ROUNDS: u64 = 5;

/// The kernel's PID counter as /proc shows it: the last PID handed out
/// (/proc/loadavg), the tasks made since boot (`processes` in /proc/stat,
/// threads included: they take PIDs too) and the tasks there are now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidClock {
    pub last_pid: u32,
    pub forks: u64,
    pub tasks: u64,
}

impl PidClock {
    pub fn read() -> Option<PidClock> {
        let loadavg = fs::read_to_string("/proc/loadavg").ok()?;
        let stat = fs::read_to_string("/proc/stat").ok()?;
        PidClock::parse(&loadavg, &stat)
    }

    fn parse(loadavg: &str, stat: &str) -> Option<PidClock> {
        let mut f = loadavg.split_ascii_whitespace().skip(3);
        let tasks = f.next()?.split_once('/')?.1.parse().ok()?;
        let last_pid = f.next()?.parse().ok()?;
        let forks = stat
            .lines()
            .find_map(|l| l.strip_prefix("processes "))?
            .trim()
            .parse()
            .ok()?;
        Some(PidClock {
            last_pid,
            forks,
            tasks,
        })
    }
}

/// The PIDs the kernel may have handed out between two readings of its
/// counter, in order; None when they cannot be known (it may have gone
/// round and handed a PID out again) or are too many to read one by one.
///
/// The kernel hands out PIDs cyclically (idr_alloc_cyclic, from the PID
/// after the last one, past those in use, up to pid_max, then from
/// RESERVED_PIDS): the new ones lie after `before.last_pid` up to
/// `now.last_pid`. Each step of the counter is a PID handed out or one in
/// use, a task there was before or one made since: while those number less
/// than the range, the counter cannot have gone round.
pub fn made_between(before: PidClock, now: PidClock, pid_max: u32) -> Option<Vec<u32>> {
    let forks = now.forks.checked_sub(before.forks)?;
    if forks == 0 {
        return Some(Vec::new());
    }
    let range = u64::from(pid_max.saturating_sub(RESERVED_PIDS));
    if forks.saturating_add(before.tasks) >= range {
        return None;
    }
    let mut pids = Vec::new();
    let mut p = before.last_pid;
    while p != now.last_pid {
        p = if p + 1 >= pid_max {
            RESERVED_PIDS
        } else {
            p + 1
        };
        pids.push(p);
        if pids.len() > MAX_NEW {
            return None;
        }
    }
    // The two files are not read at one instant, so `forks` may count a
    // PID or two of the range before or after: not a sign of anything. A
    // counter set by hand (ns_last_pid, root's) moves without handing out
    // PIDs: more to read, never fewer.
    Some(pids)
}

/// What rescans remember between intervals.
#[derive(Debug, Default)]
pub struct Rescans {
    clock: Option<PidClock>,
    events_dropped: u64,
    /// Processes first read at the last rescan, read once more: one forked
    /// then, and exec'd moments after, is what its exec made of it.
    young: HashMap<u32, u64>,
    /// Processes of a target's name or cgroup that its `user` or `exe`
    /// refused (a server that starts as root and becomes its user later):
    /// read at every rescan while they live, as before every interval.
    candidates: HashMap<u32, u64>,
    /// The rolling sweep's place in /proc, and how many processes it saw
    /// in its last round and in this one so far.
    sweep: Option<fs::ReadDir>,
    round: usize,
    seen: usize,
    rounds: u64,
}

/// What a rescan reads: everything, or these PIDs (and, from them, the
/// processes a newly tracked one forked before it was tracked).
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Full,
    /// The PIDs to read, and of them those made since the last rescan
    /// (both sorted); whether the sweep ended a round of /proc in which
    /// every tracked process is checked (one in KNOWN_ROUNDS).
    Some {
        pids: Vec<u32>,
        new: Vec<u32>,
        round_end: bool,
    },
}

impl Rescans {
    /// The plan for this rescan: full when `full` (asked for, or something
    /// the kernel matches by changed) or when the kernel dropped events
    /// since the last one, or the PIDs made meanwhile cannot be known.
    pub fn plan(
        &mut self,
        full: bool,
        events_dropped: u64,
        pid_max: u32,
        interval: Duration,
    ) -> Plan {
        let dropped = events_dropped != self.events_dropped;
        self.events_dropped = events_dropped;
        let now = PidClock::read();
        let before = std::mem::replace(&mut self.clock, now);
        let made = match (before, now) {
            (Some(b), Some(n)) => made_between(b, n, pid_max),
            _ => None,
        };
        let Some(made) = made.filter(|_| !full && !dropped) else {
            return Plan::Full;
        };
        let mut pids = made.clone();
        let mut new = made;
        new.sort_unstable();
        pids.extend(self.young.drain().map(|(pid, _)| pid));
        pids.extend(self.candidates.keys().copied());
        let rounds = self.rounds;
        pids.extend(self.sweep_slice(interval));
        pids.sort_unstable();
        pids.dedup();
        Plan::Some {
            pids,
            new,
            round_end: self.rounds != rounds && self.rounds.is_multiple_of(KNOWN_ROUNDS),
        }
    }

    /// Whether the sweep reads `pid`, a process netio tracks already, in
    /// this round: each in one round of KNOWN_ROUNDS, spread by PID.
    pub fn known_turn(&self, pid: u32) -> bool {
        (u64::from(pid) + self.rounds).is_multiple_of(KNOWN_ROUNDS)
    }

    /// The next processes of the rolling sweep: enough each interval that
    /// a round of as many processes as the last takes SWEEP_PERIOD.
    fn sweep_slice(&mut self, interval: Duration) -> Vec<u32> {
        let share = interval.as_secs_f64() / SWEEP_PERIOD.as_secs_f64();
        let want = ((self.round as f64 * share).ceil() as usize).max(1);
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            let dir = match self.sweep.as_mut() {
                Some(d) => d,
                None => match fs::read_dir("/proc") {
                    Ok(d) => self.sweep.insert(d),
                    Err(_) => break,
                },
            };
            match dir.next() {
                Some(e) => {
                    let pid = e.ok().and_then(|e| e.file_name().to_str()?.parse().ok());
                    if let Some(pid) = pid {
                        out.push(pid);
                        self.seen += 1;
                    }
                }
                None => {
                    // A round ends: the next starts with the next rescan.
                    self.sweep = None;
                    self.round = std::mem::take(&mut self.seen);
                    self.rounds += 1;
                    break;
                }
            }
        }
        out
    }

    /// Learns from the processes a rescan read (`info`, every process
    /// there is after a full scan): those a constraint refused (`refused`)
    /// and those made since the last rescan that are nothing yet (`young`).
    /// Every candidate was read again, so those not refused now are done.
    pub fn learn(
        &mut self,
        info: &HashMap<u32, &ProcInfo>,
        full: bool,
        refused: &[u32],
        young: &[u32],
    ) {
        let living = |pid: &u32| {
            info.get(pid)
                .filter(|p| p.life != Life::Dead)
                .map(|p| (*pid, p.start))
        };
        if full {
            self.round = self.round.max(info.len());
        }
        self.candidates = refused.iter().filter_map(living).collect();
        self.young.extend(young.iter().filter_map(living));
    }
}

impl Tracker {
    /// Tracks what runs now and the kernel does not know yet: processes of
    /// a target by name or cgroup, and their descendants. With `announce`,
    /// each is returned for its `process_appeared` record, in order with
    /// those of lifecycle events read meanwhile. Reads all of /proc when
    /// `full` or when something may have escaped the kernel's events, else
    /// only what they do not tell of (rescan.rs).
    pub fn rescan(
        &mut self,
        probes: &Probes,
        config: &Config,
        warnings: &mut Warnings,
        announce: bool,
        full: bool,
    ) -> Result<Vec<Appeared>, MapError> {
        let changed = self.refresh_constraints(probes, config)?;
        let changed = self.refresh_cgroups(probes, config, warnings) || changed;
        let pid_max = netio_probes::pid_max();
        if pid_max > probes.pid_capacity() {
            warnings.once(format!(
                "pid_max was raised above {} after netio started: processes with PIDs past it \
                 cannot be tracked (each is reported); restart netio",
                probes.pid_capacity()
            ));
        }
        let full = full || changed || self.cgroups_unfit;
        let dropped = probes.stats().events_dropped;
        let roots: Vec<u32> = self.exec_roots.drain().collect();
        let (pids, new, round_end) =
            match self.rescans.plan(full, dropped, pid_max, config.interval) {
                Plan::Full => {
                    return Ok(self.read_and_track(probes, config, None, &[], announce).0)
                }
                Plan::Some {
                    pids,
                    new,
                    round_end,
                } => (pids, new, round_end),
            };
        if round_end {
            self.sweep(probes, &HashMap::new(), true);
        }
        let (mut out, found) = self.read_and_track(probes, config, Some(&pids), &new, announce);
        // A process tracked now, by the kernel at exec or by this rescan,
        // may have forked before: its children are the target's too.
        let roots: Vec<u32> = roots.into_iter().chain(found).collect();
        if roots.is_empty() {
            return Ok(out);
        }
        match discovery::descendants(&roots) {
            Some(below) => {
                let pids: Vec<u32> = roots.iter().copied().chain(below).collect();
                out.extend(
                    self.read_and_track(probes, config, Some(&pids), &[], announce)
                        .0,
                );
            }
            None => out.extend(self.read_and_track(probes, config, None, &[], announce).0),
        }
        Ok(out)
    }

    /// Reads `pids` from /proc (every process when None) and tracks those
    /// of a target and their descendants among them; of `new`, the PIDs
    /// made since the last rescan, those that are nothing yet are read again
    /// at the next. Returns the processes that appeared, and their PIDs.
    fn read_and_track(
        &mut self,
        probes: &Probes,
        config: &Config,
        pids: Option<&[u32]>,
        new: &[u32],
        announce: bool,
    ) -> (Vec<Appeared>, Vec<u32>) {
        let full = pids.is_none();
        // Of the PIDs asked for, those netio tracks already are read only
        // for what changes in a tracked process (most of a sweep slice on a
        // database host: at 10,000 processes, half of netio's CPU), and are
        // not matched again: tracked, they are known.
        let (procs, known): (Vec<ProcInfo>, Vec<ProcInfo>) = match pids {
            None => (discovery::scan(), Vec::new()),
            Some(pids) => {
                let (known, other): (Vec<u32>, Vec<u32>) =
                    pids.iter().partition(|&&p| self.is_known(probes, p));
                let known: Vec<u32> = known
                    .into_iter()
                    .filter(|&p| self.rescans.known_turn(p))
                    .collect();
                (
                    other
                        .iter()
                        .filter_map(|&p| discovery::read_proc(p))
                        .collect(),
                    known
                        .iter()
                        .filter_map(|&p| discovery::read_tracked_proc(p))
                        .collect(),
                )
            }
        };
        let info: HashMap<u32, &ProcInfo> =
            procs.iter().chain(&known).map(|p| (p.pid, p)).collect();
        self.sweep(probes, &info, full);
        self.refresh_who(probes, &info);
        if full {
            // A verdict is for the children a process forked before it:
            // one that is gone forks no more.
            self.verdicts
                .retain(|pid, _| info.get(pid).is_some_and(|p| p.life != Life::Dead));
        }
        let selected = discovery::select(config, &self.cgroups, &self.constraints, &procs);
        let picked: HashSet<u32> = selected.iter().map(|&(pid, _)| pid).collect();
        let mut out = Vec::new();
        let mut found = Vec::new();
        for (pid, index) in selected {
            // New to netio: tracked now, or by the kernel with its event
            // not read yet (which then finds it known, no root).
            if let Some(a) = self.track_found(probes, info[&pid], self.ids[index]) {
                found.push(pid);
                out.extend(announce.then_some(a));
            }
        }
        let refused: Vec<u32> = procs
            .iter()
            .filter(|p| p.life == Life::Alive && !picked.contains(&p.pid))
            .filter(|p| discovery::match_name(config, &self.cgroups, p).is_some())
            .map(|p| p.pid)
            .collect();
        let young: Vec<u32> = new
            .iter()
            .copied()
            .filter(|pid| !picked.contains(pid) && probes.tracked(*pid).is_none())
            .collect();
        self.rescans.learn(&info, full, &refused, &young);
        (out, found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(last_pid: u32, forks: u64, tasks: u64) -> PidClock {
        PidClock {
            last_pid,
            forks,
            tasks,
        }
    }

    #[test]
    fn the_clock_is_read_from_loadavg_and_stat() {
        let loadavg = "0.10 0.20 0.30 2/345 6789\n";
        let stat = "cpu  1 2 3\nintr 5 6\nctxt 7\nbtime 8\nprocesses 123456\nprocs_running 1\n";
        assert_eq!(
            PidClock::parse(loadavg, stat),
            Some(clock(6789, 123_456, 345))
        );
        assert_eq!(PidClock::parse(loadavg, "cpu 1\n"), None);
        assert!(PidClock::read().is_some());
    }

    #[test]
    fn the_pids_made_are_those_after_the_last_up_to_the_new_last() {
        assert_eq!(
            made_between(clock(100, 5, 50), clock(100, 5, 50), 32768),
            Some(vec![])
        );
        assert_eq!(
            made_between(clock(100, 5, 50), clock(103, 7, 52), 32768),
            Some(vec![101, 102, 103])
        );
        // Round the end of the range, back to RESERVED_PIDS.
        assert_eq!(
            made_between(clock(32766, 5, 50), clock(301, 8, 52), 32768),
            Some(vec![32767, 300, 301])
        );
    }

    #[test]
    fn pids_that_may_have_been_handed_out_twice_are_not_known() {
        // As many made, and in use, as the range: it may have gone round.
        assert_eq!(
            made_between(clock(100, 0, 20_000), clock(110, 12_468, 20_000), 32768),
            None
        );
        // Round and back near where it was: it passed the whole range.
        assert_eq!(
            made_between(clock(100, 0, 9_000), clock(102, 23_500, 9_000), 32768),
            None
        );
        // Too many to read one by one (a large pid_max).
        assert_eq!(
            made_between(clock(100, 0, 50), clock(100_000, 5, 50), 4_194_304),
            None
        );
        // The counter going back (root setting ns_last_pid) reads the
        // range round to it.
        let back = made_between(clock(5000, 0, 50), clock(4000, 1, 50), 8192).unwrap();
        assert_eq!((back.first(), back.last()), (Some(&5001), Some(&4000)));
    }

    #[test]
    fn a_full_scan_when_asked_or_when_events_were_dropped_else_what_is_new() {
        let pid_max = netio_probes::pid_max();
        let i = Duration::from_millis(100);
        let mut r = Rescans::default();
        // No clock read before: nothing says what is new.
        assert_eq!(r.plan(false, 0, pid_max, i), Plan::Full);
        assert!(matches!(r.plan(false, 0, pid_max, i), Plan::Some { .. }));
        assert_eq!(r.plan(false, 3, pid_max, i), Plan::Full);
        assert!(matches!(r.plan(false, 3, pid_max, i), Plan::Some { .. }));
        assert_eq!(r.plan(true, 3, pid_max, i), Plan::Full);
        // A child made between two plans is read as new.
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let plan = r.plan(false, 3, pid_max, i);
        let _ = child.kill();
        let _ = child.wait();
        let Plan::Some { pids, new, .. } = plan else {
            panic!("a full scan for one child: {plan:?}");
        };
        assert!(new.contains(&child.id()) && pids.contains(&child.id()));
    }

    #[test]
    fn a_tracked_process_is_read_in_one_sweep_round_of_known_rounds() {
        let mut r = Rescans::default();
        for pid in [1u32, 2, 300, 4_194_303] {
            let turns = (0..KNOWN_ROUNDS * 3)
                .filter(|&n| {
                    r.rounds = n;
                    r.known_turn(pid)
                })
                .count();
            assert_eq!(turns, 3, "pid {pid}");
        }
    }

    #[test]
    fn the_sweep_goes_round_proc_in_slices() {
        let mut r = Rescans {
            round: 0,
            ..Rescans::default()
        };
        let mut all = Vec::new();
        // One a rescan until a round ends, then as many as a round takes.
        for _ in 0..100_000 {
            let slice = r.sweep_slice(Duration::from_secs(1));
            if slice.is_empty() {
                break;
            }
            assert_eq!(slice.len(), 1);
            all.extend(slice);
        }
        assert!(all.contains(&std::process::id()));
        assert_eq!(r.round, all.len());
        let per = r.sweep_slice(SWEEP_PERIOD / 4).len();
        assert_eq!(per, r.round.div_ceil(4).min(r.round));
    }
}
