//! The configuration file: what to watch and how often.
//!
//! TOML, every key documented in docs/config.md and the shipped
//! `netio.conf`. The structs below are the schema: serde reads a file into
//! them (unknown keys are errors), `validate.rs` holds the rules beyond the
//! types, `error.rs` gives every error its file, line and key, `forms.rs`
//! the right form of each key, and `check-config` prints them back through
//! `Serialize`, rates and durations as the file wrote them. `file.rs` reads
//! the file, and the files it names, only if no one but root could have
//! written them; `users.rs` resolves a target's `user` names.

#[cfg(test)]
mod documented;
mod error;
mod file;
mod forms;
mod records;
mod reload;
mod syslog;
mod units;
mod users;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use netio_probes::{BackendChoice, Capacity};
use serde::{Deserialize, Serialize};

pub use self::error::ConfigError;
use self::error::{describe_toml_error, At, Invalid};
pub use self::file::read_trusted;
pub use self::records::{Lifecycle, RecordsConfig};
#[allow(unused_imports)]
pub use self::reload::Changes;
pub use self::syslog::{Syslog, Transport, MAX_TLS_FILE_BYTES};
pub use self::units::Rate;
pub use self::users::{Uids, User};

/// Where `run` and `check-config` look when not told: the packages install it.
pub const DEFAULT_PATH: &str = "/etc/netio/netio.conf";
/// `backend`: the best this kernel loads, so one config fits every host.
pub const DEFAULT_BACKEND: BackendChoice = BackendChoice::Auto;
/// `[capacity] processes`: map memory is reserved up front, for the host's peak.
pub const DEFAULT_PROCESSES: u32 = 4096;
/// `[capacity] peers`: past it, new peers fold into `other`; totals stay exact.
pub const DEFAULT_PEERS: u32 = 16384;
/// The most `processes`: Linux's own limit on PIDs (PID_MAX_LIMIT), far
/// below the 2^27 entries past which the kernel refuses a hash map (E2BIG).
pub const MAX_PROCESSES: u32 = 1 << 22;
/// The most `peers`: the traffic map holds peers + processes entries, each
/// about 120 bytes plus 16 per possible CPU (docs/config.md).
pub const MAX_PEERS: u32 = 1 << 22;
/// The most entries of the cgroup map (ids of groups of `unit` and
/// `cgroup` targets): a hash map reserved up front, about 100 bytes each.
pub const MAX_CGROUP_IDS: u32 = 1 << 16;
/// `[records] per_process`: a target's total alone would not say which process.
pub const DEFAULT_PER_PROCESS: bool = true;
/// `[records] top_peers`: the busiest peers by name, the rest folded into `other`.
pub const DEFAULT_TOP_PEERS: u32 = 10;
/// `[records] target_peers`: a target's busiest clients over all its
/// processes, the view a fork-per-connection server needs (docs/config.md).
pub const DEFAULT_TARGET_PEERS: u32 = 10;
/// `[records] top_processes`: the busiest processes by PID, the rest in one
/// record, so a server forking per connection writes a bounded number.
pub const DEFAULT_TOP_PROCESSES: u32 = 10;
/// `[records] lifecycle`: a count per interval, since a server forking per
/// connection would otherwise write two records a connection.
pub const DEFAULT_LIFECYCLE: Lifecycle = Lifecycle::Summary;
/// `[target.threshold] for`: how long a rate stays over (or back under) its limit.
pub const DEFAULT_SUSTAIN: Duration = Duration::from_secs(30);
/// `[target.threshold] reminder`: how often a lasting breach is written again.
pub const DEFAULT_REMINDER: Duration = Duration::from_secs(600);

/// Configs larger than this are refused before parsing: a config is a few
/// kilobytes, anything bigger is a mistake (a log file named by accident).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The whole file: the top-level keys, then its tables.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How often a traffic record is written for each process.
    #[serde(with = "units::duration")]
    pub interval: Duration,
    /// Which kernel hooks count bytes: auto, fentry, tracepoint or kprobe.
    #[serde(default = "default_backend", with = "units::backend")]
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
    /// What to count: `[[target]]`, at least one.
    #[serde(rename = "target", default)]
    pub targets: Vec<Target>,
    /// Syslog destinations, written to besides `output`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syslog: Vec<Syslog>,
    /// What `load` found worth saying but not wrong (a `user` unknown so
    /// far), each with its line: for stderr, not the file.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// The rates and durations as the file spelt them, for `effective`.
    #[serde(skip)]
    written: forms::Written,
}

/// `json_schema`: the field names of `json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonSchema {
    #[default]
    Netio,
    Ecs,
}

