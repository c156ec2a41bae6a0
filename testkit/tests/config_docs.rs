//! docs/config.md documents exactly the keys netio accepts: the same set as
//! the serde structs of agent/src/config.rs (listed here by hand) and as
//! netio itself names when it refuses an unknown key; every documented
//! example is accepted and used as written; every documented default is
//! the one `check-config` fills in; the shipped netio.conf mentions every
//! key.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{netio_bin, output_within, Scratch};

/// The tables of a config, in the order a file lists them.
const SECTIONS: [&str; 6] = [
    "top",
    "capacity",
    "records",
    "syslog",
    "target",
    "threshold",
];

/// The keys of agent/src/config.rs's serde structs (`Config`,
/// `CapacityConfig`, `RecordsConfig`, `Syslog`, `Target`, `Threshold`), by their
/// names in the file.
fn code_keys() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let set = |keys: &[&'static str]| keys.iter().copied().collect::<BTreeSet<_>>();
    BTreeMap::from([
        (
            "top",
            set(&[
                "interval",
                "backend",
                "output",
                "json_schema",
                "capacity",
                "records",
                "target",
                "syslog",
            ]),
        ),
        (
            "syslog",
            set(&[
                "transport",
                "address",
                "facility",
                "app_name",
                "queue",
                "ca_file",
                "client_cert",
                "client_key",
            ]),
        ),
        ("capacity", set(&["processes", "peers"])),
        ("records", set(&["per_process", "top_peers"])),
        (
            "target",
            set(&["name", "process", "unit", "cgroup", "threshold"]),
        ),
        (
            "threshold",
            set(&[
                "sent",
                "received",
                "peer_sent",
                "peer_received",
                "for",
                "reminder",
            ]),
        ),
    ])
}

/// One row of a key table in docs/config.md.
#[derive(Debug)]
struct Row {
    key: String,
    kind: String,
    default: String,
    example: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unquote(cell: &str) -> String {
    cell.trim().trim_matches('`').to_string()
}

/// The section a `## ` heading of docs/config.md starts.
fn section_of(heading: &str) -> Option<&'static str> {
    if heading.contains("`[capacity]`") {
        Some("capacity")
    } else if heading.contains("`[records]`") {
        Some("records")
    } else if heading.contains("`[[syslog]]`") {
        Some("syslog")
    } else if heading.contains("`[[target]]`") {
        Some("target")
    } else if heading.contains("`[target.threshold]`") {
        Some("threshold")
    } else if heading.eq_ignore_ascii_case("top level") {
        Some("top")
    } else {
        None
    }
}

/// The key tables of docs/config.md, by section.
fn documented() -> BTreeMap<&'static str, Vec<Row>> {
    let text = std::fs::read_to_string(repo().join("docs/config.md")).expect("docs/config.md");
    let mut out: BTreeMap<&'static str, Vec<Row>> = BTreeMap::new();
    let mut section = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = section_of(h.trim());
            if let Some(s) = section {
                out.entry(s).or_default();
            }
            continue;
        }
        let Some(s) = section else { continue };
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").collect();
        assert_eq!(
            cells.len(),
            5,
            "a key row has five cells (key, type, default, meaning, example): {line}"
        );
        out.get_mut(s).unwrap().push(Row {
            key: unquote(cells[0]),
            kind: cells[1].trim().to_string(),
            default: cells[2].trim().to_string(),
            example: unquote(cells[4]),
        });
    }
    out
}

/// The keys docs/config.md documents per section: the rows of its tables,
/// and the tables themselves as keys of the table they belong to.
fn documented_keys(
    docs: &BTreeMap<&'static str, Vec<Row>>,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut keys: BTreeMap<&'static str, BTreeSet<String>> = docs
        .iter()
        .map(|(s, rows)| (*s, rows.iter().map(|r| r.key.clone()).collect()))
        .collect();
    for (table, parent) in [
        ("capacity", "top"),
        ("records", "top"),
        ("syslog", "top"),
        ("target", "top"),
        ("threshold", "target"),
    ] {
        if docs.contains_key(table) {
            keys.entry(parent).or_default().insert(table.to_string());
        }
    }
    keys
}

