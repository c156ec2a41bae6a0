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
    // libbpf starts its messages with "libbpf: ", which the hint says once.
    let lines: Vec<&str> = log
        .iter()
        .flat_map(|m| m.lines())
        .map(|l| l.trim().trim_start_matches("libbpf: "))
        .collect();
    let prog = lines.iter().find(|l| {
        l.contains("prog '") && (l.contains("failed to load") || l.contains("load failed"))
    });
    // The verifier's last word; a log that is only libbpf's markers (a
    // program refused before the verifier ran) has none.
    let verifier = lines
        .iter()
        .position(|l| l.starts_with("processed ") && l.contains(" insns"))
        .and_then(|i| {
            lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.ends_with("-- BEGIN PROG LOAD LOG --"))
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
            "libbpf: prog 'fexit_tcp_sendmsg': -- BEGIN PROG LOAD LOG --\nR1 invalid mem access\n; comment\nprocessed 12 insns (limit 1000000)\n-- END PROG LOAD LOG --",
        ]));
        assert_eq!(
            h.to_string(),
            " (libbpf: prog 'fexit_tcp_sendmsg': BPF program load failed: -EINVAL; \
             verifier: R1 invalid mem access)"
        );
    }

    #[test]
    fn a_hint_without_a_program_is_the_last_failure_and_without_one_nothing() {
        let h = hint_of(&log(&["libbpf: map 'x': failed to create", "all fine"]));
        assert_eq!(h.to_string(), " (libbpf: map 'x': failed to create)");
        assert_eq!(hint_of(&log(&["all fine"])).to_string(), "");
    }

    /// What libbpf logs when the kernel refuses a program before verifying
    /// it (EPERM on Linux 6.18, as root): no verifier words to quote.
    #[test]
    fn a_program_refused_before_the_verifier_ran_has_no_verifier_part() {
        let h = hint_of(&log(&[
            "libbpf: prog 'iter_drain_sockets': BPF program load failed: -EPERM",
            "libbpf: permission error while running as root; try raising 'ulimit -l'? current value: 8.0 MiB",
            "libbpf: prog 'iter_drain_sockets': -- BEGIN PROG LOAD LOG --\nprocessed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n-- END PROG LOAD LOG --",
            "libbpf: prog 'iter_drain_sockets': failed to load: -EPERM",
            "libbpf: failed to load object 'netio_bpf'",
            "libbpf: failed to load BPF skeleton 'netio_bpf': -EPERM",
        ]));
        assert_eq!(
            h.to_string(),
            " (libbpf: prog 'iter_drain_sockets': BPF program load failed: -EPERM)"
        );
    }
}
