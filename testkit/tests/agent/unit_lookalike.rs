//! A target by systemd unit (`unit = "NAME.service"`) against a local user.
//! systemd gives every user a cgroup subtree of their own
//! (user.slice/user-UID.slice/user@UID.service, Delegate=yes: the user owns
//! the group and makes groups below it). While the database's unit is not
//! running (not started yet: netio.service starts before the databases;
//! stopped; restarting), uid 65534 names a group of that subtree like the
//! unit and runs programs in it. They are not the unit's processes: netio
//! must count none of their bytes for the target.
//!
//! The test lays out the groups as systemd does (system.slice, and the
//! user's subtree chowned to the user) on the cgroup2 mount netio uses, and
//! removes what it made.

use crate::common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{process_totals, unique_suffix, Netio, Program, Scratch};

const NOBODY: u32 = 65534;

/// The cgroup2 mount netio reads: the last one whose root is reachable.
fn cgroup2_root() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            (right.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(point))
        })
        .rfind(|p| p.join("cgroup.procs").exists())
        .expect("this test needs a cgroup v2 (cgroup2) mount")
}

/// Groups this test made, removed (deepest first) when it ends.
struct Made {
    root: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Made {
    fn dir(&mut self, rel: &str) -> PathBuf {
        let d = self.root.join(rel);
        if !d.exists() {
            std::fs::create_dir(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
            self.dirs.push(d.clone());
        }
        d
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while d.exists() && std::fs::remove_dir(d).is_err() && Instant::now() < deadline {
                // Exited processes take a moment to leave a group.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// What systemd does for a unit with Delegate=yes: its user owns the group
/// and the files that move processes and enable controllers below it.
fn delegate(dir: &Path, uid: u32) {
    for f in [
        "",
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.subtree_control",
    ] {
        let p = CString::new(dir.join(f).as_os_str().as_bytes()).unwrap();
        // SAFETY: chown on a NUL-terminated path.
        let rc = unsafe { libc::chown(p.as_ptr(), uid, uid) };
        assert_eq!(
            rc,
            0,
            "chown {}: {}",
            dir.join(f).display(),
            std::io::Error::last_os_error()
        );
    }
}

/// Makes `cmd` run as a process of the user's session: moved (as root)
/// into `session`, where a user's processes live, then uid and gid
/// 65534, and then, as that user, into `join` if given.
fn as_user_in(cmd: &mut Command, session: &Path, join: Option<&Path>) {
    let procs = |d: &Path| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()).unwrap();
    let (session, join) = (procs(session), join.map(procs));
    // SAFETY: the hook only makes system calls on memory prepared before
    // the fork.
    unsafe {
        cmd.pre_exec(move || {
            let into = |procs: &CString| {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                // "0": the writing process itself.
                let ok = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                let err = std::io::Error::last_os_error();
                if fd >= 0 {
                    libc::close(fd);
                }
                if ok {
                    Ok(())
                } else {
                    Err(err)
                }
            };
            into(&session)?;
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(join) = &join {
                into(join)?;
            }
            Ok(())
        });
    }
}

#[test]
fn a_users_cgroup_named_like_a_unit_that_is_not_running_counts_nothing_for_it() {
    let scratch = Scratch::new("unit-lookalike");
    let mut made = Made {
        root: cgroup2_root(),
        dirs: Vec::new(),
    };
    made.dir("system.slice");
    made.dir("user.slice");
    made.dir("user.slice/user-65534.slice");
    let manager = made.dir("user.slice/user-65534.slice/user@65534.service");
    let session = made.dir("user.slice/user-65534.slice/user@65534.service/init.scope");
    delegate(&manager, NOBODY);
    delegate(&session, NOBODY);
    let unit = format!("ntu-{}.service", unique_suffix());
    let config = scratch.path("netio.toml");
    std::fs::write(
        &config,
        format!("interval = \"1s\"\n[[target]]\nname = \"db\"\nunit = \"{unit}\"\n"),
    )
    .unwrap();
    let netio = Netio::start_file(&config);

    // uid 65534 names a group of its own like the unit, which is not running.
    let lookalike = manager.join(&unit);
    let mut mkdir = Command::new("mkdir");
    mkdir.arg(&lookalike);
    as_user_in(&mut mkdir, &session, None);
    let status = mkdir.status().expect("run mkdir");
    assert!(
        status.success(),
        "uid 65534 could not make {}",
        lookalike.display()
    );
    made.dirs.push(lookalike.clone());
    // Two intervals: netio's rescans have seen the group by then.
    std::thread::sleep(Duration::from_millis(2500));

    // Then runs a server and a client in it.
    let program = Program::original();
    let server = program.server_with("bulk", "127.0.0.1:0", &["--size", "1m"], |cmd| {
        as_user_in(cmd, &session, Some(&lookalike))
    });
    let client = program.client_with(
        "bulk",
        &server.addr("127.0.0.1"),
        &["--size", "1m"],
        |cmd| as_user_in(cmd, &session, Some(&lookalike)),
    );
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    let records = netio.stop();

    let counted: Vec<_> = process_totals(&records.records)
        .into_iter()
        .filter(|(_, b)| !b.is_zero())
        .collect();
    assert!(
        counted.is_empty(),
        "netio counted processes of uid 65534 in {} for target db (unit {unit}): {counted:?} \
         (the user's server was pid {}, its client pid {})",
        lookalike.display(),
        truth.pid,
        client.pid
    );
}
