//! netio.service as the tests read it, and its sandbox rebuilt without
//! systemd: what service.rs and the package tests run netio under.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    traffic_bin, unique_name, unique_suffix, write_config, Netio, Program, Scratch, TARGET,
};

pub fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("netio.service")
}

/// Every `Key=Value` of the unit's `[Service]` section, in order.
pub fn service_settings() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(unit_path()).expect("read netio.service");
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section == "[Service]" {
            let (k, v) = line.split_once('=').expect("Key=Value");
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The value of a setting the unit assigns once.
pub fn setting(key: &str) -> String {
    let all: Vec<String> = service_settings()
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        all.len(),
        1,
        "netio.service should set {key}= exactly once: {all:?}"
    );
    all.into_iter().next().unwrap()
}

/// Capability numbers (linux/capability.h) of the names the unit may use.
pub fn capability(name: &str) -> u64 {
    match name {
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_DAC_READ_SEARCH" => 2,
        "CAP_SYS_PTRACE" => 19,
        "CAP_SYS_ADMIN" => 21,
        "CAP_SYS_RESOURCE" => 24,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("the test does not know capability {other}; add it"),
    }
}

pub fn unit_capabilities() -> BTreeSet<u64> {
    setting("CapabilityBoundingSet")
        .split_whitespace()
        .map(capability)
        .collect()
}

/// The protections of the unit that this test rebuilds. A new protection
/// in the unit must be rebuilt here too (or this list says why not), so
/// the test keeps running netio the way the unit does.
pub const REBUILT: &[(&str, &str)] = &[
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectProc", "invisible"),
    ("NoNewPrivileges", "yes"),
    ("LimitMEMLOCK", "infinity"),
];

/// The file-system side of the unit, as systemd builds it: a private mount
/// namespace; /proc with hidepid=invisible; /proc/kallsyms and /proc/kcore
/// inaccessible; /tmp and /var/tmp private; /home, /root and /run/user
/// empty; everything read-only (ProtectSystem=strict covers /proc/sys,
/// /sys and the cgroup tree, which ProtectKernelTunables and
/// ProtectControlGroups ask for) except the ReadWritePaths= the unit
/// lists; then the capability bounding set, no ambient capabilities, no new
/// privileges, and unlimited locked memory.
pub struct Sandbox {
    keep: BTreeSet<u64>,
    inaccessible: CString,
    writable: Vec<CString>,
}

