//! The sampling loop: keeps the tracked set current, and every interval
//! reads the kernel's counters, diffs them against the last read, writes
//! the target, process and peer records, and checks thresholds.
//!
//! Counters only grow while their process lives. A process is final once
//! the kernel no longer tracks its (pid, generation): its counters are read
//! one last time, reported in that interval, then deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netio_probes::{
    LifecycleEvent, LifecycleKind, PeerAddr, Probes, Stats, TargetId, TrafficKey, TrafficVal,
    COMM_MAX, USER_GEN_BIT,
};

use crate::config::{Config, Rate};
use crate::discovery;
use crate::notify::Notifier;
use crate::record::{Kind, Record, ThresholdFields, TrafficFields};
use crate::signals::{wait_readable, Signal, Signals};
use crate::sink::Sink;

struct Proc {
    /// Stable target id (index in `Monitor::registry`).
    target: u32,
    comm: String,
    /// Tracked by a 15-byte name prefix that turned out to be another name.
    ignored: bool,
    /// Bytes since it was tracked, for its exit record.
    total: TrafficVal,
}

/// One process's bytes in an interval: target, total, and per peer.
type ProcDelta = (u32, TrafficVal, Vec<(PeerAddr, TrafficVal)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    Sent,
    Received,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BreachKey {
    target: String,
    peer: Option<PeerAddr>,
    direction: Direction,
}

/// Where one rate stands against its threshold, in interval time.
#[derive(Debug, Default)]
struct Breach {
    above_ms: u64,
    below_ms: u64,
    active: bool,
    since_notice_ms: u64,
}

pub struct Monitor {
    config: Config,
    config_path: PathBuf,
    probes: Probes,
    sink: Box<dyn Sink>,
    /// Target names by the id the kernel knows them by. Ids are never
    /// reused while netio runs, so a reload cannot misattribute counters.
    registry: Vec<String>,
    /// Resolved (config target index, cgroup path) of `unit`/`cgroup` targets.
    cgroups: Vec<(usize, String)>,
    /// What the kernel's cgroup map holds: (cgroup id, target id), sorted.
    cgroup_ids: Vec<(u64, u32)>,
    warned: HashSet<String>,
    /// Thread groups whose exit the kernel reported since the last rescan:
    /// /proc still lists a process while it exits, and the rescan must not
    /// track it again.
    exited: HashSet<u32>,
    procs: HashMap<(u32, u32), Proc>,
    last: HashMap<TrafficKey, TrafficVal>,
    last_stats: Stats,
    breaches: HashMap<BreachKey, Breach>,
    next_user_gen: u32,
    interval_start: Instant,
    deadline: Instant,
}

impl Monitor {
    pub fn new(
        config: Config,
        config_path: PathBuf,
        probes: Probes,
        sink: Box<dyn Sink>,
    ) -> Monitor {
        let now = Instant::now();
        Monitor {
            deadline: now + config.interval,
            config,
            config_path,
            probes,
            sink,
            registry: Vec::new(),
            cgroups: Vec::new(),
            cgroup_ids: Vec::new(),
            warned: HashSet::new(),
            exited: HashSet::new(),
            procs: HashMap::new(),
            last: HashMap::new(),
            last_stats: Stats::default(),
            breaches: HashMap::new(),
            next_user_gen: 0,
            interval_start: now,
        }
    }

    fn target_id(&mut self, name: &str) -> u32 {
        match self.registry.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.registry.push(name.to_string());
                (self.registry.len() - 1) as u32
            }
        }
    }

    fn target_name(&self, id: u32) -> &str {
        self.registry
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    fn configured(&self, id: u32) -> bool {
        let name = self.target_name(id);
        self.config.targets.iter().any(|t| t.name == name)
    }

    /// Loads names and cgroups into the kernel, then tracks what already
    /// runs. The kernel matches first so a process exec'd during the scan
    /// is not missed; the scan runs twice to catch children forked by a
    /// target before the first pass tracked it.
    pub fn start(&mut self) -> Result<usize, String> {
        self.load_matchers()?;
        self.rescan(false)?;
        self.rescan(false)?;
        Ok(self.procs.len())
    }

    fn load_matchers(&mut self) -> Result<(), String> {
        let mut names = Vec::new();
        let targets = self.config.targets.clone();
        for t in &targets {
            let id = TargetId::from(self.target_id(&t.name) as u16);
            names.extend(t.process.iter().map(|p| (p.clone(), id)));
        }
        self.probes.set_names(&names).map_err(|e| e.to_string())?;
        self.refresh_cgroups()
    }

    /// Units may start after netio: their cgroups are resolved again on
    /// every rescan.
    fn refresh_cgroups(&mut self) -> Result<(), String> {
        let mut resolved = Vec::new();
        let mut ids = Vec::new();
        let targets = self.config.targets.clone();
        for (i, t) in targets.iter().enumerate() {
            let unit = t.unit.as_deref().map(|u| (u, discovery::unit_cgroup(u)));
            if let Some((u, None)) = unit {
                self.warn_once(format!(
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
                    self.warn_once(format!(
                        "target {}: cgroup {path} does not exist below {} (yet)",
                        t.name,
                        discovery::cgroup_root()
                    ));
                }
                let id = self.target_id(&t.name);
                ids.extend(found.into_iter().map(|cg| (cg, id)));
                resolved.push((i, path));
            }
        }
        // A unit restarted gets a new cgroup at the same path: compare ids.
        ids.sort_unstable();
        if ids != self.cgroup_ids {
            let by_id: Vec<(u64, TargetId)> = ids
                .iter()
                .map(|&(cg, id)| (cg, TargetId::from(id as u16)))
                .collect();
            self.probes.set_cgroups(&by_id).map_err(|e| e.to_string())?;
            self.cgroup_ids = ids;
        }
        self.cgroups = resolved;
        Ok(())
    }

    /// A condition worth one line on stderr, not one per interval.
    fn warn_once(&mut self, msg: String) {
        if self.warned.insert(msg.clone()) {
            eprintln!("netio: {msg}");
        }
    }

    fn rescan(&mut self, announce: bool) -> Result<(), String> {
        self.refresh_cgroups()?;
        let procs = discovery::scan();
        let info: HashMap<u32, &discovery::ProcInfo> = procs.iter().map(|p| (p.pid, p)).collect();
        for (pid, index) in discovery::select(&self.config, &self.cgroups, &procs) {
            let name = self.config.targets[index].name.clone();
            let target = self.target_id(&name);
            let p = info[&pid];
            let gen = match self.probes.tracked(pid) {
                Some((_, gen)) if self.procs.contains_key(&(pid, gen)) => continue,
                // The kernel tracked it at fork or exec and its event is
                // not read yet: it appears here, and the event, when read,
                // finds it known.
                Some((_, gen)) => gen,
                None => {
                    // Untracked in the kernel: new to netio, or exiting
                    // (its exit hook drops the entry before /proc does).
                    // Its exit event, if any, is in the ring buffer by now.
                    self.drain_events();
                    if self.exited.contains(&pid) {
                        continue;
                    }
                    self.next_user_gen = (self.next_user_gen + 1) & !USER_GEN_BIT;
                    let gen = USER_GEN_BIT | self.next_user_gen;
                    if let Err(e) = self.probes.track(pid, gen, TargetId::from(target as u16)) {
                        eprintln!("netio: {e}");
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
                let r = Record::process_appeared(&name, pid, p.ppid, &p.comm);
                self.write(&r);
            }
        }
        self.exited.clear();
        Ok(())
    }

    fn handle_event(&mut self, e: LifecycleEvent) {
        let target = e.target.index() as u32;
        if e.kind == LifecycleKind::Exit {
            self.exited.insert(e.tgid);
        }
        let key = (e.tgid, e.gen);
        let is_new = !self.procs.contains_key(&key);
        let mut ignored = false;
        if e.kind == LifecycleKind::Exec && e.matched && e.comm.len() >= COMM_MAX {
            // The kernel compared 15 bytes; the configured name may be longer.
            let base = e.filename.rsplit('/').next().unwrap_or("").to_string();
            let exe = discovery::read_proc(e.tgid).and_then(|p| p.exe_name);
            let wanted = self.target_name(target).to_string();
            let confirmed = [Some(base), exe].into_iter().flatten().any(|n| {
                self.config
                    .target_of(&n)
                    .map(|i| self.config.targets[i as usize].name == wanted)
                    .unwrap_or(false)
            });
            if !confirmed {
                self.probes.untrack(e.tgid);
                ignored = true;
            }
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
        if is_new && !ignored && e.kind != LifecycleKind::Exit && e.gen != 0 {
            // The kernel knows the parent at fork; after an exec, /proc does.
            let ppid = match e.kind {
                LifecycleKind::Fork => e.ppid,
                _ => discovery::read_proc(e.tgid).map(|p| p.ppid).unwrap_or(0),
            };
            let r = Record::process_appeared(self.target_name(target), e.tgid, ppid, &e.comm);
            self.write(&r);
        }
    }

    fn drain_events(&mut self) {
        for e in self.probes.poll_events(Duration::ZERO) {
            self.handle_event(e);
        }
    }

    /// Writes a record; a sink that fails is reported, never fatal here
    /// (sinks keep their own fallbacks).
    fn write(&mut self, r: &Record) {
        if let Err(e) = self.sink.write(r) {
            eprintln!("netio: cannot write a {} record: {e}", r.kind().name());
        }
    }

    /// Runs until SIGTERM/SIGINT, then writes the partial interval. Feeds
    /// the service manager's watchdog from this loop, and tells it about
    /// reloads and the stop.
    pub fn run(&mut self, signals: &Signals, notifier: &mut Notifier) -> io::Result<()> {
        self.interval_start = Instant::now();
        self.deadline = self.interval_start + self.config.interval;
        loop {
            let now = Instant::now();
            notifier.keep_alive(now);
            if now >= self.deadline {
                self.flush()?;
                if let Err(e) = self.rescan(true) {
                    eprintln!("netio: {e}");
                }
                self.deadline += self.config.interval;
                if self.deadline <= Instant::now() {
                    // Fell behind (suspend, stall): restart the schedule.
                    self.deadline = Instant::now() + self.config.interval;
                }
                continue;
            }
            let wake = match notifier.watchdog_due() {
                Some(due) => due.min(self.deadline),
                None => self.deadline,
            };
            let wait = wake
                .saturating_duration_since(now)
                .as_millis()
                .clamp(1, i32::MAX as u128) as i32;
            wait_readable(&[signals.fd(), self.probes.events_fd()], wait);
            self.drain_events();
            while let Some(sig) = signals.next() {
                match sig {
                    Signal::Terminate => {
                        notifier.stopping();
                        self.flush()?;
                        return Ok(());
                    }
                    Signal::Reload => {
                        notifier.reloading();
                        self.reload();
                        notifier.reloaded(&self.status());
                    }
                }
            }
        }
    }

    /// One line for the service manager's STATUS.
    pub fn status(&self) -> String {
        let targets = self.config.targets.len();
        format!(
            "counting {} process{} of {} target{} ({} backend)",
            self.procs.len(),
            if self.procs.len() == 1 { "" } else { "es" },
            targets,
            if targets == 1 { "" } else { "s" },
            self.probes.backend().name()
        )
    }

    /// SIGHUP: a valid config replaces the running one without resetting
    /// any count; an invalid one is reported and changes nothing.
    fn reload(&mut self) {
        let path = self.config_path.display().to_string();
        let mut new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("netio: reload refused: {e}");
                let r = Record::config_rejected(&path, &e.message);
                self.write(&r);
                let _ = self.sink.flush();
                return;
            }
        };
        let mut notes = Vec::new();
        if new.capacity.processes != self.config.capacity.processes
            || new.capacity.peers != self.config.capacity.peers
        {
            notes.push("capacity changes take effect at the next start");
            new.capacity = self.config.capacity.clone();
        }
        if new.backend != self.config.backend {
            notes.push("backend changes take effect at the next start");
            new.backend = self.config.backend;
        }
        if new.output != self.config.output || new.json_schema != self.config.json_schema {
            notes.push("output changes take effect at the next start");
            new.output = self.config.output;
            new.json_schema = self.config.json_schema;
        }
        if new.syslog != self.config.syslog {
            notes.push("syslog changes take effect at the next start");
            new.syslog = self.config.syslog.clone();
        }
        let interval_changed = new.interval != self.config.interval;
        self.config = new;
        if let Err(e) = self.load_matchers() {
            eprintln!("netio: reload: {e}");
        }
        // Processes of targets that are gone stop being counted; their
        // counters are reported one last time at the interval's end.
        let gone: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| !self.configured(p.target))
            .map(|(k, _)| k.0)
            .collect();
        for tgid in gone {
            self.probes.untrack(tgid);
        }
        if let Err(e) = self.rescan(true) {
            eprintln!("netio: reload: {e}");
        }
        if interval_changed {
            self.deadline = self.interval_start + self.config.interval;
        }
        let r = Record::config_reloaded(&path, &notes.join("; "));
        self.write(&r);
        let _ = self.sink.flush();
    }

    /// Ends the current interval: reads every counter and writes the
    /// difference since the last read.
    pub fn flush(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let interval_ms = now.duration_since(self.interval_start).as_millis().max(1) as u64;
        self.interval_start = now;
        self.drain_events();

        // Which processes are final must be decided before their counters are
        // read: once the kernel stops tracking one, nothing adds to it.
        let mut finished = HashSet::new();
        for k in self.probes.traffic_keys() {
            if !finished.contains(&(k.tgid, k.gen))
                && self.probes.tracked(k.tgid).map(|(_, g)| g) != Some(k.gen)
            {
                finished.insert((k.tgid, k.gen));
            }
        }
        // Bytes the socket path holds in sockets move into the counters
        // now: everything counted up to here, a finished process's last
        // bytes included, is in the read below.
        if let Err(e) = self.probes.drain_sockets() {
            self.warn_once(format!("{e}; bytes held in sockets are read later"));
        }
        let current = self.probes.read_traffic();

        let mut per_proc: BTreeMap<(u32, u32), ProcDelta> = BTreeMap::new();
        for (k, v) in &current {
            let prev = self.last.insert(*k, *v).unwrap_or_default();
            let delta = TrafficVal {
                sent: v.sent.checked_sub(prev.sent).unwrap_or(v.sent),
                received: v.received.checked_sub(prev.received).unwrap_or(v.received),
            };
            if delta == TrafficVal::default() {
                continue;
            }
            let e = per_proc.entry((k.tgid, k.gen)).or_insert((
                k.target.index() as u32,
                TrafficVal::default(),
                Vec::new(),
            ));
            e.1.sent += delta.sent;
            e.1.received += delta.received;
            e.2.push((k.peer, delta));
        }

        // Totals per target and per (target, peer), for records and thresholds.
        let mut target_totals: HashMap<u32, TrafficVal> = HashMap::new();
        let mut target_peers: HashMap<(u32, PeerAddr), TrafficVal> = HashMap::new();
        let mut records = Vec::new();
        let backend = self.probes.backend().name();
        for ((tgid, gen), (target, total, mut peers)) in per_proc {
            if !self.procs.contains_key(&(tgid, gen)) {
                // Counted before its fork or exec event was read: it
                // appears now, before its first traffic record.
                let p = discovery::read_proc(tgid);
                let comm = p.as_ref().map(|p| p.comm.clone()).unwrap_or_default();
                let ppid = p.as_ref().map(|p| p.ppid).unwrap_or(0);
                let r = Record::process_appeared(self.target_name(target), tgid, ppid, &comm);
                self.write(&r);
                self.procs.insert(
                    (tgid, gen),
                    Proc {
                        target,
                        comm,
                        ignored: false,
                        total: TrafficVal::default(),
                    },
                );
            }
            let proc = self.procs.get_mut(&(tgid, gen)).expect("inserted above");
            if proc.ignored {
                continue;
            }
            proc.total.sent += total.sent;
            proc.total.received += total.received;
            let t = target_totals.entry(target).or_default();
            t.sent += total.sent;
            t.received += total.received;
            for (peer, v) in &peers {
                let tp = target_peers.entry((target, *peer)).or_default();
                tp.sent += v.sent;
                tp.received += v.received;
            }
            if !self.config.records.per_process {
                continue;
            }
            let target_name = self
                .registry
                .get(target as usize)
                .map(String::as_str)
                .unwrap_or("?");
            let fields = TrafficFields {
                target: target_name,
                sent: total.sent,
                received: total.received,
                interval_ms,
                backend,
            };
            records.push(Record::process_traffic(&fields, tgid, &proc.comm));
            peers.sort_by(|a, b| {
                (b.1.sent + b.1.received)
                    .cmp(&(a.1.sent + a.1.received))
                    .then(a.0.cmp(&b.0))
            });
            let top = self.config.records.top_peers as usize;
            if top == 0 {
                continue;
            }
            let mut other = TrafficVal::default();
            let mut shown = 0;
            for (peer, v) in peers {
                if shown < top && peer != PeerAddr::Other {
                    let f = TrafficFields {
                        sent: v.sent,
                        received: v.received,
                        ..fields
                    };
                    records.push(Record::peer_traffic(
                        &f,
                        tgid,
                        &proc.comm,
                        &peer.to_string(),
                    ));
                    shown += 1;
                } else {
                    other.sent += v.sent;
                    other.received += v.received;
                }
            }
            if other != TrafficVal::default() {
                let f = TrafficFields {
                    sent: other.sent,
                    received: other.received,
                    ..fields
                };
                records.push(Record::peer_traffic(
                    &f,
                    tgid,
                    &proc.comm,
                    &PeerAddr::Other.to_string(),
                ));
            }
        }

        // The target totals come first and are written every interval.
        let mut out = Vec::new();
        for t in self.config.targets.clone() {
            let id = self.target_id(&t.name);
            let total = target_totals.get(&id).copied().unwrap_or_default();
            let processes = self
                .procs
                .values()
                .filter(|p| p.target == id && !p.ignored)
                .count() as u64;
            let f = TrafficFields {
                target: &t.name,
                sent: total.sent,
                received: total.received,
                interval_ms,
                backend,
            };
            out.push(Record::target_traffic(&f, processes));
        }
        out.extend(records);
        for r in &out {
            self.write(r);
        }

        self.check_thresholds(&target_totals, &target_peers, interval_ms);
        self.report_losses();

        for (k, _) in &current {
            if finished.contains(&(k.tgid, k.gen)) {
                self.probes.delete_traffic(k);
                self.last.remove(k);
            }
        }
        let mut exited = Vec::new();
        for key in &finished {
            if let Some(p) = self.procs.remove(key) {
                if !p.ignored {
                    exited.push(Record::process_exited(
                        self.target_name(p.target),
                        key.0,
                        &p.comm,
                        p.total.sent,
                        p.total.received,
                    ));
                }
            }
        }
        for r in &exited {
            self.write(r);
        }
        self.sink.flush()
    }

    fn check_thresholds(
        &mut self,
        totals: &HashMap<u32, TrafficVal>,
        peers: &HashMap<(u32, PeerAddr), TrafficVal>,
        interval_ms: u64,
    ) {
        let mut checks: Vec<(BreachKey, u64, Rate, Duration, Duration)> = Vec::new();
        let rate = |bytes: u64| (bytes as u128 * 1000 / interval_ms as u128) as u64;
        for t in self.config.targets.clone() {
            let Some(th) = &t.threshold else { continue };
            let id = self.target_id(&t.name);
            let total = totals.get(&id).copied().unwrap_or_default();
            for (dir, limit, bytes) in [
                (Direction::Sent, th.sent, total.sent),
                (Direction::Received, th.received, total.received),
            ] {
                if let Some(limit) = limit {
                    let key = BreachKey {
                        target: t.name.clone(),
                        peer: None,
                        direction: dir,
                    };
                    checks.push((key, rate(bytes), limit, th.sustain, th.reminder));
                }
            }
            // Every peer seen now, and every peer with a breach open (its
            // rate is zero when it sent nothing this interval). Not `other`:
            // it sums the peers a full map could not tell apart, so a
            // per-peer limit says nothing about it (the full map is
            // reported as degraded).
            let mut seen: Vec<PeerAddr> = peers
                .keys()
                .filter(|(tid, p)| *tid == id && *p != PeerAddr::Other)
                .map(|(_, p)| *p)
                .collect();
            seen.extend(
                self.breaches
                    .keys()
                    .filter(|k| k.target == t.name)
                    .filter_map(|k| k.peer),
            );
            seen.sort();
            seen.dedup();
            for peer in seen {
                let v = peers.get(&(id, peer)).copied().unwrap_or_default();
                for (dir, limit, bytes) in [
                    (Direction::Sent, th.peer_sent, v.sent),
                    (Direction::Received, th.peer_received, v.received),
                ] {
                    if let Some(limit) = limit {
                        let key = BreachKey {
                            target: t.name.clone(),
                            peer: Some(peer),
                            direction: dir,
                        };
                        checks.push((key, rate(bytes), limit, th.sustain, th.reminder));
                    }
                }
            }
        }
        // Interval lengths are measured, and come out a millisecond short
        // as often as not: a span counts as reached within half an interval,
        // so `for = "2s"` with 1s intervals means two intervals, not three.
        let half = self.config.interval.as_millis() as u64 / 2;
        let reached = |elapsed: u64, wanted: u64| elapsed + half >= wanted;
        let mut keep = HashSet::new();
        for (key, observed, limit, sustain, reminder) in checks {
            let sustain_ms = sustain.as_millis() as u64;
            let b = self.breaches.entry(key.clone()).or_default();
            let mut notice = None;
            if observed > limit.0 {
                b.below_ms = 0;
                b.above_ms += interval_ms;
                if !b.active && reached(b.above_ms, sustain_ms) {
                    b.active = true;
                    b.since_notice_ms = 0;
                    notice = Some((Kind::ThresholdExceeded, b.above_ms));
                } else if b.active {
                    b.since_notice_ms += interval_ms;
                    if reached(b.since_notice_ms, reminder.as_millis() as u64) {
                        b.since_notice_ms = 0;
                        notice = Some((Kind::ThresholdReminder, b.above_ms));
                    }
                }
            } else {
                b.above_ms = 0;
                if b.active {
                    b.below_ms += interval_ms;
                    if reached(b.below_ms, sustain_ms) {
                        b.active = false;
                        notice = Some((Kind::ThresholdRecovered, b.below_ms));
                        b.below_ms = 0;
                    }
                }
            }
            if b.active || b.above_ms > 0 {
                keep.insert(key.clone());
            }
            if let Some((kind, duration_ms)) = notice {
                let peer = key.peer.map(|p| p.to_string());
                let f = ThresholdFields {
                    target: &key.target,
                    peer: peer.as_deref(),
                    direction: key.direction.name(),
                    rate: observed,
                    threshold: limit.0,
                    sustain_ms,
                    duration_ms,
                };
                let r = Record::threshold(kind, &f);
                self.write(&r);
            }
        }
        // Rates that are quiet and below their limit need no memory.
        self.breaches.retain(|k, _| keep.contains(k));
    }

    fn report_losses(&mut self) {
        let s = self.probes.stats();
        let l = self.last_stats;
        let checks: [(&str, u64, Option<u64>, &str); 5] = [
            ("peer_map_full", s.peer_overflow - l.peer_overflow, None,
             "new peers were counted in the peer record `other`; raise capacity.peers"),
            ("bytes_lost", s.lost_events - l.lost_events, Some(s.lost_bytes - l.lost_bytes),
             "the traffic map was full and a process had no fallback entry; raise capacity.processes"),
            ("process_map_full", s.track_full - l.track_full, None,
             "new processes of a target could not be tracked; raise capacity.processes"),
            ("events_dropped", s.events_dropped - l.events_dropped, None,
             "process events were lost; the next /proc rescan recovers the tracked set"),
            ("stash_full", s.stash_full - l.stash_full, None,
             "calls in flight could not be paired with their return"),
        ];
        for (reason, count, bytes, detail) in checks {
            if count > 0 {
                self.write(&Record::degraded(reason, count, bytes, detail));
            }
        }
        self.last_stats = s;
    }

    pub fn sink(&mut self) -> &mut dyn Sink {
        self.sink.as_mut()
    }
}
