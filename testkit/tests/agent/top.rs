//! `netio top` against a running netio: in a real terminal (tmux,
//! driven with send-keys and read with capture-pane) it shows the target,
//! its process and its client at the rate of a paced generator, its sort
//! and expand keys change the screen as docs/top.md says, and `q`, like
//! SIGTERM, leaves the terminal as it found it; `--once` prints the
//! service's own totals, the sum of its records; without a service it
//! says what to do, and a user other than root is refused.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{event, num, record_bytes, text, unique_name, Idle, Netio, Pins, Program, Scratch};
use serde_json::Value;

const KIB: f64 = 1024.0;

/// A tmux server of this test's own (its own socket), with one 80x24
/// window running a shell; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(pins: &Pins) -> Tmux {
        Tmux::start_with(pins, &[])
    }

    /// With `env` (`NAME=value`) in the shell's environment too.
    fn start_with(pins: &Pins, env: &[&str]) -> Tmux {
        let t = Tmux {
            socket: format!("netio-top-{}", common::unique_suffix()),
        };
        let pin = format!("NETIO_PIN_DIR={}", pins.dir.display());
        let bin = common::netio_bin();
        let path = format!(
            "PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
            bin.parent().unwrap().display()
        );
        let status = Command::new("tmux")
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "80", "-y", "24", "env", "-i", "TERM=xterm-256color"])
            .args([&pin, &path, "PS1=$ "])
            .args(env)
            .args(["bash", "--norc", "--noprofile"])
            .status()
            .expect("run tmux (scripts/lib.sh installs it)");
        assert!(status.success(), "tmux new-session: {status}");
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `line` and Enter into the shell.
    fn type_line(&self, line: &str) {
        self.tmux(&["send-keys", "-t", "0", "-l", line]);
        self.tmux(&["send-keys", "-t", "0", "Enter"]);
    }

    fn key(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "0", key]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "0"])
    }

    /// The screen with its attributes and colours as escape sequences.
    fn screen_styled(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "0"])
    }

    /// Whether the pane shows the alternate screen (a full-screen program).
    fn alternate(&self) -> bool {
        self.tmux(&["display", "-p", "-t", "0", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Waits for a screen that `pred` holds for; panics with the last one.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "no screen with {what}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// "511.6 KiB/s" as bytes per second.
fn rate(s: &str) -> Option<f64> {
    let s = s.strip_suffix("/s")?;
    let (n, unit) = s.split_once(' ')?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => KIB,
        "MiB" => KIB * KIB,
        "GiB" => KIB * KIB * KIB,
        _ => return None,
    };
    Some(n.parse::<f64>().ok()? * scale)
}

/// The two rates of a table line: the first two "N UNIT/s" in it.
fn rates(line: &str) -> Vec<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .filter_map(|w| rate(&format!("{} {}", w[0], w[1])))
        .collect()
}

/// The lines of target `name`'s block: its own line (`- name` when
/// expanded) and those below it up to the next target.
fn block<'a>(screen: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = screen.lines().skip_while(|l| {
        !(l.starts_with(&format!("- {name} ")) || l.starts_with(&format!("+ {name} ")))
    });
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut out = vec![first];
    out.extend(lines.take_while(|l| l.starts_with("  ")));
    out
}

fn line_of(screen: &str, prefix: &str) -> Option<usize> {
    screen.lines().position(|l| l.starts_with(prefix))
}

