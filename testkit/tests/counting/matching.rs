//! Who a target's process is: a name is not enough. Look-alikes run by
//! another user (nobody), named like the target by exec or by
//! prctl(PR_SET_NAME), and copies of its executable, at another path or
//! bind-mounted over the real one in nobody's own user and mount
//! namespace, must count nothing and take none of the target's room, while
//! the real server counts to the byte and its records say who it is
//! (NETIO_UID, NETIO_EXE).

use crate::common;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{record_pid, unique_name, Netio, Program, Scratch, Server, TARGET};

const NOBODY: u32 = 65534;
/// The real server's own user: daemon on Debian, a uid no test attacker
/// runs as. A number, so it needs no user database (the kernel matrix's
/// guests have none).
const SERVER_UID: u32 = 1;

/// A config with one target of process name `name` and `constraints`
/// (TOML lines), and `[capacity]` lines `capacity`.
fn config(scratch: &Scratch, name: &str, constraints: &str, capacity: &str) -> PathBuf {
    let text = format!(
        "interval = \"1s\"\n[capacity]\n{capacity}\n[[target]]\nname = \"{TARGET}\"\nprocess = [\"{name}\"]\n{constraints}\n"
    );
    let path = scratch.path("netio.toml");
    std::fs::write(&path, text).expect("write netio config");
    path
}

/// Args that keep a server waiting for its client for as long as a test.
const PATIENT: [&str; 4] = ["--timeout-secs", "200", "--deadline-secs", "300"];

/// A bulk server of `size` bytes from `program`, run as `uid`.
fn bulk_as(program: &Program, uid: u32, size: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--size", size];
    args.extend(PATIENT);
    args.extend(extra);
    program.server_with("bulk", "127.0.0.1:0", &args, |c| {
        c.uid(uid).gid(uid);
    })
}

/// Runs the client of a bulk server and returns the server's truth.
fn serve(server: Server, size: &str) -> common::Truth {
    Program::original().client("bulk", &server.addr("127.0.0.1"), &["--size", size]);
    server.finish()
}

