//! Finding target processes in /proc: at start, and on each interval as a
//! safety net for what the kernel's exec-time matching cannot see (names it
//! knows only by executable basename, events lost to a full ring buffer).

use std::collections::HashMap;
use std::fs;

use crate::config::Config;
use crate::constraint::{Constraints, FileId};

/// Task flags of /proc/PID/stat (include/linux/sched.h): a thread on its
/// way out of do_exit(), and a kernel thread.
const PF_EXITING: u32 = 0x0000_0004;
const PF_KTHREAD: u32 = 0x0020_0000;

/// Where a process is in its life, from its threads' states and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// A thread of it is neither exiting nor a zombie: it may still run.
    Alive,
    /// Every thread is exiting, not all of them are zombies yet.
    Exiting,
    /// Every thread is a zombie or gone: the kernel's exit hook has run.
    Dead,
}

#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// The name as the kernel keeps it, lossily as UTF-8 (for records).
    pub comm: String,
    /// The name exactly, if it is UTF-8 (config names are).
    pub name: Option<String>,
    /// When the process started (clock ticks after boot): with the PID,
    /// who it is. A PID reused is another process with another start.
    pub start: u64,
    pub kthread: bool,
    pub life: Life,
    /// Basename of the executable, read through a live thread; None for
    /// kernel threads, the gone and names that are not UTF-8.
    pub exe_name: Option<String>,
    /// cgroup v2 path ("/system.slice/x.service"), if on the unified hierarchy.
    pub cgroup: Option<String>,
    /// Its real and effective uids, through a live thread.
    pub uids: Option<(u32, u32)>,
    /// Its executable's path as /proc shows it (lossily UTF-8), and the
    /// file itself, through a live thread.
    pub exe: Option<String>,
    pub exe_id: Option<FileId>,
}

/// The fields of one task's /proc stat file that netio reads.
struct Stat {
    comm: Vec<u8>,
    state: u8,
    ppid: u32,
    flags: u32,
    start: u64,
}

/// A /proc file of one record (stat, status, cgroup), read whole: the
/// kernel makes it at once and hands it out in one read when the buffer is
/// large enough, so a short read is the end. `fs::read` also asks for the
/// size, probes with a small read and reads again for the end: twice the
/// system calls, at 10,000 processes a quarter of netio's CPU.
fn read_proc_file(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = f.read(&mut buf[len..]).ok()?;
        len += n;
        if n == 0 || len < buf.len() {
            break;
        }
        buf.resize(buf.len() * 2, 0);
    }
    buf.truncate(len);
    Some(buf)
}

impl Stat {
    /// Reads it as bytes: a comm may be any 15 bytes but NUL.
    fn read(path: &str) -> Option<Stat> {
        Stat::parse(&read_proc_file(path)?)
    }

    fn parse(stat: &[u8]) -> Option<Stat> {
        // comm may itself contain ") ": it ends at the last one.
        let open = stat.iter().position(|&b| b == b'(')?;
        let close = stat.iter().rposition(|&b| b == b')')?;
        let comm = stat.get(open + 1..close)?.to_vec();
        let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
        // Fields from the third on (proc_pid_stat(5)): state, ppid, ...
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        Some(Stat {
            comm,
            state: *fields.first()?.as_bytes().first()?,
            ppid: fields.get(1)?.parse().ok()?,
            flags: fields.get(6)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
        })
    }

    fn zombie(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }

    /// Neither exiting nor a zombie: it may still make system calls.
    fn live(&self) -> bool {
        !self.zombie() && self.flags & PF_EXITING == 0
    }
}

/// How the process `pid` whose leader is `leader` lives, and the /proc
/// directory of a live thread of it to read the rest through (a leader
/// that exited alone has no memory map, so no readable exe).
fn life_of(pid: u32, leader: &Stat) -> (Life, Option<String>) {
    if leader.live() {
        return (Life::Alive, Some(format!("/proc/{pid}")));
    }
    let mut life = Life::Dead;
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return (life, None);
    };
    for tid in tasks.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let dir = format!("/proc/{pid}/task/{tid}");
        match Stat::read(&format!("{dir}/stat")) {
            Some(t) if t.live() => return (Life::Alive, Some(dir)),
            Some(t) if !t.zombie() => life = Life::Exiting,
            _ => {}
        }
    }
    (life, None)
}

