//! Real databases end to end: MariaDB, Redis and PostgreSQL from Debian,
//! each started by its test as a private instance on loopback (its own
//! data directory, port and unix socket; stopped by the PID the test
//! started), counted by netio running the shipped `netio.conf` (only the
//! interval and the output changed) while a real benchmark client
//! (sysbench, redis-benchmark, pgbench) talks to it over TCP and a local
//! client over its Unix socket.
//!
//! netio's TCP bytes for the instance's processes must equal, to the byte,
//! the TCP payload a packet capture on `lo` saw to and from the instance's
//! port; its Unix-socket bytes, those the local client moved (counted by
//! the client itself, or by a relay between it and the server); and both
//! together, the server's own byte counters (MariaDB
//! `Bytes_sent`/`Bytes_received`, Redis `total_net_*_bytes`; PostgreSQL
//! has none) less those of the session that reads them, which moves
//! nothing while netio runs (docs/databases.md).
//!
//! Needs root (BPF, the capture, starting servers as their users). The
//! Debian packages are installed on first use if missing (scripts/test
//! installs them too). The tests take turns: on two cores a benchmark, a
//! capture and netio at once are enough per test.

mod capture;
mod relay;

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use capture::{Capture, Summary};
use common::{event, free_port, num, output_within, record_pid, Bytes, Netio, Records, Scratch};
use relay::UnixRelay;
use serde_json::Value;

/// The Debian packages these tests run (also in TEST_PACKAGES in
/// scripts/lib.sh).
const PACKAGES: &[&str] = &[
    "mariadb-server",
    "mariadb-client",
    "sysbench",
    "redis-server",
    "redis-tools",
    "postgresql",
];

/// How long a database may take to come up (measured: well under 3 s).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a benchmark run may take (measured: a few seconds).
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the server may take to close its side of every connection.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- setup

/// One database test at a time, and none beside another module's tests.
/// The lock is released before the turn (tuple fields drop in order).
fn serialize() -> (MutexGuard<'static, ()>, crate::Turn) {
    static LOCK: Mutex<()> = Mutex::new(());
    let turn = crate::turn(module_path!());
    let lock = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (lock, turn)
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the database tests start servers, capture packets and load BPF programs: run them as root"
    );
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        .unwrap_or(false)
}

/// Installs the missing packages with apt, once per test run. Services do
/// not start on install here (and the tests never use one that did).
fn ensure_packages() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        require_root();
        let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
        if missing.is_empty() {
            return;
        }
        let apt = |args: &[&str]| {
            let out = output_within(
                Command::new("apt-get")
                    .args(["-o", "DPkg::Lock::Timeout=600", "-y", "-qq"])
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                Duration::from_secs(1200),
            );
            assert!(
                out.status.success(),
                "apt-get {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        apt(&["update"]);
        let mut install = vec!["install"];
        install.extend(&missing);
        apt(&install);
    });
}

fn run_ok(cmd: &mut Command, limit: Duration) -> String {
    let what = format!("{cmd:?}");
    let out = output_within(cmd, limit);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `ready` until it holds, or panics after `timeout` saying `what`
/// and, from `why`, what went wrong (e.g. the server's log).
fn wait_for(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
    why: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}\n{}",
            why()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(30);
    format!("{}:\n{}", path.display(), lines[from..].join("\n"))
}

fn user_ids(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == user {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("no user {user}: its Debian package creates it");
}

/// A directory owned by `user`, mode 0700, inside `scratch` (which others
/// may traverse, so the server running as `user` can reach it).
fn private_dir(scratch: &Scratch, name: &str, user: &str) -> PathBuf {
    let mut dir = scratch.dir.clone();
    while let Some(parent) = dir.parent() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is not searchable by others, so {user} cannot reach its data directory; set NETIO_TEST_TMPDIR to a directory that is",
            dir.display()
        );
        dir = parent.to_path_buf();
    }
    let dir = scratch.path(name);
    std::fs::create_dir(&dir).unwrap();
    let (uid, gid) = user_ids(user);
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// A server process the test started, stopped by its PID: SIGTERM (or
/// `signal`), then SIGKILL if it has not exited within a minute. Dropping
/// it (a failing test) stops it too.
struct Server {
    what: &'static str,
    pid: u32,
    child: Option<Child>,
    log: PathBuf,
    signal: libc::c_int,
}

impl Server {
    fn new(what: &'static str, child: Child, log: PathBuf, signal: libc::c_int) -> Self {
        Self {
            what,
            pid: child.id(),
            child: Some(child),
            log,
            signal,
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn running(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }

    /// Panics with the log unless the server is still running.
    fn assert_running(&mut self) {
        if !self.running() {
            panic!("{} exited early\n{}", self.what, tail_of(&self.log));
        }
    }

    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) {
        let what = format!("{} ready", self.what);
        let log = self.log.clone();
        let child = self.child.as_mut().unwrap();
        wait_for(
            &what,
            READY_TIMEOUT,
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{what}: exited with {status}\n{}", tail_of(&log));
                }
                ready()
            },
            || tail_of(&log),
        );
    }

    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill on the pid of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, self.signal) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_file(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::create(path).expect("create log"))
}

