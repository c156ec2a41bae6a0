//! Restarts: a server streams for 10 s while netio is stopped with SIGTERM
//! and started again at once, or killed with SIGKILL and started again; the
//! second netio adopts the first one's pinned programs and state, so the
//! bytes in all records of both add up exactly to the server's own count
//! (docs/kernels.md, "Pinned state").

use crate::common;

use std::thread;
use std::time::Duration;

use common::{
    event, num, text, unique_name, write_config, Netio, PacedStream, Pins, Program, Records,
    Scratch,
};

/// 10 s of echoing at 8 MiB/s each way.
const PHASES: &str = "8m:10000";

/// How the first netio ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    Term,
    Kill,
}

/// Whether `netio` pinned its programs; where this kernel cannot pin the
/// backend's links, says so and returns false (the test has nothing to
/// prove there); any other refusal fails.
fn pinned(netio: &mut Netio) -> bool {
    let started = netio
        .records_so_far()
        .into_iter()
        .find(|v| event(v) == Some("started"))
        .expect("the started record");
    let detail = text(&started, "NETIO_PINNING_DETAIL").unwrap_or_default();
    if text(&started, "NETIO_PINNING") == Some("off") && detail.contains("cannot pin link") {
        // Perf-event links (tracepoint/, kprobe through the PMU or tracefs)
        // are pinnable from 5.15 on (docs/kernels.md, "Pinned state").
        eprintln!("not supported here: this backend's links cannot be pinned: {detail}");
        return false;
    }
    assert_eq!(
        text(&started, "NETIO_PINNING"),
        Some("pinned"),
        "netio did not pin its programs: {started}"
    );
    true
}

fn restart_mid_stream(end: End) {
    restart_with(end, false);
}

/// With `retarget`, the second netio's config puts a new target first, so
/// that ids handed out in the config's order would give the adopted
/// counters to it.
fn restart_with(end: End, retarget: bool) {
    let scratch = Scratch::new("restart");
    let program = Program::named(&scratch, &unique_name("rst"));
    let target = program.name();
    // Short intervals, so that the first netio has reported several and a
    // crash falls inside one.
    let config = write_config(&scratch, "700ms", &[(common::TARGET, &[&target])]);
    let pins = Pins::new();
    let mut first = Netio::start_pinned(&config, &pins);
    if !pinned(&mut first) {
        return;
    }
    let stream = PacedStream::start(&program, PHASES);
    // Mid-stream, and mid-interval.
    thread::sleep(Duration::from_millis(3350));
    let before = match end {
        End::Term => first.stop(),
        End::Kill => first.crash(),
    };
    let config = if retarget {
        let early: &[&str] = &["ntx-nothing"];
        write_config(
            &scratch,
            "700ms",
            &[(EARLY, early), (common::TARGET, &[&target])],
        )
    } else {
        config
    };
    let second = Netio::start_pinned(&config, &pins);
    let truth = stream.finish();
    assert!(
        truth.sent > 10 * 1024 * 1024,
        "streamed too little: {truth:?}"
    );
    let after = second.stop();

    let started = after
        .records
        .iter()
        .find(|v| event(v) == Some("started"))
        .expect("the second netio's started record");
    assert_eq!(
        text(started, "NETIO_PINNING"),
        Some("adopted"),
        "the second netio did not adopt the first one's programs: {started}\nstderr:\n{}",
        after.stderr
    );
    assert!(
        num(started, "NETIO_GAP_MS").is_some_and(|g| g > 0),
        "no gap in {started}"
    );
    let both = Records::one_after_the_other(before, after, "second netio");
    let none = Default::default();
    both.assert_exact_for(
        &[(common::TARGET, &truth.per_pid), (EARLY, &none)],
        "127.0.0.1",
    );
}

/// The target a retargeted restart puts first.
const EARLY: &str = "early";

#[test]
fn sigterm_and_start_again_loses_and_repeats_nothing() {
    restart_mid_stream(End::Term);
}

#[test]
fn sigkill_and_start_again_reports_the_dead_ones_last_interval() {
    restart_mid_stream(End::Kill);
}

#[test]
fn a_restart_with_a_new_first_target_gives_it_none_of_the_adopted_bytes() {
    restart_with(End::Term, true);
}

#[test]
fn without_bpffs_netio_says_so_and_counts_as_before() {
    let scratch = Scratch::new("nopin");
    let program = Program::named(&scratch, &unique_name("npn"));
    let target = program.name();
    let config = write_config(&scratch, "500ms", &[(common::TARGET, &[&target])]);
    // A directory on the scratch file system, not on bpffs.
    let pins = Pins {
        dir: scratch.path("bpf").join("netio"),
    };
    std::fs::create_dir_all(pins.dir.parent().unwrap()).unwrap();
    let netio = Netio::start_pinned(&config, &pins);
    let server = program.server("bulk", "127.0.0.1:0", &["--size", "1000000"]);
    let client =
        Program::original().client("bulk", &server.addr("127.0.0.1"), &["--size", "1000000"]);
    let truth = server.finish();
    assert_eq!(truth.sent, client.received);
    let records = netio.stop();
    let started = records
        .records
        .iter()
        .find(|v| event(v) == Some("started"))
        .unwrap();
    assert_eq!(text(started, "NETIO_PINNING"), Some("off"), "{started}");
    let detail = text(started, "NETIO_PINNING_DETAIL").unwrap_or_default();
    assert!(detail.contains("not a bpffs mount"), "{started}");
    assert!(
        records.stderr.contains("programs not pinned"),
        "stderr does not say so:\n{}",
        records.stderr
    );
    assert!(
        !pins.dir.exists(),
        "pinned anyway in {}",
        pins.dir.display()
    );
    records.assert_exact_for(&[(common::TARGET, &truth.per_pid)], "127.0.0.1");
}

#[test]
fn a_stopped_netio_leaves_its_programs_pinned_until_unload() {
    let scratch = Scratch::new("unload");
    let config = write_config(&scratch, "500ms", &[(common::TARGET, &["ntu-nothing"])]);
    let pins = Pins::new();
    let mut netio = Netio::start_pinned(&config, &pins);
    if !pinned(&mut netio) {
        return;
    }
    netio.stop();
    let links = std::fs::read_dir(pins.dir.join("links")).map_or(0, |d| d.count());
    assert!(links > 0, "no link pinned in {}", pins.dir.display());
    assert!(pins.state_file().is_file(), "no state file after the stop");
    let out = std::process::Command::new(common::netio_bin())
        .arg("unload")
        .env("NETIO_PIN_DIR", &pins.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{links} pinned link")), "{said}");
    assert!(!pins.dir.exists(), "{} is still there", pins.dir.display());
    assert!(!pins.state_file().exists(), "the state file is still there");
}
