//! The configuration file: what to watch and how often.
//!
//! TOML, every key documented in the shipped `netio.conf`. Unknown keys are
//! errors, and every error names the file, the line and the key.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netio_probes::{BackendChoice, Capacity};
use serde::{Deserialize, Deserializer};

pub const DEFAULT_PATH: &str = "/etc/netio/netio.conf";

/// Configs larger than this are refused before parsing: a config is a few
/// kilobytes, anything bigger is a mistake (a log file named by accident).
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How often a traffic record is written for each process.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// Which kernel hooks count bytes: auto, fentry, tracepoint or kprobe.
    #[serde(default = "default_backend", deserialize_with = "backend")]
    pub backend: BackendChoice,
    /// Where records go: auto (the journal when its socket exists, else
    /// text on stdout), journal, json or text.
    #[serde(default)]
    pub output: Output,
    /// The field names of JSON output: netio's own, or Elastic Common Schema.
    #[serde(default)]
    pub json_schema: JsonSchema,
    #[serde(default)]
    pub capacity: CapacityConfig,
    #[serde(default)]
    pub records: RecordsConfig,
    #[serde(rename = "target", default)]
    pub targets: Vec<Target>,
    /// Syslog destinations, written to besides `output`.
    #[serde(default)]
    pub syslog: Vec<Syslog>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonSchema {
    #[default]
    Netio,
    Ecs,
}

impl JsonSchema {
    pub fn name(self) -> &'static str {
        match self {
            JsonSchema::Netio => "netio",
            JsonSchema::Ecs => "ecs",
        }
    }
}

/// How a syslog destination is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RFC 3164-style datagrams to a local unix socket (/dev/log).
    #[default]
    Local,
    /// RFC 5424, one message per datagram (RFC 5426).
    Udp,
    /// RFC 5424 over TCP, octet-counting framing (RFC 6587).
    Tcp,
    /// `tcp` inside TLS (RFC 5425).
    Tls,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// The syslog facilities, by their usual names, with their codes.
pub const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// One `[[syslog]]` destination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Syslog {
    #[serde(default)]
    pub transport: Transport,
    /// A unix socket path (local) or host:port (udp, tcp, tls).
    pub address: String,
    #[serde(default = "default_facility")]
    pub facility: String,
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Records held while the destination is down or slow; past it, new
    /// records are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: u32,
    /// tls: the CA certificates (PEM) the collector's certificate must
    /// chain to; default the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// tls: a client certificate chain (PEM) for collectors that ask.
    pub client_cert: Option<PathBuf>,
    /// tls: the client certificate's private key (PEM).
    pub client_key: Option<PathBuf>,
}

impl Syslog {
    pub fn facility_code(&self) -> u8 {
        FACILITIES
            .iter()
            .find(|(n, _)| *n == self.facility)
            .map(|(_, c)| *c)
            .unwrap_or(3)
    }

    /// `tcp 127.0.0.1:514`: how notes and records name the destination.
    pub fn describe(&self) -> String {
        format!("{} {}", self.transport.name(), self.address)
    }

    fn validate(&self) -> Result<(), Invalid> {
        if !FACILITIES.iter().any(|(n, _)| *n == self.facility) {
            let names: Vec<&str> = FACILITIES.iter().map(|(n, _)| *n).collect();
            return Err(Invalid::at(
                &[At::Key("facility")],
                format!(
                    "key `facility`: {:?} is not a facility; use one of {}",
                    self.facility,
                    names.join(", ")
                ),
            ));
        }
        // RFC 3164 allows a tag of 32 characters, RFC 5424 an APP-NAME of
        // 48 printable ASCII: the stricter rule fits both, and the
        // characters rsyslog's parsers accept in either.
        if self.app_name.is_empty()
            || self.app_name.len() > 32
            || !self
                .app_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(Invalid::at(
                &[At::Key("app_name")],
                format!(
                "key `app_name`: {:?} must be 1 to 32 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
                self.app_name
            ),
            ));
        }
        if self.queue == 0 || self.queue > 1_000_000 {
            return Err(Invalid::at(
                &[At::Key("queue")],
                format!("key `queue`: {} records; use 1 to 1000000", self.queue),
            ));
        }
        match self.transport {
            Transport::Local => {
                if !self.address.starts_with('/') || self.address.len() >= 108 {
                    return Err(Invalid::at(
                        &[At::Key("address")],
                        format!(
                        "key `address`: {:?} is not a unix socket path like \"/dev/log\" (absolute, under 108 bytes)",
                        self.address
                    ),
                    ));
                }
            }
            _ => {
                if self.host_port().is_none() {
                    return Err(Invalid::at(
                        &[At::Key("address")],
                        format!(
                        "key `address`: {:?} is not host:port (like \"logs.example.net:6514\" or \"[::1]:514\")",
                        self.address
                    ),
                    ));
                }
            }
        }
        if self.transport != Transport::Tls {
            for (k, v) in [
                ("ca_file", &self.ca_file),
                ("client_cert", &self.client_cert),
                ("client_key", &self.client_key),
            ] {
                if v.is_some() {
                    return Err(Invalid::at(
                        &[At::Key(k)],
                        format!(
                            "key `{k}` applies only to transport = \"tls\", not {:?}",
                            self.transport.name()
                        ),
                    ));
                }
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            let given = if self.client_cert.is_some() {
                "client_cert"
            } else {
                "client_key"
            };
            return Err(Invalid::at(
                &[At::Key(given)],
                "keys `client_cert` and `client_key` go together: give both or neither",
            ));
        }
        Ok(())
    }

