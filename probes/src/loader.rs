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
use crate::pin::{self, Meta, PinDir, Pinning};
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
    /// Where to pin the programs and maps and adopt them from; None: never
    /// pinned (`netio kernel`, or pinning turned off).
    pub pin: Option<PinDir>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            disabled: Vec::new(),
            socket_path: true,
            disabled_by: String::new(),
            pin: None,
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
    /// Links pinned by the netio that loaded them, counting for this one.
    adopted_links: usize,
}

/// A backend that loaded and attached: its programs and maps, and what it
/// attached and cannot see.
pub struct Loaded {
    pub probes: Probes,
    pub report: BackendReport,
    /// Whether the programs were pinned, anew or adopted.
    pub pinning: Pinning,
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
        let (dir, mut replaced) = match &opts.pin {
            None => (Err("turned off".to_string()), None),
            Some(dir) => match dir.unusable() {
                Some(why) => (Err(why), None),
                None => (Ok(dir), None),
            },
        };
        if let Ok(dir) = dir {
            match dir.read_meta() {
                Some(meta) => match Self::adopt(&facts, &meta, dir, choice, cap, opts) {
                    Ok(loaded) => return (Some(loaded), failed),
                    Err(why) => {
                        replaced = Some(format!("pinned by netio {}: {why}", meta.version));
                        let _ = dir.remove();
                    }
                },
                // Left half made: no meta is pinned before everything else is.
                None => {
                    let _ = dir.remove();
                }
            }
        }
        for backend in choice.candidates() {
            match Self::try_with_socket_path(&facts, backend, cap, opts) {
                Ok(mut p) => {
                    p.pinning = match dir {
                        Err(why) => Pinning::Off(why),
                        Ok(dir) => match p.probes.pin(dir, p.report.hash_path.is_none()) {
                            Ok(meta) => Pinning::Fresh { meta, replaced },
                            Err(why) => {
                                let _ = dir.remove();
                                Pinning::Off(why)
                            }
                        },
                    };
                    return (Some(p), failed);
                }
                Err(e) => failed.push(Attempt {
                    backend,
                    result: Err(e),
                }),
            }
        }
        (None, failed)
    }

    /// The pinned set in `dir`, if this build can adopt it: its programs go
    /// on counting, and this netio reads their maps.
    fn adopt(
        facts: &KernelFacts,
        meta: &Meta,
        dir: &PinDir,
        choice: BackendChoice,
        cap: Capacity,
        opts: &LoadOptions,
    ) -> Result<Loaded, String> {
        if meta.object != pin::OBJECT_HASH {
            return Err(format!(
                "its BPF object differs from this build's ({} here, {} pinned)",
                pin::OBJECT_HASH,
                meta.object
            ));
        }
        if opts.disabled.contains(&meta.backend) {
            return Err(format!(
                "it runs the {} backend, which is disabled",
                meta.backend
            ));
        }
        if !choice.candidates().contains(&meta.backend) {
            return Err(format!(
                "it runs the {} backend, {choice} was asked for",
                meta.backend
            ));
        }
        if meta.socket_path && !opts.socket_path {
            return Err("it counts on the socket path, which is turned off".into());
        }
        let adopt = Some((dir, meta));
        let mut loaded = Self::try_backend(facts, meta.backend, cap, opts, meta.socket_path, adopt)
            .map_err(|e| format!("cannot adopt it: {e}"))?;
        if !meta.socket_path {
            loaded.report.hash_path = Some(HashPathReason::Adopted);
        }
        loaded.pinning = Pinning::Adopted(meta.clone());
        Ok(loaded)
    }

    /// Pins every map but the read-only data, every counting link, and
    /// last the meta that says the set is whole. The drain iterator is
    /// this process's own.
    fn pin(&mut self, dir: &PinDir, socket_path: bool) -> Result<Meta, String> {
        use libbpf_rs::skel::Skel;
        use libbpf_rs::MapCore;
        let fail = |what: String, e: &dyn std::fmt::Display| format!("cannot pin {what}: {e}");
        dir.create()
            .map_err(|e| fail(dir.path().display().to_string(), &e))?;
        for mut map in self.skel.object_mut().maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if !pinned_map(&name) {
                continue;
            }
            map.pin(dir.map(&name))
                .map_err(|e| fail(format!("map {name}"), &e))?;
        }
        let kretprobes = self.retprobes.iter_mut().filter_map(|r| r.link_mut());
        for (n, link) in self.links.iter_mut().chain(kretprobes).enumerate() {
            link.pin(dir.link(n, "link"))
                .map_err(|e| fail(format!("link {n}"), &e))?;
        }
        let meta = Meta {
            object: pin::OBJECT_HASH.to_string(),
            backend: self.backend,
            socket_path,
            version: env!("CARGO_PKG_VERSION").to_string(),
            id: pin::new_id(),
        };
        dir.write_meta(&meta)
            .map_err(|e| fail("the set's meta".into(), &e))?;
        Ok(meta)
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
            return Self::try_backend(facts, backend, cap, opts, false, None);
        }
        // What the kernel lacks first, then what the caller turned off.
        let available = match (&facts.socket_path, opts.socket_path) {
            (Err(lacks), _) => Err(HashPathReason::from(lacks.clone())),
            (Ok(()), false) => Err(HashPathReason::from(opts.refusal())),
            (Ok(()), true) => Ok(()),
        };
        let why = match available {
            Ok(()) => match Self::try_backend(facts, backend, cap, opts, true, None) {
                Ok(p) => return Ok(p),
                Err(e) => HashPathReason::Refused(Box::new(e)),
            },
            Err(why) => why,
        };
        let mut loaded = Self::try_backend(facts, backend, cap, opts, false, None)?;
        loaded.report.hash_path = Some(why);
        Ok(loaded)
    }

    /// One attempt: opens the object, loads the backend's programs (with
    /// or without the socket path), sized from `cap`, and attaches them.
    /// Adopting a pinned set, it takes the set's maps instead and loads
    /// and attaches none but its own drain iterator: the pinned links go
    /// on counting into those maps.
    fn try_backend(
        facts: &KernelFacts,
        backend: Backend,
        cap: Capacity,
        opts: &LoadOptions,
        socket_path: bool,
        adopt: Option<(&PinDir, &Meta)>,
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
            let counting = LIFECYCLE.contains(&prog) || plan.loads(prog);
            let wanted = (counting && adopt.is_none()) || (socket_path && prog == SOCKET_ITER);
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
        // The loopback connections of the whole host, each as large a share:
        // its clients' names (local.bpf.h); past it, counted, by address.
        let loopback = cap.peers.saturating_add(cap.processes);
        size(&mut open.maps.local_clients, loopback, "local_clients")?;
        size(
            &mut open.maps.local_connecting,
            loopback,
            "local_connecting",
        )?;
        if let Some((dir, _)) = adopt {
            // Their sizes, too, are the pinned maps'.
            for mut map in open.open_object_mut().maps_mut() {
                let name = map.name().to_string_lossy().into_owned();
                if pinned_map(&name) {
                    map.reuse_pinned_map(dir.map(&name))
                        .map_err(|error| LoadError::Adopt { map: name, error })?;
                }
            }
        }
        let mut skel = open
            .load()
            .map_err(|error| LoadError::load(backend, error, libbpf_log::hint()))?;

        let mut links = Vec::new();
        let mut retprobes = Vec::new();
        let mut failed = Vec::new();
        // kretprobes through tracefs, where they can have enough instances;
        // else through the kprobe PMU, and say what that costs.
        let mut tracefs = if backend == Backend::Kprobe && adopt.is_none() {
            let t = kretprobe::tracefs();
            match &t {
                Some(t) => {
                    kretprobe::remove_stale(t);
                }
                None => failed.push(BlindSpot::NoTracefs),
            }
            t
        } else {
            None
        };
        // In the object's order, as libbpf would attach them.
        for &prog in Prog::ALL {
            if adopt.is_some() || !LIFECYCLE.contains(&prog) && !plan.required.contains(&prog) {
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
        for group in plan.optional.iter().filter(|_| adopt.is_none()) {
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
        let adopted_links = adopt.map_or(0, |(dir, _)| dir.links());
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
            adopted_links,
        };
        let pinning = Pinning::Off(String::new());
        Ok(Loaded {
            probes,
            report,
            pinning,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn attached_programs(&self) -> usize {
        self.links.len() + self.retprobes.len() + self.adopted_links
    }
}

/// Whether a map of the object is pinned: all but the read-only data,
/// which each load makes its own.
fn pinned_map(name: &str) -> bool {
    !name.ends_with(".rodata") && !name.ends_with(".kconfig")
}

/// Loads and attaches every backend in turn, for `netio kernel`; `auto`
/// tries the same backends in the same order, so it picks the first of
/// these that is usable.
pub fn probe_backends(opts: &LoadOptions) -> Vec<Attempt> {
    let opts = &LoadOptions {
        pin: None,
        ..opts.clone()
    };
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
