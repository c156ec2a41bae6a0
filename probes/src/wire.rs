//! The kernel's structs as the agent sees them: target ids, traffic keys
//! and counters, lifecycle events and loss counters, decoded from the
//! skeleton's types (netio.h), and the byte-level reads behind that.

use std::fmt;
use std::mem::size_of;
use std::net::IpAddr;

use crate::skel::types;

/// A target's id, the same from the agent's registry through the kernel's
/// maps and back. 16 bits: the width of the traffic key's field; the
/// tracking maps hold it in 32, and only this crate converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(u16);

impl From<u16> for TargetId {
    fn from(id: u16) -> Self {
        TargetId(id)
    }
}

impl TargetId {
    /// Its position in the registry that handed it out.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// As the traffic key holds it.
    pub(crate) fn to_key(self) -> u16 {
        self.0
    }

    /// As the tracking maps (`tracked`, `names`, `cgroups`) hold it.
    pub(crate) fn to_map(self) -> u32 {
        u32::from(self.0)
    }

    /// From a tracking map or an event. The kernel only copies ids this
    /// crate wrote, so one out of range means a corrupt entry.
    pub(crate) fn from_map(id: u32) -> Option<TargetId> {
        u16::try_from(id).ok().map(TargetId)
    }
}

/// A remote address, a Unix socket's peer process, or the per-process
/// bucket that takes the bytes of peers the full traffic map had no room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerAddr {
    Ip(IpAddr),
    Unix(UnixPeer),
    Local(LocalClient),
    Other,
}

/// A TCP client on a loopback address, named by the process that called
/// connect() (docs/kernels.md, "Local TCP clients"): the same address for
/// every local client, so the process tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalClient {
    pub ip: IpAddr,
    /// The process that connected: its PID in the initial PID namespace,
    /// and when it started, in ns since boot.
    pub pid: u32,
    pub started_ns: u64,
}

/// The process at the other end of a Unix stream or seqpacket socket, as
/// the socket's credentials name it (SO_PEERCRED): the one that connected
/// (or, seen from the connecting side, listened), not whoever uses its
/// socket since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixPeer {
    /// Its PID in the initial PID namespace.
    pub pid: u32,
    /// Its effective uid when it connected.
    pub uid: u32,
    /// When it started, in ns since boot; 0 when it had exited by the
    /// time its bytes were counted, so the PID may be another's now.
    pub started_ns: u64,
}

impl PeerAddr {
    /// The transport its bytes went over, as records name it (ECS
    /// `network.transport`); none for `other`, which folds every transport.
    pub fn transport(&self) -> Option<&'static str> {
        match self {
            PeerAddr::Ip(_) | PeerAddr::Local(_) => Some("tcp"),
            PeerAddr::Unix(_) => Some("unix"),
            PeerAddr::Other => None,
        }
    }

    /// The process at the other end, where the kernel named one: a Unix
    /// peer's, or a loopback TCP client's (its PID and start).
    pub fn process(&self) -> Option<(u32, u64)> {
        match self {
            PeerAddr::Unix(p) => Some((p.pid, p.started_ns)),
            PeerAddr::Local(c) => Some((c.pid, c.started_ns)),
            PeerAddr::Ip(_) | PeerAddr::Other => None,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(ip) => ip.fmt(f),
            PeerAddr::Local(c) => c.ip.fmt(f),
            PeerAddr::Unix(p) => write!(f, "unix:pid={},uid={}", p.pid, p.uid),
            PeerAddr::Other => f.write_str("other"),
        }
    }
}

const PEER_UNIX: u16 = types::netio_peer::PEER_UNIX.0 as u16;
const PEER_INET: u16 = types::netio_peer::PEER_INET.0 as u16;
const TARGET_MOVED: u16 = types::netio_owner::TARGET_MOVED.0 as u16;
const PEER_INET6: u16 = types::netio_peer::PEER_INET6.0 as u16;
const PEER_LOCAL4: u16 = types::netio_peer::PEER_LOCAL4.0 as u16;
const PEER_LOCAL6: u16 = types::netio_peer::PEER_LOCAL6.0 as u16;

/// A counter's key: one process (tgid and generation) and one peer. Or,
/// `moved`: bytes an untracked process (tgid) moved on a socket of the
/// tracked process with generation `gen`, counted for that one's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficKey {
    pub tgid: u32,
    pub gen: u32,
    pub target: TargetId,
    pub peer: PeerAddr,
    pub moved: bool,
    /// The peer epoch it was counted in (retire.rs); 0 in the keys handed
    /// out of this crate, which stand for every epoch's.
    pub(crate) epoch: u16,
    /// The key as the map holds it (with `epoch`), to delete it by.
    pub(crate) raw: RawKey,
}