// ---------------------------------------------------------------- netio

/// The shipped default config.
fn shipped_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../netio.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `[[target]]`s of a config: name and process names.
fn targets(config: &str) -> Vec<(String, Vec<String>)> {
    let strings =
        |s: &str| -> Vec<String> { s.split('"').skip(1).step_by(2).map(str::to_owned).collect() };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_target = false;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_target = line == "[[target]]";
            if in_target {
                out.push((String::new(), Vec::new()));
            }
            continue;
        }
        let Some(last) = out.last_mut().filter(|_| in_target) else {
            continue;
        };
        if let Some(v) = line.strip_prefix("name =") {
            last.0 = strings(v).pop().unwrap_or_default();
        } else if let Some(v) = line.strip_prefix("process =") {
            last.1 = strings(v);
        }
    }
    out
}

/// The name of the shipped config's target that lists `process`.
fn target_for(process: &str) -> String {
    let all = targets(&shipped_config());
    let found: Vec<&String> = all
        .iter()
        .filter(|(_, procs)| procs.iter().any(|p| p == process))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "netio.conf should have exactly one target listing {process:?}: {all:?}"
    );
    found[0].clone()
}

/// The shipped config with a 1 s interval and JSON output, and a record
/// for every process and each one's lifecycle, which these tests check by
/// PID; nothing else changed.
fn write_test_config(scratch: &Scratch) -> PathBuf {
    let mut text = shipped_config();
    for (old, new) in [
        ("interval = \"10s\"", "interval = \"1s\""),
        ("output = \"auto\"", "output = \"json\""),
        ("top_processes = 10", "top_processes = 1000000"),
        ("lifecycle = \"summary\"", "lifecycle = \"each\""),
    ] {
        let hits = text.lines().filter(|l| l.trim() == old).count();
        assert_eq!(hits, 1, "netio.conf should have the line {old:?} once");
        text = text.replace(old, new);
    }
    let path = scratch.path("netio.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The processes of one server instance: `root`, the children it had when
/// netio started (`children`), and every process netio saw it (or them)
/// fork.
fn instance_pids(records: &Records, root: u32, children: &[u32]) -> BTreeSet<u32> {
    let mut pids: BTreeSet<u32> = children.iter().copied().chain([root]).collect();
    loop {
        let before = pids.len();
        for v in &records.records {
            if event(v) == Some("process_appeared")
                && num(v, "NETIO_PPID").is_some_and(|p| pids.contains(&(p as u32)))
            {
                pids.insert(record_pid(v).unwrap());
            }
        }
        if pids.len() == before {
            return pids;
        }
    }
}

/// The live children of `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// What netio counted for one instance.
struct Counted {
    /// Every byte, both transports.
    total: Bytes,
    /// The TCP bytes (all with 127.0.0.1): the capture's.
    tcp: Bytes,
    /// The Unix-socket bytes, per peer (`unix:pid=P,uid=U`).
    unix: BTreeMap<String, Bytes>,
    /// Processes of the instance with any traffic.
    busy: usize,
}

/// The peer address a Unix-socket client in this test's process (the
/// relay, a hand-written client) is counted with.
fn this_process_as_peer() -> String {
    common::unix_peer_of(std::process::id())
}

/// netio's totals for the instance's processes, after checking that all
/// of them were counted under `target`, that their peer records split
/// them exactly, TCP with 127.0.0.1 alone and Unix with client processes,
/// and that `target`'s own records add up to its process records.
fn counted(records: &Records, target: &str, pids: &BTreeSet<u32>) -> Counted {
    let traffic: Vec<&Value> = records
        .records
        .iter()
        .filter(|v| event(v) == Some("traffic"))
        .collect();
    let bytes = |v: &Value| Bytes {
        sent: num(v, "NETIO_SENT_BYTES").unwrap(),
        received: num(v, "NETIO_RECEIVED_BYTES").unwrap(),
    };
    let mut per_pid: BTreeMap<u32, Bytes> = BTreeMap::new();
    let mut per_peer: BTreeMap<u32, BTreeMap<(String, String), Bytes>> = BTreeMap::new();
    let mut target_records = Bytes::default();
    let mut target_processes = Bytes::default();
    for v in &traffic {
        let scope = text(v, "NETIO_SCOPE");
        let in_target = text(v, "NETIO_TARGET") == Some(target);
        if in_target && scope == Some("target") {
            target_records.add(bytes(v));
        }
        if in_target && scope == Some("process") {
            target_processes.add(bytes(v));
        }
        let Some(pid) = record_pid(v).filter(|p| pids.contains(p)) else {
            continue;
        };
        assert!(
            in_target,
            "pid {pid} of the {target} instance counted under another target: {v}"
        );
        match scope {
            Some("process") => per_pid.entry(pid).or_default().add(bytes(v)),
            Some("peer") => {
                let transport = text(v, "NETIO_TRANSPORT").unwrap_or("?").to_owned();
                let address = text(v, "NETIO_PEER_ADDRESS").unwrap().to_owned();
                per_peer
                    .entry(pid)
                    .or_default()
                    .entry((transport, address))
                    .or_default()
                    .add(bytes(v));
            }
            _ => {}
        }
    }
    assert_eq!(
        target_records, target_processes,
        "{target}: target records and process records disagree"
    );
    let mut c = Counted {
        total: Bytes::default(),
        tcp: Bytes::default(),
        unix: BTreeMap::new(),
        busy: 0,
    };
    for (pid, b) in &per_pid {
        if b.is_zero() {
            continue;
        }
        c.busy += 1;
        c.total.add(*b);
        let peers = per_peer.remove(pid).unwrap_or_default();
        let mut sum = Bytes::default();
        for ((transport, address), bytes) in peers {
            sum.add(bytes);
            match transport.as_str() {
                "tcp" => {
                    assert_eq!(address, "127.0.0.1", "pid {pid}: a TCP peer");
                    c.tcp.add(bytes);
                }
                "unix" => {
                    assert!(address.starts_with("unix:pid="), "pid {pid}: {address}");
                    c.unix.entry(address).or_default().add(bytes);
                }
                _ => panic!("pid {pid}: peer {address} over {transport:?}"),
            }
        }
        assert_eq!(sum, *b, "pid {pid}: its peer records vs its total");
    }
    c
}

/// The capture must be complete before anything is compared with it.
fn assert_complete(what: &str, c: &Summary) {
    assert!(
        c.problems.is_empty(),
        "{what}: the capture cannot be trusted: {:?}",
        c.problems
    );
    assert_eq!(c.drops, 0, "{what}: capture drops");
}

fn assert_matches_capture(what: &str, netio: Bytes, c: &Summary) {
    assert_complete(what, c);
    assert_eq!(
        (netio.sent, netio.received),
        (c.from_server, c.to_server),
        "{what}: netio (sent, received) vs the capture's payload (from the server, to the server)"
    );
}

/// Waits until the server has closed its side of every TCP connection to
/// `port`: after that it reads nothing more from them. (Sockets in
/// ESTABLISHED, SYN_RECV or CLOSE_WAIT may still be read.)
fn wait_connections_closed(port: u16) {
    let open = || -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let local_port = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                local_port == Some(port) && matches!(f[3], "01" | "03" | "08")
            })
            .count()
    };
    wait_for(
        &format!("server sockets on port {port} closed"),
        DRAIN_TIMEOUT,
        || open() == 0,
        || format!("{} still open", open()),
    );
}

