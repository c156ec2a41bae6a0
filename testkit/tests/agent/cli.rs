//! Tests of netio's command line: the `kernel` backend report and the
//! exit code and message for bad arguments or a missing config file.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{netio_bin, output_within, write_config, Scratch};

const LIMIT: Duration = Duration::from_secs(20);

fn netio(args: &[&str]) -> Output {
    output_within(Command::new(netio_bin()).args(args), LIMIT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit code 2 and that stderr mentions `needle`.
fn assert_usage_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit code 2, got {:?}; stderr:\n{err}",
        out.status
    );
    assert!(
        err.contains(needle),
        "stderr should mention {needle:?}, but is:\n{err}"
    );
}

fn valid_config(scratch: &Scratch) -> String {
    let path = write_config(scratch, "1s", &[("t", &["nothing-here"])]);
    path.to_str().expect("UTF-8 path").to_owned()
}

#[test]
fn unknown_run_flag_exits_2_naming_the_flag() {
    let scratch = Scratch::new("cli");
    let config = valid_config(&scratch);
    let out = netio(&["run", "--config", &config, "--bogus"]);
    assert_usage_error(&out, "--bogus");
}

#[test]
fn unknown_backend_exits_2_naming_the_backend() {
    let scratch = Scratch::new("cli");
    let config = valid_config(&scratch);
    let out = netio(&["run", "--config", &config, "--backend", "nope"]);
    assert_usage_error(&out, "nope");
}

#[test]
fn missing_config_file_exits_2_naming_the_path() {
    let path = "/nonexistent/x.conf";
    assert!(!Path::new(path).exists());
    let out = netio(&["run", "--config", path]);
    assert_usage_error(&out, path);
}

#[derive(Debug, PartialEq, Eq)]
enum Status {
    Usable,
    Unusable(String),
}

/// Parses `netio kernel`: one line per backend, starting with its name,
/// then `usable` or `unusable: <reason>`.
fn kernel_report(stdout: &str) -> Result<BTreeMap<String, Status>, String> {
    let mut found = BTreeMap::new();
    for backend in ["fentry", "kprobe", "tracepoint"] {
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| {
                l.strip_prefix(backend)
                    .is_some_and(|rest| rest.starts_with(|c: char| c == ':' || c.is_whitespace()))
            })
            .collect();
        let [line] = lines[..] else {
            return Err(format!(
                "expected one line for {backend}, found {}",
                lines.len()
            ));
        };
        let rest =
            line[backend.len()..].trim_start_matches(|c: char| c == ':' || c.is_whitespace());
        let status = if let Some(reason) = rest.strip_prefix("unusable") {
            Status::Unusable(
                reason
                    .trim_start_matches(|c: char| c == ':' || c.is_whitespace())
                    .trim()
                    .to_owned(),
            )
        } else if rest.starts_with("usable") {
            Status::Usable
        } else {
            return Err(format!(
                "{backend}: neither usable nor unusable in {line:?}"
            ));
        };
        found.insert(backend.to_owned(), status);
    }
    Ok(found)
}

/// A `union bpf_attr` as raw bytes: only the BPF_PROG_LOAD fields up to
/// attach_btf_id are needed, and spelling out the kernel's struct would be
/// longer than setting them by offset.
#[repr(C, align(8))]
struct BpfAttr([u8; 128]);

impl BpfAttr {
    fn put32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
}

/// Loads a do-nothing fentry program with attach_btf_id 1 (never a
/// function), as libbpf's feature probe does: a kernel that supports
/// tracing programs rejects it for the bad id and says so in the verifier
/// log; one that does not rejects it for some other reason. `None` when
/// the answer is unclear.
fn tracing_programs_supported() -> Option<bool> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_TRACING: u32 = 26;
    const BPF_TRACE_FENTRY: u32 = 24;
    // r0 = 0; exit
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = b"GPL\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = BpfAttr([0; 128]);
    attr.put32(0, BPF_PROG_TYPE_TRACING);
    attr.put32(4, insns.len() as u32);
    attr.put64(8, insns.as_ptr() as u64);
    attr.put64(16, license.as_ptr() as u64);
    attr.put32(24, 1); // log_level
    attr.put32(28, log.len() as u32);
    attr.put64(32, log.as_mut_ptr() as u64);
    attr.put32(68, BPF_TRACE_FENTRY);
    attr.put32(108, 1); // attach_btf_id
                        // SAFETY: attr is a BPF_PROG_LOAD bpf_attr whose pointers refer to
                        // buffers that outlive the call; the size passed is attr's.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.0.as_ptr(), attr.0.len()) };
    if fd >= 0 {
        // SAFETY: closing the fd the kernel just gave us.
        unsafe { libc::close(fd as libc::c_int) };
        return Some(true);
    }
    let errno = std::io::Error::last_os_error().raw_os_error();
    if String::from_utf8_lossy(&log).contains("attach_btf_id 1 is not a function") {
        Some(true)
    } else if errno == Some(libc::EPERM) && unsafe { libc::geteuid() } != 0 {
        // Without root, EPERM says nothing about the kernel; as root it
        // means a policy refuses tracing programs, which netio hits too.
        None
    } else {
        Some(false)
    }
}

