//! The sampling loop: waits for the interval's end, a signal or a kernel
//! event; keeps the tracked set current (tracking.rs); every interval reads
//! the kernel's counters, turns them into the interval's bytes
//! (interval.rs), writes the target, process and peer records, checks the
//! thresholds (threshold.rs) and reports losses (losses.rs). Feeds the
//! service manager's watchdog and applies reloads.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use netio_probes::{MapError, PeerAddr, PinDir, Pinning, Probes, Stats, TargetId, TrafficVal};

use crate::config::{Config, Lifecycle, Rate, Threshold};
use crate::fallbacks::{Fallbacks, TargetInterval, TARGET_FALLBACK};
use crate::human::Scale;
use crate::interval::{self, Counter, Counters, ProcDelta, ProcKey, Totals};
use crate::live::Live;
use crate::losses;
use crate::movers::Movers;
use crate::notify::Notifier;
use crate::peer_names::{self, PeerNames};
use crate::record::{Record, Reloaded, ThresholdFields, TrafficFields, Who};
use crate::signals::{wait_readable, Signal, Signals};
use crate::sink::Sink;
use crate::snapshot;
use crate::snapshot_server::Server;
use crate::state::{self, State, StateView, Streamed};
use crate::threshold::{Direction, Limits, Notice, Thresholds};
use crate::tracking::{Appeared, Tracker};
use crate::traffic_rows::{self, ProcessRow};
use crate::warn::Warnings;

pub struct Monitor {
    config: Config,
    config_path: PathBuf,
    probes: Probes,
    sink: Box<dyn Sink>,
    tracker: Tracker,
    counters: Counters,
    movers: Movers,
    /// The names of the last interval's Unix peers.
    peer_names: PeerNames,
    fallbacks: Fallbacks,
    thresholds: Thresholds,
    last_stats: Stats,
    warnings: Warnings,
    /// Targets whose last record said they run no process: said once,
    /// not again every interval until that changes.
    not_running: HashSet<String>,
    /// With `lifecycle = "summary"`: the processes of each target that
    /// appeared and exited this interval, told in one record at its end.
    changed: BTreeMap<TargetId, (u64, u64)>,
    interval_start: Instant,
    deadline: Instant,
    /// Where the state for the next netio goes, with pinned programs.
    handover: Option<Handover>,
    /// What the first interval covers before this start: the gap since
    /// the last netio's last interval.
    carried: Duration,
    /// Adopted without the last netio's state: the counters are read once
    /// at start and taken as reported.
    prime: bool,
    /// The counts `netio top` is shown, and the socket it reads them from.
    live: Live,
    top: Option<Server>,
}

/// The state file of a pinned set, and what it says of the set.
struct Handover {
    path: PathBuf,
    pin_id: u64,
    tracking_since_ms: u64,
}

/// What this netio took over from the last, for the `started` record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// "adopted", "pinned" or "off".
    pub pinning: &'static str,
    /// Why pinning is off, what pinned set was replaced, or what of the
    /// last netio's state could not be taken over.
    pub detail: String,
    /// The version of the netio whose counters this one goes on with.
    pub adopted_version: String,
    pub gap_ms: u64,
    /// Since when the pinned programs track processes (Unix ms).
    pub tracking_since_ms: u64,
}

impl Monitor {
    pub fn new(
        config: Config,
        config_path: PathBuf,
        probes: Probes,
        sink: Box<dyn Sink>,
    ) -> Monitor {
        let now = Instant::now();
        let live = Live::new(probes.backend().name(), config.interval.as_millis() as u64);
        Monitor {
            live,
            top: None,
            deadline: now + config.interval,
            config,
            config_path,
            probes,
            sink,
            tracker: Tracker::default(),
            counters: Counters::default(),
            movers: Movers::default(),
            peer_names: PeerNames::default(),
            fallbacks: Fallbacks::default(),
            thresholds: Thresholds::default(),
            last_stats: Stats::default(),
            warnings: Warnings::default(),
            not_running: HashSet::new(),
            changed: BTreeMap::new(),
            interval_start: now,
            handover: None,
            carried: Duration::ZERO,
            prime: false,
        }
    }

