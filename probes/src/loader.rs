//! Loads and attaches the programs of one backend, sized from the config:
//! the chosen backend, or with `auto` each in order of preference, each
//! with the socket path where the kernel allows it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::rc::Rc;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenMapMut, OpenObject, RingBuffer, RingBufferBuilder};

use crate::backend::{Backend, BackendChoice};
use crate::error::{Disabled, LoadError};
use crate::fallback::FallbackMap;
use crate::kernel::{KernelFacts, LIFECYCLE, SOCKET_DRAIN, SOCKET_ITER};
use crate::kretprobe::{self, TracefsKretprobe};
use crate::libbpf_log;
use crate::maps::Shared;
use crate::progs::Prog;
use crate::report::{Attempt, BackendReport, BlindSpot, HashPathReason};
use crate::retire::{Peers, ProgramWait};
use crate::skel::{NetioSkel, NetioSkelBuilder};
use crate::wire::LifecycleEvent;

/// Map capacities, from the config.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// Tracked processes with a fallback counter of their own at once: the
    /// traffic map's share beside `peers` (tracking itself has no limit).
    pub processes: u32,
    /// (process, peer) pairs with their own counters at once.
    pub peers: u32,
    /// Configured process names.
    pub names: u32,
    /// Configured units and cgroups.
    pub cgroups: u32,
    /// Uids of targets' `user` lists, and one marker per such target.
    pub uids: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            processes: 4096,
            peers: 16384,
            names: 256,
            cgroups: 64,
            uids: 256,
        }
    }
}

/// What the caller turns off, for tests: backends refuse to load exactly as
/// if the kernel lacked them, so that `auto`'s fallback and the hash path
/// can be tested on kernels where everything works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    pub disabled: Vec<Backend>,
    /// Off: every backend counts through the hash path only.
    pub socket_path: bool,
    /// Who turned them off, for the refusal: "disabled by {disabled_by}".
    pub disabled_by: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            disabled: Vec::new(),
            socket_path: true,
            disabled_by: String::new(),
        }
    }
}

impl LoadOptions {
    fn refusal(&self) -> Disabled {
        Disabled {
            by: self.disabled_by.clone(),
        }
    }
}

/// The loaded, attached programs of one backend and their maps.
pub struct Probes {
    links: Vec<Link>,
    /// The kprobe backend's kretprobes, each with its tracefs event.
    retprobes: Vec<TracefsKretprobe>,
    /// The socket path's drain iterator, when this backend has that path.
    pub(crate) drain_iter: Option<Link>,
    pub(crate) shared: Shared,
    pub(crate) fallback: FallbackMap,
    pub(crate) ring: RingBuffer<'static>,
    pub(crate) queue: Rc<RefCell<VecDeque<LifecycleEvent>>>,
    pub(crate) skel: NetioSkel<'static>,
    /// What the traffic map's idle peers need between reads (retire.rs).
    pub(crate) peers: RefCell<Peers>,
    /// None if the kernel would not make it: no peer is retired then.
    pub(crate) program_wait: Option<ProgramWait>,
    backend: Backend,
}

/// A backend that loaded and attached: its programs and maps, and what it
/// attached and cannot see.
pub struct Loaded {
    pub probes: Probes,
    pub report: BackendReport,
}

impl Probes {
    /// Tries the chosen backend, or with `auto` each in order of
    /// preference, and keeps the first that loads and attaches. Returns it
    /// and the attempts that failed before it, in order, so the caller can
    /// say why they were passed over.
    pub fn load(
        choice: BackendChoice,
        cap: Capacity,
        opts: &LoadOptions,
    ) -> (Option<Loaded>, Vec<Attempt>) {
        libbpf_log::capture();
        let facts = KernelFacts::read();
        let mut failed = Vec::new();
        for backend in choice.candidates() {
            match Self::try_with_socket_path(&facts, backend, cap, opts) {
                Ok(p) => return (Some(p), failed),
                Err(e) => failed.push(Attempt {
                    backend,
                    result: Err(e),
                }),
            }
        }
        (None, failed)
    }

