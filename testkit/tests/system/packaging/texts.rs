//! What the package tells its admin: a one-line summary that `dpkg -l`
//! shows whole, and a postinst that says when the service was not started
//! because systemd is not running.

use super::*;

/// `dpkg -l` at 80 columns leaves the description 32 characters.
const DPKG_L_DESCRIPTION: usize = 32;

#[test]
fn deb_summary_fits_the_description_column_of_dpkg_l() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let description = ok(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&built.deb)
        .arg("Description"));
    let summary = description.lines().next().unwrap_or_default();
    assert!(
        !summary.is_empty() && summary.chars().count() <= DPKG_L_DESCRIPTION,
        "the summary {summary:?} is {} characters; dpkg -l shows {DPKG_L_DESCRIPTION}",
        summary.chars().count()
    );
    assert!(
        description.lines().count() > 1,
        "the extended description follows: {description}"
    );
}

/// Runs packaging/debian/postinst `configure` (an upgrade from `from`, or a
/// first install) with the systemd helpers replaced by stubs; returns what
/// it wrote and the calls it made.
fn postinst(scratch: &Scratch, from: &str) -> (String, String) {
    let bin = scratch.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = scratch.path("calls");
    let _ = std::fs::remove_file(&log);
    for tool in ["deb-systemd-helper", "deb-systemd-invoke", "systemctl"] {
        std::fs::write(
            bin.join(tool),
            format!("#!/bin/sh\necho \"{tool} $*\" >>'{}'\n", log.display()),
        )
        .unwrap();
        ok(Command::new("chmod").arg("755").arg(bin.join(tool)));
    }
    let out = run(Command::new("sh")
        .arg(repo().join("packaging/debian/postinst"))
        .args(["configure", from])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display())));
    assert!(out.status.success(), "postinst: {}", text(&out));
    (
        text(&out),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

#[test]
fn deb_postinst_says_the_service_was_not_started_when_systemd_is_not_running() {
    let _turn = crate::turn(module_path!());
    let scratch = Scratch::new("postinst");
    let systemd_runs = Path::new("/run/systemd/system").is_dir();
    for (from, said) in [("", "not started"), ("0.1.0-1", "not restarted")] {
        let (out, calls) = postinst(&scratch, from);
        assert!(
            calls.contains("deb-systemd-helper enable netio.service"),
            "{calls}"
        );
        let told = out.contains(&format!(
            "netio.service was enabled, {said}: systemd is not running"
        ));
        assert_eq!(
            told, !systemd_runs,
            "configure {from:?}: systemd runs: {systemd_runs}; postinst said {out:?}"
        );
        assert_eq!(
            calls.contains("deb-systemd-invoke"),
            systemd_runs,
            "{calls}"
        );
        if told {
            assert!(
                out.contains("systemctl start netio") && out.contains("netio run"),
                "{out}"
            );
        }
    }
}
