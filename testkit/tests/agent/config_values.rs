//! Config values at their limits: an error about a huge line shows a
//! short piece of it.

use crate::common;
use crate::config_errors::{after, with};

use std::process::Command;
use std::time::Duration;

use common::{netio_bin, output_within, Scratch};

/// An error on a 200 KB line shows the start of the line and a marker, not
/// the whole line, and cuts on a character boundary (a line of `é`); the
/// value echoed in the message itself is cut the same way.
#[test]
fn an_error_on_a_huge_line_shows_a_short_cut_snippet() {
    let scratch = Scratch::new("huge-line");
    let long = "x".repeat(200_000);
    let accents = "é".repeat(100_000);
    let lines = [
        ("unknown key", format!("bogus = \"{long}\""), "bogus"),
        (
            "interval in words",
            format!("interval = \"{long}\""),
            "interval",
        ),
        (
            "output of accents",
            format!("output = \"{accents}\""),
            "output",
        ),
        ("rate in words", format!("sent = \"{accents}\""), "sent"),
    ];
    let mut wrong = Vec::new();
    for (what, line, key) in lines {
        let text = match key {
            "bogus" => after(r#"interval = "1s""#, &line),
            "interval" => with(r#"interval = "1s""#, &line),
            "output" => with(r#"output = "json""#, &line),
            _ => with(r#"sent = "1MiB/s""#, &line),
        };
        let n = text.lines().position(|l| l == line).unwrap() + 1;
        let path = scratch.path(&format!("{key}.conf"));
        std::fs::write(&path, &text).unwrap();
        let out = output_within(
            Command::new(netio_bin()).arg("check-config").arg(&path),
            Duration::from_secs(20),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let first: String = err.chars().take(300).collect();
        if out.status.code() != Some(2)
            || err.contains("panicked")
            || err.len() > 1500
            || !err.contains(&format!("line {n}"))
            || !err.contains(key)
            || !err.contains('…')
        {
            wrong.push(format!(
                "{what}: exit {}, {} bytes of stderr (want exit 2, at most 1500, the line, `{key}` and a … marker): {first}",
                out.status,
                err.len()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
