//! netio's stderr under a flood of warnings: a warning that repeats per
//! process per interval ("cannot track process", with the process map
//! full) is said once in full, then counted in one summary line.

use crate::common;

use std::time::Duration;

use common::{unique_name, Netio, Program, Scratch, TARGET};

#[test]
fn a_warning_repeated_per_process_and_interval_is_said_once_then_counted() {
    let scratch = Scratch::new("warnings");
    let name = unique_name("ntw");
    let tracked = Program::named(&scratch, &name);
    // Room for one process; four run, so three cannot be tracked at any
    // of the rescans (at start and every interval).
    let servers: Vec<_> = (0..4)
        .map(|_| tracked.server("bulk", "127.0.0.1:0", &["--size", "1000"]))
        .collect();
    let netio = Netio::start_with(
        &scratch,
        "100ms",
        &[(TARGET, &[name.as_str()])],
        "[capacity]\nprocesses = 1\n",
    );
    std::thread::sleep(Duration::from_secs(3));
    let stderr = netio.stop().stderr;
    drop(servers);

    let full: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("netio: cannot track process"))
        .collect();
    assert_eq!(
        full.len(),
        1,
        "said in full once, not per process and interval:\n{stderr}"
    );
    let summary = stderr
        .lines()
        .find(|l| l.contains("more \"cannot track process\" warnings in the last"))
        .unwrap_or_else(|| panic!("the rest are counted in a summary:\n{stderr}"));
    let count: u64 = summary
        .strip_prefix("netio: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {summary:?}"));
    // Three processes at two scans at start and about 30 rescans.
    assert!(count >= 20, "{count} in {summary:?}");
    assert!(
        summary.contains("the last: cannot track process"),
        "the summary keeps the last one: {summary:?}"
    );
}