/// What this host should say, from NETIO_TEST_EXPECT_BACKENDS (e.g.
/// `tracepoint=usable,fentry=unusable`) or else from facts the test can
/// check without netio: only ever "must be unusable" when the kernel
/// plainly lacks the feature, and tracepoints always expected to work.
fn expectations() -> BTreeMap<String, bool> {
    if let Ok(spec) = std::env::var("NETIO_TEST_EXPECT_BACKENDS") {
        return spec
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|kv| {
                let (k, v) = kv
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad NETIO_TEST_EXPECT_BACKENDS entry {kv:?}"));
                (k.trim().to_owned(), v.trim() == "usable")
            })
            .collect();
    }
    let mut want = BTreeMap::new();
    want.insert("tracepoint".to_owned(), true);
    let kprobes = Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || Path::new("/sys/kernel/debug/tracing/kprobe_events").exists();
    if !kprobes {
        want.insert("kprobe".to_owned(), false);
    }
    if tracing_programs_supported() == Some(false) {
        want.insert("fentry".to_owned(), false);
    }
    want
}

#[test]
fn kernel_command_reports_each_backend_usable_or_why_not() {
    let out = netio(&["kernel"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "netio kernel failed ({}); stderr:\n{}",
        out.status,
        stderr(&out)
    );
    let report =
        kernel_report(&stdout).unwrap_or_else(|e| panic!("{e}; netio kernel printed:\n{stdout}"));
    for (backend, status) in &report {
        if let Status::Unusable(reason) = status {
            assert!(
                !reason.is_empty(),
                "{backend} is unusable without a reason:\n{stdout}"
            );
        }
    }
    for (backend, usable) in expectations() {
        let got = &report[&backend];
        assert_eq!(
            matches!(got, Status::Usable),
            usable,
            "expected {backend} to be {}, netio says {got:?}; full output:\n{stdout}",
            if usable { "usable" } else { "unusable" }
        );
    }
}

/// netio run as `nobody` (uid and gid 65534, no groups), which leaves it
/// no capabilities: a user who has not read that it needs root.
fn netio_as_nobody(args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    common::require_root();
    let mut cmd = Command::new(netio_bin());
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    output_within(&mut cmd, LIMIT)
}

/// What netio says when the kernel answers EPERM as nobody: the same
/// cause, with its remedy, at the end of every backend it refused.
const NOBODY_CAUSE: &str = "netio runs as uid 65534, not root, without CAP_BPF and \
                            CAP_PERFMON: run it as root, or give it CAP_BPF and CAP_PERFMON";

/// A user's first try: `netio run` without root says first what it needs
/// and what to do, then why each backend failed, the cause not repeated;
/// `netio kernel` gives the cause on each backend the kernel refused.
/// libbpf's own words appear once per backend, with one "libbpf:".
#[test]
fn without_root_run_and_kernel_say_netio_needs_root_or_cap_bpf_and_cap_perfmon() {
    let scratch = Scratch::new("cli-nobody");
    let config = valid_config(&scratch);
    let out = netio_as_nobody(&["run", "--config", &config, "--output", "json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "netio run as nobody:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "netio: needs root, or CAP_BPF and CAP_PERFMON, to load its BPF programs, and \
             runs as uid 65534 without CAP_BPF and CAP_PERFMON: run it as root (sudo netio \
             run), or as the netio.service unit",
            "no backend could be loaded (asked for auto):",
        ],
        "netio run as nobody:\n{err}"
    );
    let mut refused = 0;
    for line in &lines[2..] {
        assert!(line.starts_with("  "), "{line:?} in:\n{err}");
        assert!(
            !line.contains("CAP_") && line.matches("libbpf:").count() <= 1,
            "the cause said again, or libbpf: twice, in {line:?}"
        );
        refused += line.contains("Operation not permitted") as usize;
    }
    assert!(refused >= 1, "no backend refused with EPERM:\n{err}");

    let out = netio_as_nobody(&["kernel"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let refused: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("Operation not permitted"))
        .collect();
    assert!(!refused.is_empty(), "netio kernel as nobody:\n{stdout}");
    for line in refused {
        assert!(
            line.ends_with(&format!("-EPERM): {NOBODY_CAUSE}"))
                && line.matches("libbpf:").count() == 1,
            "{line:?}"
        );
    }
}

/// As root, a backend the kernel refuses with EPERM anyway (Linux 6.18
/// here refuses fentry) is the kernel's policy: netio says so, with what
/// it found of kernel lockdown, instead of a bare "Operation not
/// permitted". Where every backend loads, nothing is refused to check.
#[test]
fn as_root_a_backend_refused_with_eperm_names_the_kernels_policy_and_lockdown() {
    common::require_root();
    let out = netio(&["kernel"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in stdout.lines() {
        assert!(line.matches("libbpf:").count() <= 1, "{line:?}");
        if line.contains("Operation not permitted") {
            assert!(
                line.contains(
                    "-EPERM): netio has CAP_BPF and CAP_PERFMON as root, so it is the \
                     kernel's policy: kernel lockdown is "
                ) && line.contains(
                    "; a hardened kernel or a security module can refuse these programs \
                     even to root, and the kernel log (dmesg) may say which"
                ),
                "{line:?}"
            );
        }
    }
}

/// A pipe whose reading end is closed already: every write to it fails
/// with EPIPE, as when `head` has read what it wanted and exited.
fn closed_pipe() -> std::fs::File {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just made and are owned here alone.
    unsafe {
        libc::close(fds[0]);
        std::os::fd::FromRawFd::from_raw_fd(fds[1])
    }
}

/// netio's exit status with stdout and stderr both into closed pipes.
fn status_into_closed_pipes(args: &[&str]) -> std::process::ExitStatus {
    let mut child = Command::new(netio_bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .spawn()
        .expect("spawn netio");
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("netio {args:?} still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config with an error on a 200 KB line.
fn config_with_a_long_bad_line(scratch: &Scratch) -> String {
    let path = scratch.path("long.conf");
    let text = format!("interval = \"1s\"\nbogus = \"{}\"\n", "x".repeat(200_000));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Whatever netio prints, a reader that went away (`| head`) ends the
/// output quietly: the exit status is the one netio has with a reader,
/// never a panic (101) or an abort (SIGABRT, as a release build with
/// panic=abort had when a print to stderr failed).
#[test]
fn output_into_a_closed_pipe_ends_quietly_with_the_usual_status() {
    let scratch = Scratch::new("cli-epipe");
    let good = valid_config(&scratch);
    let bad = config_with_a_long_bad_line(&scratch);
    let mut wrong = Vec::new();
    for args in [
        vec!["check-config", good.as_str()],
        vec!["check-config", bad.as_str()],
        vec!["run", "--config", bad.as_str()],
        vec!["run", "--config", "/nonexistent/netio.conf"],
        vec!["kernel"],
        vec!["--help"],
        vec!["--version"],
        vec!["no-such-command"],
    ] {
        let usual = netio(&args).status;
        let closed = status_into_closed_pipes(&args);
        if closed.code() != usual.code() || usual.code().is_none() {
            wrong.push(format!(
                "netio {args:?}: {closed} into closed pipes, {usual} with a reader"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The same through a shell, as an operator types it: `check-config | head
/// -1` has check-config's own status.
#[test]
fn check_config_piped_to_head_exits_with_its_own_status() {
    let scratch = Scratch::new("cli-head");
    let good = valid_config(&scratch);
    let bad = config_with_a_long_bad_line(&scratch);
    let netio = netio_bin();
    for (config, redirect, head, want) in [
        (&good, "", "head -1", "0"),
        (&bad, "2>&1", "head -c 100", "2"),
    ] {
        let script = format!(
            "'{}' check-config '{config}' {redirect} | {head} >/dev/null; echo ${{PIPESTATUS[0]}}",
            netio.display()
        );
        let out = output_within(Command::new("bash").arg("-c").arg(&script), LIMIT);
        let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            status,
            want,
            "`{script}`: netio's status; stderr: {}",
            stderr(&out)
        );
    }
}

/// A running agent whose stderr goes away (journald's stream socket when
/// journald restarts, a pipe whose reader died) goes on counting: a warning
/// it cannot write is dropped, never a panic. A refused reload is the
/// warning here; the agent must write its `config_rejected` record, keep
/// running and stop cleanly.
#[test]
fn a_running_agent_whose_stderr_is_gone_goes_on() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    common::require_root();
    let scratch = Scratch::new("cli-stderr-gone");
    let config = valid_config(&scratch);
    let mut child = Command::new(netio_bin())
        .args(["run", "--config", &config, "--output", "json"])
        .args(["--backend", &common::backend()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .spawn()
        .expect("spawn netio");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |event: &str| {
        let deadline = std::time::Instant::now() + LIMIT;
        while let Ok(line) =
            rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if line.contains(&format!("\"NETIO_EVENT\":\"{event}\"")) {
                return true;
            }
        }
        false
    };
    assert!(wait_for("started"), "netio did not start");
    std::fs::write(&config, "interval = \"1s\"\nbogus = 1\n").unwrap();
    // SAFETY: kill on the pid of a child not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    let rejected = wait_for("config_rejected");
    let alive = child.try_wait().expect("try_wait").is_none();
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("wait netio");
    assert!(
        rejected && alive,
        "after a refused reload with stderr gone: config_rejected written {rejected}, \
         still running {alive}, exit {status}"
    );
    assert!(status.success(), "netio exited {status}");
}