/// The NETIO_UID and NETIO_EXE of every record of `pid`'s: traffic of
/// its own and with its peers, process_appeared and process_exited.
fn who_of(records: &common::Records, pid: u32) -> Vec<(Option<u64>, Option<String>)> {
    records
        .records
        .iter()
        .filter(|v| record_pid(v) == Some(pid))
        .map(|v| {
            (
                common::num(v, "NETIO_UID"),
                v["NETIO_EXE"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn assert_who(records: &common::Records, pid: u32, uid: u32, exe: &Path) {
    let who = who_of(records, pid);
    let want = (Some(u64::from(uid)), exe.to_str().map(str::to_owned));
    assert!(
        !who.is_empty() && who.iter().all(|w| *w == want),
        "pid {pid}'s records should say uid {uid}, exe {}: {who:?}",
        exe.display()
    );
}

fn assert_none_reported(records: &common::Records, pids: &[u32]) {
    let reported = records.traffic_pids();
    for pid in pids {
        assert!(
            !reported.contains(pid),
            "netio reported traffic for the look-alike pid {pid}"
        );
    }
}

/// The case: four sleeping look-alikes of nobody's, two exec'd
/// under the target's name and two renamed to it with PR_SET_NAME, with
/// room for four processes and `user` naming the real server's user. The
/// real server, started after them, is tracked and counted to the byte;
/// what the look-alikes move counts for nothing.
#[test]
fn look_alikes_of_another_user_count_nothing_and_take_no_room() {
    let scratch = Scratch::new("impostors");
    let name = unique_name("ntt");
    let program = Program::named(&scratch, &name);
    let cfg = config(
        &scratch,
        &name,
        &format!("user = [{SERVER_UID}]"),
        "processes = 4",
    );
    let netio = Netio::start_file(&cfg);

    let size = "50021";
    let execd: Vec<Server> = (0..2)
        .map(|_| bulk_as(&program, NOBODY, size, &[]))
        .collect();
    // A root server of another name whose children rename themselves to
    // the target's name and become nobody, then wait for their bytes.
    let nobody = NOBODY.to_string();
    let mut args = vec![
        "--count",
        "2",
        "--size",
        size,
        "--child-name",
        &name,
        "--uid",
        &nobody,
    ];
    args.extend(PATIENT);
    let renaming = Program::original().server("forking", "127.0.0.1:0", &args);
    let conns: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(renaming.addr("127.0.0.1")).expect("connect"))
        .collect();
    // Two rescans: time for netio to find the renamed ones, were they a
    // target's.
    std::thread::sleep(Duration::from_millis(2500));

    let real = serve(bulk_as(&program, SERVER_UID, "500000", &[]), "500000");
    assert_eq!(real.per_pid.len(), 1);

    // Now the look-alikes move their bytes.
    let mut impostors: Vec<u32> = execd.iter().map(Server::pid).collect();
    for s in execd {
        let truth = serve(s, size);
        assert!(truth.sent > 0, "a look-alike did not serve");
    }
    for mut c in conns {
        c.write_all(&vec![7u8; 50021]).expect("upload");
        c.shutdown(Shutdown::Write).expect("shutdown");
        let mut back = Vec::new();
        c.read_to_end(&mut back).expect("download");
    }
    let renamed = renaming.finish();
    assert_eq!(renamed.per_pid.len(), 2, "expected two renamed children");
    impostors.extend(renamed.per_pid.keys());

    let records = netio.stop();
    records.assert_exact(&real.per_pid, "127.0.0.1");
    assert_none_reported(&records, &impostors);
    let pid = *real.per_pid.keys().next().unwrap();
    assert_who(&records, pid, SERVER_UID, &program.path);
}

/// Every process and peer record says who the process is: its uid and
/// its executable, for a server and for the child it forks.
#[test]
fn records_carry_the_uid_and_the_executable() {
    let scratch = Scratch::new("who");
    let name = unique_name("ntt");
    let program = Program::named(&scratch, &name);
    let netio = Netio::start_file(&config(&scratch, &name, "", ""));
    let bulk = serve(bulk_as(&program, SERVER_UID, "70001", &[]), "70001");
    let args = ["--count", "1", "--size", "30011"];
    let forking = program.server_with("forking", "127.0.0.1:0", &args, |c| {
        c.uid(SERVER_UID).gid(SERVER_UID);
    });
    Program::original().client("forking", &forking.addr("127.0.0.1"), &args);
    let forking = forking.finish();
    let records = netio.stop();
    let mut truth = bulk.per_pid.clone();
    truth.extend(forking.per_pid.clone());
    records.assert_exact(&truth, "127.0.0.1");
    assert_eq!(truth.len(), 2);
    for pid in truth.keys() {
        assert_who(&records, *pid, SERVER_UID, &program.path);
    }
}

/// Puts the calling process (nobody, just before its exec) in a user and
/// a mount namespace of its own, as `unshare -Urm` does, and binds `from`
/// over `over` there. Only async-signal-safe calls: it runs between fork
/// and exec.
fn bind_in_own_namespace(from: &CString, over: &CString) -> std::io::Result<()> {
    fn check(rc: libc::c_int) -> std::io::Result<()> {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
    fn write(path: &[u8], text: &[u8]) -> std::io::Result<()> {
        // SAFETY: NUL-terminated path; the buffer is valid for its length.
        unsafe {
            let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY);
            check(fd)?;
            let n = libc::write(fd, text.as_ptr().cast(), text.len());
            libc::close(fd);
            check(n as libc::c_int)
        }
    }
    // SAFETY: plain system calls on valid NUL-terminated strings.
    unsafe {
        // Dropping to nobody made it undumpable, so its /proc files are
        // root's; a user's own process is dumpable.
        check(libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0))?;
        check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS))?;
        write(b"/proc/self/setgroups\0", b"deny")?;
        write(b"/proc/self/uid_map\0", b"0 65534 1")?;
        write(b"/proc/self/gid_map\0", b"0 65534 1")?;
        check(libc::mount(
            from.as_ptr(),
            over.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ))
    }
}

/// An `exe` constraint: a copy of the binary at another path, under the
/// target's name, counts nothing, nor does a copy bind-mounted over the
/// real path in nobody's own user and mount namespace (it runs "the real
/// path", another file). The real path counts exactly, also when netio
/// reads its exec only after it has exited (netio stopped meanwhile).
#[test]
fn copies_of_the_executable_elsewhere_or_bound_over_it_count_nothing() {
    let scratch = Scratch::new("exe");
    let name = unique_name("ntt");
    for dir in ["real", "copy"] {
        std::fs::create_dir(scratch.path(dir)).expect("mkdir");
    }
    let copy_of = |dir: &str| {
        let path = scratch.path(dir).join(&name);
        std::fs::copy(common::traffic_bin(), &path).expect("copy the binary");
        Program { path }
    };
    let (real, copy) = (copy_of("real"), copy_of("copy"));
    let exe = format!("exe = [{:?}]", real.path.to_str().unwrap());
    let netio = Netio::start_file(&config(&scratch, &name, &exe, ""));

    let size = "65537";
    let mut impostors = Vec::new();
    let copied = serve(bulk_as(&copy, NOBODY, size, &[]), size);
    impostors.push(copied.pid);
    let from = CString::new(copy.path.to_str().unwrap()).unwrap();
    let over = CString::new(real.path.to_str().unwrap()).unwrap();
    let bound = {
        let mut args = vec!["--size", size];
        args.extend(PATIENT);
        real.server_with("bulk", "127.0.0.1:0", &args, |c| {
            c.uid(NOBODY).gid(NOBODY);
            // SAFETY: bind_in_own_namespace makes only system calls.
            unsafe { c.pre_exec(move || bind_in_own_namespace(&from, &over)) };
        })
    };
    let ns = std::fs::read_link(format!("/proc/{}/ns/mnt", bound.pid())).expect("its mount ns");
    let ours = std::fs::read_link("/proc/self/ns/mnt").expect("our mount ns");
    assert_ne!(
        ns, ours,
        "the bind-mounted look-alike is not in a namespace of its own"
    );
    let bound = serve(bound, size);
    impostors.push(bound.pid);

    // The real one, alive when netio reads its exec, and one that is gone
    // by then.
    let alive = serve(
        bulk_as(&real, 0, "300000", &["--hold-ms", "2500"]),
        "300000",
    );
    let stopped = with_stopped(&netio, || serve(bulk_as(&real, 0, "200000", &[]), "200000"));
    // Nobody's copy again while netio is stopped: what the kernel counted
    // before netio read its exec is discarded too.
    let late = with_stopped(&netio, || serve(bulk_as(&copy, NOBODY, size, &[]), size));
    impostors.push(late.pid);

    let records = netio.stop();
    let mut truth = alive.per_pid.clone();
    truth.extend(stopped.per_pid.clone());
    records.assert_exact(&truth, "127.0.0.1");
    assert_none_reported(&records, &impostors);
    for pid in truth.keys() {
        assert_who(&records, *pid, 0, &real.path);
    }
}

/// A target's children exec a file named like another target whose `exe`
/// it is not: they stay their parent's, counted to the byte, and the
/// other target gets nothing.
#[test]
fn a_child_execing_a_look_alike_of_another_target_stays_its_parents() {
    let scratch = Scratch::new("exe-child");
    let (parent_name, other_name) = (unique_name("ntt"), unique_name("nto"));
    std::fs::create_dir(scratch.path("real")).expect("mkdir");
    let real = scratch.path("real").join(&other_name);
    std::fs::copy(common::traffic_bin(), &real).expect("copy the binary");
    let look_alike = Program::named(&scratch, &other_name);
    let text = format!(
        "interval = \"1s\"\n[[target]]\nname = \"{TARGET}\"\nprocess = [\"{parent_name}\"]\n\
         [[target]]\nname = \"other\"\nprocess = [\"{other_name}\"]\nexe = [{:?}]\n",
        real.to_str().unwrap()
    );
    let cfg = scratch.path("netio.toml");
    std::fs::write(&cfg, text).expect("write netio config");
    let netio = Netio::start_file(&cfg);
    let parent = Program::named(&scratch, &parent_name);
    let path = look_alike.path.to_str().unwrap();
    let args = ["--count", "2", "--size", "22000", "--reexec", path];
    let server = parent.server("forking", "127.0.0.1:0", &args);
    Program::original().client("forking", &server.addr("127.0.0.1"), &args);
    let server = server.finish();
    assert_eq!(server.per_pid.len(), 2, "expected two children's bytes");
    let none = std::collections::BTreeMap::new();
    netio
        .stop()
        .assert_exact_for(&[(TARGET, &server.per_pid), ("other", &none)], "127.0.0.1");
}

/// Runs `f` while netio is SIGSTOPped: it reads what happened meanwhile,
/// in order, only after.
fn with_stopped<T>(netio: &Netio, f: impl FnOnce() -> T) -> T {
    let pid = netio.pid() as libc::pid_t;
    // SAFETY: signals to the netio child this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let stopped = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(") ").next().map(|r| r.starts_with('T')))
            .unwrap_or(false)
    };
    while !stopped() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = f();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    out
}
