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
    /// The kernel said EPERM to a load or an attach: that error, and why
    /// it likely did.
    #[error("{error}: {denied}")]
    Denied {
        error: Box<LoadError>,
        denied: Denied,
    },
    #[error("the BPF object's .bss is not mapped")]
    NoBss,
    #[error("cannot map the .bss into memory: {0}")]
    MapBss(io::Error),
    #[error("cannot reuse the pinned map {map}: {error}")]
    Adopt {
        map: String,
        error: libbpf_rs::Error,
    },
    #[error("cannot map the tracked map into memory: {0}")]
    MapTracked(io::Error),
    #[error("cannot map the target_fallback map into memory: {0}")]
    MapFallback(io::Error),
    #[error("cannot open the event ring buffer: {0}")]
    RingBuffer(libbpf_rs::Error),
}

impl LoadError {
    /// The kernel refused to load a backend's programs; with the likely
    /// cause when it said EPERM.
    pub(crate) fn load(backend: Backend, error: libbpf_rs::Error, hint: LibbpfHint) -> LoadError {
        let eperm = os_error(&error) == Some(libc::EPERM);
        explained(
            eperm,
            LoadError::Load {
                backend,
                error,
                hint,
            },
        )
    }

    /// A program could not be attached; with the likely cause when the
    /// kernel said EPERM.
    pub(crate) fn attach(prog: Prog, error: libbpf_rs::Error, hint: LibbpfHint) -> LoadError {
        let eperm = os_error(&error) == Some(libc::EPERM);
        explained(eperm, LoadError::Attach { prog, error, hint })
    }

    /// What netio found when the kernel refused with EPERM, if it did.
    pub fn denied(&self) -> Option<&Denied> {
        match self {
            LoadError::Denied { denied, .. } => Some(denied),
            _ => None,
        }
    }

    /// The error without the cause netio found, for a caller that says
    /// the cause once for several errors.
    pub fn without_cause(&self) -> &LoadError {
        match self {
            LoadError::Denied { error, .. } => error,
            other => other,
        }
    }
}

/// `error`, with what netio finds about why when the kernel said EPERM.
fn explained(eperm: bool, error: LoadError) -> LoadError {
    if eperm {
        LoadError::Denied {
            error: Box::new(error),
            denied: Denied::find(),
        }
    } else {
        error
    }
}

/// The errno of a libbpf error, which it shows only as "(os error N)".
fn os_error(error: &libbpf_rs::Error) -> Option<i32> {
    let text = error.to_string();
    let code = text.rsplit_once("(os error ")?.1.strip_suffix(')')?;
    code.parse().ok()
}

/// The capabilities that loading and attaching netio's programs needs
/// since Linux 5.8 (before, CAP_SYS_ADMIN, which still stands for both).
const NEEDED: [(&str, u32); 2] = [("CAP_BPF", 39), ("CAP_PERFMON", 38)];
const CAP_SYS_ADMIN: u32 = 21;

/// What netio found when the kernel said EPERM: who it runs as, the
/// capabilities it lacks, and kernel lockdown. Its message names the
/// likely cause and what to do, from what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub euid: u32,
    /// Of CAP_BPF and CAP_PERFMON, those netio does not hold (none with
    /// CAP_SYS_ADMIN).
    pub lacking: Vec<&'static str>,
    pub lockdown: Lockdown,
}

/// Kernel lockdown as netio could find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lockdown {
    /// The mode in force (`none`, `integrity`, `confidentiality`) and
    /// where it was read.
    Mode { mode: String, from: &'static str },
    /// Why it could not be found.
    Unknown(String),
}

/// Where the kernel says its lockdown mode, as "none [integrity] confidentiality".
const LOCKDOWN: &str = "/sys/kernel/security/lockdown";

