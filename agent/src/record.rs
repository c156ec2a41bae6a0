//! The records netio writes: every kind and every field is named here, once.
//! Sinks render a `Record`; they never invent fields. docs/records.md
//! documents the same names, and a test checks the two agree. How MESSAGE
//! is composed, and quoted, is in record/message.rs.

mod folded;
mod message;
mod repeats;

pub use message::printable;
use message::Message;
pub use repeats::mark_repeats;

use netio_probes::{Attempt, BackendReport};

use crate::human::{self, Scale};

/// The schema version in `NETIO_SCHEMA`: bumped when a field changes
/// meaning or goes away (adding one is compatible).
pub const SCHEMA: u64 = 1;

/// Field names, journal style: uppercase, `NETIO_` prefix.
pub mod field;

pub use field::valid_field_name;

/// Record kinds: the `NETIO_EVENT` value, a fixed `MESSAGE_ID` (explained
/// in packaging/netio.catalog for `journalctl -x`) and a syslog priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Started,
    Traffic,
    ThresholdExceeded,
    ThresholdReminder,
    ThresholdRecovered,
    ProcessAppeared,
    ProcessExited,
    ProcessesChanged,
    ConfigReloaded,
    ConfigRejected,
    Degraded,
    Stopping,
}

impl Kind {
    #[cfg(test)]
    pub const ALL: [Kind; 12] = [
        Kind::Started,
        Kind::Traffic,
        Kind::ThresholdExceeded,
        Kind::ThresholdReminder,
        Kind::ThresholdRecovered,
        Kind::ProcessAppeared,
        Kind::ProcessExited,
        Kind::ProcessesChanged,
        Kind::ConfigReloaded,
        Kind::ConfigRejected,
        Kind::Degraded,
        Kind::Stopping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::Traffic => "traffic",
            Kind::ThresholdExceeded => "threshold_exceeded",
            Kind::ThresholdReminder => "threshold_reminder",
            Kind::ThresholdRecovered => "threshold_recovered",
            Kind::ProcessAppeared => "process_appeared",
            Kind::ProcessExited => "process_exited",
            Kind::ProcessesChanged => "processes_changed",
            Kind::ConfigReloaded => "config_reloaded",
            Kind::ConfigRejected => "config_rejected",
            Kind::Degraded => "degraded",
            Kind::Stopping => "stopping",
        }
    }

    pub fn message_id(self) -> &'static str {
        match self {
            Kind::Started => "e0e90a05de1142d883189e240e88196e",
            Kind::Traffic => "6e6059a2f2b64d14920758e625c563d6",
            Kind::ThresholdExceeded => "c545973dce4b44e0859c49a47ab9ab19",
            Kind::ThresholdReminder => "c38dbace38b145a9a45ef3504669bcea",
            Kind::ThresholdRecovered => "7a8a09f12833467bb68f1df09f2a4a4a",
            Kind::ProcessAppeared => "aeff48f73f5f43ce81429b20998b84cd",
            Kind::ProcessExited => "ddbdc53f1b634302bbe99c87c97ee059",
            Kind::ProcessesChanged => "58441ecbc38d4570935c76c01b51fe64",
            Kind::ConfigReloaded => "cde7aabadddd4de48c5a418c4d0fb3e6",
            Kind::ConfigRejected => "1236841136694ed28b95ebb3ea034f53",
            Kind::Degraded => "c4a52bbde3c54f89b24d808f6d875fd5",
            Kind::Stopping => "dc22ca6f7e304a90a811672b022fa7e4",
        }
    }

    /// syslog priority: 3 error (a config refused), 4 warning (a threshold
    /// crossed, something lost), 5 notice (the agent's and the targets'
    /// lifecycle, a recovery), 6 info (routine measurements).
    pub fn priority(self) -> u8 {
        match self {
            Kind::ConfigRejected => 3,
            Kind::ThresholdExceeded | Kind::ThresholdReminder | Kind::Degraded => 4,
            Kind::Started
            | Kind::Stopping
            | Kind::ThresholdRecovered
            | Kind::ProcessAppeared
            | Kind::ProcessExited
            | Kind::ProcessesChanged
            | Kind::ConfigReloaded => 5,
            Kind::Traffic => 6,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Num(u64),
}

impl Value {
    /// The value as the text outputs carry it: numbers in decimal.
    pub fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => n.to_string(),
        }
    }
}

