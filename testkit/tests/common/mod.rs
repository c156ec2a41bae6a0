//! Shared harness for the tests that run the real `netio` binary: scratch
//! directories, distinctively named copies of `netio-traffic`, starting and
//! stopping netio, and comparing its JSON records with the ground truth.
//!
//! Every test owns its scratch dir, its tracked process name and its netio
//! instance, so tests can run in parallel without seeing each other.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod journald;
pub mod service;
pub mod unit;

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The target name every accuracy test configures.
pub const TARGET: &str = "testkit";

/// How long netio may take to attach its probes and print `started`.
/// Generous: parallel tests load BPF programs at the same time on 2 cores.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long netio may take to flush and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between the end of a scenario and SIGTERM, so the kernel-side
/// counters of the last system calls are settled before the final flush.
const SETTLE: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------- naming

/// 8 hex digits unique within this test run and very likely across
/// concurrent runs (random per process, counter within it).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

/// A process name like `ntt-1a2b3c4d`: short enough (<= 15 bytes) to be
/// the kernel comm unchanged, distinctive enough that nothing else on the
/// machine has it.
pub fn unique_name(prefix: &str) -> String {
    let name = format!("{prefix}-{}", unique_suffix());
    assert!(
        name.len() <= 15,
        "process name {name:?} would be truncated as a comm"
    );
    name
}

// ---------------------------------------------------------------- scratch

/// A directory removed when the test ends. Lives under cargo's target tmp
/// dir, on the same file system as the built binaries so that they can be
/// hard-linked rather than copied.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let base = scratch_base();
        let dir = base.join(format!("netio-{tag}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Where scratch directories go: `$NETIO_TEST_TMPDIR` (the kernel matrix
/// sets it inside its guests, where the build's paths do not exist), else
/// cargo's target tmp dir, else the system temp dir.
pub fn scratch_base() -> PathBuf {
    std::env::var_os("NETIO_TEST_TMPDIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir)
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- bytes

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    pub sent: u64,
    pub received: u64,
}

impl Bytes {
    pub fn is_zero(&self) -> bool {
        self.sent == 0 && self.received == 0
    }

    /// The sum of both, for folds.
    pub fn plus(mut self, other: &Bytes) -> Bytes {
        self.add(*other);
        self
    }

    pub fn add(&mut self, other: Bytes) {
        self.sent += other.sent;
        self.received += other.received;
    }
}

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sent {} / received {}", self.sent, self.received)
    }
}

/// netio may write numbers as JSON numbers or decimal strings.
pub fn num(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

// ---------------------------------------------------------------- traffic

/// What a `netio-traffic` run says it did, from its final JSON line.
#[derive(Debug)]
pub struct Truth {
    pub pid: u32,
    pub sent: u64,
    pub received: u64,
    /// Bytes per process that did I/O (several for the forking server).
    pub per_pid: BTreeMap<u32, Bytes>,
    /// Peer addresses as the traffic process's sockets reported them.
    pub peers: Vec<String>,
    pub raw: Value,
}

impl Truth {
    pub fn parse(line: &str, what: &str) -> Self {
        let raw: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: final line {line:?} is not JSON: {e}"));
        let field =
            |k: &str| num(&raw, k).unwrap_or_else(|| panic!("{what}: {k} missing in {line}"));
        let per_pid = raw["per_pid"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: per_pid missing in {line}"))
            .iter()
            .map(|(pid, b)| {
                let bytes = Bytes {
                    sent: num(b, "sent").expect("per_pid sent"),
                    received: num(b, "received").expect("per_pid received"),
                };
                (pid.parse().expect("per_pid key is a pid"), bytes)
            })
            .collect();
        let peers = raw["peers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            pid: field("pid") as u32,
            sent: field("sent"),
            received: field("received"),
            per_pid,
            peers,
            raw,
        }
    }

    pub fn extra(&self, key: &str) -> Option<u64> {
        num(&self.raw["extra"], key)
    }
}

/// Collects a child's pipe on a thread so the child can never block on a
/// full pipe while we wait for something else.
fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// The traffic generator: `$NETIO_TRAFFIC_BIN` (the kernel matrix sets it
/// inside its guests), else the binary cargo built for these tests.
pub fn traffic_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NETIO_TRAFFIC_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "NETIO_TRAFFIC_BIN={} is not a file",
            p.display()
        );
        return p;
    }
    PathBuf::from(env!("CARGO_BIN_EXE_netio-traffic"))
}

