//! `netio run`: the agent's life from the config to the last record.
//! Loads the probes, sets up the outputs, tracks what runs, writes the
//! `started` record, hands over to the sampling loop until SIGTERM, then
//! writes `stopping`.

use netio_probes::{LoadOptions, Loaded, Probes};

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
    let (loaded, attempts) = Probes::load(config.backend, config.capacity(), load);
    let Some(Loaded { probes, report }) = loaded else {
        let mut msg = format!("no backend could be loaded (asked for {}):", config.backend);
        for a in &attempts {
            if let Err(why) = &a.result {
                msg.push_str(&format!("\n  {}: {why}", a.backend));
            }
        }
        return Err(ExitError::Failed(msg));
    };
    for a in &attempts {
        if let Err(why) = &a.result {
            tell!("netio: backend {} passed over: {why}", a.backend);
        }
    }
    let sink = sink::from_config(&config).map_err(ExitError::failed)?;
    let targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let mut monitor = Monitor::new(config, args.config.clone(), probes, sink);
    let tracked = monitor.start().map_err(ExitError::failed)?;
    let started = Record::started(&Started {
        version: VERSION,
        kernel: &kernel_release(),
        report: &report,
        passed_over: &attempts,
        targets: &targets,
        processes: tracked,
    });
    let mut notifier = Notifier::from_env();
    monitor
        .sink()
        .write(&started)
        .and_then(|_| monitor.sink().flush())
        .and_then(|_| {
            // Started, but not seeing every path: say so where operators look.
            for spot in report.blind_spots() {
                let r = Record::degraded("backend_incomplete", 1, None, &spot.to_string());
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
