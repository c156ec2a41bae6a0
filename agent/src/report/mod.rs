//! `netio report`: netio's own records read back from the journal, the
//! trusted ones only (`_SYSTEMD_UNIT=netio.service` and `_UID=0`, the
//! fields journald sets itself: docs/siem.md, "Trust"), summed per target,
//! process or peer over a span, busiest first, with the span's threshold
//! breaches. journal.rs runs journalctl, aggregate.rs sums, render.rs
//! writes the table or the JSON.

mod aggregate;
mod journal;
mod render;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aggregate::{Aggregate, By};
use journal::Source;
use render::{End, Span};

use crate::cli::Options;
use crate::error::ExitError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportArgs {
    pub since: Option<String>,
    pub until: Option<String>,
    pub by: By,
    pub json: bool,
    pub source: Source,
}

/// `netio report`'s arguments, after the command's name.
pub fn parse(args: &[String]) -> Result<ReportArgs, ExitError> {
    let mut out = ReportArgs {
        since: None,
        until: None,
        by: By::Target,
        json: false,
        source: Source::default(),
    };
    let mut opts = Options::new(args);
    while let Some((key, inline)) = opts.next_key() {
        let mut value = |name: &str| opts.value(name, inline);
        match key {
            "--since" => out.since = Some(value("--since")?),
            "--until" => out.until = Some(value("--until")?),
            "--by" => {
                let v = value("--by")?;
                out.by = By::parse(&v).ok_or_else(|| {
                    ExitError::Usage(format!(
                        "unknown --by {v:?}: expected target, process or peer"
                    ))
                })?
            }
            "--json" if inline.is_none() => out.json = true,
            "--directory" | "-D" => {
                out.source.directory = Some(PathBuf::from(value("--directory")?))
            }
            "--file" => out.source.file = Some(value("--file")?),
            other => {
                return Err(ExitError::Usage(format!(
                    "unknown argument {other:?} for `netio report`"
                )))
            }
        }
    }
    Ok(out)
}

/// A `--since`/`--until` as journalctl takes it: a duration ("1h", "90m",
/// "2d", written as the config writes durations) is that long before
/// `now`; anything else is a time journalctl reads itself ("2026-12-01
/// 10:00", "today", "@1764547200") and refuses with its reason if it cannot.
fn when(written: &str, now: SystemTime) -> End {
    match humantime::parse_duration(written.trim()) {
        Ok(ago) => {
            let at = now.checked_sub(ago).unwrap_or(UNIX_EPOCH);
            let us = at
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_micros();
            End {
                written: written.to_string(),
                journalctl: format!("@{}.{:06}", us / 1_000_000, us % 1_000_000),
                at_us: Some(us as u64),
            }
        }
        Err(_) => End {
            written: written.to_string(),
            journalctl: written.to_string(),
            at_us: None,
        },
    }
}

pub fn report(args: &ReportArgs) -> Result<(), ExitError> {
    let now = SystemTime::now();
    let resolve = |w: &Option<String>| w.as_ref().map(|w| when(w, now));
    let span = Span {
        since: resolve(&args.since),
        until: resolve(&args.until),
    };
    let jargs = journal::arguments(
        &args.source,
        span.since.as_ref().map(|s| s.journalctl.as_str()),
        span.until.as_ref().map(|s| s.journalctl.as_str()),
        args.by,
    );
    let mut agg = Aggregate::new(args.by);
    let said = journal::read(&jargs, |v| agg.add(v)).map_err(ExitError::Failed)?;
    for line in &said.stderr {
        tell!("netio: journalctl: {line}");
    }
    if agg.entries == 0 {
        tell!(
            "netio: no records of netio.service in {} for the span: is netio running as \
             netio.service, writing to the journal (output = \"journal\" or \"auto\")? \
             Reading the system journal needs root or the group systemd-journal or adm.",
            match (&args.source.directory, &args.source.file) {
                (Some(d), _) => format!("the journal in {}", d.display()),
                (None, Some(f)) => format!("the journal file {f}"),
                (None, None) => "the system journal".into(),
            }
        );
    }
    if args.json {
        say!("{}", render::json(&agg, &span));
    } else {
        let text = render::text(&agg, &span);
        say!("{}", text.trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<ReportArgs, ExitError> {
        let v: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&v)
    }

    #[test]
    fn arguments_in_both_forms_and_the_defaults() {
        let a = args("").unwrap();
        assert_eq!(
            (a.by, a.json, a.since, a.until),
            (By::Target, false, None, None)
        );
        let a = args("--since 1h --until=10m --by=peer --json -D /tmp/j").unwrap();
        assert_eq!(a.since.as_deref(), Some("1h"));
        assert_eq!(a.until.as_deref(), Some("10m"));
        assert_eq!((a.by, a.json), (By::Peer, true));
        assert_eq!(a.source.directory, Some(PathBuf::from("/tmp/j")));
        let a = args("--by process --file /x/*.journal").unwrap();
        assert_eq!(a.by, By::Process);
        assert_eq!(a.source.file.as_deref(), Some("/x/*.journal"));
    }

    #[test]
    fn wrong_arguments_are_usage_errors_that_say_what_is_wrong() {
        let msg = |s: &str| match args(s) {
            Err(ExitError::Usage(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            msg("--by client"),
            "unknown --by \"client\": expected target, process or peer"
        );
        assert_eq!(msg("--since"), "--since needs a value");
        assert_eq!(msg("--since="), "--since needs a value");
        assert_eq!(
            msg("--json=yes"),
            "unknown argument \"--json\" for `netio report`"
        );
        assert_eq!(
            msg("--top 3"),
            "unknown argument \"--top\" for `netio report`"
        );
    }

    #[test]
    fn a_duration_is_that_long_ago_and_anything_else_goes_to_journalctl() {
        let now = UNIX_EPOCH + Duration::from_micros(1_764_640_000_250_000);
        let given = |w: &str| when(w, now).journalctl;
        assert_eq!(given("1h"), "@1764636400.250000");
        assert_eq!(given("1h 30m"), "@1764634600.250000");
        assert_eq!(when("1h", now).at_us, Some(1_764_636_400_250_000));
        assert_eq!(given("2026-12-01 10:00"), "2026-12-01 10:00");
        assert_eq!(given("today"), "today");
        assert_eq!(given("@1764547200"), "@1764547200");
        assert_eq!(when("today", now).at_us, None);
    }
}
