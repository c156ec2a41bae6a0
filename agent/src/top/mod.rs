//! `netio top`: the running service's counters, live. A full-screen view
//! on a terminal (view.rs), or the same table as plain text once
//! (`--once`) or every refresh (`--batch`, and whenever stdout is not a
//! terminal). The numbers come from the service (client.rs); rates are
//! taken between consecutive snapshots (table.rs).

mod client;
mod table;
mod view;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::cli::Options;
use crate::error::ExitError;

pub use table::Sort;

/// The refresh when `--interval` is not given, and the shortest allowed.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const MIN_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Screen,
    Once,
    Batch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopArgs {
    pub mode: Mode,
    pub interval: Duration,
    pub sort: Sort,
}

pub fn parse(args: &[String]) -> Result<TopArgs, ExitError> {
    let mut out = TopArgs {
        mode: Mode::Screen,
        interval: DEFAULT_INTERVAL,
        sort: Sort::Sent,
    };
    let mut opts = Options::new(args);
    while let Some((key, inline)) = opts.next_key() {
        match key {
            "--once" if inline.is_none() => out.mode = Mode::Once,
            "--batch" | "-b" if inline.is_none() => out.mode = Mode::Batch,
            "--interval" | "-d" => {
                let v = opts.value("--interval", inline)?;
                let d = humantime::parse_duration(&v).map_err(|e| {
                    ExitError::Usage(format!("--interval {v:?}: {e} (e.g. 1s, 500ms)"))
                })?;
                if d < MIN_INTERVAL {
                    return Err(ExitError::Usage(format!(
                        "--interval {v:?} is shorter than {} ms",
                        MIN_INTERVAL.as_millis()
                    )));
                }
                out.interval = d;
            }
            "--sort" => {
                out.sort = match opts.value("--sort", inline)?.as_str() {
                    "sent" => Sort::Sent,
                    "received" => Sort::Received,
                    v => {
                        return Err(ExitError::Usage(format!(
                            "unknown --sort {v:?}: expected sent or received"
                        )))
                    }
                }
            }
            "--standalone" => {
                return Err(ExitError::Failed(
                    "--standalone is not implemented: netio top shows the running \
                     service's counters; start it (systemctl start netio)"
                        .into(),
                ))
            }
            other => {
                return Err(ExitError::Usage(format!(
                    "unknown argument {other:?} for `netio top`"
                )))
            }
        }
    }
    Ok(out)
}

pub fn top(args: &TopArgs) -> Result<(), ExitError> {
    let path = client::socket_path();
    let first = client::fetch(&path).map_err(ExitError::Failed)?;
    let screen = args.mode == Mode::Screen && std::io::stdout().is_terminal();
    if screen {
        return view::run(&path, first, args).map_err(ExitError::Failed);
    }
    let mut prev = first;
    loop {
        std::thread::sleep(args.interval);
        let cur = client::fetch(&path).map_err(ExitError::Failed)?;
        let text = table::plain(&table::build(Some(&prev), &cur, args.sort));
        let mut out = std::io::stdout().lock();
        // A reader that went away (`| head`) ends the batch quietly.
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() || args.mode == Mode::Once {
            return Ok(());
        }
        prev = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<TopArgs, ExitError> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse() {
        let a = args(&["--once", "--interval", "250ms", "--sort=received"]).unwrap();
        assert_eq!(a.mode, Mode::Once);
        assert_eq!(a.interval, Duration::from_millis(250));
        assert_eq!(a.sort, Sort::Received);
        assert_eq!(args(&[]).unwrap().interval, DEFAULT_INTERVAL);
        assert!(args(&["--interval", "10ms"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(matches!(args(&["--standalone"]), Err(ExitError::Failed(_))));
    }
}
