//! Reading netio.service's records back with journalctl: a child process
//! whose JSON lines are parsed one at a time as they come, so a long span
//! costs time, not memory. journalctl rather than libsystemd: it is on
//! every host that has a journal, needs no library at build or run time,
//! and already reads every journal file format, compressed or not.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::aggregate::{By, TRUSTED_UID, TRUSTED_UNIT, UID, UNIT};
use crate::record::field;

/// Which journal to read: the system's, or files an operator names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// `journalctl --directory`: the journal files in a directory.
    pub directory: Option<PathBuf>,
    /// `journalctl --file`: one file, or a glob of them.
    pub file: Option<String>,
}

/// The fields a report reads; journalctl's JSON carries only these (and
/// its cursor and timestamps), whatever else an entry holds.
const FIELDS: [&str; 23] = [
    UNIT,
    UID,
    field::EVENT,
    field::SCOPE,
    field::TARGET,
    field::PID,
    field::COMM,
    field::PEER_ADDRESS,
    field::TRANSPORT,
    field::PEER_PID,
    field::PEER_UID,
    field::PEER_COMM,
    field::PROCESSES,
    field::SENT_BYTES,
    field::RECEIVED_BYTES,
    field::SENT_BYTES_PER_SEC,
    field::RECEIVED_BYTES_PER_SEC,
    field::DIRECTION,
    field::RATE,
    field::THRESHOLD,
    field::REASON,
    field::COUNT,
    field::LOST_BYTES,
];

/// The journalctl arguments: the span, then two match groups joined by
/// `+` (OR), each held to netio.service's root: traffic records of the
/// report's scope; the threshold and degraded records.
pub fn arguments(source: &Source, since: Option<&str>, until: Option<&str>, by: By) -> Vec<String> {
    let mut args = vec![
        "--no-pager".to_string(),
        "--all".into(),
        "--output=json".into(),
        format!("--output-fields={}", FIELDS.join(",")),
    ];
    if let Some(d) = &source.directory {
        args.push(format!("--directory={}", d.display()));
    }
    if let Some(f) = &source.file {
        args.push(format!("--file={f}"));
    }
    if let Some(s) = since {
        args.push(format!("--since={s}"));
    }
    if let Some(u) = until {
        args.push(format!("--until={u}"));
    }
    let trusted = [
        format!("{UNIT}={TRUSTED_UNIT}"),
        format!("{UID}={TRUSTED_UID}"),
    ];
    let event = |e: &str| format!("{}={e}", field::EVENT);
    args.extend(trusted.iter().cloned());
    args.push(event("traffic"));
    // `--by peer` reads a target's peer records, which it prefers, and
    // the target records that open each interval (aggregate.rs).
    let scopes: &[&str] = match by {
        By::Peer => &["target", "target_peer", "peer"],
        _ => &[by.scope()],
    };
    for scope in scopes {
        args.push(format!("{}={scope}", field::SCOPE));
    }
    args.push("+".into());
    args.extend(trusted.iter().cloned());
    for e in [
        "threshold_exceeded",
        "threshold_reminder",
        "threshold_recovered",
        "degraded",
    ] {
        args.push(event(e));
    }
    args
}

/// What journalctl said on stderr besides the entries: its hints (a user
/// who may not read the system journal), or why it failed.
pub struct Said {
    pub stderr: Vec<String>,
}

/// Runs journalctl with `args` and hands each entry to `each`, in the
/// journal's time order.
pub fn read(args: &[String], mut each: impl FnMut(&Value)) -> Result<Said, String> {
    let mut child = Command::new("journalctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "journalctl was not found: `netio report` reads the \
                 systemd journal with it (Debian and RPM package systemd); is this a host \
                 without systemd's journal?"
                .to_string(),
            _ => format!("could not run journalctl: {e}"),
        })?;
    let err = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || first_lines(err, 20));
    let out = child.stdout.take().expect("stdout is piped");
    let mut broken = None;
    for line in BufReader::new(out).lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                broken = Some(format!("reading journalctl's output: {e}"));
                break;
            }
        };
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => each(&v),
            Err(e) => {
                broken = Some(format!("journalctl wrote a line that is not JSON ({e})"));
                break;
            }
        }
    }
    if broken.is_some() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for journalctl: {e}"))?;
    let stderr = stderr.join().unwrap_or_default();
    if let Some(why) = broken {
        return Err(why);
    }
    if !status.success() {
        let said = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {}", stderr.join("; ").trim_end_matches('.'))
        };
        let hint = if said.to_lowercase().contains("permission") {
            "; reading the system journal needs root, or the group systemd-journal or adm"
        } else {
            ""
        };
        return Err(format!("journalctl failed ({status}){said}{hint}"));
    }
    Ok(Said { stderr })
}

/// Up to `n` lines of a child's stderr, the rest read and dropped so the
/// child never waits on a full pipe.
fn first_lines(r: impl Read, n: usize) -> Vec<String> {
    let mut kept = Vec::new();
    for line in BufReader::new(r).lines().map_while(Result::ok) {
        if kept.len() < n && !line.trim().is_empty() {
            kept.push(crate::record::printable(&line).into_owned());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_match_group_is_held_to_netio_service_as_root() {
        let args = arguments(&Source::default(), Some("@100"), None, By::Peer);
        let groups: Vec<&[String]> = args
            .split(|a| a == "+")
            .map(|g| {
                let start = g.iter().position(|a| !a.starts_with("--")).unwrap_or(0);
                &g[start..]
            })
            .collect();
        assert_eq!(groups.len(), 2);
        for g in &groups {
            assert!(g.contains(&"_SYSTEMD_UNIT=netio.service".to_string()));
            assert!(g.contains(&"_UID=0".to_string()));
        }
        for scope in ["peer", "target_peer", "target"] {
            assert!(groups[0].contains(&format!("NETIO_SCOPE={scope}")));
        }
        assert!(args.contains(&"--since=@100".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--until")));
    }

    #[test]
    fn the_output_fields_include_the_trusted_ones_the_aggregate_checks() {
        let args = arguments(&Source::default(), None, None, By::Target);
        let fields = args
            .iter()
            .find_map(|a| a.strip_prefix("--output-fields="))
            .unwrap();
        let read_by_the_aggregate = [
            "_SYSTEMD_UNIT",
            "_UID",
            "NETIO_COUNT",
            "NETIO_SENT_BYTES",
            "NETIO_PEER_PID",
            "NETIO_PEER_UID",
            "NETIO_PEER_COMM",
            "NETIO_TRANSPORT",
        ];
        for f in read_by_the_aggregate {
            assert!(fields.split(',').any(|x| x == f), "{f} in {fields}");
        }
    }
}
