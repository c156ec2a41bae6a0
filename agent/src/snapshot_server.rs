//! The local socket `netio top` reads the service's counters through
//! (`/run/netio/top.sock`, docs/top.md). One small thread answers one
//! client at a time; the sampling loop never waits on a client: it only
//! makes a fresh snapshot when the thread asks (an eventfd it polls with
//! its other fds) and hands it over. Only root is answered (the socket is
//! 0600 and the peer's credentials are checked), a request is one short
//! line read with a timeout, and the answer is bounded (snapshot.rs).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::snapshot::{self, Refusal, Snapshot};

/// A snapshot younger than this is answered as it is: two clients, or a
/// client that asks often, cost the loop at most one kernel read per this.
const FRESH: Duration = Duration::from_millis(250);

/// How long a client may take to send its request or read the answer, and
/// how long the thread waits for the loop's fresh snapshot.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

/// The socket's file beside the state file: `/run/netio/top.sock`.
pub fn path_for(dir: &netio_probes::PinDir) -> PathBuf {
    crate::state::path_for(dir).with_file_name("top.sock")
}

struct Latest {
    at: Option<Instant>,
    line: Arc<Vec<u8>>,
}

struct Shared {
    latest: Mutex<Latest>,
    fresh: Condvar,
    /// Written by the thread to ask the loop for a snapshot.
    wake: OwnedFd,
}

/// The served socket; removed when dropped (netio's exit).
pub struct Server {
    shared: Arc<Shared>,
    path: PathBuf,
    /// The socket file's (device, inode): removed at exit only if it is
    /// still this one, not that of a netio started since.
    file: (u64, u64),
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Server {
    /// Binds `path` (replacing what a netio that is gone left there: the
    /// caller holds the pin directory's lock) and starts the thread.
    pub fn start(path: &Path) -> io::Result<Server> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(path)?;
        // Until this chmod the file has the umask's mode: the peer check
        // below refuses anyone else who connects in that moment.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let file = file_id(path).unwrap_or_default();
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let shared = Arc::new(Shared {
            latest: Mutex::new(Latest {
                at: None,
                line: Arc::new(Vec::new()),
            }),
            fresh: Condvar::new(),
            // SAFETY: fd is ours, just made.
            wake: unsafe { OwnedFd::from_raw_fd(fd) },
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("netio-top".into())
            .spawn(move || serve(listener, &s))?;
        Ok(Server {
            shared,
            path: path.to_owned(),
            file,
        })
    }

    /// The fd the loop polls: readable when a client waits for a snapshot.
    pub fn wake_fd(&self) -> RawFd {
        self.shared.wake.as_raw_fd()
    }

    /// Whether a client asked for a snapshot since the last call.
    pub fn asked(&self) -> bool {
        let mut n = 0u64;
        // SAFETY: reads 8 bytes into n from our non-blocking eventfd.
        let r = unsafe { libc::read(self.wake_fd(), (&mut n as *mut u64).cast(), 8) };
        r == 8
    }

    /// Hands a snapshot to the thread, for the clients waiting and the
    /// next ones.
    pub fn publish(&self, s: &Snapshot) {
        let mut line = serde_json::to_vec(s).unwrap_or_default();
        line.push(b'\n');
        let mut latest = self.shared.latest.lock().unwrap_or_else(|e| e.into_inner());
        *latest = Latest {
            at: Some(Instant::now()),
            line: Arc::new(line),
        };
        self.shared.fresh.notify_all();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The pin directory's lock may be gone before this (run.rs drops
        // it first), and the next netio's socket in place.
        if file_id(&self.path) == Some(self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn serve(listener: UnixListener, shared: &Shared) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else {
            // EMFILE and the like: do not spin.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let _ = answer(conn, shared);
    }
}

fn answer(mut conn: UnixStream, shared: &Shared) -> io::Result<()> {
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    match peer_uid(&conn) {
        Some(0) => {}
        uid => {
            let why = format!(
                "only root may read netio's counters (the peer is uid {})",
                uid.map_or_else(|| "unknown".to_string(), |u| u.to_string())
            );
            return refuse(&mut conn, why);
        }
    }
    let request = read_request(&mut conn)?;
    if request != snapshot::request().trim_end() {
        let why = format!(
            "unknown request {request:?}: this netio speaks `{}`",
            snapshot::request().trim_end()
        );
        return refuse(&mut conn, why);
    }
    let line = fresh_line(shared);
    if line.is_empty() {
        return refuse(&mut conn, "netio has not read its counters yet".into());
    }
    write_within(&mut conn, &line)
}

/// Writes `buf` whole within CLIENT_TIMEOUT, or gives up: a client that
/// reads slowly cannot hold the thread longer.
fn write_within(conn: &mut UnixStream, mut buf: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.set_write_timeout(Some(left))?;
        let n = conn.write(buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// The request line, without its newline: at most MAX_REQUEST bytes,
/// within the read timeout.
fn read_request(conn: &mut UnixStream) -> io::Result<String> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; snapshot::MAX_REQUEST];
    while !buf.contains(&b'\n') {
        if buf.len() > snapshot::MAX_REQUEST || Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).into_owned())
}

/// The latest snapshot, after asking the loop for a new one if it is not
/// fresh; what there is if the loop does not answer in time.
fn fresh_line(shared: &Shared) -> Arc<Vec<u8>> {
    let asked = Instant::now();
    let mut latest = shared.latest.lock().unwrap_or_else(|e| e.into_inner());
    if latest.at.is_some_and(|at| asked.duration_since(at) < FRESH) {
        return latest.line.clone();
    }
    let one: u64 = 1;
    // SAFETY: writes 8 bytes to our eventfd.
    unsafe { libc::write(shared.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    let deadline = asked + CLIENT_TIMEOUT;
    while !matches!(latest.at, Some(at) if at >= asked) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        latest = shared
            .fresh
            .wait_timeout(latest, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    latest.line.clone()
}

fn refuse(conn: &mut UnixStream, error: String) -> io::Result<()> {
    let r = Refusal {
        protocol: snapshot::PROTOCOL,
        error,
    };
    let mut line = serde_json::to_vec(&r).unwrap_or_default();
    line.push(b'\n');
    write_within(conn, &line)
}

/// The connecting process's uid, from the kernel (SO_PEERCRED).
fn peer_uid(conn: &UnixStream) -> Option<u32> {
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most len bytes into cred.
    let r = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}
