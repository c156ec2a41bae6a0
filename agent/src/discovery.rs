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
    /// cgroup v2 path ("/system.slice/x.service"), if on the unified hierarchy.
    pub cgroup: Option<String>,
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
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        });
    Some(ProcInfo {
        pid,
        ppid,
        comm,
        exe_name,
        cgroup,
    })
}

/// Where cgroup v2 is mounted: /sys/fs/cgroup on unified hosts,
/// /sys/fs/cgroup/unified on hybrid ones. Read from mountinfo once.
pub fn cgroup_root() -> &'static str {
    static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts: Vec<String> = mountinfo
            .lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                (post.split_whitespace().next() == Some("cgroup2"))
                    .then(|| pre.split_whitespace().nth(4).map(str::to_string))
                    .flatten()
            })
            .collect();
        // A later mount can hide an earlier one: take the last that is
        // still reachable.
        mounts
            .into_iter()
            .rev()
            .find(|m| std::path::Path::new(m).join("cgroup.procs").exists())
            .unwrap_or_else(|| "/sys/fs/cgroup".to_string())
    })
}

/// The cgroup path of a systemd unit: the directory of that name below
/// the cgroup2 mount (system.slice/x.service, or deeper for user units).
pub fn unit_cgroup(unit: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let root = std::path::Path::new(cgroup_root());
    let mut level = vec![root.to_path_buf()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(meta) = e.metadata() else { continue };
                if !meta.is_dir() {
                    continue;
                }
                if e.file_name().to_str() == Some(unit) {
                    let rel = e
                        .path()
                        .strip_prefix(root)
                        .ok()?
                        .to_string_lossy()
                        .into_owned();
                    return Some(format!("/{rel}"));
                }
                // Down only through groups root owns: systemd hands a user
                // (user@UID.service) or a unit with Delegate= a subtree of
                // their own, where they may name a group like any unit. Only
                // root makes groups in a root-owned one, so a match is
                // never below a user's subtree (its own group may be a
                // delegated unit's).
                if meta.uid() == 0 {
                    next.push(e.path());
                }
            }
        }
        level = next;
    }
    None
}

/// The ids the kernel gives a cgroup v2 group and every group below it
/// (bpf_get_current_cgroup_id): their directories' inode numbers. Empty
/// when the group does not exist (yet).
pub fn cgroup_ids(path: &str) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    const MAX_GROUPS: usize = 256;
    let mut ids = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(format!("{}{path}", cgroup_root()))];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = fs::metadata(&dir) else {
            continue;
        };
        ids.push(meta.ino());
        if ids.len() >= MAX_GROUPS {
            break;
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path()),
            );
        }
    }
    ids
}

fn in_cgroup(proc_cgroup: &str, group: &str) -> bool {
    proc_cgroup == group
        || (proc_cgroup.starts_with(group)
            && proc_cgroup.as_bytes().get(group.len()) == Some(&b'/'))
}

pub fn scan() -> Vec<ProcInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_proc)
        .collect()
}

/// The target (index in the config) a process belongs to by its own name
/// or its cgroup. `cgroups` are the resolved (target index, cgroup path).
pub fn match_name(config: &Config, cgroups: &[(usize, String)], p: &ProcInfo) -> Option<usize> {
    // Kernel threads have no executable.
    p.exe_name.as_ref()?;
    config
        .target_of(&p.comm)
        .or_else(|| p.exe_name.as_deref().and_then(|n| config.target_of(n)))
        .map(|t| t as usize)
        .or_else(|| {
            let pc = p.cgroup.as_deref()?;
            cgroups
                .iter()
                .find(|(_, g)| in_cgroup(pc, g))
                .map(|(t, _)| *t)
        })
}

/// Processes to track: those matched by name, and every descendant of one
/// (a forked child counts for its parent's target, as the kernel does at
/// fork), each with its target.
pub fn select(
    config: &Config,
    cgroups: &[(usize, String)],
    procs: &[ProcInfo],
) -> Vec<(u32, usize)> {
    let by_pid: HashMap<u32, &ProcInfo> = procs.iter().map(|p| (p.pid, p)).collect();
    let mut out = Vec::new();
    for p in procs {
        let mut cur = Some(p);
        let mut hops = 0;
        while let Some(c) = cur {
            if let Some(t) = match_name(config, cgroups, c) {
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
            cgroup: Some(format!("/g{}", pid % 2)),
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
        let mut sel = select(&c, &[], &procs);
        sel.sort();
        assert_eq!(sel, vec![(10, 0), (11, 0), (12, 0)]);
    }

    #[test]
    fn processes_in_a_targets_cgroup_or_below_are_selected() {
        let c = Config::parse("interval = \"1s\"\n[[target]]\nname = \"u\"\ncgroup = \"/g0\"\n")
            .unwrap();
        let mut procs = vec![p(20, 1, "a"), p(21, 1, "b"), p(22, 1, "c")];
        procs[2].cgroup = Some("/g0/sub".into());
        procs[1].cgroup = Some("/g01".into());
        let sel = select(&c, &[(0, "/g0".into())], &procs);
        assert_eq!(sel, vec![(20, 0), (22, 0)]);
    }

    #[test]
    fn this_process_reads_back_from_proc() {
        let me = read_proc(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.exe_name.is_some());
    }
}
