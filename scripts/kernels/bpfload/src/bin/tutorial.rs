//! The tutorial's method, for comparison with netio (scripts/kernels/matrix
//! prints both counts side by side): kretprobe `tcp_sendmsg` (its return
//! value) and kprobe `tcp_cleanup_rbuf` (its `copied` argument), summed per
//! process, as in src/tutorial.bpf.c.
//!
//!     tutorial -- COMMAND [ARG...]
//!
//! Attaches, runs COMMAND (stdio inherited), and when it ends prints one
//! line per process the probes saw:
//!
//!     tutorial pid=PID sent=BYTES received=BYTES send_calls=N cleanup_calls=N
//!
//! Exits with COMMAND's status (1 if it was killed by a signal).

use std::process::{Command, ExitCode};

use libbpf_rs::{Link, MapCore, MapFlags, ObjectBuilder};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tutorial.bpf.o"));

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match args.split_first() {
        Some((sep, cmd)) if sep == "--" && !cmd.is_empty() => cmd,
        _ => {
            eprintln!("usage: tutorial -- COMMAND [ARG...]");
            return ExitCode::from(2);
        }
    };
    let object = ObjectBuilder::default()
        .open_memory(OBJECT)
        .and_then(|o| o.load());
    let object = match object {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tutorial: cannot load the tutorial's programs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut links: Vec<Link> = Vec::new();
    for prog in object.progs_mut() {
        match prog.attach() {
            Ok(l) => links.push(l),
            Err(e) => {
                eprintln!(
                    "tutorial: cannot attach {}: {e}",
                    prog.name().to_string_lossy()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let status = match Command::new(&cmd[0]).args(&cmd[1..]).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tutorial: cannot run {}: {e}", cmd[0]);
            return ExitCode::FAILURE;
        }
    };
    drop(links);
    let Some(map) = object.maps().find(|m| m.name() == "counts") else {
        eprintln!("tutorial: the object has no `counts` map");
        return ExitCode::FAILURE;
    };
    let mut rows = Vec::new();
    for key in map.keys() {
        let Ok(Some(v)) = map.lookup(&key, MapFlags::ANY) else {
            continue;
        };
        let (Ok(k), true) = (<[u8; 4]>::try_from(key.as_slice()), v.len() >= 32) else {
            continue;
        };
        let n = |i: usize| u64::from_ne_bytes(v[i * 8..i * 8 + 8].try_into().unwrap());
        rows.push((u32::from_ne_bytes(k), n(0), n(1), n(2), n(3)));
    }
    rows.sort();
    for (pid, sent, received, sends, cleanups) in rows {
        println!(
            "tutorial pid={pid} sent={sent} received={received} send_calls={sends} cleanup_calls={cleanups}"
        );
    }
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(c.clamp(1, 255) as u8),
        None => ExitCode::FAILURE,
    }
}