impl Sandbox {
    pub fn from_unit(staging: &Path) -> Self {
        for (key, want) in REBUILT {
            assert_eq!(&setting(key), want, "the test rebuilds {key}={want}");
        }
        let writable = service_settings()
            .into_iter()
            .filter(|(k, _)| k == "ReadWritePaths")
            .flat_map(|(_, v)| {
                v.split_whitespace()
                    .map(|p| p.trim_start_matches('-').to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|p| Path::new(p).exists())
            .map(|p| CString::new(p).unwrap())
            .collect();
        let inaccessible = staging.join("inaccessible");
        std::fs::write(&inaccessible, "").unwrap();
        std::fs::set_permissions(&inaccessible, std::fs::Permissions::from_mode(0o000)).unwrap();
        Self {
            keep: unit_capabilities(),
            inaccessible: CString::new(inaccessible.to_str().unwrap()).unwrap(),
            writable,
        }
    }

    pub fn without(mut self, cap: &str) -> Self {
        self.keep.remove(&capability(cap));
        self
    }

    pub fn mask(&self) -> u64 {
        self.keep.iter().map(|c| 1u64 << c).sum()
    }

    /// Applies the sandbox in `cmd`'s child, before exec.
    pub fn apply(self, cmd: &mut Command) {
        let last_cap: u64 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let c = |s: &str| CString::new(s).unwrap();
        let (root, proc_, tmpfs, procfs) = (c("/"), c("/proc"), c("tmpfs"), c("proc"));
        let hidepid = c("hidepid=invisible");
        let hidden: Vec<CString> = ["/proc/kallsyms", "/proc/kcore"]
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| c(p))
            .collect();
        let private: Vec<CString> = ["/tmp", "/var/tmp", "/home", "/root", "/run/user"]
            .iter()
            .filter(|p| Path::new(p).is_dir())
            .map(|p| c(p))
            .collect();
        let mode = c("mode=0755");
        let Sandbox {
            keep,
            inaccessible,
            writable,
        } = self;
        let fail = |what: &str| {
            let e = std::io::Error::last_os_error();
            std::io::Error::new(e.kind(), format!("sandbox: {what}: {e}"))
        };
        // SAFETY: only system calls on data prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                let null = std::ptr::null::<libc::c_char>();
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(fail("unshare"));
                }
                if libc::mount(
                    null,
                    root.as_ptr(),
                    null,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(fail("make / private"));
                }
                let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                if libc::mount(
                    procfs.as_ptr(),
                    proc_.as_ptr(),
                    procfs.as_ptr(),
                    flags,
                    hidepid.as_ptr().cast(),
                ) != 0
                {
                    return Err(fail("proc with hidepid=invisible"));
                }
                for p in &hidden {
                    if libc::mount(
                        inaccessible.as_ptr(),
                        p.as_ptr(),
                        null,
                        libc::MS_BIND,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(fail("hide /proc/kallsyms"));
                    }
                }
                for p in &private {
                    if libc::mount(
                        tmpfs.as_ptr(),
                        p.as_ptr(),
                        tmpfs.as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        mode.as_ptr().cast(),
                    ) != 0
                    {
                        return Err(fail("private /tmp, /home..."));
                    }
                }
                for p in &writable {
                    if libc::mount(
                        p.as_ptr(),
                        p.as_ptr(),
                        null,
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(fail("bind a ReadWritePaths= entry"));
                    }
                }
                if mount_setattr(&root, libc::MOUNT_ATTR_RDONLY, 0) != 0 {
                    return Err(fail("everything read-only"));
                }
                for p in &writable {
                    if mount_setattr(p, 0, libc::MOUNT_ATTR_RDONLY) != 0 {
                        return Err(fail("ReadWritePaths= writable again"));
                    }
                }
                let unlimited = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                // Raising the hard limit takes CAP_SYS_RESOURCE, which a
                // container may not have (systemd, as PID 1, has it): then
                // the limit stays, which kernels from 5.11 do not charge
                // BPF maps to anyway.
                libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited);
                for cap in 0..=last_cap {
                    if !keep.contains(&cap) && libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                    {
                        return Err(fail("drop a capability from the bounding set"));
                    }
                }
                if libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(fail("clear ambient capabilities"));
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(fail("no new privileges"));
                }
                Ok(())
            });
        }
    }
}

/// mount_setattr(2) on the mount tree at `path`.
pub fn mount_setattr(path: &CString, set: u64, clear: u64) -> libc::c_long {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid path and a mount_attr of the size passed.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    }
}

/// A directory outside /tmp, /var/tmp and the home directories, which the
/// sandbox hides: netio's binary and config, as /usr/bin and /etc would
/// hold them.
pub struct Staging(pub PathBuf);