    /// The host and port of a remote address: `host:port` or `[v6]:port`.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        let host = match host.strip_prefix('[') {
            Some(h) => h.strip_suffix(']')?,
            None if host.contains(':') => return None,
            None => host,
        };
        let port: u16 = port.parse().ok()?;
        (!host.is_empty() && port != 0).then_some((host, port))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    #[default]
    Auto,
    Journal,
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// A traffic record per process, besides the target's total.
    #[serde(default = "yes")]
    pub per_process: bool,
    /// Per-peer records for each process: the busiest N peers, the rest
    /// folded into one record with peer `other`. 0: none.
    #[serde(default = "default_top_peers")]
    pub top_peers: u32,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            per_process: true,
            top_peers: default_top_peers(),
        }
    }
}

/// A rate in bytes per second, written like "50MiB/s".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = |why: &str| {
            serde::de::Error::custom(format!("{s:?} is not a rate like \"50MiB/s\": {why}"))
        };
        let Some(size) = s.trim().strip_suffix("/s") else {
            return Err(bad("it must end in /s"));
        };
        let bytes: bytesize::ByteSize = size.trim().parse().map_err(|e: String| bad(&e))?;
        if bytes.as_u64() == 0 {
            return Err(bad("a threshold of zero would always fire"));
        }
        Ok(Rate(bytes.as_u64()))
    }
}

/// Printed exactly, so that `check-config` output reads back as the same
/// rate: in the largest binary unit that divides it, else in bytes.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        for (unit, size) in UNITS {
            if self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}/s", self.0 / size);
            }
        }
        write!(f, "{}B/s", self.0)
    }
}

/// Warn when a target's traffic rate stays above a limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The target's total send rate.
    pub sent: Option<Rate>,
    /// The target's total receive rate.
    pub received: Option<Rate>,
    /// The send rate to any one peer (one client pulling too much).
    pub peer_sent: Option<Rate>,
    /// The receive rate from any one peer.
    pub peer_received: Option<Rate>,
    /// How long a rate must stay above (or, to recover, below) its limit.
    #[serde(
        rename = "for",
        default = "default_sustain",
        deserialize_with = "duration"
    )]
    pub sustain: Duration,
    /// While a breach lasts, a reminder at most this often.
    #[serde(default = "default_reminder", deserialize_with = "duration")]
    pub reminder: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Processes tracked at once (all targets, with their forked children).
    #[serde(default = "default_processes")]
    pub processes: u32,
    /// (process, client address) pairs counted separately at once. Beyond
    /// it, a process's new peers are folded into one `other` peer record and
    /// a degraded record says so; process totals stay exact.
    #[serde(default = "default_peers")]
    pub peers: u32,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            processes: default_processes(),
            peers: default_peers(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    /// Process names: the `comm` of the thread-group leader or the basename
    /// of its executable.
    #[serde(default)]
    pub process: Vec<String>,
    /// A systemd unit: every process in its cgroup, however it is named.
    pub unit: Option<String>,
    /// A cgroup v2 path (below the cgroup2 mount, e.g.
    /// "/system.slice/postgresql.service"): every process in it.
    pub cgroup: Option<String>,
    pub threshold: Option<Threshold>,
}

