//! kretprobes created in tracefs, where they can have enough instances
//! (docs/kernels.md, "kretprobes need tracefs"): the kprobe PMU libbpf
//! attaches through cannot set `maxactive`, and a return without an
//! instance is silently missed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use libbpf_rs::{Link, ProgramMut};

use crate::error::{KretprobeError, KretprobeStep};
use crate::libbpf_log;
use crate::progs::Prog;

/// kretprobe instances per probe: the kernel's maximum,
/// KRETPROBE_MAXACTIVE_MAX.
const MAXACTIVE: u32 = 4096;

/// The tracefs group of netio's kretprobe events; each event is named
/// `netio_PID_SEQ_FUNCTION`, so concurrent netio processes never collide
/// and the leftovers of one that was killed can be recognised.
const GROUP: &str = "netio";

/// Where tracefs is mounted, if it has kprobe_events.
pub(crate) fn tracefs() -> Option<PathBuf> {
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
/// (killed before they could remove their own); an event a pinned link
/// holds stays (the kernel refuses). Says whether any refused.
pub(crate) fn remove_stale(tracefs: &Path) -> bool {
    let mut busy = false;
    let Ok(list) = std::fs::read_to_string(tracefs.join("kprobe_events")) else {
        return busy;
    };
    for line in list.lines() {
        let Some(event) = line
            .split_whitespace()
            .next()
            .and_then(|e| e.split_once(':'))
            .and_then(|(_, e)| e.strip_prefix(GROUP))
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
                busy |= kprobe_events_write(tracefs, &format!("-:{GROUP}/{event}")).is_err();
            }
        }
    }
    busy
}

/// A kretprobe created in tracefs, with its program attached; dropping it
/// detaches the program and removes the event.
pub(crate) struct TracefsKretprobe {
    link: Option<Link>,
    tracefs: PathBuf,
    event: String,
}

impl TracefsKretprobe {
    /// Its link, for pinning (pin.rs): a pinned link outlives netio, and
    /// the kernel keeps the event while the link holds it.
    pub(crate) fn link_mut(&mut self) -> Option<&mut Link> {
        self.link.as_mut()
    }
}

impl Drop for TracefsKretprobe {
    fn drop(&mut self) {
        // Detaching closes the perf event; the kernel keeps a busy event.
        drop(self.link.take());
        let _ = kprobe_events_write(&self.tracefs, &format!("-:{GROUP}/{}", self.event));
    }
}

/// Creates a kretprobe on `func` in tracefs and attaches `prog` to it.
pub(crate) fn attach(
    prog: Prog,
    loaded: &ProgramMut<'_>,
    func: &'static str,
    tracefs: &Path,
) -> Result<TracefsKretprobe, KretprobeError> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let event = format!(
        "netio_{}_{}_{func}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let fail = |step| KretprobeError { prog, func, step };
    kprobe_events_write(tracefs, &format!("r{MAXACTIVE}:{GROUP}/{event} {func}")).map_err(
        |error| {
            fail(KretprobeStep::Create {
                path: tracefs.join("kprobe_events"),
                error,
            })
        },
    )?;
    // From here on, dropping `probe` removes the event again.
    let mut probe = TracefsKretprobe {
        link: None,
        tracefs: tracefs.to_path_buf(),
        event,
    };
    let path = tracefs
        .join("events")
        .join(GROUP)
        .join(&probe.event)
        .join("id");
    let text = std::fs::read_to_string(&path).map_err(|error| {
        fail(KretprobeStep::ReadId {
            path: path.clone(),
            error,
        })
    })?;
    let id: u64 = text.trim().parse().map_err(|error| {
        fail(KretprobeStep::ParseId {
            path: path.clone(),
            text: text.clone(),
            error,
        })
    })?;
    let fd = perf_event_open_tracepoint(id).map_err(|e| fail(KretprobeStep::PerfEventOpen(e)))?;
    match loaded.attach_perf_event(fd) {
        Ok(link) => probe.link = Some(link),
        Err(error) => {
            // SAFETY: fd is ours and not owned by anything else yet.
            unsafe { libc::close(fd) };
            return Err(fail(KretprobeStep::Attach {
                error,
                hint: libbpf_log::hint(),
            }));
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
