//! netio's kernel side: the CO-RE programs in `bpf/` and the loader that
//! picks a backend for the running kernel, fills the tracking maps and reads
//! the counters back.
//!
//! The loader knows nothing of configs or records; `agent/` drives it.

mod backend;
mod loader;

pub use backend::{Backend, BackendChoice};
pub use loader::{
    probe_backends, Attempt, Capacity, LifecycleEvent, LifecycleKind, PeerAddr, Probes, Stats,
    TrafficKey, TrafficVal,
};

/// The generated skeleton: the one Rust view of the structs in `bpf/netio.h`.
#[allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/netio.skel.rs"));
}

/// Kernel `comm` is 16 bytes with the terminating NUL: names are matched in
/// the kernel on their first 15 bytes.
pub const COMM_MAX: usize = 15;

/// Userspace-assigned generations have the top bit set so they never equal
/// one the kernel assigns.
pub const USER_GEN_BIT: u32 = 0x8000_0000;

/// A target's id, as the kernel's maps carry it (temporary shim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(u16);

impl From<u16> for TargetId {
    fn from(v: u16) -> Self {
        TargetId(v)
    }
}

impl TargetId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
