//! The commands that look without running the agent: `netio kernel`
//! (which backends load and attach here, and why not) and `netio
//! check-config` (a config as netio reads it).

use std::path::Path;

use netio_probes::{probe_backends, LoadOptions};

use crate::config::Config;
use crate::error::ExitError;
use crate::record;

pub fn kernel(load: &LoadOptions) -> Result<(), ExitError> {
    say!("kernel {}", kernel_release());
    let attempts = probe_backends(load);
    for a in &attempts {
        match &a.result {
            Ok(report) => say!(
                "{:<10} usable: {}",
                a.backend.name(),
                record::backend_detail(report)
            ),
            Err(why) => say!("{:<10} unusable: {why}", a.backend.name()),
        }
    }
    // `auto` tries these backends in this order and keeps the first that
    // works: the first usable one here.
    match attempts.iter().find(|a| a.result.is_ok()) {
        Some(a) => {
            say!("auto picks {}", a.backend);
            Ok(())
        }
        None => {
            say!("auto finds no usable backend");
            Err(ExitError::Reported)
        }
    }
}

pub fn check_config(path: &Path) -> Result<(), ExitError> {
    let c = Config::load(path)?;
    c.warnings.iter().for_each(|w| tell!("netio: {w}"));
    say!(
        "# {}: valid; every key with the value netio uses",
        path.display()
    );
    say!("{}", c.effective());
    Ok(())
}

/// The running kernel's release, for `netio kernel` and the started record.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
