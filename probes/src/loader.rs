//! Loads the programs of one backend, sized from the config, and gives the
//! agent typed access to the maps: tracking, traffic counters, loss
//! counters and lifecycle events.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::mem::{size_of, MaybeUninit};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use libbpf_rs::btf::types::{Func, FuncProto};
use libbpf_rs::btf::Btf;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{
    Link, MapCore, MapFlags, OpenObject, PrintLevel, ProgramMut, RingBuffer, RingBufferBuilder,
};

use crate::backend::{Backend, BackendChoice};
use crate::skel::{types, NetioSkel, NetioSkelBuilder};
use crate::COMM_MAX;

/// Map capacities, from the config.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// Tracked processes at once.
    pub processes: u32,
    /// (process, peer) pairs with their own counters at once.
    pub peers: u32,
    /// Configured process names.
    pub names: u32,
    /// Configured units and cgroups.
    pub cgroups: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            processes: 4096,
            peers: 16384,
            names: 256,
            cgroups: 64,
        }
    }
}

/// The outcome of trying one backend.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub backend: Backend,
    /// Ok: what was attached (and any path it cannot see); Err: why not.
    pub result: Result<String, String>,
}

/// Programs every backend loads: they keep the tracked set current.
const LIFECYCLE: &[&str] = &["raw_tp_fork", "raw_tp_exec", "raw_tp_exit"];

/// The programs of the socket path (see netio.bpf.c): the destroy-time
/// drain, attached like the others, and the drain iterator, run by
/// [`Probes::drain_sockets`].
const SOCKET_DRAIN: &str = "tp_tcp_destroy_sock";
const SOCKET_ITER: &str = "iter_drain_sockets";

/// The tracking slots (TRACK_SLOTS in netio.bpf.c): a count of tracked
/// processes in the low 32 bits, an epoch moving by 2 in the high 32.
const TRACK_SLOTS: u32 = 32768;
const SLOT_ONE: u64 = 1;
const SLOT_EPOCH_STEP: u64 = 2 << 32;

/// What the running kernel offers, read once from BTF and sysfs.
struct KernelFacts {
    btf: Result<(), String>,
    funcs: Vec<(&'static str, Option<usize>)>,
    sock_tracepoints: bool,
    kprobe_pmu: bool,
    /// Why the socket path cannot work here, if it cannot (checked from
    /// BTF; what BTF does not show, the load attempt finds out).
    socket_path: Result<(), String>,
}

impl KernelFacts {
    fn read() -> Self {
        const FUNCS: [&str; 5] = [
            "tcp_sendmsg",
            "tcp_sendpage",
            "tcp_recvmsg",
            "tcp_splice_read",
            "tcp_read_sock",
        ];
        let mut facts = KernelFacts {
            btf: Err(String::new()),
            funcs: Vec::new(),
            sock_tracepoints: false,
            kprobe_pmu: Path::new("/sys/bus/event_source/devices/kprobe").exists(),
            socket_path: Err("the kernel has no BTF".into()),
        };
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            facts.btf = Err(
                "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; \
                             needs CONFIG_DEBUG_INFO_BTF)"
                    .into(),
            );
            return facts;
        }
        let btf = match Btf::from_vmlinux() {
            Ok(btf) => btf,
            Err(e) => {
                facts.btf = Err(format!("cannot read the kernel's BTF: {e}"));
                return facts;
            }
        };
        facts.btf = Ok(());
        for name in FUNCS {
            let params = btf
                .type_by_name::<Func<'_>>(name)
                .and_then(|f| f.next_type())
                .and_then(|t| FuncProto::try_from(t).ok())
                .map(|p| p.len());
            facts.funcs.push((name, params));
        }
        let has = |name: &str| {
            btf.type_by_name::<libbpf_rs::btf::BtfType<'_>>(name)
                .is_some()
        };
        facts.sock_tracepoints = has("btf_trace_sock_send_length");
        facts.socket_path = if !has("btf_trace_tcp_destroy_sock") {
            Err("the kernel has no tcp_destroy_sock tracepoint".into())
        } else if !has("bpf_iter__bpf_sk_storage_map") {
            Err("the kernel cannot iterate socket storage (Linux 5.9+)".into())
        } else {
            Ok(())
        };
        facts
    }

    fn params(&self, func: &str) -> Option<usize> {
        self.funcs
            .iter()
            .find(|(n, _)| *n == func)
            .and_then(|(_, p)| *p)
    }