/// One record: an ordered list of fields, MESSAGE first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    kind: Kind,
    pub fields: Vec<(&'static str, Value)>,
    /// A traffic record whose numbers are those of the one narrower record
    /// after it (a target's only process, a process's only peer): not a
    /// field; the text output, which people read, leaves it out
    /// (`mark_repeats`, docs/records.md).
    pub repeated: bool,
}

/// What the started record tells: who started, on which kernel, with
/// which backend and why the others were passed over, counting what.
pub struct Started<'a> {
    pub version: &'a str,
    pub kernel: &'a str,
    pub report: &'a BackendReport,
    /// The backends tried before the one in use; those that failed say why.
    pub passed_over: &'a [Attempt],
    pub targets: &'a [String],
    pub processes: usize,
    /// What was taken over from pinned programs and the last netio.
    pub adoption: &'a crate::monitor::Adoption,
}

/// A backend's report as `NETIO_BACKEND_DETAIL` and `netio kernel` say it:
/// what is attached, then what it cannot see here, then why the socket path
/// is off, if it is.
pub fn backend_detail(r: &BackendReport) -> String {
    let mut attached: Vec<&str> = r.programs.iter().map(|p| p.name()).collect();
    attached.extend(r.drain_iterator.map(|p| p.name()));
    attached.extend(
        r.optional
            .iter()
            .flat_map(|g| g.progs.iter().map(|p| p.name())),
    );
    let mut detail = attached.join(", ");
    for spot in r.blind_spots() {
        detail.push_str("; ");
        detail.push_str(&spot.to_string());
    }
    if let Some(why) = &r.hash_path {
        let why = why.to_string();
        let first = why.lines().next().unwrap_or_default();
        detail.push_str(&format!(
            "; every counted event takes the hash path (no socket-local counters, \
             which need Linux 5.12+: {first})"
        ));
    }
    detail
}

impl Record {
    fn new(kind: Kind) -> Self {
        Record {
            kind,
            fields: vec![
                (field::MESSAGE, Value::Str(String::new())),
                (field::MESSAGE_ID, Value::Str(kind.message_id().into())),
                (field::PRIORITY, Value::Num(kind.priority().into())),
                (field::SYSLOG_IDENTIFIER, Value::Str("netio".into())),
                (field::EVENT, Value::Str(kind.name().into())),
                (field::SCHEMA, Value::Num(SCHEMA)),
            ],
            repeated: false,
        }
    }