/// A `netio-traffic` executable under a chosen file name, which becomes the
/// kernel comm and the `/proc/PID/exe` basename of the processes it runs.
pub struct Program {
    pub path: PathBuf,
}

impl Program {
    /// The binary as cargo built it: comm `netio-traffic`, tracked by no
    /// test.
    pub fn original() -> Self {
        Self {
            path: traffic_bin(),
        }
    }

    /// A hard link (or, across file systems, a copy) named `name`.
    pub fn named(scratch: &Scratch, name: &str) -> Self {
        let src = Self::original().path;
        let dst = scratch.path(name);
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
        }
        Self { path: dst }
    }

    pub fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn spawn(&self, cmd: &mut Command) -> Child {
        spawn_retrying(cmd, &self.path)
    }

    /// Starts a server and waits for the port it announces.
    pub fn server(&self, scenario: &str, listen: &str, args: &[&str]) -> Server {
        self.server_with(scenario, listen, args, |_| {})
    }

    /// Like `server`, letting the test adjust the command before it is
    /// spawned (e.g. a `pre_exec` hook that joins a cgroup).
    pub fn server_with(
        &self,
        scenario: &str,
        listen: &str,
        args: &[&str],
        customize: impl FnOnce(&mut Command),
    ) -> Server {
        let mut cmd = Command::new(&self.path);
        cmd.args(["server", "--scenario", scenario, "--listen", listen])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        customize(&mut cmd);
        let mut child = self.spawn(&mut cmd);
        let stderr = drain(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let announced = serde_json::from_str::<Value>(&line).ok();
        let path = announced
            .as_ref()
            .and_then(|v| text(v, "path"))
            .map(str::to_string);
        let port = announced
            .as_ref()
            .and_then(|v| num(v, "port"))
            .map(|p| p as u16);
        let Some(port) = port else {
            let status = child.wait();
            panic!(
                "{} server {scenario} did not announce a port (got {line:?}, {status:?}); stderr:\n{}",
                self.name(),
                stderr.join().unwrap_or_default()
            );
        };
        Server {
            what: format!("{} server {scenario}", self.name()),
            child,
            stdout,
            stderr: Some(stderr),
            port,
            path,
        }
    }

    /// Runs a client to completion and returns its ground truth.
    pub fn client(&self, scenario: &str, connect: &str, args: &[&str]) -> Truth {
        self.client_with(scenario, connect, args, |_| {})
    }

    /// Like `client`, letting the test adjust the command before it is
    /// spawned.
    pub fn client_with(
        &self,
        scenario: &str,
        connect: &str,
        args: &[&str],
        customize: impl FnOnce(&mut Command),
    ) -> Truth {
        let mut cmd = Command::new(&self.path);
        cmd.args(["client", "--scenario", scenario, "--connect", connect])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        customize(&mut cmd);
        let child = self.spawn(&mut cmd);
        let out = child.wait_with_output().expect("wait for client");
        let what = format!("{} client {scenario}", self.name());
        check_success(&what, out.status, &out.stderr);
        Truth::parse(String::from_utf8_lossy(&out.stdout).trim(), &what)
    }
}

fn check_success(what: &str, status: ExitStatus, stderr: &[u8]) {
    assert!(
        status.success(),
        "{what} failed ({status}); stderr:\n{}",
        String::from_utf8_lossy(stderr)
    );
}

