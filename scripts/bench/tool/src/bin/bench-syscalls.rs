//! Times the cheapest system call there is, to measure what an agent adds
//! to every system call of every process on the machine (netio's tracepoint
//! backend attaches to syscall tracepoints, which send every system call
//! through the kernel's slow path).
//!
//!     bench-syscalls [--calls N] [--batches N]
//!
//! Makes N getppid() calls per batch (default 1,000,000, 5 batches) and
//! prints the nanoseconds per call of the fastest batch: the fastest is the
//! one least disturbed by the rest of the machine.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let (mut calls, mut batches) = (1_000_000u64, 5u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), value) {
            ("--calls", Some(n)) if n > 0 => calls = n,
            ("--batches", Some(n)) if n > 0 => batches = n as u32,
            _ => {
                eprintln!("usage: bench-syscalls [--calls N] [--batches N]");
                return ExitCode::from(2);
            }
        }
    }
    let mut best = f64::MAX;
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..calls {
            // SAFETY: getppid takes no arguments and cannot fail. Made as a
            // raw system call: nothing in libc may answer it from a cache.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
        best = best.min(start.elapsed().as_nanos() as f64 / calls as f64);
    }
    println!("{best:.2}");
    ExitCode::SUCCESS
}
