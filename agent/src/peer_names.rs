//! Who the peer processes of an interval are (Unix peers, loopback TCP
//! clients): the name of each, read from /proc once and only while its PID
//! is still the process the kernel saw (the start time the key holds), so a
//! PID reused since is never named for it; and each peer as its records
//! show it.

use std::collections::HashMap;

use netio_probes::PeerAddr;

use crate::discovery;
use crate::record::{Peer, PeerProcess};

/// A peer process as the kernel keys it: its PID and start (boot-time ns).
type ProcessKey = (u32, u64);

/// What is known of a peer process: its name, and its uid where the key
/// does not hold it (a loopback client's, as it connected).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Named {
    comm: Option<String>,
    uid: Option<u32>,
}

/// The names of the peer processes of the last interval, kept while they
/// have bytes: memory bounded by one interval's peers, and the names the
/// kernel sent of the peers of two.
#[derive(Debug, Default)]
pub struct PeerNames {
    known: HashMap<ProcessKey, Named>,
    /// Named by the kernel (EV_UNIX_PEER, EV_LOCAL_CLIENT) since the last
    /// update, and in the update before: a counter made after the read of
    /// an interval has its bytes in the next.
    heard: HashMap<ProcessKey, Named>,
    heard_before: HashMap<ProcessKey, Named>,
}

impl PeerNames {
    /// The kernel's word of a peer process's name and uid, read when it
    /// counted the first bytes with it or the connection was owned: the
    /// name of a peer that exits before the interval's end, which /proc no
    /// longer has.
    pub fn seen(&mut self, peer: ProcessKey, uid: u32, comm: String) {
        let named = Named {
            comm: Some(comm),
            uid: Some(uid),
        };
        self.heard.insert(peer, named);
    }

    /// Names the peer processes among `peers` not named yet, by the
    /// kernel's word or else /proc, and forgets those that are not among
    /// them.
    pub fn update<'a>(&mut self, peers: impl Iterator<Item = &'a PeerAddr>) {
        let mut now = HashMap::new();
        for peer in peers {
            let Some(p) = peer.process() else { continue };
            if now.contains_key(&p) {
                continue;
            }
            let heard = self
                .heard
                .remove(&p)
                .or_else(|| self.heard_before.remove(&p));
            let named = match heard {
                Some(named) => named,
                None => self.known.remove(&p).unwrap_or_else(|| named_by_proc(p)),
            };
            now.insert(p, named);
        }
        self.known = now;
        self.heard_before = std::mem::take(&mut self.heard);
    }

    /// The name of `peer`'s process, if it is a named peer process.
    pub fn comm(&self, peer: &PeerAddr) -> Option<&str> {
        let p = peer.process()?;
        self.known.get(&p).and_then(|n| n.comm.as_deref())
    }

    /// The peer as records show it, with its address as text in `address`.
    pub fn shown<'a>(&'a self, peer: &PeerAddr, address: &'a str) -> Peer<'a> {
        let process = match peer {
            PeerAddr::Unix(p) => Some(PeerProcess {
                pid: p.pid,
                uid: Some(p.uid),
                comm: self.comm(peer),
            }),
            PeerAddr::Local(c) => Some(PeerProcess {
                pid: c.pid,
                uid: self.known.get(&(c.pid, c.started_ns)).and_then(|n| n.uid),
                comm: self.comm(peer),
            }),
            PeerAddr::Ip(_) | PeerAddr::Other => None,
        };
        Peer {
            address,
            transport: peer.transport(),
            process,
        }
    }
}

/// The peer as one string no other peer shares: its address, and for a
/// loopback TCP client (whose address is every local client's) its PID.
pub fn distinct(peer: &PeerAddr) -> String {
    match peer {
        PeerAddr::Local(c) => format!("{} pid={}", c.ip, c.pid),
        _ => peer.to_string(),
    }
}

/// The peer's name and effective uid, if its PID is still the process that
/// started when the kernel said (0: it had exited already).
fn named_by_proc((pid, started_ns): ProcessKey) -> Named {
    if started_ns == 0 {
        return Named::default();
    }
    let start = ns_to_ticks(started_ns);
    match discovery::comm_if_started(pid, start) {
        Some(comm) => Named {
            comm: Some(comm),
            uid: discovery::euid_if_started(pid, start),
        },
        None => Named::default(),
    }
}

