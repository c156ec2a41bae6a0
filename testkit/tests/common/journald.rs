//! A real systemd-journald for the tests that need one, netio writing to
//! it, and other writers: root in a unit's cgroup, or an attacker. journald
//! has fixed paths (/run/systemd/journal), so the tests of one binary that
//! use it hold `JOURNALD` while they do.

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{backend, netio_bin, write_config, Scratch, TARGET};

pub static JOURNALD: Mutex<()> = Mutex::new(());

pub const SOCKET: &str = "/run/systemd/journal/socket";

/// journald's stream socket, which services' stdout and stderr reach.
pub const STDOUT: &str = "/run/systemd/journal/stdout";

/// journald's syslog socket, which /dev/log links to where systemd runs.
pub const DEV_LOG: &str = "/run/systemd/journal/dev-log";

pub fn journald_answers() -> bool {
    UnixDatagram::unbound()
        .and_then(|s| s.connect(SOCKET))
        .is_ok()
}

pub fn journald_start() {
    if journald_answers() {
        return;
    }
    std::fs::create_dir_all("/run/systemd/journal").unwrap();
    // Detached: it must not hold the test's output pipes open, nor any
    // other descriptor it would inherit (cargo's jobserver pipe, a lock a
    // caller's flock(1) holds): it outlives the tests.
    let mut command = Command::new("setsid");
    command
        .args(["-f", "/lib/systemd/systemd-journald"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: close_range is async-signal-safe; it only marks descriptors
    // close-on-exec.
    unsafe {
        command.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    command
        .status()
        .expect("start systemd-journald (Debian package systemd)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !journald_answers() {
        assert!(Instant::now() < deadline, "systemd-journald did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn journald_kill() {
    let _ = Command::new("pkill")
        .args(["-KILL", "-x", "systemd-journal"])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while journald_answers() {
        assert!(Instant::now() < deadline, "systemd-journald did not die");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything journald stored from one netio process.
pub fn journal_of(pid: u32) -> Vec<Value> {
    let _ = Command::new("journalctl").arg("--sync").status();
    let out = Command::new("journalctl")
        .args([
            "-o",
            "json",
            "--no-pager",
            "--all",
            &format!("_PID={pid}"),
            "SYSLOG_IDENTIFIER=netio",
        ])
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// netio with `--output journal`; its stderr (notes and fallback records)
/// is collected line by line.
pub struct JournalNetio {
    child: Child,
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl JournalNetio {
    pub fn start(scratch: &Scratch, name: &str) -> Self {
        let config = write_config(scratch, "1s", &[(TARGET, &[name])]);
        Self::start_bin_with(&netio_bin(), &config, |_| {})
    }

    /// The netio binary at `bin` on `config`, the command adjusted by
    /// `customize` before it is spawned (a cgroup, a sandbox).
    pub fn start_bin_with(bin: &Path, config: &Path, customize: impl FnOnce(&mut Command)) -> Self {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--config"])
            .arg(config)
            .args(["--backend", &backend(), "--output", "journal"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        customize(&mut cmd);
        let mut child = cmd.spawn().expect("spawn netio");
        let err = child.stderr.take().unwrap();
        let stderr =
            std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).collect());
        JournalNetio {
            child,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the started record, in the journal or in the fallback.
    pub fn wait_started(&mut self, in_journal: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if in_journal
                && journal_of(self.pid())
                    .iter()
                    .any(|v| v["NETIO_EVENT"] == "started")
            {
                return;
            }
            if !in_journal
                && std::fs::read_to_string(format!("/proc/{}/status", self.pid())).is_ok()
            {
                // The fallback goes to our stderr pipe; give netio time to attach.
                std::thread::sleep(Duration::from_secs(2));
                return;
            }
            assert!(Instant::now() < deadline, "netio wrote no started record");
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "netio exited early"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then (exit status, stderr lines).
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        (status, self.stderr.take().unwrap().join().unwrap())
    }
}

/// The entries journald stored since `since` with `SYSLOG_IDENTIFIER=netio`
/// whose MESSAGE contains `token`, trusted fields and all.
pub fn entries_with(token: &str, since: SystemTime) -> Vec<Value> {
    let _ = Command::new("journalctl").arg("--sync").status();
    let secs = since.duration_since(UNIX_EPOCH).unwrap().as_secs() - 1;
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--all"])
        .arg(format!("--since=@{secs}"))
        .arg("SYSLOG_IDENTIFIER=netio")
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["MESSAGE"].as_str().is_some_and(|m| m.contains(token)))
        .collect()
}

/// Which of journald's sockets a writer uses.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// The native protocol: one datagram of `FIELD=value` lines.
    Native,
    /// The stream protocol of services' stdout: a header (identifier,
    /// unit, priority and four flags, one a line), then the lines.
    Stdout,
}

/// A process that writes one journal entry as a given user, from a given
/// cgroup, maybe under a given PID: what netio.service's root or a local
/// attacker can send, since journald's sockets are world-writable.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    pub uid: u32,
    /// A cgroup joined while still root (a unit's, or one delegated to `uid`).
    pub cgroup: Option<PathBuf>,
    /// Groups below `cgroup` the process makes and joins as `uid`.
    pub own_cgroup: Option<PathBuf>,
    /// A PID to take over: the next PID is set to it before each fork.
    pub pid: Option<u32>,
}

/// A writer's process once it has sent its entry. It stays until dropped,
/// so that journald finds it in /proc when it reads the entry.
pub struct Written {
    pub pid: u32,
    release: Option<OwnedFd>,
}

impl Drop for Written {
    fn drop(&mut self) {
        drop(self.release.take());
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(self.pid as libc::pid_t, std::ptr::null_mut(), 0) };
    }
}

/// Why a writer's child gave up, by its exit status.
fn writer_failure(status: i32) -> &'static str {
    match status {
        10 => "join the cgroup",
        11 => "drop to the user",
        12 => "make or join its own cgroup",
        13 => "reach journald's socket",
        _ => "unknown",
    }
}

impl Writer {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn nobody() -> Self {
        Self {
            uid: 65534,
            ..Self::default()
        }
    }

    /// Sends `payload` to journald `via` one of its sockets.
    pub fn write(&self, via: Via, payload: &[u8]) -> Written {
        for _ in 0..200 {
            if let Some(w) = self.try_write(via, payload) {
                return w;
            }
        }
        panic!("no writer got PID {:?} in 200 forks", self.pid);
    }

    /// One fork; None if a PID was asked for and another process got it.
    fn try_write(&self, via: Via, payload: &[u8]) -> Option<Written> {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        let join = self.cgroup.as_ref().map(|d| c(&d.join("cgroup.procs")));
        let mut own_dirs = Vec::new();
        if let (Some(base), Some(own)) = (&self.cgroup, &self.own_cgroup) {
            let mut d = base.clone();
            for part in own.components() {
                d.push(part);
                own_dirs.push(c(&d));
            }
        }
        let own_procs = own_dirs.last().map(|d| {
            let mut p = d.as_bytes().to_vec();
            p.extend_from_slice(b"/cgroup.procs");
            CString::new(p).unwrap()
        });
        let (socket, kind) = match via {
            Via::Native => (SOCKET, libc::SOCK_DGRAM),
            Via::Stdout => (STDOUT, libc::SOCK_STREAM),
        };
        // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(socket.bytes()) {
            *d = s as libc::c_char;
        }
        let addr_len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let (ack_r, ack_w) = pipe();
        let (rel_r, rel_w) = pipe();
        if let Some(pid) = self.pid {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
                .expect("set the next PID (ns_last_pid)");
        }
        let want = self.pid.map_or(0, |p| p as libc::pid_t);
        let uid = self.uid;
        let (ack, rel) = (ack_w.as_raw_fd(), rel_r.as_raw_fd());
        // SAFETY: the child makes only system calls on memory prepared
        // before the fork, and leaves through _exit.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
        if child == 0 {
            unsafe {
                let exit = |code| libc::_exit(code);
                // Only the two pipe ends stay open: the test's other
                // pipes must not wait for this process.
                let (lo, hi) = (ack.min(rel) as libc::c_uint, ack.max(rel) as libc::c_uint);
                libc::syscall(libc::SYS_close_range, 3, lo - 1, 0);
                libc::syscall(libc::SYS_close_range, lo + 1, hi - 1, 0);
                libc::syscall(libc::SYS_close_range, hi + 1, libc::c_uint::MAX, 0);
                if want != 0 && libc::getpid() != want {
                    exit(3);
                }
                let join_group = |procs: &CString| {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1
                };
                if join.as_ref().is_some_and(|p| !join_group(p)) {
                    exit(10);
                }
                if uid != 0
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(uid, uid, uid) != 0
                        || libc::setresuid(uid, uid, uid) != 0)
                {
                    exit(11);
                }
                for d in &own_dirs {
                    if libc::mkdir(d.as_ptr(), 0o755) != 0
                        && *libc::__errno_location() != libc::EEXIST
                    {
                        exit(12);
                    }
                }
                if own_procs.as_ref().is_some_and(|p| !join_group(p)) {
                    exit(12);
                }
                let fd = libc::socket(libc::AF_UNIX, kind, 0);
                let addr_ptr = (&addr as *const libc::sockaddr_un).cast();
                let sent = match kind {
                    libc::SOCK_DGRAM => libc::sendto(
                        fd,
                        payload.as_ptr().cast(),
                        payload.len(),
                        0,
                        addr_ptr,
                        addr_len,
                    ),
                    _ if libc::connect(fd, addr_ptr, addr_len) == 0 => {
                        libc::write(fd, payload.as_ptr().cast(), payload.len())
                    }
                    _ => -1,
                };
                if fd < 0 || sent != payload.len() as isize {
                    exit(13);
                }
                libc::write(ack, b"1".as_ptr().cast(), 1);
                let mut b = 0u8;
                libc::read(rel, (&mut b as *mut u8).cast(), 1);
                exit(0);
            }
        }
        drop((ack_w, rel_r));
        let mut b = 0u8;
        // SAFETY: a one-byte read into a local.
        let n = unsafe { libc::read(ack_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            return Some(Written {
                pid: child as u32,
                release: Some(rel_w),
            });
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        let code = libc::WEXITSTATUS(status);
        assert_eq!(
            code,
            3,
            "the journal writer {self:?} could not {}",
            writer_failure(code)
        );
        None
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two fds it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two fresh fds that nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A native-protocol datagram of `fields`, one `NAME=value` a line.
pub fn native_entry(fields: &[(&str, String)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect::<String>()
        .into_bytes()
}