/// A traffic key's bytes, as the map holds it.
pub(crate) type RawKey = [u8; size_of::<types::traffic_key>()];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficVal {
    pub sent: u64,
    pub received: u64,
}

impl TrafficKey {
    pub(crate) fn from_raw(bytes: &[u8]) -> Option<Self> {
        let k: types::traffic_key = read_pod(bytes)?;
        let peer = match k.family {
            PEER_INET => PeerAddr::Ip(IpAddr::from([k.addr[0], k.addr[1], k.addr[2], k.addr[3]])),
            PEER_INET6 => PeerAddr::Ip(IpAddr::from(k.addr)),
            PEER_UNIX => {
                let p: types::unix_peer = read_pod(&k.addr)?;
                PeerAddr::Unix(UnixPeer {
                    pid: p.pid,
                    uid: p.uid,
                    started_ns: p.started_ns,
                })
            }
            PEER_LOCAL4 | PEER_LOCAL6 => {
                let p: types::local_peer = read_pod(&k.addr)?;
                let ip = if k.family == PEER_LOCAL4 {
                    IpAddr::from(p.addr4.to_ne_bytes())
                } else {
                    IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                };
                PeerAddr::Local(LocalClient {
                    ip,
                    pid: p.pid,
                    started_ns: p.started_ns,
                })
            }
            _ => PeerAddr::Other,
        };
        let mut raw = [0u8; size_of::<types::traffic_key>()];
        let n = raw.len();
        raw.copy_from_slice(&bytes[..n]);
        Some(TrafficKey {
            tgid: k.tgid,
            gen: k.r#gen,
            target: TargetId::from(k.target & !TARGET_MOVED),
            peer,
            moved: k.target & TARGET_MOVED != 0,
            epoch: k.epoch,
            raw,
        })
    }

    /// The same counter in every epoch: the key with its epoch zeroed.
    pub(crate) fn every_epoch(&self) -> TrafficKey {
        let mut k: types::traffic_key = read_pod(&self.raw).expect("a traffic key's own bytes");
        k.epoch = 0;
        let mut out = *self;
        out.epoch = 0;
        out.raw.copy_from_slice(pod_bytes(&k));
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleKind {
    Exec,
    Fork,
    Exit,
    /// An untracked process moved bytes on a tracked one's socket (tgid
    /// the mover, ppid the owner, gen and target the owner's).
    Moved,
    /// A tracked process (ppid, gen, target) counted its first bytes with a
    /// Unix peer process (tgid, uid, comm and `started_ns` the peer's).
    UnixPeer,
    /// A tracked process (ppid, gen, target) owns a socket a loopback TCP
    /// client connected (tgid, uid, comm and `started_ns` the client's, as
    /// it called connect()).
    LocalClient,
}

/// How the kernel tracked a process at exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// It was tracked before and stays so (or it is a fork or exit).
    Inherited,
    /// Its name is a configured one's first 15 bytes or all of it: when it
    /// fills the 15 bytes, userspace confirms the full name.
    Name,
    /// Its cgroup is a target's.
    Cgroup,
    /// Its name fills the 15 bytes and matched, but it was tracked before
    /// or its cgroup is a target's: the kernel tracks it as that (under a
    /// new generation if for another target than the name's) until
    /// userspace confirms the full name.
    Prefix,
}

const MATCH_NAME: u32 = types::netio_match::MATCH_NAME.0;
const MATCH_CGROUP: u32 = types::netio_match::MATCH_CGROUP.0;
const MATCH_PREFIX: u32 = types::netio_match::MATCH_PREFIX.0;

impl Match {
    fn from_raw(m: u32) -> Match {
        match m {
            MATCH_NAME => Match::Name,
            MATCH_CGROUP => Match::Cgroup,
            MATCH_PREFIX => Match::Prefix,
            _ => Match::Inherited,
        }
    }
}

const EV_EXEC: u32 = types::netio_event_kind::EV_EXEC.0;
const EV_FORK: u32 = types::netio_event_kind::EV_FORK.0;
const EV_MOVED: u32 = types::netio_event_kind::EV_MOVED.0;
const EV_UNIX_PEER: u32 = types::netio_event_kind::EV_UNIX_PEER.0;
const EV_LOCAL_CLIENT: u32 = types::netio_event_kind::EV_LOCAL_CLIENT.0;

/// A process event from the kernel, for tracked processes, and for the
/// untracked ones that move bytes on their sockets.
#[derive(Debug, Clone)]
pub struct LifecycleEvent {
    pub kind: LifecycleKind,
    pub tgid: u32,
    pub ppid: u32,
    /// 0 when the kernel could not track it (tracked map full).
    pub gen: u32,
    pub target: TargetId,
    /// Exec: how the kernel tracked it.
    pub matched: Match,
    pub comm: String,
    pub filename: String,
    /// Its effective uid, global (not as a user namespace maps it).
    pub uid: u32,
    /// Exec: the file it exec'd, as the kernel knows it.
    pub exe: Option<KernelFileId>,
    /// UnixPeer and LocalClient: when the peer started.
    pub started_ns: u64,
}

impl LifecycleEvent {
    /// The peer process an EV_UNIX_PEER or EV_LOCAL_CLIENT names: its PID
    /// and start (PeerAddr::process), and its uid.
    pub fn peer_process(&self) -> Option<((u32, u64), u32)> {
        matches!(
            self.kind,
            LifecycleKind::UnixPeer | LifecycleKind::LocalClient
        )
        .then_some(((self.tgid, self.started_ns), self.uid))
    }
}

/// A file as the kernel knows it: its file system's device number (the
/// kernel's encoding: major in the top 12 bits, minor in the low 20) and
/// its inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFileId {
    pub major: u32,
    pub minor: u32,
    pub ino: u64,
}