/// The process `pid`, as /proc shows it; None if there is none, or `pid`
/// is a thread's (/proc/TID answers for a thread as for a process).
pub fn read_proc(pid: u32) -> Option<ProcInfo> {
    let (mut p, dir) = read_who(pid)?;
    let Some(dir) = dir else {
        return Some(p);
    };
    let exe_path = fs::read_link(format!("{dir}/exe")).ok();
    p.exe_name = exe_path.as_ref().and_then(|path| {
        let name = path.file_name()?.to_str()?;
        // A replaced binary reads as "name (deleted)".
        Some(name.strip_suffix(" (deleted)").unwrap_or(name).to_string())
    });
    p.exe_id = FileId::of(std::path::Path::new(&format!("{dir}/exe")));
    p.exe = exe_path.map(|p| p.to_string_lossy().into_owned());
    p.cgroup = read_proc_file(&format!("{dir}/cgroup"))
        .and_then(|c| String::from_utf8(c).ok())
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        });
    Some(p)
}

/// A process netio tracks already, read for what can change in it without
/// an exec the kernel reports: who it is (start, life) and its uids. Its
/// name, executable and group are not read: nothing it matches by is
/// looked at again once it is tracked, and an exec is an event.
pub fn read_tracked_proc(pid: u32) -> Option<ProcInfo> {
    read_who(pid).map(|(p, _)| p)
}

/// What both reads take: stat and status, and the directory of a live
/// thread (none for a kernel thread) to read the rest through.
fn read_who(pid: u32) -> Option<(ProcInfo, Option<String>)> {
    let stat = Stat::read(&format!("/proc/{pid}/stat"))?;
    let (life, dir) = life_of(pid, &stat);
    let kthread = stat.flags & PF_KTHREAD != 0;
    let dir = dir.filter(|_| !kthread);
    let status = dir.as_ref().and_then(|d| Status::read(d));
    if status.as_ref().is_some_and(|s| s.tgid != pid) {
        return None;
    }
    let p = ProcInfo {
        pid,
        ppid: stat.ppid,
        comm: String::from_utf8_lossy(&stat.comm).into_owned(),
        name: String::from_utf8(stat.comm).ok(),
        start: stat.start,
        kthread,
        life,
        exe_name: None,
        cgroup: None,
        uids: status.map(|s| s.uids),
        exe: None,
        exe_id: None,
    };
    Some((p, dir))
}

/// What netio reads of a /proc task directory's status: the thread group
/// it is of, and its real and effective uids as the init user namespace
/// (netio's) sees them.
struct Status {
    tgid: u32,
    uids: (u32, u32),
}

impl Status {
    fn read(dir: &str) -> Option<Status> {
        let status = read_proc_file(&format!("{dir}/status"))?;
        let field = |name: &[u8]| {
            let line = status
                .split(|&b| b == b'\n')
                .find_map(|l| l.strip_prefix(name))?;
            std::str::from_utf8(line).ok()
        };
        let tgid = field(b"Tgid:")?.trim().parse().ok()?;
        let mut ids = field(b"Uid:")?.split_ascii_whitespace();
        let uids = (ids.next()?.parse().ok()?, ids.next()?.parse().ok()?);
        Some(Status { tgid, uids })
    }
}

/// Who is at `pid` now and how it lives, read again after a change to its
/// tracking: its start time and life.
pub fn identity(pid: u32) -> Option<(u64, Life)> {
    let stat = Stat::read(&format!("/proc/{pid}/stat"))?;
    Some((stat.start, life_of(pid, &stat).0))
}

/// The name of the process at `pid`, if it is still the one that started
/// at `start` (clock ticks since boot, as /proc shows it): a Unix peer's.
pub fn comm_if_started(pid: u32, start: u64) -> Option<String> {
    let stat = Stat::read(&format!("/proc/{pid}/stat"))?;
    (stat.start == start).then(|| String::from_utf8_lossy(&stat.comm).into_owned())
}