fn report(what: &str, netio: Bytes, c: &Summary, server: &str) {
    println!(
        "{what}: netio sent {} received {} | capture from server {} to server {} ({} connections, {} packets, {} drops, {} duplicate bytes, largest segment {}) | {server}",
        netio.sent,
        netio.received,
        c.from_server,
        c.to_server,
        c.connections,
        c.packets,
        c.drops,
        c.duplicate_bytes,
        c.largest_segment
    );
}

// ---------------------------------------------------------------- MariaDB

/// A `mariadb` client kept open on the unix socket, one query at a time,
/// one row per query.
struct MariadbShell {
    child: Child,
    lines: Receiver<String>,
}

impl MariadbShell {
    fn open(socket: &Path) -> Self {
        let mut child = Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "--batch", "--skip-column-names"])
            .arg("--unbuffered")
            .arg(format!("--socket={}", socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mariadb");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    fn row(&mut self, sql: &str) -> Vec<String> {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{sql}")
            .and_then(|_| stdin.flush())
            .unwrap();
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no answer from mariadb to {sql:?}: {e}"));
        line.split('\t').map(str::to_owned).collect()
    }
}

impl Drop for MariadbShell {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// MariaDB's byte counters: the server's (`GLOBAL_STATUS`: every
/// connection, unix socket or TCP, ended or not) and the asking session's
/// own (`SESSION_STATUS`), read by one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MariadbCounters {
    global: Bytes,
    session: Bytes,
    threads_connected: u64,
}

