//! A target's `user` and `exe` constraints as netio checks them: the uids
//! its `user` names stand for now, the identity of each of its `exe` files
//! (the file itself, not its name), and whether a process passes them.
//!
//! The kernel checks uids at exec (`lifecycle.bpf.h`), so another user's
//! look-alike is never tracked. The executable is checked here: on every
//! exec the kernel tracked by name or cgroup, and by the /proc rescan for
//! what it finds itself (docs/config.md, "Who is the database").

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use netio_probes::KernelFileId;

use crate::config::Config;

/// A file, by its file system's device (major, minor) and its inode: what
/// a bind mount or a copy at the same path in another mount namespace
/// cannot share with the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub major: u32,
    pub minor: u32,
    pub ino: u64,
}

impl FileId {
    /// The file at `path`, symlinks followed (`/proc/PID/exe` is the
    /// process's executable, in whatever mount namespace it runs).
    pub fn of(path: &Path) -> Option<FileId> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileId::from_dev(m.dev(), m.ino()))
    }

    /// From a `st_dev` as glibc encodes it (makedev).
    fn from_dev(dev: u64, ino: u64) -> FileId {
        FileId {
            major: (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32,
            minor: ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32,
            ino,
        }
    }
}

impl From<KernelFileId> for FileId {
    fn from(k: KernelFileId) -> FileId {
        FileId {
            major: k.major,
            minor: k.minor,
            ino: k.ino,
        }
    }
}

/// One target's constraints; `None`: unconstrained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rule {
    uids: Option<BTreeSet<u32>>,
    exes: Option<Vec<FileId>>,
}

/// Every configured target's constraints, by its index in the config, as
/// they stand now: read again at each rescan, since a user or a file may
/// appear (a package installed) after netio starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    rules: Vec<Rule>,
}

impl Constraints {
    pub fn of(config: &Config) -> Constraints {
        let rules = config
            .targets
            .iter()
            .map(|t| Rule {
                uids: t.uids().map(|u| u.uids),
                // A path not there (yet) stands for no file.
                exes: t
                    .exes()
                    .map(|paths| paths.iter().filter_map(|p| FileId::of(p)).collect()),
            })
            .collect();
        Constraints { rules }
    }

    /// Each target's allowed uids, for the kernel; `None`: any user.
    pub fn uids(&self) -> impl Iterator<Item = Option<Vec<u32>>> + '_ {
        self.rules
            .iter()
            .map(|r| r.uids.as_ref().map(|u| u.iter().copied().collect()))
    }

    /// Whether target `index` constrains its processes at all.
    pub fn constrained(&self, index: usize) -> bool {
        self.rules
            .get(index)
            .is_some_and(|r| r.uids.is_some() || r.exes.is_some())
    }

    /// Whether a process whose (real, effective) uids are `uids` and whose
    /// executable is one of `exe` (the ways netio could read it) passes
    /// target `index`'s constraints. What netio could not read passes no
    /// constraint.
    pub fn admits(&self, index: usize, uids: Option<(u32, u32)>, exe: &[FileId]) -> bool {
        let Some(rule) = self.rules.get(index) else {
            return true;
        };
        let uid_ok = rule.uids.as_ref().is_none_or(|allowed| {
            uids.is_some_and(|(real, eff)| allowed.contains(&real) && allowed.contains(&eff))
        });
        let exe_ok = rule
            .exes
            .as_ref()
            .is_none_or(|files| exe.iter().any(|e| files.contains(e)));
        uid_ok && exe_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(&format!(
            "interval = \"1s\"\n[[target]]\nname = \"a\"\nprocess = [\"a\"]\n{extra}\n[[target]]\nname = \"b\"\nprocess = [\"b\"]\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_process_passes_only_every_constraint_given() {
        let me = FileId::of(Path::new("/proc/self/exe")).unwrap();
        let sh = FileId::of(Path::new("/bin/sh")).unwrap();
        let exe = std::env::current_exe().unwrap();
        let c = Constraints::of(&config(&format!(
            "user = [0, 105]\nexe = [{:?}, \"/netio/no/such/file\"]",
            exe.display().to_string()
        )));
        assert!(c.admits(0, Some((0, 0)), &[me]));
        assert!(c.admits(0, Some((105, 105)), &[sh, me]));
        // Either uid not allowed, a uid unread, another file, no file read.
        assert!(!c.admits(0, Some((65534, 0)), &[me]));
        assert!(!c.admits(0, Some((0, 65534)), &[me]));
        assert!(!c.admits(0, None, &[me]));
        assert!(!c.admits(0, Some((0, 0)), &[sh]));
        assert!(!c.admits(0, Some((0, 0)), &[]));
        // The target without constraints admits anyone.
        assert!(c.admits(1, None, &[]));
        assert!(c.constrained(0) && !c.constrained(1));
        let uids: Vec<_> = c.uids().collect();
        assert_eq!(uids, [Some(vec![0, 105]), None]);
    }

    #[test]
    fn a_user_that_does_not_exist_admits_no_one() {
        let c = Constraints::of(&config("user = [\"netio-no-such-user\"]"));
        assert!(!c.admits(0, Some((0, 0)), &[]));
        assert_eq!(c.uids().next(), Some(Some(vec![])));
    }

    #[test]
    fn device_numbers_decode_as_glibc_encodes_them() {
        // makedev(4097, 65537), both past what the old 8-bit fields held.
        let (major, minor) = (4097u64, 65537u64);
        let dev =
            (major & 0xfff) << 8 | (major & !0xfff) << 32 | (minor & 0xff) | (minor & !0xff) << 12;
        let f = FileId::from_dev(dev, 9);
        assert_eq!((f.major, f.minor, f.ino), (4097, 65537, 9));
        let k = KernelFileId {
            major: 4097,
            minor: 65537,
            ino: 9,
        };
        assert_eq!(FileId::from(k), f);
    }
}
