//! The server side of every scenario. This is normally the tracked process,
//! so each handler uses exactly the system call the scenario is about and
//! counts that call's return values.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::cli::{Options, Scenario};
use crate::tally::{recv_exact, recv_to_eof, send_counted, Report, Tally, CHUNK};
use crate::{forking, handover, identity, net, sys};

/// Scenario-specific facts worth showing in the report (e.g. how many
/// bytes were peeked); summed across connections.
pub type Extra = Map<String, Value>;

fn merge(into: &mut Extra, from: Extra) {
    for (k, v) in from {
        let add = v.as_u64().unwrap_or(0);
        let old = into.get(&k).and_then(Value::as_u64).unwrap_or(0);
        into.insert(k, json!(old + add));
    }
}

fn io_ctx(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub fn run(o: &Options) -> Result<Option<Report>, String> {
    let ep = o.endpoint();
    let listener = net::listen_on(&ep).map_err(|e| format!("listen on {ep}: {e}"))?;
    // The source file exists before the port is announced so that the
    // client never waits on file creation.
    let source = match o.scenario {
        Scenario::Sendfile => Some(make_source_file(o)?),
        _ => None,
    };
    announce(&ep, &listener)?;

    let tally = Tally::default();
    let mut extra = Extra::new();
    match o.scenario {
        Scenario::Threaded | Scenario::Paced => serve_threaded(&listener, o, &tally)?,
        Scenario::Forking => return forking::serve(&listener, o, &tally).map(Some),
        Scenario::PidReuse => return forking::serve_pid_reuse(&listener, o, &tally).map(Some),
        Scenario::Zombie => return identity::serve_zombie(&listener, o, &tally).map(Some),
        Scenario::LeaderExit => identity::serve_leader_exit(listener, o),
        Scenario::Escape => return identity::serve_escape(&listener, o, &tally).map(Some),
        Scenario::HandOver => return handover::serve(&listener, o).map(Some),
        Scenario::PingPong | Scenario::Scm => {
            // --count is the number of exchanges, all on one connection.
            let (stream, peer) = net::accept(&listener, o.timeout).map_err(io_ctx("accept"))?;
            tally.connection(peer.ip());
            merge(&mut extra, handle(&stream, o, None, &tally)?);
        }
        _ => {
            for _ in 0..o.count {
                let (stream, peer) = net::accept(&listener, o.timeout).map_err(io_ctx("accept"))?;
                tally.connection(peer.ip());
                merge(&mut extra, handle(&stream, o, source.as_ref(), &tally)?);
            }
        }
    }
    let mut report = Report::single("server", o.scenario.name(), &tally);
    report.extra = extra;
    Ok(Some(report))
}

/// The line a client waits for: the port, and a Unix socket's path (port 0).
fn announce(ep: &net::Endpoint, listener: &TcpListener) -> Result<(), String> {
    let line = match ep {
        net::Endpoint::Tcp(_) => {
            let port = listener.local_addr().map_err(io_ctx("local_addr"))?.port();
            json!({ "port": port })
        }
        net::Endpoint::Unix(u) => json!({ "port": 0, "path": u.path.display().to_string() }),
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(io_ctx("write port line"))
}

/// Creates the sendfile source and unlinks it at once: the open fd keeps
/// the data alive and nothing is left behind if the process is killed.
fn make_source_file(o: &Options) -> Result<File, String> {
    let dir = o.dir.clone().unwrap_or_else(std::env::temp_dir);
    let path: PathBuf = dir.join(format!("netio-traffic-sendfile-{}.bin", sys::pid()));
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("create {}: {e}", path.display()))?;
    let _ = std::fs::remove_file(&path);
    let block: Vec<u8> = (0..CHUNK).map(|i| (i % 253) as u8).collect();
    let mut left = o.size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&block[..n])
            .map_err(io_ctx("fill sendfile source"))?;
        left -= n as u64;
    }
    Ok(f)
}

fn handle(
    stream: &TcpStream,
    o: &Options,
    source: Option<&File>,
    tally: &Tally,
) -> Result<Extra, String> {
    match o.scenario {
        Scenario::Bulk | Scenario::Threaded | Scenario::Forking => {
            handle_bulk(stream, o.size, tally)
        }
        Scenario::WaitAll => handle_waitall(stream, o, tally),
        Scenario::Peek => handle_peek(stream, o, tally),
        Scenario::Sendfile => handle_sendfile(stream, o, source.expect("made in run"), tally),
        Scenario::Splice => handle_splice(stream, o, tally, false),
        Scenario::SpliceEcho => handle_splice(stream, o, tally, true),
        Scenario::Short => handle_short(stream, o, tally),
        Scenario::PingPong => handle_pingpong(stream, o, tally),
        Scenario::Paced => handle_echo(stream, tally),
        Scenario::PidReuse => unreachable!("served by forking::serve_pid_reuse"),
        Scenario::Zombie | Scenario::LeaderExit | Scenario::Escape => {
            unreachable!("served in identity.rs")
        }
        Scenario::HandOver => unreachable!("served in handover.rs"),
        Scenario::Scm => handle_scm(stream, o, tally),
    }
}

