//! Which processes are counted, and for which target: the registry of
//! target ids, the names and cgroups the kernel matches at exec, the /proc
//! rescan that finds what runs, and the kernel's lifecycle events (fork,
//! exec, exit) that keep the tracked set current between rescans.
//!
//! A process is who it is by its PID and start time: userspace tracks only
//! what /proc shows alive, and checks after tracking it that it is still
//! the same and alive, so that no entry outlives its process
//! (docs/kernels.md, "Which processes"). A process is final once the
//! kernel no longer tracks its (pid, generation): nothing can add to its
//! counters after that.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use netio_probes::{
    LifecycleEvent, LifecycleKind, MapError, Match, Probes, TargetId, TrafficKey, TrafficVal,
    USER_GEN_BIT,
};

use crate::config::Config;
use crate::constraint::{Constraints, FileId};
use crate::discovery::{self, Life, ProcInfo};
use crate::interval::ProcKey;
use crate::losses::{self, Alarm};
use crate::state::SavedProc;
use crate::warn::Warnings;
use rescan::Rescans;
use verdict::{verdict_at_exec, Verdict};

mod rescan;
mod verdict;

/// A tracked process as the records name it.
#[derive(Debug)]
pub struct Proc {
    /// The target its bytes count for (after a confirmed exec, not always
    /// the one its counters carry).
    pub target: TargetId,
    pub comm: String,
    /// Its effective uid and executable, as netio last learned them.
    pub uid: Option<u32>,
    pub exe: Option<String>,
    /// Its start time, where netio read it from /proc as this process.
    pub start: Option<u64>,
    /// Not a target's: its bytes are not reported (a name that only shared
    /// a long name's first 15 bytes, a PID that changed hands).
    pub ignored: bool,
    /// Bytes since it was tracked, for its exit record.
    pub total: TrafficVal,
}

/// A process newly tracked, for its `process_appeared` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appeared {
    pub target: TargetId,
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub uid: Option<u32>,
    pub exe: Option<String>,
}

#[derive(Debug, Default)]
pub struct Tracker {
    /// Target names by id. Ids are never reused while netio runs, so a
    /// reload cannot misattribute counters.
    registry: Vec<String>,
    /// The id of each of the config's targets, in its order.
    ids: Vec<TargetId>,
    /// Resolved (config target index, cgroup path) of `unit`/`cgroup` targets.
    cgroups: Vec<(usize, String)>,
    /// What the kernel's cgroup map holds: (cgroup id, target), sorted.
    cgroup_ids: Vec<(u64, TargetId)>,
    procs: HashMap<ProcKey, Proc>,
    /// Verdicts by PID, with the generation they were given to: for the
    /// fork events of children made before them, and a later exec.
    verdicts: HashMap<u32, (Verdict, u32)>,
    next_user_gen: u32,
    /// What targets could not do since the last `degraded` records.
    alarms: Vec<Alarm>,
    /// The targets' `user` and `exe` constraints as they stand now, and
    /// the uids last given to the kernel.
    constraints: Constraints,
    kernel_uids: Vec<(TargetId, Option<Vec<u32>>)>,
    /// EV_MOVED and EV_UNIX_PEER events read with the others, for
    /// `movers.rs` and `peer_names.rs`: they are of processes netio does
    /// not track.
    socket_events: Vec<LifecycleEvent>,
    /// What the rescans read, and what they remember between intervals.
    rescans: Rescans,
    /// Processes the kernel tracked anew at exec since the last rescan:
    /// children they forked before it are theirs too (`rescan`).
    exec_roots: HashSet<u32>,
    /// Some of the targets' groups are not in the kernel's cgroup map: only
    /// a full scan finds the processes exec'd into them.
    cgroups_unfit: bool,
}

impl Tracker {
    /// What the next netio needs to go on where this one stops: the target
    /// names by id, the next user generation, every tracked process.
    pub fn save(&self) -> (&[String], u32, impl Iterator<Item = SavedProc> + '_) {
        let procs = self.procs.iter().map(|(&(tgid, gen), p)| SavedProc {
            tgid,
            gen,
            target: p.target.index() as u16,
            comm: p.comm.clone(),
            uid: p.uid,
            exe: p.exe.clone(),
            start: p.start,
            ignored: p.ignored,
            sent: p.total.sent,
            received: p.total.received,
        });
        (&self.registry, self.next_user_gen, procs)
    }

