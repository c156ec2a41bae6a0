//! The config file as an attack surface: an unprivileged local user
//! (`nobody`, uid 65534) who could have written the config, a file it names,
//! a directory or a symlink on the way to it, gets it refused, with a
//! message that names the file, says what is wrong and what to do; and a
//! config that is not a regular file (`/dev/zero`, a FIFO) is refused at
//! once, by `check-config`, by `run` and by a SIGHUP reload, which must
//! never hang the agent.

use crate::common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{event, netio_bin, Netio, Scratch};

const NOBODY: u32 = 65534;

/// How long `check-config` may take on any file, however hostile.
const PROMPT: Duration = Duration::from_secs(10);

/// A valid config, as an attacker might write it: it watches nothing real.
const CONFIG: &str = "interval = \"1s\"\n[[target]]\nname = \"db\"\nprocess = [\"nothing-here\"]\n";

/// Runs a shell script as `nobody` (uid and gid 65534, no other groups):
/// what the attacker does.
fn as_nobody(script: &str) {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .expect("spawn sh as nobody");
    assert!(
        out.status.success(),
        "as nobody, `{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

fn mkdir(path: &Path, mode: u32) -> PathBuf {
    std::fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    chmod(path, mode);
    path.to_path_buf()
}

/// Runs `netio ARGS` under a 1 GiB address-space limit (a netio that
/// reads an endless file must fail, not take the machine's memory), killing
/// it after `limit`; `None` if it had to be killed.
fn netio_within(args: &[&str], limit: Duration) -> Option<Output> {
    let mut cmd = Command::new(netio_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn netio");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return Some(child.wait_with_output().expect("netio's output"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What is wrong with netio's answer to `netio ARGS` for an untrusted
/// `path`: it must exit 2, promptly, without a panic, and say on stderr
/// every one of `words` (the file, what is wrong, what to do).
fn refusal_problems(args: &[&str], words: &[&str]) -> Vec<String> {
    let label = args.join(" ");
    let Some(out) = netio_within(args, PROMPT) else {
        return vec![format!(
            "`netio {label}` was still running after {PROMPT:?}"
        )];
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let mut p = Vec::new();
    if out.status.code() != Some(2) {
        p.push(format!(
            "`netio {label}` exited with {}, want 2",
            out.status
        ));
    }
    if err.contains("panicked") {
        p.push(format!("`netio {label}` panicked"));
    }
    for w in words {
        if !err.contains(w) {
            p.push(format!("`netio {label}`: stderr does not say {w:?}"));
        }
    }
    if !p.is_empty() {
        let shown: String = err.chars().take(600).collect();
        p.push(format!("  stderr: {shown}"));
    }
    p
}

/// Both commands that read a config refuse `path`, saying `words`.
fn refused(what: &str, path: &Path, words: &[&str]) -> Vec<String> {
    let p = path.to_str().expect("UTF-8 path");
    let mut problems = Vec::new();
    for args in [
        vec!["check-config", p],
        vec!["run", "--config", p, "--output", "json"],
    ] {
        problems.extend(
            refusal_problems(&args, words)
                .into_iter()
                .map(|e| format!("{what}: {e}")),
        );
    }
    problems
}

fn check_config_accepts(path: &Path) {
    let out = netio_within(&["check-config", path.to_str().unwrap()], PROMPT)
        .expect("check-config of a good file hung");
    assert!(
        out.status.success(),
        "check-config {} should accept it: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A config that nobody wrote, could rewrite, or could swap for another by
/// way of a directory or symlink on its path, is refused; the same text in
/// a file only root could have written is accepted.
#[test]
fn a_config_that_nobody_could_have_written_is_refused() {
    let scratch = Scratch::new("untrusted-config");
    let root = &scratch.dir;
    let good = root.join("good.conf");
    std::fs::write(&good, CONFIG).unwrap();
    check_config_accepts(&good);
    let mut problems = Vec::new();

    // A sticky world-writable directory, as /tmp: nobody plants a config.
    let drop = mkdir(&root.join("drop"), 0o1777);
    let planted = drop.join("netio.conf");
    as_nobody(&format!("printf '{CONFIG}' > {}", planted.display()));
    problems.extend(refused(
        "a config owned by nobody",
        &planted,
        &[planted.to_str().unwrap(), "nobody", "chown root"],
    ));

    // Root's own file, but writable by everyone: nobody rewrites it.
    let open_file = root.join("world-writable.conf");
    std::fs::write(&open_file, CONFIG).unwrap();
    chmod(&open_file, 0o666);
    as_nobody(&format!("printf '{CONFIG}' > {}", open_file.display()));
    problems.extend(refused(
        "a world-writable config",
        &open_file,
        &[open_file.to_str().unwrap(), "writable", "chmod go-w"],
    ));

    // A directory nobody owns, holding a symlink nobody made to a good file.
    let evil = mkdir(&root.join("evil"), 0o755);
    chown(&evil, NOBODY, NOBODY);
    let via_evil = evil.join("netio.conf");
    as_nobody(&format!("ln -s {} {}", good.display(), via_evil.display()));
    problems.extend(refused(
        "a config through a symlink in a directory nobody owns",
        &via_evil,
        &[evil.to_str().unwrap(), "nobody", "chown root"],
    ));

    // A symlink nobody planted in a sticky directory: the directory is fine
    // (nobody cannot touch root's entries in it), the symlink is not.
    let link = drop.join("link.conf");
    as_nobody(&format!("ln -s {} {}", good.display(), link.display()));
    problems.extend(refused(
        "a symlink owned by nobody",
        &link,
        &[link.to_str().unwrap(), "symlink", "nobody", "chown -h root"],
    ));

    // Root's file in a directory anyone may write (not sticky): anyone can
    // rename it away and put another in its place.
    let open_dir = mkdir(&root.join("open"), 0o777);
    let in_open = open_dir.join("netio.conf");
    std::fs::write(&in_open, CONFIG).unwrap();
    as_nobody(&format!("touch {0}/x && rm {0}/x", open_dir.display()));
    problems.extend(refused(
        "a config in a world-writable directory",
        &in_open,
        &[open_dir.to_str().unwrap(), "writable", "chmod go-w"],
    ));

    // A directory that nobody's group may write.
    let group_dir = mkdir(&root.join("group"), 0o775);
    chown(&group_dir, 0, NOBODY);
    let in_group = group_dir.join("netio.conf");
    std::fs::write(&in_group, CONFIG).unwrap();
    problems.extend(refused(
        "a config in a group-writable directory",
        &in_group,
        &[
            group_dir.to_str().unwrap(),
            "writable by its group",
            "chmod g-w",
        ],
    ));

    // A root-owned symlink, in a good directory, to a file in a directory
    // nobody owns: every directory of the resolved path counts.
    let target = evil.join("real.conf");
    as_nobody(&format!("printf '{CONFIG}' > {}", target.display()));
    let root_link = root.join("root-link.conf");
    symlink(&target, &root_link).unwrap();
    problems.extend(refused(
        "a root symlink into a directory nobody owns",
        &root_link,
        &[evil.to_str().unwrap(), "nobody", "chown root"],
    ));

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// netio checks for `nobody` too: a user may check a config they own, in
/// directories only they or root can write.
#[test]
fn check_config_as_nobody_accepts_nobodys_own_file() {
    let scratch = Scratch::new("own-config");
    chmod(&scratch.dir, 0o755);
    let home = mkdir(&scratch.path("home"), 0o755);
    chown(&home, NOBODY, NOBODY);
    let own = home.join("netio.conf");
    as_nobody(&format!("printf '{CONFIG}' > {}", own.display()));
    let out = Command::new(netio_bin())
        .arg("check-config")
        .arg(&own)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("check-config as nobody");
    assert!(
        out.status.success(),
        "as nobody, check-config of nobody's own file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TLS file the config names (`ca_file`, `client_cert`, `client_key`)
/// that nobody could have written is refused like the config itself, with
/// the line and the key that name it.
#[test]
fn tls_files_that_nobody_could_have_written_are_refused() {
    let scratch = Scratch::new("untrusted-tls");
    let drop = mkdir(&scratch.path("drop"), 0o1777);
    let ca = drop.join("ca.pem");
    as_nobody(&format!("printf 'not a CA' > {}", ca.display()));
    let mut problems = Vec::new();
    for (key, extra) in [
        ("ca_file", String::new()),
        (
            "client_key",
            format!("client_cert = \"{}\"\n", scratch.path("cert.pem").display()),
        ),
    ] {
        std::fs::write(scratch.path("cert.pem"), "root's cert").unwrap();
        let config = scratch.path(&format!("{key}.conf"));
        let line = format!("{key} = \"{}\"", ca.display());
        let text = format!(
            "{CONFIG}[[syslog]]\ntransport = \"tls\"\naddress = \"127.0.0.1:6514\"\n{extra}{line}\n"
        );
        let n = text.lines().position(|l| l == line).unwrap() + 1;
        std::fs::write(&config, text).unwrap();
        let at_line = format!("line {n}");
        problems.extend(refused(
            &format!("{key} owned by nobody"),
            &config,
            &[
                config.to_str().unwrap(),
                &at_line,
                key,
                ca.to_str().unwrap(),
                "nobody",
                "chown root",
            ],
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `/dev/zero` never ends and a FIFO blocks its reader: neither is a
/// config, and netio says so at once instead of reading until out of
/// memory or waiting for a writer.
#[test]
fn a_device_or_a_fifo_is_refused_at_once() {
    let scratch = Scratch::new("special-config");
    let fifo = scratch.path("fifo.conf");
    mkfifo(&fifo);
    let mut problems = refused(
        "/dev/zero",
        Path::new("/dev/zero"),
        &["/dev/zero", "not a regular file"],
    );
    problems.extend(refused(
        "a FIFO",
        &fifo,
        &[fifo.to_str().unwrap(), "FIFO", "not a regular file"],
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

fn sighup(netio: &Netio) {
    // SAFETY: kill on the pid of a child that has not been reaped.
    let rc = unsafe { libc::kill(netio.pid() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill(SIGHUP): {}", std::io::Error::last_os_error());
}

fn reason(v: &Value) -> &str {
    v.get("NETIO_REASON").and_then(Value::as_str).unwrap_or("")
}

/// A running netio whose config has become a FIFO, then a file nobody
/// owns: each SIGHUP reload is refused (`config_rejected`, saying why)
/// without waiting for a writer, the running config stays (its 1 s
/// interval, not the rejected file's 5 s), and the next reload of a good
/// file is applied.
#[test]
fn sighup_with_a_fifo_or_a_nobody_owned_config_is_rejected_and_the_agent_goes_on() {
    let scratch = Scratch::new("untrusted-reload");
    let config = scratch.path("netio.toml");
    // Its target records tick every interval: "db" runs nothing.
    let idle = common::Idle::start(&scratch);
    let running = format!("{CONFIG}{}", idle.target("tick"));
    std::fs::write(&config, &running).unwrap();
    let mut netio = Netio::start_file(&config);
    let rejected_for = |netio: &mut Netio, why: &str| {
        netio.wait_until(Duration::from_secs(5), |r| {
            r.iter()
                .any(|v| event(v) == Some("config_rejected") && reason(v).contains(why))
        })
    };

    let fifo = scratch.path("fifo");
    mkfifo(&fifo);
    std::fs::rename(&fifo, &config).unwrap();
    sighup(&netio);
    let rejected = rejected_for(&mut netio, "FIFO");
    if !rejected {
        // Unblock a netio stuck opening the FIFO, so that it can be stopped.
        let _ = std::fs::OpenOptions::new().write(true).open(&config);
    }
    assert!(
        rejected,
        "no config_rejected naming the FIFO within 5 s of SIGHUP: the reload hung"
    );

    std::fs::remove_file(&config).unwrap();
    std::fs::write(&config, running.replace("\"1s\"", "\"5s\"")).unwrap();
    chown(&config, NOBODY, NOBODY);
    sighup(&netio);
    assert!(
        rejected_for(&mut netio, "owned by nobody"),
        "no config_rejected for a config owned by nobody"
    );
    // The 1 s interval goes on: two intervals after the rejection, each
    // well under the rejected file's 5 s.
    let intervals_after_rejection = |r: &[Value]| -> Vec<u64> {
        let Some(at) = r.iter().rposition(|v| event(v) == Some("config_rejected")) else {
            return Vec::new();
        };
        r[at + 1..]
            .iter()
            .filter(|v| event(v) == Some("traffic"))
            .filter_map(|v| v.get("NETIO_INTERVAL_MS").and_then(Value::as_u64))
            .collect()
    };
    assert!(
        netio.wait_until(Duration::from_secs(6), |r| {
            let ms = intervals_after_rejection(r);
            ms.len() >= 2 && ms.iter().all(|&ms| ms < 2500)
        }),
        "after the rejected reload, no two intervals of the running config's 1 s"
    );

    std::fs::remove_file(&config).unwrap();
    std::fs::write(&config, running.replace("\"1s\"", "\"2s\"")).unwrap();
    sighup(&netio);
    assert!(
        netio.wait_until(Duration::from_secs(5), |r| r
            .iter()
            .any(|v| event(v) == Some("config_reloaded"))),
        "no config_reloaded after the untrusted files were replaced by a good one"
    );
    netio.stop();
}
