//! Scenarios about a process's identity, as an attacker plays with it: a
//! child left a zombie, a PID taken over by another process, a process
//! whose main thread has exited, a worker that leaves its server's lineage
//! behind a crowd of children. Each still counts its own bytes.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::Duration;

use serde_json::json;

use crate::cli::Options;
use crate::forking::{
    child_reports, exec_plan, serve_child, write_all_fd, PID_ATTEMPTS, WRONG_PID,
};
use crate::server::handle_bulk;
use crate::sys;
use crate::tally::{Report, Tally};

/// The zombie server: one connection, served (bulk) by a child that exits
/// and is left a zombie for --zombie-ms before the server reaps it.
pub fn serve_zombie(listener: &TcpListener, o: &Options, tally: &Tally) -> Result<Report, String> {
    let (stream, peer) =
        crate::net::accept(listener, o.timeout).map_err(|e| format!("accept: {e}"))?;
    tally.connection(peer.ip());
    let (report_r, report_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let child = match sys::fork().map_err(|e| format!("fork: {e}"))? {
        None => {
            sys::arm_deadline(o.deadline_secs);
            let code = match o
                .uid
                .map_or(Ok(()), sys::drop_privileges)
                .map_err(|e| format!("drop privileges: {e}"))
                .and_then(|_| serve_child(&stream, o.size, report_w.as_raw_fd()))
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("netio-traffic: zombie child {}: {e}", sys::pid());
                    1
                }
            };
            sys::exit_now(code);
        }
        Some(pid) => pid,
    };
    drop(report_w);
    drop(stream);
    // The report pipe reaches EOF when the child has closed its files on
    // the way out; from then on it is, or is about to be, a zombie.
    let reports = child_reports(report_r)?;
    std::thread::sleep(o.zombie);
    let state = sys::proc_state(child);
    let status = sys::waitpid(child).map_err(|e| format!("waitpid {child}: {e}"))?;
    if let Some(problem) = sys::exit_problem(status) {
        return Err(format!("child {child} {problem}"));
    }
    let [r] = reports.as_slice() else {
        return Err(format!("{} child reports, not one", reports.len()));
    };
    let mut report = Report::single("server", o.scenario.name(), tally);
    report.per_pid.insert(r.pid, (r.sent, r.received));
    report.extra.insert("zombie_pid".into(), json!(child));
    report.extra.insert(
        "zombie_state".into(),
        json!(state.map(String::from).unwrap_or_default()),
    );
    Ok(report)
}

/// The escape server: --paused children that wait to be killed, then a
/// child that setsid()s and forks the worker, which re-execs --reexec (its
/// parent is gone at once: it is init's) and serves one bulk connection.
/// The paused children are killed once the worker is on its own.
pub fn serve_escape(listener: &TcpListener, o: &Options, tally: &Tally) -> Result<Report, String> {
    let mut paused = Vec::new();
    for _ in 0..o.paused {
        match sys::fork().map_err(|e| format!("fork paused child: {e}"))? {
            None => {
                // SAFETY: prctl and pause take no pointers; the child dies
                // with its parent, whatever happens to the run.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                loop {
                    unsafe { libc::pause() };
                }
            }
            Some(pid) => paused.push(pid),
        }
    }
    let (stream, peer) =
        crate::net::accept(listener, o.timeout).map_err(|e| format!("accept: {e}"))?;
    tally.connection(peer.ip());
    let (report_r, report_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let path = o.reexec.as_deref().expect("checked by the parser");
    let plan = exec_plan(path, &stream, report_w.as_raw_fd(), o)?;
    let middle = match sys::fork().map_err(|e| format!("fork: {e}"))? {
        None => {
            // SAFETY: setsid takes nothing; a new session, as a daemon's.
            unsafe { libc::setsid() };
            match sys::fork() {
                Ok(None) => {
                    let err = sys::clear_cloexec(stream.as_raw_fd())
                        .and_then(|_| sys::clear_cloexec(report_w.as_raw_fd()))
                        .and_then(|_| o.uid.map_or(Ok(()), sys::drop_privileges))
                        .err()
                        .unwrap_or_else(|| plan.exec());
                    eprintln!("netio-traffic: escape worker: re-exec failed: {err}");
                    sys::exit_now(127);
                }
                Ok(Some(_)) => sys::exit_now(0),
                Err(e) => {
                    eprintln!("netio-traffic: escape: fork the worker: {e}");
                    sys::exit_now(1);
                }
            }
        }
        Some(pid) => pid,
    };
    let status = sys::waitpid(middle).map_err(|e| format!("waitpid {middle}: {e}"))?;
    if let Some(problem) = sys::exit_problem(status) {
        return Err(format!("the worker's parent {problem}"));
    }
    for &pid in &paused {
        // SAFETY: signals to children this process forked.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for &pid in &paused {
        sys::waitpid(pid).map_err(|e| format!("waitpid {pid}: {e}"))?;
    }
    drop(report_w);
    drop(stream);
    let reports = child_reports(report_r)?;
    let [r] = reports.as_slice() else {
        return Err(format!("{} worker reports, not one", reports.len()));
    };
    let mut report = Report::single("server", o.scenario.name(), tally);
    report.per_pid.insert(r.pid, (r.sent, r.received));
    report.extra.insert("worker_pid".into(), json!(r.pid));
    report.extra.insert("paused".into(), json!(paused.len()));
    Ok(report)
}

