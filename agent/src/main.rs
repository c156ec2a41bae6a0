//! `netio`: exact per-process TCP byte accounting for database servers.
//!
//! Commands: `run` (the agent), `kernel` (which backends work here and why
//! not), `check-config`, `report` (netio's records in the journal, summed), `top` (the running
//! service's counters, live). Usage errors and invalid configs exit 2, runtime
//! failures 1. docs/architecture.md says where each part lives.

/// stdout for command output: a closed pipe (`netio kernel | head`) ends
/// the output quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// stderr the same way: eprintln! panics when stderr is a closed pipe
/// (`check-config F 2>&1 | head`), an abort with panic=abort. While the
/// agent runs, a line never waits for stderr's reader (stderr.rs).
macro_rules! tell {
    ($($arg:tt)*) => {{
        $crate::stderr::note(&format!($($arg)*));
    }};
}

/// `tell!` for a kind of warning that can come in floods (one per process
/// per interval): the first said, the rest counted (warn.rs).
macro_rules! tell_limited {
    ($kind:expr, $($arg:tt)*) => {{
        $crate::warn::limited($kind, format!($($arg)*));
    }};
}

mod cli;
mod config;
mod constraint;
mod discovery;
mod error;
mod fallbacks;
mod human;
mod inspect;
mod interval;
mod live;
mod losses;
mod monitor;
mod movers;
mod notify;
mod peer_names;
mod record;
mod report;
mod run;
mod signals;
mod sink;
mod snapshot;
mod snapshot_server;
mod state;
mod stderr;
mod threshold;
mod top;
mod tracking;
mod traffic_rows;
mod unblocked;
mod unload;
mod warn;

use std::process::ExitCode;

use crate::cli::{Command, USAGE};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let load = cli::load_options();
    let result = cli::parse(&args).and_then(|command| match command {
        Command::Run(args) => run::run(args, &load),
        Command::Kernel => inspect::kernel(&load),
        Command::CheckConfig(path) => inspect::check_config(&path),
        Command::Unload => unload::unload(cli::pin_dir()),
        Command::Report(args) => report::report(&args),
        Command::Top(args) => top::top(&args),
        Command::Version => {
            say!("netio {VERSION}");
            Ok(())
        }
        Command::Help => {
            say!("{}", USAGE.trim_end());
            Ok(())
        }
    });
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    };
    // The counts of limited warnings, and what stderr's reader has not
    // taken yet, for a moment: exit must not wait on a reader that is gone.
    warn::finish();
    stderr::drain(std::time::Instant::now() + std::time::Duration::from_secs(1));
    code
}