/// Boot-time ns as /proc/PID/stat's starttime, in clock ticks.
fn ns_to_ticks(ns: u64) -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ns / (1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use netio_probes::{LocalClient, UnixPeer};

    use super::*;

    fn own() -> UnixPeer {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ticks: u64 = rest.split(' ').nth(19).unwrap().parse().unwrap();
        // SAFETY: as above.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        UnixPeer {
            pid: std::process::id(),
            uid: 0,
            started_ns: ticks * (1_000_000_000 / hz) + 1,
        }
    }

    #[test]
    fn a_peer_is_named_only_while_its_pid_is_the_process_that_started_then() {
        let me = own();
        let reused = UnixPeer {
            started_ns: me.started_ns + 3_000_000_000,
            ..me
        };
        let exited = UnixPeer {
            started_ns: 0,
            ..me
        };
        let peers = [me, reused, exited].map(PeerAddr::Unix);
        let mut names = PeerNames::default();
        names.update(peers.iter());
        let comm = |p: &PeerAddr| names.shown(p, "").process.unwrap().comm.map(str::to_string);
        let expected = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(comm(&peers[0]).as_deref(), Some(expected.trim_end()));
        assert_eq!(comm(&peers[1]), None);
        assert_eq!(comm(&peers[2]), None);
        names.update(peers[..1].iter());
        assert_eq!(names.known.len(), 1);
    }

    #[test]
    fn the_kernels_name_stands_for_a_peer_that_exited_for_one_interval_more() {
        let gone = UnixPeer {
            pid: 4_000_000,
            uid: 33,
            started_ns: 7,
        };
        let mut names = PeerNames::default();
        names.seen((gone.pid, gone.started_ns), 33, "php-fpm".into());
        names.update(std::iter::empty());
        let peer = [PeerAddr::Unix(gone)];
        names.update(peer.iter());
        let comm = names.shown(&peer[0], "").process.unwrap().comm;
        assert_eq!(comm, Some("php-fpm"));
        names.seen((gone.pid, gone.started_ns), 33, "php-fpm".into());
        names.update(std::iter::empty());
        names.update(std::iter::empty());
        names.update(peer.iter());
        assert_eq!(names.shown(&peer[0], "").process.unwrap().comm, None);
    }

    #[test]
    fn a_loopback_client_is_named_with_its_uid_by_the_kernel_or_by_proc() {
        let me = own();
        let heard = LocalClient {
            ip: "127.0.0.9".parse().unwrap(),
            pid: 4_000_000,
            started_ns: 7,
        };
        let alive = LocalClient {
            ip: "::1".parse().unwrap(),
            pid: me.pid,
            started_ns: me.started_ns,
        };
        let mut names = PeerNames::default();
        names.seen((heard.pid, heard.started_ns), 33, "redis-cli".into());
        let peers = [PeerAddr::Local(heard), PeerAddr::Local(alive)];
        names.update(peers.iter());
        let p = names.shown(&peers[0], "127.0.0.9");
        let u = p.process.unwrap();
        assert_eq!(
            (p.transport, u.pid, u.uid, u.comm),
            (Some("tcp"), 4_000_000, Some(33), Some("redis-cli"))
        );
        let u = names.shown(&peers[1], "::1").process.unwrap();
        // SAFETY: geteuid only reads the caller's credentials.
        let euid = unsafe { libc::geteuid() };
        let expected = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!((u.uid, u.comm), (Some(euid), Some(expected.trim_end())));
        assert_eq!(distinct(&peers[0]), "127.0.0.9 pid=4000000");
        assert_eq!(
            peers[0].to_string(),
            "127.0.0.9",
            "the address stays an address"
        );
    }

    #[test]
    fn a_tcp_peer_shows_its_transport_and_no_process() {
        let names = PeerNames::default();
        let ip = PeerAddr::Ip("10.0.0.1".parse().unwrap());
        let p = names.shown(&ip, "10.0.0.1");
        assert_eq!((p.transport, p.process.is_none()), (Some("tcp"), true));
        assert_eq!(names.shown(&PeerAddr::Other, "other").transport, None);
    }
}
