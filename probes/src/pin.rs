//! The programs, links and maps pinned in bpffs, so that they keep counting
//! while no netio runs and the next one adopts them (docs/kernels.md,
//! "Pinned state"): where they are, whether a pinned set is one this build
//! can adopt, pinning a set, and removing it.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

use crate::backend::Backend;

/// Where netio pins its state unless the testing knob says otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/netio";

/// What identifies the BPF object this netio was built with: a pinned set
/// made from another object is not adopted (build.rs).
pub const OBJECT_HASH: &str = env!("NETIO_OBJECT_HASH");

/// bpffs's magic number (statfs f_type).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The meta map's one value: who pinned the set, with what.
const META_SIZE: u32 = 128;
const META_MAGIC: u64 = 0x6e65_7469_6f70_696e; // "netiopin"

/// What a pinned set says of itself (the `meta` map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// OBJECT_HASH of the netio that pinned it.
    pub object: String,
    pub backend: Backend,
    pub socket_path: bool,
    /// The version of the netio that pinned it.
    pub version: String,
    /// Unique to this pinned set: a state file written for another set
    /// (pins removed and made again) is not taken for this one's.
    pub id: u64,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut v = vec![0u8; META_SIZE as usize];
        v[0..8].copy_from_slice(&META_MAGIC.to_ne_bytes());
        let object = u64::from_str_radix(&self.object, 16).unwrap_or(0);
        v[8..16].copy_from_slice(&object.to_ne_bytes());
        v[16..24].copy_from_slice(&self.id.to_ne_bytes());
        v[24] = Backend::PREFERENCE
            .iter()
            .position(|&b| b == self.backend)
            .unwrap_or(0) as u8;
        v[25] = u8::from(self.socket_path);
        let ver = self.version.as_bytes();
        let n = ver.len().min(META_SIZE as usize - 33);
        v[32..32 + n].copy_from_slice(&ver[..n]);
        v
    }

    fn decode(v: &[u8]) -> Option<Meta> {
        if v.len() < META_SIZE as usize || v[0..8] != META_MAGIC.to_ne_bytes() {
            return None;
        }
        let word = |i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().unwrap());
        let ver = &v[32..];
        let end = ver.iter().position(|&b| b == 0).unwrap_or(ver.len());
        Some(Meta {
            object: format!("{:016x}", word(8)),
            id: word(16),
            backend: *Backend::PREFERENCE.get(v[24] as usize)?,
            socket_path: v[25] != 0,
            version: String::from_utf8_lossy(&ver[..end]).into_owned(),
        })
    }
}

/// A pin directory and the paths inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinDir(pub PathBuf);

impl PinDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    fn meta(&self) -> PathBuf {
        self.0.join("meta")
    }

    pub(crate) fn map(&self, name: &str) -> PathBuf {
        self.0.join("maps").join(name.replace('.', "_"))
    }

    pub(crate) fn link(&self, n: usize, prog: &str) -> PathBuf {
        self.0.join("links").join(format!("{n:02}-{prog}"))
    }

    /// How many links are pinned: the programs that count while no netio runs.
    pub fn links(&self) -> usize {
        fs::read_dir(self.0.join("links")).map_or(0, |d| d.count())
    }

    /// Why netio cannot pin here, if it cannot: bpffs absent or not writable.
    pub fn unusable(&self) -> Option<String> {
        let parent = self.0.parent().unwrap_or(Path::new("/"));
        let Ok(c) = std::ffi::CString::new(parent.as_os_str().as_encoded_bytes()) else {
            return Some(format!("{} is not a path", parent.display()));
        };
        // SAFETY: statfs fills the struct it is given, of its own type.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            let e = io::Error::last_os_error();
            return Some(format!("no bpffs at {}: {e}", parent.display()));
        }
        if st.f_type as i64 != BPF_FS_MAGIC {
            return Some(format!("{} is not a bpffs mount", parent.display()));
        }
        // SAFETY: access only reads the path.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            let e = io::Error::last_os_error();
            return Some(format!("cannot write {}: {e}", parent.display()));
        }
        None
    }

    /// The pinned set's meta, if there is a complete set here.
    pub fn read_meta(&self) -> Option<Meta> {
        let map = MapHandle::from_pinned_path(self.meta()).ok()?;
        let v = map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok()??;
        Meta::decode(&v)
    }

    /// Makes the directory tree a set is pinned in (root only).
    pub(crate) fn create(&self) -> io::Result<()> {
        let mut b = fs::DirBuilder::new();
        b.mode(0o700).recursive(true);
        b.create(self.0.join("maps"))?;
        b.create(self.0.join("links"))
    }

    /// Pins the meta last: a directory without it is a set left half made.
    pub(crate) fn write_meta(&self, meta: &Meta) -> Result<(), libbpf_rs::Error> {
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let mut map =
            MapHandle::create(MapType::Array, Some("netio_meta"), 4, META_SIZE, 1, &opts)?;
        map.update(&0u32.to_ne_bytes(), &meta.encode(), MapFlags::ANY)?;
        map.pin(self.meta())
    }

    /// Unpins everything: programs whose links were only held by their pins
    /// stop, and their maps go when nothing holds them.
    /// The directory itself goes too where it can: the service's sandbox
    /// makes it a mount point, which stays.
    pub fn remove(&self) -> io::Result<bool> {
        let entries = match fs::read_dir(&self.0) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut any = false;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
            any = true;
        }
        let _ = fs::remove_dir(&self.0);
        Ok(any)
    }
}

/// What became of pinning at load, for the `started` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinning {
    /// Not pinned: why (bpffs absent, not writable, turned off).
    Off(String),
    /// Pinned anew; `replaced` says which pinned set was there and why it
    /// was not adopted.
    Fresh {
        meta: Meta,
        replaced: Option<String>,
    },
    /// The pinned set found was adopted: its programs counted throughout.
    Adopted(Meta),
}

impl Pinning {
    pub fn meta(&self) -> Option<&Meta> {
        match self {
            Pinning::Off(_) => None,
            Pinning::Fresh { meta, .. } | Pinning::Adopted(meta) => Some(meta),
        }
    }
}

/// A new set's id: unique enough to tell two sets of one machine apart.
pub(crate) fn new_id() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_decodes_as_encoded() {
        let m = Meta {
            object: "0123456789abcdef".into(),
            backend: Backend::Kprobe,
            socket_path: true,
            version: "1.2.3".into(),
            id: 42,
        };
        assert_eq!(Meta::decode(&m.encode()), Some(m));
        assert_eq!(Meta::decode(&[0u8; META_SIZE as usize]), None);
    }
}