impl KernelFileId {
    fn from_raw(dev: u32, ino: u64) -> Option<Self> {
        (ino != 0).then_some(KernelFileId {
            major: dev >> 20,
            minor: dev & 0xf_ffff,
            ino,
        })
    }
}

impl LifecycleEvent {
    /// An event as the ring buffer delivers it; None if it is short or
    /// names a target no one wrote.
    pub(crate) fn from_raw(data: &[u8]) -> Option<Self> {
        let e = read_pod::<types::lifecycle_event>(data)?;
        let kind = match e.kind {
            EV_EXEC => LifecycleKind::Exec,
            EV_FORK => LifecycleKind::Fork,
            EV_MOVED => LifecycleKind::Moved,
            EV_UNIX_PEER => LifecycleKind::UnixPeer,
            EV_LOCAL_CLIENT => LifecycleKind::LocalClient,
            _ => LifecycleKind::Exit,
        };
        let as_u8 = |s: &[std::ffi::c_char]| s.iter().map(|&c| c as u8).collect::<Vec<u8>>();
        Some(LifecycleEvent {
            kind,
            tgid: e.tgid,
            ppid: e.ppid,
            gen: e.r#gen,
            target: TargetId::from_map(e.target)?,
            matched: Match::from_raw(e.matched),
            comm: cstr(&as_u8(&e.comm)),
            filename: cstr(&as_u8(&e.filename)),
            uid: e.uid,
            exe: KernelFileId::from_raw(e.exe_dev, e.exe_ino),
            started_ns: e.started_ns,
        })
    }
}

/// Loss counters summed over CPUs (see `enum netio_stat` in netio.h).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub peer_overflow: u64,
    pub lost_events: u64,
    pub lost_bytes: u64,
    pub track_full: u64,
    pub events_dropped: u64,
    pub stash_full: u64,
    pub owner_full: u64,
    pub local_full: u64,
}

impl Stats {
    /// From the sum of each counter of the stats map.
    pub(crate) fn from_sums(sum: impl Fn(types::netio_stat) -> u64) -> Self {
        use types::netio_stat as s;
        Stats {
            peer_overflow: sum(s::STAT_PEER_OVERFLOW),
            lost_events: sum(s::STAT_LOST_EVENTS),
            lost_bytes: sum(s::STAT_LOST_BYTES),
            track_full: sum(s::STAT_TRACK_FULL),
            events_dropped: sum(s::STAT_EVENTS_DROPPED),
            stash_full: sum(s::STAT_STASH_FULL),
            owner_full: sum(s::STAT_OWNER_FULL),
            local_full: sum(s::STAT_LOCAL_FULL),
        }
    }
}

/// A struct of the skeleton from the bytes a map or the ring buffer gave.
pub(crate) fn read_pod<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked, T is a plain #[repr(C)] struct of
    // integers generated from netio.h, valid for any bit pattern.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A struct of the skeleton as the bytes a map takes.
pub(crate) fn pod_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is a #[repr(C)] struct of integers without padding holes
    // that matter to the kernel (keys are zero-initialised before use).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A NUL-terminated kernel string, lossily as UTF-8.