    /// Before `start`: with programs adopted from pins, takes over the last
    /// netio's state, so that the first interval reports exactly what it
    /// did not; with programs pinned anew, only sets where the state goes.
    pub fn adopt(&mut self, pinning: &Pinning, dir: Option<&PinDir>) -> Adoption {
        let now = SystemTime::now();
        let (meta, mut detail) = match pinning {
            Pinning::Off(why) => {
                return Adoption {
                    pinning: "off",
                    detail: why.clone(),
                    tracking_since_ms: state::unix_ms(now),
                    ..Adoption::default()
                }
            }
            Pinning::Fresh { meta, replaced } => (meta, replaced.clone().unwrap_or_default()),
            Pinning::Adopted(meta) => (meta, String::new()),
        };
        let Some(dir) = dir else {
            return Adoption::default();
        };
        let path = state::path_for(dir);
        let mut out = Adoption {
            pinning: "pinned",
            tracking_since_ms: state::unix_ms(now),
            ..Adoption::default()
        };
        if matches!(pinning, Pinning::Adopted(_)) {
            out.pinning = "adopted";
            out.adopted_version = meta.version.clone();
            match State::read(&path).filter(|s| s.pin_id == meta.id) {
                Some(s) => {
                    self.carried = s.age(now);
                    out.gap_ms = self.carried.as_millis() as u64;
                    out.adopted_version = s.version.clone();
                    out.tracking_since_ms = s.tracking_since_ms;
                    self.restore(&s);
                }
                None => {
                    detail = format!(
                        "no state of the last netio in {}: what its programs counted \
                         since its last interval is not reported",
                        path.display()
                    );
                    self.prime = true;
                }
            }
        } else {
            let _ = std::fs::remove_file(&path);
        }
        out.detail = detail;
        self.handover = Some(Handover {
            path,
            pin_id: meta.id,
            tracking_since_ms: out.tracking_since_ms,
        });
        out
    }

    fn restore(&mut self, s: &State) {
        self.tracker
            .restore(s.registry.clone(), s.next_user_gen, &s.procs);
        self.counters
            .restore(s.counters.iter().filter_map(state::load_counter));
        self.fallbacks
            .restore(s.fallbacks.iter().map(state::load_fallback));
        self.last_stats = state::load_stats(&s.stats);
    }

    /// Adopted without the last netio's state: what the counters hold now
    /// is taken as reported, since which of it was is unknown.
    fn prime_counters(&mut self) {
        let _ = self.probes.drain_sockets();
        let current = self.probes.read_traffic();
        self.counters.diff(
            current
                .iter()
                .filter(|(k, _)| !k.moved)
                .map(|(k, v)| (counter_of(k), *v)),
        );
        let reads: Vec<_> = self
            .tracker
            .registered()
            .map(|id| (id, self.probes.take_fallback(id)))
            .collect();
        self.fallbacks.diff(reads);
        self.last_stats = self.probes.stats();
    }

    /// After every interval: what the next netio needs to go on from here.
    fn save_state(&mut self) {
        let Some(h) = &self.handover else {
            return;
        };
        let (registry, next_user_gen, procs) = self.tracker.save();
        let s = StateView {
            pin_id: h.pin_id,
            version: crate::VERSION,
            written_ms: state::unix_ms(SystemTime::now()),
            tracking_since_ms: h.tracking_since_ms,
            registry,
            next_user_gen,
            counters: Streamed::new(
                self.counters
                    .last()
                    .map(|(c, v)| state::save_counter(c, *v)),
            ),
            fallbacks: self
                .fallbacks
                .last()
                .map(|(id, f)| state::save_fallback(*id, f))
                .collect(),
            procs: Streamed::new(procs),
            stats: state::save_stats(&self.last_stats),
        };
        if let Err(e) = state::write(&s, &h.path) {
            self.warnings.once(format!(
                "cannot write {}: {e}; a netio started after this one reports \
                 from its own start",
                h.path.display()
            ));
        }
    }

