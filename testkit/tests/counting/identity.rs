//! Process identity under attack: a zombie whose PID another process takes,
//! a lookalike of a long target name, a name that is not UTF-8, a target
//! whose main thread has exited. netio must count each target's processes
//! exactly and never count anyone else's bytes for them. The attacker runs
//! as nobody (uid 65534) wherever it is an unprivileged user.

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::{
    exchange, record_pid, tracked_program, unique_name, unique_suffix, Bytes, Netio, Program,
    Scratch, TARGET,
};

const NOBODY: &str = "65534";

fn s(n: u64) -> String {
    n.to_string()
}

/// Polls `what` every 20 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    what()
}

/// A /proc/PID/stat's comm (as bytes), state and parent.
fn stat_of(pid: u32) -> Option<(Vec<u8>, u8, u32)> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let mut fields = rest.split(' ');
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((stat[open + 1..close].to_vec(), state, ppid))
}

/// The children of `pid`, from every process's parent in /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat_of(p).is_some_and(|(_, _, ppid)| ppid == pid))
        .collect()
}

/// The NETIO_COMM of `pid`'s process traffic records.
fn comms_of(records: &common::Records, pid: u32) -> Vec<String> {
    records
        .traffic()
        .filter(|v| v["NETIO_SCOPE"] == "process" && record_pid(v) == Some(pid))
        .filter_map(|v| v["NETIO_COMM"].as_str().map(str::to_owned))
        .collect()
}

/// Runs `f` while netio is stopped (SIGSTOP): the kernel tracks and counts
/// on, and netio reads what happened meanwhile only after it, in order, as
/// if it had been slow to. What a process does before netio has read its
/// exec event is thus done before, every time.
fn with_netio_stopped<T>(netio: &Netio, f: impl FnOnce() -> T) -> T {
    let pid = netio.pid();
    // SAFETY: signals to the netio child this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
    assert!(
        wait_for(Duration::from_secs(10), || {
            stat_of(pid).is_some_and(|(_, state, _)| state == b'T')
        }),
        "netio did not stop"
    );
    let out = f();
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
    out
}

/// A child of a tracked process exits and its parent leaves it a zombie
/// across several interval ends (each with its /proc rescan), then reaps
/// it; an unrelated process of nobody's is forced onto that PID and moves
/// bytes. netio must count the child's bytes and never nobody's.
#[test]
fn a_zombies_pid_taken_by_an_unrelated_process_is_never_counted_for_the_target() {
    let (_scratch, tracked, netio) = tracked_program("zombie", "1s");
    let args = ["--size", "300000", "--zombie-ms", "3500", "--uid", NOBODY];
    let (server, _) = exchange(
        &tracked,
        &Program::original(),
        "zombie",
        "127.0.0.1:0",
        "127.0.0.1",
        &args,
    );
    let zombie = server.extra("zombie_pid").expect("zombie_pid") as u32;
    assert_eq!(
        server.raw["extra"]["zombie_state"], "Z",
        "the child was not a zombie while its parent held it"
    );
    let child = server.per_pid[&zombie];
    assert_eq!(
        child,
        Bytes {
            sent: 300_000,
            received: 300_000
        }
    );

    // Nobody's downloader, started by an untracked process, on that PID.
    let size = "300017";
    let other = Program::original().server("bulk", "127.0.0.1:0", &["--size", size]);
    let intruder = Program::original().client(
        "bulk",
        &other.addr("127.0.0.1"),
        &[
            "--size",
            size,
            "--take-pid",
            &zombie.to_string(),
            "--uid",
            NOBODY,
        ],
    );
    other.finish();
    assert_eq!(intruder.pid, zombie, "the intruder did not get the PID");

    let records = netio.stop();
    let counted = records
        .process_totals()
        .get(&zombie)
        .copied()
        .unwrap_or_default();
    assert_eq!(
        counted, child,
        "netio's bytes for PID {zombie}: the zombie child's ({child}) and nothing of nobody's \
         process that took its PID ({})",
        intruder.per_pid[&zombie]
    );
    records.assert_exact(&server.per_pid, "127.0.0.1");
}

/// A 21-byte target name, a lookalike with the same first 15 bytes (all the
/// kernel keeps of a name), and a short name, all unique to one test.
struct Names {
    long: String,
    lookalike: String,
    short: String,
}

impl Names {
    fn new() -> Self {
        let u = unique_suffix();
        let names = Names {
            long: format!("ntl-{u}-database"),
            lookalike: format!("ntl-{u}-dazzle"),
            short: format!("nts-{u}"),
        };
        assert_eq!(
            names.long.as_bytes()[..15],
            names.lookalike.as_bytes()[..15]
        );
        names
    }
}