    fn field_str(&self, name: &str) -> Option<&str> {
        self.fields.iter().find_map(|(n, v)| match v {
            Value::Str(s) if *n == name => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `MESSAGE` as text: what the outputs that carry only the summary show.
    pub fn summary(&self) -> String {
        self.fields
            .iter()
            .find(|(n, _)| *n == field::MESSAGE)
            .map(|(_, v)| v.text())
            .unwrap_or_default()
    }

    fn str(mut self, name: &'static str, v: impl Into<String>) -> Self {
        self.fields.push((name, Value::Str(v.into())));
        self
    }

    fn num(mut self, name: &'static str, v: u64) -> Self {
        self.fields.push((name, Value::Num(v)));
        self
    }

    fn message(mut self, m: Message) -> Self {
        self.fields[0].1 = Value::Str(m.done());
        self
    }

    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn started(s: &Started<'_>) -> Self {
        let backend = s.report.backend.name();
        let skipped: Vec<String> = s
            .passed_over
            .iter()
            .filter_map(|a| {
                a.result
                    .as_ref()
                    .err()
                    .map(|why| format!("{}: {why}", a.backend))
            })
            .collect();
        let passed = skipped.join("; ");
        let msg = Message::new("netio")
            .token(s.version)
            .words("started:")
            .str("backend", backend)
            .str("kernel", s.kernel)
            .str("targets", &s.targets.join(","))
            .num("processes", s.processes as u64)
            .opt_str("passed_over", (!passed.is_empty()).then_some(&passed))
            .str("pinning", s.adoption.pinning)
            .opt_str(
                "adopted",
                (!s.adoption.adopted_version.is_empty())
                    .then_some(s.adoption.adopted_version.as_str()),
            )
            .opt_num(
                "gap_ms",
                (s.adoption.pinning == "adopted").then_some(s.adoption.gap_ms),
            );
        Record::new(Kind::Started)
            .str(field::VERSION, s.version)
            .str(field::KERNEL, s.kernel)
            .str(field::BACKEND, backend)
            .str(field::BACKEND_DETAIL, backend_detail(s.report))
            .str(field::BACKENDS_PASSED_OVER, passed)
            .str(field::TARGETS, s.targets.join(","))
            .num(field::PROCESSES, s.processes as u64)
            .str(field::PINNING, s.adoption.pinning)
            .str(field::PINNING_DETAIL, &s.adoption.detail)
            .str(field::ADOPTED_VERSION, &s.adoption.adopted_version)
            .num(field::GAP_MS, s.adoption.gap_ms)
            .num(field::TRACKING_SINCE_MS, s.adoption.tracking_since_ms)
            .message(msg)
    }

    pub fn stopping(version: &str) -> Self {
        Record::new(Kind::Stopping)
            .str(field::VERSION, version)
            .message(Message::new("netio").token(version).words("stopping"))
    }

    /// A target's total bytes in one interval, with how many processes
    /// it has and how many peers they talked to; zeros included while it
    /// runs, so a silent database is visible as such.
    pub fn target_traffic(t: &TrafficFields<'_>, processes: u64, peers: u64) -> Self {
        let words = if processes == 0 && t.sent == 0 && t.received == 0 {
            "not running (no process):".to_string()
        } else {
            format!(
                "{}, {}, {}:",
                t.words(),
                human::count(processes, "process", "processes"),
                human::count(peers, "peer", "peers")
            )
        };
        let msg = Message::default()
            .str("target", t.target)
            .phrase(&words)
            .num("sent", t.sent)
            .num("received", t.received)
            .num("sent_per_sec", t.per_sec(t.sent))
            .num("received_per_sec", t.per_sec(t.received))
            .num("processes", processes)
            .num("peers", peers)
            .num("interval_ms", t.interval_ms);
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "target"))
            .num(field::PROCESSES, processes)
            .num(field::PEERS, peers)
            .message(msg)
    }

    /// The fields that say who a process is: its PID and name, and, where
    /// netio could read them, its uid and executable.
    fn who(self, w: &Who<'_>) -> Self {
        let mut r = self.num(field::PID, w.pid as u64).str(field::COMM, w.comm);
        if let Some(uid) = w.uid {
            r = r.num(field::UID, uid as u64);
        }
        if let Some(exe) = w.exe {
            r = r.str(field::EXE, exe);
        }
        r
    }

    /// One process's bytes in one interval.
    pub fn process_traffic(t: &TrafficFields<'_>, w: &Who<'_>) -> Self {
        let msg = t.message(w, None);
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "process"))
            .who(w)
            .message(msg)
    }

    /// One process's bytes with one peer (or `other`: the peers past the
    /// busiest N) in one interval.
    pub fn peer_traffic<'a>(t: &TrafficFields<'_>, w: &Who<'_>, peer: impl Into<Peer<'a>>) -> Self {
        let peer = peer.into();
        let msg = t.message(w, Some(&peer));
        t.add(Record::new(Kind::Traffic).str(field::SCOPE, "peer"))
            .who(w)
            .peer(&peer)
            .message(msg)
    }

    /// A peer's fields: its address, and a Unix peer's or loopback
    /// client's process.
    fn peer(self, p: &Peer<'_>) -> Self {
        let mut r = self.str(field::PEER_ADDRESS, p.address);
        if let Some(t) = p.transport {
            r = r.str(field::TRANSPORT, t);
        }
        if let Some(u) = &p.process {
            r = r.num(field::PEER_PID, u.pid.into());
            if let Some(uid) = u.uid {
                r = r.num(field::PEER_UID, uid.into());
            }
            if let Some(comm) = u.comm {
                r = r.str(field::PEER_COMM, comm);
            }
        }
        r
    }

    /// Bytes an untracked process moved on a socket a tracked process of
    /// the target owns (docs/kernels.md, "Whose bytes"), in all (`peer`
    /// None) or with one peer: named as the process that moved them, with
    /// the owner's PID and who the mover is.
    pub fn moved_traffic(
        t: &TrafficFields<'_>,
        w: &Who<'_>,
        owner_pid: u32,
        peer: Option<&str>,
    ) -> Self {
        let peer = peer.map(Peer::from);
        let msg = t
            .message(w, peer.as_ref())
            .num("socket_owner_pid", owner_pid.into());
        let scope = if peer.is_some() { "peer" } else { "process" };
        let mut r = t
            .add(Record::new(Kind::Traffic).str(field::SCOPE, scope))
            .who(w);
        if let Some(p) = &peer {
            r = r.peer(p);
        }
        r.num(field::SOCKET_OWNER_PID, owner_pid.into())
            .message(msg)
    }

    /// A threshold crossed (`Exceeded`, then `Reminder` while it lasts) or
    /// left behind (`Recovered`).
    pub fn threshold(kind: Kind, t: &ThresholdFields<'_>) -> Self {
        let (rate, limit) = (
            human::rate(t.rate, t.scale),
            human::rate(t.threshold, t.scale),
        );
        let (dir, long, breach) = (
            t.direction,
            human::duration_ms(t.duration_ms),
            human::duration_ms(t.breach_ms),
        );
        let (what, words) = match kind {
            Kind::ThresholdExceeded => (
                "rate threshold exceeded:",
                format!(
                    "{dir} {rate} > {limit} for {long}, the sustain time \
                     (counted in whole intervals):"
                ),
            ),
            Kind::ThresholdReminder => (
                "rate threshold still exceeded:",
                format!("{dir} {rate} > {limit} for {long}, in a breach of {breach} so far:"),
            ),
            _ => (
                "rate threshold recovered:",
                format!(
                    "{dir} {rate}, at or below {limit} for {long}, after a breach of {breach}:"
                ),
            ),
        };
        let msg = Message::default()
            .str("target", t.target)
            .words(what)
            .phrase(&words)
            .opt_peer(t.peer.as_ref())
            .opt_num("folded_peers_min", t.folded_peers)
            .str("direction", t.direction)
            .num("rate", t.rate)
            .num("threshold", t.threshold)
            .num("duration_ms", t.duration_ms)
            .num("breach_ms", t.breach_ms);
        let mut r = Record::new(kind)
            .str(field::TARGET, t.target)
            .str(field::DIRECTION, t.direction);
        if let Some(p) = &t.peer {
            r = r.peer(p);
        }
        if let Some(n) = t.folded_peers {
            r = r.num(field::FOLDED_PEERS_MIN, n);
        }
        r.num(field::RATE, t.rate)
            .num(field::THRESHOLD, t.threshold)
            .num(field::SUSTAIN_MS, t.sustain_ms)
            .num(field::DURATION_MS, t.duration_ms)
            .num(field::BREACH_MS, t.breach_ms)
            .message(msg)
    }

    pub fn process_appeared(target: &str, w: &Who<'_>, ppid: u32) -> Self {
        Record::new(Kind::ProcessAppeared)
            .str(field::TARGET, target)
            .who(w)
            .num(field::PPID, ppid as u64)
            .message(
                w.message(
                    Message::default()
                        .str("target", target)
                        .words("process appeared:")
                        .num("pid", w.pid as u64)
                        .num("ppid", ppid as u64),
                ),
            )
    }

    /// A tracked process is gone; its totals over the time it was tracked.
    pub fn process_exited(target: &str, w: &Who<'_>, sent: u64, received: u64) -> Self {
        Record::new(Kind::ProcessExited)
            .str(field::TARGET, target)
            .who(w)
            .num(field::SENT_BYTES, sent)
            .num(field::RECEIVED_BYTES, received)
            .message(
                w.message(
                    Message::default()
                        .str("target", target)
                        .words("process exited")
                        .phrase(&format!(
                            "after sending {} and receiving {}:",
                            human::bytes(sent),
                            human::bytes(received)
                        ))
                        .num("pid", w.pid as u64),
                )
                .num("sent", sent)
                .num("received", received),
            )
    }

    /// A reload in force, and what it changed.
    pub fn config_reloaded(r: &Reloaded<'_>) -> Self {
        let count = |n: &[String], one, many| human::count(n.len() as u64, one, many);
        let mut said = Vec::new();
        if !r.added.is_empty() {
            said.push(format!("{} added", count(r.added, "target", "targets")));
        }
        if !r.removed.is_empty() {
            said.push(format!("{} removed", count(r.removed, "target", "targets")));
        }
        if !r.matching.is_empty() {
            let n = count(r.matching, "target", "targets");
            said.push(format!("{n} matching other processes"));
        }
        if !r.thresholds.is_empty() {
            let n = count(r.thresholds, "target", "targets");
            said.push(format!("thresholds changed for {n}"));
        }
        if let Some(ms) = r.interval_ms {
            said.push(format!("interval now {}", human::duration_ms(ms)));
        }
        if said.is_empty() {
            said.push("no change in force".into());
        }
        let list = |names: &[String]| names.join(",");
        let some = |names: &[String]| (!names.is_empty()).then(|| list(names));
        let more = [r.added, r.removed, r.matching, r.thresholds]
            .iter()
            .any(|n| !n.is_empty())
            || !r.detail.is_empty();
        let colon = if more { ":" } else { "" };
        let msg = Message::new("configuration reloaded:")
            .str("config", r.config)
            .phrase(&format!("{}{colon}", said.join(", ")))
            .opt_str("targets_added", some(r.added).as_deref())
            .opt_str("targets_removed", some(r.removed).as_deref())
            .opt_str("targets_rematched", some(r.matching).as_deref())
            .opt_str("thresholds_changed", some(r.thresholds).as_deref())
            .opt_str("detail", (!r.detail.is_empty()).then_some(r.detail));
        Record::new(Kind::ConfigReloaded)
            .str(field::CONFIG, r.config)
            .str(field::TARGETS_ADDED, list(r.added))
            .str(field::TARGETS_REMOVED, list(r.removed))
            .str(field::TARGETS_REMATCHED, list(r.matching))
            .str(field::THRESHOLDS_CHANGED, list(r.thresholds))
            .message(msg)
    }

    pub fn config_rejected(path: &str, error: &str) -> Self {
        Record::new(Kind::ConfigRejected)
            .str(field::CONFIG, path)
            .str(field::REASON, error)
            .message(
                Message::new(
                    "configuration reload refused, the previous configuration stays in force:",
                )
                .str("reason", error),
            )
    }

    /// Something a target lost or could not do; `count` of it since the
    /// last such record. The target is named in MESSAGE and NETIO_TARGET.
    /// `bytes`: (sent, received) the target counted without their detail.
    pub fn degraded_for(
        reason: &str,
        target: &str,
        count: u64,
        bytes: Option<(u64, u64)>,
        detail: &str,
    ) -> Self {
        let msg = Message::new("netio degraded:")
            .str("reason", reason)
            .str("target", target)
            .num("count", count)
            .opt_num("sent", bytes.map(|b| b.0))
            .opt_num("received", bytes.map(|b| b.1))
            .opt_str("detail", (!detail.is_empty()).then_some(detail));
        let mut r = Record::new(Kind::Degraded)
            .str(field::REASON, reason)
            .str(field::TARGET, target)
            .num(field::COUNT, count);
        if let Some((sent, received)) = bytes {
            r = r
                .num(field::SENT_BYTES, sent)
                .num(field::RECEIVED_BYTES, received);
        }
        r.message(msg)
    }

    /// Something was lost or could not be done; `count` of it since the last
    /// such record.
    pub fn degraded(reason: &str, count: u64, lost_bytes: Option<u64>, detail: &str) -> Self {
        let msg = Message::new("netio degraded:")
            .str("reason", reason)
            .num("count", count)
            .opt_num("lost_bytes", lost_bytes)
            .opt_str("detail", (!detail.is_empty()).then_some(detail));
        let mut r = Record::new(Kind::Degraded)
            .str(field::REASON, reason)
            .num(field::COUNT, count);
        if let Some(b) = lost_bytes {
            r = r.num(field::LOST_BYTES, b);
        }
        r.message(msg)
    }
}

