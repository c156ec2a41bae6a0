//! Tests of the packages: `scripts/package` builds the .deb and the .rpm
//! and lints them; the .deb is installed, upgraded, removed and purged on
//! this machine the way an operator would; the .rpm's file list, config
//! flags and scriptlets are read back with `rpm -qp`. Run as root (the
//! script installs its tools with apt, and dpkg needs root).
//!
//! The packages are built once per run and shared; the test that changes
//! dpkg's state holds a lock and purges netio when it ends, pass or fail.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use common::Scratch;

mod maintainer;
mod texts;
mod upgrade;

/// Where each file an operator looks for must be.
/// The forwarding examples, shipped as documentation.
const EXAMPLE_RSYSLOG: &str = "/usr/share/doc/netio/examples/rsyslog/netio-forward.conf";
const EXAMPLE_VECTOR: &str = "/usr/share/doc/netio/examples/vector/netio.toml";
const UNIT_DEB: &str = "/lib/systemd/system/netio.service";
const UNIT_RPM: &str = "/usr/lib/systemd/system/netio.service";
const CONFIG: &str = "/etc/netio/netio.conf";
const CATALOG: &str = "/usr/lib/systemd/catalog/netio.catalog";
const MAN8: &str = "/usr/share/man/man8/netio.8.gz";
const MAN5: &str = "/usr/share/man/man5/netio.conf.5.gz";
/// Created by deb-systemd-helper when postinst enables the unit.
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/netio.service";
/// The mask postrm leaves on `remove`, until purge.
const MASK: &str = "/etc/systemd/system/netio.service";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit has a parent")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` and returns its stdout; fails with all its output unless it
/// exits 0.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}",
        out.status,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn need_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the packaging tests install packages: run them as root (scripts/test does)"
    );
}

struct Built {
    deb: PathBuf,
    rpm: PathBuf,
    /// What `scripts/package` printed, stdout and stderr.
    output: String,
}

/// The packager's environment `scripts/package` reads (README, "Packages").
const PACKAGER_ENV: [&str; 4] = [
    "NETIO_MAINTAINER",
    "DEBFULLNAME",
    "DEBEMAIL",
    "NETIO_PACKAGE_VERSION",
];

/// Runs `scripts/package DIR` with only `env` of the packager's
/// environment, which must succeed, and finds the one .deb and .rpm in DIR.
fn build(dir: &Path, env: &[(&str, &str)]) -> Result<Built, String> {
    let mut cmd = Command::new(repo().join("scripts/package"));
    cmd.arg(dir).current_dir(repo());
    for var in PACKAGER_ENV {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = run(&mut cmd);
    let output = text(&out);
    if !out.status.success() {
        return Err(format!(
            "scripts/package with {env:?} failed with {}:\n{output}",
            out.status
        ));
    }
    let find = |pred: &dyn Fn(&str) -> bool| -> Result<PathBuf, String> {
        let names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(pred))
            .collect();
        match &names[..] {
            [one] => Ok(one.clone()),
            _ => Err(format!(
                "expected one package in {}, found {names:?}",
                dir.display()
            )),
        }
    };
    Ok(Built {
        deb: find(&|n| n.starts_with("netio_") && n.ends_with("_amd64.deb"))?,
        rpm: find(&|n| n.starts_with("netio-") && n.ends_with(".x86_64.rpm"))?,
        output,
    })
}

/// The packages from one run of `scripts/package`, as a build without a
/// packager's environment makes them, which must succeed; its output is in
/// the panic message of every test that needs them.
fn packages() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    need_root();
    let built = BUILT.get_or_init(|| build(&repo().join("target/packages"), &[]));
    built.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// The packages of this tree at a newer version, raised at package time
/// (`NETIO_PACKAGE_VERSION`), built once per run.
fn newer_packages() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    need_root();
    let built = BUILT.get_or_init(|| {
        build(
            &repo().join("target/packages-newer"),
            &[("NETIO_PACKAGE_VERSION", &newer_version())],
        )
    });
    built.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

