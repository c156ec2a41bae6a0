//! netio's kernel side: the CO-RE programs in `bpf/` and the loader that
//! picks a backend for the running kernel, fills the tracking maps and reads
//! the counters back.
//!
//! The loader knows nothing of configs or records; `agent/` drives it.
//!
//! - `backend`: the backends and the order `auto` tries them in
//! - `kernel`: what the running kernel offers, and each backend's plan
//! - `progs`: the object's programs, through the typed skeleton
//! - `loader`: loading and attaching one backend
//! - `kretprobe`: the kprobe backend's kretprobes, made in tracefs
//! - `report`: what a backend attached and what it cannot see
//! - `maps`: the agent's access to the loaded maps
//! - `batch`: a per-CPU hash map read whole in a few system calls
//! - `mapped`: an mmapable array's words, shared with the kernel
//! - `fallback`: the targets' counters for bytes the full traffic map had no entry for
//! - `retire`: retiring idle peer counters, and their epochs folded away
//! - `wire`: the kernel's structs as the agent sees them
//! - `error`, `libbpf_log`: why something failed, with libbpf's own words

mod backend;
mod batch;
mod error;
mod fallback;
mod kernel;
mod kretprobe;
mod libbpf_log;
mod loader;
mod mapped;
mod maps;
mod pin;
mod progs;
mod report;
mod retire;
mod wire;

pub use backend::{Backend, BackendChoice};
pub use error::{
    Denied, Disabled, KretprobeError, KretprobeStep, LoadError, Lockdown, MapError, NoSocketPath,
    Unsupported,
};
pub use fallback::Fallback;
pub use libbpf_log::LibbpfHint;
pub use loader::{probe_backends, Capacity, LoadOptions, Loaded, Probes};
pub use maps::{pid_max, PID_MAX_LIMIT};
pub use pin::{Meta, PinDir, Pinning, DEFAULT_PIN_DIR, OBJECT_HASH};
pub use progs::Prog;
pub use report::{Attempt, BackendReport, BlindSpot, HashPathReason, OptionalGroup};
pub use wire::{
    KernelFileId, LifecycleEvent, LifecycleKind, LocalClient, Match, PeerAddr, Stats, TargetId,
    TrafficKey, TrafficVal, UnixPeer,
};

/// The generated skeleton: the one Rust view of the structs and enums in
/// `bpf/netio.h`.
#[allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/netio.skel.rs"));
}

/// How many bytes of a process name the kernel matches on (its `comm`
/// keeps 15 and a NUL).
pub const COMM_MAX: usize = skel::types::netio_len::NETIO_COMM_MATCH.0 as usize;

/// The bit set in userspace-assigned generations, so they never equal one
/// the kernel assigns.
pub const USER_GEN_BIT: u32 = skel::types::netio_gen::GEN_USER_BIT.0;

/// Removes the tracefs kretprobe events no live netio and no pinned link
/// holds any more (`netio unload`). The kernel drops a link's event a
/// moment after its last pin goes, so this tries for a while: up to 5 s.
/// 0.5 s left the events of the ten or so kretprobes of the TCP and Unix
/// hooks behind in the kernel matrix's 6.12 guest (under TCG).
pub fn remove_stale_kretprobes() {
    if let Some(t) = kretprobe::tracefs() {
        for _ in 0..100 {
            if !kretprobe::remove_stale(&t) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