    /// A backend with the socket path where the kernel has what it needs,
    /// else the same backend counting through the hash maps only. The kprobe
    /// backend reads sockets through helpers and never has the socket path.
    fn try_with_socket_path(
        facts: &KernelFacts,
        backend: Backend,
        cap: Capacity,
        opts: &LoadOptions,
    ) -> Result<Loaded, LoadError> {
        if backend == Backend::Kprobe {
            return Self::try_backend(facts, backend, cap, opts, false);
        }
        // What the kernel lacks first, then what the caller turned off.
        let available = match (&facts.socket_path, opts.socket_path) {
            (Err(lacks), _) => Err(HashPathReason::from(lacks.clone())),
            (Ok(()), false) => Err(HashPathReason::from(opts.refusal())),
            (Ok(()), true) => Ok(()),
        };
        let why = match available {
            Ok(()) => match Self::try_backend(facts, backend, cap, opts, true) {
                Ok(p) => return Ok(p),
                Err(e) => HashPathReason::Refused(Box::new(e)),
            },
            Err(why) => why,
        };
        let mut loaded = Self::try_backend(facts, backend, cap, opts, false)?;
        loaded.report.hash_path = Some(why);
        Ok(loaded)
    }

    /// One attempt: opens the object, loads the backend's programs (with
    /// or without the socket path), sized from `cap`, and attaches them.
    fn try_backend(
        facts: &KernelFacts,
        backend: Backend,
        cap: Capacity,
        opts: &LoadOptions,
        socket_path: bool,
    ) -> Result<Loaded, LoadError> {
        if opts.disabled.contains(&backend) {
            return Err(opts.refusal().into());
        }
        let mut plan = facts.plan(backend)?;
        if socket_path {
            plan.required.push(SOCKET_DRAIN);
        }
        libbpf_log::clear();
        // A failed load leaves an object unusable, so each attempt opens its
        // own; the few bytes of storage it borrows live for the process.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open =
            NetioSkelBuilder::default()
                .open(storage)
                .map_err(|error| LoadError::Open {
                    error,
                    hint: libbpf_log::hint(),
                })?;
        for &prog in Prog::ALL {
            let wanted = LIFECYCLE.contains(&prog)
                || plan.loads(prog)
                || (socket_path && prog == SOCKET_ITER);
            prog.open(&mut open.progs).set_autoload(wanted);
        }
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.sk_fast = socket_path;
        } else if socket_path {
            return Err(LoadError::NoRodata);
        }
        let size = |m: &mut OpenMapMut<'_>, n: u32, map: &'static str| {
            m.set_max_entries(n.max(1))
                .map_err(|error| LoadError::Size { map, error })
        };
        // One entry a PID, so that no number of processes fills it.
        size(&mut open.maps.tracked, crate::maps::pid_max(), "tracked")?;
        size(&mut open.maps.names, cap.names, "names")?;
        size(&mut open.maps.cgroups, cap.cgroups, "cgroups")?;
        size(&mut open.maps.target_uids, cap.uids, "target_uids")?;
        size(
            &mut open.maps.traffic,
            cap.peers.saturating_add(cap.processes),
            "traffic",
        )?;
        // An owner per socket a tracked process uses: as many as it may
        // have peers.
        size(
            &mut open.maps.sk_owners,
            cap.peers.saturating_add(cap.processes),
            "sk_owners",
        )?;
        let mut skel = open
            .load()
            .map_err(|error| LoadError::load(backend, error, libbpf_log::hint()))?;