fn newer_version() -> String {
    format!("{}-2", version())
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[test]
fn package_script_builds_a_deb_and_an_rpm_of_this_version() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let field = |f: &str| {
        ok(Command::new("dpkg-deb").arg("-f").arg(&built.deb).arg(f))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Package"), "netio");
    assert_eq!(field("Version"), format!("{}-1", version()));
    let rpm_version = ok(Command::new("rpm")
        .args(["-qp", "--qf", "%{NAME} %{VERSION}"])
        .arg(&built.rpm));
    assert_eq!(rpm_version, format!("netio {}", version()));
}

#[test]
fn deb_depends_on_the_shared_libraries_netio_links_and_not_on_libbpf() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let depends = ok(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&built.deb)
        .arg("Depends"));
    for lib in ["libc6", "libelf1", "zlib1g"] {
        assert!(
            depends.split(',').any(|d| d.trim().starts_with(lib)),
            "Depends has no {lib}: {depends}"
        );
    }
    // libbpf is built into the binary: neither a dependency nor linked.
    assert!(!depends.contains("libbpf"), "Depends: {depends}");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(repo().join("target"), PathBuf::from);
    let ldd = ok(Command::new("ldd").arg(target.join("release/netio")));
    assert!(
        !ldd.contains("libbpf"),
        "netio links libbpf dynamically:\n{ldd}"
    );
    let requires = ok(Command::new("rpm")
        .args(["-qp", "--requires"])
        .arg(&built.rpm));
    for lib in ["libc.so.6", "libelf.so.1", "libz.so.1"] {
        assert!(
            requires.contains(lib),
            "rpm Requires has no {lib}:\n{requires}"
        );
    }
    assert!(!requires.contains("libbpf"), "rpm Requires:\n{requires}");
}

#[test]
fn lintian_reports_no_errors_on_the_deb() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let out = run(Command::new("lintian")
        .arg("--suppress-tags-from-file")
        .arg(repo().join("packaging/lintian-suppress-local-identity"))
        .arg(&built.deb));
    let report = text(&out);
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(
        out.status.success() && errors.is_empty(),
        "lintian exited {} with errors:\n{report}",
        out.status
    );
}

#[test]
fn rpmlint_reports_no_errors_on_the_rpm_but_the_justified_ones() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let out = run(Command::new("rpmlint")
        .arg("-c")
        .arg(repo().join("packaging/rpmlint.toml"))
        .arg(&built.rpm));
    let report = text(&out);
    assert!(
        out.status.success() && report.contains(" 0 errors"),
        "rpmlint exited {} with errors:\n{report}",
        out.status
    );
    // Each filter, or group of filters, has its reason in a comment above.
    let config = std::fs::read_to_string(repo().join("packaging/rpmlint.toml")).unwrap();
    let lines: Vec<&str> = config.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("'^netio") {
            let above = lines[..i].iter().rev().find(|l| !l.starts_with('\''));
            assert!(
                above.is_some_and(|l| l.starts_with('#')),
                "rpmlint filter without a reason: {line}"
            );
        }
    }
}

#[test]
fn rpm_installs_every_file_where_the_distribution_expects_it() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let listed: BTreeSet<String> = ok(Command::new("rpm").arg("-qlp").arg(&built.rpm))
        .lines()
        .map(str::to_owned)
        .collect();
    let mut want: BTreeSet<String> = [
        "/usr/bin/netio",
        UNIT_RPM,
        CONFIG,
        CATALOG,
        MAN8,
        MAN5,
        "/usr/share/doc/netio/README.md",
        EXAMPLE_RSYSLOG,
        EXAMPLE_VECTOR,
        "/usr/share/licenses/netio/copyright",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Every page of docs/.
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            want.insert(format!("/usr/share/doc/netio/{name}"));
        }
    }
    assert!(want.contains("/usr/share/doc/netio/records.md"));
    assert_eq!(listed, want, "rpm -qlp");
    let configs = ok(Command::new("rpm")
        .args(["-qp", "--configfiles"])
        .arg(&built.rpm));
    assert_eq!(configs.trim(), CONFIG, "rpm -qp --configfiles");
    // %config(noreplace): flags "c" (config) and "n" (noreplace).
    let flags = ok(Command::new("rpm")
        .args(["-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\\n]"])
        .arg(&built.rpm));
    let config_flags = flags
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {CONFIG}")))
        .unwrap_or_else(|| panic!("{CONFIG} not in:\n{flags}"));
    assert!(
        config_flags.contains('c') && config_flags.contains('n'),
        "{CONFIG} has flags {config_flags:?}, not config(noreplace)"
    );
    // Stripped, as cargo-deb strips the .deb's: no symbol table.
    let scratch = Scratch::new("rpm");
    ok(Command::new("sh")
        .arg("-c")
        .arg("rpm2cpio \"$1\" | cpio -idm --quiet ./usr/bin/netio")
        .arg("sh")
        .arg(&built.rpm)
        .current_dir(&scratch.dir));
    let sections = ok(Command::new("readelf")
        .arg("-S")
        .arg(scratch.path("usr/bin/netio")));
    assert!(
        !sections.contains(".symtab") && sections.contains(".text"),
        "the rpm's netio is not stripped:\n{sections}"
    );
}

