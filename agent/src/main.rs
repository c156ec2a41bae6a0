//! `netio`: exact per-process TCP byte accounting for database servers.
//!
//! Commands: `run` (the agent), `kernel` (which backends work here and why
//! not), `check-config`. Usage errors exit 2, runtime failures 1.

mod config;
mod discovery;
mod interval;
mod losses;
mod monitor;
mod notify;
mod record;
mod signals;
mod sink;
mod threshold;
mod tracking;
mod warn;

use std::path::PathBuf;
use std::process::ExitCode;

use netio_probes::{probe_backends, BackendChoice, Probes};

use crate::config::{Config, Output};
use crate::record::Record;

/// stdout for command output: a closed pipe (`netio kernel | head`) ends
/// the output quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// stderr the same way: eprintln! panics when stderr is a closed pipe
/// (`check-config F 2>&1 | head`), an abort with panic=abort.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

const USAGE: &str = "\
usage:
  netio run [--config FILE] [--backend auto|fentry|tracepoint|kprobe] [--output auto|journal|json|text]
  netio kernel
  netio check-config [FILE]
  netio --version | --help

run           count the TCP bytes of the configured targets and write records
              (default config: /etc/netio/netio.conf)
kernel        load and attach each backend on this kernel and say which work
check-config  validate a config and print it as netio understands it
";

/// A usage error: printed with the usage, exit code 2.
struct Usage(String);

struct RunArgs {
    config: PathBuf,
    backend: Option<BackendChoice>,
    output: Option<Output>,
}

fn parse_run(args: &[String]) -> Result<RunArgs, Usage> {
    let mut out = RunArgs {
        config: PathBuf::from(config::DEFAULT_PATH),
        backend: None,
        output: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| Usage(format!("{name} needs a value")))
        };
        match key {
            "--config" | "-c" => out.config = PathBuf::from(value("--config")?),
            "--backend" => out.backend = Some(value("--backend")?.parse().map_err(Usage)?),
            "--output" => {
                out.output = Some(match value("--output")?.as_str() {
                    "auto" => Output::Auto,
                    "journal" => Output::Journal,
                    "json" => Output::Json,
                    "text" => Output::Text,
                    v => {
                        return Err(Usage(format!(
                            "unknown output {v:?}: expected auto, journal, json or text"
                        )))
                    }
                })
            }
            other => return Err(Usage(format!("unknown argument {other:?} for `netio run`"))),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => parse_run(&args[1..]).map(run),
        Some("kernel") if args.len() == 1 => Ok(kernel()),
        Some("check-config") if args.len() <= 2 => Ok(check_config(&PathBuf::from(
            args.get(1)
                .map(String::as_str)
                .unwrap_or(config::DEFAULT_PATH),
        ))),
        Some("--version" | "-V") => {
            say!("netio {VERSION}");
            Ok(ExitCode::SUCCESS)
        }
        Some("--help" | "-h" | "help") => {
            say!("{}", USAGE.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => Err(Usage(format!(
            "unknown command or arguments: {}",
            args.join(" ")
        ))),
        None => Err(Usage("no command given".into())),
    };
    match result {
        Ok(code) => code,
        Err(Usage(msg)) => {
            tell!("netio: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn run(args: RunArgs) -> ExitCode {
    let mut config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            tell!("netio: {e}");
            return ExitCode::from(2);
        }
    };
    config.warnings.iter().for_each(|w| tell!("netio: {w}"));
    if let Some(b) = args.backend {
        config.backend = b;
    }
    if let Some(o) = args.output {
        config.output = o;
    }
    // Before libbpf or anything else could start a thread.
    let signals = match signals::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netio: cannot set up signal handling: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (probes, attempts) = Probes::load(config.backend, config.capacity());
    let Some(probes) = probes else {
        eprintln!(
            "netio: no backend could be loaded (asked for {}):",
            config.backend
        );
        for a in &attempts {
            if let Err(why) = &a.result {
                eprintln!("  {}: {why}", a.backend);
            }
        }
        return ExitCode::FAILURE;
    };
    for a in &attempts {
        if let Err(why) = &a.result {
            eprintln!("netio: backend {} passed over: {why}", a.backend);
        }
    }
    let backend = probes.backend().name();
    let detail = probes.description().to_string();
    let blind_spots = probes.blind_spots().to_vec();
    let passed_over: Vec<(String, String)> = attempts
        .iter()
        .filter_map(|a| {
            a.result
                .as_ref()
                .err()
                .map(|why| (a.backend.name().to_string(), why.clone()))
        })
        .collect();
    let sink = match sink::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let mut monitor = monitor::Monitor::new(config, args.config.clone(), probes, sink);
    let tracked = match monitor.start() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("netio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Record::started(
        VERSION,
        &kernel_release(),
        backend,
        &detail,
        &passed_over,
        &targets,
        tracked,
    );
    let mut notifier = notify::Notifier::from_env();
    let result = monitor
        .sink()
        .write(&started)
        .and_then(|_| monitor.sink().flush())
        .and_then(|_| {
            // Started, but not seeing every path: say so where operators look.
            for spot in &blind_spots {
                let r = Record::degraded("backend_incomplete", 1, None, spot);
                monitor.sink().write(&r)?;
            }
            monitor.sink().flush()
        })
        .and_then(|_| {
            notifier.ready(&monitor.status());
            monitor.run(&signals, &mut notifier)
        })
        .and_then(|_| monitor.sink().write(&Record::stopping(VERSION)))
        .and_then(|_| monitor.sink().flush());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netio: cannot write records: {e}");
            ExitCode::FAILURE
        }
    }
}

fn kernel() -> ExitCode {
    say!("kernel {}", kernel_release());
    let attempts = probe_backends();
    for a in &attempts {
        match &a.result {
            Ok(what) => say!("{:<10} usable: {what}", a.backend.name()),
            Err(why) => say!("{:<10} unusable: {why}", a.backend.name()),
        }
    }
    let (probes, _) = Probes::load(BackendChoice::Auto, Default::default());
    match probes {
        Some(p) => {
            say!("auto picks {}", p.backend());
            ExitCode::SUCCESS
        }
        None => {
            say!("auto finds no usable backend");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            c.warnings.iter().for_each(|w| tell!("netio: {w}"));
            say!(
                "# {}: valid; every key with the value netio uses",
                path.display()
            );
            say!("{}", c.effective());
            ExitCode::SUCCESS
        }
        Err(e) => {
            tell!("netio: {e}");
            ExitCode::from(2)
        }
    }
}