/// `output`, also `run --output`: where records go besides `[[syslog]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    #[default]
    Auto,
    Journal,
    Json,
    Text,
}

/// `[target.threshold] transport`: the bytes its rates count. Bytes netio
/// cannot tell the transport of (`other`, the peers a full traffic map
/// folded) count for either, so that none escapes a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transports {
    /// TCP and Unix sockets both.
    #[default]
    All,
    Tcp,
    Unix,
}

impl Transports {
    /// Whether a peer whose bytes went over `transport` (None: not known)
    /// counts for this.
    pub fn counts(self, transport: Option<&str>) -> bool {
        match (self, transport) {
            (Transports::All, _) | (_, None) => true,
            (Transports::Tcp, Some(t)) => t == "tcp",
            (Transports::Unix, Some(t)) => t == "unix",
        }
    }
}

/// `[target.threshold]`: warn when a target's traffic rate stays above a limit.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Threshold {
    /// The target's total send rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<Rate>,
    /// The target's total receive rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<Rate>,
    /// The send rate to any one peer (one client pulling too much).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_sent: Option<Rate>,
    /// The receive rate from any one peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_received: Option<Rate>,
    /// How long a rate must stay above (or, to recover, below) its limit.
    #[serde(rename = "for", with = "units::duration")]
    pub sustain: Duration,
    /// While a breach lasts, a reminder at most this often.
    #[serde(with = "units::duration")]
    pub reminder: Duration,
    /// Which transports' bytes the rates count.
    pub transport: Transports,
}

/// A threshold sets its rates; only the timings have defaults.
impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            sent: None,
            received: None,
            peer_sent: None,
            peer_received: None,
            sustain: DEFAULT_SUSTAIN,
            reminder: DEFAULT_REMINDER,
            transport: Transports::All,
        }
    }
}

/// `[capacity]`: kernel map sizes, fixed when netio starts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    /// Processes tracked at once (all targets, with their forked children).
    pub processes: u32,
    /// (process, client address) pairs counted separately at once. Beyond
    /// it, a process's new peers are folded into one `other` peer record and
    /// a degraded record says so; process totals stay exact.
    pub peers: u32,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            processes: DEFAULT_PROCESSES,
            peers: DEFAULT_PEERS,
        }
    }
}

/// One `[[target]]`: a database service, by process names, unit or cgroup.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Its records' `NETIO_TARGET`.
    pub name: String,
    /// Process names: the `comm` of the thread-group leader or the basename
    /// of its executable.
    #[serde(default)]
    pub process: Vec<String>,
    /// A systemd unit: every process in its cgroup, however it is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// A cgroup v2 path (below the cgroup2 mount, e.g.
    /// "/system.slice/postgresql.service"): every process in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Only processes running as one of these users (names or uids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Vec<User>>,
    /// Only processes running one of these executables (absolute paths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<Vec<PathBuf>>,
    /// Its processes' lifecycle records, if not as `[records] lifecycle`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Warnings for its rates; none without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
}

impl Target {
    /// The uids its processes may run as, its names looked up now: call
    /// again later, as a user created after netio started resolves then.
    /// `None`: any user.
    pub fn uids(&self) -> Option<Uids> {
        self.user.as_deref().map(users::resolve)
    }

    /// The executables its processes may run, as absolute paths; `None`:
    /// any.
    pub fn exes(&self) -> Option<&[PathBuf]> {
        self.exe.as_deref()
    }
}

/// serde's `default` takes a function, not a constant.
fn default_backend() -> BackendChoice {
    DEFAULT_BACKEND
}

