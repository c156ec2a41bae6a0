//! BPF arrays created with BPF_F_MMAPABLE, mapped into netio's memory as
//! 64-bit words shared with the kernel: read and changed only through
//! atomics, so that a read of an entry costs no system call. Small ones are
//! mapped whole, large ones a window at a time.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// The words of a mapped array, unmapped when dropped.
pub(crate) struct MappedWords {
    words: *mut u64,
    len: usize,
    mapped: usize,
}

impl MappedWords {
    /// Maps the first `len` words of `map`, an mmapable array at least that
    /// large (as the kernel made it).
    pub fn of(map: &impl AsFd, len: usize) -> std::io::Result<MappedWords> {
        let page = page_size();
        let mapped = (len * size_of::<u64>()).div_ceil(page) * page;
        // SAFETY: a shared mapping of the map's fd, of the size the kernel
        // made it (BPF_F_MMAPABLE); unmapped in drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(MappedWords {
            words: ptr.cast(),
            len,
            mapped,
        })
    }

    /// Word `i`, or None past the end.
    pub fn word(&self, i: usize) -> Option<&AtomicU64> {
        // SAFETY: within the mapping, which lives as long as self; the
        // kernel changes each word atomically or in one aligned store.
        (i < self.len).then(|| unsafe { AtomicU64::from_ptr(self.words.add(i)) })
    }
}