/// A tracked server forks children that each drop to nobody and exec
/// `exec`, then serve their connection; returns its ground truth.
fn children_exec(scratch: &Scratch, parent: &Program, exec: &str) -> common::Truth {
    let exec = Program::named(scratch, exec);
    let path = exec.path.to_str().expect("UTF-8 scratch path").to_owned();
    let args = [
        "--count", "4", "--size", "22000", "--reexec", &path, "--uid", NOBODY,
    ];
    let (server, _) = exchange(
        parent,
        &Program::original(),
        "forking",
        "127.0.0.1:0",
        "127.0.0.1",
        &args,
    );
    let comms = server.raw["extra"]["child_comms"]
        .as_object()
        .expect("child_comms");
    assert!(
        comms
            .values()
            .all(|c| c.as_str() == Some(&exec.name()[..15])),
        "the children did not all exec {}: {comms:?}",
        exec.name()
    );
    assert_eq!(server.per_pid.len(), 4, "expected four children's bytes");
    server
}

/// The case: the children of a process tracked by a long name exec
/// a lookalike of it. They stay their parent's, counted to the byte.
#[test]
fn children_execing_a_lookalike_of_their_targets_long_name_stay_counted() {
    let scratch = Scratch::new("lookalike");
    let n = Names::new();
    let netio = Netio::start(&scratch, "1s", &[(TARGET, &[n.long.as_str()])]);
    let parent = Program::named(&scratch, &n.long);
    let server = children_exec(&scratch, &parent, &n.lookalike);
    netio.stop().assert_exact(&server.per_pid, "127.0.0.1");
}

/// The children of a target's process exec a lookalike of another target's
/// long name: they stay their parent target's, and the other gets nothing.
#[test]
fn children_execing_a_lookalike_of_another_targets_long_name_stay_their_parents() {
    let scratch = Scratch::new("lookalike-other");
    let n = Names::new();
    let targets: &[(&str, &[&str])] = &[(TARGET, &[n.short.as_str()]), ("long", &[&n.long])];
    let netio = Netio::start(&scratch, "1s", targets);
    let parent = Program::named(&scratch, &n.short);
    let server = children_exec(&scratch, &parent, &n.lookalike);
    let none = BTreeMap::new();
    netio
        .stop()
        .assert_exact_for(&[(TARGET, &server.per_pid), ("long", &none)], "127.0.0.1");
}

/// The other side of the same check: children that exec the long name
/// itself become that target's from their exec on, every byte of it, also
/// what they move before netio has read their exec (netio is stopped).
#[test]
fn children_execing_another_targets_long_name_count_for_that_target() {
    let scratch = Scratch::new("longname");
    let n = Names::new();
    let targets: &[(&str, &[&str])] = &[(TARGET, &[n.short.as_str()]), ("long", &[&n.long])];
    let netio = Netio::start(&scratch, "1s", targets);
    let parent = Program::named(&scratch, &n.short);
    let server = with_netio_stopped(&netio, || children_exec(&scratch, &parent, &n.long));
    let none = BTreeMap::new();
    netio
        .stop()
        .assert_exact_for(&[(TARGET, &none), ("long", &server.per_pid)], "127.0.0.1");
}