    /// The programs a backend needs here, plus the optional ones, or why it
    /// cannot work on this kernel.
    fn plan(&self, backend: Backend) -> Result<Plan, String> {
        self.btf.clone()?;
        let mut plan = Plan::default();
        let (send, sendpage, recv, recv_old, recv_new, splice) = match backend {
            Backend::Fentry => (
                "fexit_tcp_sendmsg",
                "fexit_tcp_sendpage",
                "fexit_tcp_recvmsg",
                "fexit_tcp_recvmsg_nonblock",
                "fexit_tcp_recvmsg_noaddrlen",
                "fexit_tcp_splice_read",
            ),
            Backend::Kprobe => {
                if !self.kprobe_pmu {
                    return Err("the kernel has no kprobe PMU \
                                (/sys/bus/event_source/devices/kprobe is missing; \
                                needs CONFIG_KPROBES)"
                        .into());
                }
                (
                    "kp_tcp_sendmsg",
                    "kp_tcp_sendpage",
                    "kp_tcp_recvmsg",
                    "kp_tcp_recvmsg_nonblock",
                    // flags is the 4th argument with or without addr_len.
                    "kp_tcp_recvmsg",
                    "kp_tcp_splice_read",
                )
            }
            Backend::Tracepoint => {
                if !self.sock_tracepoints {
                    return Err("the kernel has no sock_send_length/sock_recv_length \
                                tracepoints (added in Linux 6.3)"
                        .into());
                }
                plan.required = vec!["tp_sock_send_length", "tp_sock_recv_length"];
                plan.optional = vec![(
                    "splice and sendfile reading from a socket",
                    vec![
                        "tp_enter_splice",
                        "tp_exit_splice",
                        "tp_enter_sendfile",
                        "tp_exit_sendfile",
                    ],
                )];
                if self.params("tcp_sendpage").is_some() {
                    plan.notes.push(
                        "this kernel sends sendfile/splice through tcp_sendpage, which the \
                         tracepoints do not see: prefer fentry or kprobe"
                            .into(),
                    );
                }
                return Ok(plan);
            }
        };
        let need = |f: &str| {
            self.params(f)
                .ok_or_else(|| format!("the kernel has no function {f} in its BTF"))
        };
        need("tcp_sendmsg")?;
        need("tcp_splice_read")?;
        let recv_params = need("tcp_recvmsg")?;
        plan.required.push(send);
        plan.required.push(splice);
        // tcp_recvmsg lost its `nonblock` argument in 5.19, so `flags` moved,
        // and newer kernels (6.18 here) dropped `addr_len`, so the return value moved.
        plan.required.push(match recv_params {
            6 => recv_old,
            5 => recv,
            4 => recv_new,
            n => {
                return Err(format!(
                    "tcp_recvmsg has {n} parameters here; netio knows 4, 5 and 6"
                ))
            }
        });
        if self.params("tcp_sendpage").is_some() {
            // Before 6.5, sendfile and splice to a socket went this way.
            plan.required.push(sendpage);
        }
        if backend == Backend::Kprobe {
            let rets: Vec<&'static str> = plan
                .required
                .iter()
                .map(|p| match *p {
                    "kp_tcp_sendmsg" => "krp_tcp_sendmsg",
                    "kp_tcp_sendpage" => "krp_tcp_sendpage",
                    "kp_tcp_splice_read" => "krp_tcp_splice_read",
                    _ => "krp_tcp_recvmsg",
                })
                .collect();
            plan.required.extend(rets);
        }
        Ok(plan)
    }
}

#[derive(Default)]
struct Plan {
    required: Vec<&'static str>,
    /// Groups that widen what is seen; a failure is reported, not fatal.
    optional: Vec<(&'static str, Vec<&'static str>)>,
    notes: Vec<String>,
}

impl Plan {
    fn all(&self) -> impl Iterator<Item = &&'static str> {
        self.required
            .iter()
            .chain(self.optional.iter().flat_map(|(_, p)| p.iter()))
    }
}

/// kretprobe instances per probe: how many threads can be inside the
/// probed function at once and still have their return seen. A thread
/// blocked in tcp_recvmsg (or in tcp_sendmsg, waiting for send buffer) holds
/// one for as long as it waits, and a return without one is silently
/// missed. libbpf attaches through the kprobe PMU, which cannot set this:
/// the kernel then allows max(10, 2 x CPUs), or only the number of CPUs
/// without CONFIG_PREEMPTION (Debian's 5.10) -- the kernel matrix measured
/// 20 concurrent connections losing up to 90% of their bytes that way. So
/// netio creates its kretprobes in tracefs (`rN:` in kprobe_events) with
/// the kernel's maximum, KRETPROBE_MAXACTIVE_MAX.
const KRETPROBE_MAXACTIVE: u32 = 4096;

/// The tracefs group of netio's kretprobe events; each event is named
/// `netio_PID_SEQ_FUNCTION`, so concurrent netio processes never collide
/// and the leftovers of one that was killed can be recognised.
const KPROBE_GROUP: &str = "netio";

fn tracefs() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("kprobe_events").exists())
}

/// Appends one command to tracefs's kprobe_events. Append, never truncate:
/// opening it for writing without O_APPEND would delete every kprobe event
/// on the machine.
fn kprobe_events_write(tracefs: &Path, command: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(tracefs.join("kprobe_events"))?
        .write_all(command.as_bytes())
}

