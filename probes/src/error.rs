//! Why a backend cannot be used, why a step of loading or attaching it
//! failed, and why a map operation failed: typed, and worded for the user,
//! who reads them in `netio kernel`, on stderr and in records.

use std::io;
use std::num::ParseIntError;
use std::path::PathBuf;

use crate::backend::Backend;
use crate::libbpf_log::LibbpfHint;
use crate::progs::Prog;

/// What the running kernel lacks for a backend, found from BTF and sysfs
/// before anything is loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error(
        "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; needs CONFIG_DEBUG_INFO_BTF)"
    )]
    NoBtf,
    #[error("cannot read the kernel's BTF: {0}")]
    BtfUnreadable(String),
    #[error(
        "the kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe is missing; \
         needs CONFIG_KPROBES)"
    )]
    NoKprobePmu,
    #[error(
        "the kernel has no sock_send_length/sock_recv_length tracepoints (added in Linux 6.3)"
    )]
    NoSockTracepoints,
    #[error("the kernel has no function {0} in its BTF")]
    NoFunction(&'static str),
    #[error("tcp_recvmsg has {0} parameters here; netio knows 4, 5 and 6")]
    RecvmsgParams(usize),
}

/// What the running kernel lacks for the socket path, found from BTF; what
/// BTF does not show, the load attempt finds out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSocketPath {
    #[error("the kernel has no BTF")]
    NoBtf,
    #[error("the kernel has no tcp_destroy_sock tracepoint")]
    NoDestroyTracepoint,
    #[error("the kernel cannot iterate socket storage (Linux 5.9+)")]
    NoStorageIterator,
}

/// Turned off by the caller's load options, exactly as if the kernel
/// lacked it; `by` says who turned it off (the agent's testing knob).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disabled by {by} (a testing knob)")]
pub struct Disabled {
    pub by: String,
}

/// Why one backend could not be loaded and attached.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    #[error(transparent)]
    Disabled(#[from] Disabled),
    #[error("cannot open the BPF object: {error}{hint}")]
    Open {
        error: libbpf_rs::Error,
        hint: LibbpfHint,
    },
    #[error("the BPF object has no .rodata")]
    NoRodata,
    #[error("cannot size the {map} map: {error}")]
    Size {
        map: &'static str,
        error: libbpf_rs::Error,
    },
    #[error("the kernel refused to load the {backend} programs: {error}{hint}")]
    Load {
        backend: Backend,
        error: libbpf_rs::Error,
        hint: LibbpfHint,
    },
    #[error("cannot attach {prog}: {error}{hint}")]
    Attach {
        prog: Prog,
        error: libbpf_rs::Error,
        hint: LibbpfHint,
    },
    #[error("the BPF object's .bss is not mapped")]
    NoBss,
    #[error("cannot open the event ring buffer: {0}")]
    RingBuffer(libbpf_rs::Error),
}

/// Why a kretprobe could not be created in tracefs and attached there.
#[derive(Debug, thiserror::Error)]
#[error("cannot attach {prog} (kretprobe on {func}): {step}")]
pub struct KretprobeError {
    pub prog: Prog,
    pub func: &'static str,
    pub step: KretprobeStep,
}

/// The step of creating and attaching a tracefs kretprobe that failed.
#[derive(Debug, thiserror::Error)]
pub enum KretprobeStep {
    #[error("cannot create it in {}: {error}", path.display())]
    Create { path: PathBuf, error: io::Error },
    #[error("cannot read {}: {error}", path.display())]
    ReadId { path: PathBuf, error: io::Error },
    #[error("cannot read {}: {text:?}: {error}", path.display())]
    ParseId {
        path: PathBuf,
        text: String,
        error: ParseIntError,
    },
    #[error("perf_event_open: {0}")]
    PerfEventOpen(io::Error),
    #[error("{error}{hint}")]
    Attach {
        error: libbpf_rs::Error,
        hint: LibbpfHint,
    },
}

/// Why an operation on the loaded programs' maps failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("cannot set process name {name:?}: {error}")]
    Name {
        name: String,
        error: libbpf_rs::Error,
    },
    #[error("cannot set cgroup {id}: {error}")]
    Cgroup { id: u64, error: libbpf_rs::Error },
    #[error("cannot track process {tgid}: {error}")]
    Track { tgid: u32, error: libbpf_rs::Error },
    #[error("cannot drain sockets: {0}")]
    DrainOpen(libbpf_rs::Error),
    #[error("cannot drain sockets: {0}")]
    DrainRead(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_kernel_lacks_is_worded_for_netio_kernel() {
        assert_eq!(
            Unsupported::NoKprobePmu.to_string(),
            "the kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe is missing; \
             needs CONFIG_KPROBES)"
        );
        assert_eq!(
            Unsupported::NoSockTracepoints.to_string(),
            "the kernel has no sock_send_length/sock_recv_length tracepoints (added in Linux 6.3)"
        );
        assert_eq!(
            NoSocketPath::NoStorageIterator.to_string(),
            "the kernel cannot iterate socket storage (Linux 5.9+)"
        );
        let off = LoadError::from(Disabled {
            by: "NETIO_DISABLE_BACKENDS=fentry,kprobe".into(),
        });
        assert_eq!(
            off.to_string(),
            "disabled by NETIO_DISABLE_BACKENDS=fentry,kprobe (a testing knob)"
        );
    }

    #[test]
    fn a_kretprobe_error_names_the_program_the_function_and_the_step() {
        let e = KretprobeError {
            prog: Prog::KrpTcpRecvmsg,
            func: "tcp_recvmsg",
            step: KretprobeStep::ParseId {
                path: "/t/events/netio/e/id".into(),
                text: "x\n".into(),
                error: "x".parse::<u64>().unwrap_err(),
            },
        };
        assert_eq!(
            e.to_string(),
            "cannot attach krp_tcp_recvmsg (kretprobe on tcp_recvmsg): cannot read \
             /t/events/netio/e/id: \"x\\n\": invalid digit found in string"
        );
    }
}