/// A process whose parent exec'd a long target name is that target's from
/// its fork on, also when it was forked before netio read the exec: here a
/// script of another target execs the long name, which forks a child per
/// connection, all while netio is stopped.
#[test]
fn children_forked_before_a_long_name_is_confirmed_count_for_its_target() {
    let scratch = Scratch::new("longname-fork");
    let n = Names::new();
    let targets: &[(&str, &[&str])] = &[(TARGET, &[n.short.as_str()]), ("long", &[&n.long])];
    let netio = Netio::start(&scratch, "1s", targets);
    let long = Program::named(&scratch, &n.long);
    let script = Program {
        path: scratch.path(&n.short),
    };
    let body = format!("#!/bin/sh\nexec '{}' \"$@\"\n", long.path.display());
    std::fs::write(&script.path, body).expect("write the script");
    std::fs::set_permissions(&script.path, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the script");
    let args = ["--count", "3", "--size", "22000"];
    let server = with_netio_stopped(&netio, || {
        let (server, _) = exchange(
            &script,
            &Program::original(),
            "forking",
            "127.0.0.1:0",
            "127.0.0.1",
            &args,
        );
        server
    });
    assert_eq!(server.per_pid.len(), 3, "expected three children's bytes");
    let none = BTreeMap::new();
    netio
        .stop()
        .assert_exact_for(&[(TARGET, &none), ("long", &server.per_pid)], "127.0.0.1");
}

/// Nobody runs a lookalike of a long target name: it is no target, and
/// nothing it moves is counted (the kernel matched its first 15 bytes),
/// nor anything of the children it forks before netio has read its exec
/// (netio is stopped meanwhile).
#[test]
fn an_untracked_lookalike_of_a_long_name_and_its_children_are_not_counted() {
    let scratch = Scratch::new("lookalike-untracked");
    let n = Names::new();
    let netio = Netio::start(&scratch, "1s", &[(TARGET, &[n.long.as_str()])]);
    let lookalike = Program::named(&scratch, &n.lookalike);
    let args = ["--count", "2", "--size", "22000"];
    let intruder = with_netio_stopped(&netio, || {
        let server = lookalike.server_with("forking", "127.0.0.1:0", &args, |cmd| {
            cmd.uid(65534).gid(65534);
        });
        Program::original().client("forking", &server.addr("127.0.0.1"), &args);
        server.finish()
    });
    assert_eq!(intruder.per_pid.len(), 2, "expected two children's bytes");
    // A tracked pair in the same run shows netio was counting at all.
    let (tracked, _) = exchange(
        &Program::named(&scratch, &n.long),
        &Program::original(),
        "bulk",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--size", "65536"],
    );
    let records = netio.stop();
    let reported = records.traffic_pids();
    for pid in intruder.per_pid.keys().chain([&intruder.pid]) {
        assert!(
            !reported.contains(pid),
            "netio reported traffic for pid {pid} of nobody's lookalike (pid {})",
            intruder.pid
        );
    }
    records.assert_exact(&tracked.per_pid, "127.0.0.1");
}

/// A descendant of a target renames itself to bytes that are not UTF-8
/// before netio starts, so only the /proc scan can find it: it is tracked
/// through its parent and counted to the byte, under its (lossy) name.
#[test]
fn a_descendant_whose_name_is_not_utf8_is_found_by_the_proc_scan() {
    let scratch = Scratch::new("non-utf8");
    let name = unique_name("ntt");
    let parent = Program::named(&scratch, &name);
    let size: u64 = 77_777;
    let args = [
        "--count",
        "1",
        "--size",
        &s(size),
        "--child-name",
        "\\xff\\xfe",
        "--uid",
        NOBODY,
        "--timeout-secs",
        "200",
        "--deadline-secs",
        "300",
    ];
    let server = parent.server("forking", "127.0.0.1:0", &args);
    // The connection makes the child; it renames itself and waits for bytes.
    let mut conn = TcpStream::connect(server.addr("127.0.0.1")).expect("connect");
    let mut child = None;
    assert!(
        wait_for(Duration::from_secs(10), || {
            child = children_of(server.pid())
                .into_iter()
                .find(|&c| stat_of(c).is_some_and(|(comm, _, _)| comm == b"\xff\xfe"));
            child.is_some()
        }),
        "the server's child did not rename itself to \\xff\\xfe"
    );
    let child = child.unwrap();

    let netio = Netio::start(&scratch, "1s", &[(TARGET, &[name.as_str()])]);
    conn.write_all(&vec![7u8; size as usize]).expect("upload");
    conn.shutdown(Shutdown::Write).expect("shutdown");
    let mut back = Vec::new();
    conn.read_to_end(&mut back).expect("download");
    assert_eq!(back.len() as u64, size, "the child sent the wrong amount");
    let truth = server.finish();
    assert_eq!(
        truth.per_pid.keys().copied().collect::<Vec<_>>(),
        vec![child],
        "only the renamed child should have moved bytes"
    );

    let records = netio.stop();
    records.assert_exact(&truth.per_pid, "127.0.0.1");
    let comms = comms_of(&records, child);
    assert!(
        comms
            .iter()
            .all(|c| c == "\u{fffd}\u{fffd}" || c.to_ascii_lowercase().contains("\\xff\\xfe")),
        "the child's records should carry its name, \\xff\\xfe: {comms:?}"
    );
}

/// A target's main thread exits (a zombie thread-group leader, which has no
/// memory map and so no readable /proc/PID/exe) while a worker thread goes
/// on serving; netio starts after that and must find and count it.
#[test]
fn a_target_whose_main_thread_has_exited_is_found_and_counted() {
    let scratch = Scratch::new("leader-exit");
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let size = "3000017";
    let args = [
        "--size",
        size,
        "--timeout-secs",
        "200",
        "--deadline-secs",
        "300",
    ];
    let server = tracked.server("leader-exit", "127.0.0.1:0", &args);
    assert!(
        wait_for(Duration::from_secs(10), || {
            stat_of(server.pid()).is_some_and(|(_, state, _)| state == b'Z')
        }),
        "the server's main thread did not exit"
    );
    let netio = Netio::start(&scratch, "1s", &[(TARGET, &[name.as_str()])]);
    let client = Program::original().client("leader-exit", &server.addr("127.0.0.1"), &args);
    let truth = server.finish();
    assert_eq!((truth.sent, truth.received), (client.received, client.sent));
    assert_eq!(truth.raw["extra"]["leader_state"], "Z");
    netio.stop().assert_exact(&truth.per_pid, "127.0.0.1");
}