fn check_config(scratch: &Scratch, name: &str, text: &str) -> (bool, String, String) {
    let path = scratch.path(name);
    std::fs::write(&path, text).unwrap();
    let out = output_within(
        Command::new(netio_bin()).arg("check-config").arg(&path),
        Duration::from_secs(20),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The keys netio says a section accepts when it refuses an unknown one:
/// "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`").
fn netio_keys(scratch: &Scratch, section: &str) -> BTreeSet<String> {
    let bogus = "zz_not_a_key = 1\n";
    let target = "[[target]]\nname = \"t\"\nprocess = [\"p\"]\n";
    let text = match section {
        "top" => format!("interval = \"1s\"\n{bogus}{target}"),
        "capacity" | "records" => format!("interval = \"1s\"\n[{section}]\n{bogus}{target}"),
        "syslog" => {
            format!("interval = \"1s\"\n[[syslog]]\naddress = \"/dev/log\"\n{bogus}{target}")
        }
        "target" => format!("interval = \"1s\"\n{target}{bogus}"),
        "threshold" => {
            format!("interval = \"1s\"\n{target}[target.threshold]\nsent = \"1MiB/s\"\n{bogus}")
        }
        _ => unreachable!(),
    };
    let (ok, _, err) = check_config(scratch, &format!("unknown-{section}.conf"), &text);
    assert!(!ok, "netio accepted an unknown key in {section}");
    let expected = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("no list of keys in {err:?}"))
        .1;
    let expected = expected.split(" (at `").next().unwrap();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn docs_document_exactly_the_keys_netio_accepts() {
    let scratch = Scratch::new("config-docs");
    let docs = documented();
    let doc_keys = documented_keys(&docs);
    let mut wrong = Vec::new();
    for (section, code) in code_keys() {
        let code: BTreeSet<String> = code.iter().map(|k| k.to_string()).collect();
        let netio = netio_keys(&scratch, section);
        let doc = doc_keys.get(section).cloned().unwrap_or_default();
        if code != netio {
            wrong.push(format!(
                "{section}: config.rs (as listed in this test) has {code:?}, netio accepts {netio:?}"
            ));
        }
        if doc != netio {
            wrong.push(format!(
                "{section}: docs/config.md documents {doc:?}, netio accepts {netio:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_documented_example_is_accepted_as_written() {
    let scratch = Scratch::new("config-examples");
    let docs = documented();
    let mut text = String::new();
    for section in SECTIONS {
        match section {
            "top" => {}
            "capacity" | "records" => text.push_str(&format!("\n[{section}]\n")),
            "syslog" => text.push_str("\n[[syslog]]\n"),
            "target" => text.push_str("\n[[target]]\n"),
            _ => text.push_str("\n[target.threshold]\n"),
        }
        for row in docs.get(section).map(Vec::as_slice).unwrap_or_default() {
            assert!(
                row.example.starts_with(&format!("{} = ", row.key)),
                "the example of `{}` should set it: {:?}",
                row.key,
                row.example
            );
            text.push_str(&row.example);
            text.push('\n');
        }
    }
    let (ok, stdout, stderr) = check_config(&scratch, "examples.conf", &text);
    assert!(
        ok,
        "a config made of the documented examples is refused:\n{stderr}\nthe config:\n{text}"
    );
    let lines: BTreeSet<&str> = stdout.lines().map(str::trim).collect();
    for rows in docs.values() {
        for row in rows {
            // check-config writes rates in its own format; everything else
            // as the example does.
            let used = if row.kind.starts_with("rate") {
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("{} = ", row.key)))
            } else {
                lines.contains(row.example.as_str())
            };
            assert!(
                used,
                "documented example `{}` is not what check-config says netio uses:\n{stdout}",
                row.example
            );
        }
    }
}

#[test]
fn documented_defaults_are_the_defaults_netio_uses() {
    let scratch = Scratch::new("config-defaults");
    let docs = documented();
    // Only what has no default: the interval, a syslog destination's
    // address, a target and a threshold with one rate. The target is a
    // unit's, so that `process` is left out.
    let minimal = "interval = \"1s\"\n[[syslog]]\naddress = \"/dev/log\"\n[[target]]\nname = \"t\"\nunit = \"t.service\"\n[target.threshold]\nsent = \"1MiB/s\"\n";
    let (ok, stdout, stderr) = check_config(&scratch, "minimal.conf", minimal);
    assert!(ok, "{stderr}");
    let lines: BTreeSet<&str> = stdout.lines().map(str::trim).collect();
    let mut checked = 0;
    for row in docs.values().flatten() {
        // Literal defaults are in backticks; "required" or "none" are not.
        if !row.default.starts_with('`') {
            assert!(
                ["required", "none"].contains(&row.default.as_str()),
                "`{}`: default {:?} is neither a literal in backticks nor required/none",
                row.key,
                row.default
            );
            continue;
        }
        let line = format!("{} = {}", row.key, unquote(&row.default));
        assert!(
            lines.contains(line.as_str()),
            "docs say the default is `{line}`, check-config of a config without `{}` says:\n{stdout}",
            row.key
        );
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} defaults documented");
}

#[test]
fn shipped_netio_conf_mentions_every_documented_key() {
    let shipped = std::fs::read_to_string(repo().join("netio.conf")).expect("netio.conf");
    let missing: Vec<String> = documented()
        .values()
        .flatten()
        .map(|r| r.key.clone())
        .filter(|k| !shipped.contains(&format!("{k} =")))
        .collect();
    assert!(
        missing.is_empty(),
        "netio.conf, \"every key explained\", never shows {missing:?}"
    );
}
