//! The /proc rescan on a host with many processes: netio reads /proc for
//! what the kernel's events do not tell of, not every process every
//! interval; what only /proc shows (an executable's name the comm does not
//! have, a server that becomes its target's user after its exec) is still
//! found when it starts after netio.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{event, record_pid, unique_name, Idle, Netio, Program, Scratch};

const NOBODY: u32 = 65534;
const PATIENT: [&str; 4] = ["--timeout-secs", "200", "--deadline-secs", "300"];

/// Idle processes that are nobody's target, killed when dropped: a shell
/// and its `sleep` children, in a process group of their own.
struct Crowd {
    shell: Child,
}

impl Crowd {
    fn start(n: usize) -> Crowd {
        use std::os::unix::process::CommandExt;
        let script = format!("i=0; while [ $i -lt {n} ]; do sleep 600 & i=$((i+1)); done; wait");
        let shell = Command::new("/bin/sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the crowd's shell");
        // Killed with its children when dropped, also if they never start.
        let crowd = Crowd { shell };
        let pid = crowd.shell.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        for _ in 0..6000 {
            let have = std::fs::read_to_string(&children)
                .map(|s| s.split_whitespace().count())
                .unwrap_or(0);
            if have >= n {
                return crowd;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the crowd's shell did not start {n} processes");
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        // SAFETY: kill on the process group of a child not reaped yet.
        unsafe { libc::kill(-(self.shell.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.shell.wait();
    }
}

/// The read system calls `pid` has made (/proc/PID/io, syscr).
fn reads_of(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("syscr in /proc/PID/io")
}

/// Tasks made on the host since boot (`processes` in /proc/stat).
fn forks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    stat.lines()
        .find_map(|l| l.strip_prefix("processes "))
        .and_then(|n| n.trim().parse().ok())
        .expect("processes in /proc/stat")
}

fn target_records(records: &[serde_json::Value]) -> usize {
    records
        .iter()
        .filter(|v| event(v) == Some("traffic") && v["NETIO_SCOPE"] == "target")
        .count()
}

/// 2,000 idle processes and a 100 ms interval: netio read every one of
/// them from /proc every interval (a dozen read calls each), a cost in
/// proportion to the host's processes. Now, between two full scans, it
/// reads the PIDs made since the last interval and a slice of a slow sweep:
/// over 20 intervals fewer reads than a tenth of a read per idle process
/// per interval, besides a few for each task made on the host meanwhile
/// (other work on the machine: each new PID is read).
#[test]
fn an_idle_crowd_is_not_read_again_every_interval() {
    const CROWD: usize = 2000;
    const INTERVALS: usize = 20;
    let scratch = Scratch::new("rescan-crowd");
    let crowd = Crowd::start(CROWD);
    let idle = Idle::start(&scratch);
    let mut netio = Netio::start(&scratch, "100ms", &[("crowd", &[idle.name.as_str()])]);
    // The idle target has a traffic record every interval: a clock.
    let wait = Duration::from_secs(60);
    assert!(netio.wait_until(wait, |r| target_records(r) >= 3));
    let (before, forks_before) = (reads_of(netio.pid()), forks());
    assert!(netio.wait_until(wait, |r| target_records(r) >= 3 + INTERVALS));
    let reads = reads_of(netio.pid()) - before;
    let made = forks() - forks_before;
    drop(crowd);
    netio.stop();
    // A new PID costs its stat, status and cgroup (three read calls or so
    // each), and it is read again at the next rescan.
    let bound = (INTERVALS * CROWD / 10) as u64 + 24 * made;
    assert!(
        reads < bound,
        "{reads} read calls in {INTERVALS} intervals with {CROWD} idle processes \
         ({made} tasks made meanwhile): /proc is read in full every interval \
         (at most {bound} expected)"
    );
}

/// The `process_appeared` records of `pid`.
fn appeared(records: &[serde_json::Value], pid: u32) -> bool {
    records
        .iter()
        .any(|v| event(v) == Some("process_appeared") && record_pid(v) == Some(pid))
}

/// A server exec'd through a symlink of another name after netio started:
/// its comm is the link's, only its executable has the target's name, so
/// the kernel cannot match it at exec. The rescan of the PIDs made since
/// the last interval finds it; every byte counts.
#[test]
fn a_server_known_only_by_its_executables_name_is_found_after_start() {
    let scratch = Scratch::new("rescan-exe");
    let name = unique_name("ntx");
    let program = Program::named(&scratch, &name);
    let link = scratch.path(&unique_name("ntl"));
    std::os::unix::fs::symlink(&program.path, &link).unwrap();
    let mut netio = Netio::start(&scratch, "200ms", &[("exe", &[name.as_str()])]);

    let mut args = vec!["--size", "40009"];
    args.extend(PATIENT);
    let server = Program { path: link }.server("bulk", "127.0.0.1:0", &args);
    let pid = server.pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), name, "the comm is the link's name");
    assert!(
        netio.wait_until(Duration::from_secs(30), |r| appeared(r, pid)),
        "netio did not find the server by its executable's name"
    );
    Program::original().client("bulk", &server.addr("127.0.0.1"), &["--size", "40009"]);
    let truth = server.finish();
    netio
        .stop()
        .assert_exact_for(&[("exe", &truth.per_pid)], "127.0.0.1");
}

/// A root server whose children become the target's user after netio
/// started (`user = [nobody]`): the kernel refused the root server at its
/// exec, and the children are forked from it, so no event tells of them.
/// The rescan reads them as new, and again while a constraint refuses
/// them, and tracks them once they are nobody's; every byte counts.
#[test]
fn children_that_become_the_targets_user_after_start_are_found() {
    let scratch = Scratch::new("rescan-uid");
    let name = unique_name("ntu");
    let program = Program::named(&scratch, &name);
    let extra =
        format!("\n[[target]]\nname = \"uid\"\nprocess = [\"{name}\"]\nuser = [{NOBODY}]\n");
    let config = common::write_config_with(&scratch, "200ms", &[], &extra);
    let mut netio = Netio::start_file(&config);

    let nobody = NOBODY.to_string();
    let mut args = vec!["--count", "2", "--size", "30011", "--uid", &nobody];
    args.extend(PATIENT);
    let server = program.server("forking", "127.0.0.1:0", &args);
    let conns: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(server.addr("127.0.0.1")).expect("connect"))
        .collect();
    let children = format!("/proc/{}/task/{}/children", server.pid(), server.pid());
    let mut kids: Vec<u32> = Vec::new();
    for _ in 0..3000 {
        kids = std::fs::read_to_string(&children)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|k| k.parse().ok())
            .collect();
        if kids.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(kids.len(), 2, "the server forked a child per connection");
    assert!(
        netio.wait_until(Duration::from_secs(30), |r| kids
            .iter()
            .all(|&k| appeared(r, k))),
        "netio did not find the children that became nobody"
    );
    for mut c in conns {
        use std::io::{Read, Write};
        c.write_all(&[7u8; 30011]).expect("upload");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut back = Vec::new();
        c.read_to_end(&mut back).expect("download");
    }
    let truth = server.finish();
    assert_eq!(truth.per_pid.len(), 2);
    let records = netio.stop();
    records.assert_exact_for(&[("uid", &truth.per_pid)], "127.0.0.1");
}