/// One scriptlet of the .rpm, as rpm would run it.
fn scriptlet(rpm: &Path, tag: &str) -> String {
    let body = ok(Command::new("rpm")
        .args(["-qp", "--qf", &format!("%{{{tag}}}")])
        .arg(rpm));
    assert!(body != "(none)" && !body.is_empty(), "the rpm has no {tag}");
    body
}

/// Runs `script` with argument `arg` ($1: how many versions of the package
/// remain) with systemctl and journalctl replaced by stubs that log their
/// arguments; returns the log, one call per line.
fn run_scriptlet(scratch: &Scratch, script: &str, arg: &str) -> String {
    let bin = scratch.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = scratch.path("calls");
    let _ = std::fs::remove_file(&log);
    for tool in ["systemctl", "journalctl"] {
        let stub = bin.join(tool);
        std::fs::write(
            &stub,
            format!("#!/bin/sh\necho \"{tool} $*\" >>'{}'\n", log.display()),
        )
        .unwrap();
        ok(Command::new("chmod").arg("755").arg(&stub));
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    ok(Command::new("sh")
        .args(["-e", "-c", script, "scriptlet", arg])
        .env("PATH", path));
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn rpm_scriptlets_apply_presets_on_install_disable_on_erase_and_update_the_catalog() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let scripts = ok(Command::new("rpm")
        .args(["-qp", "--scripts"])
        .arg(&built.rpm));
    for part in [
        "postinstall scriptlet",
        "preuninstall scriptlet",
        "postuninstall scriptlet",
    ] {
        assert!(scripts.contains(part), "no {part} in:\n{scripts}");
    }
    // Starting, stopping and restarting need a running systemd: each such
    // call is guarded as the systemd rpm macros guard them.
    for line in scripts.lines() {
        if ["stop", "try-restart", "daemon-reload"]
            .iter()
            .any(|c| line.contains(&format!("systemctl {c}")))
        {
            assert!(
                scripts.contains("[ -d /run/systemd/system ]"),
                "unguarded: {line}"
            );
        }
    }
    assert!(
        !scripts.contains("systemctl start") && !scripts.contains("enable --now"),
        "rpm scriptlets must leave starting to the admin (presets only enable):\n{scripts}"
    );

    let scratch = Scratch::new("scriptlets");
    let post = scriptlet(&built.rpm, "POSTIN");
    let preun = scriptlet(&built.rpm, "PREUN");
    let postun = scriptlet(&built.rpm, "POSTUN");
    // This host has no systemd as PID 1 (the tests run without it), so the
    // guarded calls are skipped and only these remain.
    let systemd_runs = Path::new("/run/systemd/system").is_dir();

    let install = run_scriptlet(&scratch, &post, "1");
    assert!(
        install.contains("systemctl --no-reload preset netio.service"),
        "first install: {install}"
    );
    assert!(install.contains("journalctl --update-catalog"), "{install}");
    let upgrade = run_scriptlet(&scratch, &post, "2");
    assert!(
        !upgrade.contains("preset"),
        "an upgrade must keep the admin's enable/disable: {upgrade}"
    );
    assert!(upgrade.contains("journalctl --update-catalog"), "{upgrade}");

    let erase = run_scriptlet(&scratch, &preun, "0");
    assert!(
        erase.contains("systemctl --no-reload disable netio.service"),
        "erase: {erase}"
    );
    assert_eq!(erase.contains("systemctl stop netio.service"), systemd_runs);
    let preun_upgrade = run_scriptlet(&scratch, &preun, "1");
    assert!(
        preun_upgrade.is_empty(),
        "an upgrade must neither disable nor stop: {preun_upgrade}"
    );

    let after_erase = run_scriptlet(&scratch, &postun, "0");
    assert!(
        after_erase.contains("journalctl --update-catalog"),
        "{after_erase}"
    );
    assert!(!after_erase.contains("try-restart"), "{after_erase}");
    let after_upgrade = run_scriptlet(&scratch, &postun, "1");
    assert_eq!(
        after_upgrade.contains("systemctl try-restart netio.service"),
        systemd_runs,
        "{after_upgrade}"
    );
}

// ------------------------------------------------------------ the .deb on this host

/// dpkg's state is one per machine.
static DPKG: Mutex<()> = Mutex::new(());

/// Purges netio when dropped, so a failed assertion leaves the machine as
/// the test found it.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let out = run(&mut dpkg(&["--purge", "netio"]));
        if !out.status.success() {
            eprintln!(
                "dpkg --purge netio at the end of the test failed:\n{}",
                text(&out)
            );
        }
    }
}

