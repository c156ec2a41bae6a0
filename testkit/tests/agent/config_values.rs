//! Config values at their limits: a rate or a capacity that overflows, or
//! that `run` could not honour, is refused by `check-config` with the line
//! and the key, as every other config error; and an error about a huge
//! line shows a short piece of it.

use crate::common;
use crate::config_errors::{after, case, effective, refusals, with};

use std::process::Command;
use std::time::Duration;

use common::{netio_bin, output_within, Scratch};

/// The most processes Linux can have at once (PID_MAX_LIMIT on 64-bit),
/// which netio documents as the limit of both capacities.
const MAX_CAPACITY: u64 = 4_194_304;

#[test]
fn overflowing_rates_and_unhonourable_capacities_are_refused_with_line_and_key() {
    let scratch = Scratch::new("value-limits");
    let sent = r#"sent = "1MiB/s""#;
    let rate = |what, value: &'static str| case(what, with(sent, value), Some(value), "sent");
    let cases = [
        rate("a rate of 100000 EiB/s", r#"sent = "100000EiB/s""#),
        rate("a rate of exactly 2^64 B/s", r#"sent = "16EiB/s""#),
        rate(
            "a rate one byte past u64",
            r#"sent = "18446744073709551616B/s""#,
        ),
        rate(
            "a fractional rate past u64",
            r#"sent = "15.9999999999999999999 EiB/s""#,
        ),
        case(
            "processes = u32::MAX",
            with("processes = 64", "processes = 4294967295"),
            Some("processes = 4294967295"),
            "processes",
        ),
        case(
            "processes one past the limit",
            with("processes = 64", "processes = 4194305"),
            Some("processes = 4194305"),
            "processes",
        ),
        case(
            "peers = u32::MAX",
            with("peers = 64", "peers = 4294967295"),
            Some("peers = 4294967295"),
            "peers",
        ),
        case(
            "peers one past the limit",
            with("peers = 64", "peers = 4194305"),
            Some("peers = 4194305"),
            "peers",
        ),
    ];
    if let Err(e) = refusals(&scratch, &cases) {
        panic!("{e}");
    }
}

/// The limits themselves are accepted, and printed back as given.
#[test]
fn the_largest_rate_and_capacities_are_accepted_as_written() {
    let scratch = Scratch::new("value-max");
    let text = with("processes = 64", &format!("processes = {MAX_CAPACITY}"))
        .replace("peers = 64", &format!("peers = {MAX_CAPACITY}"))
        .replace(r#"sent = "1MiB/s""#, r#"sent = "18446744073709551615B/s""#);
    let path = scratch.path("max.conf");
    std::fs::write(&path, text).unwrap();
    let printed = effective(&path);
    for line in [
        format!("processes = {MAX_CAPACITY}"),
        format!("peers = {MAX_CAPACITY}"),
        r#"sent = "18446744073709551615B/s""#.to_string(),
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "check-config did not print {line:?}:\n{printed}"
        );
    }
}

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
