//! Who the Unix peers of an interval are: the name of each peer process,
//! read from /proc once and only while its PID is still the process the
//! kernel saw (the start time the key holds), so a PID reused since is
//! never named for it; and each peer as its records show it.

use std::collections::HashMap;

use netio_probes::{PeerAddr, UnixPeer};

use crate::discovery;
use crate::record::{Peer, PeerProcess};

/// The names of the Unix peers of the last interval, kept while they have
/// bytes: memory bounded by one interval's peers, and the names the kernel
/// sent of the peers of two.
#[derive(Debug, Default)]
pub struct PeerNames {
    known: HashMap<UnixPeer, Option<String>>,
    /// Named by the kernel (EV_UNIX_PEER) since the last update, and in the
    /// update before: a counter made after the read of an interval has its
    /// bytes in the next.
    heard: HashMap<UnixPeer, String>,
    heard_before: HashMap<UnixPeer, String>,
}

impl PeerNames {
    /// The kernel's word of a peer's name, read when it counted the first
    /// bytes with it: the name of a peer that exits before the interval's
    /// end, which /proc no longer has.
    pub fn seen(&mut self, peer: UnixPeer, comm: String) {
        self.heard.insert(peer, comm);
    }

    /// Names the Unix peers among `peers` not named yet, by the kernel's
    /// word or else /proc, and forgets those that are not among them.
    pub fn update<'a>(&mut self, peers: impl Iterator<Item = &'a PeerAddr>) {
        let mut now = HashMap::new();
        for peer in peers {
            let PeerAddr::Unix(p) = peer else { continue };
            if now.contains_key(p) {
                continue;
            }
            let heard = self.heard.remove(p).or_else(|| self.heard_before.remove(p));
            let name = match heard {
                Some(comm) => Some(comm),
                None => self.known.remove(p).unwrap_or_else(|| comm_of(p)),
            };
            now.insert(*p, name);
        }
        self.known = now;
        self.heard_before = std::mem::take(&mut self.heard);
    }

    /// The name of `peer`'s process, if it is a named Unix peer.
    pub fn comm(&self, peer: &PeerAddr) -> Option<&str> {
        match peer {
            PeerAddr::Unix(p) => self.known.get(p).and_then(|c| c.as_deref()),
            _ => None,
        }
    }

    /// The peer as records show it, with its address as text in `address`.
    pub fn shown<'a>(&'a self, peer: &PeerAddr, address: &'a str) -> Peer<'a> {
        let process = match peer {
            PeerAddr::Unix(p) => Some(PeerProcess {
                pid: p.pid,
                uid: p.uid,
                comm: self.comm(peer),
            }),
            _ => None,
        };
        Peer {
            address,
            transport: peer.transport(),
            process,
        }
    }
}

/// The peer's name, if its PID is still the process that started when the
/// kernel said (0: it had exited already).
fn comm_of(p: &UnixPeer) -> Option<String> {
    if p.started_ns == 0 {
        return None;
    }
    discovery::comm_if_started(p.pid, ns_to_ticks(p.started_ns))
}

/// Boot-time ns as /proc/PID/stat's starttime, in clock ticks.
fn ns_to_ticks(ns: u64) -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ns / (1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
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
        names.seen(gone, "php-fpm".into());
        names.update(std::iter::empty());
        let peer = [PeerAddr::Unix(gone)];
        names.update(peer.iter());
        let comm = names.shown(&peer[0], "").process.unwrap().comm;
        assert_eq!(comm, Some("php-fpm"));
        names.seen(gone, "php-fpm".into());
        names.update(std::iter::empty());
        names.update(std::iter::empty());
        names.update(peer.iter());
        assert_eq!(names.shown(&peer[0], "").process.unwrap().comm, None);
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
