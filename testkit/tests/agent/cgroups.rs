//! Targets by cgroup (`cgroup = "/path"`) and by systemd unit (`unit =
//! "NAME.service"`, the directory of that name below the cgroup2 mount):
//! every process in the group is counted exactly, whatever its name, be it
//! exec'd into the group after netio started (the kernel's exec-time
//! match) or moved there before (the /proc scan), while the same traffic
//! outside the group is not counted.
//!
//! Each test makes its own groups (`netio-test-<unique>`) directly below
//! the cgroup2 root and removes them at the end. netio looks for cgroup2
//! at /sys/fs/cgroup. Where the host mounts it elsewhere (the "hybrid"
//! layout, cgroup2 at /sys/fs/cgroup/unified) the tests that are not about
//! that layout run netio in a private mount namespace with cgroup2 mounted
//! at /sys/fs/cgroup; one test is about that layout, and emulates it the
//! same way on every host.

use crate::common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{event, num, record_pid, unique_suffix, Bytes, Netio, Program, Scratch, Truth};

/// Where netio expects cgroup2.
const NETIO_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The bulk exchange every tracked and untracked server runs here.
const SIZE: &str = "1048576";

/// The first cgroup2 mount in this mount namespace, from mountinfo.
fn cgroup2_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            (right.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(point))
        })
        .expect("these tests need a cgroup v2 (cgroup2) mount")
}

/// A cgroup v2 group made by a test, removed when dropped.
struct Group {
    root: PathBuf,
    /// The path below the cgroup2 root, as /proc/PID/cgroup shows it.
    rel: String,
}

impl Group {
    fn create(root: &Path, name: &str) -> Self {
        let g = Group {
            root: root.to_path_buf(),
            rel: format!("/{name}"),
        };
        std::fs::create_dir(g.dir())
            .unwrap_or_else(|e| panic!("create cgroup {}: {e}", g.dir().display()));
        g
    }

    fn dir(&self) -> PathBuf {
        self.root.join(&self.rel[1..])
    }

    fn procs(&self) -> PathBuf {
        self.dir().join("cgroup.procs")
    }

    /// Moves a running process into the group.
    fn add(&self, pid: u32) {
        std::fs::write(self.procs(), pid.to_string())
            .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", self.procs().display()));
        let now = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        assert!(
            now.lines().any(|l| l == format!("0::{}", self.rel)),
            "pid {pid} is not in {} after the move: {now}",
            self.rel
        );
    }

