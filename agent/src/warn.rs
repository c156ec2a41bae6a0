//! Warnings for whoever reads netio's stderr: a condition that lasts is
//! worth one line, not one per interval or per process.
//!
//! Two ways. `Warnings::once` says a message once for the life of the
//! agent (a unit without a cgroup). `limited` (the `tell_limited!` macro)
//! is for a kind of warning that can come in floods, one per process per
//! interval ("cannot track process N"): per kind, the first is said in
//! full; the ones after it are counted, and at most once a `WINDOW` one
//! line says how many there were and the last of them. A kind that was
//! quiet for a whole window is said in full again the next time. At exit
//! every pending count is said (`finish`).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Warnings {
    said: HashSet<String>,
}

impl Warnings {
    /// Says `msg` on stderr unless it was said before.
    pub fn once(&mut self, msg: String) {
        if !self.said.contains(&msg) {
            tell!("netio: {msg}");
            self.said.insert(msg);
        }
    }
}

/// How often, at most, a summary line per kind of warning.
pub const WINDOW: Duration = Duration::from_secs(60);

/// One kind of warning being limited.
#[derive(Debug)]
struct Kind {
    name: &'static str,
    /// When its window began: the full line, or the last summary.
    since: Instant,
    /// Warnings of the kind not said since then.
    held: u64,
    /// The last of them.
    last: String,
}

/// The kinds seen lately and their counts.
#[derive(Debug, Default)]
pub struct Limiter {
    kinds: Vec<Kind>,
}

impl Limiter {
    /// `msg` of kind `name` at `now`: the lines to say now (the message, a
    /// summary that fell due, or nothing).
    pub fn warn(&mut self, name: &'static str, msg: String, now: Instant) -> Vec<String> {
        let mut out = self.tick(now);
        match self.kinds.iter_mut().find(|k| k.name == name) {
            Some(k) => {
                k.held += 1;
                k.last = msg;
            }
            None => {
                out.push(msg);
                self.kinds.push(Kind {
                    name,
                    since: now,
                    held: 0,
                    last: String::new(),
                });
            }
        }
        out
    }

    /// The summaries due at `now`; kinds quiet for a window are forgotten.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        self.kinds.retain_mut(|k| {
            if now.duration_since(k.since) < WINDOW {
                return true;
            }
            if k.held == 0 {
                return false;
            }
            out.push(summary(k, now));
            k.held = 0;
            k.since = now;
            true
        });
        out
    }

    /// Every count not said yet, whatever its window.
    pub fn finish(&mut self, now: Instant) -> Vec<String> {
        let out = self
            .kinds
            .iter()
            .filter(|k| k.held > 0)
            .map(|k| summary(k, now))
            .collect();
        self.kinds.clear();
        out
    }
}

fn summary(k: &Kind, now: Instant) -> String {
    let secs = now.duration_since(k.since).as_secs().max(1);
    format!(
        "netio: {} more \"{}\" warning{} in the last {secs} s, the last: {}",
        k.held,
        k.name,
        if k.held == 1 { "" } else { "s" },
        k.last.strip_prefix("netio: ").unwrap_or(&k.last)
    )
}

static LIMITER: Mutex<Limiter> = Mutex::new(Limiter { kinds: Vec::new() });

fn with_limiter(f: impl FnOnce(&mut Limiter, Instant) -> Vec<String>) {
    let lines = {
        let mut l = LIMITER.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut l, Instant::now())
    };
    for line in lines {
        crate::stderr::note(&line);
    }
}

/// Says `msg`, a warning of kind `name`, within the kind's limit.
pub fn limited(name: &'static str, msg: String) {
    with_limiter(|l, now| l.warn(name, msg, now));
}

/// Says the summaries that fell due: called once per interval.
pub fn tick() {
    with_limiter(|l, now| l.tick(now));
}

/// At exit: says every count not said yet.
pub fn finish() {
    with_limiter(|l, now| l.finish(now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_said_then_a_count_per_window_then_in_full_after_quiet() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut l = Limiter::default();
        let msg = |pid: u32| format!("netio: cannot track process {pid}: E2BIG");
        assert_eq!(l.warn("cannot track", msg(1), at(0)), vec![msg(1)]);
        for pid in 2..=50 {
            assert!(l.warn("cannot track", msg(pid), at(1)).is_empty());
        }
        // Another kind has its own first line.
        assert_eq!(l.warn("other", "netio: x".into(), at(2)), vec!["netio: x"]);
        assert!(l.tick(at(59)).is_empty(), "not before the window ends");
        assert_eq!(
            l.tick(at(60)),
            vec!["netio: 49 more \"cannot track\" warnings in the last 60 s, the last: cannot track process 50: E2BIG"]
        );
        // Still coming: counted into the next window.
        assert!(l.warn("cannot track", msg(51), at(61)).is_empty());
        assert_eq!(l.finish(at(70)).len(), 1, "said at exit");
        // Quiet for a window: said in full again.
        let mut l = Limiter::default();
        l.warn("cannot track", msg(1), at(0));
        assert!(l.tick(at(60)).is_empty());
        assert_eq!(l.warn("cannot track", msg(2), at(61)), vec![msg(2)]);
    }
}