/// Who a process is, for its records.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub pid: u32,
    pub comm: &'a str,
    /// Its effective uid.
    pub uid: Option<u32>,
    /// Its executable's path.
    pub exe: Option<&'a str>,
}

impl Who<'_> {
    /// Its name, uid and executable in MESSAGE, after its PID.
    fn message(&self, m: Message) -> Message {
        m.str("comm", self.comm)
            .opt_num("uid", self.uid.map(u64::from))
            .opt_str("exe", self.exe)
    }
}

/// What a `config_reloaded` record tells: the file, the targets (by name)
/// it added, removed, matched anew or gave new thresholds, the interval
/// when it changed, and the changes left for the next start.
pub struct Reloaded<'a> {
    pub config: &'a str,
    pub added: &'a [String],
    pub removed: &'a [String],
    pub matching: &'a [String],
    pub thresholds: &'a [String],
    pub interval_ms: Option<u64>,
    pub detail: &'a str,
}

/// The fields every traffic record carries.
#[derive(Clone, Copy)]
pub struct TrafficFields<'a> {
    pub target: &'a str,
    pub sent: u64,
    pub received: u64,
    pub interval_ms: u64,
    pub backend: &'a str,
}

impl TrafficFields<'_> {
    fn per_sec(&self, bytes: u64) -> u64 {
        crate::interval::per_second(bytes, self.interval_ms)
    }

    /// What moved, in words: "sent 25.9 MiB (2.6 MiB/s) and received
    /// nothing in 10 s", or "no traffic in 10 s".
    fn words(&self) -> String {
        let took = human::duration_ms(self.interval_ms);
        if self.sent == 0 && self.received == 0 {
            return format!("no traffic in {took}");
        }
        let moved = |verb: &str, bytes: u64| match bytes {
            0 => format!("{verb} nothing"),
            b => format!(
                "{verb} {} ({})",
                human::bytes(b),
                human::rate(self.per_sec(b), Scale::BINARY)
            ),
        };
        format!(
            "{} and {} in {took}",
            moved("sent", self.sent),
            moved("received", self.received)
        )
    }

    /// A process or peer record's MESSAGE.
    fn message(&self, w: &Who<'_>, peer: Option<&Peer<'_>>) -> Message {
        w.message(
            Message::default()
                .str("target", self.target)
                .num("pid", w.pid as u64),
        )
        .opt_peer(peer)
        .phrase(&format!("{}:", self.words()))
        .num("sent", self.sent)
        .num("received", self.received)
        .num("interval_ms", self.interval_ms)
    }

    fn add(&self, r: Record) -> Record {
        r.str(field::TARGET, self.target)
            .num(field::SENT_BYTES, self.sent)
            .num(field::RECEIVED_BYTES, self.received)
            .num(field::SENT_BYTES_PER_SEC, self.per_sec(self.sent))
            .num(field::RECEIVED_BYTES_PER_SEC, self.per_sec(self.received))
            .num(field::INTERVAL_MS, self.interval_ms)
            .str(field::BACKEND, self.backend)
    }
}