    /// A `pre_exec` hook for `cmd`: the child joins the group before it
    /// execs, as systemd does with a unit's processes.
    fn exec_in(&self, cmd: &mut Command) {
        let procs = CString::new(self.procs().into_os_string().into_encoded_bytes())
            .expect("path without NUL");
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

    /// Recreates the group under the same path, as a service restart does:
    /// same path, new cgroup (new id).
    fn recreate(&self) {
        self.empty_out();
        std::fs::remove_dir(self.dir())
            .unwrap_or_else(|e| panic!("remove {}: {e}", self.dir().display()));
        std::fs::create_dir(self.dir())
            .unwrap_or_else(|e| panic!("recreate {}: {e}", self.dir().display()));
    }

    /// Moves whatever is still in the group to the root group.
    fn empty_out(&self) {
        let pids = std::fs::read_to_string(self.procs()).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Processes that exited may take a moment to leave.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.empty_out();
            match std::fs::remove_dir(self.dir()) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) if Instant::now() > deadline => {
                    eprintln!("cannot remove cgroup {}: {e}", self.dir().display());
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// Where netio finds cgroup2 in its mount namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Whatever the host has.
    Host,
    /// cgroup2 at /sys/fs/cgroup, in a private mount namespace.
    Unified,
    /// The hybrid layout: a tmpfs at /sys/fs/cgroup and cgroup2 at
    /// /sys/fs/cgroup/unified, in a private mount namespace.
    Hybrid,
}

/// `Host` where cgroup2 is at /sys/fs/cgroup, else `Unified`.
fn unified_layout(mount: &Path) -> Layout {
    if mount == Path::new(NETIO_CGROUP_ROOT) {
        Layout::Host
    } else {
        Layout::Unified
    }
}

fn start_netio(config: &Path, layout: Layout) -> Netio {
    if layout == Layout::Host {
        return Netio::start_file(config);
    }
    let c = |s: &str| CString::new(s).unwrap();
    let (root, unified, cgroup2, tmpfs) = (
        c(NETIO_CGROUP_ROOT),
        c("/sys/fs/cgroup/unified"),
        c("cgroup2"),
        c("tmpfs"),
    );
    let (slash, mode) = (c("/"), c("mode=755"));
    let hybrid = layout == Layout::Hybrid;
    Netio::start_file_with(config, move |cmd| {
        // SAFETY: the hook only makes system calls on memory prepared
        // before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let check = |rc: libc::c_int| {
                    if rc < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                };
                let none = std::ptr::null();
                check(libc::unshare(libc::CLONE_NEWNS))?;
                check(libc::mount(
                    none,
                    slash.as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                if hybrid {
                    check(libc::mount(
                        tmpfs.as_ptr(),
                        root.as_ptr(),
                        tmpfs.as_ptr(),
                        0,
                        mode.as_ptr().cast(),
                    ))?;
                    check(libc::mkdir(unified.as_ptr(), 0o755))?;
                    check(libc::mount(
                        cgroup2.as_ptr(),
                        unified.as_ptr(),
                        cgroup2.as_ptr(),
                        0,
                        std::ptr::null(),
                    ))
                } else {
                    check(libc::mount(
                        cgroup2.as_ptr(),
                        root.as_ptr(),
                        cgroup2.as_ptr(),
                        0,
                        std::ptr::null(),
                    ))
                }
            });
        }
    })
}

fn truth_of(ts: &[&Truth]) -> BTreeMap<u32, Bytes> {
    let mut m = BTreeMap::new();
    for t in ts {
        m.extend(t.per_pid.iter().map(|(p, b)| (*p, *b)));
    }
    m
}

/// An untracked client's bulk exchange with `server`; returns the server's
/// ground truth.
fn serve_one(server: common::Server) -> Truth {
    let client = Program::original().client("bulk", &server.addr("127.0.0.1"), &["--size", SIZE]);
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    truth
}

fn bulk_server() -> common::Server {
    Program::original().server("bulk", "127.0.0.1:0", &["--size", SIZE])
}

fn bulk_server_in(group: &Group) -> common::Server {
    Program::original().server_with("bulk", "127.0.0.1:0", &["--size", SIZE], |cmd| {
        group.exec_in(cmd)
    })
}

fn write_config(scratch: &Scratch, interval: &str, targets: &str) -> PathBuf {
    let path = scratch.path("netio.toml");
    let every = common::EVERY_PROCESS;
    std::fs::write(
        &path,
        format!("interval = \"{interval}\"\n{every}{targets}"),
    )
    .expect("write config");
    path
}

fn appeared(records: &[serde_json::Value], target: &str) -> Vec<u32> {
    records
        .iter()
        .filter(|v| event(v) == Some("process_appeared") && v["NETIO_TARGET"] == target)
        .filter_map(record_pid)
        .collect()
}

