//! The reload policy: which keys a SIGHUP changes in place and which wait
//! for the next start, because what they shape (the kernel maps, the
//! loaded programs, the sinks) is made once when netio starts.

use super::Config;

impl Config {
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
    use std::time::Duration;

    use super::super::{JsonSchema, Output};
    use super::*;

    const RUNNING: &str =
        "interval = \"10s\"\n[[target]]\nname = \"db\"\nprocess = [\"postgres\"]\n";

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