impl Drop for MappedWords {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of`, used by nothing after this.
        unsafe { libc::munmap(self.words.cast(), self.mapped) };
    }
}

/// How much of a windowed array one mapping holds: 8,192 PIDs of `tracked`.
const WINDOW_BYTES: usize = 64 * 1024;
const WINDOW_WORDS: usize = WINDOW_BYTES / size_of::<u64>();

/// A large mmapable array mapped a window at a time, as its words are used.
/// The kernel maps every page of a mapping at mmap (remap_vmalloc_range),
/// and they count in netio's RSS: `tracked` whole is 32 MiB at a pid_max of
/// 4,194,304 (systemd's), for a few thousand PIDs in use. Windows no word
/// was asked of since the last `release_idle` are unmapped then, so that
/// months of PIDs going round the whole range leave only those in use.
pub(crate) struct MappedWindows {
    fd: OwnedFd,
    len: usize,
    page: usize,
    windows: Box<[AtomicPtr<u64>]>,
    used: Box<[AtomicBool]>,
}

impl MappedWindows {
    /// Windows over the first `len` words of `map`, an mmapable array at
    /// least that large; the first is mapped now, so that a kernel that
    /// refuses the mapping says so at load.
    pub fn of(map: &impl AsFd, len: usize) -> std::io::Result<MappedWindows> {
        let count = len.div_ceil(WINDOW_WORDS);
        let m = MappedWindows {
            fd: map.as_fd().try_clone_to_owned()?,
            len,
            page: page_size(),
            windows: (0..count).map(|_| AtomicPtr::default()).collect(),
            used: (0..count).map(|_| AtomicBool::default()).collect(),
        };
        if count > 0 {
            m.window(0)?;
        }
        Ok(m)
    }

    /// How many words there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Word `i`, its window mapped if it is not; None past the end or when
    /// the window cannot be mapped (then the map is read by system call).
    pub fn word(&self, i: usize) -> Option<&AtomicU64> {
        if i >= self.len {
            return None;
        }
        let w = i / WINDOW_WORDS;
        let base = self.window(w).ok()?;
        self.used[w].store(true, Ordering::Relaxed);
        // SAFETY: within window w, mapped until release_idle, which takes
        // &mut self and so outlives every word handed out; the kernel
        // changes each word atomically or in one aligned store.
        Some(unsafe { AtomicU64::from_ptr(base.add(i % WINDOW_WORDS)) })
    }

    /// Unmaps the windows no word was asked of since the last call.
    pub fn release_idle(&mut self) {
        for w in 0..self.windows.len() {
            if self.used[w].swap(false, Ordering::Relaxed) {
                continue;
            }
            let ptr = self.windows[w].swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !ptr.is_null() {
                // SAFETY: a mapping made in `window`, and &mut self means
                // no word of it is borrowed.
                unsafe { libc::munmap(ptr.cast(), self.window_bytes(w)) };
            }
        }
    }

    /// The mapped bytes of window w: the array's last may be shorter.
    fn window_bytes(&self, w: usize) -> usize {
        let end = (self.len * size_of::<u64>()).div_ceil(self.page) * self.page;
        (end - w * WINDOW_BYTES).min(WINDOW_BYTES)
    }

    /// Window w's first word, mapping it now if it is not mapped.
    fn window(&self, w: usize) -> std::io::Result<*mut u64> {
        let ptr = self.windows[w].load(Ordering::Acquire);
        if !ptr.is_null() {
            return Ok(ptr);
        }
        // SAFETY: a shared mapping of a window of the map's fd within the
        // size the kernel made it (BPF_F_MMAPABLE); unmapped in
        // release_idle or drop.
        let new = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.window_bytes(w),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd.as_raw_fd(),
                (w * WINDOW_BYTES) as libc::off_t,
            )
        };
        if new == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let new = new.cast::<u64>();
        match self.windows[w].compare_exchange(
            std::ptr::null_mut(),
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(new),
            Err(theirs) => {
                // Mapped meanwhile by another thread: keep one mapping.
                // SAFETY: the mapping just made, handed to no one.
                unsafe { libc::munmap(new.cast(), self.window_bytes(w)) };
                Ok(theirs)
            }
        }
    }

    /// How many windows are mapped now.
    #[cfg(test)]
    fn mapped_windows(&self) -> usize {
        self.windows
            .iter()
            .filter(|p| !p.load(Ordering::Relaxed).is_null())
            .count()
    }
}

impl Drop for MappedWindows {
    fn drop(&mut self) {
        for w in 0..self.windows.len() {
            let ptr = *self.windows[w].get_mut();
            if !ptr.is_null() {
                // SAFETY: a mapping made in `window`, used by nothing after
                // this.
                unsafe { libc::munmap(ptr.cast(), self.window_bytes(w)) };
            }
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use libbpf_rs::libbpf_sys::{bpf_map_create_opts, BPF_F_MMAPABLE};
    use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

    /// The file-backed pages of this process in memory, where mapped BPF
    /// arrays count: kB of RssFile.
    fn rss_file_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_pid_max_sized_array_is_in_memory_only_where_pids_are_used() {
        // As many PIDs as systemd's pid_max: 32 MiB, were it mapped whole.
        let len = 1usize << 22;
        let opts = bpf_map_create_opts {
            sz: size_of::<bpf_map_create_opts>() as _,
            map_flags: BPF_F_MMAPABLE,
            ..Default::default()
        };
        let map = MapHandle::create(
            MapType::Array,
            Some("netio_test_win"),
            4,
            8,
            len as u32,
            &opts,
        )
        .expect("creating a BPF array needs root");
        let before = rss_file_kb();
        let mut words = MappedWindows::of(&map, len).unwrap();
        let pids = [1usize, 300, 4_000_000, len - 1];
        for &pid in &pids {
            words.word(pid).unwrap().store(pid as u64, Ordering::SeqCst);
        }
        assert!(words.word(len).is_none());
        let grew = rss_file_kb().saturating_sub(before);
        assert!(grew < 1024, "RssFile grew {grew} kB for three windows");
        assert_eq!(words.mapped_windows(), 3);

        // The kernel's array holds what was stored through the windows.
        for &pid in &pids {
            let v = map
                .lookup(&(pid as u32).to_ne_bytes(), MapFlags::ANY)
                .unwrap()
                .unwrap();
            assert_eq!(u64::from_ne_bytes(v.try_into().unwrap()), pid as u64);
        }

        // Windows used since the last release stay; the others go, and
        // come back with the kernel's words when used again.
        words.release_idle();
        assert_eq!(words.mapped_windows(), 3);
        words.word(5).unwrap();
        words.release_idle();
        assert_eq!(words.mapped_windows(), 1);
        let back = words.word(4_000_000).unwrap().load(Ordering::SeqCst);
        assert_eq!(back, 4_000_000);
    }
}