        let mut links = Vec::new();
        let mut retprobes = Vec::new();
        let mut failed = Vec::new();
        // kretprobes through tracefs, where they can have enough instances;
        // else through the kprobe PMU, and say what that costs.
        let mut tracefs = if backend == Backend::Kprobe {
            let t = kretprobe::tracefs();
            match &t {
                Some(t) => kretprobe::remove_stale(t),
                None => failed.push(BlindSpot::NoTracefs),
            }
            t
        } else {
            None
        };
        // In the object's order, as libbpf would attach them.
        for &prog in Prog::ALL {
            if !LIFECYCLE.contains(&prog) && !plan.required.contains(&prog) {
                continue;
            }
            let loaded = prog.loaded(&skel.progs);
            if let (Some(t), Some(func)) = (&tracefs, plan.kretprobe_func(prog)) {
                match kretprobe::attach(prog, loaded, func, t) {
                    Ok(r) => {
                        retprobes.push(r);
                        continue;
                    }
                    // A read-only or restricted tracefs (containers): the
                    // PMU for this and the remaining kretprobes.
                    Err(why) => {
                        failed.push(BlindSpot::KretprobeThroughPmu(why));
                        tracefs = None;
                    }
                }
            }
            let link = loaded
                .attach()
                .map_err(|error| LoadError::attach(prog, error, libbpf_log::hint()))?;
            links.push(link);
        }
        let mut attached_optional = Vec::new();
        for group in &plan.optional {
            let mut group_links = Vec::new();
            let mut failure = None;
            for &prog in Prog::ALL.iter().filter(|p| group.progs.contains(p)) {
                match prog.loaded(&skel.progs).attach() {
                    Ok(l) => group_links.push(l),
                    Err(error) => {
                        failure = Some(BlindSpot::OptionalGroupFailed {
                            what: group.what,
                            prog,
                            error,
                        });
                        break;
                    }
                }
            }
            match failure {
                None => {
                    links.extend(group_links);
                    attached_optional.push(*group);
                }
                Some(why) => failed.push(why),
            }
        }

        let drain_iter = if socket_path {
            let iter = SOCKET_ITER
                .loaded(&skel.progs)
                .attach_iter(skel.maps.sk_accts.as_fd())
                .map_err(|error| LoadError::attach(SOCKET_ITER, error, libbpf_log::hint()))?;
            Some(iter)
        } else {
            None
        };
        let shared = Shared::of(&mut skel)?;
        let fallback = FallbackMap::of(&skel)?;

        let queue: Rc<RefCell<VecDeque<LifecycleEvent>>> = Rc::default();
        let sink = Rc::clone(&queue);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&skel.maps.events, move |data: &[u8]| {
                if let Some(e) = LifecycleEvent::from_raw(data) {
                    sink.borrow_mut().push_back(e);
                }
                0
            })
            .map_err(LoadError::RingBuffer)?;
        let ring = builder.build().map_err(LoadError::RingBuffer)?;

        let program_wait = match ProgramWait::new() {
            Ok(wait) => Some(wait),
            Err(e) => {
                failed.push(BlindSpot::PeersNotRetired(e));
                None
            }
        };
        let report = BackendReport {
            backend,
            programs: plan.required,
            drain_iterator: socket_path.then_some(SOCKET_ITER),
            optional: attached_optional,
            notes: plan.notes,
            failed,
            hash_path: None,
        };
        let probes = Probes {
            links,
            retprobes,
            drain_iter,
            shared,
            fallback,
            ring,
            queue,
            skel,
            peers: RefCell::default(),
            program_wait,
            backend,
        };
        Ok(Loaded { probes, report })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn attached_programs(&self) -> usize {
        self.links.len() + self.retprobes.len()
    }
}

/// Loads and attaches every backend in turn, for `netio kernel`; `auto`
/// tries the same backends in the same order, so it picks the first of
/// these that is usable.
pub fn probe_backends(opts: &LoadOptions) -> Vec<Attempt> {
    let cap = Capacity {
        processes: 16,
        peers: 16,
        names: 4,
        cgroups: 4,
        uids: 4,
    };
    Backend::PREFERENCE
        .iter()
        .map(
            |&backend| match Probes::load(BackendChoice::Only(backend), cap, opts) {
                (Some(loaded), _) => Attempt {
                    backend,
                    result: Ok(loaded.report),
                },
                (None, mut failed) => failed.remove(0),
            },
        )
        .collect()
}
