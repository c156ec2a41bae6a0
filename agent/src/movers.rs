//! Untracked processes that move bytes on a socket a tracked process owns
//! (passed to them over SCM_RIGHTS, taken with pidfd_getfd): who they are,
//! their counters' last reads, and their records. Their bytes count for the
//! owner's target, in records that name them (docs/kernels.md, "Whose
//! bytes"). The kernel keys their counters by (mover's PID, owner's
//! generation) and says who moved first, once per counter (EV_MOVED).

use std::collections::{HashMap, HashSet};

use netio_probes::{LifecycleEvent, Probes, TrafficKey, TrafficVal};

use crate::discovery::{self, Life};
use crate::interval::{self, Counter, Counters, ProcKey, Totals};
use crate::record::{Record, TrafficFields, Who};
use crate::tracking::Tracker;

/// A process that moved bytes on a tracked one's socket, as named when the
/// kernel first saw it do so.
#[derive(Debug)]
struct Mover {
    comm: String,
    uid: Option<u32>,
    exe: Option<String>,
    /// The tracked process whose socket it was (0: not known).
    owner_pid: u32,
    /// Its start time, to tell it from a later process with its PID.
    start: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Movers {
    known: HashMap<ProcKey, Mover>,
    counters: Counters,
}

fn exe_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Who `pid` is now, from /proc, with what the kernel said of it.
fn read_mover(pid: u32, comm: Option<&str>, uid: Option<u32>, owner_pid: u32) -> Mover {
    let p = discovery::read_proc(pid);
    Mover {
        comm: comm
            .map(str::to_string)
            .or_else(|| p.as_ref().map(|p| p.comm.clone()))
            .unwrap_or_else(|| "?".into()),
        uid: uid.or_else(|| uid_of(pid)),
        exe: exe_of(pid),
        owner_pid,
        start: p.map(|p| p.start),
    }
}

impl Movers {
    /// The kernel's word that `e.tgid` moved bytes on a socket of the
    /// tracked process `e.ppid` (generation `e.gen`).
    pub fn seen(&mut self, e: &LifecycleEvent) {
        let m = read_mover(e.tgid, Some(&e.comm), Some(e.uid), e.ppid);
        self.known.insert((e.tgid, e.gen), m);
    }

    /// The movers whose counters are final: their process is gone (or its
    /// PID is another's), so nothing adds to them. Decided before the
    /// counters are read.
    pub fn gone(&self, keys: &[TrafficKey]) -> HashSet<ProcKey> {
        let mut gone = HashSet::new();
        for k in keys.iter().filter(|k| k.moved) {
            let key = (k.tgid, k.gen);
            if gone.contains(&key) {
                continue;
            }
            let start = self.known.get(&key).and_then(|m| m.start);
            let now = discovery::read_proc(k.tgid);
            let alive = now.as_ref().is_some_and(|p| {
                p.life == Life::Alive && (start.is_none() || Some(p.start) == start)
            });
            if !alive {
                gone.insert(key);
            }
        }
        gone
    }

    /// This interval's bytes of every mover, added to their owners'
    /// target totals, and their records (process, and peers when `top` >
    /// 0) when `per_process`.
    #[allow(clippy::too_many_arguments)]
    pub fn interval(
        &mut self,
        current: &[(TrafficKey, TrafficVal)],
        tracker: &Tracker,
        base: TrafficFields<'_>,
        top: usize,
        per_process: bool,
        totals: &mut Totals,
        records: &mut Vec<Record>,
    ) {
        let moved = current.iter().filter(|(k, _)| k.moved).map(|(k, v)| {
            let c = Counter {
                process: (k.tgid, k.gen),
                target: k.target,
                peer: k.peer,
            };
            (c, *v)
        });
        for ((pid, gen), delta) in self.counters.diff(moved) {
            let m = self
                .known
                .entry((pid, gen))
                .or_insert_with(|| read_mover(pid, None, None, 0));
            if m.owner_pid != 0 && tracker.ignored(&(m.owner_pid, gen)) {
                continue;
            }
            totals.add(&delta);
            if !per_process {
                continue;
            }
            let fields = TrafficFields {
                target: tracker.target_name(delta.target),
                sent: delta.total.sent,
                received: delta.total.received,
                ..base
            };
            let who = Who {
                pid,
                comm: &m.comm,
                uid: m.uid,
                exe: m.exe.as_deref(),
            };
            records.push(Record::moved_traffic(&fields, &who, m.owner_pid, None));
            if top == 0 {
                continue;
            }
            for (peer, v) in interval::peer_rows(delta.peers, top) {
                let f = TrafficFields {
                    sent: v.sent,
                    received: v.received,
                    ..fields
                };
                let peer = peer.to_string();
                records.push(Record::moved_traffic(&f, &who, m.owner_pid, Some(&peer)));
            }
        }
    }

    /// Drops the counters of the movers in `gone`, read for the last time.
    pub fn forget(
        &mut self,
        probes: &Probes,
        current: &[(TrafficKey, TrafficVal)],
        gone: &HashSet<ProcKey>,
    ) {
        for (k, _) in current.iter().filter(|(k, _)| k.moved) {
            if gone.contains(&(k.tgid, k.gen)) {
                probes.delete_traffic(k);
                self.counters.forget(&Counter {
                    process: (k.tgid, k.gen),
                    target: k.target,
                    peer: k.peer,
                });
            }
        }
        for key in gone {
            self.known.remove(key);
        }
    }
}