/// Removes the kretprobe events of netio processes that no longer exist
/// (killed before they could remove their own).
fn remove_stale_kretprobes(tracefs: &Path) {
    let Ok(list) = std::fs::read_to_string(tracefs.join("kprobe_events")) else {
        return;
    };
    for line in list.lines() {
        let Some(event) = line
            .split_whitespace()
            .next()
            .and_then(|e| e.split_once(':'))
            .and_then(|(_, e)| e.strip_prefix(KPROBE_GROUP))
            .and_then(|e| e.strip_prefix('/'))
        else {
            continue;
        };
        let pid = event
            .strip_prefix("netio_")
            .and_then(|e| e.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = kprobe_events_write(tracefs, &format!("-:{KPROBE_GROUP}/{event}"));
            }
        }
    }
}

/// A kretprobe created in tracefs, with its program attached; dropping it
/// detaches the program and removes the event.
struct TracefsKretprobe {
    link: Option<Link>,
    tracefs: PathBuf,
    event: String,
}

impl Drop for TracefsKretprobe {
    fn drop(&mut self) {
        // Detaching closes the perf event; the kernel keeps a busy event.
        drop(self.link.take());
        let _ = kprobe_events_write(&self.tracefs, &format!("-:{KPROBE_GROUP}/{}", self.event));
    }
}

fn attach_kretprobe(
    prog: &ProgramMut<'_>,
    func: &str,
    tracefs: &Path,
) -> Result<TracefsKretprobe, String> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let event = format!(
        "netio_{}_{}_{func}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let prog_name = prog.name().to_string_lossy().into_owned();
    let fail = |what: String| format!("cannot attach {prog_name} (kretprobe on {func}): {what}");
    kprobe_events_write(
        tracefs,
        &format!("r{KRETPROBE_MAXACTIVE}:{KPROBE_GROUP}/{event} {func}"),
    )
    .map_err(|e| {
        fail(format!(
            "cannot create it in {}: {e}",
            tracefs.join("kprobe_events").display()
        ))
    })?;
    // From here on, dropping `probe` removes the event again.
    let mut probe = TracefsKretprobe {
        link: None,
        tracefs: tracefs.to_path_buf(),
        event,
    };
    let id_file = tracefs
        .join("events")
        .join(KPROBE_GROUP)
        .join(&probe.event)
        .join("id");
    let id: u64 = std::fs::read_to_string(&id_file)
        .map_err(|e| e.to_string())
        .and_then(|s| s.trim().parse().map_err(|e| format!("{s:?}: {e}")))
        .map_err(|e| fail(format!("cannot read {}: {e}", id_file.display())))?;
    let fd = perf_event_open_tracepoint(id).map_err(|e| fail(format!("perf_event_open: {e}")))?;
    match prog.attach_perf_event(fd) {
        Ok(link) => probe.link = Some(link),
        Err(e) => {
            // SAFETY: fd is ours and not owned by anything else yet.
            unsafe { libc::close(fd) };
            return Err(fail(format!("{e}{}", libbpf_hint())));
        }
    }
    Ok(probe)
}

/// A perf event for trace event `id` (all tasks; the BPF program attached
/// to it runs on every CPU, as with libbpf's own tracefs kprobes).
fn perf_event_open_tracepoint(id: u64) -> std::io::Result<i32> {
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    // struct perf_event_attr up to PERF_ATTR_SIZE_VER5, which every kernel
    // netio runs on knows: type, size, config; the rest stays zero.
    const ATTR_SIZE: u32 = 112;
    let mut attr = [0u8; ATTR_SIZE as usize];
    attr[0..4].copy_from_slice(&PERF_TYPE_TRACEPOINT.to_ne_bytes());
    attr[4..8].copy_from_slice(&ATTR_SIZE.to_ne_bytes());
    attr[8..16].copy_from_slice(&id.to_ne_bytes());
    // SAFETY: attr is a fully initialised perf_event_attr of the size it
    // declares; the other arguments are plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd as i32)
}

/// A testing knob, not a setting: `NETIO_DISABLE_BACKENDS=fentry` (a
/// comma-separated list of backend names) makes those backends refuse to
/// load, exactly as if the kernel lacked them, so that `auto`'s fallback
/// can be tested on kernels where every backend works (the kernel matrix,
/// scripts/kernels/matrix). `netio kernel` and `netio run` both honour it.
/// `socket-path` in the list turns the socket path off, so that the hash
/// path can be tested on kernels that have both.
const DISABLE_ENV: &str = "NETIO_DISABLE_BACKENDS";

fn disabled_for_testing(name: &str) -> Option<String> {
    let list = std::env::var(DISABLE_ENV).ok()?;
    list.split(',')
        .any(|b| b.trim() == name)
        .then(|| format!("disabled by {DISABLE_ENV}={list} (a testing knob)"))
}

