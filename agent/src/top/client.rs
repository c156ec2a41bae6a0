//! Asks the running service for a snapshot over its socket
//! (snapshot_server.rs), and says what to do when no service answers.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::snapshot::{self, Refusal, Snapshot};

/// The service answers within a second; this leaves it room on a busy host.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The largest answer read: far above what MAX_ROWS allows a few targets.
const MAX_ANSWER: u64 = 64 << 20;

/// Where the service of this pin directory serves (the NETIO_PIN_DIR
/// knob's, else /run/netio/top.sock).
pub fn socket_path() -> PathBuf {
    let dir = crate::cli::pin_dir()
        .unwrap_or_else(|| netio_probes::PinDir(netio_probes::DEFAULT_PIN_DIR.into()));
    crate::snapshot_server::path_for(&dir)
}

/// One snapshot of the service's counters, or what to do to get one.
pub fn fetch(path: &Path) -> Result<Snapshot, String> {
    let mut conn = UnixStream::connect(path).map_err(|e| unreachable(path, &e))?;
    conn.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    conn.write_all(snapshot::request().as_bytes())
        .map_err(|e| format!("cannot ask the netio service at {}: {e}", path.display()))?;
    let mut line = String::new();
    let read = BufReader::new(io::Read::take(&conn, MAX_ANSWER)).read_line(&mut line);
    match read {
        Ok(0) => {
            return Err(format!(
                "the netio service at {} closed without answering",
                path.display()
            ))
        }
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Err(format!(
                "the netio service at {} did not answer within {} s",
                path.display(),
                TIMEOUT.as_secs()
            ))
        }
        Err(e) => return Err(format!("cannot read the netio service's answer: {e}")),
    }
    if let Ok(s) = serde_json::from_str::<Snapshot>(&line) {
        if s.protocol == snapshot::PROTOCOL {
            return Ok(s);
        }
    }
    match serde_json::from_str::<Refusal>(&line) {
        Ok(r) => Err(format!("the netio service refused: {}", r.error)),
        Err(_) => Err(format!(
            "the netio service at {} answered in a protocol this netio top does not \
             speak (it speaks version {}): use the netio top of the running netio's version",
            path.display(),
            snapshot::PROTOCOL
        )),
    }
}

/// Why the socket cannot be reached, with what to do about it.
fn unreachable(path: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "only root may read the netio service's counters ({}: {e}): run `sudo netio top`",
            path.display()
        ),
        _ => format!(
            "no running netio service answers at {} ({e}): start it (`systemctl start \
             netio`, or `netio run` as root) and run netio top again. netio top shows the \
             service's own counters; it has no --standalone mode that loads probes of its own",
            path.display()
        ),
    }
}
