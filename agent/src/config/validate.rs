//! The rules a config must meet beyond its types: ranges, names, and keys
//! that go together. Each refusal names the key and the way to it, so that
//! `Invalid::describe` can give its line.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use super::error::{shown, At, Invalid, Step};
use super::syslog::{Syslog, Transport, FACILITIES};
use super::users::User;
use super::{Config, MAX_PEERS, MAX_PROCESSES};

impl Config {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
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
        for (key, n, max, why) in [
            (
                "processes",
                self.capacity.processes,
                MAX_PROCESSES,
                "the most processes Linux can have at once",
            ),
            (
                "peers",
                self.capacity.peers,
                MAX_PEERS,
                "each takes kernel memory on every CPU: see docs/config.md",
            ),
        ] {
            if n == 0 || n > max {
                return Err(Invalid::at(
                    &[At::Key("capacity"), At::Key(key)],
                    format!("[capacity] key `{key}`: {n} is out of range; use 1 to {max} ({why})"),
                ));
            }
        }
        if self.records.top_processes == 0 {
            return Err(Invalid::at(
                &[At::Key("records"), At::Key("top_processes")],
                "[records] key `top_processes`: 0 is out of range; use 1 or more (the \
                 processes past it share one record), or per_process = false for none",
            ));
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
            if let Some(users) = &t.user {
                if users.is_empty() {
                    return bad(
                        &[At::Key("user")],
                        "key `user` is empty: leave it out to allow any user".into(),
                    );
                }
                for (j, u) in users.iter().enumerate() {
                    if let Some(why) = u.invalid() {
                        return bad(
                            &[At::Key("user"), At::Index(j)],
                            format!("key `user`: {why}"),
                        );
                    }
                }
            }
            if let Some(exes) = &t.exe {
                if exes.is_empty() {
                    return bad(
                        &[At::Key("exe")],
                        "key `exe` is empty: leave it out to allow any executable".into(),
                    );
                }
                for (j, e) in exes.iter().enumerate() {
                    if let Some(why) = exe_invalid(e) {
                        return bad(&[At::Key("exe"), At::Index(j)], format!("key `exe`: {why}"));
                    }
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
}

/// Why `exe` could never name a process's executable, if it could not: the
/// kernel names one by its absolute path, with no `.`, `..` or empty part.
fn exe_invalid(exe: &Path) -> Option<String> {
    let text = exe.to_string_lossy();
    let Some(rest) = text.strip_prefix('/') else {
        return Some(format!(
            "{} is not an absolute path like \"/usr/sbin/mariadbd\"",
            shown(&text)
        ));
    };
    if text.len() >= 4096 || text.contains('\0') {
        return Some(format!("{} is not a path", shown(&text)));
    }
    if rest.split('/').any(|part| ["", ".", ".."].contains(&part)) {
        return Some(format!(
            "{} is not a file's path as the kernel writes it: no `.` or `..`, no `//`, no `/` at the end",
            shown(&text)
        ));
    }
    None
}

impl Config {
    /// What is allowed but likely not what was meant, in this system as it
    /// is now: a `user` name it does not know, an `exe` that is not there
    /// or is a symlink (a process's executable is the file itself).
    pub(super) fn notices(&self) -> Vec<Invalid> {
        let mut notes = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let here = [At::Key("target"), At::Index(i)];
            let at = format!("[[target]] #{} (`{}`)", i + 1, t.name);
            if let Some(note) = self.short_sustain(i) {
                notes.push(note.within(&here, &at));
            }
            let unknown = t.uids().map(|u| u.unknown).unwrap_or_default();
            for name in unknown {
                let j = t
                    .user
                    .iter()
                    .flatten()
                    .position(|u| *u == User::Name(name.clone()));
                let note = format!(
                    "key `user`: no user {name:?} on this system (yet): until there is, no process counts as this user"
                );
                let way = [At::Key("user"), At::Index(j.unwrap_or_default())];
                notes.push(Invalid::at(&way, note).within(&here, &at));
            }
            for (j, exe) in t.exes().into_iter().flatten().enumerate() {
                let note = match std::fs::canonicalize(exe) {
                    Ok(real) if real != *exe => format!(
                        "key `exe`: {} resolves to {}: a process's executable is the file itself, so no process runs {0}; write {1:?}",
                        exe.display(),
                        real.display()
                    ),
                    Ok(_) => continue,
                    Err(e) => format!(
                        "key `exe`: {}: {e} (yet): until it is there, no process runs it",
                        exe.display()
                    ),
                };
                notes.push(Invalid::at(&[At::Key("exe"), At::Index(j)], note).within(&here, &at));
            }
        }
        notes
    }
}

impl Config {
    /// A threshold `for` shorter than one interval, written or by default,
    /// works as one interval: a rate is seen once an interval. Allowed (it
    /// says "the first interval above"), but said, with the form that says
    /// what it does. docs/config.md gives the reasons.
    fn short_sustain(&self, target: usize) -> Option<Invalid> {
        let th = self.targets[target].threshold.as_ref()?;
        if th.sustain >= self.interval {
            return None;
        }
        let spelt = |way: &[Step], d: Duration| {
            self.written
                .at(way)
                .map_or_else(|| humantime::format_duration(d).to_string(), str::to_string)
        };
        let key = |k: &str| Step::Key(k.to_string());
        let sustain_way = [
            key("target"),
            Step::Index(target),
            key("threshold"),
            key("for"),
        ];
        let interval = shown(&spelt(&[key("interval")], self.interval));
        let does = "netio sees a rate once an interval, so one interval above the limit is a \
                    breach, and one at or below it a recovery";
        let right = format!(
            "for = {}",
            shown(&humantime::format_duration(self.interval).to_string())
        );
        let (way, note) = match self.written.at(&sustain_way) {
            Some(written) => (
                vec![At::Key("threshold"), At::Key("for")],
                format!(
                    "[target.threshold] key `for`: {} is shorter than one interval \
                     ({interval}): {does}; write {right} to say so, or shorten the interval",
                    shown(written)
                ),
            ),
            None => (
                vec![At::Key("threshold")],
                format!(
                    "[target.threshold] has no `for`, and its default, {}, is shorter than \
                     one interval ({interval}): {does}; write {right} to say so",
                    shown(&spelt(&sustain_way, th.sustain))
                ),
            ),
        };
        Some(Invalid::at(&way, note))
    }
}

impl Syslog {
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
}