impl MariadbCounters {
    fn read(shell: &mut MariadbShell) -> Self {
        let q = |table: &str, name: &str| {
            format!(
                "(SELECT VARIABLE_VALUE FROM information_schema.{table} WHERE VARIABLE_NAME = '{name}')"
            )
        };
        let sql = format!(
            "SELECT {}, {}, {}, {}, {};",
            q("GLOBAL_STATUS", "BYTES_SENT"),
            q("GLOBAL_STATUS", "BYTES_RECEIVED"),
            q("SESSION_STATUS", "BYTES_SENT"),
            q("SESSION_STATUS", "BYTES_RECEIVED"),
            q("GLOBAL_STATUS", "THREADS_CONNECTED"),
        );
        let row = shell.row(&sql);
        let n = |i: usize| -> u64 {
            row.get(i)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("counters row {row:?}"))
        };
        Self {
            global: Bytes {
                sent: n(0),
                received: n(1),
            },
            session: Bytes {
                sent: n(2),
                received: n(3),
            },
            threads_connected: n(4),
        }
    }

    /// Every other connection's bytes: the global counters less this
    /// session's.
    fn others(&self) -> Bytes {
        Bytes {
            sent: self.global.sent - self.session.sent,
            received: self.global.received - self.session.received,
        }
    }
}

fn delta(a: Bytes, b: Bytes) -> Bytes {
    Bytes {
        sent: b.sent - a.sent,
        received: b.received - a.received,
    }
}

#[test]
fn mariadb_sysbench_counts_equal_the_capture_and_bytes_status() {
    ensure_packages();
    let _turn = serialize();
    let target = target_for("mariadbd");
    let scratch = Scratch::new("mariadb");
    // mariadbd runs as mysql: its socket, pid file and log live in a
    // directory of its own.
    let home = private_dir(&scratch, "mysql", "mysql");
    let data = home.join("data");
    let socket = home.join("mariadbd.sock");
    let port = free_port();
    run_ok(
        Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display())),
        READY_TIMEOUT,
    );
    let log = home.join("mariadbd.log");
    // As its package's unit runs it (User=mysql): netio.conf's
    // `user = ["mysql"]` admits it from its exec on.
    let (uid, gid) = user_ids("mysql");
    let child = Command::new("mariadbd")
        .uid(uid)
        .gid(gid)
        .args([
            "--no-defaults",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!(
            "--pid-file={}",
            home.join("mariadbd.pid").display()
        ))
        .arg(format!("--log-error={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(&scratch.path("mariadbd.stderr")))
        .spawn()
        .expect("spawn mariadbd");
    let mut server = Server::new("mariadbd", child, log, libc::SIGTERM);
    // Readiness, setup and counters all go over the unix socket, so the
    // TCP port carries only the benchmark.
    server.wait_ready(|| {
        socket.exists()
            && Command::new("mariadb-admin")
                .args(["--no-defaults", "-uroot", "ping"])
                .arg(format!("--socket={}", socket.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    });
    let mut shell = MariadbShell::open(&socket);
    let have_ssl = shell.row("SELECT @@have_ssl;");
    assert_ne!(
        have_ssl,
        ["YES"],
        "this instance offers TLS: the capture would see ciphertext"
    );
    shell.row("CREATE DATABASE sbtest; SELECT 1;");
    let sysbench = |command: &str, conn: &[String]| {
        run_ok(
            Command::new("sysbench")
                .args([
                    "oltp_read_write",
                    "--mysql-user=root",
                    "--mysql-ssl=off",
                    "--tables=2",
                    "--table-size=2000",
                    "--threads=4",
                    "--events=1000",
                    "--time=0",
                ])
                .args(conn)
                .arg(command),
            WORKLOAD_TIMEOUT,
        )
    };
    sysbench("prepare", &[format!("--mysql-socket={}", socket.display())]);

    // The counting session moves nothing while netio runs: it reads the
    // counters before netio starts and after it stops.
    let before = MariadbCounters::read(&mut shell);
    let capture = Capture::start(port);
    let netio = Netio::start_file(&write_test_config(&scratch));
    let out = sysbench(
        "run",
        &[
            "--mysql-host=127.0.0.1".into(),
            format!("--mysql-port={port}"),
        ],
    );
    assert!(out.contains("transactions:"), "sysbench said:\n{out}");
    // A local client moving 100 kB over the Unix socket, through a relay
    // that counts its bytes: netio counts it for mariadbd.
    let relay = UnixRelay::start(&scratch.path("relay.sock"), &socket);
    let big = run_ok(
        Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "--batch", "--skip-column-names"])
            .arg(format!("--socket={}", scratch.path("relay.sock").display()))
            .args(["-e", "SELECT REPEAT('x', 100000);"]),
        WORKLOAD_TIMEOUT,
    );
    assert_eq!(big.trim().len(), 100_000);
    let local = relay.finish();
    wait_connections_closed(port);
    let records = netio.stop();
    let seen = capture.finish();
    // A connection's bytes move into the global counters when its thread
    // ends: wait for only this session to be left, and the others' total
    // to hold still.
    let mut after = MariadbCounters::read(&mut shell);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let again = MariadbCounters::read(&mut shell);
        let settled = again.threads_connected == 1 && again.others() == after.others();
        after = again;
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "MariaDB counters still moving: {after:?}"
        );
    }
    server.assert_running();

    let mine = counted(
        &records,
        &target,
        &instance_pids(&records, server.pid(), &[]),
    );
    let others = delta(before.others(), after.others());
    report(
        "mariadb",
        mine.tcp,
        &seen,
        &format!(
            "Unix socket: netio {:?}, relay {local} | Bytes_sent/Bytes_received delta less the counting session {}/{}",
            mine.unix, others.sent, others.received
        ),
    );
    assert_eq!(mine.busy, 1, "one mariadbd process");
    assert!(
        mine.tcp.sent > 1_000_000 && mine.tcp.received > 100_000,
        "sysbench moved too little to prove anything: {}",
        mine.tcp
    );
    assert_matches_capture("mariadb", mine.tcp, &seen);
    assert!(local.sent > 100_000, "the local client's 100 kB: {local}");
    assert_eq!(
        mine.unix,
        BTreeMap::from([(this_process_as_peer(), local)]),
        "netio's Unix-socket bytes per peer vs the relay's"
    );
    // MariaDB counts plaintext protocol bytes of every connection, and
    // the counting session was quiet while netio ran: the rest is netio's.
    assert_eq!(
        others, mine.total,
        "MariaDB's byte counters less the counting session's own vs netio"
    );
    drop(shell);
    let status = server.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "mariadbd did not shut down cleanly ({status:?})\n{}",
        tail_of(&server.log)
    );
}

