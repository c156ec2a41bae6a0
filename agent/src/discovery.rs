//! Finding target processes in /proc: at start, and on each interval as a
//! safety net for what the kernel's exec-time matching cannot see (names it
//! knows only by executable basename, events lost to a full ring buffer).

use std::collections::HashMap;
use std::fs;

use crate::config::Config;

#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// Basename of /proc/PID/exe; None for kernel threads and the gone.
    pub exe_name: Option<String>,
}

pub fn read_proc(pid: u32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may itself contain ") ": it ends at the last one.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 2..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    let exe_name = fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            // A replaced binary reads as "name (deleted)".
            Some(
                name.strip_suffix(" (deleted)")
                    .map(str::to_string)
                    .unwrap_or(name),
            )
        });
    Some(ProcInfo {
        pid,
        ppid,
        comm,
        exe_name,
    })
}

pub fn scan() -> Vec<ProcInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_proc)
        .collect()
}

/// The target a process belongs to by its own name.
pub fn match_name(config: &Config, p: &ProcInfo) -> Option<u32> {
    // Kernel threads have no executable.
    p.exe_name.as_ref()?;
    config
        .target_of(&p.comm)
        .or_else(|| p.exe_name.as_deref().and_then(|n| config.target_of(n)))
}

/// Processes to track: those matched by name, and every descendant of one
/// (a forked child counts for its parent's target, as the kernel does at
/// fork), each with its target.
pub fn select(config: &Config, procs: &[ProcInfo]) -> Vec<(u32, u32)> {
    let by_pid: HashMap<u32, &ProcInfo> = procs.iter().map(|p| (p.pid, p)).collect();
    let mut out = Vec::new();
    for p in procs {
        let mut cur = Some(p);
        let mut hops = 0;
        while let Some(c) = cur {
            if let Some(t) = match_name(config, c) {
                out.push((p.pid, t));
                break;
            }
            hops += 1;
            if c.ppid <= 1 || hops > 64 {
                break;
            }
            cur = by_pid.get(&c.ppid).copied();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, comm: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            comm: comm.into(),
            exe_name: Some(comm.into()),
        }
    }

    #[test]
    fn descendants_of_a_target_are_selected_with_it() {
        let c = Config::parse(
            "interval = \"1s\"\n[[target]]\nname = \"pg\"\nprocess = [\"postgres\"]\n",
        )
        .unwrap();
        let procs = [
            p(1, 0, "init"),
            p(10, 1, "postgres"),
            p(11, 10, "worker"),
            p(12, 11, "sh"),
            p(20, 1, "bash"),
        ];
        let mut sel = select(&c, &procs);
        sel.sort();
        assert_eq!(sel, vec![(10, 0), (11, 0), (12, 0)]);
    }

    #[test]
    fn this_process_reads_back_from_proc() {
        let me = read_proc(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.exe_name.is_some());
    }
}