/// Each of the client's --count requests arrives with a descriptor passed
/// in SCM_RIGHTS (closed here); each gets its --reply. Only the payload
/// counts: recvmsg's return, never the ancillary data.
fn handle_scm(stream: &TcpStream, o: &Options, tally: &Tally) -> Result<Extra, String> {
    let mut buf = vec![0u8; o.request as usize];
    let mut fds = 0;
    for i in 0..o.count {
        let mut got = 0;
        while got < buf.len() {
            let (n, passed) = crate::unix::recv_with_fds(stream, &mut buf[got..])
                .map_err(|e| format!("request {i}: {e}"))?;
            if n == 0 {
                return Err(format!("the client closed in request {i}"));
            }
            tally.add_received(n);
            fds += passed;
            got += n;
        }
        send_counted(stream, o.reply, CHUNK, Duration::ZERO, tally)
            .map_err(|e| format!("reply {i}: {e}"))?;
    }
    recv_to_eof(stream, tally).map_err(io_ctx("wait for close"))?;
    finish(stream)?;
    let mut extra = Extra::new();
    extra.insert("fds_received".into(), json!(fds));
    Ok(extra)
}

/// Reads everything the client sends, then answers with `size` bytes. Also
/// the per-connection work of the threaded and forking servers.
pub fn handle_bulk(stream: &TcpStream, size: u64, tally: &Tally) -> Result<Extra, String> {
    recv_to_eof(stream, tally).map_err(io_ctx("bulk receive"))?;
    send_counted(stream, size, CHUNK, Duration::ZERO, tally).map_err(io_ctx("bulk send"))?;
    finish(stream)?;
    Ok(Extra::new())
}

/// Half-closes so the client sees EOF after our last byte.
fn finish(stream: &TcpStream) -> Result<(), String> {
    stream.shutdown(Shutdown::Write).map_err(io_ctx("shutdown"))
}

/// One recv(MSG_WAITALL) for the whole trickled payload. Should the kernel
/// return early (a signal, a timeout), the remainder is read with further
/// MSG_WAITALL calls and the number of calls is reported.
fn handle_waitall(stream: &TcpStream, o: &Options, tally: &Tally) -> Result<Extra, String> {
    let mut buf = vec![0u8; o.size as usize];
    let mut got = 0usize;
    let mut calls = 0u64;
    while got < buf.len() {
        let n = sys::recv(stream, &mut buf[got..], libc::MSG_WAITALL)
            .map_err(io_ctx("recv(MSG_WAITALL)"))?;
        calls += 1;
        if n == 0 {
            return Err(format!("peer closed after {got} of {} bytes", buf.len()));
        }
        tally.add_received(n);
        got += n;
    }
    send_counted(stream, o.reply, CHUNK, Duration::ZERO, tally).map_err(io_ctx("reply"))?;
    finish(stream)?;
    let trailing = recv_to_eof(stream, tally).map_err(io_ctx("drain"))?;
    let mut extra = Extra::new();
    extra.insert("waitall_calls".into(), json!(calls));
    extra.insert("trailing_bytes".into(), json!(trailing));
    Ok(extra)
}

/// Peeks every chunk twice (once fully, once partly) before consuming it
/// with a normal read: peeked bytes must not count as received.
fn handle_peek(stream: &TcpStream, o: &Options, tally: &Tally) -> Result<Extra, String> {
    let mut buf = vec![0u8; CHUNK];
    let mut peeked = 0u64;
    let mut peeks = 0u64;
    loop {
        let n = sys::recv(stream, &mut buf, libc::MSG_PEEK).map_err(io_ctx("recv(MSG_PEEK)"))?;
        if n == 0 {
            break;
        }
        let again = sys::recv(stream, &mut buf[..n.div_ceil(2)], libc::MSG_PEEK)
            .map_err(io_ctx("second recv(MSG_PEEK)"))?;
        peeked += (n + again) as u64;
        peeks += 2;
        recv_exact(stream, n, tally).map_err(io_ctx("read after peek"))?;
    }
    send_counted(stream, o.reply, CHUNK, Duration::ZERO, tally).map_err(io_ctx("reply"))?;
    finish(stream)?;
    let mut extra = Extra::new();
    extra.insert("peeked_bytes".into(), json!(peeked));
    extra.insert("peek_calls".into(), json!(peeks));
    Ok(extra)
}

