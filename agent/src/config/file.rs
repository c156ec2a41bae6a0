//! Reading a file netio trusts: the config and the TLS files it names.
//!
//! As sshd's StrictModes: the file, every directory on its resolved path
//! and every symlink on the way must be owned by root (or the user netio
//! runs as) and not writable by group or others; a sticky directory such
//! as /tmp may be, as only an entry's owner can replace it there. Only a
//! regular file is read, and at most a given size; nothing is opened that
//! could block (a FIFO), and the checks are made on the descriptors the
//! path is walked and read through, never on a name looked up twice.
//! docs/config.md ("Who may write the config") gives the reasons.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use super::users::name_of_uid;

/// Symlinks followed on one path at most, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

/// Reads `path` if nobody but root (or the user netio runs as) could have
/// written it or put it there; else says what is wrong and what to do,
/// as a message that follows the file's name ("is owned by ...").
pub fn read_trusted(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read: no current directory to find it in: {e}"))?;
        cwd.join(path)
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, &absolute);
    let (mut dir, mut at) = (open_root(me)?, PathBuf::from("/"));
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            let parent = openat(&dir, OsStr::new(".."), libc::O_PATH | libc::O_DIRECTORY)
                .map_err(|e| cannot(&at, e))?;
            at.pop();
            check(&fstat(&parent)?, Entry::Directory, &at, me)?;
            dir = parent;
            continue;
        }
        let here = at.join(&name);
        let fd =
            openat(&dir, &name, libc::O_PATH | libc::O_NOFOLLOW).map_err(|e| cannot(&here, e))?;
        let st = fstat(&fd)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(format!(
                        "cannot read: more than {MAX_SYMLINKS} symlinks on the way to it (a loop?)"
                    ));
                }
                check(&st, Entry::Symlink, &here, me)?;
                let target = readlink(&fd).map_err(|e| cannot(&here, e))?;
                push_components(&mut pending, &target);
                if target.is_absolute() {
                    (dir, at) = (open_root(me)?, PathBuf::from("/"));
                }
            }
            libc::S_IFDIR if !pending.is_empty() => {
                check(&st, Entry::Directory, &here, me)?;
                (dir, at) = (fd, here);
            }
            _ if !pending.is_empty() => {
                return Err(format!(
                    "cannot read: {} is not a directory",
                    here.display()
                ))
            }
            _ => return read_file(&dir, &name, &st, &here, me, max_bytes),
        }
    }
    Err("is a directory, not a regular file".into())
}

/// What a path leads through, for the checks and the messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    File,
    Directory,
    Symlink,
}

/// Opens the last entry, which the walk saw as `seen`, for reading, and
/// reads it if it is the same regular file and trusted.
fn read_file(
    dir: &OwnedFd,
    name: &OsStr,
    seen: &libc::stat,
    here: &Path,
    me: u32,
    max_bytes: u64,
) -> Result<Vec<u8>, String> {
    // Refused by what the walk saw, before anything opens a device or a FIFO.
    not_regular(seen)?;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY;
    let fd = openat(dir, name, flags).map_err(|e| cannot(here, e))?;
    let st = fstat(&fd)?;
    if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino) {
        return Err("cannot read: it was replaced while netio opened it; try again".into());
    }
    not_regular(&st)?;
    check(&st, Entry::File, here, me)?;
    if st.st_size as u64 > max_bytes {
        return Err(format!(
            "is {} bytes; such a file is at most {max_bytes} bytes",
            st.st_size
        ));
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("grew past {max_bytes} bytes while netio read it"));
    }
    Ok(bytes)
}

/// Only regular files are read: a FIFO would block, a device never end.
fn not_regular(st: &libc::stat) -> Result<(), String> {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => return Ok(()),
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        _ => "not a file",
    };
    Err(format!("is {kind}, not a regular file"))
}

/// Whether anyone but root (or netio's own user) could have changed the
/// entry, or replaced what it leads to: why, and the command that fixes it.
fn check(st: &libc::stat, entry: Entry, here: &Path, me: u32) -> Result<(), String> {
    let subject = match entry {
        Entry::File => String::new(),
        Entry::Directory => format!("directory {} on its path ", here.display()),
        Entry::Symlink => format!("symlink {} on its path ", here.display()),
    };
    let could = match entry {
        Entry::File => "could have written it",
        Entry::Directory => "could replace what is below it",
        Entry::Symlink => "could have pointed it at another file",
    };
    if st.st_uid != 0 && st.st_uid != me {
        let who = match name_of_uid(st.st_uid) {
            Some(name) => format!("{name} (uid {})", st.st_uid),
            None => format!("uid {}", st.st_uid),
        };
        let chown = if entry == Entry::Symlink {
            "chown -h root"
        } else {
            "chown root"
        };
        return Err(format!(
            "{subject}is owned by {who}, not root: that user {could}; `{chown} {}`",
            here.display()
        ));
    }
    let writable = st.st_mode & 0o022;
    let sticky = st.st_mode & libc::S_ISVTX != 0;
    // A symlink's own mode means nothing; in a sticky directory only an
    // entry's owner may rename or remove it, and entries are checked too.
    if entry == Entry::Symlink || writable == 0 || (entry == Entry::Directory && sticky) {
        return Ok(());
    }
    let (by, flags) = match writable {
        0o020 => ("its group", "g"),
        0o002 => ("others", "o"),
        _ => ("its group and others", "go"),
    };
    Err(format!(
        "{subject}is writable by {by} (mode {:04o}): they {could}; `chmod {flags}-w {}`",
        st.st_mode & 0o7777,
        here.display()
    ))
}