/// The common body of the tests that check `cgroup` and `unit` targets
/// where netio sees cgroup2 as `layout` says. The interval is long, so no
/// periodic rescan runs while the test does: what is exec'd into a group
/// after the start is tracked by the kernel's exec-time match alone.
fn cgroup_and_unit_targets(layout_of: impl Fn(&Path) -> Layout) {
    let scratch = Scratch::new("cgroup");
    let mount = cgroup2_mount();
    let u = unique_suffix();
    let cg = Group::create(&mount, &format!("netio-test-{u}"));
    let unit_name = format!("netio-test-{u}.service");
    let unit = Group::create(&mount, &unit_name);

    // Running before netio starts, moved into the groups: the /proc scan.
    let cg_before = bulk_server();
    cg.add(cg_before.pid());
    let unit_before = bulk_server();
    unit.add(unit_before.pid());

    let config = write_config(
        &scratch,
        "60s",
        &format!(
            "[[target]]\nname = \"cg\"\ncgroup = \"{}\"\n\n[[target]]\nname = \"unit\"\nunit = \"{unit_name}\"\n",
            cg.rel
        ),
    );
    let netio = start_netio(&config, layout_of(&mount));

    // Exec'd into the groups after the start, under the generator's own
    // name, which no target lists.
    let cg_exec = bulk_server_in(&cg);
    let unit_exec = bulk_server_in(&unit);
    // The same program and traffic outside any group.
    let outside = bulk_server();
    let outside_pid = outside.pid();

    let cg_truth = [serve_one(cg_before), serve_one(cg_exec)];
    let unit_truth = [serve_one(unit_before), serve_one(unit_exec)];
    let _ = serve_one(outside);
    let records = netio.stop();

    records.assert_exact_for(
        &[
            ("cg", &truth_of(&[&cg_truth[0], &cg_truth[1]])),
            ("unit", &truth_of(&[&unit_truth[0], &unit_truth[1]])),
        ],
        "127.0.0.1",
    );
    assert!(
        !records.traffic_pids().contains(&outside_pid),
        "the server outside the groups was counted"
    );
    let started = records
        .records
        .iter()
        .find(|v| event(v) == Some("started"))
        .expect("started record");
    assert_eq!(
        num(started, "NETIO_PROCESSES"),
        Some(2),
        "the two processes moved into the groups before the start: {started}"
    );
    assert_eq!(appeared(&records.records, "cg"), vec![cg_truth[1].pid]);
    assert_eq!(appeared(&records.records, "unit"), vec![unit_truth[1].pid]);
}

#[test]
fn cgroup_and_unit_targets_count_exactly_the_processes_in_their_cgroup() {
    cgroup_and_unit_targets(unified_layout);
}

/// With the hybrid layout (systemd's before v2-only, still chosen with
/// systemd.unified_cgroup_hierarchy=0), cgroup2 is at
/// /sys/fs/cgroup/unified, and /sys/fs/cgroup/<path> is no cgroup at all.
#[test]
fn cgroup_and_unit_targets_work_when_cgroup2_is_mounted_at_sys_fs_cgroup_unified() {
    cgroup_and_unit_targets(|_| Layout::Hybrid);
}

/// A process exec'd into a cgroup target is matched by its cgroup, not by
/// its name; a name that fills the kernel's 15-byte comm must not make
/// netio drop it as a mere name-prefix match.
#[test]
fn cgroup_target_counts_an_exec_whose_name_fills_the_comm() {
    let scratch = Scratch::new("cgroup-long");
    let mount = cgroup2_mount();
    let u = unique_suffix();
    let cg = Group::create(&mount, &format!("netio-test-{u}"));
    let long = Program::named(&scratch, &format!("ntcglong-{u}-server"));
    assert!(long.name().len() > 15);
    let config = write_config(
        &scratch,
        "60s",
        &format!("[[target]]\nname = \"cg\"\ncgroup = \"{}\"\n", cg.rel),
    );
    let netio = start_netio(&config, unified_layout(&mount));
    let server = long.server_with("bulk", "127.0.0.1:0", &["--size", SIZE], |cmd| {
        cg.exec_in(cmd)
    });
    let truth = serve_one(server);
    let records = netio.stop();
    records.assert_exact_for(&[("cg", &truth.per_pid)], "127.0.0.1");
}