fn handle_sendfile(
    stream: &TcpStream,
    o: &Options,
    source: &File,
    tally: &Tally,
) -> Result<Extra, String> {
    let mut offset: libc::off_t = 0;
    let mut calls = 0u64;
    while (offset as u64) < o.size {
        let want = (o.size - offset as u64).min(4 * 1024 * 1024) as usize;
        let n = sys::sendfile(stream, source, &mut offset, want).map_err(io_ctx("sendfile"))?;
        if n == 0 {
            return Err(format!("sendfile stopped at {offset} of {} bytes", o.size));
        }
        calls += 1;
        tally.add_sent(n);
    }
    finish(stream)?;
    recv_to_eof(stream, tally).map_err(io_ctx("drain"))?;
    let mut extra = Extra::new();
    extra.insert("sendfile_calls".into(), json!(calls));
    Ok(extra)
}

/// Moves the client's bytes socket -> pipe with splice, then either drains
/// the pipe into /dev/null (then replies with a plain write) or splices it
/// back into the socket (an echo whose both directions bypass read/write).
fn handle_splice(
    stream: &TcpStream,
    o: &Options,
    tally: &Tally,
    echo: bool,
) -> Result<Extra, String> {
    let (pipe_r, pipe_w) = sys::pipe().map_err(io_ctx("pipe"))?;
    let devnull = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(io_ctx("open /dev/null"))?;
    let sink = if echo {
        stream.as_raw_fd()
    } else {
        devnull.as_raw_fd()
    };
    let mut calls = 0u64;
    loop {
        let n = sys::splice(stream.as_raw_fd(), pipe_w.as_raw_fd(), CHUNK)
            .map_err(io_ctx("splice socket->pipe"))?;
        if n == 0 {
            break;
        }
        calls += 1;
        tally.add_received(n);
        let mut left = n;
        while left > 0 {
            let m = sys::splice(pipe_r.as_raw_fd(), sink, left)
                .map_err(io_ctx("splice out of pipe"))?;
            if m == 0 {
                return Err("splice out of the pipe moved nothing".into());
            }
            if echo {
                tally.add_sent(m);
            }
            left -= m;
        }
    }
    if !echo {
        send_counted(stream, o.reply, CHUNK, Duration::ZERO, tally).map_err(io_ctx("reply"))?;
    }
    finish(stream)?;
    let mut extra = Extra::new();
    extra.insert("splice_in_calls".into(), json!(calls));
    Ok(extra)
}

/// Echoes every chunk as it arrives, so the send rate follows the paced
/// client's; then half-closes once the client has.
fn handle_echo(stream: &TcpStream, tally: &Tally) -> Result<Extra, String> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match (&*stream).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("echo receive: {e}")),
        };
        tally.add_received(n);
        send_counted(stream, n as u64, CHUNK, Duration::ZERO, tally)
            .map_err(io_ctx("echo send"))?;
    }
    finish(stream)?;
    Ok(Extra::new())
}

/// A request/response exchange; the client closes first.
fn handle_short(stream: &TcpStream, o: &Options, tally: &Tally) -> Result<Extra, String> {
    recv_exact(stream, o.request as usize, tally).map_err(io_ctx("request"))?;
    send_counted(stream, o.reply, CHUNK, Duration::ZERO, tally).map_err(io_ctx("reply"))?;
    recv_to_eof(stream, tally).map_err(io_ctx("wait for close"))?;
    Ok(Extra::new())
}

/// Answers each of the client's --count requests in turn, then waits for
/// the client to close.
fn handle_pingpong(stream: &TcpStream, o: &Options, tally: &Tally) -> Result<Extra, String> {
    for _ in 0..o.count {
        pingpong_exchange(stream, o, tally)?;
    }
    pingpong_close(stream, tally)?;
    let mut extra = Extra::new();
    extra.insert("exchanges".into(), json!(o.count));
    Ok(extra)
}

/// One exchange of the ping-pong: the request in, the reply out.
pub fn pingpong_exchange(stream: &TcpStream, o: &Options, tally: &Tally) -> Result<(), String> {
    recv_exact(stream, o.request as usize, tally).map_err(io_ctx("request"))?;
    send_counted(stream, o.reply, CHUNK, Duration::ZERO, tally).map_err(io_ctx("reply"))
}

/// The ping-pong's end: waits for the client to close, then closes.
pub fn pingpong_close(stream: &TcpStream, tally: &Tally) -> Result<(), String> {
    recv_to_eof(stream, tally).map_err(io_ctx("wait for close"))?;
    finish(stream)
}

fn serve_threaded(listener: &TcpListener, o: &Options, tally: &Tally) -> Result<(), String> {
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for _ in 0..o.count {
            let (stream, peer) = net::accept(listener, o.timeout).map_err(io_ctx("accept"))?;
            tally.connection(peer.ip());
            workers.push(s.spawn(move || handle(&stream, o, None, tally)));
        }
        for w in workers {
            w.join()
                .map_err(|_| "connection thread panicked".to_string())??;
        }
        Ok(())
    })
}