// ---------------------------------------------------------------- Redis

/// A RESP client on Redis's unix socket that counts every byte it writes
/// and reads, so its share of Redis's counters is known exactly.
struct RedisUnix {
    stream: BufReader<UnixStream>,
    sent: u64,
    received: u64,
}

/// A RESP reply, as far as these tests need it.
#[derive(Debug)]
enum Reply {
    Status(String),
    Bulk(Option<Vec<u8>>),
}

impl RedisUnix {
    fn connect(socket: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            stream: BufReader::new(stream),
            sent: 0,
            received: 0,
        })
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.stream.read_line(&mut line).expect("read from redis");
        assert!(n > 0, "redis closed the connection");
        self.received += n as u64;
        line.trim_end_matches("\r\n").to_owned()
    }

    fn command(&mut self, args: &[&[u8]]) -> Reply {
        let mut msg = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            msg.extend(format!("${}\r\n", a.len()).as_bytes());
            msg.extend(*a);
            msg.extend(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&msg)
            .expect("write to redis");
        self.sent += msg.len() as u64;
        let line = self.line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_owned()),
            "$" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut body = vec![0; len as usize + 2];
                self.stream.read_exact(&mut body).expect("read bulk reply");
                self.received += body.len() as u64;
                body.truncate(len as usize);
                Reply::Bulk(Some(body))
            }
            _ => panic!(
                "redis replied {line:?} to {:?}",
                String::from_utf8_lossy(&msg)
            ),
        }
    }

    fn traffic(&self) -> Bytes {
        // As Redis sees it: what we sent it received.
        Bytes {
            sent: self.received,
            received: self.sent,
        }
    }
}

/// Redis's own counters (`INFO`): every client's bytes, unix socket or TCP.
#[derive(Debug)]
struct RedisCounters {
    total: Bytes,
    connected_clients: u64,
}

impl RedisCounters {
    /// Read by `client`; returns with `client`'s byte counts as they stood
    /// when Redis took the numbers: its requests including this one, its
    /// replies excluding this one (written after the numbers are taken).
    fn read(client: &mut RedisUnix) -> (Self, Bytes) {
        let Reply::Bulk(Some(info)) = client.command(&[b"INFO", b"clients", b"stats"]) else {
            panic!("INFO did not return a bulk string");
        };
        let reply_len = {
            let l = info.len();
            (format!("${l}\r\n").len() + l + 2) as u64
        };
        let own = Bytes {
            sent: client.traffic().sent - reply_len,
            received: client.traffic().received,
        };
        let info = String::from_utf8(info).unwrap();
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("INFO has no {name}:\n{info}"))
        };
        let counters = Self {
            total: Bytes {
                sent: field("total_net_output_bytes"),
                received: field("total_net_input_bytes"),
            },
            connected_clients: field("connected_clients"),
        };
        (counters, own)
    }
}

