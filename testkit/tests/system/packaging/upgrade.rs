//! An upgrade of the installed .deb while netio counts a stream: the
//! package's netio runs (as the tests start it: systemd is not PID 1 here),
//! `dpkg -i` installs a newer version, and netio is restarted onto it as
//! postinst has systemd do. The second netio adopts the first one's pinned
//! programs, so the records of both add up exactly to the server's count;
//! purging the package removes the pins (docs/kernels.md, "Pinned state").

use super::{
    dpkg, dpkg_install, dpkg_status, exists, newer_packages, newer_version, packages, Installed,
    DPKG,
};
use crate::common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::{
    event, text, unique_name, write_config, Netio, PacedStream, Pins, Program, Records, Scratch,
};

/// Where the package's netio pins, and its state beside them.
const PIN_DIR: &str = "/sys/fs/bpf/netio";
const STATE_DIR: &str = "/run/netio";

/// 12 s of echoing at 8 MiB/s each way: the upgrade falls inside it.
const PHASES: &str = "8m:12000";

fn started(records: &[serde_json::Value]) -> &serde_json::Value {
    records
        .iter()
        .find(|v| event(v) == Some("started"))
        .expect("a started record")
}

#[test]
fn a_deb_upgrade_under_traffic_loses_and_repeats_nothing_and_purge_removes_the_pins() {
    let _turn = crate::turn(module_path!());
    let (old, newer) = (packages(), newer_packages());
    let _dpkg = DPKG.lock().unwrap_or_else(|e| e.into_inner());
    let before = dpkg_status();
    assert!(
        !before.contains("installed") && !exists(PIN_DIR),
        "netio is already on this machine ({before}) or pinned in {PIN_DIR}: the test would remove it"
    );
    let installed = Installed;
    dpkg_install(&old.deb);

    let scratch = Scratch::new("deb-upgrade-traffic");
    let program = Program::named(&scratch, &unique_name("upg"));
    let target = program.name();
    let config = write_config(&scratch, "700ms", &[(common::TARGET, &[&target])]);
    // The package's own pin directory, so that purge has them to remove;
    // dropped (unloaded) at the end if the test fails before.
    let pins = Pins {
        dir: Path::new(PIN_DIR).to_path_buf(),
    };
    let bin = Path::new("/usr/bin/netio");
    let first = Netio::start_bin_pinned(bin, &config, &pins);
    let stream = PacedStream::start(&program, PHASES);
    thread::sleep(Duration::from_secs(2));

    // The upgrade leaves the old netio running (prerm does not stop it),
    // then the restart onto the new binary.
    dpkg_install(&newer.deb);
    assert!(
        dpkg_status().ends_with(&newer_version()),
        "{}",
        dpkg_status()
    );
    let before = first.stop();
    let second = Netio::start_bin_pinned(bin, &config, &pins);
    let truth = stream.finish();
    let after = second.stop();

    let (was, now) = (started(&before.records), started(&after.records));
    assert_eq!(text(was, "NETIO_PINNING"), Some("pinned"), "{was}");
    assert_eq!(
        text(now, "NETIO_PINNING"),
        Some("adopted"),
        "the upgraded netio did not adopt the old one's programs: {now}\nstderr:\n{}",
        after.stderr
    );
    assert_eq!(
        text(now, "NETIO_ADOPTED_VERSION"),
        text(was, "NETIO_VERSION"),
        "{now}"
    );
    let both = Records::one_after_the_other(before, after, "upgraded netio");
    both.assert_exact_for(&[(common::TARGET, &truth.per_pid)], "127.0.0.1");

    // The stopped netio left its programs pinned for the next start; purge
    // takes them and the state away.
    assert!(
        exists(PIN_DIR),
        "nothing pinned in {PIN_DIR} after the stop"
    );
    super::ok(&mut dpkg(&["--purge", "netio"]));
    for path in [PIN_DIR, STATE_DIR] {
        assert!(!exists(path), "{path} is left after purge");
    }
    drop(installed);
}
