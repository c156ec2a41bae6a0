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
    #[serde(default)]
    pub capacity: CapacityConfig,
    #[serde(rename = "target", default)]
    pub targets: Vec<Target>,
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
    pub process: Vec<String>,
}

fn default_processes() -> u32 {
    4096
}
fn default_peers() -> u32 {
    16384
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
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.interval < Duration::from_millis(100) {
            return Err(format!(
                "key `interval`: {} is too short; use at least \"100ms\"",
                humantime::format_duration(self.interval)
            ));
        }
        if self.capacity.processes == 0 || self.capacity.peers == 0 {
            return Err("key `capacity`: processes and peers must be at least 1".into());
        }
        if self.targets.is_empty() {
            return Err("no [[target]]: add at least one with a name and process names".into());
        }
        if self.targets.len() > u16::MAX as usize {
            return Err(format!(
                "{} targets; at most {}",
                self.targets.len(),
                u16::MAX
            ));
        }
        let mut seen = HashSet::new();
        let mut names = HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let at = format!("[[target]] #{} (`{}`)", i + 1, t.name);
            if t.name.trim().is_empty() {
                return Err(format!("[[target]] #{}: key `name` is empty", i + 1));
            }
            if !seen.insert(t.name.as_str()) {
                return Err(format!(
                    "{at}: key `name`: a target of that name exists already"
                ));
            }
            if t.process.is_empty() {
                return Err(format!(
                    "{at}: key `process` is empty: list at least one process name"
                ));
            }
            for p in &t.process {
                if p.is_empty() || p.contains('/') || p.contains('\0') {
                    return Err(format!(
                        "{at}: key `process`: {p:?} is not a process name (no path, not empty)"
                    ));
                }
                if !names.insert(p.as_str()) {
                    return Err(format!(
                        "{at}: key `process`: {p:?} is listed by two targets"
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn capacity(&self) -> Capacity {
        let names = self.targets.iter().map(|t| t.process.len() as u32).sum();
        Capacity {
            processes: self.capacity.processes,
            peers: self.capacity.peers,
            names,
        }
    }

    /// The target a process name belongs to.
    pub fn target_of(&self, process_name: &str) -> Option<u32> {
        self.targets
            .iter()
            .position(|t| t.process.iter().any(|p| p == process_name))
            .map(|i| i as u32)
    }
}

/// toml's errors carry a byte span; operators want a line number and the key.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim_end().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {msg} (at `{snippet}`)")
        }
        None => msg,
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
