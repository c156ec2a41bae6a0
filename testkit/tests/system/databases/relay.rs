//! The ground truth of a database's Unix-socket clients: a relay in the
//! test's process between a client (mariadb, psql) and the server's
//! socket, counting every byte it hands the server and every byte the
//! server hands it. On a stream socket those are exactly the bytes the
//! server read and wrote on the connection, whatever the protocol.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::common::Bytes;

/// The longest a relayed connection may stay silent.
const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Bytes relayed, as the server sees them.
#[derive(Default)]
struct Counts {
    server_sent: AtomicU64,
    server_received: AtomicU64,
}

pub struct UnixRelay {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl UnixRelay {
    /// Listens at `path`; each connection there gets one to `server`.
    pub fn start(path: &Path, server: &Path) -> UnixRelay {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("relay: bind {}: {e}", path.display()));
        let (stop, counts) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Counts::default()),
        );
        let (stop2, counts2, server) = (stop.clone(), counts.clone(), server.to_owned());
        let acceptor = std::thread::spawn(move || {
            let mut pumps = Vec::new();
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let client = client.expect("relay: accept");
                let upstream = UnixStream::connect(&server)
                    .unwrap_or_else(|e| panic!("relay: connect {}: {e}", server.display()));
                // A connection that never ends fails the test, not hangs it.
                for s in [&client, &upstream] {
                    s.set_read_timeout(Some(IDLE_LIMIT))
                        .expect("relay: timeout");
                }
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (to, from) = (counts2.clone(), counts2.clone());
                pumps.push(std::thread::spawn(move || {
                    pump(client, upstream, Side::ToServer, &to.server_received)
                }));
                pumps.push(std::thread::spawn(move || {
                    pump(u2, c2, Side::FromServer, &from.server_sent)
                }));
            }
            pumps
        });
        UnixRelay {
            path: path.to_owned(),
            stop,
            counts,
            acceptor: Some(acceptor),
        }
    }

    /// Once every relayed connection has ended: the server's bytes on them.
    pub fn finish(mut self) -> Bytes {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor to see the stop.
        let _ = UnixStream::connect(&self.path);
        for pump in self
            .acceptor
            .take()
            .unwrap()
            .join()
            .expect("relay acceptor")
        {
            pump.join().expect("relay pump");
        }
        let _ = std::fs::remove_file(&self.path);
        Bytes {
            sent: self.counts.server_sent.load(Ordering::SeqCst),
            received: self.counts.server_received.load(Ordering::SeqCst),
        }
    }
}

/// Which way a pump moves bytes, which says when they are the server's.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    /// Counted once written: the server reads all it is given.
    ToServer,
    /// Counted once read: the server wrote them, taken or not.
    FromServer,
}

/// Copies `from` to `to` until `from` ends, adding the server's bytes to
/// `count`; then passes the end on.
fn pump(mut from: UnixStream, mut to: UnixStream, side: Side, count: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A client that hangs up with replies unread: what it sent is
            // counted, and it sends no more.
            Err(e) if side == Side::ToServer && e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("relay: read ({side:?}): {e}: the count is no longer exact"),
        };
        if side == Side::FromServer {
            count.fetch_add(n as u64, Ordering::SeqCst);
        }
        match to.write_all(&buf[..n]) {
            Ok(()) if side == Side::ToServer => {
                count.fetch_add(n as u64, Ordering::SeqCst);
            }
            Ok(()) => {}
            // The client gone: what the server wrote is counted already.
            Err(_) if side == Side::FromServer => {}
            Err(e) => {
                panic!("relay: the server stopped reading: {e}: the count is no longer exact")
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