/// The globals the kernel programs and userspace both write: the tracking
/// slots in front of `tracked` and the drain counts. They live in the
/// object's memory-mapped .bss, shared with the kernel, so they are only
/// touched through atomics.
struct Shared {
    bss: *mut types::bss,
}

impl Shared {
    fn of(skel: &mut NetioSkel<'static>) -> Result<Shared, String> {
        let bss = skel
            .maps
            .bss_data
            .as_deref_mut()
            .ok_or("the BPF object's .bss is not mapped")? as *mut types::bss;
        Ok(Shared { bss })
    }

    fn slot(&self, tgid: u32) -> &AtomicU64 {
        let i = (tgid % TRACK_SLOTS) as usize;
        // SAFETY: the mapping lives as long as the skeleton, which Probes
        // holds beside this; the kernel writes the slot only atomically too.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.bss).track_slots[i])) }
    }

    /// (done, begun), read in that order.
    fn drains(&self) -> (u64, u64) {
        // SAFETY: as slot.
        unsafe {
            let done = AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.bss).drains_done));
            let begun = AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.bss).drains_begun));
            let d = done.load(Ordering::SeqCst);
            (d, begun.load(Ordering::SeqCst))
        }
    }
}

/// libbpf's own messages for the attempt under way: the reason behind a
/// bare "Operation not permitted" is usually in them.
static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn capture_libbpf(level: PrintLevel, msg: String) {
    if level == PrintLevel::Debug {
        return;
    }
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        if log.len() < 200 {
            log.push(msg.trim_end().to_string());
        }
    }
}

/// The useful part of libbpf's log for a failed attempt: which program
/// failed and the verifier's last word on it (the line before "processed N
/// insns"), else the last line that reports a failure.
fn libbpf_hint() -> String {
    let log = std::mem::take(&mut *LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner()));
    let lines: Vec<&str> = log.iter().flat_map(|m| m.lines()).map(str::trim).collect();
    let prog = lines.iter().find(|l| {
        l.contains("prog '") && (l.contains("failed to load") || l.contains("load failed"))
    });
    let verifier = lines
        .iter()
        .position(|l| l.starts_with("processed ") && l.contains(" insns"))
        .and_then(|i| {
            lines[..i]
                .iter()
                .rev()
                .find(|l| !l.is_empty() && !l.starts_with(';'))
        });
    let last = lines
        .iter()
        .rev()
        .find(|l| l.contains("failed") || l.contains("error") || l.contains("Error"));
    let parts: Vec<String> = match (prog, verifier) {
        (Some(p), Some(v)) => vec![p.to_string(), format!("verifier: {v}")],
        (Some(p), None) => vec![p.to_string()],
        (None, _) => last.map(|l| vec![l.to_string()]).unwrap_or_default(),
    };
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (libbpf: {})", parts.join("; "))
    }
}

/// A remote address, or the per-process bucket that takes the bytes of
/// peers the full traffic map had no room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerAddr {
    Ip(IpAddr),
    Other,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(ip) => ip.fmt(f),
            PeerAddr::Other => f.write_str("other"),
        }
    }
}

/// A counter's key: one process (tgid and generation) and one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficKey {
    pub tgid: u32,
    pub gen: u32,
    pub target: u16,
    pub peer: PeerAddr,
    raw: [u8; size_of::<types::traffic_key>()],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficVal {
    pub sent: u64,
    pub received: u64,
}