impl Staging {
    pub fn new(netio: &Path, config: &Path) -> (Self, PathBuf, PathBuf) {
        let dir = PathBuf::from(format!("/run/netio-unit-test-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("netio");
        std::fs::copy(netio, &bin).unwrap();
        let conf = dir.join("netio.conf");
        std::fs::copy(config, &conf).unwrap();
        (Self(dir), bin, conf)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn status_field(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// A copy of the traffic generator that user `nobody` can run: the server
/// netio must find and count runs as another user, as databases do.
pub fn program_for_nobody(name: &str) -> (Program, PathBuf) {
    let dir = PathBuf::from(format!("/var/tmp/netio-unit-nobody-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join(name);
    std::fs::copy(traffic_bin(), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (Program { path }, dir)
}

/// Runs `netio` (the one just built, or the one a package installed) the
/// way netio.service does and holds its counts to the truth.
pub fn counts_exactly_as_the_unit_runs_it(netio: &Path) {
    let scratch = Scratch::new("sandbox");
    let name = unique_name("ntu");
    let config = write_config(&scratch, "1s", &[(TARGET, &[name.as_str()])]);
    let (staging, bin, conf) = Staging::new(netio, &config);
    let sandbox = Sandbox::from_unit(&staging.0);
    let want_caps = sandbox.mask();
    // The server runs as another user, as databases do, and is already
    // running when netio starts: netio finds it in /proc, where
    // ProtectProc=invisible shows it only thanks to CAP_SYS_PTRACE.
    let (tracked, dir) = program_for_nobody(&name);
    let server = tracked.server_with("bulk", "127.0.0.1:0", &["--size", "3000000"], |cmd| {
        cmd.uid(65534).gid(65534);
    });
    let netio = Netio::start_bin_with(&bin, &conf, |cmd| sandbox.apply(cmd));

    // What the kernel says netio runs with.
    let pid = netio.pid();
    let eff = u64::from_str_radix(&status_field(pid, "CapEff:"), 16).unwrap();
    assert_eq!(
        eff, want_caps,
        "netio's effective capabilities {eff:#x}, the unit's bounding set {want_caps:#x}"
    );
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");

    let client =
        Program::original().client("bulk", &server.addr("127.0.0.1"), &["--size", "3000000"]);
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    let records = netio.stop();
    let _ = std::fs::remove_dir_all(dir);
    records.assert_exact(&truth.per_pid, "127.0.0.1");
}

/// The first cgroup2 mount in this mount namespace, from mountinfo: the
/// hierarchy journald reads a sender's unit from (/sys/fs/cgroup, or
/// /sys/fs/cgroup/unified on a "hybrid" host).
pub fn cgroup2_root() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            (right.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(point))
        })
        .expect("this test needs a cgroup v2 (cgroup2) mount")
}

/// A cgroup as systemd makes one for a unit (`system.slice/netio.service`,
/// or `user@UID.service` delegated to that user), since there is no systemd
/// here to make it: journald names the unit of an entry's sender from its
/// cgroup path. Removed, with whatever was made below it, when dropped.
pub struct UnitCgroup {
    pub dir: PathBuf,
    /// The directories this made, outermost first.
    made: Vec<PathBuf>,
}

impl UnitCgroup {
    /// `rel` below the cgroup2 root, e.g. `system.slice/netio.service`.
    pub fn create(rel: &str) -> Self {
        let dir = cgroup2_root().join(rel);
        let mut made = Vec::new();
        for d in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if !d.exists() {
                std::fs::create_dir(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
                made.push(d.to_path_buf());
            }
        }
        Self { dir, made }
    }

    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Hands the group to `uid` as systemd's `Delegate=` does: the user may
    /// make groups below it and move their own processes between them.
    pub fn delegate(&self, uid: u32) {
        for p in [
            self.dir.clone(),
            self.procs(),
            self.dir.join("cgroup.threads"),
            self.dir.join("cgroup.subtree_control"),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
        }
    }

    /// A `pre_exec` hook for `cmd`: the child joins the group before it
    /// execs, as systemd starts a unit's processes.
    pub fn exec_in(&self, cmd: &mut Command) {
        let procs = CString::new(self.procs().into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: the hook only makes system calls (open, write, close) on
        // memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0": the writing process itself.
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if n != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
    }
}

impl Drop for UnitCgroup {
    fn drop(&mut self) {
        // Deepest first: groups a test's processes made below, then ours.
        fn remove(dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        remove(&e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        remove(&self.dir);
        for d in self.made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
