//! Config values at their limits: a rate or a capacity that overflows, or
//! that `run` could not honour, is refused by `check-config` with the line
//! and the key, as every other config error; an error about a huge line
//! shows a short piece of it; and the target constraints `user` and `exe`
//! are read, checked and printed back. And what a new user writes first:
//! rates in bits, negative values and wrong types, a missing key, a `for`
//! shorter than the interval, each answered with the right form; and
//! check-config printing rates and durations as they were written.

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

/// `user` and `exe`: values that could never match a process are refused
/// where they are written.
#[test]
fn bad_user_and_exe_constraints_are_refused_with_line_and_key() {
    let scratch = Scratch::new("constraints-bad");
    let process = r#"process = ["dbd"]"#;
    let add = |what, line: &'static str, key| case(what, after(process, line), Some(line), key);
    let cases = [
        add("a user name with a space", r#"user = ["my sql"]"#, "user"),
        add("a user name with a colon", r#"user = ["mysql:x"]"#, "user"),
        add("an empty user name", r#"user = [""]"#, "user"),
        add("digits as a user name", r#"user = ["999"]"#, "user"),
        add(
            "a user name of 33 characters",
            r#"user = ["abcdefghijklmnopqrstuvwxyz0123456"]"#,
            "user",
        ),
        add("a uid past u32", r#"user = [4294967296]"#, "user"),
        add("the uid that means none", r#"user = [4294967295]"#, "user"),
        add("a negative uid", r#"user = [-1]"#, "user"),
        add("a uid as a float", r#"user = [1.5]"#, "user"),
        add("an empty user list", r#"user = []"#, "user"),
        add("user as a string", r#"user = "mysql""#, "user"),
        add("a relative exe", r#"exe = ["mariadbd"]"#, "exe"),
        add(
            "an exe with ..",
            r#"exe = ["/usr/sbin/../sbin/mariadbd"]"#,
            "exe",
        ),
        add("an exe with //", r#"exe = ["/usr//sbin/mariadbd"]"#, "exe"),
        add("an exe ending in /", r#"exe = ["/usr/sbin/"]"#, "exe"),
        add("an empty exe list", r#"exe = []"#, "exe"),
        add("exe as a string", r#"exe = "/usr/sbin/mariadbd""#, "exe"),
    ];
    if let Err(e) = refusals(&scratch, &cases) {
        panic!("{e}");
    }
}

/// Good constraints are printed back as written, with what the names
/// resolve to; a user name this system does not know (yet), an `exe` that
/// is not there (yet) or that is a symlink (a process's executable is the
/// file itself) are warnings naming the line and the key, not errors.
#[test]
fn user_and_exe_constraints_parse_print_and_warn() {
    let scratch = Scratch::new("constraints-good");
    let link = scratch.path("env-link");
    std::os::unix::fs::symlink("/usr/bin/env", &link).unwrap();
    let user = r#"user = ["root", 65534, "netio-no-such-user"]"#;
    let exe = format!(
        r#"exe = ["/usr/bin/env", "{}", "/nonexistent/netio-db"]"#,
        link.display()
    );
    let text = after(r#"process = ["dbd"]"#, &format!("{user}\n{exe}"));
    let line_of = |l: &str| text.lines().position(|x| x == l).unwrap() + 1;
    let path = scratch.path("constraints.conf");
    std::fs::write(&path, &text).unwrap();
    let printed = effective(&path);
    for line in [user, &exe] {
        assert!(
            printed.lines().any(|l| l == line),
            "check-config did not print {line:?}:\n{printed}"
        );
    }
    assert!(
        printed.contains(
            "# target \"db\" runs as: root = uid 0, uid 65534 (nobody), netio-no-such-user: no such user (yet)"
        ),
        "check-config should show what the names resolve to:\n{printed}"
    );
    let out = output_within(
        Command::new(netio_bin()).arg("check-config").arg(&path),
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    let wants = [
        (line_of(user), "`user`", "netio-no-such-user"),
        (line_of(&exe), "`exe`", "resolves to /usr/bin/env"),
        (line_of(&exe), "`exe`", "/nonexistent/netio-db"),
    ];
    assert_eq!(
        warnings.len(),
        wants.len(),
        "want {} warnings:\n{err}",
        wants.len()
    );
    for (w, (n, key, what)) in warnings.iter().zip(wants) {
        assert!(
            w.contains(&format!("line {n}")) && w.contains(key) && w.contains(what),
            "want line {n}, {key} and {what:?} in {w:?}"
        );
    }
}

/// A file a new user might write, with one line to vary.
fn newcomer(line: &str) -> String {
    format!(
        "# netio, first try\n\ninterval = \"10s\"\n\n[[target]]\nname = \"r\"\nprocess = [\"redis-server\"]\n\n[target.threshold]\n{line}\n"
    )
}

/// `check-config` on `text`: its exit status and stderr.
fn check(scratch: &Scratch, file: &str, text: &str) -> (Option<i32>, String, String) {
    let path = scratch.path(file);
    std::fs::write(&path, text).unwrap();
    let out = output_within(
        Command::new(netio_bin()).arg("check-config").arg(&path),
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), err, path.display().to_string())
}

/// Each mistake of the issue's first hour, and netio's whole answer to it:
/// why, and the right form for that key, on the line that has it.
#[test]
fn a_newcomers_mistakes_are_refused_with_the_right_form_for_the_key() {
    let scratch = Scratch::new("newcomer");
    let cases = [
        (
            "interval as a number",
            newcomer(r#"sent = "50MiB/s""#).replace(r#"interval = "10s""#, "interval = 10"),
            "line 3: key `interval`: 10 is a number, but `interval` takes a duration in quotes, \
             a number and a unit: write interval = \"10s\" (at `interval = 10`)",
        ),
        (
            "process as a string",
            newcomer(r#"sent = "50MiB/s""#).replace(
                r#"process = ["redis-server"]"#,
                r#"process = "redis-server""#,
            ),
            "line 7: [[target]] #1 (`r`): key `process`: \"redis-server\" is a string, but \
             `process` takes a list of strings in quotes, even of one: write process = \
             [\"redis-server\"] (at `process = \"redis-server\"`)",
        ),
        (
            "a negative rate",
            newcomer(r#"sent = "-5MiB/s""#),
            "line 10: [[target]] #1 (`r`): [target.threshold] key `sent`: \"-5MiB/s\" is \
             negative, and a rate cannot be: write sent = \"5MiB/s\" (at `sent = \"-5MiB/s\"`)",
        ),
        (
            "megabits written Mb/s",
            newcomer(r#"sent = "50 Mb/s""#),
            "line 10: [[target]] #1 (`r`): [target.threshold] key `sent`: \"50 Mb/s\" is \
             ambiguous: a lowercase b is a bit to some and a byte to others: write sent = \
             \"50 Mbit/s\" for megabits, or \"50 MB/s\" for megabytes (at `sent = \"50 Mb/s\"`)",
        ),
        (
            "a negative duration",
            newcomer(r#"sent = "50MiB/s""#).replace(r#"interval = "10s""#, r#"interval = "-10s""#),
            "line 3: key `interval`: \"-10s\" is negative, and a duration cannot be: write \
             interval = \"10s\" (at `interval = \"-10s\"`)",
        ),
        (
            "no interval",
            newcomer(r#"sent = "50MiB/s""#).replace("interval = \"10s\"\n", ""),
            "missing key `interval` at the top level: add it above the first [table], like \
             interval = \"10s\"",
        ),
        (
            "a target without a name",
            format!(
                "{}\n[[target]]\nprocess = [\"mariadbd\"]\n",
                newcomer(r#"sent = "50MiB/s""#)
            ),
            "line 12: [[target]] #2: missing key `name`: add it, like name = \"postgresql\" \
             (at `[[target]]`)",
        ),
    ];
    let mut wrong = Vec::new();
    for (i, (what, text, want)) in cases.iter().enumerate() {
        let (status, err, path) = check(&scratch, &format!("case-{i}.conf"), text);
        let want = format!("netio: {path}: {want}\n");
        if status != Some(2) || err != want {
            wrong.push(format!(
                "{what}: exit {status:?}, stderr\n  {err:?}\nwant\n  {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Bits are accepted when spelt as bits, and check-config prints rates
/// and durations as the file wrote them, not as bytes per second or
/// humantime's spelling.
#[test]
fn rates_in_bits_are_accepted_and_check_config_prints_values_as_written() {
    let scratch = Scratch::new("as-written");
    let text = newcomer(
        "sent = \"50 Mbit/s\"\nreceived = \"50MB/s\"\npeer_sent = \"1.5 Gbit/s\"\nfor = \"90s\"",
    )
    .replace(r#"interval = "10s""#, r#"interval = "10000ms""#);
    let path = scratch.path("as-written.conf");
    std::fs::write(&path, &text).unwrap();
    let printed = effective(&path);
    for line in [
        r#"interval = "10000ms""#,
        r#"sent = "50 Mbit/s""#,
        r#"received = "50MB/s""#,
        r#"peer_sent = "1.5 Gbit/s""#,
        r#"for = "90s""#,
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "check-config did not print {line:?} as written:\n{printed}"
        );
    }
}

/// A `for` shorter than one interval works as one interval (a rate is
/// seen once an interval): allowed, and warned of, with what it does and
/// the form that says so.
#[test]
fn a_for_shorter_than_the_interval_is_warned_of_with_what_it_does() {
    let scratch = Scratch::new("short-for");
    let (status, err, path) = check(
        &scratch,
        "short-for.conf",
        &newcomer("sent = \"50MiB/s\"\nfor = \"2s\""),
    );
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        err,
        format!(
            "netio: {path}: warning: line 11: [[target]] #1 (`r`): [target.threshold] key \
             `for`: \"2s\" is shorter than one interval (\"10s\"): netio sees a rate once an \
             interval, so one interval above the limit is a breach, and one at or below it a \
             recovery; write for = \"10s\" to say so, or shorten the interval (at `for = \
             \"2s\"`)\n"
        )
    );
}
