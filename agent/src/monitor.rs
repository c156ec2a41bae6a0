//! The sampling loop: keeps the tracked set current, and every interval
//! reads the kernel's counters, diffs them against the last read, and
//! writes one record per process and per peer.
//!
//! Counters only grow while their process lives. A process is final once
//! the kernel no longer tracks its (pid, generation): its counters are read
//! one last time, reported in that interval, then deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use netio_probes::{
    LifecycleEvent, LifecycleKind, PeerAddr, Probes, Stats, TrafficKey, TrafficVal, COMM_MAX,
    USER_GEN_BIT,
};

use crate::config::Config;
use crate::discovery;
use crate::record::{Record, TrafficFields};
use crate::signals::{wait_readable, Signal, Signals};
use crate::sink::Sink;

/// One process's bytes in an interval: target, total, and per peer.
type ProcDelta = (u16, TrafficVal, Vec<(PeerAddr, TrafficVal)>);

struct Proc {
    comm: String,
    /// Tracked by a 15-byte name prefix that turned out to be another name.
    ignored: bool,
}

pub struct Monitor {
    config: Config,
    probes: Probes,
    sink: Box<dyn Sink>,
    procs: HashMap<(u32, u32), Proc>,
    last: HashMap<TrafficKey, TrafficVal>,
    last_stats: Stats,
    next_user_gen: u32,
    interval_start: Instant,
}

impl Monitor {
    pub fn new(config: Config, probes: Probes, sink: Box<dyn Sink>) -> Monitor {
        Monitor {
            config,
            probes,
            sink,
            procs: HashMap::new(),
            last: HashMap::new(),
            last_stats: Stats::default(),
            next_user_gen: 0,
            interval_start: Instant::now(),
        }
    }

