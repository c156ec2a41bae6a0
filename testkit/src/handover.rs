//! A socket handed to another process: the `hand-over` scenario's owner
//! (a server that accepts, or a client that connects) moves --parent-bytes
//! on its socket itself, then gives it to a waiting `take` process over a
//! Unix socket, by SCM_RIGHTS or by letting it take the descriptor with
//! pidfd_getfd, and closes its own copy once the taker has it. The taker
//! does the rest of a bulk exchange on it. Each counts its own bytes: the
//! owner's on the Unix socket too, apart in its report's `extra.channel`
//! with the peer the kernel names (SO_PEERCRED), since netio counts a
//! tracked process's Unix bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::{HandBy, Options};
use crate::net;
use crate::sys;
use crate::tally::{recv_exact, recv_to_eof, send_counted, Report, Tally, CHUNK};

fn ctx(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Becomes --uid, if given, staying open to pidfd_getfd by that user (a
/// change of credentials makes a process undumpable).
fn become_user(o: &Options) -> Result<(), String> {
    if let Some(uid) = o.uid {
        sys::drop_privileges(uid).map_err(ctx("drop privileges"))?;
        // SAFETY: a plain prctl.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    }
    Ok(())
}

/// The server owner: accepts one connection, reads and echoes
/// --parent-bytes, and hands the socket over.
pub fn serve(listener: &std::net::TcpListener, o: &Options) -> Result<Report, String> {
    become_user(o)?;
    let tally = Tally::default();
    let (stream, peer) = net::accept(listener, o.timeout).map_err(ctx("accept"))?;
    tally.connection(peer.ip());
    if o.parent_bytes > 0 {
        recv_exact(&stream, o.parent_bytes as usize, &tally).map_err(ctx("owner read"))?;
        send_counted(&stream, o.parent_bytes, CHUNK, Duration::ZERO, &tally)
            .map_err(ctx("owner send"))?;
    }
    let channel = hand(stream, o)?;
    Ok(channel.into_report("server", &tally))
}

/// The client owner: connects, sends --parent-bytes, and hands the socket
/// over.
pub fn connect(o: &Options) -> Result<Report, String> {
    become_user(o)?;
    let tally = Tally::default();
    let addr = o.addr.expect("checked by the parser");
    let stream = net::connect(addr, o.timeout).map_err(ctx("connect"))?;
    tally.connection(addr.ip());
    if o.parent_bytes > 0 {
        send_counted(&stream, o.parent_bytes, CHUNK, Duration::ZERO, &tally)
            .map_err(ctx("owner send"))?;
    }
    let channel = hand(stream, o)?;
    Ok(channel.into_report("client", &tally))
}

/// The owner's bytes on the Unix socket to the taker, and who the kernel
/// says is on its other end.
struct Channel {
    sent: usize,
    received: usize,
    peer: libc::ucred,
}

impl Channel {
    /// The owner's report: its TCP bytes, and these apart in `extra`.
    fn into_report(self, role: &'static str, tally: &Tally) -> Report {
        let mut report = Report::single(role, "hand-over", tally);
        report.extra.insert(
            "channel".into(),
            serde_json::json!({
                "peer": format!("unix:pid={},uid={}", self.peer.pid, self.peer.uid),
                "sent": self.sent,
                "received": self.received,
            }),
        );
        report
    }
}

/// Gives `stream` to the taker at --hand-to and closes it once taken.
fn hand(stream: TcpStream, o: &Options) -> Result<Channel, String> {
    let path = o.hand_to.as_deref().ok_or("hand-over needs --hand-to")?;
    let deadline = Instant::now() + o.timeout;
    let mut conn = loop {
        match UnixStream::connect(path) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("connect {}: {e}", path.display())),
        }
    };
    let peer = peer_credentials(&conn).map_err(ctx("SO_PEERCRED"))?;
    let sent = match o.hand_by {
        HandBy::Scm => send_fd(&conn, stream.as_raw_fd()).map_err(ctx("SCM_RIGHTS"))?,
        HandBy::Getfd => {
            let msg = format!("getfd {} {}", sys::pid(), stream.as_raw_fd());
            conn.write_all(msg.as_bytes())
                .map_err(ctx("ask the taker"))?;
            msg.len()
        }
    };
    let mut ok = [0u8; 2];
    conn.read_exact(&mut ok)
        .map_err(ctx("wait for the taker"))?;
    drop(stream);
    Ok(Channel {
        sent,
        received: ok.len(),
        peer,
    })
}

/// The process at the other end of `conn`, as the kernel recorded it.
fn peer_credentials(conn: &UnixStream) -> io::Result<libc::ucred> {
    // SAFETY: getsockopt fills at most `len` bytes of a plain struct.
    unsafe {
        let mut cred: libc::ucred = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        let ret = libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        );
        sys::check(ret)?;
        Ok(cred)
    }
}

