//! Who the .deb says made it: the packager's environment, the Debian way,
//! or netio's local identity with a line saying so; only the latter needs
//! lintian's bogus-mail-host tags suppressed.

use super::*;

const LOCAL_IDENTITY: &str = "netio <netio@localhost>";
/// A placeholder name, and an address on a reserved domain (RFC 2606).
const NAME: &str = "A Distributor";
const EMAIL: &str = "packages@distributor.example";
/// What scripts/package says when it falls back.
const FALLBACK_SAID: &str = "no Maintainer in the environment";
const SUPPRESSED: [&str; 2] = ["bogus-mail-host", "bogus-mail-host-in-debian-changelog"];

/// The .deb's Maintainer field and the signature of every entry of its
/// packed changelog.
fn maintainers(deb: &Path) -> (String, Vec<String>) {
    let control = ok(Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg("Maintainer"));
    let scratch = Scratch::new("deb-changelog");
    ok(Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&scratch.dir));
    let changelog =
        ok(Command::new("zcat").arg(scratch.path("usr/share/doc/netio/changelog.Debian.gz")));
    let signed: Vec<String> = changelog
        .lines()
        .filter_map(|l| l.strip_prefix(" -- "))
        .map(|l| l.split("  ").next().unwrap_or_default().to_owned())
        .collect();
    assert!(!signed.is_empty(), "no signature in:\n{changelog}");
    (control.trim().to_owned(), signed)
}

/// lintian's errors on `deb`, with nothing suppressed.
fn lintian_errors(deb: &Path) -> Vec<String> {
    let out = run(Command::new("lintian").arg(deb));
    text(&out)
        .lines()
        .filter(|l| l.starts_with("E:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn deb_names_the_maintainer_from_debfullname_and_debemail_and_lints_clean_unsuppressed() {
    let _turn = crate::turn(module_path!());
    need_root();
    let scratch = Scratch::new("deb-maintainer");
    let built = build(&scratch.dir, &[("DEBFULLNAME", NAME), ("DEBEMAIL", EMAIL)])
        .unwrap_or_else(|e| panic!("{e}"));
    let want = format!("{NAME} <{EMAIL}>");
    let (control, signed) = maintainers(&built.deb);
    assert_eq!(control, want, "the .deb's Maintainer");
    for signature in &signed {
        assert_eq!(signature, &want, "a changelog entry's signature");
    }
    assert!(!built.output.contains(FALLBACK_SAID), "{}", built.output);
    let errors = lintian_errors(&built.deb);
    assert!(
        errors.is_empty(),
        "lintian, nothing suppressed:\n{errors:#?}"
    );
}

#[test]
fn without_a_maintainer_the_deb_names_the_local_identity_and_says_so() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let (control, signed) = maintainers(&built.deb);
    assert_eq!(control, LOCAL_IDENTITY);
    assert!(signed.iter().all(|s| s == LOCAL_IDENTITY), "{signed:?}");
    let said: Vec<&str> = built
        .output
        .lines()
        .filter(|l| l.contains(FALLBACK_SAID))
        .collect();
    assert!(
        said.len() == 1 && said[0].contains(LOCAL_IDENTITY),
        "scripts/package did not say it fell back:\n{}",
        built.output
    );
    // What the suppressions file hides is exactly what this build needs.
    let errors = lintian_errors(&built.deb);
    let tags: BTreeSet<&str> = errors
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(tags, BTreeSet::from(SUPPRESSED), "{errors:#?}");
    let file =
        std::fs::read_to_string(repo().join("packaging/lintian-suppress-local-identity")).unwrap();
    let listed: BTreeSet<&str> = file
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(listed, BTreeSet::from(SUPPRESSED));
}