pub struct Server {
    what: String,
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    pub port: u16,
    /// The Unix socket it listens on, if it listens on one.
    path: Option<String>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host` is `127.0.0.1` or `[::1]`; a Unix socket server's address
    /// is its path, whatever the host.
    pub fn addr(&self, host: &str) -> String {
        if let Some(path) = &self.path {
            return format!("unix:{path}");
        }
        format!("{host}:{}", self.port)
    }

    /// Waits for the server to end and returns its ground truth.
    pub fn finish(mut self) -> Truth {
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait for server");
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        check_success(&self.what, status, stderr.as_bytes());
        Truth::parse(rest.trim(), &self.what)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only reached without finish() when a test is already failing.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A stream into `program`'s server from a client in a thread, for the
/// tests that restart or replace netio while it runs.
pub struct PacedStream {
    server: Server,
    client: JoinHandle<Truth>,
}

impl PacedStream {
    /// The traffic generator's `paced` scenario, `phases` as it takes them.
    pub fn start(program: &Program, phases: &'static str) -> Self {
        let server = program.server("paced", "127.0.0.1:0", &["--count", "1"]);
        let addr = server.addr("127.0.0.1");
        let client = std::thread::spawn(move || {
            Program::original().client("paced", &addr, &["--phases", phases])
        });
        PacedStream { server, client }
    }

    /// The server's own count once the client is done, which it must agree
    /// with.
    pub fn finish(self) -> Truth {
        let client = self.client.join().expect("client thread");
        let truth = self.server.finish();
        assert_eq!(
            (truth.sent, truth.received),
            (client.received, client.sent),
            "the server and the client disagree"
        );
        truth
    }
}

/// Runs one scenario between `server` and `client` and checks that the two
/// sides agree with each other before anyone compares netio against them.
pub fn exchange(
    server: &Program,
    client: &Program,
    scenario: &str,
    listen: &str,
    host: &str,
    args: &[&str],
) -> (Truth, Truth) {
    let srv = server.server(scenario, listen, args);
    let c = client.client(scenario, &srv.addr(host), args);
    let s = srv.finish();
    assert_eq!(
        (s.sent, s.received),
        (c.received, c.sent),
        "traffic generator disagrees with itself: server (sent, received) vs client (received, sent)"
    );
    (s, c)
}

// ---------------------------------------------------------------- netio

/// The address netio gives a Unix-socket peer: process `pid`, of this
/// test's user (as every process a test starts is).
pub fn unix_peer_of(pid: u32) -> String {
    // SAFETY: geteuid only reads the caller's credentials.
    let uid = unsafe { libc::geteuid() };
    format!("unix:pid={pid},uid={uid}")
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The netio binary under test: `$NETIO_BIN`, else `netio` next to the test
/// executable's parent (`target/debug/deps/..`).
pub fn netio_bin() -> PathBuf {
    // A netio a test runs itself, not through `Netio`, pins nothing: tests
    // run many at once, and none may adopt another's programs or leave its
    // own counting after the tests. `Netio` gives each its own directory.
    static PIN_OFF: std::sync::Once = std::sync::Once::new();
    PIN_OFF.call_once(|| std::env::set_var("NETIO_PIN_DIR", ""));
    if let Some(p) = std::env::var_os("NETIO_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "NETIO_BIN={} is not a file", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let p = dir.join("netio");
    assert!(
        p.is_file(),
        "netio is not built: {} does not exist. Build the workspace first (`cargo build --workspace`) or set NETIO_BIN.",
        p.display()
    );
    p
}

/// `auto` unless NETIO_TEST_BACKEND pins one.
pub fn backend() -> String {
    std::env::var("NETIO_TEST_BACKEND").unwrap_or_else(|_| "auto".into())
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests load BPF programs and must run as root"
    );
}

/// Writes a netio config with one `[[target]]` per (name, process names).
pub fn write_config(scratch: &Scratch, interval: &str, targets: &[(&str, &[&str])]) -> PathBuf {
    write_config_with(scratch, interval, targets, "")
}

/// What the tests that check each process under its PID ask of
/// `[records]`, unless they set it themselves: a record for every process
/// with traffic and for each one that appeared or exited, where the
/// defaults fold the busiest ten's rest and count the lifecycle.
pub const EVERY_PROCESS: &str = "[records]\ntop_processes = 1000000\nlifecycle = \"each\"\n";

/// Like `write_config`, with `extra` TOML (e.g. a `[capacity]` table) after
/// the top-level keys; without a `[records]` table in it, `EVERY_PROCESS`.
pub fn write_config_with(
    scratch: &Scratch,
    interval: &str,
    targets: &[(&str, &[&str])],
    extra: &str,
) -> PathBuf {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let records = if extra.contains("[records]") {
        ""
    } else {
        EVERY_PROCESS
    };
    let mut toml = format!("interval = {}\n{extra}\n{records}\n", q(interval));
    for (name, procs) in targets {
        let list: Vec<String> = procs.iter().map(|p| q(p)).collect();
        toml.push_str(&format!(
            "\n[[target]]\nname = {}\nprocess = [{}]\n",
            q(name),
            list.join(", ")
        ));
    }
    let path = scratch.path("netio.toml");
    std::fs::write(&path, toml).expect("write netio config");
    path
}

/// Spawns, retrying ETXTBSY: a copied binary may briefly still be open
/// for writing in a child another test thread is forking.
pub fn spawn_retrying(cmd: &mut Command, path: &Path) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(c) => return c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("spawn {}: {e}", path.display()),
        }
    }
}

/// A process that runs and moves no byte (a copy of `sleep` under a fresh
/// name), killed when dropped. A target of it gets a traffic record every
/// interval, zeros included, which tests can wait on as on a clock: a
/// target with no process gets one only when that changes.
pub struct Idle {
    pub name: String,
    child: Child,
}

impl Idle {
    pub fn start(scratch: &Scratch) -> Idle {
        let name = unique_name("nti");
        let path = scratch.path(&name);
        std::fs::copy("/bin/sleep", &path).expect("copy /bin/sleep");
        let child = spawn_retrying(Command::new(&path).arg("600").stdin(Stdio::null()), &path);
        Idle { name, child }
    }

    /// A `[[target]]` table named `target` for this process.
    pub fn target(&self, target: &str) -> String {
        format!(
            "\n[[target]]\nname = \"{target}\"\nprocess = [\"{}\"]\n",
            self.name
        )
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's PID space as every running netio of this test binary sized
/// its tracked map: to pid_max at its start. Each `Netio` holds it shared;
/// a test that raises pid_max and hands out PIDs past it takes it alone
/// (`pid_space_alone`), so that no other test's processes get those PIDs.
static PID_SPACE: RwLock<()> = RwLock::new(());

thread_local! {
    /// This thread holds PID_SPACE alone: its own netio needs no share.
    static PID_SPACE_ALONE: Cell<bool> = const { Cell::new(false) };
}

/// PID_SPACE held alone by this thread, until dropped.
pub struct PidSpaceAlone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>);

/// Waits until no other test's netio runs, and keeps new ones from
/// starting until the returned guard is dropped.
pub fn pid_space_alone() -> PidSpaceAlone {
    let guard = PID_SPACE.write().unwrap_or_else(|e| e.into_inner());
    PID_SPACE_ALONE.with(|a| a.set(true));
    PidSpaceAlone(guard)
}

impl Drop for PidSpaceAlone {
    fn drop(&mut self) {
        PID_SPACE_ALONE.with(|a| a.set(false));
    }
}

/// A directory in bpffs netio pins its programs and maps in, and the state
/// file beside it under /run: each netio a test starts has its own, unless
/// the test hands one to several netio in turn (a restart); removed, and
/// its programs with it, when dropped.
pub struct Pins {
    pub dir: PathBuf,
}

impl Pins {
    pub fn new() -> Pins {
        let name = format!("netio-test-{}", unique_suffix());
        Pins {
            dir: Path::new("/sys/fs/bpf").join(name),
        }
    }

    /// The state file netio writes for the next one (agent/src/state.rs).
    pub fn state_file(&self) -> PathBuf {
        let name = self.dir.file_name().unwrap();
        Path::new("/run").join(name).join("state.json")
    }
}

impl Default for Pins {
    fn default() -> Self {
        Pins::new()
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        // `netio unload` also removes the kprobe backend's tracefs events,
        // which outlive the netio that made them while pinned links hold them.
        let _ = Command::new(netio_bin())
            .arg("unload")
            .env("NETIO_PIN_DIR", &self.dir)
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(run) = self.state_file().parent() {
            let _ = std::fs::remove_dir_all(run);
        }
    }
}

/// A running `netio run --output json`.
pub struct Netio {
    child: Option<Child>,
    lines: Receiver<String>,
    /// Every stdout line so far, in order.
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
    /// Its share of PID_SPACE (None in the test that holds it alone).
    _pid_space: Option<RwLockReadGuard<'static, ()>>,
    /// Its own pins, removed after it (None: the test's, shared).
    _pins: Option<Pins>,
}

impl Netio {
    /// Starts netio and returns once it printed `started`.
    pub fn start(scratch: &Scratch, interval: &str, targets: &[(&str, &[&str])]) -> Self {
        Self::start_with(scratch, interval, targets, "")
    }

    /// Starts netio with `extra` TOML in its config.
    pub fn start_with(
        scratch: &Scratch,
        interval: &str,
        targets: &[(&str, &[&str])],
        extra: &str,
    ) -> Self {
        let config = write_config_with(scratch, interval, targets, extra);
        Self::start_file(&config)
    }

    /// Starts netio on a config file the test wrote itself.
    pub fn start_file(config: &Path) -> Self {
        Self::start_file_with(config, |_| {})
    }

    /// Like `start_file`, letting the test adjust the command before it is
    /// spawned (e.g. a `pre_exec` hook that sets up a mount namespace).
    pub fn start_file_with(config: &Path, customize: impl FnOnce(&mut Command)) -> Self {
        Self::start_bin_with(&netio_bin(), config, customize)
    }

    /// Like `start_file`, pinning in `pins`, which outlive this netio: the
    /// next one started on them adopts what this one left.
    pub fn start_pinned(config: &Path, pins: &Pins) -> Self {
        Self::start_bin_pinned(&netio_bin(), config, pins)
    }

    /// Like `start_pinned`, running the netio binary at `bin` (an installed
    /// package's, say).
    pub fn start_bin_pinned(bin: &Path, config: &Path, pins: &Pins) -> Self {
        let dir = pins.dir.clone();
        Self::start_inner(bin, config, None, |cmd| {
            cmd.env("NETIO_PIN_DIR", dir);
        })
    }

    /// Like `start_file_with`, running the netio binary at `bin`.
    pub fn start_bin_with(bin: &Path, config: &Path, customize: impl FnOnce(&mut Command)) -> Self {
        let pins = Pins::new();
        let dir = pins.dir.clone();
        Self::start_inner(bin, config, Some(pins), |cmd| {
            cmd.env("NETIO_PIN_DIR", dir);
            customize(cmd);
        })
    }

    fn start_inner(
        bin: &Path,
        config: &Path,
        pins: Option<Pins>,
        customize: impl FnOnce(&mut Command),
    ) -> Self {
        require_root();
        let pid_space = (!PID_SPACE_ALONE.with(Cell::get))
            .then(|| PID_SPACE.read().unwrap_or_else(|e| e.into_inner()));
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .args(["--backend", &backend(), "--output", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        customize(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stderr = drain(child.stderr.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut netio = Self {
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
            stderr: Some(stderr),
            _pid_space: pid_space,
            _pins: pins,
        };
        if !netio.wait_until(START_TIMEOUT, |lines| {
            lines.iter().any(|v| event(v) == Some("started"))
        }) {
            let why = match netio.child.as_mut().unwrap().try_wait() {
                Ok(Some(status)) => {
                    format!("netio exited ({status}) before printing a started record")
                }
                _ => format!("netio printed no started record within {START_TIMEOUT:?}"),
            };
            let stderr = netio.kill_and_stderr();
            panic!(
                "{why}; stdout so far:\n{}\nstderr:\n{stderr}",
                netio.seen.join("\n")
            );
        }
        netio
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Reads netio's output until `done` holds for the records so far (lines
    /// that are not JSON are skipped here and rejected by `stop`), or until
    /// `timeout`, or until netio closes stdout. Returns whether `done` held.
    pub fn wait_until(&mut self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut parsed: Vec<Value> = self
            .seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        loop {
            if done(&parsed) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str(&line) {
                        parsed.push(v);
                    }
                    self.seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return false
                }
            }
        }
    }

    /// The records netio has written so far (what reached this process
    /// by now), for a test that paces itself by netio's intervals.
    pub fn records_so_far(&mut self) -> Vec<Value> {
        self.wait_until(Duration::ZERO, |_| false);
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn kill_and_stderr(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Kills netio with SIGKILL, as a crash would, and returns the records
    /// it wrote before; no `stopping` record is expected.
    pub fn crash(mut self) -> Records {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        let records = self
            .seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Records { records, stderr }
    }

    /// Lets the last counters settle, sends SIGTERM, and returns everything
    /// netio wrote. Fails unless netio exits 0 with well-formed output.
    pub fn stop(self) -> Records {
        self.stop_with(libc::SIGTERM)
    }

    /// Stops netio with `signal` (SIGTERM or SIGINT) and returns its records.
    pub fn stop_with(mut self, signal: libc::c_int) -> Records {
        std::thread::sleep(SETTLE);
        let mut child = self.child.take().unwrap();
        // SAFETY: kill on the pid of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait netio") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF once netio is gone.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        let Some(status) = status else {
            panic!("netio did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{stderr}");
        };
        assert!(
            status.success(),
            "netio exited with {status} after SIGTERM; stderr:\n{stderr}"
        );
        let mut records = Vec::new();
        for line in &self.seen {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("netio wrote a stdout line that is not JSON ({e}): {line:?}")
            });
            assert!(
                event(&v).is_some(),
                "netio record without NETIO_EVENT: {line}"
            );
            records.push(v);
        }
        assert!(
            records.iter().any(|v| event(v) == Some("stopping")),
            "netio wrote no stopping record on SIGTERM; stderr:\n{stderr}"
        );
        Records { records, stderr }
    }
}

impl Drop for Netio {
    fn drop(&mut self) {
        self.kill_and_stderr();
    }
}

pub fn event(v: &Value) -> Option<&str> {
    text(v, "NETIO_EVENT")
}

fn is_traffic(v: &Value) -> bool {
    event(v) == Some("traffic")
}

pub fn record_pid(v: &Value) -> Option<u32> {
    num(v, "NETIO_PID").map(|p| p as u32)
}

/// A record's sent and received bytes (0 where a field is missing).
pub fn record_bytes(v: &Value) -> Bytes {
    Bytes {
        sent: num(v, "NETIO_SENT_BYTES").unwrap_or(0),
        received: num(v, "NETIO_RECEIVED_BYTES").unwrap_or(0),
    }
}

/// Sums scope=process traffic records per PID.
pub fn process_totals(records: &[Value]) -> BTreeMap<u32, Bytes> {
    let mut totals: BTreeMap<u32, Bytes> = BTreeMap::new();
    for v in records
        .iter()
        .filter(|v| is_traffic(v) && text(v, "NETIO_SCOPE") == Some("process"))
    {
        if let Some(pid) = record_pid(v) {
            totals.entry(pid).or_default().add(record_bytes(v));
        }
    }
    totals
}

/// Sums scope=peer traffic records per PID and peer address.
pub fn peer_totals(records: &[Value]) -> BTreeMap<u32, BTreeMap<String, Bytes>> {
    let mut totals: BTreeMap<u32, BTreeMap<String, Bytes>> = BTreeMap::new();
    for v in records
        .iter()
        .filter(|v| is_traffic(v) && text(v, "NETIO_SCOPE") == Some("peer"))
    {
        if let (Some(pid), Some(peer)) = (record_pid(v), text(v, "NETIO_PEER_ADDRESS")) {
            totals
                .entry(pid)
                .or_default()
                .entry(peer.to_owned())
                .or_default()
                .add(record_bytes(v));
        }
    }
    totals
}

/// What is wrong with a traffic record's shape, if anything.
fn malformed(v: &Value) -> Option<String> {
    let scope = text(v, "NETIO_SCOPE");
    if !matches!(scope, Some("target" | "process" | "peer" | "target_peer")) {
        return Some(format!("NETIO_SCOPE is {:?}", v.get("NETIO_SCOPE")));
    }
    // The record of a target's processes past the busiest N names none.
    let folded = scope == Some("process") && v.get("NETIO_PID").is_none();
    let mut numbers = vec![
        "NETIO_SENT_BYTES",
        "NETIO_RECEIVED_BYTES",
        "NETIO_SENT_BYTES_PER_SEC",
        "NETIO_RECEIVED_BYTES_PER_SEC",
        "NETIO_INTERVAL_MS",
    ];
    let mut strings = vec!["NETIO_TARGET", "NETIO_BACKEND", "MESSAGE"];
    if scope == Some("target") || folded {
        numbers.push("NETIO_PROCESSES");
    } else if scope != Some("target_peer") {
        numbers.push("NETIO_PID");
        strings.push("NETIO_COMM");
    }
    for key in numbers {
        if num(v, key).is_none() {
            return Some(format!("{key} is missing or not a number"));
        }
    }
    if matches!(scope, Some("peer" | "target_peer")) {
        strings.push("NETIO_PEER_ADDRESS");
    }
    for key in strings {
        if !matches!(text(v, key), Some(s) if !s.is_empty()) {
            return Some(format!("{key} is missing or empty"));
        }
    }
    let wanted = backend();
    let actual = text(v, "NETIO_BACKEND").unwrap_or_default();
    if !["fentry", "tracepoint", "kprobe"].contains(&actual) {
        return Some(format!("NETIO_BACKEND {actual:?} is not a backend"));
    }
    if wanted != "auto" && actual != wanted {
        return Some(format!(
            "NETIO_BACKEND is {actual:?} but the test asked for {wanted:?}"
        ));
    }
    None
}

/// Everything netio wrote during one test.
pub struct Records {
    pub records: Vec<Value>,
    pub stderr: String,
}

fn show(map: &BTreeMap<u32, Bytes>) -> String {
    if map.is_empty() {
        return "  (none)".into();
    }
    map.iter()
        .map(|(pid, b)| format!("  pid {pid}: {b}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn nonzero(map: &BTreeMap<u32, Bytes>) -> BTreeMap<u32, Bytes> {
    map.iter()
        .filter(|(_, b)| !b.is_zero())
        .map(|(p, b)| (*p, *b))
        .collect()
}

impl Records {
    pub fn traffic(&self) -> impl Iterator<Item = &Value> {
        self.records.iter().filter(|v| is_traffic(v))
    }

    /// The records of two netio that ran one after the other (a restart,
    /// an upgrade: `second` names the later one in the stderr), as one
    /// run's; each must have reported part of the stream it counted.
    pub fn one_after_the_other(before: Records, after: Records, second: &str) -> Records {
        let process_records = |r: &Records| {
            r.traffic()
                .filter(|v| text(v, "NETIO_SCOPE") == Some("process"))
                .count()
        };
        assert!(
            process_records(&before) > 0 && process_records(&after) > 0,
            "each netio should have reported part of the stream"
        );
        let mut records = before.records;
        records.extend(after.records);
        Records {
            records,
            stderr: format!("{}\n-- {second} --\n{}", before.stderr, after.stderr),
        }
    }

    pub fn process_totals(&self) -> BTreeMap<u32, Bytes> {
        process_totals(&self.records)
    }

    pub fn peer_totals(&self) -> BTreeMap<u32, BTreeMap<String, Bytes>> {
        peer_totals(&self.records)
    }

    /// PIDs that appear in any traffic record.
    pub fn traffic_pids(&self) -> BTreeSet<u32> {
        self.traffic().filter_map(record_pid).collect()
    }

    /// Fails with both numbers unless netio's per-PID totals for `target`
    /// equal `truth` exactly (PIDs netio reports with zero bytes are
    /// ignored), no other process is reported, every traffic record is well
    /// formed, and the peer records split each PID's total across exactly
    /// `peer`.
    pub fn assert_exact(&self, truth: &BTreeMap<u32, Bytes>, peer: &str) {
        self.assert_exact_for(&[(TARGET, truth)], peer);
    }

    /// `assert_exact` where a process has several peers: `truth` is each
    /// PID's bytes per peer address, and netio's peer records must split
    /// them so, byte for byte.
    pub fn assert_exact_per_peer(&self, truth: &BTreeMap<u32, BTreeMap<String, Bytes>>) {
        self.check_shapes(&[TARGET]);
        self.assert_exact_one(TARGET, truth);
    }

    /// `assert_exact` for several targets at once: each target's per-PID
    /// totals must equal its `truth` exactly, its target records must add
    /// up to its process records, and no other target has traffic records.
    pub fn assert_exact_for(&self, targets: &[(&str, &BTreeMap<u32, Bytes>)], peer: &str) {
        let names: Vec<&str> = targets.iter().map(|(t, _)| *t).collect();
        self.check_shapes(&names);
        for (target, truth) in targets {
            let per_peer = truth
                .iter()
                .map(|(pid, b)| (*pid, BTreeMap::from([(peer.to_owned(), *b)])))
                .collect();
            self.of_target(target).assert_exact_one(target, &per_peer);
        }
    }

    /// Every traffic record well formed and of one of `targets`.
    fn check_shapes(&self, targets: &[&str]) {
        for v in self.traffic() {
            if let Some(problem) = malformed(v) {
                panic!("malformed traffic record ({problem}): {v}");
            }
            let target = text(v, "NETIO_TARGET");
            assert!(
                targets.iter().any(|t| Some(*t) == target),
                "traffic record for a target this test did not configure: {v}"
            );
        }
    }

    /// The records of `target` alone.
    fn of_target(&self, target: &str) -> Records {
        Records {
            records: self
                .records
                .iter()
                .filter(|v| text(v, "NETIO_TARGET") == Some(target))
                .cloned()
                .collect(),
            stderr: self.stderr.clone(),
        }
    }

    fn assert_exact_one(&self, target: &str, per_peer: &BTreeMap<u32, BTreeMap<String, Bytes>>) {
        let truth: BTreeMap<u32, Bytes> = per_peer
            .iter()
            .map(|(pid, peers)| (*pid, peers.values().fold(Bytes::default(), Bytes::plus)))
            .collect();
        let truth = &truth;
        let want = nonzero(truth);
        let got = nonzero(&self.process_totals());
        if got != want {
            let mut diff = Vec::new();
            for pid in want.keys().chain(got.keys()).collect::<BTreeSet<_>>() {
                let (w, g) = (
                    want.get(pid).copied().unwrap_or_default(),
                    got.get(pid).copied().unwrap_or_default(),
                );
                if w != g {
                    diff.push(format!(
                        "  pid {pid}: sent netio {} vs truth {} ({:+}), received netio {} vs truth {} ({:+})",
                        g.sent,
                        w.sent,
                        g.sent as i128 - w.sent as i128,
                        g.received,
                        w.received,
                        g.received as i128 - w.received as i128
                    ));
                }
            }
            panic!(
                "target {target}: netio's per-process byte counts differ from the ground truth:\n{}\nnetio:\n{}\ntruth:\n{}\nnetio stderr:\n{}",
                diff.join("\n"),
                show(&got),
                show(&want),
                tail(&self.stderr)
            );
        }
        // The target records (one per interval) add up to its processes.
        let target_sum = self
            .traffic()
            .filter(|v| text(v, "NETIO_SCOPE") == Some("target"))
            .fold(Bytes::default(), |mut a, v| {
                a.add(record_bytes(v));
                a
            });
        let process_sum = got.values().fold(Bytes::default(), |mut a, b| {
            a.add(*b);
            a
        });
        assert_eq!(
            target_sum, process_sum,
            "target records sum to ({target_sum}) but process records to ({process_sum})"
        );
        let peers = self.peer_totals();
        for (pid, total) in &got {
            // Every address netio reported, even with no byte, and the
            // truth's addresses that moved any.
            let reported = peers.get(pid).cloned().unwrap_or_default();
            let expected: BTreeMap<String, Bytes> = per_peer[pid]
                .iter()
                .filter(|(_, b)| !b.is_zero())
                .map(|(a, b)| (a.clone(), *b))
                .collect();
            assert_eq!(
                reported, expected,
                "pid {pid} (total {total}): netio's bytes per peer address, then the truth's"
            );
        }
        let stray: Vec<u32> = peers
            .keys()
            .filter(|p| !got.contains_key(p))
            .copied()
            .collect();
        assert!(
            stray.iter().all(|p| peers[p].values().all(Bytes::is_zero)),
            "peer records for PIDs without process records: {stray:?}"
        );
    }
}

fn tail(s: &str) -> &str {
    let max = 4000;
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

// ---------------------------------------------------------------- cases

/// A scratch dir tagged `tag`, a copy of netio-traffic in it under a fresh
/// name, and netio (interval `interval`) tracking that name as TARGET. Keep
/// the scratch dir bound for as long as the program runs.
pub fn tracked_program(tag: &str, interval: &str) -> (Scratch, Program, Netio) {
    let scratch = Scratch::new(tag);
    let name = unique_name("ntt");
    let tracked = Program::named(&scratch, &name);
    let netio = Netio::start(&scratch, interval, &[(TARGET, &[name.as_str()])]);
    (scratch, tracked, netio)
}

/// The common shape of an accuracy test: netio tracks a fresh copy of
/// netio-traffic that runs the server side of `scenario`; an untracked
/// client talks to it; netio's totals must equal the server's ground truth
/// and all its bytes must be attributed to `peer`. Returns the server's
/// truth for scenario-specific checks.
pub fn tracked_server(
    scenario: &str,
    listen: &str,
    host: &str,
    args: &[&str],
    peer: &str,
) -> Truth {
    let (_scratch, tracked, netio) = tracked_program(scenario, "1s");
    let (server, _client) = exchange(&tracked, &Program::original(), scenario, listen, host, args);
    let records = netio.stop();
    records.assert_exact(&server.per_pid, peer);
    server
}

/// Runs `cmd` with a time limit; a netio that starts running instead of
/// rejecting its arguments must not hang the test suite.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}; stderr so far:\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default().into_bytes(),
        stderr: err.join().unwrap_or_default().into_bytes(),
    }
}
