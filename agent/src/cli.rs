//! The command line: what each command takes, the usage text, and the
//! testing knob the loader's options come from.

use std::path::PathBuf;

use netio_probes::{Backend, BackendChoice, LoadOptions, PinDir, DEFAULT_PIN_DIR};

use crate::config::{self, Output};
use crate::error::ExitError;
use crate::report;

pub const USAGE: &str = "\
usage:
  netio run [--config FILE] [--backend auto|fentry|tracepoint|kprobe] [--output auto|journal|json|text]
  netio kernel
  netio check-config [FILE]
  netio unload
  netio report [--since WHEN] [--until WHEN] [--by target|process|peer] [--json] [--directory DIR|--file FILE]
  netio top [--once|--batch] [--interval DURATION] [--sort sent|received]
  netio --version | --help

run           count the TCP and Unix-socket bytes of the targets and write records
              (default config: /etc/netio/netio.conf)
kernel        load and attach each backend on this kernel and say which work
check-config  validate a config and print it as netio understands it
unload        remove netio's pinned programs and maps (/sys/fs/bpf/netio): they
              stop counting; run it after stopping netio, to stop counting
report        sum netio.service's records in the journal over a span (WHEN: a
              duration ago like 1h, or a time journalctl reads), busiest first
top           the running service's counters live: rates and totals per target,
              process and client (--once: printed once; --batch: every refresh)
";

pub enum Command {
    Run(RunArgs),
    Kernel,
    CheckConfig(PathBuf),
    Unload,
    Report(report::ReportArgs),
    Top(crate::top::TopArgs),
    Version,
    Help,
}

pub struct RunArgs {
    pub config: PathBuf,
    pub backend: Option<BackendChoice>,
    pub output: Option<Output>,
}

/// The command the arguments (without the program's name) ask for.
pub fn parse(args: &[String]) -> Result<Command, ExitError> {
    match args.first().map(String::as_str) {
        Some("run") => parse_run(&args[1..]).map(Command::Run),
        Some("kernel") if args.len() == 1 => Ok(Command::Kernel),
        Some("unload") if args.len() == 1 => Ok(Command::Unload),
        Some("check-config") if args.len() <= 2 => Ok(Command::CheckConfig(PathBuf::from(
            args.get(1)
                .map(String::as_str)
                .unwrap_or(config::DEFAULT_PATH),
        ))),
        Some("report") => report::parse(&args[1..]).map(Command::Report),
        Some("top") => crate::top::parse(&args[1..]).map(Command::Top),
        Some("--version" | "-V") => Ok(Command::Version),
        Some("--help" | "-h" | "help") => Ok(Command::Help),
        Some(_) => Err(ExitError::Usage(format!(
            "unknown command or arguments: {}",
            args.join(" ")
        ))),
        None => Err(ExitError::Usage("no command given".into())),
    }
}

fn parse_run(args: &[String]) -> Result<RunArgs, ExitError> {
    let mut out = RunArgs {
        config: PathBuf::from(config::DEFAULT_PATH),
        backend: None,
        output: None,
    };
    let mut opts = Options::new(args);
    while let Some((key, inline)) = opts.next_key() {
        let mut value = |name: &str| opts.value(name, inline);
        match key {
            "--config" | "-c" => out.config = PathBuf::from(value("--config")?),
            "--backend" => {
                out.backend = Some(value("--backend")?.parse().map_err(ExitError::Usage)?)
            }
            "--output" => {
                out.output = Some(match value("--output")?.as_str() {
                    "auto" => Output::Auto,
                    "journal" => Output::Journal,
                    "json" => Output::Json,
                    "text" => Output::Text,
                    v => {
                        return Err(ExitError::Usage(format!(
                            "unknown output {v:?}: expected auto, journal, json or text"
                        )))
                    }
                })
            }
            other => {
                return Err(ExitError::Usage(format!(
                    "unknown argument {other:?} for `netio run`"
                )))
            }
        }
    }
    Ok(out)
}

/// A testing knob, not a setting (docs/kernels.md): a comma-separated list
/// of backend names that refuse to load as if the kernel lacked them, and
/// `socket-path`, which turns the socket path off.
const DISABLE_ENV: &str = "NETIO_DISABLE_BACKENDS";

/// A testing knob too: where the programs are pinned instead of
/// /sys/fs/bpf/netio (tests run many netio at once); empty: not pinned.
const PIN_ENV: &str = "NETIO_PIN_DIR";

/// Where `run` pins, and `unload` removes: the knob's, else the default.
pub fn pin_dir() -> Option<PinDir> {
    match std::env::var_os(PIN_ENV) {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PinDir(PathBuf::from(d))),
        None => Some(PinDir(PathBuf::from(DEFAULT_PIN_DIR))),
    }
}

/// The loader's options, from the testing knobs.
pub fn load_options() -> LoadOptions {
    let pin = pin_dir();
    let Ok(list) = std::env::var(DISABLE_ENV) else {
        return LoadOptions {
            pin,
            ..LoadOptions::default()
        };
    };
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    LoadOptions {
        pin,
        disabled: Backend::PREFERENCE
            .into_iter()
            .filter(|b| names.contains(&b.name()))
            .collect(),
        socket_path: !names.contains(&"socket-path"),
        disabled_by: format!("{DISABLE_ENV}={list}"),
    }
}

/// A command's options, `--key value` or `--key=value`, one at a time.
pub struct Options<'a> {
    rest: std::slice::Iter<'a, String>,
}

impl<'a> Options<'a> {
    pub fn new(args: &'a [String]) -> Self {
        Options { rest: args.iter() }
    }

    /// The next option's key, and its value when written `--key=value`.
    pub fn next_key(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        let a = self.rest.next()?;
        Some(match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v)),
            _ => (a.as_str(), None),
        })
    }

    /// The value of option `name`: written inline, else the next
    /// argument; an empty one is no value.
    pub fn value(&mut self, name: &str, inline: Option<&str>) -> Result<String, ExitError> {
        inline
            .or_else(|| self.rest.next().map(String::as_str))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ExitError::Usage(format!("{name} needs a value")))
    }
}