impl Denied {
    /// Reads who netio runs as (its effective uid and capabilities) and
    /// kernel lockdown, now.
    pub fn find() -> Denied {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let caps = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| effective_caps(&s));
        Denied::of(euid, caps, lockdown())
    }

    /// From the facts: `caps` is the effective capability set, if known
    /// (unknown, root is taken to hold every capability).
    pub fn of(euid: u32, caps: Option<u64>, lockdown: Lockdown) -> Denied {
        let has = |bit: u32| caps.map_or(euid == 0, |c| c & (1 << bit) != 0);
        let lacking = if has(CAP_SYS_ADMIN) {
            Vec::new()
        } else {
            NEEDED
                .iter()
                .filter(|(_, bit)| !has(*bit))
                .map(|(name, _)| *name)
                .collect()
        };
        Denied {
            euid,
            lacking,
            lockdown,
        }
    }

    /// Whether netio lacks the privileges to load BPF programs at all, so
    /// that no backend can load until it has them.
    pub fn lacks_privileges(&self) -> bool {
        !self.lacking.is_empty()
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lacking = self.lacking.join(" and ");
        match (self.lacks_privileges(), self.euid) {
            (true, 0) => write!(
                f,
                "netio runs as root but without {lacking} (a container or a unit's \
                 CapabilityBoundingSet dropped it): give it CAP_BPF and CAP_PERFMON"
            ),
            (true, uid) => write!(
                f,
                "netio runs as uid {uid}, not root, without {lacking}: run it as root, \
                 or give it CAP_BPF and CAP_PERFMON"
            ),
            (false, uid) => write!(
                f,
                "netio has CAP_BPF and CAP_PERFMON{}, so it is the kernel's policy: {}; \
                 a hardened kernel or a security module can refuse these programs even \
                 to root, and the kernel log (dmesg) may say which",
                if uid == 0 { " as root" } else { "" },
                self.lockdown
            ),
        }
    }
}

impl std::fmt::Display for Lockdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lockdown::Mode { mode, from } if mode == "none" => {
                write!(f, "kernel lockdown is off ({from})")
            }
            Lockdown::Mode { mode, from } => {
                write!(f, "kernel lockdown is in {mode} mode ({from})")
            }
            Lockdown::Unknown(why) => write!(f, "kernel lockdown is unknown ({why})"),
        }
    }
}

/// CapEff of /proc/PID/status, the effective capabilities.
fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The lockdown mode from securityfs, else from `lockdown=` on the kernel
/// command line, else why neither says.
fn lockdown() -> Lockdown {
    let why = match std::fs::read_to_string(LOCKDOWN) {
        Ok(text) => match lockdown_mode(&text) {
            Some(mode) => {
                return Lockdown::Mode {
                    mode,
                    from: LOCKDOWN,
                }
            }
            None => format!("{LOCKDOWN} says {:?}", text.trim()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mounted =
                std::fs::read_dir("/sys/kernel/security").is_ok_and(|mut d| d.next().is_some());
            if mounted {
                format!("no {LOCKDOWN}: the kernel has no lockdown")
            } else {
                "/sys/kernel/security is empty: securityfs is not mounted".into()
            }
        }
        Err(e) => format!("{LOCKDOWN}: {e}"),
    };
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    match cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("lockdown="))
    {
        Some(mode) => Lockdown::Mode {
            mode: mode.to_string(),
            from: "lockdown= on the kernel command line",
        },
        None => Lockdown::Unknown(why),
    }
}