/// The leader-exit server: the main thread hands the listener to a worker
/// and exits alone; the worker serves --count bulk connections, prints the
/// report and ends the process.
pub fn serve_leader_exit(listener: TcpListener, o: &Options) -> ! {
    let o = o.clone();
    let worker = std::thread::Builder::new()
        .name("worker".into())
        .spawn(move || {
            let tally = Tally::default();
            let served = (0..o.count).try_for_each(|_| {
                let (stream, peer) =
                    crate::net::accept(&listener, o.timeout).map_err(|e| format!("accept: {e}"))?;
                tally.connection(peer.ip());
                handle_bulk(&stream, o.size, &tally).map(|_| ())
            });
            let code = match served {
                Ok(()) => {
                    let mut report = Report::single("server", o.scenario.name(), &tally);
                    report
                        .extra
                        .insert("leader_state".into(), json!(leader_state()));
                    report.print();
                    0
                }
                Err(e) => {
                    eprintln!("netio-traffic: leader-exit worker: {e}");
                    1
                }
            };
            let _ = std::io::stdout().flush();
            std::process::exit(code);
        });
    if let Err(e) = worker {
        eprintln!("netio-traffic: leader-exit: cannot start the worker: {e}");
        std::process::exit(1);
    }
    sys::exit_thread()
}

/// What /proc shows for this process's main thread (Z once it exited).
fn leader_state() -> String {
    sys::proc_state(sys::pid() as libc::pid_t)
        .map(String::from)
        .unwrap_or_default()
}

/// How long --take-pid waits for its PID to become free.
const TAKE_PID_FOR: Duration = Duration::from_secs(20);

/// Runs `run` in a child forked onto PID `want` (the last PID handed out is
/// set to the one before it, and forks that miss are undone), as --uid
/// where given, and prints that child's report as this run's.
pub fn take_pid(
    o: &Options,
    want: u32,
    run: fn(&Options) -> Result<Option<Report>, String>,
) -> Result<Option<Report>, String> {
    let (report_r, report_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let want = want as libc::pid_t;
    let deadline = std::time::Instant::now() + TAKE_PID_FOR;
    let mut misses = 0u32;
    loop {
        sys::set_last_pid(want - 1).map_err(|e| format!("ns_last_pid: {e}"))?;
        match sys::fork().map_err(|e| format!("fork: {e}"))? {
            None => {
                if sys::pid() as libc::pid_t != want {
                    sys::exit_now(WRONG_PID);
                }
                sys::arm_deadline(o.deadline_secs);
                let line = o
                    .uid
                    .map_or(Ok(()), sys::drop_privileges)
                    .map_err(|e| format!("drop privileges: {e}"))
                    .and_then(|_| run(o))
                    .map(|r| r.map(|r| format!("{}\n", r.to_json())).unwrap_or_default());
                let code = match line {
                    Ok(line) => match write_all_fd(report_w.as_raw_fd(), line.as_bytes()) {
                        Ok(()) => 0,
                        Err(e) => {
                            eprintln!("netio-traffic: on PID {want}: report: {e}");
                            1
                        }
                    },
                    Err(e) => {
                        eprintln!("netio-traffic: on PID {want}: {e}");
                        1
                    }
                };
                sys::exit_now(code);
            }
            Some(pid) => {
                let status = sys::waitpid(pid).map_err(|e| format!("waitpid {pid}: {e}"))?;
                if pid == want {
                    if let Some(problem) = sys::exit_problem(status) {
                        return Err(format!("the process on PID {want} {problem}"));
                    }
                    break;
                }
                misses += 1;
                if std::time::Instant::now() > deadline {
                    return Err(format!(
                        "PID {want} not taken in {TAKE_PID_FOR:?} ({misses} forks missed it)"
                    ));
                }
                if misses.is_multiple_of(PID_ATTEMPTS) {
                    // Something holds the PID: give it time to go.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    drop(report_w);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(report_r), &mut text)
        .map_err(|e| format!("read the report of PID {want}: {e}"))?;
    print!("{text}");
    Ok(None)
}