fn dpkg_status() -> String {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${Status} ${Version}", "netio"]));
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        "not known to dpkg".into()
    }
}

/// dpkg in the environment an operator's has: without the tests'
/// NETIO_PIN_DIR, so that the maintainer scripts act on the package's pins.
fn dpkg(args: &[&str]) -> Command {
    let mut cmd = Command::new("dpkg");
    cmd.args(args)
        .env_remove("NETIO_PIN_DIR")
        .env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn dpkg_install(deb: &Path) {
    ok(dpkg(&["-i"]).arg(deb));
}

/// The MESSAGE_IDs netio.catalog defines.
fn catalog_ids() -> Vec<String> {
    std::fs::read_to_string(repo().join("packaging/netio.catalog"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("-- "))
        .map(|id| id.trim().to_owned())
        .collect()
}

/// Whether journalctl's catalog database knows `id`.
fn catalog_knows(id: &str) -> bool {
    let out = run(Command::new("journalctl").args(["--list-catalog", id]));
    String::from_utf8_lossy(&out.stdout).contains(id)
}

fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

#[test]
fn deb_installs_upgrades_keeping_a_changed_config_and_purges_clean() {
    let _turn = crate::turn(module_path!());
    let built = packages();
    let _dpkg = DPKG.lock().unwrap_or_else(|e| e.into_inner());
    let before = dpkg_status();
    assert!(
        !before.contains("installed") && !exists("/etc/netio"),
        "netio is already on this machine ({before}): the test would purge it; remove it first"
    );
    let ids = catalog_ids();
    assert!(!ids.is_empty());

    let installed = Installed;
    dpkg_install(&built.deb);
    assert!(
        dpkg_status().starts_with("install ok installed"),
        "{}",
        dpkg_status()
    );

    // From PATH, as an operator types it.
    let which = ok(Command::new("sh").args(["-c", "command -v netio"]));
    assert_eq!(which.trim(), "/usr/bin/netio");
    let v = ok(Command::new("netio").arg("--version"));
    assert_eq!(v.trim(), format!("netio {}", version()));
    // The installed (stripped) binary, started as the unit starts it:
    // its capabilities and sandbox, counting a server of another user.
    common::unit::counts_exactly_as_the_unit_runs_it(Path::new("/usr/bin/netio"));

    let files = ok(&mut dpkg(&["-L", "netio"]));
    for path in [
        "/usr/bin/netio",
        UNIT_DEB,
        CONFIG,
        CATALOG,
        MAN8,
        MAN5,
        "/usr/share/doc/netio/copyright",
        "/usr/share/doc/netio/changelog.Debian.gz",
        "/usr/share/doc/netio/README.md",
        "/usr/share/doc/netio/records.md",
        EXAMPLE_RSYSLOG,
        EXAMPLE_VECTOR,
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "dpkg -L netio lacks {path}:\n{files}"
        );
        assert!(exists(path), "{path} is listed but not on disk");
    }
    assert_eq!(
        std::fs::read(UNIT_DEB).unwrap(),
        std::fs::read(repo().join("netio.service")).unwrap(),
        "the installed unit is not the repository's"
    );
    assert_eq!(
        std::fs::read_to_string(CONFIG).unwrap(),
        std::fs::read_to_string(repo().join("netio.conf")).unwrap()
    );
    let conffiles = ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "netio"]));
    assert!(conffiles.contains(CONFIG), "not a conffile: {conffiles}");
    let man = ok(Command::new("man").args(["-w", "8", "netio"]));
    assert_eq!(man.trim(), MAN8);
    let man = ok(Command::new("man").args(["-w", "5", "netio.conf"]));
    assert_eq!(man.trim(), MAN5);
    // Enabled on install, per Debian policy (started too when systemd runs).
    let wants = std::fs::read_link(WANTS).unwrap_or_else(|e| panic!("{WANTS}: {e}"));
    assert!(
        wants.ends_with("netio.service"),
        "{WANTS} -> {}",
        wants.display()
    );
    // systemd's dpkg trigger rebuilt the catalog database.
    for id in &ids {
        assert!(
            catalog_knows(id),
            "journalctl --list-catalog lacks {id} after install"
        );
    }

    // The admin changes the config; reinstalling and upgrading keep it.
    let changed = format!(
        "{}\n# changed by the admin\n",
        std::fs::read_to_string(CONFIG).unwrap()
    );
    std::fs::write(CONFIG, &changed).unwrap();
    dpkg_install(&built.deb);
    assert_eq!(
        std::fs::read_to_string(CONFIG).unwrap(),
        changed,
        "reinstall"
    );

    // A newer version of the same tree, raised at package time.
    let raised = newer_version();
    dpkg_install(&newer_packages().deb);
    assert!(dpkg_status().ends_with(&raised), "{}", dpkg_status());
    assert_eq!(std::fs::read_to_string(CONFIG).unwrap(), changed, "upgrade");
    assert!(exists(WANTS), "an upgrade must keep the unit enabled");

    // Remove: the program goes, the config and the enablement stay, the
    // unit is masked and the catalog forgets netio.
    ok(&mut dpkg(&["-r", "netio"]));
    assert!(!exists("/usr/bin/netio") && !exists(UNIT_DEB) && !exists(CATALOG) && !exists(MAN8));
    assert_eq!(std::fs::read_to_string(CONFIG).unwrap(), changed, "remove");
    let mask = std::fs::read_link(MASK).unwrap_or_else(|e| panic!("{MASK}: {e}"));
    assert_eq!(mask, Path::new("/dev/null"));
    for id in &ids {
        assert!(
            !catalog_knows(id),
            "the catalog still has {id} after remove"
        );
    }

    // Purge: nothing of netio is left.
    ok(&mut dpkg(&["--purge", "netio"]));
    let status = dpkg_status();
    assert!(!status.contains("installed"), "{status}");
    for path in ["/etc/netio", WANTS, MASK, "/usr/share/doc/netio"] {
        assert!(!exists(path), "{path} is left after purge");
    }
    for path in files.lines().filter(|p| p.contains("netio")) {
        assert!(!exists(path), "{path} is left after purge");
    }
    drop(installed);
}