/// The bracketed word of "none [integrity] confidentiality".
fn lockdown_mode(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let len = text[start..].find(']')?;
    Some(text[start..start + len].to_string())
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
    #[error("cannot set the uids of a target's `user`: {error}")]
    Uids { error: libbpf_rs::Error },
    #[error("cannot set cgroup {id}: {error}")]
    Cgroup { id: u64, error: libbpf_rs::Error },
    #[error(
        "cannot track process {tgid}: its PID is beyond the {entries} the tracked map holds \
         (pid_max was raised after netio started: restart netio)"
    )]
    PidBeyond { tgid: u32, entries: u32 },
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

    const ROOT_CAPS: u64 = 0x1ff_feff_ffff;

    fn unknown() -> Lockdown {
        Lockdown::Unknown("/sys/kernel/security is empty: securityfs is not mounted".into())
    }

    #[test]
    fn eperm_as_a_user_without_capabilities_says_to_run_as_root() {
        let d = Denied::of(65534, Some(0), unknown());
        assert!(d.lacks_privileges());
        assert_eq!(
            d.to_string(),
            "netio runs as uid 65534, not root, without CAP_BPF and CAP_PERFMON: run it as \
             root, or give it CAP_BPF and CAP_PERFMON"
        );
        // CAP_BPF alone is not enough; CAP_SYS_ADMIN is.
        let bpf_only = Denied::of(1000, Some(1 << 39), unknown());
        assert_eq!(bpf_only.lacking, ["CAP_PERFMON"]);
        assert!(!Denied::of(1000, Some(1 << 21), unknown()).lacks_privileges());
        let e = LoadError::Denied {
            error: Box::new(LoadError::NoBss),
            denied: d.clone(),
        };
        assert_eq!(e.denied(), Some(&d));
        assert_eq!(
            e.without_cause().to_string(),
            "the BPF object's .bss is not mapped"
        );
        assert!(e
            .to_string()
            .starts_with("the BPF object's .bss is not mapped: netio runs as uid 65534"));
    }

    #[test]
    fn eperm_as_root_without_a_capability_says_which_was_dropped() {
        let d = Denied::of(0, Some(ROOT_CAPS & !(1 << 38) & !(1 << 21)), unknown());
        assert_eq!(
            d.to_string(),
            "netio runs as root but without CAP_PERFMON (a container or a unit's \
             CapabilityBoundingSet dropped it): give it CAP_BPF and CAP_PERFMON"
        );
    }

    #[test]
    fn eperm_with_every_capability_is_the_kernels_policy_with_its_lockdown() {
        let d = Denied::of(0, Some(ROOT_CAPS), unknown());
        assert!(!d.lacks_privileges());
        assert_eq!(
            d.to_string(),
            "netio has CAP_BPF and CAP_PERFMON as root, so it is the kernel's policy: \
             kernel lockdown is unknown (/sys/kernel/security is empty: securityfs is not \
             mounted); a hardened kernel or a security module can refuse these programs \
             even to root, and the kernel log (dmesg) may say which"
        );
        let mode = |m: &str| Lockdown::Mode {
            mode: m.into(),
            from: LOCKDOWN,
        };
        assert_eq!(
            mode("integrity").to_string(),
            "kernel lockdown is in integrity mode (/sys/kernel/security/lockdown)"
        );
        assert_eq!(
            mode("none").to_string(),
            "kernel lockdown is off (/sys/kernel/security/lockdown)"
        );
        assert_eq!(
            lockdown_mode("none [integrity] confidentiality\n").as_deref(),
            Some("integrity")
        );
        assert_eq!(
            effective_caps("Name:\tnetio\nCapEff:\t000001fffeffffff\n"),
            Some(ROOT_CAPS)
        );
    }

    #[test]
    fn the_errno_of_a_libbpf_error_is_read_from_its_message() {
        let eperm = libbpf_rs::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(os_error(&eperm), Some(libc::EPERM));
        let eacces = libbpf_rs::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(os_error(&eacces), Some(libc::EACCES));
        let load = LoadError::load(Backend::Fentry, eacces, LibbpfHint::default());
        assert!(load.denied().is_none(), "{load}");
        let load = LoadError::load(Backend::Fentry, eperm, LibbpfHint::default());
        assert!(load.denied().is_some(), "{load}");
        assert!(
            load.to_string().starts_with(
                "the kernel refused to load the fentry programs: Operation not permitted \
                 (os error 1): netio "
            ),
            "{load}"
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