    /// Takes over what the last netio saved, before the matchers are
    /// loaded: the same names get the same ids, and the processes it
    /// tracked (descendants /proc no longer ties to a target among them)
    /// are known, not found anew.
    pub fn restore(&mut self, registry: Vec<String>, next_user_gen: u32, procs: &[SavedProc]) {
        self.registry = registry;
        self.next_user_gen = next_user_gen;
        for p in procs {
            let proc = Proc {
                target: TargetId::from(p.target),
                comm: p.comm.clone(),
                uid: p.uid,
                exe: p.exe.clone(),
                start: p.start,
                ignored: p.ignored,
                total: TrafficVal {
                    sent: p.sent,
                    received: p.received,
                },
            };
            self.procs.insert((p.tgid, p.gen), proc);
        }
    }

    fn target_id(&mut self, name: &str) -> TargetId {
        let index = match self.registry.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.registry.push(name.to_string());
                self.registry.len() - 1
            }
        };
        // The config allows at most u16::MAX targets, and names are only
        // added for configured targets.
        TargetId::from(index as u16)
    }

    pub fn target_name(&self, id: TargetId) -> &str {
        self.registry
            .get(id.index())
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Every id handed out since start, configured now or not.
    pub fn registered(&self) -> impl Iterator<Item = TargetId> {
        (0..self.registry.len()).map(|i| TargetId::from(i as u16))
    }

    /// The ids of the config's targets, in its order.
    pub fn targets(&self) -> &[TargetId] {
        &self.ids
    }

    fn configured(&self, id: TargetId) -> bool {
        self.ids.contains(&id)
    }

    /// Gives every target of `config` its id and loads the names and
    /// cgroups the kernel matches at exec.
    pub fn load_matchers(
        &mut self,
        probes: &Probes,
        config: &Config,
        warnings: &mut Warnings,
    ) -> Result<(), MapError> {
        self.ids = config
            .targets
            .iter()
            .map(|t| self.target_id(&t.name))
            .collect();
        // The uids first: no name matches before its target's uids are in.
        self.refresh_constraints(probes, config)?;
        let mut names = Vec::new();
        for (t, id) in config.targets.iter().zip(&self.ids) {
            names.extend(t.process.iter().map(|p| (p.clone(), *id)));
        }
        probes.set_names(&names)?;
        self.refresh_cgroups(probes, config, warnings);
        Ok(())
    }

    /// What targets could not do since the last call, for `degraded`
    /// records that name them.
    pub fn take_alarms(&mut self) -> Vec<Alarm> {
        std::mem::take(&mut self.alarms)
    }

    /// Users may be created, and executables installed, after netio
    /// starts: the constraints are read again on every rescan. Says
    /// whether they changed.
    fn refresh_constraints(&mut self, probes: &Probes, config: &Config) -> Result<bool, MapError> {
        let constraints = Constraints::of(config);
        let changed = constraints != self.constraints;
        self.constraints = constraints;
        let uids: Vec<(TargetId, Option<Vec<u32>>)> = self
            .ids
            .iter()
            .copied()
            .zip(self.constraints.uids())
            .collect();
        if uids != self.kernel_uids {
            let lists: Vec<(TargetId, Option<&[u32]>)> =
                uids.iter().map(|(t, u)| (*t, u.as_deref())).collect();
            probes.set_uids(&lists)?;
            self.kernel_uids = uids;
        }
        Ok(changed)
    }

    fn index_of(&self, id: TargetId) -> Option<usize> {
        self.ids.iter().position(|&i| i == id)
    }

    /// Whether the process the kernel tracks as `key` passes `target`'s
    /// constraints, by what /proc shows of it (read, then checked to be it
    /// still); `kernel_exe` is the file the kernel saw it exec. What cannot
    /// be read passes no constraint.
    fn admitted(
        &self,
        probes: &Probes,
        key: ProcKey,
        target: TargetId,
        uid: Option<u32>,
        kernel_exe: Option<FileId>,
    ) -> bool {
        let Some(index) = self.index_of(target) else {
            return true;
        };
        if !self.constraints.constrained(index) {
            return true;
        }
        let now = read_tracked(probes, key);
        let uids = now.as_ref().and_then(|p| p.uids).or(uid.map(|u| (u, u)));
        let exe: Vec<FileId> = kernel_exe
            .into_iter()
            .chain(now.and_then(|p| p.exe_id))
            .collect();
        self.constraints.admits(index, uids, &exe)
    }

    /// Units may start after netio: their cgroups are resolved again on
    /// every rescan. Groups that do not fit the kernel's map are reported
    /// for their target; the others are matched all the same. Says whether
    /// the groups changed.
    fn refresh_cgroups(
        &mut self,
        probes: &Probes,
        config: &Config,
        warnings: &mut Warnings,
    ) -> bool {
        let mut resolved = Vec::new();
        let mut ids = Vec::new();
        let mut too_many = false;
        for (i, (t, &id)) in config.targets.iter().zip(&self.ids).enumerate() {
            let unit = t.unit.as_deref().map(|u| (u, discovery::unit_cgroup(u)));
            if let Some((u, None)) = unit {
                warnings.once(format!(
                    "target {}: unit {u} has no cgroup below {} (not started yet?)",
                    t.name,
                    discovery::cgroup_root()
                ));
            }
            let paths = t.cgroup.iter().cloned().chain(unit.and_then(|(_, p)| p));
            for path in paths {
                // The group and every group below it: a service may put its
                // processes in sub-cgroups (Delegate=yes).
                let found = discovery::cgroup_ids(&path);
                if found.len() >= discovery::MAX_GROUPS {
                    too_many = true;
                    warnings.once(format!(
                        "target {}: cgroup {path} has {} groups or more: processes exec'd into \
                         those past them are tracked from the next rescan, not at exec",
                        t.name,
                        discovery::MAX_GROUPS
                    ));
                }
                if found.is_empty() {
                    warnings.once(format!(
                        "target {}: cgroup {path} does not exist below {} (yet)",
                        t.name,
                        discovery::cgroup_root()
                    ));
                }
                ids.extend(found.into_iter().map(|cg| (cg, id)));
                resolved.push((i, path));
            }
        }
        // A unit restarted gets a new cgroup at the same path: compare ids.
        // Set in the config's order, so that the first targets' fit.
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        let changed = sorted != self.cgroup_ids || resolved != self.cgroups;
        let mut unfit = self.cgroups_unfit && sorted == self.cgroup_ids;
        if sorted != self.cgroup_ids {
            unfit = false;
            for (_, target) in probes.set_cgroups(&ids) {
                losses::raise(&mut self.alarms, losses::CGROUP_MAP_FULL, target, 1);
                unfit = true;
            }
            self.cgroup_ids = sorted;
        }
        self.cgroups_unfit = unfit || too_many;
        self.cgroups = resolved;
        changed
    }

    /// Tracks `p`, which /proc showed alive, for `target`, unless the
    /// kernel does already; returns it if it is new to netio.
    fn track_found(&mut self, probes: &Probes, p: &ProcInfo, target: TargetId) -> Option<Appeared> {
        let pid = p.pid;
        let (target, gen) = match probes.tracked(pid) {
            Some((_, gen)) if self.procs.contains_key(&(pid, gen)) => return None,
            // The kernel tracked it at fork or exec and its event is not
            // read yet: it appears here if /proc still shows the process
            // it read, and the event, when read, finds it known.
            Some((t, gen)) => {
                let same = discovery::identity(pid).is_some_and(|(start, _)| start == p.start);
                if !same || probes.tracked(pid) != Some((t, gen)) {
                    return None;
                }
                (t, gen)
            }
            None => {
                self.next_user_gen = (self.next_user_gen + 1) & !USER_GEN_BIT;
                let gen = USER_GEN_BIT | self.next_user_gen;
                match probes.track(pid, gen, target) {
                    Ok(true) => {}
                    // Tracked by the kernel meanwhile: its event tells.
                    Ok(false) => return None,
                    Err(e) => {
                        tell_limited!("cannot track process", "netio: {e}");
                        losses::raise(&mut self.alarms, losses::PROCESS_UNTRACKED, target, 1);
                        return None;
                    }
                }
                // The kernel's exit hook drops a process's entry when its
                // last thread exits; one put in after that would outlive
                // it. Seen alive after the insert, the process has a thread
                // that has not reached the hook yet (docs/kernels.md).
                let still = discovery::identity(pid) == Some((p.start, Life::Alive));
                if !still {
                    probes.untrack_gen(pid, gen);
                    // Whatever it counted meanwhile is not the target's.
                    self.procs.insert((pid, gen), self.proc_of(p, target, true));
                    return None;
                }
                (target, gen)
            }
        };
        self.verdicts.remove(&pid);
        self.procs
            .insert((pid, gen), self.proc_of(p, target, false));
        Some(Appeared {
            target,
            pid,
            ppid: p.ppid,
            comm: p.comm.clone(),
            uid: p.uids.map(|(_, eff)| eff),
            exe: p.exe.clone(),
        })
    }

    fn proc_of(&self, p: &ProcInfo, target: TargetId, ignored: bool) -> Proc {
        Proc {
            target,
            comm: p.comm.clone(),
            uid: p.uids.map(|(_, eff)| eff),
            exe: p.exe.clone(),
            start: Some(p.start),
            ignored,
            total: TrafficVal::default(),
        }
    }

    /// A process may change its uid (a server that starts as root) or
    /// exec: its records say who it is as of the last rescan. /proc read
    /// it as the process the kernel still tracks under its generation.
    fn refresh_who(&mut self, probes: &Probes, info: &HashMap<u32, &ProcInfo>) {
        for (&(pid, gen), proc) in self.procs.iter_mut() {
            let Some(p) = info.get(&pid).filter(|p| p.life != Life::Dead) else {
                continue;
            };
            let uid = p.uids.map(|(_, eff)| eff).or(proc.uid);
            let exe = p.exe.clone().or_else(|| proc.exe.clone());
            // Only a change costs a look at the kernel's map.
            if (uid, &exe) == (proc.uid, &proc.exe)
                || proc.ignored
                || probes.tracked(pid).map(|(_, g)| g) != Some(gen)
            {
                continue;
            }
            (proc.uid, proc.exe) = (uid, exe);
        }
    }

    /// Untracks what userspace tracked and /proc shows gone or another
    /// process now: those in `info`, or with `all` every one. The check after
    /// tracking makes this never happen; should it, no entry outlives its
    /// process by more than a round of the rolling sweep.
    fn sweep(&self, probes: &Probes, info: &HashMap<u32, &ProcInfo>, all: bool) {
        for (&(pid, gen), proc) in &self.procs {
            let Some(start) = proc.start.filter(|_| gen & USER_GEN_BIT != 0) else {
                continue;
            };
            if proc.ignored || probes.tracked(pid).map(|(_, g)| g) != Some(gen) {
                continue;
            }
            let now = match info.get(&pid) {
                Some(p) => Some((p.start, p.life)),
                None if all => discovery::identity(pid),
                None => continue,
            };
            let gone = match now {
                Some((s, life)) => s != start || life == Life::Dead,
                None => true,
            };
            if gone && probes.untrack_gen(pid, gen) {
                tell!("netio: PID {pid} was still tracked after its process ended; untracked");
            }
        }
    }

    /// Reads every lifecycle event the kernel has sent, returning the
    /// processes that appeared with them.
    pub fn drain_events(&mut self, probes: &Probes, config: &Config) -> Vec<Appeared> {
        probes
            .poll_events(Duration::ZERO)
            .into_iter()
            .filter_map(|e| self.handle_event(probes, config, e))
            .collect()
    }

    fn handle_event(
        &mut self,
        probes: &Probes,
        config: &Config,
        e: LifecycleEvent,
    ) -> Option<Appeared> {
        if matches!(
            e.kind,
            LifecycleKind::Moved | LifecycleKind::UnixPeer | LifecycleKind::LocalClient
        ) {
            self.socket_events.push(e);
            return None;
        }
        if e.gen == 0 && e.kind != LifecycleKind::Exit {
            // The kernel could not track it (its PID is beyond the tracked
            // map): an alarm for the target it was to count for.
            losses::raise(&mut self.alarms, losses::PROCESS_UNTRACKED, e.target, 1);
            return None;
        }
        let key = (e.tgid, e.gen);
        let is_new = !self.procs.contains_key(&key);
        let verdict = match e.kind {
            LifecycleKind::Fork => {
                // A new process at this PID; it shares its parent's verdict.
                self.verdicts.remove(&e.tgid);
                self.verdicts.get(&e.ppid).map(|&(v, _)| v)
            }
            LifecycleKind::Exec => self.exec_verdict(probes, config, &e).or_else(|| {
                // Tracked anew by a name or cgroup (not as it was before):
                // a target's only if it passes the target's constraints;
                // if not, what it was before (another target's child), or
                // nothing.
                let new = is_new && matches!(e.matched, Match::Name | Match::Cgroup);
                let exe = e.exe.map(FileId::from);
                if !new || self.admitted(probes, key, e.target, Some(e.uid), exe) {
                    return None;
                }
                let before = self
                    .procs
                    .iter()
                    .find(|(k, p)| k.0 == e.tgid && k.1 != e.gen && !p.ignored)
                    .map(|(_, p)| p.target)
                    .filter(|&t| t != e.target);
                Some(before.map_or(Verdict::Reject, Verdict::Retarget))
            }),
            LifecycleKind::Exit
            | LifecycleKind::Moved
            | LifecycleKind::UnixPeer
            | LifecycleKind::LocalClient => {
                self.verdicts.remove(&e.tgid);
                None
            }
        };
        // Who it is, as /proc shows it now; else (gone already) its uid as
        // the kernel read it, and the path it exec'd or, forked, its
        // parent's executable.
        let now = match e.kind {
            LifecycleKind::Exit => None,
            _ => read_tracked(probes, key),
        };
        let uid = now
            .as_ref()
            .and_then(|p| p.uids)
            .map_or(e.uid, |(_, eff)| eff);
        let exe = match e.kind {
            LifecycleKind::Exit => None,
            _ => now.and_then(|p| p.exe).or_else(|| match e.kind {
                LifecycleKind::Fork => self
                    .procs
                    .iter()
                    .find(|(k, _)| k.0 == e.ppid)
                    .and_then(|(_, p)| p.exe.clone()),
                _ => Some(e.filename.clone()).filter(|f| !f.is_empty()),
            }),
        };
        let proc = self.procs.entry(key).or_insert_with(|| Proc {
            target: e.target,
            comm: e.comm.clone(),
            uid: Some(uid),
            exe: exe.clone(),
            start: None,
            ignored: false,
            total: TrafficVal::default(),
        });
        if e.kind == LifecycleKind::Exec {
            proc.comm = e.comm.clone();
            proc.uid = Some(uid);
            proc.exe = exe;
        }
        if e.gen != 0 && e.kind != LifecycleKind::Exit {
            match verdict {
                Some(Verdict::Reject) => {
                    probes.untrack_gen(e.tgid, e.gen);
                    proc.ignored = true;
                }
                Some(Verdict::Retarget(t)) => {
                    probes.retarget(e.tgid, e.gen, t);
                    proc.target = t;
                }
                None => {}
            }
            if let Some(v) = verdict {
                self.verdicts.insert(e.tgid, (v, e.gen));
            }
        }
        if e.kind == LifecycleKind::Exec && is_new && !proc.ignored && e.gen != 0 {
            self.exec_roots.insert(e.tgid);
        }
        let target = proc.target;
        if !is_new || proc.ignored || e.kind == LifecycleKind::Exit || e.gen == 0 {
            return None;
        }
        // The kernel knows the parent at fork; after an exec, /proc does.
        let ppid = match e.kind {
            LifecycleKind::Fork => e.ppid,
            _ => read_tracked(probes, key).map(|p| p.ppid).unwrap_or(0),
        };
        Some(Appeared {
            target,
            pid: e.tgid,
            ppid,
            comm: e.comm,
            uid: proc.uid,
            exe: proc.exe.clone(),
        })
    }

    /// What an exec means for a process (see `verdict_at_exec`). The
    /// verdict before it counts where the kernel tracked the process as the
    /// one that got it: under that generation still.
    fn exec_verdict(
        &mut self,
        probes: &Probes,
        config: &Config,
        e: &LifecycleEvent,
    ) -> Option<Verdict> {
        let before = self
            .verdicts
            .remove(&e.tgid)
            .filter(|&(_, gen)| gen == e.gen)
            .map(|(v, _)| v);
        let fills = e.comm.len() >= netio_probes::COMM_MAX;
        verdict_at_exec(e.matched, fills, before, e.target, || {
            self.full_name_target(probes, config, e)
        })
    }

    /// The target whose configured name the exec'd file has in full, of
    /// those the kernel's 15 bytes of its name may stand for: by the
    /// basename of the path exec'd, or of the executable /proc shows.
    fn full_name_target(
        &self,
        probes: &Probes,
        config: &Config,
        e: &LifecycleEvent,
    ) -> Option<TargetId> {
        let base = e.filename.rsplit('/').next().map(str::to_string);
        let exe = read_tracked(probes, (e.tgid, e.gen)).and_then(|p| p.exe_name);
        [base, exe]
            .into_iter()
            .flatten()
            .filter(|n| n.as_bytes().starts_with(e.comm.as_bytes()))
            .find_map(|n| config.target_of(&n))
            .map(|i| self.ids[i as usize])
            .filter(|&t| {
                let exe = e.exe.map(FileId::from);
                self.admitted(probes, (e.tgid, e.gen), t, Some(e.uid), exe)
            })
    }

    /// Whether the kernel tracks `pid` under a generation netio knows.
    fn is_known(&self, probes: &Probes, pid: u32) -> bool {
        probes
            .tracked(pid)
            .is_some_and(|(_, gen)| self.procs.contains_key(&(pid, gen)))
    }

    /// The processes whose counters are final: those the kernel no longer
    /// tracks under the generation their counters carry. Decided before
    /// the counters are read: once untracked, nothing adds to them.
    pub fn finished(&self, probes: &Probes, keys: &[TrafficKey]) -> HashSet<ProcKey> {
        let mut finished = HashSet::new();
        for k in keys {
            if !finished.contains(&(k.tgid, k.gen))
                && probes.tracked(k.tgid).map(|(_, g)| g) != Some(k.gen)
            {
                finished.insert((k.tgid, k.gen));
            }
        }
        finished
    }

    /// The tracked process `key`, made known now if its bytes came before
    /// its fork or exec event was read: then it is returned to appear,
    /// before its first traffic record. /proc names it only while the
    /// kernel still tracks it as `key`: a PID that changed hands since
    /// would name another process.
    pub fn known(
        &mut self,
        probes: &Probes,
        key: ProcKey,
        target: TargetId,
    ) -> (&mut Proc, Option<Appeared>) {
        let mut appeared = None;
        if !self.procs.contains_key(&key) {
            let p = read_tracked(probes, key);
            // Neither event seen (the ring buffer was full): a target's
            // only if it passes the target's constraints or its parent is
            // the target's.
            let parent = p.as_ref().map_or(0, |p| p.ppid);
            let inherited = self
                .procs
                .iter()
                .any(|(k, q)| k.0 == parent && q.target == target && !q.ignored);
            let ignored = !inherited && !self.admitted(probes, key, target, None, None);
            if ignored {
                probes.untrack_gen(key.0, key.1);
            }
            let comm = p
                .as_ref()
                .map_or_else(|| "?".to_string(), |p| p.comm.clone());
            let proc = Proc {
                target,
                comm,
                uid: p.as_ref().and_then(|p| p.uids).map(|(_, eff)| eff),
                exe: p.as_ref().and_then(|p| p.exe.clone()),
                start: p.as_ref().map(|p| p.start),
                ignored,
                total: TrafficVal::default(),
            };
            self.procs.insert(key, proc);
            if !ignored {
                let proc = &self.procs[&key];
                appeared = Some(Appeared {
                    target,
                    pid: key.0,
                    ppid: parent,
                    comm: proc.comm.clone(),
                    uid: proc.uid,
                    exe: proc.exe.clone(),
                });
            }
        }
        let proc = self.procs.get_mut(&key).expect("inserted above");
        (proc, appeared)
    }

    /// The EV_MOVED and EV_UNIX_PEER events read since the last call.
    pub fn take_socket_events(&mut self) -> Vec<LifecycleEvent> {
        std::mem::take(&mut self.socket_events)
    }

    /// Whether the process `key` is known not to be a target's.
    pub fn ignored(&self, key: &ProcKey) -> bool {
        self.procs.get(key).is_some_and(|p| p.ignored)
    }

    /// How many processes count for `target` now.
    pub fn processes_of(&self, target: TargetId) -> u64 {
        self.procs
            .values()
            .filter(|p| p.target == target && !p.ignored)
            .count() as u64
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Every process known now, ignored ones included.
    pub fn procs(&self) -> impl Iterator<Item = (&ProcKey, &Proc)> {
        self.procs.iter()
    }

    /// Forgets a finished process, returning it for its exit record.
    pub fn remove(&mut self, key: &ProcKey) -> Option<Proc> {
        self.procs.remove(key)
    }

    /// After a reload: processes of targets that are gone stop being
    /// counted; their counters are reported one last time at the
    /// interval's end.
    pub fn untrack_unconfigured(&self, probes: &Probes) {
        for (key, _) in self
            .procs
            .iter()
            .filter(|(_, p)| !self.configured(p.target))
        {
            probes.untrack_gen(key.0, key.1);
        }
    }
}

/// /proc's view of the process the kernel tracks as `key`, read and then
/// checked to be that one still: the kernel drops the entry when the
/// process exits, before its PID can be anyone else's.
fn read_tracked(probes: &Probes, key: ProcKey) -> Option<ProcInfo> {
    let p = discovery::read_proc(key.0)?;
    (probes.tracked(key.0).map(|(_, g)| g) == Some(key.1)).then_some(p)
}