impl TrafficKey {
    fn from_raw(bytes: &[u8]) -> Option<Self> {
        let k: types::traffic_key = read_pod(bytes)?;
        let peer = match k.family {
            2 => PeerAddr::Ip(IpAddr::from([k.addr[0], k.addr[1], k.addr[2], k.addr[3]])),
            10 => PeerAddr::Ip(IpAddr::from(k.addr)),
            _ => PeerAddr::Other,
        };
        let mut raw = [0u8; size_of::<types::traffic_key>()];
        let n = raw.len();
        raw.copy_from_slice(&bytes[..n]);
        Some(TrafficKey {
            tgid: k.tgid,
            gen: k.r#gen,
            target: k.target,
            peer,
            raw,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleKind {
    Exec,
    Fork,
    Exit,
}

/// A process event from the kernel, for tracked processes only.
#[derive(Debug, Clone)]
pub struct LifecycleEvent {
    pub kind: LifecycleKind,
    pub tgid: u32,
    pub ppid: u32,
    /// 0 when the kernel could not track it (tracked map full).
    pub gen: u32,
    pub target: u32,
    /// Exec: the kernel matched the name (on at most 15 bytes); false for a
    /// cgroup match or inherited tracking.
    pub matched: bool,
    pub comm: String,
    pub filename: String,
}

/// Loss counters summed over CPUs (see `enum netio_stat` in netio.h).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub peer_overflow: u64,
    pub lost_events: u64,
    pub lost_bytes: u64,
    pub track_full: u64,
    pub events_dropped: u64,
    pub stash_full: u64,
}

fn read_pod<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked, T is a plain #[repr(C)] struct of
    // integers generated from netio.h, valid for any bit pattern.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn pod_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is a #[repr(C)] struct of integers without padding holes
    // that matter to the kernel (keys are zero-initialised before use).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The loaded, attached programs of one backend and their maps.
pub struct Probes {
    links: Vec<Link>,
    /// The kprobe backend's kretprobes, each with its tracefs event.
    retprobes: Vec<TracefsKretprobe>,
    /// The socket path's drain iterator, when this backend has that path.
    drain_iter: Option<Link>,
    shared: Shared,
    ring: RingBuffer<'static>,
    queue: Rc<RefCell<VecDeque<LifecycleEvent>>>,
    skel: NetioSkel<'static>,
    backend: Backend,
    description: String,
    /// Paths this backend cannot see here: kernel limits and hooks that
    /// failed to attach.
    blind_spots: Vec<String>,
}

impl Probes {
    /// Tries the chosen backend, or with `auto` each in order of
    /// preference, and keeps the first that loads and attaches. Every
    /// attempt is returned so the caller can say why others were passed over.
    pub fn load(choice: BackendChoice, cap: Capacity) -> (Option<Probes>, Vec<Attempt>) {
        libbpf_rs::set_print(Some((PrintLevel::Info, capture_libbpf)));
        let facts = KernelFacts::read();
        let mut attempts = Vec::new();
        for backend in choice.candidates() {
            match Self::try_with_socket_path(&facts, backend, cap) {
                Ok(p) => {
                    attempts.push(Attempt {
                        backend,
                        result: Ok(p.description.clone()),
                    });
                    return (Some(p), attempts);
                }
                Err(e) => attempts.push(Attempt {
                    backend,
                    result: Err(e),
                }),
            }
        }
        (None, attempts)
    }

    /// A backend with the socket path where the kernel has what it needs,
    /// else the same backend counting through the hash maps only. The kprobe
    /// backend reads sockets through helpers and never has the socket path.
    fn try_with_socket_path(
        facts: &KernelFacts,
        backend: Backend,
        cap: Capacity,
    ) -> Result<Probes, String> {
        if backend == Backend::Kprobe {
            return Self::try_backend(facts, backend, cap, false);
        }
        let why = match facts
            .socket_path
            .clone()
            .and_then(|()| disabled_for_testing("socket-path").map_or(Ok(()), Err))
        {
            Ok(()) => match Self::try_backend(facts, backend, cap, true) {
                Ok(p) => return Ok(p),
                Err(e) => e,
            },
            Err(e) => e,
        };
        let mut p = Self::try_backend(facts, backend, cap, false)?;
        let first = why.lines().next().unwrap_or_default();
        p.description.push_str(&format!(
            "; every counted event takes the hash path (no socket-local counters, \
             which need Linux 5.12+: {first})"
        ));
        Ok(p)
    }

    fn try_backend(
        facts: &KernelFacts,
        backend: Backend,
        cap: Capacity,
        socket_path: bool,
    ) -> Result<Probes, String> {
        if let Some(why) = disabled_for_testing(backend.name()) {
            return Err(why);
        }
        let mut plan = facts.plan(backend)?;
        if socket_path {
            plan.required.push(SOCKET_DRAIN);
        }
        LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
        // A failed load leaves an object unusable, so each attempt opens its
        // own; the few bytes of storage it borrows live for the process.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = NetioSkelBuilder::default()
            .open(storage)
            .map_err(|e| format!("cannot open the BPF object: {e}{}", libbpf_hint()))?;
        for mut prog in open.open_object_mut().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            let wanted = LIFECYCLE.contains(&name.as_str())
                || plan.all().any(|p| *p == name)
                || (socket_path && name == SOCKET_ITER);
            prog.set_autoload(wanted);
        }
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.sk_fast = socket_path;
        } else if socket_path {
            return Err("the BPF object has no .rodata".into());
        }
        let size = |m: &mut libbpf_rs::OpenMapMut<'_>, n: u32, what: &str| {
            m.set_max_entries(n.max(1))
                .map_err(|e| format!("cannot size the {what} map: {e}"))
        };
        size(&mut open.maps.tracked, cap.processes, "tracked")?;
        size(&mut open.maps.names, cap.names, "names")?;
        size(&mut open.maps.cgroups, cap.cgroups, "cgroups")?;
        size(
            &mut open.maps.traffic,
            cap.peers.saturating_add(cap.processes),
            "traffic",
        )?;
        let mut skel = open.load().map_err(|e| {
            format!(
                "the kernel refused to load the {backend} programs: {e}{}",
                libbpf_hint()
            )
        })?;

        let mut links = Vec::new();
        let mut retprobes = Vec::new();
        let mut missing = Vec::new();
        // kretprobes through tracefs, where they can have enough instances
        // (see KRETPROBE_MAXACTIVE); else through the kprobe PMU, and say
        // what that costs.
        let pmu_limit = "kretprobes attached through the kprobe PMU, where the kernel lets \
                         only a few threads (as few as one per CPU) be inside a probed \
                         function at once: returns beyond that are not counted";
        let mut tracefs = if backend == Backend::Kprobe {
            let t = tracefs();
            match &t {
                Some(t) => remove_stale_kretprobes(t),
                None => missing.push(format!(
                    "tracefs is not mounted (no kprobe_events): {pmu_limit}. Mount tracefs \
                     on /sys/kernel/tracing and restart netio"
                )),
            }
            t
        } else {
            None
        };
        for prog in skel.object_mut().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            if !LIFECYCLE.contains(&name.as_str()) && !plan.required.contains(&name.as_str()) {
                continue;
            }
            if let (Some(t), Some(func)) = (&tracefs, name.strip_prefix("krp_")) {
                match attach_kretprobe(&prog, func, t) {
                    Ok(r) => {
                        retprobes.push(r);
                        continue;
                    }
                    // A read-only or restricted tracefs (containers): the
                    // PMU for this and the remaining kretprobes.
                    Err(why) => {
                        missing.push(format!("{why}; {pmu_limit}"));
                        tracefs = None;
                    }
                }
            }
            let link = prog
                .attach()
                .map_err(|e| format!("cannot attach {name}: {e}{}", libbpf_hint()))?;
            links.push(link);
        }
        let mut attached_optional = Vec::new();
        for (what, group) in &plan.optional {
            let mut group_links = Vec::new();
            let mut failed = None;
            for prog in skel.object_mut().progs_mut() {
                let name = prog.name().to_string_lossy().into_owned();
                if !group.contains(&name.as_str()) {
                    continue;
                }
                match prog.attach() {
                    Ok(l) => group_links.push(l),
                    Err(e) => {
                        failed = Some(format!("{what} not counted: cannot attach {name}: {e}"));
                        break;
                    }
                }
            }
            match failed {
                None => {
                    links.extend(group_links);
                    attached_optional.push(group.join(", "));
                }
                Some(why) => missing.push(why),
            }
        }