/// A peer as its records name it: its address (`other` for the peers
/// folded together, a Unix peer's `unix:pid=P,uid=U`), how its bytes went,
/// and for a Unix socket's peer or a loopback TCP client the process at the
/// other end.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub address: &'a str,
    pub transport: Option<&'static str>,
    pub process: Option<PeerProcess<'a>>,
}

/// A Unix socket's peer process or a loopback TCP client's (docs/records.md,
/// "Local clients"); a client's uid while it is known.
#[derive(Debug, Clone, Copy)]
pub struct PeerProcess<'a> {
    pub pid: u32,
    pub uid: Option<u32>,
    pub comm: Option<&'a str>,
}

/// A TCP peer's address as text, or `other`.
impl<'a> From<&'a str> for Peer<'a> {
    fn from(address: &'a str) -> Self {
        Peer {
            address,
            transport: (address != "other").then_some("tcp"),
            process: None,
        }
    }
}

/// What a threshold record says.
pub struct ThresholdFields<'a> {
    pub target: &'a str,
    pub peer: Option<Peer<'a>>,
    /// Peer `other` only: at least how many peers it folds.
    pub folded_peers: Option<u64>,
    /// "sent" or "received".
    pub direction: &'static str,
    /// The rate observed in the interval that decided it, bytes/s.
    pub rate: u64,
    pub threshold: u64,
    pub sustain_ms: u64,
    /// How long the rate has been above (or, recovered, below) the limit.
    pub duration_ms: u64,
    /// How long the breach has lasted: from its first interval above the
    /// limit to its last.
    pub breach_ms: u64,
    /// The scale the threshold was written in, which MESSAGE shows rates in.
    pub scale: Scale,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub use tests::{postgres, samples};
