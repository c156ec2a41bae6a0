//! The backend chain: which hooks count bytes, what each needs from the
//! kernel, and the order `auto` tries them in.

use std::fmt;
use std::str::FromStr;

/// A way to hook TCP sends and receives. Each is a complete, exact set of
/// hooks; they differ in what the kernel must offer and in cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// fexit on tcp_sendmsg / tcp_sendpage / tcp_recvmsg / tcp_splice_read.
    /// Needs BTF and BPF trampolines (5.5+); sees every path directly.
    Fentry,
    /// The sock_send_length / sock_recv_length tracepoints (6.3+) as raw
    /// tracepoints, plus the splice/sendfile syscall tracepoints for the
    /// splice-from-socket path those tracepoints do not see.
    Tracepoint,
    /// kprobe + kretprobe on the fentry backend's functions: for kernels
    /// without trampolines. Costliest, and kretprobes can miss under load.
    Kprobe,
}

impl Backend {
    /// The order `auto` tries: fentry sees every path with the least
    /// machinery; tracepoints need 6.3+ (and before 6.5 do not see sendfile,
    /// which went through sendpage); kprobes cost ~5x more per event.
    pub const PREFERENCE: [Backend; 3] = [Backend::Fentry, Backend::Tracepoint, Backend::Kprobe];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Fentry => "fentry",
            Backend::Tracepoint => "tracepoint",
            Backend::Kprobe => "kprobe",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asked for: one backend, or the best one that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Auto,
    Only(Backend),
}

impl FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "fentry" => Ok(BackendChoice::Only(Backend::Fentry)),
            "tracepoint" => Ok(BackendChoice::Only(Backend::Tracepoint)),
            "kprobe" => Ok(BackendChoice::Only(Backend::Kprobe)),
            other => Err(format!(
                "unknown backend {other:?}: expected auto, fentry, tracepoint or kprobe"
            )),
        }
    }
}

impl BackendChoice {
    pub fn candidates(self) -> Vec<Backend> {
        match self {
            BackendChoice::Auto => Backend::PREFERENCE.to_vec(),
            BackendChoice::Only(b) => vec![b],
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendChoice::Auto => f.write_str("auto"),
            BackendChoice::Only(b) => b.fmt(f),
        }
    }
}
