//! Attaches the baseline programs of src/empty.bpf.c to the raw
//! tracepoints `sock_send_length` and `sock_recv_length` and keeps them
//! attached until killed.
//!
//!     bench-empty [--lookup] [--stages] [--only=NAME,NAME...]
//!
//! Prints `ready` and the programs' names once attached. `--lookup` also
//! attaches the programs that do one hash lookup of the thread group id,
//! `--stages` those that time the steps of netio's path for a tracked
//! process (see src/empty.bpf.c); `--only` attaches just the programs named
//! (the only way to attach the second empty pair and the socket-storage
//! floor, storage_*). scripts/benchmark reads the
//! programs' run time and run count with bpftool (kernel.bpf_stats_enabled).

use std::io::Write;
use std::process::ExitCode;

use libbpf_rs::{Link, ObjectBuilder};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/empty.bpf.o"));

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut lookup, mut stages) = (false, false);
    let mut only: Option<Vec<String>> = None;
    for a in &args {
        match a.as_str() {
            "--lookup" => lookup = true,
            "--stages" => stages = true,
            s if s.starts_with("--only=") => {
                only = Some(s["--only=".len()..].split(',').map(String::from).collect())
            }
            _ => {
                eprintln!("usage: bench-empty [--lookup] [--stages] [--only=NAME,NAME...]");
                return ExitCode::from(2);
            }
        }
    }
    let wanted = |name: &str| {
        if let Some(only) = &only {
            only.iter().any(|o| o == name)
        } else if name.starts_with("empty2_") || name.starts_with("storage_") {
            false
        } else if name.starts_with("lookup_") {
            lookup
        } else if name.starts_with("stage_") {
            stages
        } else {
            true
        }
    };
    let mut open = match ObjectBuilder::default().open_memory(OBJECT) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-empty: cannot open the object: {e}");
            return ExitCode::FAILURE;
        }
    };
    for mut prog in open.progs_mut() {
        let load = wanted(&prog.name().to_string_lossy());
        prog.set_autoload(load);
    }
    let object = match open.load() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-empty: cannot load the programs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut links: Vec<Link> = Vec::new();
    let mut names = Vec::new();
    for prog in object.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if !wanted(&name) {
            continue;
        }
        match prog.attach() {
            Ok(l) => links.push(l),
            Err(e) => {
                eprintln!("bench-empty: cannot attach {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
        names.push(name);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {}", names.join(" "));
    let _ = out.flush();
    drop(out);
    loop {
        // SAFETY: pause has no preconditions; SIGTERM's default action
        // ends the process, which detaches the programs.
        unsafe { libc::pause() };
    }
}
