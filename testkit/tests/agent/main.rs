//! The agent's behaviour on the host: its command line, config errors, the
//! config file against a hostile local user and config values at their
//! limits, thresholds and reloads, the journal and syslog outputs against a
//! real journald and rsyslog, stdout with a reader that stops, `netio report`
//! on the records read back, targets by cgroup, hostile process names, the
//! /proc rescan on a crowded host, and
//! what the records tell a reader (timestamps, units, quiet idle targets,
//! reload changes).
//! They run the real netio as root on the host's kernel; each test owns its
//! netio, scratch dir and process names, and the journald tests take turns
//! on `JOURNALD`. Floods of warnings on stderr are limited (warnings.rs).

#[path = "../common/mod.rs"]
mod common;

mod cgroups;
mod cli;
mod config_errors;
mod config_files;
mod config_values;
mod hostile_names;
mod journal;
mod records;
mod report;
mod rescan;
mod stdout;
mod syslog;
mod thresholds;
mod top;
mod unit_lookalike;
mod volume;
mod warnings;
