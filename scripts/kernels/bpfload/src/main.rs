//! Loads each program of a BPF object alone and says, for each, whether the
//! kernel takes it; for one it refuses, prints the end of libbpf's log,
//! which holds the verifier's reason.
//!
//!     bpfload OBJECT [PROGRAM...]      (no PROGRAM: every program)
//!
//! Programs are loaded without attaching, so a program for a hook this
//! kernel lacks can load (raw tracepoints) or fail with ESRCH/ENOENT
//! (fentry on a missing function): only EACCES/EINVAL are the verifier's.

use std::process::ExitCode;
use std::sync::Mutex;

use libbpf_rs::{ObjectBuilder, PrintLevel};

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
const TAIL: usize = 60;

fn capture(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LOG.lock() {
        log.extend(msg.lines().map(str::to_string));
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: bpfload OBJECT [PROGRAM...]");
        return ExitCode::from(2);
    };
    libbpf_rs::set_print(Some((PrintLevel::Info, capture)));
    let names: Vec<String> = if args.len() > 2 {
        args[2..].to_vec()
    } else {
        match ObjectBuilder::default().open_file(path) {
            Ok(obj) => obj
                .progs()
                .map(|p| p.name().to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                eprintln!("bpfload: cannot open {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let mut refused = 0;
    for name in &names {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut obj = match ObjectBuilder::default().open_file(path) {
            Ok(obj) => obj,
            Err(e) => {
                eprintln!("bpfload: cannot open {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for mut prog in obj.progs_mut() {
            let wanted = prog.name().to_string_lossy() == name.as_str();
            prog.set_autoload(wanted);
        }
        match obj.load() {
            Ok(_) => println!("ok       {name}"),
            Err(e) => {
                let log = std::mem::take(&mut *LOG.lock().unwrap_or_else(|e| e.into_inner()));
                // The verifier's last word comes just before its statistics.
                let why = log
                    .iter()
                    .position(|l| l.starts_with("processed "))
                    .and_then(|i| i.checked_sub(1))
                    .map(|i| log[i].clone())
                    .unwrap_or_default();
                println!(
                    "refused  {name}: {e}{}",
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(": {why}")
                    }
                );
                let verifier = log.iter().any(|l| l.contains("BEGIN PROG LOAD LOG"));
                if verifier {
                    refused += 1;
                    let skip = log.len().saturating_sub(TAIL);
                    if skip > 0 {
                        println!("    ({skip} earlier lines of libbpf's log left out)");
                    }
                    for line in &log[skip..] {
                        println!("    {line}");
                    }
                }
            }
        }
    }
    if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