pub(crate) fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_bytes(family: u16, addr: &[u8]) -> Vec<u8> {
        let mut k = types::traffic_key {
            tgid: 7,
            r#gen: 9,
            target: 3,
            family,
            ..Default::default()
        };
        k.addr[..addr.len()].copy_from_slice(addr);
        pod_bytes(&k).to_vec()
    }

    #[test]
    fn traffic_keys_decode_each_peer_family() {
        let k = TrafficKey::from_raw(&key_bytes(PEER_INET, &[10, 0, 0, 1])).unwrap();
        assert_eq!((k.tgid, k.gen, k.target), (7, 9, TargetId::from(3)));
        assert_eq!(k.peer.to_string(), "10.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        let k = TrafficKey::from_raw(&key_bytes(PEER_INET6, &v6)).unwrap();
        assert_eq!(k.peer.to_string(), "::1");
        let unix = types::unix_peer {
            pid: 4242,
            uid: 33,
            started_ns: 5_000_000_000,
        };
        let k = TrafficKey::from_raw(&key_bytes(PEER_UNIX, pod_bytes(&unix))).unwrap();
        assert_eq!(
            k.peer,
            PeerAddr::Unix(UnixPeer {
                pid: 4242,
                uid: 33,
                started_ns: 5_000_000_000
            })
        );
        assert_eq!(k.peer.to_string(), "unix:pid=4242,uid=33");
        assert_eq!(k.peer.transport(), Some("unix"));
        let other = types::netio_peer::PEER_OTHER.0 as u16;
        let k = TrafficKey::from_raw(&key_bytes(other, &[])).unwrap();
        assert_eq!(k.peer, PeerAddr::Other);
        assert!(TrafficKey::from_raw(&[0u8; 4]).is_none());
        assert!(!k.moved);
    }

    #[test]
    fn a_moved_key_names_the_owners_target() {
        let mut raw = key_bytes(PEER_INET, &[10, 0, 0, 1]);
        let k: types::traffic_key = read_pod(&raw).unwrap();
        let moved = types::traffic_key {
            target: k.target | TARGET_MOVED,
            ..k
        };
        raw = pod_bytes(&moved).to_vec();
        let k = TrafficKey::from_raw(&raw).unwrap();
        assert!(k.moved);
        assert_eq!((k.tgid, k.gen, k.target), (7, 9, TargetId::from(3)));
    }

    #[test]
    fn lifecycle_events_decode_kind_match_and_names() {
        let mut e = types::lifecycle_event {
            kind: EV_FORK,
            tgid: 5,
            ppid: 4,
            r#gen: 2,
            target: 1,
            matched: types::netio_match::MATCH_NAME.0,
            ..Default::default()
        };
        for (dst, src) in e.comm.iter_mut().zip(b"postgres\0") {
            *dst = *src as _;
        }
        let d = LifecycleEvent::from_raw(pod_bytes(&e)).unwrap();
        assert_eq!(d.kind, LifecycleKind::Fork);
        assert_eq!((d.tgid, d.ppid, d.gen), (5, 4, 2));
        assert_eq!(d.target, TargetId::from(1));
        assert_eq!(d.matched, Match::Name);
        assert_eq!(d.comm, "postgres");
        assert_eq!(d.filename, "");
        assert_eq!((d.uid, d.exe), (0, None));
        e.uid = 105;
        e.exe_dev = (8 << 20) | 0x8_0001;
        e.exe_ino = 42;
        let d = LifecycleEvent::from_raw(pod_bytes(&e)).unwrap();
        let exe = KernelFileId {
            major: 8,
            minor: 0x8_0001,
            ino: 42,
        };
        assert_eq!((d.uid, d.exe), (105, Some(exe)));
        e.matched = types::netio_match::MATCH_CGROUP.0;
        e.kind = types::netio_event_kind::EV_EXIT.0;
        let d = LifecycleEvent::from_raw(pod_bytes(&e)).unwrap();
        assert_eq!(d.kind, LifecycleKind::Exit);
        assert_eq!(d.matched, Match::Cgroup);
        e.matched = types::netio_match::MATCH_PREFIX.0;
        assert_eq!(
            LifecycleEvent::from_raw(pod_bytes(&e)).unwrap().matched,
            Match::Prefix
        );
        e.matched = 0;
        assert_eq!(
            LifecycleEvent::from_raw(pod_bytes(&e)).unwrap().matched,
            Match::Inherited
        );
        e.target = u32::from(u16::MAX) + 1;
        assert!(LifecycleEvent::from_raw(pod_bytes(&e)).is_none());
    }
}