// ------------------------------------------------------------ man pages

/// The roff source with dashes as typed and font changes dropped, after
/// checking that groff renders it without a warning (as lintian does).
fn page(name: &str) -> String {
    let path = repo().join("packaging/man").join(name);
    let out = run(Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(&path)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8"));
    assert!(out.status.success(), "man {name}: {}", text(&out));
    assert!(out.stderr.is_empty(), "man {name} warns:\n{}", text(&out));
    let mut source = std::fs::read_to_string(path).unwrap().replace("\\-", "-");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        source = source.replace(font, "");
    }
    source
}

#[test]
fn netio_8_documents_every_command_and_option_of_the_cli() {
    let _turn = crate::turn(module_path!());
    let page = page("netio.8");
    let help = ok(Command::new(common::netio_bin()).arg("--help"));
    let usage: Vec<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with("netio "))
        .collect();
    let mut words: BTreeSet<&str> = BTreeSet::new();
    for line in &usage {
        for word in line.split(|c: char| c.is_whitespace() || "[]|".contains(c)) {
            // Commands, options and their fixed values; not FILE or "netio".
            if !word.is_empty() && word != "netio" && !word.contains(char::is_uppercase) {
                words.insert(word);
            }
        }
    }
    for must in [
        "run",
        "kernel",
        "check-config",
        "--config",
        "--backend",
        "json",
        "--version",
    ] {
        assert!(
            words.contains(must),
            "netio --help no longer shows {must}: {words:?}"
        );
    }
    for word in &words {
        let as_term = page.lines().any(|l| {
            l.starts_with('.')
                && l.split(|c: char| c.is_whitespace() || c == '"')
                    .any(|w| w == *word)
        });
        assert!(
            as_term,
            "netio(8) does not document {word} (from netio --help)"
        );
    }
    assert!(page.contains("/etc/netio/netio.conf"));
}

#[test]
fn netio_conf_5_documents_every_key_of_docs_config_md() {
    let _turn = crate::turn(module_path!());
    let page = page("netio.conf.5");
    let reference = std::fs::read_to_string(repo().join("docs/config.md")).unwrap();
    let mut keys = Vec::new();
    for line in reference.lines() {
        if let Some(rest) = line.strip_prefix("| `") {
            if let Some((key, _)) = rest.split_once('`') {
                keys.push(key.to_owned());
            }
        }
    }
    assert!(keys.len() > 10, "found only {keys:?} in docs/config.md");
    for key in &keys {
        // As the bold term of an entry: ".BR key ..." or ".BR a ", " key".
        let documented = page.lines().any(|l| {
            l.starts_with(".B")
                && l.split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                    .any(|w| w == key)
        });
        assert!(documented, "netio.conf(5) has no entry for {key}");
    }
    for table in [
        "[capacity]",
        "[records]",
        "[[target]]",
        "[target.threshold]",
    ] {
        assert!(page.contains(&format!(".SH {table}")), "no section {table}");
    }
}