#[test]
fn redis_benchmark_counts_equal_the_capture_and_info_stats() {
    ensure_packages();
    let _turn = serialize();
    let target = target_for("redis-server");
    let scratch = Scratch::new("redis");
    // As its package's unit runs it (User=redis), in a directory of its
    // own: netio.conf's `user = ["redis"]` admits it.
    let home = private_dir(&scratch, "redis", "redis");
    let socket = home.join("redis.sock");
    let port = free_port();
    let log = home.join("redis.log");
    let (uid, gid) = user_ids("redis");
    let child = Command::new("redis-server")
        .uid(uid)
        .gid(gid)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .arg("--unixsocket")
        .arg(&socket)
        .args(["--unixsocketperm", "700", "--protected-mode", "no"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&home)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(&scratch.path("redis.stderr")))
        .spawn()
        .expect("spawn redis-server");
    let mut server = Server::new("redis-server", child, log, libc::SIGTERM);
    server.wait_ready(|| {
        RedisUnix::connect(&socket)
            .map(|mut c| matches!(c.command(&[b"PING"]), Reply::Status(s) if s == "PONG"))
            .unwrap_or(false)
    });
    let mut client = RedisUnix::connect(&socket).expect("connect to redis");
    let (before, own_before) = RedisCounters::read(&mut client);
    let capture = Capture::start(port);
    let netio = Netio::start_file(&write_test_config(&scratch));
    let out = run_ok(
        Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", "8", "-n", "20000", "-d", "200", "-q"])
            .args(["-t", "set,get,incr,lpush,lrange_100"]),
        WORKLOAD_TIMEOUT,
    );
    assert!(
        out.contains("requests per second"),
        "redis-benchmark said:\n{out}"
    );
    // A local client moving 128 KiB over the Unix socket, counting its
    // own bytes: netio counts them for redis-server.
    let local = {
        let mut local = RedisUnix::connect(&socket).expect("connect to redis");
        let value = vec![b'v'; 64 * 1024];
        assert!(matches!(
            local.command(&[b"SET", b"netio-unix", &value]),
            Reply::Status(_)
        ));
        assert!(
            matches!(local.command(&[b"GET", b"netio-unix"]), Reply::Bulk(Some(v)) if v == value)
        );
        local.traffic()
    };
    wait_connections_closed(port);
    // Every reply was read by its client: netio has seen all of it.
    let records = netio.stop();
    let seen = capture.finish();
    // The counting client is quiet while netio runs: it reads the
    // counters before netio starts and, alone, after it stops.
    let (after, own_after) = {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let (c, own) = RedisCounters::read(&mut client);
            if c.connected_clients == 1 {
                break (c, own);
            }
            assert!(Instant::now() < deadline, "redis clients left: {c:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    server.assert_running();

    let mine = counted(
        &records,
        &target,
        &instance_pids(&records, server.pid(), &[]),
    );
    let raw = delta(before.total, after.total);
    let own = delta(own_before, own_after);
    report(
        "redis",
        mine.tcp,
        &seen,
        &format!(
            "Unix socket: netio {:?}, the local client {local} | total_net_output_bytes/total_net_input_bytes delta {}/{} less the counting client's {}/{}",
            mine.unix, raw.sent, raw.received, own.sent, own.received
        ),
    );
    assert_eq!(mine.busy, 1, "one redis-server process");
    assert!(
        mine.tcp.sent > 1_000_000 && mine.tcp.received > 1_000_000,
        "redis-benchmark moved too little to prove anything: {}",
        mine.tcp
    );
    assert_matches_capture("redis", mine.tcp, &seen);
    assert!(
        local.sent > 64 * 1024 && local.received > 64 * 1024,
        "{local}"
    );
    assert_eq!(
        mine.unix,
        BTreeMap::from([(this_process_as_peer(), local)]),
        "netio's Unix-socket bytes per peer vs the local client's own count"
    );
    assert_eq!(
        (raw.sent - own.sent, raw.received - own.received),
        (mine.total.sent, mine.total.received),
        "Redis's INFO counters less the counting client's exact bytes vs netio"
    );
    drop(client);
    let status = server.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "redis-server did not shut down cleanly ({status:?})\n{}",
        tail_of(&server.log)
    );
}

// ---------------------------------------------------------------- PostgreSQL

/// The newest installed PostgreSQL's bin directory.
fn postgres_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql: is postgresql installed?")
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("no postgres server binary").1
}

/// One PostgreSQL run under netio and the capture.
struct PgRun {
    target: String,
    postmaster: u32,
    records: Records,
    seen: Summary,
    /// The backend of each TCP connection, from PostgreSQL's own log
    /// (`log_connections`): pid -> client port.
    backends: BTreeMap<u32, u16>,
    /// The backends of Unix-socket connections while netio ran.
    local_backends: BTreeSet<u32>,
    /// The bytes of those connections, as the relay counted them.
    local: Bytes,
    /// The postmaster, its children when netio started, and the backends.
    pids: BTreeSet<u32>,
}