/// A process exec'd into a cgroup target under a lookalike of another
/// target's long name (the same first 15 bytes, all the kernel keeps of a
/// name) stays the cgroup's from its first byte: a name match the full
/// name does not confirm must not take it away. The interval is long, so
/// no rescan could make up for it.
#[test]
fn cgroup_target_keeps_an_exec_named_like_another_targets_long_name() {
    let scratch = Scratch::new("cgroup-lookalike");
    let mount = cgroup2_mount();
    let u = unique_suffix();
    let cg = Group::create(&mount, &format!("netio-test-{u}"));
    let long = format!("ntcgl-{u}-database");
    let lookalike = Program::named(&scratch, &format!("ntcgl-{u}-dazzle"));
    assert_eq!(long.as_bytes()[..15], lookalike.name().as_bytes()[..15]);
    let targets = format!(
        "[[target]]\nname = \"cg\"\ncgroup = \"{}\"\n\n\
         [[target]]\nname = \"long\"\nprocess = [\"{long}\"]\n",
        cg.rel
    );
    let config = write_config(&scratch, "60s", &targets);
    let netio = start_netio(&config, unified_layout(&mount));
    let server = lookalike.server_with("bulk", "127.0.0.1:0", &["--size", SIZE], |cmd| {
        cg.exec_in(cmd)
    });
    let truth = serve_one(server);
    let records = netio.stop();
    let none = BTreeMap::new();
    records.assert_exact_for(&[("cg", &truth.per_pid), ("long", &none)], "127.0.0.1");
}

/// `systemctl restart` removes a unit's cgroup and makes a new one at the
/// same path. What is exec'd into the new one must be matched as before.
#[test]
fn cgroup_target_follows_its_cgroup_when_it_is_recreated() {
    let scratch = Scratch::new("cgroup-recreate");
    let mount = cgroup2_mount();
    let u = unique_suffix();
    let cg = Group::create(&mount, &format!("netio-test-{u}"));
    // The empty cgroup's target is said once; the idle one's every interval.
    let idle = common::Idle::start(&scratch);
    let config = write_config(
        &scratch,
        "1s",
        &format!(
            "[[target]]\nname = \"cg\"\ncgroup = \"{}\"\n{}",
            cg.rel,
            idle.target("tick")
        ),
    );
    let mut netio = start_netio(&config, unified_layout(&mount));
    let intervals = |r: &[serde_json::Value]| {
        r.iter()
            .filter(|v| event(v) == Some("traffic") && v["NETIO_SCOPE"] == "target")
            .count()
    };
    // The first interval ends a second after the started record: the
    // restart comes before it, and two interval ends (each with its /proc
    // rescan) after it.
    cg.recreate();
    assert!(
        netio.wait_until(Duration::from_secs(10), |r| intervals(r) >= 2),
        "netio wrote no interval records"
    );
    // A short-lived process exec'd into the new cgroup: a client that
    // uploads and downloads 1 MiB to an untracked server and exits, well
    // within one interval.
    let server = bulk_server();
    let client = Program::original().client_with(
        "bulk",
        &server.addr("127.0.0.1"),
        &["--size", SIZE],
        |cmd| cg.exec_in(cmd),
    );
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    let records = netio.stop();
    records.assert_exact_for(
        &[("cg", &client.per_pid), ("tick", &BTreeMap::new())],
        "127.0.0.1",
    );
}

/// A cgroup target covers the cgroups below it too (as the /proc scan
/// does): a process exec'd into a child cgroup, e.g. one a service made
/// for its workers, is counted from its first byte.
#[test]
fn cgroup_target_counts_an_exec_in_a_cgroup_below_it() {
    let scratch = Scratch::new("cgroup-child");
    let mount = cgroup2_mount();
    let u = unique_suffix();
    let cg = Group::create(&mount, &format!("netio-test-{u}"));
    let child = Group::create(&mount, &format!("netio-test-{u}/workers"));
    let config = write_config(
        &scratch,
        "60s",
        &format!("[[target]]\nname = \"cg\"\ncgroup = \"{}\"\n", cg.rel),
    );
    let netio = start_netio(&config, unified_layout(&mount));
    let truth = serve_one(bulk_server_in(&child));
    let records = netio.stop();
    records.assert_exact_for(&[("cg", &truth.per_pid)], "127.0.0.1");
}

