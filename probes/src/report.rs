//! What a backend attached and what it cannot see, as data: the agent
//! renders it (`netio kernel`, the started record, degraded records).

use crate::backend::Backend;
use crate::error::{Disabled, KretprobeError, LoadError, NoSocketPath};
use crate::progs::Prog;

/// Why a kretprobe through the kprobe PMU misses returns (docs/kernels.md,
/// "kretprobes need tracefs").
const PMU_LIMIT: &str = "kretprobes attached through the kprobe PMU, where the kernel lets \
                         only a few threads (as few as one per CPU) be inside a probed \
                         function at once: returns beyond that are not counted";

/// Programs that widen what a backend sees; if one fails to attach, the
/// group is left out and reported, and the backend still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalGroup {
    /// What the group sees, for the report.
    pub what: &'static str,
    pub progs: &'static [Prog],
}

/// A path a backend does not see on this kernel.
#[derive(Debug, thiserror::Error)]
pub enum BlindSpot {
    #[error(
        "this kernel sends sendfile/splice through tcp_sendpage, which the tracepoints do not \
         see: prefer fentry or kprobe"
    )]
    SendpageUnseen,
    #[error(
        "this kernel's BTF lacks a function of Unix stream or seqpacket sockets \
         (unix_stream_sendmsg, unix_stream_recvmsg, unix_seqpacket_sendmsg, \
         unix_seqpacket_recvmsg, unix_stream_splice_read): local clients on Unix sockets are \
         not counted"
    )]
    UnixUnseen,
    #[error(
        "inet_csk_accept is not hooked here: a socket a target accepts is its own from its \
         first byte, not from accept, so bytes another process moves on it before then are \
         not counted"
    )]
    AcceptUnseen,
    #[error(
        "tracefs is not mounted (no kprobe_events): {limit}. Mount tracefs on \
         /sys/kernel/tracing and restart netio",
        limit = PMU_LIMIT
    )]
    NoTracefs,
    /// The kretprobe (and those after it) went through the kprobe PMU.
    #[error("{0}; {limit}", limit = PMU_LIMIT)]
    KretprobeThroughPmu(KretprobeError),
    #[error(
        "idle peers are not retired: the kernel refused the array of maps netio waits for \
         running programs with ({0}), so a process that has had more clients than \
         capacity.peers counts its new ones under `other` (totals stay exact)"
    )]
    PeersNotRetired(libbpf_rs::Error),
    #[error("{what} not counted: cannot attach {prog}: {error}")]
    OptionalGroupFailed {
        what: &'static str,
        prog: Prog,
        error: libbpf_rs::Error,
    },
}

/// Why every counted event takes the hash path, on a backend that has the
/// socket path where the kernel allows it.
#[derive(Debug, thiserror::Error)]
pub enum HashPathReason {
    #[error(transparent)]
    Kernel(#[from] NoSocketPath),
    #[error(transparent)]
    Disabled(#[from] Disabled),
    /// The backend with the socket path did not load or attach.
    #[error(transparent)]
    Refused(Box<LoadError>),
    /// The pinned programs adopted count through the hash path, as the
    /// netio that loaded them found they had to.
    #[error("the adopted pinned programs count through the hash path")]
    Adopted,
}

/// What one backend attached on this kernel, and what it cannot see.
#[derive(Debug)]
pub struct BackendReport {
    pub backend: Backend,
    /// The backend's counting programs and, with the socket path, its
    /// destroy-time drain; not the lifecycle programs every backend has.
    pub programs: Vec<Prog>,
    /// The socket path's drain iterator, attached when the socket path is on.
    pub drain_iterator: Option<Prog>,
    /// The optional groups that attached.
    pub optional: Vec<OptionalGroup>,
    /// What this kernel keeps the backend from seeing, known before loading.
    pub notes: Vec<BlindSpot>,
    /// What failed to attach, and is not seen (or seen less) because of it.
    pub failed: Vec<BlindSpot>,
    /// Set when the socket path was unavailable: why.
    pub hash_path: Option<HashPathReason>,
}

impl BackendReport {
    /// Everything this backend cannot count here: the notes, then what failed.
    pub fn blind_spots(&self) -> impl Iterator<Item = &BlindSpot> {
        self.notes.iter().chain(&self.failed)
    }
}

/// The outcome of trying one backend: its report, or why it cannot be used.
#[derive(Debug)]
pub struct Attempt {
    pub backend: Backend,
    pub result: Result<BackendReport, LoadError>,
}
