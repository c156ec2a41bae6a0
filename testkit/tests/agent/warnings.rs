//! netio's stderr under a flood of warnings: a warning that repeats every
//! interval (a syslog destination over UDP refusing each record as too
//! large) is said once in full, then counted in one summary line.

use crate::common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{Idle, Netio, Scratch};

#[test]
fn a_warning_repeated_every_interval_is_said_once_then_counted() {
    let scratch = Scratch::new("warnings");
    let collector = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP collector");
    let port = collector.local_addr().unwrap().port();
    // The target's name is in each of its records, which makes every one
    // larger than a datagram can be: one warning per interval.
    let big = "w".repeat(70_000);
    let idle = Idle::start(&scratch);
    let syslog = format!("[[syslog]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{port}\"\n");
    let netio = Netio::start_with(&scratch, "100ms", &[(&big, &[idle.name.as_str()])], &syslog);
    std::thread::sleep(Duration::from_secs(3));
    let stderr = netio.stop().stderr;

    let warning = "is too large for udp";
    let full: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("netio: syslog") && l.contains(warning))
        .collect();
    assert_eq!(
        full.len(),
        1,
        "said in full once, not per record:\n{}",
        stderr.chars().take(3000).collect::<String>()
    );
    let summary = stderr
        .lines()
        .find(|l| l.contains("more \"syslog record too large\" warnings in the last"))
        .unwrap_or_else(|| panic!("the rest are counted in a summary:\n{stderr}"));
    let count: u64 = summary
        .strip_prefix("netio: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {summary:?}"));
    // About 30 intervals of one oversized record each.
    assert!(
        count >= 20,
        "{count} in {:?}",
        &summary[..200.min(summary.len())]
    );
}