    /// Serves `netio top` from now on.
    pub fn serve_top(&mut self, server: Server) {
        self.top = Some(server);
    }

    /// What `netio top` is shown beyond the counts (pinning, blind spots).
    pub fn live(&mut self) -> &mut Live {
        &mut self.live
    }

    /// A client of the top socket waits: a snapshot of the counters now,
    /// without ending the interval (nothing it reads is taken as reported).
    fn publish_live(&mut self) {
        // Moves bytes from the sockets into the counters, as the next
        // interval's end would: it only makes them visible sooner.
        let _ = self.probes.drain_sockets();
        let current = self.probes.read_traffic();
        let pending = self.counters.pending(
            current
                .iter()
                .filter(|(k, _)| !k.moved)
                .map(|(k, v)| (counter_of(k), *v)),
        );
        self.publish(&pending);
    }

    fn publish(&self, pending: &BTreeMap<ProcKey, ProcDelta>) {
        let Some(top) = &self.top else {
            return;
        };
        let targets: Vec<(String, TargetId)> = self
            .config
            .targets
            .iter()
            .zip(self.tracker.targets())
            .map(|(t, &id)| (t.name.clone(), id))
            .collect();
        top.publish(
            &self
                .live
                .snapshot(&targets, &self.tracker, pending, &self.peer_names),
        );
    }

    /// Loads names and cgroups into the kernel, then tracks what already
    /// runs. The kernel matches first so a process exec'd during the scan
    /// is not missed; the scan runs twice to catch children forked by a
    /// target before the first pass tracked it.
    pub fn start(&mut self) -> Result<usize, MapError> {
        self.tracker
            .load_matchers(&self.probes, &self.config, &mut self.warnings)?;
        for _ in 0..2 {
            self.rescan(false, true)?;
        }
        if std::mem::take(&mut self.prime) {
            self.prime_counters();
        }
        Ok(self.tracker.len())
    }

    /// Tracks what the kernel's events did not tell of; `full` reads all
    /// of /proc (at start and on reload), else only what may be new.
    fn rescan(&mut self, announce: bool, full: bool) -> Result<(), MapError> {
        let appeared = self.tracker.rescan(
            &self.probes,
            &self.config,
            &mut self.warnings,
            announce,
            full,
        )?;
        self.write_appeared(appeared);
        Ok(())
    }

    fn drain_events(&mut self) {
        let appeared = self.tracker.drain_events(&self.probes, &self.config);
        self.write_appeared(appeared);
    }

    fn write_appeared(&mut self, appeared: impl IntoIterator<Item = Appeared>) {
        for a in appeared {
            if self.lifecycle_of(a.target) == Lifecycle::Summary {
                self.changed.entry(a.target).or_default().0 += 1;
                continue;
            }
            let target = self.tracker.target_name(a.target);
            let who = Who {
                pid: a.pid,
                comm: &a.comm,
                uid: a.uid,
                exe: a.exe.as_deref(),
            };
            let r = Record::process_appeared(target, &who, a.ppid);
            self.write(&r);
        }
    }

    /// Writes a record; a sink that fails is reported, never fatal here
    /// (sinks keep their own fallbacks).
    fn write(&mut self, r: &Record) {
        if let Err(e) = self.sink.write(r) {
            tell_limited!(
                "cannot write a record",
                "netio: cannot write a {} record: {e}",
                r.kind().name()
            );
        }
    }

