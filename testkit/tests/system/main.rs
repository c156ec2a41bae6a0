//! The system-level tests: netio as systemd runs it, the .deb and .rpm
//! installed and removed on this machine, and real databases counted
//! against a packet capture. They share what a machine has one of (dpkg,
//! apt, the CPU a package build or a benchmark needs), so the tests of one
//! module never run beside another module's: each test takes its module's
//! `turn` first.

use std::sync::{Condvar, Mutex, MutexGuard};

#[path = "../common/mod.rs"]
mod common;

mod databases;
mod packaging;
mod service;

/// The module whose tests are running, and how many of them.
struct Running {
    module: Option<&'static str>,
    tests: usize,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    module: None,
    tests: 0,
});
/// Signalled when the last test of a module ends.
static IDLE: Condvar = Condvar::new();

fn running() -> MutexGuard<'static, Running> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A test's right to run, held until it ends (also when it panics).
pub struct Turn;

/// Waits until no test of another module runs, then runs beside the tests
/// of `module` (the caller's `module_path!()`), as when each module was a
/// test binary of its own.
pub fn turn(module: &'static str) -> Turn {
    let mut now = running();
    while now.module.is_some_and(|m| m != module) {
        now = IDLE
            .wait(now)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    now.module = Some(module);
    now.tests += 1;
    Turn
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut now = running();
        now.tests -= 1;
        if now.tests == 0 {
            now.module = None;
            IDLE.notify_all();
        }
    }
}
