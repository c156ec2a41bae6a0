//! `netio run`: the agent's life from the config to the last record.
//! Loads the probes, sets up the outputs, tracks what runs, writes the
//! `started` record, hands over to the sampling loop until SIGTERM, then
//! writes `stopping`.

use netio_probes::{Attempt, BackendChoice, LoadOptions, Loaded, Pinning, Probes};

use crate::cli::RunArgs;
use crate::config::Config;
use crate::error::ExitError;
use crate::inspect::kernel_release;
use crate::monitor::Monitor;
use crate::notify::Notifier;
use crate::record::{Record, Started};
use crate::signals::Signals;
use crate::{sink, VERSION};

pub fn run(args: RunArgs, load: &LoadOptions) -> Result<(), ExitError> {
    // Under systemd stderr is journald's stream: a journald that does not
    // read must not stall the agent (stderr.rs).
    crate::stderr::never_block();
    let mut config = Config::load(&args.config)?;
    config.warnings.iter().for_each(|w| tell!("netio: {w}"));
    if let Some(b) = args.backend {
        config.backend = b;
    }
    if let Some(o) = args.output {
        config.output = o;
    }
    // Before libbpf or anything else could start a thread.
    let signals = Signals::install()
        .map_err(|e| ExitError::Failed(format!("cannot set up signal handling: {e}")))?;
    let mut load = load.clone();
    let (lock, locked_out) = match &load.pin {
        None => (
            None,
            Some("turned off (NETIO_PIN_DIR is empty)".to_string()),
        ),
        Some(dir) => match crate::state::lock(dir) {
            Ok(f) => (Some(f), None),
            Err(why) => (None, Some(why)),
        },
    };
    if lock.is_none() {
        load.pin = None;
    }
    let (loaded, attempts) = Probes::load(config.backend, config.capacity(), &load);
    let Some(Loaded {
        probes,
        report,
        mut pinning,
    }) = loaded
    else {
        return Err(ExitError::Failed(no_backend(config.backend, &attempts)));
    };
    for a in &attempts {
        if let Err(why) = &a.result {
            tell!("netio: backend {} passed over: {why}", a.backend);
        }
    }
    if let (Pinning::Off(why), Some(locked_out)) = (&mut pinning, locked_out) {
        *why = locked_out;
    }
    let sink = sink::from_config(&config).map_err(ExitError::failed)?;
    let targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let mut monitor = Monitor::new(config, args.config.clone(), probes, sink);
    let adoption = monitor.adopt(&pinning, load.pin.as_ref());
    monitor.live().pinning = adoption.pinning.to_string();
    // Served only by the netio that holds the pin directory's lock: the
    // socket is beside it, and a second netio must not take it over.
    if let (Some(_), Some(dir)) = (&lock, &load.pin) {
        let path = crate::snapshot_server::path_for(dir);
        match crate::snapshot_server::Server::start(&path) {
            Ok(server) => monitor.serve_top(server),
            Err(e) => tell!("netio: cannot serve `netio top` at {}: {e}", path.display()),
        }
    }
    // Held until netio exits (`lock`'s reason).
    let _lock = lock;
    if adoption.pinning == "off" && !adoption.detail.starts_with("turned off") {
        tell!(
            "netio: programs not pinned ({}): counting stops while netio is not running",
            adoption.detail
        );
    }
    let tracked = monitor.start().map_err(ExitError::failed)?;
    let started = Record::started(&Started {
        version: VERSION,
        kernel: &kernel_release(),
        report: &report,
        passed_over: &attempts,
        targets: &targets,
        processes: tracked,
        adoption: &adoption,
    });
    let mut notifier = Notifier::from_env();
    monitor
        .sink()
        .write(&started)
        .and_then(|_| monitor.sink().flush())
        .and_then(|_| {
            // Started, but not seeing every path: say so where operators look.
            for spot in report.blind_spots() {
                let spot = spot.to_string();
                monitor.live().degraded("backend_incomplete", 1, &spot);
                let r = Record::degraded("backend_incomplete", 1, None, &spot);
                monitor.sink().write(&r)?;
            }
            monitor.sink().flush()
        })
        .and_then(|_| {
            notifier.ready(&monitor.status());
            monitor.run(&signals, &mut notifier)
        })
        .and_then(|_| monitor.sink().write(&Record::stopping(VERSION)))
        .and_then(|_| monitor.sink().flush())
        .map_err(|e| ExitError::Failed(format!("cannot write records: {e}")))?;
    monitor.sink().finish();
    Ok(())
}

/// Why no backend loaded: each backend's reason. When netio lacks the
/// privileges to load any BPF program, that is said first, with what to
/// do, and not again for each backend.
fn no_backend(asked: BackendChoice, attempts: &[Attempt]) -> String {
    let failed: Vec<_> = attempts
        .iter()
        .filter_map(|a| Some((a.backend, a.result.as_ref().err()?)))
        .collect();
    let denied: Vec<_> = failed.iter().filter_map(|(_, e)| e.denied()).collect();
    let unprivileged = denied
        .first()
        .filter(|_| denied.iter().all(|d| d.lacks_privileges()));
    let mut msg = match unprivileged {
        Some(d) if d.euid == 0 => format!(
            "needs CAP_BPF and CAP_PERFMON to load its BPF programs, and runs as root \
             without {}: give them to it (a container or the unit's \
             CapabilityBoundingSet took them)\n",
            d.lacking.join(" and ")
        ),
        Some(d) => format!(
            "needs root, or CAP_BPF and CAP_PERFMON, to load its BPF programs, and runs as \
             uid {} without {}: run it as root (sudo netio run), or as the netio.service \
             unit\n",
            d.euid,
            d.lacking.join(" and ")
        ),
        None => String::new(),
    };
    msg.push_str(&format!("no backend could be loaded (asked for {asked}):"));
    for (backend, why) in failed {
        let why = if unprivileged.is_some() {
            why.without_cause()
        } else {
            why
        };
        msg.push_str(&format!("\n  {backend}: {why}"));
    }
    msg
}
