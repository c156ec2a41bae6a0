//! A per-CPU hash map read whole in batches (BPF_MAP_LOOKUP_BATCH): a few
//! system calls for the whole map, where a key-by-key walk takes two a key
//! (the next key, its value). At 10,000 processes the walk was a third of
//! netio's CPU (docs/benchmarks.md, "Scale"). libbpf-rs refuses batches of
//! per-CPU maps, so this calls libbpf itself.

use std::io;
use std::os::fd::AsRawFd;

use libbpf_rs::{libbpf_sys, MapCore};

/// Entries asked for a batch at least: a batch must hold a whole hash
/// bucket (else ENOSPC, and the batch is asked again twice as large).
const MIN_BATCH: usize = 256;

/// The bytes of values one batch's buffer may take; with many CPUs a batch
/// holds fewer entries.
const VALUES_BUDGET: usize = 256 << 10;

/// Calls `each` with every key of `map` and its per-CPU values, laid out as
/// the kernel lays them out: one `value_size` rounded up to 8 bytes per
/// possible CPU. Err when the kernel has no batch operations for the map
/// (before 5.6) or a batch failed: the caller forgets what it was given
/// and walks the map key by key.
pub fn read_percpu(map: &impl MapCore, mut each: impl FnMut(&[u8], &[u8])) -> io::Result<()> {
    let cpus = libbpf_rs::num_possible_cpus().map_err(|e| io::Error::other(e.to_string()))?;
    let key_size = map.key_size() as usize;
    let stride = (map.value_size() as usize).next_multiple_of(8) * cpus;
    let mut count = (VALUES_BUDGET / stride.max(1)).max(MIN_BATCH);
    let fd = map.as_fd().as_raw_fd();
    // The kernel's place in the map between batches: a bucket index for a
    // hash map, as wide as the key at most.
    let mut token = vec![0u8; key_size.max(8)];
    let mut next = vec![0u8; key_size.max(8)];
    let mut first = true;
    let mut keys = Vec::new();
    let mut values = Vec::new();
    loop {
        keys.resize(count * key_size, 0);
        values.resize(count * stride, 0);
        let mut got = count as u32;
        let opts = libbpf_sys::bpf_map_batch_opts {
            sz: size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
            ..Default::default()
        };
        // SAFETY: every buffer is as large as the kernel writes for `got`
        // entries of this map's key and per-CPU value sizes, and the tokens
        // as large as a key; all outlive the call.
        let ret = unsafe {
            libbpf_sys::bpf_map_lookup_batch(
                fd,
                if first {
                    std::ptr::null_mut()
                } else {
                    token.as_mut_ptr().cast()
                },
                next.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut got,
                &opts,
            )
        };
        let err = (ret < 0).then(|| -ret);
        if err == Some(libc::ENOSPC) && got == 0 {
            // A bucket larger than the batch: ask again, larger.
            count *= 2;
            continue;
        }
        if let Some(e) = err.filter(|&e| e != libc::ENOENT) {
            return Err(io::Error::from_raw_os_error(e));
        }
        let got = (got as usize).min(count);
        for (k, v) in keys
            .chunks_exact(key_size)
            .zip(values.chunks_exact(stride))
            .take(got)
        {
            each(k, v);
        }
        if err == Some(libc::ENOENT) {
            // The end of the map.
            return Ok(());
        }
        std::mem::swap(&mut token, &mut next);
        first = false;
    }
}
