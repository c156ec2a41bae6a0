//! The reload policy: which keys a SIGHUP changes in place and which wait
//! for the next start, because what they shape (the kernel maps, the
//! loaded programs, the sinks) is made once when netio starts.

use std::time::Duration;

use super::{Config, Target};

/// What a reload changed that takes effect at once, for its record.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Targets by name, in the order of the file they are in.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Targets that now match other processes (process, unit, cgroup,
    /// user or exe changed).
    pub matching: Vec<String>,
    /// Targets whose `[target.threshold]` was added, removed or changed.
    pub thresholds: Vec<String>,
    /// The new interval, when it changed.
    pub interval: Option<Duration>,
}

/// Whether two configs of one target match the same processes.
fn same_matching(a: &Target, b: &Target) -> bool {
    a.process == b.process
        && a.unit == b.unit
        && a.cgroup == b.cgroup
        && a.user == b.user
        && a.exe == b.exe
}

impl Config {
    /// What this config changes against the running one.
    pub fn changes_from(&self, running: &Config) -> Changes {
        let find = |c: &Config, name: &str| -> Option<Target> {
            c.targets.iter().find(|t| t.name == name).cloned()
        };
        let mut ch = Changes::default();
        for t in &self.targets {
            match find(running, &t.name) {
                None => ch.added.push(t.name.clone()),
                Some(old) => {
                    if !same_matching(&old, t) {
                        ch.matching.push(t.name.clone());
                    }
                    if old.threshold != t.threshold {
                        ch.thresholds.push(t.name.clone());
                    }
                }
            }
        }
        for t in &running.targets {
            if find(self, &t.name).is_none() {
                ch.removed.push(t.name.clone());
            }
        }
        ch.interval = (self.interval != running.interval).then_some(self.interval);
        ch
    }

    /// Takes the running config's values of the keys only a restart
    /// changes, and returns a note for each group of them this config
    /// changed: the `config_reloaded` record's message.
    pub fn keep_startup_keys(&mut self, running: &Config) -> Vec<&'static str> {
        let mut notes = Vec::new();
        let mut note = |changed: bool, note: &'static str| {
            if changed {
                notes.push(note);
            }
        };
        note(
            keep(&mut self.capacity, &running.capacity),
            "capacity changes take effect at the next start",
        );
        note(
            keep(&mut self.backend, &running.backend),
            "backend changes take effect at the next start",
        );
        // `|`, not `||`: the schema is kept even when the output changed too.
        note(
            keep(&mut self.output, &running.output)
                | keep(&mut self.json_schema, &running.json_schema),
            "output changes take effect at the next start",
        );
        note(
            keep(&mut self.syslog, &running.syslog),
            "syslog changes take effect at the next start",
        );
        notes
    }
}

/// Puts the running value back; whether the new one differed.
fn keep<T: PartialEq + Clone>(new: &mut T, running: &T) -> bool {
    let changed = new != running;
    if changed {
        new.clone_from(running);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::super::{JsonSchema, Output};
    use super::*;

    const RUNNING: &str =
        "interval = \"10s\"\n[[target]]\nname = \"db\"\nprocess = [\"postgres\"]\n";

    #[test]
    fn changes_name_the_targets_added_removed_rematched_and_rethresholded() {
        let running = Config::parse(&format!(
            "{RUNNING}[[target]]\nname = \"pg\"\nprocess = [\"postmaster\"]\n\
             [target.threshold]\nsent = \"1MiB/s\"\n\
             [[target]]\nname = \"kv\"\nprocess = [\"redis-server\"]\n"
        ))
        .unwrap();
        let same = Config::parse(&format!(
            "{RUNNING}[[target]]\nname = \"pg\"\nprocess = [\"postmaster\"]\n\
             [target.threshold]\nsent = \"1048576B/s\"\n\
             [[target]]\nname = \"kv\"\nprocess = [\"redis-server\"]\n"
        ))
        .unwrap();
        assert_eq!(
            same.changes_from(&running),
            Changes::default(),
            "the same rate spelt another way is no change"
        );
        let new = Config::parse(&format!(
            "{}[[target]]\nname = \"pg\"\nprocess = [\"postmaster\"]\n\
             [target.threshold]\nsent = \"2MiB/s\"\n\
             [[target]]\nname = \"maria\"\nprocess = [\"mariadbd\"]\n",
            RUNNING
                .replace("10s", "5s")
                .replace("[\"postgres\"]", "[\"postgres\", \"pg2\"]")
        ))
        .unwrap();
        assert_eq!(
            new.changes_from(&running),
            Changes {
                added: vec!["maria".into()],
                removed: vec!["kv".into()],
                matching: vec!["db".into()],
                thresholds: vec!["pg".into()],
                interval: Some(Duration::from_secs(5)),
            }
        );
    }

    #[test]
    fn an_unchanged_startup_key_leaves_no_note() {
        let running = Config::parse(RUNNING).unwrap();
        let mut new = Config::parse(&RUNNING.replace("10s", "1s")).unwrap();
        assert!(new.keep_startup_keys(&running).is_empty());
        assert_eq!(new.interval, Duration::from_secs(1));
    }

    #[test]
    fn startup_keys_keep_their_running_values_and_say_so_in_order() {
        let running = Config::parse(RUNNING).unwrap();
        let changed = format!(
            "backend = \"kprobe\"\njson_schema = \"ecs\"\n{}[capacity]\npeers = 1\n[[syslog]]\naddress = \"/dev/log\"\n[[target]]\nname = \"redis\"\nprocess = [\"redis-server\"]\n",
            RUNNING.replace("10s", "1s")
        );
        let mut new = Config::parse(&changed).unwrap();
        assert_eq!(
            new.keep_startup_keys(&running),
            [
                "capacity changes take effect at the next start",
                "backend changes take effect at the next start",
                "output changes take effect at the next start",
                "syslog changes take effect at the next start",
            ]
        );
        assert_eq!(new.capacity, running.capacity);
        assert_eq!(new.backend, running.backend);
        assert_eq!(new.output, Output::Auto);
        assert_eq!(new.json_schema, JsonSchema::Netio);
        assert!(new.syslog.is_empty());
        // Everything else takes effect at once.
        assert_eq!(new.interval, Duration::from_secs(1));
        assert_eq!(new.targets.len(), 2);
    }
}