fn cannot(path: &Path, e: io::Error) -> String {
    format!("cannot read: {}: {e}", path.display())
}

/// The names of `path`'s components, pushed so that the first pops first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(names.into_iter().rev());
}

fn open_root(me: u32) -> Result<OwnedFd, String> {
    let root = open_path(Path::new("/")).map_err(|e| cannot(Path::new("/"), e))?;
    check(&fstat(&root)?, Entry::Directory, Path::new("/"), me)?;
    Ok(root)
}

fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path; the descriptor returned is owned here.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat(dir: &OwnedFd, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(name.as_bytes())?;
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: &OwnedFd) -> Result<libc::stat, String> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a stat to fill.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(format!("cannot read: {}", io::Error::last_os_error()));
    }
    Ok(st)
}

/// The target of the symlink `fd` (opened with O_PATH|O_NOFOLLOW) refers to.
fn readlink(fd: &OwnedFd) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: an empty path reads the link `fd` refers to, into `buf`.
        let n = unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if (n as usize) < buf.len() {
            buf.truncate(n as usize);
            return Ok(PathBuf::from(OsString::from_vec(buf)));
        }
        buf.resize(buf.len() * 2, 0);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    /// A directory of its own under the temp dir, removed afterwards.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("netio-file-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
            Dir(d)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_trusted_file_is_read_through_symlinks_and_dot_dot() {
        let d = Dir::new("ok");
        std::fs::create_dir(d.0.join("sub")).unwrap();
        std::fs::write(d.0.join("sub/file"), "text").unwrap();
        chmod(&d.0.join("sub/file"), 0o644);
        symlink("sub/../sub/file", d.0.join("rel")).unwrap();
        symlink(d.0.join("rel"), d.0.join("abs")).unwrap();
        for p in ["sub/file", "rel", "abs", "sub/./../sub/file"] {
            assert_eq!(read_trusted(&d.0.join(p), 100).unwrap(), b"text", "{p}");
        }
    }

    #[test]
    fn writable_files_and_directories_are_refused_with_the_fix() {
        let d = Dir::new("modes");
        let f = d.0.join("f");
        std::fs::write(&f, "x").unwrap();
        for (mode, says) in [
            (0o664, "is writable by its group (mode 0664)"),
            (0o646, "is writable by others (mode 0646)"),
            (0o666, "`chmod go-w "),
        ] {
            chmod(&f, mode);
            let e = read_trusted(&f, 100).unwrap_err();
            assert!(e.starts_with("is writable") && e.contains(says), "{e}");
        }
        chmod(&f, 0o644);
        chmod(&d.0, 0o777);
        let e = read_trusted(&f, 100).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "directory {} on its path is writable",
                d.0.display()
            )),
            "{e}"
        );
        // Sticky, as /tmp: only root can replace root's entries.
        chmod(&d.0, 0o1777);
        assert_eq!(read_trusted(&f, 100).unwrap(), b"x");
    }

    #[test]
    fn only_regular_files_are_read_and_never_block() {
        let d = Dir::new("kinds");
        let fifo = d.0.join("fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        for (p, kind) in [
            (fifo.as_path(), "is a FIFO"),
            (Path::new("/dev/null"), "is a character device"),
            (d.0.as_path(), "is a directory"),
            (Path::new("/"), "is a directory"),
        ] {
            let e = read_trusted(p, 100).unwrap_err();
            assert!(
                e.starts_with(kind) && e.ends_with("not a regular file"),
                "{p:?}: {e}"
            );
        }
    }

    #[test]
    fn sizes_loops_and_missing_files_are_refused() {
        let d = Dir::new("limits");
        let f = d.0.join("f");
        std::fs::write(&f, "12345").unwrap();
        assert!(read_trusted(&f, 5).is_ok());
        assert_eq!(
            read_trusted(&f, 4).unwrap_err(),
            "is 5 bytes; such a file is at most 4 bytes"
        );
        symlink("b", d.0.join("a")).unwrap();
        symlink("a", d.0.join("b")).unwrap();
        assert!(read_trusted(&d.0.join("a"), 5)
            .unwrap_err()
            .contains("symlinks"));
        let e = read_trusted(&d.0.join("missing"), 5).unwrap_err();
        assert!(
            e.starts_with("cannot read: ") && e.contains("No such file"),
            "{e}"
        );
        let e = read_trusted(&f.join("below"), 5).unwrap_err();
        assert!(e.contains("is not a directory"), "{e}");
    }
}