/// The effective uid of the process at `pid`, if it is still the one that
/// started at `start`, checked after the read: a loopback client's.
pub fn euid_if_started(pid: u32, start: u64) -> Option<u32> {
    let uid = Status::read(&format!("/proc/{pid}"))?.uids.1;
    let stat = Stat::read(&format!("/proc/{pid}/stat"))?;
    (stat.start == start).then_some(uid)
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

/// The most groups a configured cgroup path resolves to (itself and those
/// below it): the cgroup map is sized for this many a path.
pub const MAX_GROUPS: usize = 256;

/// The ids the kernel gives a cgroup v2 group and every group below it
/// (bpf_get_current_cgroup_id): their directories' inode numbers. Empty
/// when the group does not exist (yet).
pub fn cgroup_ids(path: &str) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
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

/// Every descendant of `roots`, from the children files of their threads
/// (/proc/PID/task/TID/children), down to the depth `select` looks up; None
/// where the kernel has no such files (CONFIG_PROC_CHILDREN).
pub fn descendants(roots: &[u32]) -> Option<Vec<u32>> {
    static CHILDREN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*CHILDREN.get_or_init(|| std::path::Path::new("/proc/thread-self/children").exists()) {
        return None;
    }
    let mut seen: std::collections::HashSet<u32> = roots.iter().copied().collect();
    let mut out = Vec::new();
    let mut level: Vec<u32> = roots.to_vec();
    for _ in 0..64 {
        let mut next = Vec::new();
        for pid in level {
            let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for tid in tasks.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
                let Ok(kids) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/children"))
                else {
                    continue;
                };
                let kids = kids.split_ascii_whitespace().filter_map(|k| k.parse().ok());
                next.extend(kids.filter(|&k| seen.insert(k)));
            }
        }
        if next.is_empty() {
            break;
        }
        out.extend(&next);
        level = next;
    }
    Some(out)
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
    if p.kthread {
        return None;
    }
    p.name
        .as_deref()
        .and_then(|n| config.target_of(n))
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

/// The target a process is by its name or cgroup and passes the
/// constraints of (`user`, `exe`), if any.
pub fn match_target(
    config: &Config,
    cgroups: &[(usize, String)],
    constraints: &Constraints,
    p: &ProcInfo,
) -> Option<usize> {
    let exe: Vec<FileId> = p.exe_id.into_iter().collect();
    match_name(config, cgroups, p).filter(|&t| constraints.admits(t, p.uids, &exe))
}

/// Processes to track: those matched by name and passing their target's
/// constraints, and every descendant of one (a forked child counts for its
/// parent's target, as the kernel does at fork), each with its target. Only
/// the living: an exiting process or a zombie would outlive its tracking.
/// Checked at every rescan, so a server that starts as root and then
/// becomes its user is found at the first rescan after.
pub fn select(
    config: &Config,
    cgroups: &[(usize, String)],
    constraints: &Constraints,
    procs: &[ProcInfo],
) -> Vec<(u32, usize)> {
    let by_pid: HashMap<u32, &ProcInfo> = procs.iter().map(|p| (p.pid, p)).collect();
    let mut out = Vec::new();
    for p in procs.iter().filter(|p| p.life == Life::Alive) {
        let mut cur = Some(p);
        let mut hops = 0;
        while let Some(c) = cur {
            if let Some(t) = match_target(config, cgroups, constraints, c) {
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
            name: Some(comm.into()),
            start: u64::from(pid) * 100,
            kthread: false,
            life: Life::Alive,
            exe_name: Some(comm.into()),
            cgroup: Some(format!("/g{}", pid % 2)),
            uids: Some((0, 0)),
            exe: Some(format!("/usr/bin/{comm}")),
            exe_id: None,
        }
    }

    fn none() -> Constraints {
        Constraints::default()
    }

    const PG: &str = "interval = \"1s\"\n[[target]]\nname = \"pg\"\nprocess = [\"postgres\"]\n";

    /// A stat line as the kernel writes it, up to the start time (field 22).
    fn stat_line(comm: &[u8], state: char, flags: u32, start: u64) -> Vec<u8> {
        let mut line = b"42 (".to_vec();
        line.extend_from_slice(comm);
        let rest =
            format!(") {state} 7 42 42 0 -1 {flags} 0 0 0 0 1 2 0 0 20 0 3 0 {start} 1000 10 \n");
        line.extend_from_slice(rest.as_bytes());
        line
    }

    #[test]
    fn stat_is_read_as_bytes_whatever_the_name() {
        let st = Stat::parse(&stat_line(b"\xff\xfe", 'S', 0x40_0100, 987_654)).unwrap();
        assert_eq!(st.comm, b"\xff\xfe");
        assert_eq!((st.state, st.ppid, st.start), (b'S', 7, 987_654));
        assert!(st.live());
        // A name may hold ") " itself: it ends at the last one.
        let st = Stat::parse(&stat_line(b"a) Z 1 (b", 'R', 0, 5)).unwrap();
        assert_eq!(
            (st.comm.as_slice(), st.state, st.start),
            (&b"a) Z 1 (b"[..], b'R', 5)
        );
    }

    #[test]
    fn exiting_and_zombie_threads_are_not_live() {
        let exiting = Stat::parse(&stat_line(b"x", 'R', PF_EXITING, 1)).unwrap();
        assert!(!exiting.live() && !exiting.zombie());
        let zombie = Stat::parse(&stat_line(b"x", 'Z', PF_EXITING, 1)).unwrap();
        assert!(!zombie.live() && zombie.zombie());
    }

    #[test]
    fn only_living_processes_are_selected_but_any_is_an_ancestor() {
        let c = Config::parse(PG).unwrap();
        let mut procs = vec![
            p(10, 1, "postgres"),
            p(11, 10, "worker"),
            p(12, 10, "worker"),
            p(13, 10, "worker"),
        ];
        // A leader that exited alone: its process lives on in its threads.
        procs[0].life = Life::Alive;
        procs[0].exe_name = None;
        procs[1].life = Life::Exiting;
        procs[2].life = Life::Dead;
        let mut sel = select(&c, &[], &none(), &procs);
        sel.sort();
        assert_eq!(sel, vec![(10, 0), (13, 0)]);
    }

    #[test]
    fn kernel_threads_and_names_that_only_read_alike_are_no_target() {
        let c = Config::parse(PG).unwrap();
        let mut kthread = p(2, 0, "postgres");
        kthread.kthread = true;
        kthread.exe_name = None;
        assert_eq!(match_name(&c, &[(0, "/g0".into())], &kthread), None);
        let mut lossy = p(3, 1, "x");
        lossy.comm = "\u{fffd}".into();
        lossy.name = None;
        lossy.exe_name = None;
        let c = Config::parse(
            "interval = \"1s\"\n[[target]]\nname = \"u\"\nprocess = [\"\u{fffd}\"]\n",
        )
        .unwrap();
        assert_eq!(match_name(&c, &[], &lossy), None);
    }

    #[test]
    fn descendants_of_a_target_are_selected_with_it() {
        let c = Config::parse(PG).unwrap();
        let procs = [
            p(1, 0, "init"),
            p(10, 1, "postgres"),
            p(11, 10, "worker"),
            p(12, 11, "sh"),
            p(20, 1, "bash"),
        ];
        let mut sel = select(&c, &[], &none(), &procs);
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
        let sel = select(&c, &[(0, "/g0".into())], &none(), &procs);
        assert_eq!(sel, vec![(20, 0), (22, 0)]);
    }

    #[test]
    fn constraints_keep_look_alikes_and_their_children_out() {
        let c = Config::parse(&format!("{PG}user = [105]\n")).unwrap();
        let mut procs = vec![
            p(10, 1, "postgres"),
            p(11, 10, "worker"),
            p(20, 1, "postgres"),
            p(21, 20, "worker"),
        ];
        procs[0].uids = Some((105, 105));
        // A server that has not yet become its user: found once it has.
        procs[2].uids = Some((0, 0));
        let constraints = Constraints::of(&c);
        let mut sel = select(&c, &[], &constraints, &procs);
        sel.sort();
        assert_eq!(sel, vec![(10, 0), (11, 0)]);
        procs[2].uids = Some((105, 105));
        let mut sel = select(&c, &[], &constraints, &procs);
        sel.sort();
        assert_eq!(sel, vec![(10, 0), (11, 0), (20, 0), (21, 0)]);
    }

    #[test]
    fn this_process_reads_back_from_proc() {
        let me = read_proc(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.exe_name.is_some());
        let uid = unsafe { libc::getuid() };
        let euid = unsafe { libc::geteuid() };
        assert_eq!(me.uids, Some((uid, euid)));
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.exe.as_deref(), exe.to_str());
        assert_eq!(me.exe_id, FileId::of(&exe));
        assert_eq!((me.life, me.kthread), (Life::Alive, false));
        assert_eq!(identity(me.pid), Some((me.start, Life::Alive)));
    }

    #[test]
    fn a_thread_is_not_read_as_a_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        // /proc/TID answers, but for a thread of this process.
        assert!(fs::metadata(format!("/proc/{tid}/stat")).is_ok());
        assert!(read_proc(tid).is_none());
        assert!(read_proc(std::process::id()).is_some());
        done_tx.send(()).unwrap();
        thread.join().unwrap();
    }

    #[test]
    fn a_childs_children_are_descendants() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let sh = child.id();
        let me = std::process::id();
        let mut below = Vec::new();
        for _ in 0..200 {
            below = descendants(&[me]).unwrap();
            if below.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let grandchild = below
            .iter()
            .copied()
            .find(|&p| read_proc(p).is_some_and(|p| p.ppid == sh));
        if let Some(g) = grandchild {
            // SAFETY: kill on the sleep of our own shell, not reaped yet.
            unsafe { libc::kill(g as i32, libc::SIGKILL) };
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(below.contains(&sh), "{below:?}");
        assert!(
            grandchild.is_some(),
            "sh's sleep is a descendant too: {below:?}"
        );
    }
}