/// Starts a private PostgreSQL, loads pgbench's tables over the unix
/// socket, then runs pgbench over TCP under netio and the capture: four
/// long connections, then a new connection (a newly forked backend) per
/// transaction.
fn postgres_run() -> PgRun {
    ensure_packages();
    let target = target_for("postgres");
    let scratch = Scratch::new("postgresql");
    let home = private_dir(&scratch, "pg", "postgres");
    let data = home.join("data");
    let bin = postgres_bin();
    let (uid, gid) = user_ids("postgres");
    let as_postgres = |cmd: &mut Command| {
        cmd.uid(uid)
            .gid(gid)
            .current_dir(&home)
            .env("HOME", &home)
            .env("LC_ALL", "C.UTF-8");
    };
    let port = free_port();
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
    as_postgres(&mut initdb);
    run_ok(&mut initdb, READY_TIMEOUT);
    let log = home.join("postgres.log");
    let mut postmaster = Command::new(bin.join("postgres"));
    postmaster
        .arg("-D")
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string()])
        .arg("-k")
        .arg(&home)
        .args(["-c", "fsync=off", "-c", "ssl=off"])
        .args(["-c", "log_connections=on", "-c", "log_line_prefix=%p "])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(&log));
    as_postgres(&mut postmaster);
    // SIGINT: fast shutdown, which ends the backends and exits.
    let mut server = Server::new(
        "postgres",
        postmaster.spawn().expect("spawn postgres"),
        log.clone(),
        libc::SIGINT,
    );
    let over_unix = |cmd: &mut Command| {
        cmd.arg("-h")
            .arg(&home)
            .args(["-p", &port.to_string(), "-U", "postgres"]);
    };
    server.wait_ready(|| {
        let mut ready = Command::new(bin.join("pg_isready"));
        over_unix(&mut ready);
        ready
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut init = Command::new(bin.join("pgbench"));
    init.args(["-i", "-s", "2", "-q"]);
    over_unix(&mut init);
    run_ok(init.arg("postgres"), WORKLOAD_TIMEOUT);

    // The postmaster's children now (checkpointer, walwriter, ...): they
    // are the instance too, though none of them speaks TCP.
    let children = children_of(server.pid());
    let capture = Capture::start(port);
    // The log up to here: the backends of the connections before netio.
    let log_before = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
    let netio = Netio::start_file(&write_test_config(&scratch));
    let pgbench = |args: &[&str]| {
        let out = run_ok(
            Command::new(bin.join("pgbench"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .args(args)
                .arg("postgres")
                .env("PGSSLMODE", "disable"),
            WORKLOAD_TIMEOUT,
        );
        assert!(
            out.contains("number of transactions actually processed"),
            "pgbench said:\n{out}"
        );
    };
    pgbench(&["-c", "4", "-j", "2", "-t", "500"]);
    pgbench(&["-S", "-C", "-c", "2", "-j", "2", "-t", "100"]);
    // A local client moving 100 kB over the Unix socket, through a relay
    // that counts its bytes: netio counts it for its backend.
    let relay_dir = scratch.path("relay");
    std::fs::create_dir_all(&relay_dir).unwrap();
    let socket_name = format!(".s.PGSQL.{port}");
    let relay = UnixRelay::start(&relay_dir.join(&socket_name), &home.join(&socket_name));
    let out = run_ok(
        Command::new(bin.join("psql"))
            .arg("-h")
            .arg(&relay_dir)
            .args(["-p", &port.to_string(), "-U", "postgres"])
            .args([
                "-X",
                "-A",
                "-t",
                "-c",
                "SELECT repeat('x', 100000)",
                "postgres",
            ]),
        WORKLOAD_TIMEOUT,
    );
    assert_eq!(out.trim().len(), 100_000);
    let local = relay.finish();
    wait_connections_closed(port);
    let records = netio.stop();
    let seen = capture.finish();
    server.assert_running();
    let status = server.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "postgres did not shut down cleanly ({status:?})\n{}",
        tail_of(&log)
    );

    let log_text = std::fs::read_to_string(&log).unwrap();
    // "PID LOG:  connection received: host=127.0.0.1 port=N"
    let backends: BTreeMap<u32, u16> = log_text
        .lines()
        .filter(|l| l.contains("connection received: host=127.0.0.1 "))
        .map(|l| {
            let pid = l.split_whitespace().next().and_then(|p| p.parse().ok());
            let port = l.rsplit("port=").next().and_then(|p| p.trim().parse().ok());
            pid.zip(port)
                .unwrap_or_else(|| panic!("unexpected log line {l:?}"))
        })
        .collect();
    // "PID LOG:  connection received: host=[local]", written after netio
    // started: the local client's backend.
    let local_backends: BTreeSet<u32> = log_text[log_before..]
        .lines()
        .filter(|l| l.contains("connection received: host=[local]"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let pids = backends
        .keys()
        .chain(&local_backends)
        .chain(&children)
        .copied()
        .chain([server.pid()])
        .collect();
    PgRun {
        target,
        postmaster: server.pid(),
        records,
        seen,
        backends,
        local_backends,
        local,
        pids,
    }
}

#[test]
fn postgresql_pgbench_counts_equal_the_capture_per_forked_backend() {
    let _turn = serialize();
    let run = postgres_run();
    let mine = counted(&run.records, &run.target, &run.pids);
    report(
        "postgresql",
        mine.tcp,
        &run.seen,
        &format!(
            "{} postgres processes with traffic, {} TCP and {} Unix-socket backends in PostgreSQL's log; Unix socket: netio {:?}, relay {}; PostgreSQL keeps no byte counters",
            mine.busy,
            run.backends.len(),
            run.local_backends.len(),
            mine.unix,
            run.local
        ),
    );
    assert!(
        mine.tcp.sent > 250_000 && mine.tcp.received > 250_000,
        "pgbench moved too little to prove anything: {}",
        mine.tcp
    );
    assert_matches_capture("postgresql", mine.tcp, &run.seen);
    assert!(
        run.local.sent > 100_000,
        "the local client's 100 kB: {}",
        run.local
    );
    assert_eq!(
        mine.unix,
        BTreeMap::from([(this_process_as_peer(), run.local)]),
        "netio's Unix-socket bytes per peer vs the relay's"
    );
    // One backend per TCP connection, each forked after netio started:
    // each one's bytes must equal its connection's in the capture.
    assert!(run.backends.len() >= 4 + 200, "{:?}", run.backends);
    assert_eq!(
        run.backends.values().copied().collect::<BTreeSet<u16>>(),
        run.seen.per_client.keys().copied().collect(),
        "client ports in PostgreSQL's log vs in the capture"
    );
    let per_pid = common::process_totals(&run.records.records);
    let wrong: Vec<String> = run
        .backends
        .iter()
        .filter_map(|(pid, port)| {
            let got = per_pid.get(pid).copied().unwrap_or_default();
            let (to, from) = run.seen.per_client[port];
            ((got.sent, got.received) != (from, to)).then(|| {
                format!(
                    "backend {pid} (client port {port}): netio sent {} received {}, capture {from} / {to}",
                    got.sent, got.received
                )
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "backends counted wrong:\n{}",
        wrong.join("\n")
    );
    assert_eq!(run.local_backends.len(), 1, "the local client's backend");
    // Its bytes are that backend's, all with the relay.
    let local = *run.local_backends.first().unwrap();
    assert_eq!(
        per_pid.get(&local).copied(),
        Some(run.local),
        "the local client's backend {local}: netio vs the relay"
    );
    assert_eq!(
        run.records.peer_totals().get(&local).cloned(),
        Some(BTreeMap::from([(this_process_as_peer(), run.local)])),
        "the local client's backend {local}: its peers"
    );
    assert_eq!(
        mine.busy,
        run.backends.len() + 1,
        "postgres processes with traffic vs backends"
    );
}

#[test]
fn postgresql_backends_forked_while_netio_runs_each_get_a_process_appeared_record() {
    let _turn = serialize();
    let run = postgres_run();
    let appeared: BTreeMap<u32, u64> = run
        .records
        .records
        .iter()
        .filter(|v| event(v) == Some("process_appeared"))
        .filter_map(|v| Some((record_pid(v)?, num(v, "NETIO_PPID")?)))
        .collect();
    let missing: Vec<String> = run
        .backends
        .keys()
        .filter(|pid| appeared.get(pid) != Some(&u64::from(run.postmaster)))
        .map(|pid| {
            let traffic = common::process_totals(&run.records.records)
                .get(pid)
                .copied()
                .unwrap_or_default();
            let exited = run.records.records.iter().any(|v| {
                event(v) == Some("process_exited") && record_pid(v) == Some(*pid)
            });
            format!(
                "pid {pid}: process_appeared {:?}, traffic records {traffic}, process_exited record {exited}",
                appeared.get(pid)
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} backends forked by the postmaster (pid {}) after netio started have no process_appeared record with that parent:\n{}",
        missing.len(),
        run.backends.len(),
        run.postmaster,
        missing.join("\n")
    );
}

/// Each backend appears once: a backend that is exiting is still listed in
/// /proc after the kernel dropped it, and the rescan must not track it
/// again (it did, and wrote a second process_appeared, about one run in
/// two).
#[test]
fn postgresql_backends_appear_once() {
    let _turn = serialize();
    let run = postgres_run();
    let mut times: BTreeMap<u32, usize> = BTreeMap::new();
    for v in &run.records.records {
        if event(v) == Some("process_appeared") {
            if let Some(pid) = record_pid(v) {
                *times.entry(pid).or_default() += 1;
            }
        }
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "process_appeared more than once: {twice:?}"
    );
}