fn default_processes() -> u32 {
    4096
}
fn default_peers() -> u32 {
    16384
}
fn yes() -> bool {
    true
}
fn default_top_peers() -> u32 {
    10
}
fn default_sustain() -> Duration {
    Duration::from_secs(30)
}
fn default_reminder() -> Duration {
    Duration::from_secs(600)
}
fn default_facility() -> String {
    "daemon".into()
}
fn default_app_name() -> String {
    "netio".into()
}
fn default_queue() -> u32 {
    10_000
}
fn default_backend() -> BackendChoice {
    BackendChoice::Auto
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like \"10s\": {e}")))
}

fn backend<'de, D: Deserializer<'de>>(d: D) -> Result<BackendChoice, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// A config that could not be used, with where and why.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(err(format!(
                "is {} bytes; a config is at most {MAX_FILE_BYTES} bytes",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            err(format!(
                "line {line}: not valid UTF-8 (byte offset {offset})"
            ))
        })?;
        Self::parse(&text).map_err(err)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        config.validate().map_err(|e| e.describe(text))?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Invalid> {
        const DAY: Duration = Duration::from_secs(86_400);
        let interval = [At::Key("interval")];
        if self.interval > DAY {
            return Err(Invalid::at(
                &interval,
                format!(
                    "key `interval`: {} is too long; use at most \"1day\"",
                    humantime::format_duration(self.interval)
                ),
            ));
        }
        if self.interval < Duration::from_millis(100) {
            return Err(Invalid::at(
                &interval,
                format!(
                    "key `interval`: {} is too short; use at least \"100ms\"",
                    humantime::format_duration(self.interval)
                ),
            ));
        }
        for (key, n) in [
            ("processes", self.capacity.processes),
            ("peers", self.capacity.peers),
        ] {
            if n == 0 {
                return Err(Invalid::at(
                    &[At::Key("capacity"), At::Key(key)],
                    format!("[capacity] key `{key}` must be at least 1"),
                ));
            }
        }
        if self.targets.is_empty() {
            return Err(Invalid::at(
                &[],
                "no [[target]]: add at least one with a name and process names",
            ));
        }
        if self.targets.len() > u16::MAX as usize {
            return Err(Invalid::at(
                &[],
                format!("{} targets; at most {}", self.targets.len(), u16::MAX),
            ));
        }
        for (i, s) in self.syslog.iter().enumerate() {
            s.validate().map_err(|e| {
                e.within(
                    &[At::Key("syslog"), At::Index(i)],
                    &format!("[[syslog]] #{}", i + 1),
                )
            })?;
        }
        let mut seen = HashSet::new();
        let mut names = HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let here = [At::Key("target"), At::Index(i)];
            let at = format!("[[target]] #{} (`{}`)", i + 1, t.name);
            let bad =
                |path: &[At], message: String| Err(Invalid::at(path, message).within(&here, &at));
            if t.name.trim().is_empty() {
                return Err(Invalid::at(&[At::Key("name")], "key `name` is empty")
                    .within(&here, &format!("[[target]] #{}", i + 1)));
            }
            if !seen.insert(t.name.as_str()) {
                return bad(
                    &[At::Key("name")],
                    "key `name`: a target of that name exists already".into(),
                );
            }
            if t.process.is_empty() && t.unit.is_none() && t.cgroup.is_none() {
                return bad(
                    &[At::Key("process")],
                    "key `process` is empty and there is no `unit` or `cgroup`: say which processes belong to it".into(),
                );
            }
            if let Some(u) = &t.unit {
                if u.is_empty() || u.contains('/') {
                    return bad(
                        &[At::Key("unit")],
                        format!("key `unit`: {u:?} is not a unit name like \"postgresql.service\""),
                    );
                }
            }
            if let Some(c) = &t.cgroup {
                if !c.starts_with('/') || c.contains("..") {
                    return bad(
                        &[At::Key("cgroup")],
                        format!("key `cgroup`: {c:?} must be an absolute path below the cgroup2 mount, like \"/system.slice/x.service\""),
                    );
                }
            }
            if let Some(th) = &t.threshold {
                let threshold = At::Key("threshold");
                if th.sent.is_none()
                    && th.received.is_none()
                    && th.peer_sent.is_none()
                    && th.peer_received.is_none()
                {
                    return bad(
                        &[threshold],
                        "[target.threshold] sets no rate: give sent, received, peer_sent or peer_received".into(),
                    );
                }
                if th.reminder.is_zero() {
                    return bad(
                        &[threshold, At::Key("reminder")],
                        "[target.threshold] key `reminder` must be longer than 0s".into(),
                    );
                }
                if th.sustain > 7 * DAY {
                    return bad(
                        &[threshold, At::Key("for")],
                        "[target.threshold] key `for` is at most \"7days\"".into(),
                    );
                }
                if th.reminder > 30 * DAY {
                    return bad(
                        &[threshold, At::Key("reminder")],
                        "[target.threshold] key `reminder` is at most \"30days\"".into(),
                    );
                }
            }
            for (j, p) in t.process.iter().enumerate() {
                let entry = [At::Key("process"), At::Index(j)];
                if p.is_empty() || p.contains('/') || p.contains('\0') {
                    return bad(
                        &entry,
                        format!("key `process`: {p:?} is not a process name (no path, not empty)"),
                    );
                }
                if !names.insert(p.as_str()) {
                    return bad(
                        &entry,
                        format!("key `process`: {p:?} is listed by two targets"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Map sizes. The name and cgroup maps get headroom so that a reload
    /// adding targets fits without reloading the programs.
    pub fn capacity(&self) -> Capacity {
        let names: u32 = self.targets.iter().map(|t| t.process.len() as u32).sum();
        let cgroups: u32 = self
            .targets
            .iter()
            .map(|t| t.unit.is_some() as u32 + t.cgroup.is_some() as u32)
            .sum();
        Capacity {
            processes: self.capacity.processes,
            peers: self.capacity.peers,
            names: names.saturating_mul(2).max(256),
            cgroups: cgroups.saturating_mul(2).max(64),
        }
    }

    /// The config as netio runs it, defaults filled in, as TOML.
    pub fn effective(&self) -> String {
        use std::fmt::Write as _;
        // TOML's own quoting: Rust's {:?} writes escapes TOML rejects.
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let d = |d: Duration| q(&humantime::format_duration(d).to_string());
        let output = match self.output {
            Output::Auto => "auto",
            Output::Journal => "journal",
            Output::Json => "json",
            Output::Text => "text",
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "interval = {}\nbackend = {}\noutput = {}\njson_schema = {}",
            d(self.interval),
            q(&self.backend.to_string()),
            q(output),
            q(self.json_schema.name())
        );
        let _ = writeln!(
            out,
            "\n[capacity]\nprocesses = {}\npeers = {}",
            self.capacity.processes, self.capacity.peers
        );
        let _ = writeln!(
            out,
            "\n[records]\nper_process = {}\ntop_peers = {}",
            self.records.per_process, self.records.top_peers
        );
        for s in &self.syslog {
            let _ = writeln!(
                out,
                "\n[[syslog]]\ntransport = {}\naddress = {}\nfacility = {}\napp_name = {}\nqueue = {}",
                q(s.transport.name()),
                q(&s.address),
                q(&s.facility),
                q(&s.app_name),
                s.queue
            );
            for (k, v) in [
                ("ca_file", &s.ca_file),
                ("client_cert", &s.client_cert),
                ("client_key", &s.client_key),
            ] {
                if let Some(p) = v {
                    let _ = writeln!(out, "{k} = {}", q(&p.display().to_string()));
                }
            }
        }
        for t in &self.targets {
            let procs: Vec<String> = t.process.iter().map(|p| q(p)).collect();
            let _ = writeln!(
                out,
                "\n[[target]]\nname = {}\nprocess = [{}]",
                q(&t.name),
                procs.join(", ")
            );
            if let Some(u) = &t.unit {
                let _ = writeln!(out, "unit = {}", q(u));
            }
            if let Some(c) = &t.cgroup {
                let _ = writeln!(out, "cgroup = {}", q(c));
            }
            if let Some(th) = &t.threshold {
                let _ = writeln!(out, "[target.threshold]");
                for (k, v) in [
                    ("sent", th.sent),
                    ("received", th.received),
                    ("peer_sent", th.peer_sent),
                    ("peer_received", th.peer_received),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(out, "{k} = {}", q(&v.to_string()));
                    }
                }
                let _ = writeln!(
                    out,
                    "for = {}\nreminder = {}",
                    d(th.sustain),
                    d(th.reminder)
                );
            }
        }
        out
    }

    /// The target a process name belongs to.
    pub fn target_of(&self, process_name: &str) -> Option<u32> {
        self.targets
            .iter()
            .position(|t| t.process.iter().any(|p| p == process_name))
            .map(|i| i as u32)
    }
}

/// One step of the way to a value in the config: a key, or an index into
/// an array (of tables or of values).
#[derive(Debug, Clone, Copy)]
enum At {
    Key(&'static str),
    Index(usize),
}

/// A value the TOML parser accepted but netio cannot use: why, and where,
/// as the way to it from the top of the file. `describe` turns the way into
/// a line number, so that these errors name the line as parse errors do.
#[derive(Debug)]
struct Invalid {
    at: Vec<At>,
    message: String,
}

impl Invalid {
    fn at(at: &[At], message: impl Into<String>) -> Invalid {
        Invalid {
            at: at.to_vec(),
            message: message.into(),
        }
    }

    /// The same error inside a table: `prefix` is the way to that table,
    /// `label` how the message names it (`[[syslog]] #2`).
    fn within(mut self, prefix: &[At], label: &str) -> Invalid {
        self.at.splice(0..0, prefix.iter().copied());
        self.message = format!("{label}: {}", self.message);
        self
    }

    /// The message with its line, as parse errors have theirs, or alone
    /// when the way leads nowhere in the text (a value left to its
    /// default, or a rule about the file as a whole).
    fn describe(&self, text: &str) -> String {
        with_line(text, locate(text, &self.at), &self.message)
    }
}

/// The byte offset of the deepest step of `at` that the text spells out:
/// the key's own line where there is one, else the value's or the table's.
fn locate(text: &str, at: &[At]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut found = None;
    for step in at {
        let next = match *step {
            At::Key(k) => {
                let Some((key, next)) = item.as_table_like().and_then(|t| t.get_key_value(k))
                else {
                    break;
                };
                found = key.span().or(next.span()).or(found);
                next
            }
            At::Index(i) => {
                let Some(next) = item.get(i) else { break };
                found = next.span().or(found);
                next
            }
        };
        item = next;
    }
    found.map(|span| span.start)
}

/// toml's errors carry a byte span; operators want a line number and the key.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    with_line(
        text,
        e.span().map(|span| span.start),
        e.message().trim_end(),
    )
}

/// `line N: message (at `the line`)` for the line holding byte `offset`,
/// or the message alone without one: how every config error names its
/// place.
fn with_line(text: &str, offset: Option<usize>, message: &str) -> String {
    match offset {
        Some(offset) => {
            let line = text[..offset.min(text.len())].matches('\n').count() + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {message} (at `{snippet}`)")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "interval = \"2s\"\n[[target]]\nname = \"db\"\nprocess = [\"postgres\"]\n";

    #[test]
    fn a_minimal_config_parses_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.backend, BackendChoice::Auto);
        assert_eq!(c.capacity.peers, 16384);
        assert_eq!(c.target_of("postgres"), Some(0));
        assert_eq!(c.target_of("mysqld"), None);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e = Config::parse("interval = \"2s\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
        let e = Config::parse("interval = 5\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("interval"), "{e}");
        let e = Config::parse("interval = \"soon\"\n").unwrap_err();
        assert!(e.contains("duration"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let dup = format!("{GOOD}[[target]]\nname = \"db\"\nprocess = [\"x\"]\n");
        assert!(Config::parse(&dup).unwrap_err().contains("exists already"));
        let empty = "interval = \"1s\"\n[[target]]\nname = \"db\"\nprocess = []\n";
        assert!(Config::parse(empty).unwrap_err().contains("empty"));
        let zero = GOOD.replace("2s", "0s");
        assert!(Config::parse(&zero).unwrap_err().contains("too short"));
        let path = GOOD.replace("\"postgres\"", "\"/usr/bin/postgres\"");
        assert!(Config::parse(&path)
            .unwrap_err()
            .contains("not a process name"));
        assert!(Config::parse("interval = \"1s\"\n")
            .unwrap_err()
            .contains("no [[target]]"));
        let backend = format!("backend = \"ebpf\"\n{GOOD}");
        assert!(Config::parse(&backend)
            .unwrap_err()
            .contains("unknown backend"));
    }
}