    /// Runs until SIGTERM/SIGINT, then writes the partial interval. Feeds
    /// the service manager's watchdog from this loop, and tells it about
    /// reloads and the stop.
    pub fn run(&mut self, signals: &Signals, notifier: &mut Notifier) -> io::Result<()> {
        let now = Instant::now();
        self.deadline = now + self.config.interval;
        // The first interval's records cover the gap too: their rates are
        // over the time their bytes took.
        self.interval_start = now.checked_sub(self.carried).unwrap_or(now);
        loop {
            let now = Instant::now();
            notifier.keep_alive(now);
            if now >= self.deadline {
                self.flush()?;
                if let Err(e) = self.rescan(true, false) {
                    tell_limited!("rescan failed", "netio: {e}");
                }
                crate::warn::tick();
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
            let mut fds = vec![signals.fd(), self.probes.events_fd()];
            fds.extend(self.top.as_ref().map(Server::wake_fd));
            let ready = wait_readable(&fds, wait);
            self.drain_events();
            // Read only when a client asked: no system call otherwise.
            let asked = ready.get(2).copied().unwrap_or(false);
            if asked && self.top.as_ref().is_some_and(Server::asked) {
                self.publish_live();
            }
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
        let processes = self.tracker.len();
        format!(
            "counting {} process{} of {} target{} ({} backend)",
            processes,
            if processes == 1 { "" } else { "es" },
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
                tell!("netio: reload refused: {e}");
                let r = Record::config_rejected(&path, &e.message);
                self.write(&r);
                let _ = self.sink.flush();
                return;
            }
        };
        let notes = new.keep_startup_keys(&self.config);
        let changes = new.changes_from(&self.config);
        let interval_changed = new.interval != self.config.interval;
        self.config = new;
        // A target removed and added again is said anew.
        let targets = &self.config.targets;
        self.not_running
            .retain(|name| targets.iter().any(|t| &t.name == name));
        if let Err(e) = self
            .tracker
            .load_matchers(&self.probes, &self.config, &mut self.warnings)
        {
            tell!("netio: reload: {e}");
        }
        self.tracker.untrack_unconfigured(&self.probes);
        if let Err(e) = self.rescan(true, true) {
            tell!("netio: reload: {e}");
        }
        if interval_changed {
            self.deadline = self.interval_start + self.config.interval;
            self.live.interval_ms = self.config.interval.as_millis() as u64;
        }
        let r = Record::config_reloaded(&Reloaded {
            config: &path,
            added: &changes.added,
            removed: &changes.removed,
            matching: &changes.matching,
            thresholds: &changes.thresholds,
            interval_ms: changes.interval.map(|d| d.as_millis() as u64),
            detail: &notes.join("; "),
        });
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
        self.take_socket_events();

        // One read of the keys for both: each walk of the map is a system
        // call per key (or a few, in batches), every interval.
        let keys = self.probes.traffic_keys();
        let finished = self.tracker.finished(&self.probes, &keys);
        let movers_gone = self.movers.gone(&keys);
        // Bytes the socket path holds in sockets move into the counters
        // now: everything counted up to here, a finished process's last
        // bytes included, is in the read below.
        if let Err(e) = self.probes.drain_sockets() {
            self.warnings
                .once(format!("{e}; bytes held in sockets are read later"));
        }
        let current = self.probes.read_traffic();
        // Read with the counters: the bytes no traffic entry took.
        let fallbacks = self.fallbacks.diff(
            self.tracker
                .registered()
                .map(|id| (id, self.probes.take_fallback(id))),
        );
        // A process forked after the drain above may have moved bytes and
        // exited before this read; its fork event was sent before it ran,
        // so it is in the ring buffer now: read it before its bytes are
        // taken for a process that no event told of (and /proc no longer
        // shows, which no `user` or `exe` check would pass).
        self.drain_events();
        self.take_socket_events();
        let deltas = self.counters.diff(
            current
                .iter()
                .filter(|(k, _)| !k.moved)
                .map(|(k, v)| (counter_of(k), *v)),
        );
        // Retired and not back: read for the last time.
        for k in self.probes.take_retired() {
            self.counters.forget(&counter_of(&k));
        }

        let mut totals = Totals::default();
        let mut rows = Vec::new();
        let backend = self.probes.backend().name();
        for ((tgid, gen), mut delta) in deltas {
            let (proc, appeared) = self.tracker.known(&self.probes, (tgid, gen), delta.target);
            if proc.ignored {
                self.write_appeared(appeared);
                continue;
            }
            // Moved to another target by a confirmed exec, it counts there
            // with what its counters still hold under the one before.
            delta.target = proc.target;
            interval::add(&mut proc.total, delta.total);
            let (comm, uid, exe) = (proc.comm.clone(), proc.uid, proc.exe.clone());
            self.write_appeared(appeared);
            totals.add(&delta);
            if !self.config.records.per_process {
                continue;
            }
            delta.peers = one_per_peer(delta.peers);
            rows.push(ProcessRow {
                pid: tgid,
                comm,
                uid,
                exe,
                delta,
            });
        }

        let base = TrafficFields {
            target: "",
            sent: 0,
            received: 0,
            interval_ms,
            backend,
        };
        self.peer_names
            .update(totals.peers.keys().map(|(_, peer)| peer));
        let mut records = traffic_rows::process_records(
            rows,
            &self.tracker,
            &self.config.records,
            &self.peer_names,
            base,
        );
        // Bytes moved on the targets' sockets by processes netio does not
        // track count for the targets, in records naming who moved them.
        self.movers.interval(
            &current,
            &self.tracker,
            base,
            self.config.records.top_peers as usize,
            self.config.records.per_process,
            &mut totals,
            &mut records,
        );
        for f in &fallbacks {
            totals.add_unattributed(f.target, f.bytes);
        }
        self.live.interval(&totals, &self.peer_names);

        // The target totals come first and are written every interval
        // while the target runs; one that runs nothing is said once.
        let mut out = Vec::new();
        for (t, &id) in self.config.targets.iter().zip(self.tracker.targets()) {
            let total = totals.target(id);
            let processes = self.tracker.processes_of(id);
            let idle = processes == 0 && total == TrafficVal::default();
            if !idle {
                self.not_running.remove(&t.name);
            } else if !self.not_running.insert(t.name.clone()) {
                continue;
            }
            let f = TrafficFields {
                target: &t.name,
                sent: total.sent,
                received: total.received,
                interval_ms,
                backend,
            };
            let peers = totals
                .peers
                .keys()
                .filter(|(t, p)| *t == id && *p != PeerAddr::Other)
                .count() as u64;
            out.push(Record::target_traffic(&f, processes, peers));
            let top = self.config.records.target_peers as usize;
            if top > 0 {
                out.extend(traffic_rows::target_peer_records(
                    &totals,
                    id,
                    top,
                    &self.peer_names,
                    f,
                ));
            }
        }
        out.extend(records);
        crate::record::mark_repeats(&mut out);
        for r in &out {
            self.write(r);
        }

        self.check_thresholds(&totals, &fallbacks, interval_ms);
        self.report_losses(&fallbacks);

        self.movers.forget(&self.probes, &current, &movers_gone);
        for (k, _) in current.iter().filter(|(k, _)| !k.moved) {
            if finished.contains(&(k.tgid, k.gen)) {
                self.probes.delete_traffic(k);
                self.counters.forget(&counter_of(k));
            }
        }
        let mut exited = Vec::new();
        for key in &finished {
            if let Some(p) = self.tracker.remove(key) {
                if !p.ignored && self.lifecycle_of(p.target) == Lifecycle::Summary {
                    self.changed.entry(p.target).or_default().1 += 1;
                } else if !p.ignored {
                    let who = Who {
                        pid: key.0,
                        comm: &p.comm,
                        uid: p.uid,
                        exe: p.exe.as_deref(),
                    };
                    exited.push(Record::process_exited(
                        self.tracker.target_name(p.target),
                        &who,
                        p.total.sent,
                        p.total.received,
                    ));
                }
            }
        }
        for (id, (appeared, gone)) in std::mem::take(&mut self.changed) {
            let target = self.tracker.target_name(id);
            exited.push(Record::processes_changed(
                target,
                appeared,
                gone,
                interval_ms,
            ));
        }
        for r in &exited {
            self.write(r);
        }
        // The interval's reads and records go before the state is written:
        // at 10,000 processes each is megabytes, and netio's peak memory
        // would be their sum with the state's.
        drop((
            current,
            keys,
            finished,
            movers_gone,
            fallbacks,
            totals,
            out,
            exited,
        ));
        let flushed = self.sink.flush();
        // After the records: a netio killed in between reports this
        // interval again, rather than lose it (docs/kernels.md).
        self.save_state();
        self.probes.release_idle_windows();
        give_back_free_memory();
        flushed
    }

    fn check_thresholds(&mut self, totals: &Totals, folded: &[TargetInterval], interval_ms: u64) {
        let mut checks = Vec::new();
        for (t, &id) in self.config.targets.iter().zip(self.tracker.targets()) {
            if let Some(th) = &t.threshold {
                checks.extend(self.thresholds.checks(
                    id,
                    &limits(th),
                    totals.target(id),
                    &totals.peers,
                    interval_ms,
                ));
            }
        }
        let half = self.config.interval.as_millis() as u64 / 2;
        for notice in self.thresholds.apply(&checks, interval_ms, half) {
            let r = self.threshold_record(&notice, folded);
            self.write(&r);
        }
        let phases = checks
            .iter()
            .filter_map(|c| {
                let state = self.thresholds.phase(&c.watch)?;
                Some((
                    c.watch.target,
                    snapshot::Threshold {
                        peer: c.watch.peer.map(|p| peer_names::distinct(&p)),
                        direction: c.watch.direction.name().to_string(),
                        state: state.to_string(),
                        limit: c.limit.rate,
                        rate: c.rate,
                    },
                ))
            })
            .collect();
        self.live.set_thresholds(phases);
    }

    /// Who moved bytes on the targets' sockets, and who their Unix peers
    /// and loopback clients are, as the kernel said since the last call.
    fn take_socket_events(&mut self) {
        for e in self.tracker.take_socket_events() {
            match e.peer_process() {
                Some((peer, uid)) => self.peer_names.seen(peer, uid, e.comm),
                None => self.movers.seen(&e),
            }
        }
    }

    /// A notice's record; `other`'s says at least how many peers it folds:
    /// the kernel's count of them, and one if it moved anything.
    fn threshold_record(&self, n: &Notice, folded: &[TargetInterval]) -> Record {
        let w = &n.check.watch;
        let address = w.peer.map(|p| p.to_string());
        let folded_peers = (w.peer == Some(PeerAddr::Other)).then(|| {
            let kernel = folded
                .iter()
                .find(|f| f.target == w.target)
                .map_or(0, |f| f.peers_folded);
            kernel.max(u64::from(n.check.rate > 0))
        });
        let f = ThresholdFields {
            target: self.tracker.target_name(w.target),
            peer: w
                .peer
                .as_ref()
                .zip(address.as_deref())
                .map(|(p, a)| self.peer_names.shown(p, a)),
            folded_peers,
            direction: w.direction.name(),
            rate: n.check.rate,
            threshold: n.check.limit.rate,
            sustain_ms: n.check.limit.sustain.as_millis() as u64,
            duration_ms: n.duration_ms,
            breach_ms: n.breach_ms,
            scale: self.scale_of(w.target, w.peer.is_some(), w.direction),
        };
        Record::threshold(n.kind, &f)
    }

    /// How a target's processes that appear and exit are told: its own
    /// `lifecycle`, else `[records]`'s (also for a target a reload removed).
    fn lifecycle_of(&self, target: TargetId) -> Lifecycle {
        self.config
            .targets
            .iter()
            .zip(self.tracker.targets())
            .find(|(_, &id)| id == target)
            .and_then(|(t, _)| t.lifecycle)
            .unwrap_or(self.config.records.lifecycle)
    }

    /// The scale a threshold's rate was written in, for its records.
    fn scale_of(&self, target: netio_probes::TargetId, peer: bool, d: Direction) -> Scale {
        let th = self
            .config
            .targets
            .iter()
            .zip(self.tracker.targets())
            .find(|(_, &id)| id == target)
            .and_then(|(t, _)| t.threshold.as_ref());
        let rate: Option<Rate> = th.and_then(|th| match (peer, d) {
            (false, Direction::Sent) => th.sent,
            (false, Direction::Received) => th.received,
            (true, Direction::Sent) => th.peer_sent,
            (true, Direction::Received) => th.peer_received,
        });
        rate.map_or(Scale::BINARY, |r| r.1)
    }

    fn report_losses(&mut self, fallbacks: &[TargetInterval]) {
        let now = self.probes.stats();
        for l in losses::between(&self.last_stats, &now) {
            self.live.degraded(l.reason, l.count, l.detail);
            self.write(&Record::degraded(l.reason, l.count, l.lost_bytes, l.detail));
        }
        for a in self.tracker.take_alarms() {
            let target = self.tracker.target_name(a.target).to_string();
            self.live.degraded(a.reason, a.count, a.detail);
            let r = Record::degraded_for(a.reason, &target, a.count, None, a.detail);
            self.write(&r);
        }
        let (reason, detail) = TARGET_FALLBACK;
        for f in fallbacks.iter().filter(|f| f.events > 0) {
            let target = self.tracker.target_name(f.target).to_string();
            self.live.degraded(reason, f.events, detail);
            let bytes = Some((f.bytes.sent, f.bytes.received));
            let r = Record::degraded_for(reason, &target, f.events, bytes, detail);
            self.write(&r);
        }
        self.last_stats = now;
    }

    pub fn sink(&mut self) -> &mut dyn Sink {
        self.sink.as_mut()
    }
}

/// A process's peers, each once: its counters carry the target they were
/// counted for, and one moved to another target has a counter of each.
fn one_per_peer(mut peers: Vec<(PeerAddr, TrafficVal)>) -> Vec<(PeerAddr, TrafficVal)> {
    peers.sort_by_key(|p| p.0);
    peers.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            interval::add(&mut kept.1, later.1);
        }
        same
    });
    peers
}

