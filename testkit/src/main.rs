//! `netio-traffic`: a loopback TCP traffic generator that is its own ground
//! truth. Every byte it sends or receives is counted from the return value
//! of the system call that moved it, and reported as one JSON line, so the
//! accuracy tests can demand that netio's numbers match exactly.
//!
//! Tests run it under a distinctive file name (hence a distinctive kernel
//! comm) to make it the process netio tracks. See `cli::USAGE` for the CLI.

mod cli;
mod client;
mod forking;
mod handover;
mod identity;
mod net;
mod server;
mod sys;
mod tally;
mod unix;

use std::process::ExitCode;
use std::time::Instant;

use cli::{Options, Role, USAGE};

fn main() -> ExitCode {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        args.first().map(String::as_str),
        Some("-h" | "--help" | "help")
    ) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let o = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("netio-traffic: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    sys::arm_deadline(o.deadline_secs);
    let result = match o.role {
        Role::Server => server::run(&o),
        Role::Client => match o.take_pid {
            Some(pid) => identity::take_pid(&o, pid, client::run),
            None => client::run(&o),
        },
        Role::ConnChild => forking::conn_child(&o),
        Role::Take => handover::take(&o),
    };
    match result {
        Ok(report) => {
            if let Some(report) = report {
                report.print();
            }
            if let Some(rest) = o.hold.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "netio-traffic: {} {}: {e}",
                role_name(o.role),
                o.scenario.name()
            );
            ExitCode::FAILURE
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
        Role::ConnChild => "conn-child",
        Role::Take => "take",
    }
}
