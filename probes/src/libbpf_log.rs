//! libbpf's own messages, captured for the attempt under way: the reason
//! behind a bare "Operation not permitted" is usually in them, and the hint
//! drawn from them goes into the error the user reads.

use std::fmt;
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

/// The messages since the last [`clear`], at most [`MAX_LINES`] of them.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Enough for a verifier's last words; a runaway log stays bounded.
const MAX_LINES: usize = 200;

/// Routes libbpf's messages (info and above) into the capture.
pub(crate) fn capture() {
    libbpf_rs::set_print(Some((PrintLevel::Info, keep)));
}

fn keep(level: PrintLevel, msg: String) {
    if level == PrintLevel::Debug {
        return;
    }
    if let Ok(mut log) = LOG.lock() {
        if log.len() < MAX_LINES {
            log.push(msg.trim_end().to_string());
        }
    }
}

/// Forgets what earlier attempts logged.
pub(crate) fn clear() {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The useful part of libbpf's log for a failed step, rendered after the
/// error it explains: " (libbpf: ...)", or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibbpfHint(String);

impl fmt::Display for LibbpfHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " (libbpf: {})", self.0)
        }
    }
}

/// Takes the log so far: which program failed and the verifier's last word
/// on it (the line before "processed N insns"), else the last line that
/// reports a failure.
pub(crate) fn hint() -> LibbpfHint {
    let log = std::mem::take(&mut *LOG.lock().unwrap_or_else(|e| e.into_inner()));
    hint_of(&log)
}

fn hint_of(log: &[String]) -> LibbpfHint {
    let lines: Vec<&str> = log.iter().flat_map(|m| m.lines()).map(str::trim).collect();
    let prog = lines.iter().find(|l| {
        l.contains("prog '") && (l.contains("failed to load") || l.contains("load failed"))
    });
    let verifier = lines
        .iter()
        .position(|l| l.starts_with("processed ") && l.contains(" insns"))
        .and_then(|i| {
            lines[..i]
                .iter()
                .rev()
                .find(|l| !l.is_empty() && !l.starts_with(';'))
        });
    let last = lines
        .iter()
        .rev()
        .find(|l| l.contains("failed") || l.contains("error") || l.contains("Error"));
    let parts: Vec<String> = match (prog, verifier) {
        (Some(p), Some(v)) => vec![p.to_string(), format!("verifier: {v}")],
        (Some(p), None) => vec![p.to_string()],
        (None, _) => last.map(|l| vec![l.to_string()]).unwrap_or_default(),
    };
    LibbpfHint(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::hint_of;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn a_hint_names_the_program_and_the_verifiers_last_word() {
        let h = hint_of(&log(&[
            "libbpf: prog 'fexit_tcp_sendmsg': BPF program load failed: -EINVAL",
            "libbpf: prog 'fexit_tcp_sendmsg': -- BEGIN PROG LOAD LOG --\nR1 invalid mem access\n; comment\nprocessed 12 insns (limit 1000000)",
        ]));
        assert_eq!(
            h.to_string(),
            " (libbpf: libbpf: prog 'fexit_tcp_sendmsg': BPF program load failed: -EINVAL; \
             verifier: R1 invalid mem access)"
        );
    }

    #[test]
    fn a_hint_without_a_program_is_the_last_failure_and_without_one_nothing() {
        let h = hint_of(&log(&["libbpf: map 'x': failed to create", "all fine"]));
        assert_eq!(
            h.to_string(),
            " (libbpf: libbpf: map 'x': failed to create)"
        );
        assert_eq!(hint_of(&log(&["all fine"])).to_string(), "");
    }
}