impl Config {
    /// Reads and checks a file, and the files it names; errors name it.
    /// Only a file no one but root could have written is read (file.rs).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let bytes = read_trusted(path, MAX_FILE_BYTES).map_err(err)?;
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
        let mut config = Self::parse(&text).map_err(err)?;
        config
            .check_named_files()
            .map_err(|e| err(e.describe(&text)))?;
        config.warnings = config
            .notices()
            .iter()
            .map(|w| format!("{}: warning: {}", path.display(), w.describe(&text)))
            .collect();
        Ok(config)
    }

    /// The TLS files of `[[syslog]]` must be as trusted as the config.
    fn check_named_files(&self) -> Result<(), Invalid> {
        for (i, s) in self.syslog.iter().enumerate() {
            for (key, file) in [
                ("ca_file", &s.ca_file),
                ("client_cert", &s.client_cert),
                ("client_key", &s.client_key),
            ] {
                let Some(file) = file else { continue };
                if let Err(why) = read_trusted(file, MAX_TLS_FILE_BYTES) {
                    return Err(Invalid::at(
                        &[At::Key("syslog"), At::Index(i), At::Key(key)],
                        format!(
                            "[[syslog]] #{}: key `{key}`: {}: {why}",
                            i + 1,
                            file.display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Parses and checks a config's text; errors name the line and the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        if let Ok(doc) = toml_edit::ImDocument::parse(text) {
            config.written = forms::Written::of(&doc);
        }
        config.validate().map_err(|e| e.describe(text))?;
        Ok(config)
    }

    /// Map sizes. The name and cgroup maps get headroom so that a reload
    /// adding targets fits without reloading the programs; the cgroup map
    /// holds every group a path can resolve to, twice over.
    pub fn capacity(&self) -> Capacity {
        let names: u32 = self.targets.iter().map(|t| t.process.len() as u32).sum();
        let cgroups: u32 = self
            .targets
            .iter()
            .map(|t| t.unit.is_some() as u32 + t.cgroup.is_some() as u32)
            .sum();
        let uids: u32 = self
            .targets
            .iter()
            .filter_map(|t| t.user.as_ref().map(|u| u.len() as u32 + 1))
            .sum();
        Capacity {
            processes: self.capacity.processes,
            peers: self.capacity.peers,
            names: names.saturating_mul(2).max(256),
            // Each path resolves to up to MAX_GROUPS groups (itself and
            // those below it), the map holds twice that.
            cgroups: cgroups
                .max(1)
                .saturating_mul(2 * crate::discovery::MAX_GROUPS as u32)
                .min(MAX_CGROUP_IDS),
            uids: uids.saturating_mul(2).max(256),
        }
    }

    /// The config as netio runs it, defaults filled in, as TOML, with its
    /// rates and durations as the file wrote them; then, as comments, the
    /// uids its `user` names stand for now.
    pub fn effective(&self) -> String {
        let text = toml::to_string(self).expect("a config read from TOML writes as TOML");
        let mut doc: toml_edit::DocumentMut =
            text.parse().expect("toml writes TOML that toml_edit reads");
        self.written.restore(&mut doc);
        let mut text = doc.to_string();
        for t in &self.targets {
            if let Some(users) = &t.user {
                text.push_str(&format!(
                    "# target {:?} runs as: {}\n",
                    t.name,
                    users::describe(users)
                ));
            }
        }
        text
    }

    /// The target a process name belongs to.
    pub fn target_of(&self, process_name: &str) -> Option<u32> {
        self.targets
            .iter()
            .position(|t| t.process.iter().any(|p| p == process_name))
            .map(|i| i as u32)
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

    #[test]
    fn capacities_past_what_the_kernel_can_hold_are_refused() {
        let at = |key: &str, n: u64| format!("{GOOD}[capacity]\n{key} = {n}\n");
        for key in ["processes", "peers"] {
            assert!(Config::parse(&at(key, u64::from(MAX_PROCESSES))).is_ok());
            let e = Config::parse(&at(key, u64::from(MAX_PROCESSES) + 1)).unwrap_err();
            assert!(
                e.contains(&format!("key `{key}`")) && e.contains("1 to 4194304"),
                "{e}"
            );
            assert!(Config::parse(&at(key, 4294967295)).is_err());
        }
    }

    #[test]
    fn user_and_exe_constraints_read_check_and_resolve() {
        let c = Config::parse(&format!(
            "{GOOD}user = [\"root\", 65534, \"netio-no-such-user\"]\nexe = [\"/usr/sbin/x\"]\n"
        ))
        .unwrap();
        let t = &c.targets[0];
        assert_eq!(
            t.user.as_deref(),
            Some(
                &[
                    User::Name("root".into()),
                    User::Uid(65534),
                    User::Name("netio-no-such-user".into())
                ][..]
            )
        );
        let uids = t.uids().unwrap();
        assert_eq!(uids.uids.into_iter().collect::<Vec<_>>(), [0, 65534]);
        assert_eq!(uids.unknown, ["netio-no-such-user"]);
        assert_eq!(t.exes(), Some(&[PathBuf::from("/usr/sbin/x")][..]));
        let notes: Vec<String> = c.notices().iter().map(|n| n.describe("")).collect();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("no user \"netio-no-such-user\"")),
            "{notes:?}"
        );
        // Absent: no constraint.
        let plain = Config::parse(GOOD).unwrap();
        assert!(plain.targets[0].uids().is_none() && plain.targets[0].exes().is_none());
        for (bad, why) in [
            ("user = [\"my sql\"]", "not a user name"),
            ("user = [4294967295]", "out of range"),
            ("user = []", "empty"),
            ("exe = [\"x\"]", "not an absolute path"),
            ("exe = [\"/a/../b\"]", "no `.` or `..`"),
        ] {
            let e = Config::parse(&format!("{GOOD}{bad}\n")).unwrap_err();
            assert!(e.contains("line 5") && e.contains(why), "{bad}: {e}");
        }
    }

    /// A value of the wrong type, for each kind of key: what it is, what
    /// the key takes, and the right form, made of what was written where
    /// that says what was meant, else the key's example.
    #[test]
    fn a_value_of_the_wrong_type_gets_the_right_form_for_its_key() {
        let wrong = |config: String, want: &str| {
            assert_eq!(Config::parse(&config).unwrap_err(), want, "{config}");
        };
        let top = |line: &str| format!("{line}\n{GOOD}").replacen("interval = \"2s\"\n", "", 1);
        let end = |lines: &str| format!("{GOOD}{lines}\n");
        wrong(
            top("interval = 10"),
            "line 1: key `interval`: 10 is a number, but `interval` takes a duration in \
             quotes, a number and a unit: write interval = \"10s\" (at `interval = 10`)",
        );
        wrong(
            top("interval = 1.5"),
            "line 1: key `interval`: 1.5 is a number, but `interval` takes a duration in \
             quotes, a number and a unit: write interval = \"1.5s\" (at `interval = 1.5`)",
        );
        wrong(
            top("interval = true"),
            "line 1: key `interval`: true is a boolean, but `interval` takes a duration in \
             quotes, a number and a unit: like interval = \"10s\" (at `interval = true`)",
        );
        wrong(
            format!("backend = 5\n{GOOD}"),
            "line 1: key `backend`: 5 is a number, but `backend` takes a string in quotes: \
             like backend = \"tracepoint\" (at `backend = 5`)",
        );
        wrong(
            format!("output = [\"json\"]\n{GOOD}"),
            "line 1: key `output`: [\"json\"] is a list, but `output` takes a string in \
             quotes: write output = \"json\" (at `output = [\"json\"]`)",
        );
        wrong(
            end("[records]\nper_process = \"yes\""),
            "line 6: [records] key `per_process`: \"yes\" is a string, but `per_process` \
             takes true or false, without quotes: write per_process = true (at \
             `per_process = \"yes\"`)",
        );
        wrong(
            end("[records]\ntop_peers = -1"),
            "line 6: [records] key `top_peers`: -1 is negative, but `top_peers` takes a whole \
             number, without quotes: like top_peers = 3 (at `top_peers = -1`)",
        );
        wrong(
            end("[capacity]\npeers = 99999999999"),
            "line 6: [capacity] key `peers`: 99999999999 is too large, but `peers` takes a \
             whole number, without quotes: like peers = 32768 (at `peers = 99999999999`)",
        );
        wrong(
            end("[capacity]\nprocesses = \"64\""),
            "line 6: [capacity] key `processes`: \"64\" is a string, but `processes` takes a \
             whole number, without quotes: write processes = 64 (at `processes = \"64\"`)",
        );
        wrong(
            end("user = \"mysql\""),
            "line 5: [[target]] #1 (`db`): key `user`: \"mysql\" is a string, but `user` \
             takes a list of user names in quotes and uids, even of one: write user = \
             [\"mysql\"] (at `user = \"mysql\"`)",
        );
        wrong(
            end("user = [1.5]"),
            "line 5: [[target]] #1 (`db`): key `user`: 1.5 is a number, but each entry of \
             `user` is a user name in quotes or a uid: like user = [\"mysql\"] (at `user = \
             [1.5]`)",
        );
        wrong(
            end("cgroup = [\"/a\"]"),
            "line 5: [[target]] #1 (`db`): key `cgroup`: [\"/a\"] is a list, but `cgroup` \
             takes a string in quotes: write cgroup = \"/a\" (at `cgroup = [\"/a\"]`)",
        );
        wrong(
            end("threshold = \"high\""),
            "line 5: [[target]] #1 (`db`): key `threshold`: \"high\" is a string, but \
             `threshold` is a table: write [target.threshold] on a line of its own, with its \
             keys below it (at `threshold = \"high\"`)",
        );
        wrong(
            "interval = \"1s\"\n[target]\nname = \"db\"\n".into(),
            "line 2: key `target`: [target] is a table, but `target` is a list of tables: \
             write [[target]], in double brackets, on a line of its own for each, with its \
             keys below it (at `[target]`)",
        );
        wrong(
            end("[target.threshold]\nsent = 1048576"),
            "line 6: [[target]] #1 (`db`): [target.threshold] key `sent`: 1048576 is a \
             number, but `sent` takes a rate in quotes, a size per second: write sent = \
             \"1MiB/s\" (at `sent = 1048576`)",
        );
        wrong(
            end("[[syslog]]\naddress = \"/dev/log\"\nqueue = \"big\""),
            "line 7: [[syslog]] #1: key `queue`: \"big\" is a string, but `queue` takes a \
             whole number, without quotes: like queue = 50000 (at `queue = \"big\"`)",
        );
    }

    /// A missing required key is named with its table and how to add it;
    /// at the top level without a line, as toml's place for it is the
    /// file's start, often a comment.
    #[test]
    fn a_missing_key_is_named_with_its_table_and_how_to_add_it() {
        let no_interval = format!("# netio\n\n{GOOD}").replace("interval = \"2s\"\n", "");
        assert_eq!(
            Config::parse(&no_interval).unwrap_err(),
            "missing key `interval` at the top level: add it above the first [table], like \
             interval = \"10s\""
        );
        assert_eq!(
            Config::parse(&format!("{GOOD}[[syslog]]\ntransport = \"tcp\"\n")).unwrap_err(),
            "line 5: [[syslog]] #1: missing key `address`: add it, like address = \
             \"logs.example.net:6514\" (at `[[syslog]]`)"
        );
        assert_eq!(
            Config::parse(&format!("{GOOD}[[target]]\nprocess = [\"x\"]\n")).unwrap_err(),
            "line 5: [[target]] #2: missing key `name`: add it, like name = \"postgresql\" \
             (at `[[target]]`)"
        );
    }

    /// `for` shorter than one interval, written or by default, is allowed
    /// and warned of: it works as one interval.
    #[test]
    fn a_sustain_shorter_than_the_interval_is_a_warning_saying_what_it_does() {
        let notes = |text: &str| -> Vec<String> {
            let c = Config::parse(text).unwrap();
            c.notices().iter().map(|n| n.describe(text)).collect()
        };
        let th = |interval: &str, lines: &str| {
            format!("{GOOD}[target.threshold]\nsent = \"1MiB/s\"\n{lines}").replacen(
                "\"2s\"",
                &format!("{interval:?}"),
                1,
            )
        };
        assert_eq!(
            notes(&th("10000ms", "for = \"2s\"\n")),
            [
                "line 7: [[target]] #1 (`db`): [target.threshold] key `for`: \"2s\" is shorter \
              than one interval (\"10000ms\"): netio sees a rate once an interval, so one \
              interval above the limit is a breach, and one at or below it a recovery; write \
              for = \"10s\" to say so, or shorten the interval (at `for = \"2s\"`)"
            ]
        );
        assert_eq!(
            notes(&th("1m", "")),
            [
                "line 5: [[target]] #1 (`db`): [target.threshold] has no `for`, and its default, \
              \"30s\", is shorter than one interval (\"1m\"): netio sees a rate once an \
              interval, so one interval above the limit is a breach, and one at or below it a \
              recovery; write for = \"1m\" to say so (at `[target.threshold]`)"
            ]
        );
        assert!(notes(&th("10s", "for = \"10s\"\n")).is_empty());
        assert!(notes(&th("10s", "")).is_empty());
    }

    /// check-config prints rates and durations as the file wrote them;
    /// defaults as netio writes them.
    #[test]
    fn the_effective_config_keeps_rates_and_durations_as_written() {
        let text = format!(
            "{GOOD}[target.threshold]\nsent = \"50MB/s\"\nreceived = \"400 Mbit/s\"\nfor = \"90s\"\n"
        )
        .replace("\"2s\"", "\"2000ms\"");
        let printed = Config::parse(&text).unwrap().effective();
        for line in [
            "interval = \"2000ms\"",
            "sent = \"50MB/s\"",
            "received = \"400 Mbit/s\"",
            "for = \"90s\"",
            "reminder = \"10m\"",
        ] {
            assert!(
                printed.lines().any(|l| l == line),
                "no {line:?} in:\n{printed}"
            );
        }
    }

    #[test]
    fn the_effective_config_reads_back_as_itself() {
        let full = format!(
            "{GOOD}unit = \"db.service\"\n[target.threshold]\nsent = \"1500000B/s\"\nfor = \"1m 30s\"\n[[syslog]]\ntransport = \"tls\"\naddress = \"[::1]:6514\"\nca_file = \"/etc/ca.pem\"\n"
        );
        let first = Config::parse(&full).unwrap().effective();
        assert!(
            first.contains("sent = \"1500000B/s\"\nfor = \"1m 30s\""),
            "{first}"
        );
        assert_eq!(Config::parse(&first).unwrap().effective(), first);
    }
}