/// The shell's terminal settings, as `stty -g` prints them in the pane.
fn stty(t: &Tmux, scratch: &Scratch, tag: &str) -> String {
    let file = scratch.path(tag);
    t.type_line(&format!("stty -g > {}", file.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(&file) {
            if !s.trim().is_empty() {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "stty -g wrote nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The paced rate of the echo target: its server sends and receives it.
const PACED: f64 = 512.0 * KIB;

#[test]
fn top_shows_target_process_and_client_at_the_generators_rate_and_its_keys_work() {
    let scratch = Scratch::new("top-screen");
    let names = [
        unique_name("ntte"),
        unique_name("nttd"),
        unique_name("nttu"),
    ];
    let config = common::write_config(
        &scratch,
        // Longer than the test looks: every rate it reads comes from the
        // service's reads between intervals, not from its records.
        "30s",
        &[
            ("echo", &[names[0].as_str()]),
            ("down", &[names[1].as_str()]),
            ("up", &[names[2].as_str()]),
        ],
    );
    let pins = Pins::new();
    let _netio = Netio::start_pinned(&config, &pins);
    let [echo, down, up] = names.clone().map(|n| Program::named(&scratch, &n));
    let client = Program::original();
    // "down" sends much and receives little, "up" the other way round:
    // sorted by sent down is above up, by received below.
    common::exchange(
        &down,
        &client,
        "pingpong",
        "127.0.0.1:0",
        "127.0.0.1",
        &["--count", "20", "--request", "10", "--reply", "100k"],
    );
    common::exchange(
        &up,
        &client,
        "waitall",
        "127.0.0.1:0",
        "127.0.0.1",
        &[
            "--size",
            "1m",
            "--chunk",
            "65536",
            "--pause-ms",
            "1",
            "--reply",
            "10",
        ],
    );
    let server = echo.server("paced", "127.0.0.1:0", &["--count", "1"]);
    let addr = server.addr("127.0.0.1");
    let paced = std::thread::spawn(move || {
        Program::original().client("paced", &addr, &["--phases", "512k:25000"])
    });

    let t = Tmux::start(&pins);
    let before = stty(&t, &scratch, "stty-before");
    t.type_line("netio top");
    t.wait_for("the echo target at a rate", |s| {
        block(s, "echo")
            .first()
            .is_some_and(|l| rates(l).len() == 2)
    });
    assert!(t.alternate(), "netio top is not on the alternate screen");
    let s = t.screen();
    assert!(s.contains("SENT/s▼"), "sorted by sent at first:\n{s}");
    assert!(s.contains("tracepoint") || s.contains("fentry") || s.contains("kprobe"));
    assert!(s.contains("degraded:"), "no degraded line:\n{s}");
    assert!(s.contains("q quit"), "the keys are not shown:\n{s}");

    // `e` expands every target: the echo server's process and its client.
    t.key("e");
    // At 80 columns a long name may lose its last characters.
    let process = format!("  {} {}", server.pid(), &names[0][..10]);
    t.wait_for("the echo process", |s| {
        block(s, "echo").iter().any(|l| l.starts_with(&process))
    });
    // Rates over 1 s windows of a paced sender: give them a few screens
    // to settle, each read whole.
    std::thread::sleep(Duration::from_secs(2));
    let mut seen = Vec::new();
    let ok = (0..5).any(|_| {
        std::thread::sleep(Duration::from_millis(1100));
        let s = t.screen();
        let b = block(&s, "echo");
        let rows = [
            b.first().copied(),
            b.iter().find(|l| l.starts_with(&process)).copied(),
            b.iter()
                .find(|l| l.starts_with("  client 127.0.0.1 "))
                .copied(),
        ];
        let got: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| r.map(rates).unwrap_or_default())
            .collect();
        seen.push(s);
        got.iter()
            .all(|r| r.len() == 2 && r.iter().all(|v| (v - PACED).abs() <= PACED * 0.10))
    });
    assert!(
        ok,
        "the echo target, process and client never all showed {PACED} B/s (±10%) both ways; screens:\n{}",
        seen.join("\n----\n")
    );

    // Sorted by sent, down (2 MB sent) is above up (10 B); by received up
    // (1 MiB received) above down (200 B).
    let s = t.screen();
    assert!(
        line_of(&s, "- down ").unwrap() < line_of(&s, "- up ").unwrap(),
        "sorted by sent, down is not above up:\n{s}"
    );
    t.key("r");
    let s = t.wait_for("the received sort", |s| s.contains("RECV/s▼"));
    assert!(!s.contains("SENT/s▼"), "{s}");
    assert!(
        line_of(&s, "- up ").unwrap() < line_of(&s, "- down ").unwrap(),
        "sorted by received, up is not above down:\n{s}"
    );
    // `e` again folds every target back to its line.
    t.key("e");
    let s = t.wait_for("folded targets", |s| !s.contains("  client 127.0.0.1"));
    assert!(s.contains("+ echo ") && s.contains("+ up "), "{s}");

    // Narrower (SIGWINCH): the totals go, the rates stay whole.
    t.tmux(&["resize-window", "-t", "0", "-x", "50", "-y", "24"]);
    let s = t.wait_for("the narrow screen", |s| {
        !s.contains("RECEIVED")
            && block(s, "echo")
                .first()
                .is_some_and(|l| rates(l).len() == 2)
    });
    let wide = s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        wide <= 50,
        "a line of {wide} columns on a 50-column screen:\n{s}"
    );
    t.tmux(&["resize-window", "-t", "0", "-x", "80", "-y", "24"]);
    t.wait_for("the wide screen again", |s| s.contains("RECEIVED"));

    t.key("q");
    t.wait_for("the shell again", |s| !s.contains("q quit"));
    assert!(!t.alternate(), "q left the alternate screen on");
    let after = stty(&t, &scratch, "stty-after");
    assert_eq!(before, after, "q left the terminal's settings changed");

    // SIGTERM restores it too.
    t.type_line("netio top");
    t.wait_for("netio top again", |s| s.contains("q quit"));
    let shell = t.tmux(&["display", "-p", "-t", "0", "#{pane_pid}"]);
    let out = Command::new("pgrep")
        .args(["-P", shell.trim(), "-x", "netio"])
        .output()
        .expect("pgrep");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pid.is_empty(), "no netio top under the shell {shell}");
    // SAFETY: kill on a pid we just read.
    unsafe { libc::kill(pid.parse().unwrap(), libc::SIGTERM) };
    t.wait_for("the shell after SIGTERM", |s| !s.contains("q quit"));
    assert!(!t.alternate(), "SIGTERM left the alternate screen on");
    assert_eq!(
        before,
        stty(&t, &scratch, "stty-term"),
        "SIGTERM left the terminal changed"
    );
    let truth = paced.join().expect("paced client");
    assert!(truth.sent > 0);
}

/// Runs `netio top ARGS` on the service of `pins`.
fn top_once(pins: &Pins, args: &[&str]) -> std::process::Output {
    common::output_within(
        Command::new(common::netio_bin())
            .arg("top")
            .args(args)
            .env("NETIO_PIN_DIR", &pins.dir),
        Duration::from_secs(20),
    )
}

/// The exact (sent, received) of a `--once` line starting with `prefix`:
/// the two integer columns.
fn once_totals(out: &str, prefix: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.starts_with(prefix))?;
    let ints: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // The label's PID, when it has one, comes first.
    let n = ints.len();
    (n >= 2).then(|| (ints[n - 2], ints[n - 1]))
}

fn sum(records: &[Value], pred: impl Fn(&Value) -> bool) -> (u64, u64) {
    records
        .iter()
        .filter(|v| event(v) == Some("traffic") && pred(v))
        .fold((0, 0), |(s, r), v| {
            let b = record_bytes(v);
            (s + b.sent, r + b.received)
        })
}

#[test]
fn top_once_totals_are_the_sums_of_the_services_records() {
    let scratch = Scratch::new("top-once");
    let name = unique_name("ntto");
    let config = common::write_config(&scratch, "500ms", &[("once", &[name.as_str()])]);
    let pins = Pins::new();
    let mut netio = Netio::start_pinned(&config, &pins);
    let tracked = Program::named(&scratch, &name);
    // The server stays until its --hold-ms, so its process row is there.
    let server = tracked.server(
        "paced",
        "127.0.0.1:0",
        &["--count", "1", "--hold-ms", "15000"],
    );
    let pid = server.pid();
    let c = Program::original().client(
        "paced",
        &server.addr("127.0.0.1"),
        &["--phases", "256k:2000"],
    );
    assert!(c.sent > 0);
    // Every byte is in a record once an interval ended after the last:
    // two more target records.
    let count = |r: &[Value]| {
        r.iter()
            .filter(|v| event(v) == Some("traffic") && text(v, "NETIO_SCOPE") == Some("target"))
            .count()
    };
    let n = count(&netio.records_so_far());
    assert!(netio.wait_until(Duration::from_secs(10), |r| count(r) >= n + 2));

    let out = top_once(&pins, &["--once", "--interval", "200ms"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "netio top --once: {:?}\n{stdout}",
        out.status
    );
    let records = netio.records_so_far();
    let is = |v: &Value, scope: &str| {
        text(v, "NETIO_TARGET") == Some("once") && text(v, "NETIO_SCOPE") == Some(scope)
    };
    let target = sum(&records, |v| is(v, "target"));
    let process = sum(&records, |v| {
        is(v, "process") && num(v, "NETIO_PID") == Some(pid.into())
    });
    let client = sum(&records, |v| {
        is(v, "target_peer") && text(v, "NETIO_PEER_ADDRESS") == Some("127.0.0.1")
    });
    assert_eq!(
        (c.sent, c.received),
        (target.1, target.0),
        "the records against the generator"
    );
    assert_eq!(
        once_totals(&stdout, "once "),
        Some(target),
        "target totals:\n{stdout}"
    );
    let row = format!("  {pid} {name} ");
    assert_eq!(
        once_totals(&stdout, &row),
        Some(process),
        "process totals:\n{stdout}"
    );
    assert_eq!(
        once_totals(&stdout, "  client 127.0.0.1 "),
        Some(client),
        "client totals:\n{stdout}"
    );
    drop(server);
}

#[test]
fn top_without_a_running_service_exits_non_zero_and_says_what_to_do() {
    common::require_root();
    let pins = Pins::new();
    for args in [&["--once"][..], &[][..]] {
        let out = top_once(&pins, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "netio top {args:?}: {stderr}");
        assert!(
            stderr.contains("no running netio service") && stderr.contains("systemctl start netio"),
            "netio top {args:?} does not say to start the service: {stderr}"
        );
    }
}

#[test]
fn top_refuses_a_user_other_than_root_a_silent_client_stalls_nothing_and_the_socket_goes_with_netio(
) {
    let scratch = Scratch::new("top-refused");
    // A target record every interval: the service's clock.
    let idle = Idle::start(&scratch);
    let config = common::write_config(&scratch, "500ms", &[("refused", &[idle.name.as_str()])]);
    let pins = Pins::new();
    let mut netio = Netio::start_pinned(&config, &pins);
    let socket: PathBuf = Path::new("/run")
        .join(pins.dir.file_name().unwrap())
        .join("top.sock");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "{} is not root's alone",
        socket.display()
    );

    let out = common::output_within(
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(common::netio_bin())
            .args(["top", "--once"])
            .env("NETIO_PIN_DIR", &pins.dir),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("only root"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nobody read: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A root client that connects and never asks holds neither the
    // service's intervals nor, past its timeout, the next client.
    let silent = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let count = |r: &[Value]| r.iter().filter(|v| event(v) == Some("traffic")).count();
    let n = count(&netio.records_so_far());
    assert!(
        netio.wait_until(Duration::from_secs(3), |r| count(r) >= n + 3),
        "the service's intervals stopped while a client was silent"
    );
    let started = Instant::now();
    let out = top_once(&pins, &["--once", "--interval", "100ms"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);

    // A stopped service leaves no socket behind, and top says so.
    netio.stop();
    assert!(!socket.exists(), "{} outlived its netio", socket.display());
    assert_eq!(top_once(&pins, &["--once"]).status.code(), Some(1));
}

/// The parameters of every SGR sequence (`ESC [ ... m`) in `s`.
fn sgr_params(s: &str) -> Vec<u32> {
    s.split("\x1b[")
        .skip(1)
        .filter_map(|seq| seq.split_once('m'))
        .flat_map(|(params, _)| {
            params
                .split(';')
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A foreground or background colour among SGR parameters.
fn is_colour(p: u32) -> bool {
    matches!(p, 30..=38 | 40..=48 | 90..=97 | 100..=107)
}

#[test]
fn top_shows_a_breach_in_red_and_under_no_color_in_words_alone() {
    let scratch = Scratch::new("top-breach");
    let name = unique_name("nttb");
    let config = scratch.path("netio.toml");
    std::fs::write(
        &config,
        format!(
            "interval = \"500ms\"\n\n[[target]]\nname = \"hot\"\nprocess = [\"{name}\"]\n\n\
             [target.threshold]\nsent = \"100KiB/s\"\nfor = \"1s\"\n"
        ),
    )
    .unwrap();
    let pins = Pins::new();
    let _netio = Netio::start_pinned(&config, &pins);
    let tracked = Program::named(&scratch, &name);
    let server = tracked.server("paced", "127.0.0.1:0", &["--count", "1"]);
    let addr = server.addr("127.0.0.1");
    let paced = std::thread::spawn(move || {
        Program::original().client("paced", &addr, &["--phases", "512k:15000"])
    });
    let in_breach = |s: &str| {
        block(s, "hot")
            .first()
            .is_some_and(|l| l.contains("BREACH ↑"))
    };

    let colour = Tmux::start(&pins);
    colour.type_line("netio top");
    colour.wait_for("the breach", in_breach);
    let styled = colour.screen_styled();
    let line = styled
        .lines()
        .find(|l| l.contains("BREACH"))
        .expect("the breach's line");
    // Red as tmux writes it: SGR 31, or 38;5;1 (the palette's red).
    let red = sgr_params(line).contains(&31) || line.contains("\x1b[38;5;1m");
    assert!(red, "the breach is not red: {line:?}");

    let plain = Tmux::start_with(&pins, &["NO_COLOR=1"]);
    plain.type_line("netio top");
    plain.wait_for("the breach without colour", in_breach);
    let styled = plain.screen_styled();
    let colours: Vec<u32> = sgr_params(&styled)
        .into_iter()
        .filter(|p| is_colour(*p))
        .collect();
    assert!(
        colours.is_empty(),
        "NO_COLOR=1, yet colours {colours:?} on:\n{styled:?}"
    );
    colour.key("q");
    // The terminal hangs up under a running netio top: it ends (it once
    // spun on end of file, its signals unread), and leaves the service.
    let shell = plain.tmux(&["display", "-p", "-t", "0", "#{pane_pid}"]);
    let out = Command::new("pgrep")
        .args(["-P", shell.trim(), "-x", "netio"])
        .output()
        .expect("pgrep");
    let pid: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("netio top's pid");
    drop(plain);
    let deadline = Instant::now() + Duration::from_secs(5);
    // SAFETY: signal 0 only asks whether the pid exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Reaped by init once it exits; a zombie until then.
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "netio top {pid} outlived its terminal by 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    paced.join().expect("paced client");
}

#[test]
fn top_without_a_terminal_prints_the_table_every_refresh() {
    use std::io::{BufRead, BufReader};

    let scratch = Scratch::new("top-batch");
    let idle = Idle::start(&scratch);
    let config = common::write_config(&scratch, "500ms", &[("batch", &[idle.name.as_str()])]);
    let pins = Pins::new();
    let _netio = Netio::start_pinned(&config, &pins);
    // No --batch: stdout is a pipe, not a terminal.
    let mut top = std::process::Command::new(common::netio_bin())
        .args(["top", "--interval", "200ms"])
        .env("NETIO_PIN_DIR", &pins.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn netio top");
    let mut tables = 0;
    let mut lines = Vec::new();
    let started = Instant::now();
    for line in BufReader::new(top.stdout.take().unwrap()).lines() {
        let line = line.expect("a line");
        if line.starts_with("TARGET / PROCESS / CLIENT") {
            tables += 1;
        }
        assert!(
            !line.contains('\x1b'),
            "an escape sequence on a pipe: {line:?}"
        );
        lines.push(line);
        if tables == 3 || started.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    let _ = top.kill();
    let _ = top.wait();
    assert_eq!(tables, 3, "three refreshes in 15 s:\n{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.starts_with("batch ")),
        "{}",
        lines.join("\n")
    );
}
