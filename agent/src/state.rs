//! What a netio hands the next one with its pinned programs: the counters'
//! values it last reported, the target ids and the processes it tracked,
//! written after every interval to a file beside the pins' runtime
//! directory, so that a netio started after a stop or a crash reports
//! exactly what the last one had not (docs/kernels.md, "Pinned state").

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netio_probes::{
    Fallback, LocalClient, PeerAddr, PinDir, Stats, TargetId, TrafficVal, UnixPeer,
};
use serde::{Deserialize, Serialize, Serializer};

use crate::interval::Counter;

/// One counter as last reported: (tgid, gen, target, peer or "other",
/// sent, received).
pub type SavedCounter = (u32, u32, u16, String, u64, u64);

/// A tracked process as the records name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedProc {
    pub tgid: u32,
    pub gen: u32,
    pub target: u16,
    pub comm: String,
    pub uid: Option<u32>,
    pub exe: Option<String>,
    pub start: Option<u64>,
    pub ignored: bool,
    pub sent: u64,
    pub received: u64,
}

/// The whole hand-over, as one JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The pinned set it was written for (pin.rs, Meta::id).
    pub pin_id: u64,
    /// The netio that wrote it.
    pub version: String,
    /// When it was written (the end of that netio's last interval), and
    /// since when the pinned programs track: Unix milliseconds.
    pub written_ms: u64,
    pub tracking_since_ms: u64,
    /// Target names by id: ids persist, so a restart with other targets
    /// attributes adopted counters to the targets they were counted for.
    pub registry: Vec<String>,
    pub next_user_gen: u32,
    pub counters: Vec<SavedCounter>,
    /// Per target id: sent, received, events, peers_folded.
    pub fallbacks: Vec<(u16, [u64; 4])>,
    pub procs: Vec<SavedProc>,
    /// The loss counters in `enum netio_stat`'s order; a shorter list
    /// (an older netio's) reads as zeros for the counters it lacks.
    pub stats: Vec<u64>,
}

/// The document `State` reads, as a running netio writes it: its two long
/// lists (a counter per process and peer, every tracked process) taken from
/// their owners one element at a time rather than copied first, which at
/// 10,000 processes would add megabytes to netio's peak memory every
/// interval.
#[derive(Serialize)]
#[serde(bound = "")]
pub struct StateView<'a, C, P>
where
    C: Iterator<Item = SavedCounter>,
    P: Iterator<Item = SavedProc>,
{
    pub pin_id: u64,
    pub version: &'a str,
    pub written_ms: u64,
    pub tracking_since_ms: u64,
    pub registry: &'a [String],
    pub next_user_gen: u32,
    pub counters: Streamed<C>,
    pub fallbacks: Vec<(u16, [u64; 4])>,
    pub procs: Streamed<P>,
    pub stats: Vec<u64>,
}

/// A list serialized from an iterator, as it yields (once).
pub struct Streamed<I>(RefCell<Option<I>>);

impl<I> Streamed<I> {
    pub fn new(items: I) -> Self {
        Streamed(RefCell::new(Some(items)))
    }
}

impl<I> Serialize for Streamed<I>
where
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self.0.borrow_mut().take().ok_or_else(|| {
            <S::Error as serde::ser::Error>::custom("a streamed list is written once")
        })?;
        s.collect_seq(items)
    }
}

/// Where the state of the set pinned in `dir` is written: under /run, in a
/// directory named as the pin directory (`/run/netio/state.json`).
pub fn path_for(dir: &PinDir) -> PathBuf {
    let name = dir
        .path()
        .file_name()
        .map_or_else(|| "netio".into(), |n| n.to_string_lossy().into_owned());
    Path::new("/run").join(name).join("state.json")
}

/// Holds the pin directory for this netio alone while it runs: a second
/// netio must neither adopt the programs of one that still runs nor pin
/// over them. The lock goes with the process, a crash included.
pub fn lock(dir: &PinDir) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let path = path_for(dir).with_file_name("lock");
    let fail = |e: io::Error| format!("cannot lock {}: {e}", path.display());
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/"))).map_err(fail)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(fail)?;
    // SAFETY: flock on an fd this function owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(format!(
                "another netio runs with {} ({} is locked)",
                dir.path().display(),
                path.display()
            ));
        }
        return Err(fail(e));
    }
    Ok(f)
}