/// `n` groups below `parent`, named `sub-0` on; dropped before it.
fn subgroups(mount: &Path, parent: &Group, n: usize) -> Vec<Group> {
    (0..n)
        .map(|i| Group::create(mount, &format!("{}/sub-{i}", &parent.rel[1..])))
        .collect()
}

/// A unit that made 70 groups for its workers (more than the 64 the cgroup
/// map once had room for): netio starts, and a process exec'd into the
/// last of them is counted from its first byte.
#[test]
fn cgroup_target_with_70_groups_below_it_starts_and_counts() {
    let scratch = Scratch::new("cgroup-many");
    let mount = cgroup2_mount();
    let u = unique_suffix();
    let cg = Group::create(&mount, &format!("netio-test-{u}"));
    let subs = subgroups(&mount, &cg, 70);
    let config = write_config(
        &scratch,
        "60s",
        &format!("[[target]]\nname = \"cg\"\ncgroup = \"{}\"\n", cg.rel),
    );
    let netio = start_netio(&config, unified_layout(&mount));
    let truth = serve_one(bulk_server_in(&subs[69]));
    let records = netio.stop();
    records.assert_exact_for(&[("cg", &truth.per_pid)], "127.0.0.1");
}

/// A reload adds targets whose groups are more than the cgroup map holds
/// (the map is sized at start). The rescan goes on: the groups that fit
/// are matched, a process only the rescan can find (it was running before
/// its name was configured) is tracked, and a `degraded` record names the
/// target whose groups did not fit.
#[test]
fn a_full_cgroup_map_is_reported_and_the_rescan_tracks_the_rest() {
    let scratch = Scratch::new("cgroup-full");
    let mount = cgroup2_mount();
    let u = unique_suffix();
    let cg = Group::create(&mount, &format!("netio-test-{u}"));
    let big1 = Group::create(&mount, &format!("netio-test-{u}-b1"));
    let big2 = Group::create(&mount, &format!("netio-test-{u}-b2"));
    // 1 + 256 + 256 groups, where one path's headroom is 512.
    let _subs1 = subgroups(&mount, &big1, 255);
    let _subs2 = subgroups(&mount, &big2, 255);
    let first = format!("[[target]]\nname = \"cg\"\ncgroup = \"{}\"\n", cg.rel);
    let config = write_config(&scratch, "60s", &first);
    let mut netio = start_netio(&config, unified_layout(&mount));

    let name = common::unique_name("ntn");
    let named = Program::named(&scratch, &name);
    let server = named.server("bulk", "127.0.0.1:0", &["--size", SIZE]);
    std::fs::write(
        &config,
        format!(
            "interval = \"60s\"\n{}{first}\
             [[target]]\nname = \"big1\"\ncgroup = \"{}\"\n\
             [[target]]\nname = \"big2\"\ncgroup = \"{}\"\n\
             [[target]]\nname = \"named\"\nprocess = [\"{name}\"]\n",
            common::EVERY_PROCESS,
            big1.rel,
            big2.rel
        ),
    )
    .expect("write the new config");
    // SAFETY: a signal to the netio child this test started.
    let rc = unsafe { libc::kill(netio.pid() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill(SIGHUP): {}", std::io::Error::last_os_error());
    assert!(
        netio.wait_until(Duration::from_secs(20), |r| r
            .iter()
            .any(|v| event(v) == Some("config_reloaded"))),
        "netio did not reload"
    );
    let by_name = serve_one(server);
    let in_cg = serve_one(bulk_server_in(&cg));
    let records = netio.stop();
    let none = BTreeMap::new();
    records.assert_exact_for(
        &[
            ("cg", &in_cg.per_pid),
            ("named", &by_name.per_pid),
            ("big1", &none),
            ("big2", &none),
        ],
        "127.0.0.1",
    );
    let full: Vec<_> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("degraded") && v["NETIO_REASON"] == "cgroup_map_full")
        .collect();
    assert!(
        full.iter()
            .any(|v| v["NETIO_TARGET"] == "big2" && num(v, "NETIO_COUNT") >= Some(1)),
        "a degraded record must name the target whose groups did not fit: {full:?}"
    );
}
