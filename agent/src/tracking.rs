//! Which processes are counted, and for which target: the registry of
//! target ids, the names and cgroups the kernel matches at exec, the /proc
//! rescan that finds what runs, and the kernel's lifecycle events (fork,
//! exec, exit) that keep the tracked set current between rescans.
//!
//! A process is final once the kernel no longer tracks its (pid,
//! generation): nothing can add to its counters after that.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use netio_probes::{
    LifecycleEvent, LifecycleKind, MapError, Probes, TargetId, TrafficVal, USER_GEN_BIT,
};

use crate::config::Config;
use crate::discovery;
use crate::interval::ProcKey;
use crate::warn::Warnings;

/// A tracked process as the records name it.
#[derive(Debug)]
pub struct Proc {
    pub target: TargetId,
    pub comm: String,
    /// Tracked by a 15-byte name prefix that turned out to be another name.
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
    /// Thread groups whose exit the kernel reported since the last rescan:
    /// /proc still lists a process while it exits, and the rescan must not
    /// track it again.
    exited: HashSet<u32>,
    procs: HashMap<ProcKey, Proc>,
    next_user_gen: u32,
}

impl Tracker {
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
        let mut names = Vec::new();
        for (t, id) in config.targets.iter().zip(&self.ids) {
            names.extend(t.process.iter().map(|p| (p.clone(), *id)));
        }
        probes.set_names(&names)?;
        self.refresh_cgroups(probes, config, warnings)
    }

    /// Units may start after netio: their cgroups are resolved again on
    /// every rescan.
    fn refresh_cgroups(
        &mut self,
        probes: &Probes,
        config: &Config,
        warnings: &mut Warnings,
    ) -> Result<(), MapError> {
        let mut resolved = Vec::new();
        let mut ids = Vec::new();
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
        ids.sort_unstable();
        if ids != self.cgroup_ids {
            probes.set_cgroups(&ids)?;
            self.cgroup_ids = ids;
        }
        self.cgroups = resolved;
        Ok(())
    }

    /// Tracks what runs now and the kernel does not know yet: processes of
    /// a target by name or cgroup, and their descendants. With `announce`,
    /// each is returned for its `process_appeared` record, in order with
    /// those of lifecycle events read meanwhile.
    pub fn rescan(
        &mut self,
        probes: &Probes,
        config: &Config,
        warnings: &mut Warnings,
        announce: bool,
    ) -> Result<Vec<Appeared>, MapError> {
        self.refresh_cgroups(probes, config, warnings)?;
        let mut out = Vec::new();
        let procs = discovery::scan();
        let info: HashMap<u32, &discovery::ProcInfo> = procs.iter().map(|p| (p.pid, p)).collect();
        for (pid, index) in discovery::select(config, &self.cgroups, &procs) {
            let target = self.ids[index];
            let p = info[&pid];
            let gen = match probes.tracked(pid) {
                Some((_, gen)) if self.procs.contains_key(&(pid, gen)) => continue,
                // The kernel tracked it at fork or exec and its event is
                // not read yet: it appears here, and the event, when read,
                // finds it known.
                Some((_, gen)) => gen,
                None => {
                    // Untracked in the kernel: new to netio, or exiting
                    // (its exit hook drops the entry before /proc does).
                    // Its exit event, if any, is in the ring buffer by now.
                    out.extend(self.drain_events(probes, config));
                    if self.exited.contains(&pid) {
                        continue;
                    }
                    self.next_user_gen = (self.next_user_gen + 1) & !USER_GEN_BIT;
                    let gen = USER_GEN_BIT | self.next_user_gen;
                    if let Err(e) = probes.track(pid, gen, target) {
                        tell!("netio: {e}");
                        continue;
                    }
                    gen
                }
            };
            self.procs.insert(
                (pid, gen),
                Proc {
                    target,
                    comm: p.comm.clone(),
                    ignored: false,
                    total: TrafficVal::default(),
                },
            );
            if announce {
                out.push(Appeared {
                    target,
                    pid,
                    ppid: p.ppid,
                    comm: p.comm.clone(),
                });
            }
        }
        self.exited.clear();
        Ok(out)
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
        if e.kind == LifecycleKind::Exit {
            self.exited.insert(e.tgid);
        }
        let key = (e.tgid, e.gen);
        let target = e.target;
        let is_new = !self.procs.contains_key(&key);
        let ignored =
            e.kind == LifecycleKind::Exec && e.matched && !self.name_confirmed(config, &e, target);
        if ignored {
            probes.untrack(e.tgid);
        }
        let proc = self.procs.entry(key).or_insert_with(|| Proc {
            target,
            comm: e.comm.clone(),
            ignored,
            total: TrafficVal::default(),
        });
        if e.kind == LifecycleKind::Exec {
            proc.comm = e.comm.clone();
            proc.ignored = ignored;
        }
        if !is_new || ignored || e.kind == LifecycleKind::Exit || e.gen == 0 {
            return None;
        }
        // The kernel knows the parent at fork; after an exec, /proc does.
        let ppid = match e.kind {
            LifecycleKind::Fork => e.ppid,
            _ => discovery::read_proc(e.tgid).map(|p| p.ppid).unwrap_or(0),
        };
        Some(Appeared {
            target,
            pid: e.tgid,
            ppid,
            comm: e.comm,
        })
    }

    /// Whether a process the kernel matched at exec by name is the target's:
    /// the kernel compares the 15 bytes it keeps of a name, and the
    /// configured name may be longer.
    fn name_confirmed(&self, config: &Config, e: &LifecycleEvent, target: TargetId) -> bool {
        if e.comm.len() < netio_probes::COMM_MAX {
            return true;
        }
        let base = e.filename.rsplit('/').next().unwrap_or("").to_string();
        let exe = discovery::read_proc(e.tgid).and_then(|p| p.exe_name);
        let wanted = self.target_name(target);
        [Some(base), exe].into_iter().flatten().any(|n| {
            config
                .target_of(&n)
                .map(|i| config.targets[i as usize].name == wanted)
                .unwrap_or(false)
        })
    }

    /// The processes whose counters are final: those the kernel no longer
    /// tracks under the generation their counters carry. Decided before
    /// the counters are read: once untracked, nothing adds to them.
    pub fn finished(&self, probes: &Probes) -> HashSet<ProcKey> {
        let mut finished = HashSet::new();
        for k in probes.traffic_keys() {
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
    /// before its first traffic record.
    pub fn known(&mut self, key: ProcKey, target: TargetId) -> (&mut Proc, Option<Appeared>) {
        let mut appeared = None;
        let proc = self.procs.entry(key).or_insert_with(|| {
            let p = discovery::read_proc(key.0);
            let comm = p.as_ref().map(|p| p.comm.clone()).unwrap_or_default();
            let ppid = p.as_ref().map(|p| p.ppid).unwrap_or(0);
            appeared = Some(Appeared {
                target,
                pid: key.0,
                ppid,
                comm: comm.clone(),
            });
            Proc {
                target,
                comm,
                ignored: false,
                total: TrafficVal::default(),
            }
        });
        (proc, appeared)
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
            probes.untrack(key.0);
        }
    }
}