/// Sends `fd` with a 3-byte message; returns the bytes sent.
fn send_fd(conn: &UnixStream, fd: RawFd) -> io::Result<usize> {
    let mut data = *b"scm";
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a control buffer sized by CMSG_SPACE for one fd, filled
    // through the CMSG macros.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut control = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        sys::check_size(libc::sendmsg(conn.as_raw_fd(), &msg, 0))
    }
}

/// The message and the descriptor SCM_RIGHTS carried, if any.
fn recv_msg(conn: &UnixStream) -> io::Result<(String, Option<RawFd>)> {
    let mut data = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: as send_fd.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut control = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let n = libc::recvmsg(conn.as_raw_fd(), &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        let fd = (!cmsg.is_null() && (*cmsg).cmsg_type == libc::SCM_RIGHTS)
            .then(|| std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>()));
        Ok((
            String::from_utf8_lossy(&data[..n as usize]).into_owned(),
            fd,
        ))
    }
}

/// The descriptor `fd` of process `pid`, taken with pidfd_getfd.
fn take_fd(pid: i32, fd: i32) -> io::Result<RawFd> {
    // SAFETY: plain system calls on integers.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd as i32, fd, 0) };
    let err = io::Error::last_os_error();
    unsafe { libc::close(pidfd as i32) };
    if got < 0 {
        return Err(err);
    }
    Ok(got as RawFd)
}

/// The taker: listens at --hand-to, takes one socket, and does the rest of
/// a bulk exchange on it, as the server (read to EOF, send --size) or, with
/// --take-as client, the client (send --size, read to EOF).
pub fn take(o: &Options) -> Result<Option<Report>, String> {
    let path = o.hand_to.as_deref().ok_or("take needs --hand-to")?;
    let listener = listen(path)?;
    become_user(o)?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "{{\"ready\":1}}")
            .and_then(|_| out.flush())
            .map_err(ctx("ready line"))?;
    }
    let (mut conn, _) = listener.accept().map_err(ctx("accept the owner"))?;
    let (msg, passed) = recv_msg(&conn).map_err(ctx("read the owner"))?;
    let words: Vec<&str> = msg.split_whitespace().collect();
    let fd = match (passed, &words[..]) {
        (Some(fd), _) => fd,
        (None, ["getfd", pid, fd]) => {
            let (pid, fd) = (pid.parse().unwrap_or(0), fd.parse().unwrap_or(-1));
            take_fd(pid, fd).map_err(ctx("pidfd_getfd"))?
        }
        _ => return Err(format!("unexpected message {msg:?}")),
    };
    conn.write_all(b"ok").map_err(ctx("answer the owner"))?;
    // SAFETY: a descriptor this process now owns, of a TCP socket.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    net::set_timeouts(&stream, o.timeout).map_err(ctx("timeouts"))?;
    let tally = Tally::default();
    if o.take_as_client {
        send_counted(&stream, o.size, CHUNK, Duration::ZERO, &tally).map_err(ctx("send"))?;
        stream.shutdown(Shutdown::Write).map_err(ctx("shutdown"))?;
        recv_to_eof(&stream, &tally).map_err(ctx("read"))?;
    } else {
        recv_to_eof(&stream, &tally).map_err(ctx("read"))?;
        send_counted(&stream, o.size, CHUNK, Duration::ZERO, &tally).map_err(ctx("send"))?;
    }
    drop(stream);
    let _ = std::fs::remove_file(path);
    Ok(Some(Report::single("taker", "take", &tally)))
}

/// A Unix listener any user may connect to.
fn listen(path: &Path) -> Result<UnixListener, String> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .map_err(ctx("chmod the listener"))?;
    Ok(l)
}