    /// Loads the names into the kernel, then tracks what already runs. The
    /// names go first so a process exec'd during the scan is matched by the
    /// kernel; the scan runs twice to catch children forked by a target
    /// before the first pass tracked it.
    pub fn start(&mut self) -> Result<usize, String> {
        let names: Vec<(String, u32)> = self
            .config
            .targets
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.process.iter().map(move |p| (p.clone(), i as u32)))
            .collect();
        self.probes.set_names(&names)?;
        self.rescan();
        self.rescan();
        Ok(self.procs.len())
    }

    fn rescan(&mut self) {
        let procs = discovery::scan();
        let comms: HashMap<u32, &str> = procs.iter().map(|p| (p.pid, p.comm.as_str())).collect();
        for (pid, target) in discovery::select(&self.config, &procs) {
            if let Some((_, gen)) = self.probes.tracked(pid) {
                self.procs.entry((pid, gen)).or_insert_with(|| Proc {
                    comm: comms[&pid].to_string(),
                    ignored: false,
                });
                continue;
            }
            self.next_user_gen = (self.next_user_gen + 1) & !USER_GEN_BIT;
            let gen = USER_GEN_BIT | self.next_user_gen;
            match self.probes.track(pid, gen, target) {
                Ok(()) => {
                    self.procs.insert(
                        (pid, gen),
                        Proc {
                            comm: comms[&pid].to_string(),
                            ignored: false,
                        },
                    );
                }
                Err(e) => eprintln!("netio: {e}"),
            }
        }
    }

    fn handle_event(&mut self, e: LifecycleEvent) {
        match e.kind {
            LifecycleKind::Fork | LifecycleKind::Exit => {
                self.procs.entry((e.tgid, e.gen)).or_insert_with(|| Proc {
                    comm: e.comm.clone(),
                    ignored: false,
                });
            }
            LifecycleKind::Exec => {
                let mut ignored = false;
                if e.matched && e.comm.len() >= COMM_MAX {
                    // The kernel compared 15 bytes; the name may be longer.
                    let base = e.filename.rsplit('/').next().unwrap_or("").to_string();
                    let exe = discovery::read_proc(e.tgid).and_then(|p| p.exe_name);
                    let confirmed = [Some(base), exe]
                        .into_iter()
                        .flatten()
                        .any(|n| self.config.target_of(&n) == Some(e.target));
                    if !confirmed {
                        self.probes.untrack(e.tgid);
                        ignored = true;
                    }
                }
                let p = self.procs.entry((e.tgid, e.gen)).or_insert_with(|| Proc {
                    comm: String::new(),
                    ignored,
                });
                p.comm = e.comm;
                p.ignored = ignored;
            }
        }
    }

    fn drain_events(&mut self) {
        for e in self.probes.poll_events(Duration::ZERO) {
            self.handle_event(e);
        }
    }

    /// Runs until SIGTERM/SIGINT, then writes the partial interval.
    pub fn run(&mut self, signals: &Signals) -> io::Result<()> {
        self.interval_start = Instant::now();
        let mut deadline = self.interval_start + self.config.interval;
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.flush()?;
                self.rescan();
                deadline += self.config.interval;
                if deadline <= Instant::now() {
                    // Fell behind (suspend, stall): restart the schedule.
                    deadline = Instant::now() + self.config.interval;
                }
                continue;
            }
            let wait = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
            wait_readable(&[signals.fd(), self.probes.events_fd()], wait);
            self.drain_events();
            while let Some(sig) = signals.next() {
                match sig {
                    Signal::Terminate => {
                        self.flush()?;
                        return Ok(());
                    }
                    Signal::Reload => {
                        eprintln!("netio: SIGHUP: configuration reload is not supported yet; still running the old configuration");
                    }
                }
            }
        }
    }

    /// Ends the current interval: reads every counter and writes the
    /// difference since the last read.
    pub fn flush(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let interval_ms = now.duration_since(self.interval_start).as_millis() as u64;
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
                k.target,
                TrafficVal::default(),
                Vec::new(),
            ));
            e.1.sent += delta.sent;
            e.1.received += delta.received;
            e.2.push((k.peer, delta));
        }

        let backend = self.probes.backend().name();
        for ((tgid, gen), (target, total, mut peers)) in per_proc {
            let proc = self.procs.entry((tgid, gen)).or_insert_with(|| Proc {
                comm: discovery::read_proc(tgid)
                    .map(|p| p.comm)
                    .unwrap_or_default(),
                ignored: false,
            });
            if proc.ignored {
                continue;
            }
            let target_name = self
                .config
                .targets
                .get(target as usize)
                .map(|t| t.name.as_str())
                .unwrap_or("?");
            let fields = TrafficFields {
                target: target_name,
                pid: tgid,
                comm: &proc.comm,
                sent: total.sent,
                received: total.received,
                interval_ms,
                backend,
            };
            self.sink.write(&Record::process_traffic(&fields))?;
            peers.sort_by(|a, b| {
                (b.1.sent + b.1.received)
                    .cmp(&(a.1.sent + a.1.received))
                    .then(a.0.cmp(&b.0))
            });
            for (peer, v) in peers {
                let f = TrafficFields {
                    sent: v.sent,
                    received: v.received,
                    ..fields
                };
                self.sink
                    .write(&Record::peer_traffic(&f, &peer.to_string()))?;
            }
        }

        self.report_losses()?;

        for (k, _) in &current {
            if finished.contains(&(k.tgid, k.gen)) {
                self.probes.delete_traffic(k);
                self.last.remove(k);
            }
        }
        self.procs.retain(|key, _| !finished.contains(key));
        self.sink.flush()
    }

    fn report_losses(&mut self) -> io::Result<()> {
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
                self.sink
                    .write(&Record::degraded(reason, count, bytes, detail))?;
            }
        }
        self.last_stats = s;
        Ok(())
    }

    pub fn sink(&mut self) -> &mut dyn Sink {
        self.sink.as_mut()
    }
}
