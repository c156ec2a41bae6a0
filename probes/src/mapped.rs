//! A BPF array created with BPF_F_MMAPABLE, mapped into netio's memory as
//! 64-bit words shared with the kernel: read and changed only through
//! atomics, so that a read of every entry costs no system call.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::AtomicU64;

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
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
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

    /// How many words are mapped.
    pub fn len(&self) -> usize {
        self.len
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