/// Returns the heap's free pages to the kernel. An interval's read and
/// records take memory for a moment that glibc keeps otherwise, so netio's
/// RSS would be its busiest interval's, not what it holds (docs/benchmarks.md,
/// "netio itself at scale").
fn give_back_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A kernel counter's key as interval arithmetic sees it.
fn counter_of(k: &netio_probes::TrafficKey) -> Counter {
    Counter {
        process: (k.tgid, k.gen),
        target: k.target,
        peer: k.peer,
    }
}

/// A target's `[target.threshold]` as the state machine takes it.
fn limits(th: &Threshold) -> Limits {
    Limits {
        sent: th.sent.map(|r| r.0),
        received: th.received.map(|r| r.0),
        peer_sent: th.peer_sent.map(|r| r.0),
        peer_received: th.peer_received.map(|r| r.0),
        transport: th.transport,
        sustain: th.sustain,
        reminder: th.reminder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_counted_under_two_targets_is_one_peer() {
        let ip = |n| PeerAddr::Ip(std::net::IpAddr::from([10, 0, 0, n]));
        let v = |sent, received| TrafficVal { sent, received };
        let peers = vec![(ip(2), v(1, 2)), (ip(1), v(5, 0)), (ip(2), v(10, 20))];
        assert_eq!(
            one_per_peer(peers),
            vec![(ip(1), v(5, 0)), (ip(2), v(11, 22))]
        );
    }
}