/// Writes the state (a `State` or a `StateView`) whole or not at all: a
/// netio killed while writing leaves the last state, never half of one.
pub fn write(state: &impl Serialize, path: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    // Streamed to the file: at 10,000 processes the document is megabytes,
    // which a buffer would add to netio's peak memory every interval.
    let mut f = io::BufWriter::new(std::fs::File::create(&tmp)?);
    serde_json::to_writer(&mut f, state).map_err(io::Error::other)?;
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl State {
    /// The state in `path`, if there is one that parses.
    pub fn read(path: &Path) -> Option<State> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// How long ago it was written: the gap the next interval covers.
    pub fn age(&self, now: SystemTime) -> Duration {
        Duration::from_millis(unix_ms(now).saturating_sub(self.written_ms))
    }
}

pub fn save_counter(c: &Counter, v: TrafficVal) -> SavedCounter {
    let peer = match c.peer {
        PeerAddr::Ip(ip) => ip.to_string(),
        PeerAddr::Unix(p) => format!("unix:{}:{}:{}", p.pid, p.uid, p.started_ns),
        PeerAddr::Local(c) => format!("local:{}:{}:{}", c.pid, c.started_ns, c.ip),
        PeerAddr::Other => "other".into(),
    };
    let target = c.target.index() as u16;
    (c.process.0, c.process.1, target, peer, v.sent, v.received)
}

pub fn load_counter(s: &SavedCounter) -> Option<(Counter, TrafficVal)> {
    let (tgid, gen, target, peer, sent, received) = s;
    let peer = match peer.as_str() {
        "other" => PeerAddr::Other,
        p if p.starts_with("unix:") => {
            let mut f = p["unix:".len()..].split(':');
            let unix = UnixPeer {
                pid: f.next()?.parse().ok()?,
                uid: f.next()?.parse().ok()?,
                started_ns: f.next()?.parse().ok()?,
            };
            PeerAddr::Unix(unix)
        }
        p if p.starts_with("local:") => {
            let mut f = p["local:".len()..].splitn(3, ':');
            let local = LocalClient {
                pid: f.next()?.parse().ok()?,
                started_ns: f.next()?.parse().ok()?,
                ip: f.next()?.parse().ok()?,
            };
            PeerAddr::Local(local)
        }
        ip => PeerAddr::Ip(ip.parse::<IpAddr>().ok()?),
    };
    let c = Counter {
        process: (*tgid, *gen),
        target: TargetId::from(*target),
        peer,
    };
    let v = TrafficVal {
        sent: *sent,
        received: *received,
    };
    Some((c, v))
}

pub fn save_fallback(id: TargetId, f: &Fallback) -> (u16, [u64; 4]) {
    let v = [f.sent, f.received, f.events, f.peers_folded];
    (id.index() as u16, v)
}

pub fn load_fallback(s: &(u16, [u64; 4])) -> (TargetId, Fallback) {
    let [sent, received, events, peers_folded] = s.1;
    let f = Fallback {
        sent,
        received,
        events,
        peers_folded,
    };
    (TargetId::from(s.0), f)
}

pub fn save_stats(s: &Stats) -> Vec<u64> {
    vec![
        s.peer_overflow,
        s.lost_events,
        s.lost_bytes,
        s.track_full,
        s.events_dropped,
        s.stash_full,
        s.owner_full,
        s.local_full,
    ]
}

pub fn load_stats(s: &[u64]) -> Stats {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    Stats {
        peer_overflow: at(0),
        lost_events: at(1),
        lost_bytes: at(2),
        track_full: at(3),
        events_dropped: at(4),
        stash_full: at(5),
        owner_full: at(6),
        local_full: at(7),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_loads_as_saved() {
        let c = Counter {
            process: (7, 9),
            target: TargetId::from(3),
            peer: PeerAddr::Ip("::1".parse().unwrap()),
        };
        let v = TrafficVal {
            sent: 5,
            received: 6,
        };
        assert_eq!(load_counter(&save_counter(&c, v)), Some((c, v)));
        let other = Counter {
            peer: PeerAddr::Other,
            ..c
        };
        assert_eq!(load_counter(&save_counter(&other, v)), Some((other, v)));
        let unix = Counter {
            peer: PeerAddr::Unix(UnixPeer {
                pid: 4242,
                uid: 33,
                started_ns: 123_456_789,
            }),
            ..c
        };
        assert_eq!(load_counter(&save_counter(&unix, v)), Some((unix, v)));
    }

    #[test]
    fn the_state_is_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("netio-state-{}", std::process::id()));
        let path = dir.join("state.json");
        let mut s = State {
            pin_id: 1,
            version: "0".into(),
            written_ms: 10,
            tracking_since_ms: 5,
            registry: vec!["db".into()],
            next_user_gen: 3,
            counters: vec![(1, 2, 0, "other".into(), 3, 4)],
            fallbacks: vec![(0, [1, 2, 3, 4])],
            procs: Vec::new(),
            stats: vec![0; 8],
        };
        write(&s, &path).unwrap();
        s.pin_id = 2;
        write(&s, &path).unwrap();
        assert_eq!(State::read(&path), Some(s));
        assert!(!path.with_extension("json.tmp").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_view_a_running_netio_writes_reads_back_as_the_state() {
        let procs = vec![SavedProc {
            tgid: 7,
            gen: 1,
            target: 0,
            comm: "postgres".into(),
            uid: Some(26),
            exe: Some("/usr/bin/postgres".into()),
            start: Some(99),
            ignored: false,
            sent: 10,
            received: 20,
        }];
        let s = State {
            pin_id: 4,
            version: "1.2".into(),
            written_ms: 10,
            tracking_since_ms: 5,
            registry: vec!["db".into(), "cache".into()],
            next_user_gen: 3,
            counters: vec![
                (7, 1, 0, "10.0.0.1".into(), 3, 4),
                (7, 1, 0, "other".into(), 5, 6),
            ],
            fallbacks: vec![(1, [1, 2, 3, 4])],
            procs: procs.clone(),
            stats: vec![1, 2, 3, 4, 5, 6, 7, 8],
        };
        let view = StateView {
            pin_id: s.pin_id,
            version: &s.version,
            written_ms: s.written_ms,
            tracking_since_ms: s.tracking_since_ms,
            registry: &s.registry,
            next_user_gen: s.next_user_gen,
            counters: Streamed::new(s.counters.clone().into_iter()),
            fallbacks: s.fallbacks.clone(),
            procs: Streamed::new(procs.into_iter()),
            stats: s.stats.clone(),
        };
        let written = serde_json::to_vec(&view).unwrap();
        assert_eq!(serde_json::from_slice::<State>(&written).unwrap(), s);
    }

    #[test]
    fn the_state_lives_under_run_named_as_the_pins() {
        let dir = PinDir("/sys/fs/bpf/netio".into());
        assert_eq!(path_for(&dir), Path::new("/run/netio/state.json"));
    }
}