        let drain_iter = if socket_path {
            let iter = skel
                .progs
                .iter_drain_sockets
                .attach_iter(skel.maps.sk_accts.as_fd())
                .map_err(|e| format!("cannot attach {SOCKET_ITER}: {e}{}", libbpf_hint()))?;
            Some(iter)
        } else {
            None
        };
        let shared = Shared::of(&mut skel)?;

        let queue: Rc<RefCell<VecDeque<LifecycleEvent>>> = Rc::default();
        let sink = Rc::clone(&queue);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&skel.maps.events, move |data: &[u8]| {
                if let Some(e) = read_pod::<types::lifecycle_event>(data) {
                    let kind = match e.kind {
                        1 => LifecycleKind::Exec,
                        2 => LifecycleKind::Fork,
                        _ => LifecycleKind::Exit,
                    };
                    let as_u8 =
                        |s: &[std::ffi::c_char]| s.iter().map(|&c| c as u8).collect::<Vec<u8>>();
                    sink.borrow_mut().push_back(LifecycleEvent {
                        kind,
                        tgid: e.tgid,
                        ppid: e.ppid,
                        gen: e.r#gen,
                        target: e.target,
                        matched: e.matched == 1,
                        comm: cstr(&as_u8(&e.comm)),
                        filename: cstr(&as_u8(&e.filename)),
                    });
                }
                0
            })
            .map_err(|e| format!("cannot open the event ring buffer: {e}"))?;
        let ring = builder
            .build()
            .map_err(|e| format!("cannot open the event ring buffer: {e}"))?;

        let mut description = plan.required.join(", ");
        if socket_path {
            description.push_str(", ");
            description.push_str(SOCKET_ITER);
        }
        for group in &attached_optional {
            description.push_str(", ");
            description.push_str(group);
        }
        for note in plan.notes.iter().chain(missing.iter()) {
            description.push_str("; ");
            description.push_str(note);
        }
        let blind_spots = plan.notes.iter().chain(missing.iter()).cloned().collect();
        Ok(Probes {
            links,
            retprobes,
            drain_iter,
            shared,
            ring,
            queue,
            skel,
            backend,
            description,
            blind_spots,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What this backend cannot count on this kernel, if anything.
    pub fn blind_spots(&self) -> &[String] {
        &self.blind_spots
    }

    /// What is attached, and any path this backend cannot see here.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn attached_programs(&self) -> usize {
        self.links.len() + self.retprobes.len()
    }

    /// Sets the names the kernel matches at exec. Names are cut to the 15
    /// bytes the kernel keeps of `comm`.
    pub fn set_names(&self, names: &[(String, u32)]) -> Result<(), String> {
        let map = &self.skel.maps.names;
        let old: Vec<Vec<u8>> = map.keys().collect();
        let mut wanted = Vec::new();
        for (name, target) in names {
            let mut key = types::comm_key::default();
            for (dst, src) in key
                .comm
                .iter_mut()
                .zip(name.as_bytes().iter().take(COMM_MAX))
            {
                *dst = *src as _;
            }
            let k = pod_bytes(&key).to_vec();
            map.update(&k, &target.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| format!("cannot set process name {name:?}: {e}"))?;
            wanted.push(k);
        }
        for k in old.into_iter().filter(|k| !wanted.contains(k)) {
            let _ = map.delete(&k);
        }
        Ok(())
    }

    /// Sets the cgroups (by id) whose processes the kernel tracks at exec.
    pub fn set_cgroups(&self, cgroups: &[(u64, u32)]) -> Result<(), String> {
        let map = &self.skel.maps.cgroups;
        let old: Vec<Vec<u8>> = map.keys().collect();
        let wanted: Vec<Vec<u8>> = cgroups
            .iter()
            .map(|(id, _)| id.to_ne_bytes().to_vec())
            .collect();
        for (id, target) in cgroups {
            map.update(&id.to_ne_bytes(), &target.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| format!("cannot set cgroup {id}: {e}"))?;
        }
        for k in old.into_iter().filter(|k| !wanted.contains(k)) {
            let _ = map.delete(&k);
        }
        Ok(())
    }

    /// Tracks a process found by userspace and creates its fallback entry.
    /// Its slot's count goes up before a new entry exists and the slot's
    /// epoch moves on, as in the kernel's track_insert().
    pub fn track(&self, tgid: u32, gen: u32, target: u32) -> Result<(), String> {
        let t = types::tracked { target, r#gen };
        let map = &self.skel.maps.tracked;
        let (k, v) = (tgid.to_ne_bytes(), pod_bytes(&t));
        let slot = self.shared.slot(tgid);
        slot.fetch_add(SLOT_ONE, Ordering::SeqCst);
        let res = if map.update(&k, v, MapFlags::NO_EXIST).is_ok() {
            Ok(())
        } else if map.update(&k, v, MapFlags::EXIST).is_ok() {
            slot.fetch_sub(SLOT_ONE, Ordering::SeqCst);
            Ok(())
        } else {
            // Deleted in between, or the map is full.
            map.update(&k, v, MapFlags::NO_EXIST).inspect_err(|_| {
                slot.fetch_sub(SLOT_ONE, Ordering::SeqCst);
            })
        };
        slot.fetch_add(SLOT_EPOCH_STEP, Ordering::SeqCst);
        res.map_err(|e| format!("cannot track process {tgid}: {e}"))?;
        let key = types::traffic_key {
            tgid,
            r#gen,
            target: target as u16,
            ..Default::default()
        };
        let zeros = vec![
            vec![0u8; size_of::<types::traffic_val>()];
            libbpf_rs::num_possible_cpus().unwrap_or(1)
        ];
        let _ = self
            .skel
            .maps
            .traffic
            .update_percpu(pod_bytes(&key), &zeros, MapFlags::NO_EXIST);
        Ok(())
    }

    /// The generation the kernel holds for a tracked process, if any.
    pub fn tracked(&self, tgid: u32) -> Option<(u32, u32)> {
        let v = self
            .skel
            .maps
            .tracked
            .lookup(&tgid.to_ne_bytes(), MapFlags::ANY)
            .ok()??;
        let t: types::tracked = read_pod(&v)?;
        Some((t.target, t.r#gen))
    }

    pub fn untrack(&self, tgid: u32) {
        if self.skel.maps.tracked.delete(&tgid.to_ne_bytes()).is_ok() {
            self.shared
                .slot(tgid)
                .fetch_add(SLOT_EPOCH_STEP - SLOT_ONE, Ordering::SeqCst);
        }
    }

    /// Moves every socket's pending bytes into the traffic counters and waits
    /// for destroy-time drains under way to finish, so that a read of the
    /// counters right after holds every byte counted before this call.
    pub fn drain_sockets(&self) -> Result<(), String> {
        let Some(link) = &self.drain_iter else {
            return Ok(());
        };
        let iter = libbpf_rs::Iter::new(link).map_err(|e| format!("cannot drain sockets: {e}"))?;
        read_iter_to_end(iter).map_err(|e| format!("cannot drain sockets: {e}"))?;
        // A drain at destroy runs with bottom halves off and takes well under
        // a microsecond; equal counts (done read first) mean none was under
        // way when `done` was read.
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        loop {
            let (done, begun) = self.shared.drains();
            if done == begun || std::time::Instant::now() > deadline {
                return Ok(());
            }
            std::thread::yield_now();
        }
    }

    /// Every counter, summed over CPUs. Counters only grow while their key
    /// exists; the caller diffs successive reads.
    pub fn read_traffic(&self) -> Vec<(TrafficKey, TrafficVal)> {
        let map = &self.skel.maps.traffic;
        let mut out = Vec::new();
        for k in map.keys() {
            let Some(key) = TrafficKey::from_raw(&k) else {
                continue;
            };
            let Ok(Some(per_cpu)) = map.lookup_percpu(&k, MapFlags::ANY) else {
                continue;
            };
            let mut total = TrafficVal::default();
            for v in per_cpu {
                if let Some(v) = read_pod::<types::traffic_val>(&v) {
                    total.sent += v.sent;
                    total.received += v.received;
                }
            }
            out.push((key, total));
        }
        out
    }

    /// The keys of every counter, without their values.
    pub fn traffic_keys(&self) -> Vec<TrafficKey> {
        self.skel
            .maps
            .traffic
            .keys()
            .filter_map(|k| TrafficKey::from_raw(&k))
            .collect()
    }

    /// Drops a counter whose process is gone (nothing can add to it).
    pub fn delete_traffic(&self, key: &TrafficKey) {
        let _ = self.skel.maps.traffic.delete(&key.raw);
    }

    pub fn stats(&self) -> Stats {
        let map = &self.skel.maps.stats;
        let mut sums = [0u64; 6];
        for (i, sum) in sums.iter_mut().enumerate() {
            if let Ok(Some(per_cpu)) = map.lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY) {
                *sum = per_cpu.iter().filter_map(|v| read_pod::<u64>(v)).sum();
            }
        }
        Stats {
            peer_overflow: sums[0],
            lost_events: sums[1],
            lost_bytes: sums[2],
            track_full: sums[3],
            events_dropped: sums[4],
            stash_full: sums[5],
        }
    }

    /// Waits up to `timeout` for lifecycle events and returns all pending.
    pub fn poll_events(&self, timeout: Duration) -> Vec<LifecycleEvent> {
        if self.queue.borrow().is_empty() {
            let _ = self.ring.poll(timeout);
        }
        let _ = self.ring.consume();
        self.queue.borrow_mut().drain(..).collect()
    }

    /// The ring buffer's fd, for callers that multiplex it with signals.
    pub fn events_fd(&self) -> i32 {
        self.ring.epoll_fd()
    }
}

/// How many EAGAIN reads a drain takes before it gives up: a million
/// sockets each, so a billion sockets.
const MAX_AGAIN: u32 = 1000;

/// Runs a BPF iterator to its end. The drain iterator writes nothing, and
/// the kernel ends a read that has visited a million objects without output
/// with EAGAIN (`bpf_seq_read`, MAX_ITER_OBJECTS); the next read goes on
/// from the next object. So past a million sockets a drain takes several
/// reads, each a million sockets further: a read that keeps failing so
/// without end would be a kernel fault, and is given up after MAX_AGAIN.
fn read_iter_to_end(mut iter: impl std::io::Read) -> std::io::Result<()> {
    let mut buf = [0u8; 256];
    let mut again = 0;
    loop {
        match iter.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && again < MAX_AGAIN => {
                again += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Loads and attaches every backend in turn, for `netio kernel`.
pub fn probe_backends() -> Vec<Attempt> {
    let cap = Capacity {
        processes: 16,
        peers: 16,
        names: 4,
        cgroups: 4,
    };
    Backend::PREFERENCE
        .iter()
        .map(|&b| {
            let (_p, mut attempts) = Probes::load(BackendChoice::Only(b), cap);
            attempts.remove(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{read_iter_to_end, MAX_AGAIN};
    use std::io::{self, ErrorKind, Read};

    /// Plays back a list of read results, as the kernel's iterator would.
    struct Script(Vec<io::Result<usize>>);

    impl Read for Script {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                panic!("read past the end of the iterator");
            }
            self.0.remove(0)
        }
    }

    fn again() -> io::Result<usize> {
        Err(io::Error::from(ErrorKind::WouldBlock))
    }

    #[test]
    fn a_drain_past_a_million_sockets_reads_on_after_eagain() {
        // Three stretches of a million sockets each end in EAGAIN; the
        // fourth reaches the end.
        let script = Script(vec![again(), again(), again(), Ok(0)]);
        read_iter_to_end(script).expect("EAGAIN is not the end of a drain");
    }

    #[test]
    fn a_drain_reads_through_output_and_interrupted_reads() {
        let script = Script(vec![
            Ok(3),
            Err(io::Error::from(ErrorKind::Interrupted)),
            Ok(0),
        ]);
        read_iter_to_end(script).expect("a signal is not the end of a drain");
    }

    #[test]
    fn a_drain_reports_other_errors_and_endless_eagain() {
        let script = Script(vec![Err(io::Error::from(ErrorKind::PermissionDenied))]);
        let e = read_iter_to_end(script).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);

        let script = Script((0..=MAX_AGAIN).map(|_| again()).collect());
        let e = read_iter_to_end(script).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
    }
}
