//! The forking server: one child process per connection, each of which
//! stops looking like the tracked program (it renames itself, or re-execs a
//! differently named file), so netio can only attribute its bytes through
//! the parent. Children report their own counts to the parent over a pipe.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::Options;
use crate::server::handle_bulk;
use crate::sys;
use crate::tally::{recv_exact, send_counted, Report, Tally, CHUNK};

/// Default name for renamed children; anything but the tracked name works.
const CHILD_NAME: &[u8] = b"fork-child";

/// Each child report is one line well under PIPE_BUF, so concurrent
/// writes never interleave. The pid-reuse server drains its pipe only once
/// its children are done, so its 64 KiB capacity bounds their number.
const MAX_CHILDREN: u64 = 500;

/// The forking server reads its children's reports while it accepts, and
/// reaps those that exited, as a server forking per connection does: a
/// child blocked on a full report pipe would hold its client's connection
/// open, so the number of connections is not bounded by the pipe.
pub fn serve(listener: &TcpListener, o: &Options, tally: &Tally) -> Result<Report, String> {
    let (report_r, report_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    sys::set_nonblocking(report_r.as_raw_fd()).map_err(|e| format!("pipe: {e}"))?;
    let mut reports = Vec::new();
    let mut statuses = BTreeMap::new();
    let child_name = o.child_name.as_deref().unwrap_or(CHILD_NAME);
    let mut children = Vec::new();
    for _ in 0..o.count {
        let (stream, peer) = loop {
            match sys::readable_first(listener.as_raw_fd(), report_r.as_raw_fd(), o.timeout)
                .map_err(|e| format!("accept: {e}"))?
            {
                sys::Ready::First => {
                    break crate::net::accept(listener, o.timeout)
                        .map_err(|e| format!("accept: {e}"))?
                }
                sys::Ready::Second => {
                    sys::read_available(report_r.as_raw_fd(), &mut reports)
                        .map_err(|e| format!("read child reports: {e}"))?;
                    statuses.extend(sys::reap_exited());
                }
            }
        };
        tally.connection(peer.ip());
        if o.parent_bytes > 0 {
            // The parent moves bytes on the socket first, so the kernel
            // sees it used by two processes.
            recv_exact(&stream, o.parent_bytes as usize, tally)
                .map_err(|e| format!("parent receive: {e}"))?;
            send_counted(&stream, o.parent_bytes, CHUNK, Duration::ZERO, tally)
                .map_err(|e| format!("parent send: {e}"))?;
        }
        let plan = match &o.reexec {
            Some(path) => Some(exec_plan(path, &stream, report_w.as_raw_fd(), o)?),
            None => None,
        };
        match sys::fork().map_err(|e| format!("fork: {e}"))? {
            None => match plan {
                Some(plan) => {
                    let err = sys::clear_cloexec(stream.as_raw_fd())
                        .and_then(|_| sys::clear_cloexec(report_w.as_raw_fd()))
                        .and_then(|_| o.uid.map_or(Ok(()), sys::drop_privileges))
                        .err()
                        .unwrap_or_else(|| plan.exec());
                    eprintln!("netio-traffic: forking child: re-exec failed: {err}");
                    sys::exit_now(127);
                }
                None => {
                    // First thing: from here on this process no longer has
                    // the tracked comm.
                    let renamed = sys::set_comm(child_name);
                    sys::arm_deadline(o.deadline_secs);
                    let code = match renamed
                        .map_err(|e| format!("prctl: {e}"))
                        .and_then(|_| {
                            o.uid
                                .map_or(Ok(()), sys::drop_privileges)
                                .map_err(|e| format!("drop privileges: {e}"))
                        })
                        .and_then(|_| serve_child(&stream, o.size, report_w.as_raw_fd()))
                    {
                        Ok(()) => 0,
                        Err(e) => {
                            eprintln!("netio-traffic: forking child {}: {e}", sys::pid());
                            1
                        }
                    };
                    sys::exit_now(code);
                }
            },
            Some(pid) => children.push(pid),
        }
    }

    // Every child holds the write end until it exits: the rest of the
    // reports end when the last has.
    drop(report_w);
    sys::set_blocking(report_r.as_raw_fd()).map_err(|e| format!("pipe: {e}"))?;
    let mut rest = Vec::new();
    std::fs::File::from(report_r)
        .read_to_end(&mut rest)
        .map_err(|e| format!("read child reports: {e}"))?;
    reports.extend(rest);
    let mut failures = Vec::new();
    for &pid in &children {
        let status = match statuses.remove(&pid) {
            Some(s) => Ok(s),
            None => sys::waitpid(pid),
        };
        match status {
            Ok(status) => {
                if let Some(problem) = sys::exit_problem(status) {
                    failures.push(format!("child {pid} {problem}"));
                }
            }
            Err(e) => failures.push(format!("waitpid {pid}: {e}")),
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }

    let mut per_pid = BTreeMap::new();
    let mut comms = BTreeMap::new();
    let text = String::from_utf8(reports).map_err(|e| format!("child reports: {e}"))?;
    for r in parse_reports(&text)? {
        per_pid.insert(r.pid, (r.sent, r.received));
        comms.insert(
            r.pid.to_string(),
            r.line.get("comm").cloned().unwrap_or(Value::Null),
        );
    }
    if per_pid.len() != children.len() {
        return Err(format!(
            "{} children but {} reports",
            children.len(),
            per_pid.len()
        ));
    }
    // The parent's own bytes (--parent-bytes) are under its pid.
    let mut report = Report::single("server", o.scenario.name(), tally);
    report.per_pid.extend(per_pid);
    report
        .extra
        .insert("children".into(), json!(children.len()));
    report.extra.insert(
        "child_comms".into(),
        Value::Object(comms.into_iter().collect()),
    );
    Ok(report)
}

/// How many forks may miss the first child's PID (another fork on the
/// machine took it first) before the run gives up.
pub(crate) const PID_ATTEMPTS: u32 = 1000;

/// Exit code of a child that did not get the PID it was meant to reuse: it
/// touched nothing, and the parent forks again.
pub(crate) const WRONG_PID: i32 = 3;

/// The pid-reuse server: one connection, whose exchanges are served in turn
/// by children that each exit after one; every child after the first has
/// the first's PID. The parent never reads or writes the socket before the
/// children are done, so the first child is the first process to use it.
pub fn serve_pid_reuse(
    listener: &TcpListener,
    o: &Options,
    tally: &Tally,
) -> Result<Report, String> {
    if o.count > MAX_CHILDREN {
        return Err(format!(
            "pid-reuse supports at most {MAX_CHILDREN} exchanges"
        ));
    }
    let (stream, peer) =
        crate::net::accept(listener, o.timeout).map_err(|e| format!("accept: {e}"))?;
    tally.connection(peer.ip());
    let (report_r, report_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let mut first: Option<libc::pid_t> = None;
    let mut misses = 0;
    let mut served = 0;
    while served < o.count {
        if let Some(pid) = first {
            sys::set_last_pid(pid - 1).map_err(|e| format!("ns_last_pid: {e}"))?;
        }
        match sys::fork().map_err(|e| format!("fork: {e}"))? {
            None => {
                if first.is_some_and(|want| sys::pid() as libc::pid_t != want) {
                    sys::exit_now(WRONG_PID);
                }
                sys::arm_deadline(o.deadline_secs);
                let child = Tally::default();
                let code = match crate::server::pingpong_exchange(&stream, o, &child)
                    .and_then(|_| report_to_parent(&child, report_w.as_raw_fd()))
                {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("netio-traffic: pid-reuse child {}: {e}", sys::pid());
                        1
                    }
                };
                sys::exit_now(code);
            }
            Some(pid) => {
                let status = sys::waitpid(pid).map_err(|e| format!("waitpid {pid}: {e}"))?;
                if first.is_some_and(|want| pid != want) {
                    misses += 1;
                    if misses == PID_ATTEMPTS {
                        return Err(format!(
                            "{PID_ATTEMPTS} forks missed PID {} (other forks took it first)",
                            first.unwrap_or_default()
                        ));
                    }
                    continue;
                }
                if let Some(problem) = sys::exit_problem(status) {
                    return Err(format!("child {pid} {problem}"));
                }
                first = Some(pid);
                served += 1;
            }
        }
    }
    drop(report_w);
    crate::server::pingpong_close(&stream, tally)?;

    let children = child_reports(report_r)?;
    if children.len() as u64 != o.count {
        return Err(format!(
            "{} exchanges but {} child reports",
            o.count,
            children.len()
        ));
    }
    let mut report = Report::single("server", o.scenario.name(), tally);
    for r in &children {
        let entry = report.per_pid.entry(r.pid).or_default();
        entry.0 += r.sent;
        entry.1 += r.received;
    }
    report.extra.insert(
        "children".into(),
        children.into_iter().map(|r| r.line).collect(),
    );
    report.extra.insert("pid_misses".into(), json!(misses));
    Ok(report)
}

pub(crate) fn exec_plan(
    path: &std::path::Path,
    stream: &TcpStream,
    report_fd: RawFd,
    o: &Options,
) -> Result<sys::ExecPlan, String> {
    let path = path.to_str().ok_or("--reexec path is not UTF-8")?;
    let args: Vec<String> = [
        path,
        "conn-child",
        "--fd",
        &stream.as_raw_fd().to_string(),
        "--report-fd",
        &report_fd.to_string(),
        "--size",
        &o.size.to_string(),
        "--timeout-secs",
        &o.timeout.as_secs().to_string(),
        "--deadline-secs",
        &o.deadline_secs.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sys::ExecPlan::new(path, &args).map_err(|e| format!("exec args: {e}"))
}

/// The per-connection work of a child, whether forked or re-exec'd. It
/// waits for the first byte with poll(), not inside a read: a child may be
/// made before netio starts, and a read already blocked when netio attaches
/// returns unseen by fexit and kretprobe programs.
pub(crate) fn serve_child(stream: &TcpStream, size: u64, report_fd: RawFd) -> Result<(), String> {
    let tally = Tally::default();
    sys::wait_readable(stream, stream.read_timeout().ok().flatten())
        .map_err(|e| format!("wait for the first byte: {e}"))?;
    handle_bulk(stream, size, &tally)?;
    report_to_parent(&tally, report_fd)
}

/// One child's report, as `report_to_parent` wrote it.
pub(crate) struct ChildReport {
    pub pid: u32,
    pub sent: u64,
    pub received: u64,
    pub line: Value,
}

/// Reads the children's reports, once every child holding the pipe's write
/// end has exited.
pub(crate) fn child_reports(report_r: std::os::fd::OwnedFd) -> Result<Vec<ChildReport>, String> {
    let mut text = String::new();
    std::fs::File::from(report_r)
        .read_to_string(&mut text)
        .map_err(|e| format!("read child reports: {e}"))?;
    parse_reports(&text)
}

/// The children's report lines, one JSON object each.
fn parse_reports(text: &str) -> Result<Vec<ChildReport>, String> {
    text.lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).map_err(|e| format!("child report {line:?}: {e}"))?;
            let field = |k: &str| {
                v.get(k)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("child report {line:?} lacks {k}"))
            };
            Ok(ChildReport {
                pid: field("pid")? as u32,
                sent: field("sent")?,
                received: field("received")?,
                line: v,
            })
        })
        .collect()
}

/// A child's one report line: its PID, name and bytes.
fn report_to_parent(tally: &Tally, report_fd: RawFd) -> Result<(), String> {
    let line = format!(
        "{}\n",
        json!({"pid": sys::pid(), "comm": sys::comm(), "sent": tally.sent(), "received": tally.received()})
    );
    write_all_fd(report_fd, line.as_bytes()).map_err(|e| format!("report to parent: {e}"))
}

/// A raw write: the report fd is shared with the parent and siblings and
/// must not be closed by a File wrapper going out of scope.
pub(crate) fn write_all_fd(fd: RawFd, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Entry point of a re-exec'd child (`netio-traffic conn-child`).
pub fn conn_child(o: &Options) -> Result<Option<Report>, String> {
    let fd = o.fd.expect("checked by the parser");
    let report_fd = o.report_fd.expect("checked by the parser");
    // SAFETY: the parent handed us this connected socket's fd and nothing
    // else in this fresh image owns it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    crate::net::set_timeouts(&stream, o.timeout).map_err(|e| format!("socket timeouts: {e}"))?;
    serve_child(&stream, o.size, report_fd)?;
    Ok(None)
}
