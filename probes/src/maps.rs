//! The agent's typed access to the loaded programs' maps: what the kernel
//! matches and tracks, the traffic counters, the loss counters and the
//! lifecycle events.

use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags};

use crate::batch;
use crate::error::{LoadError, MapError};
use crate::loader::Probes;
use crate::mapped::{MappedWindows, MappedWords};
use crate::retire;
use crate::skel::{types, NetioSkel};
use crate::wire::{pod_bytes, read_pod, LifecycleEvent, Stats, TargetId, TrafficKey, TrafficVal};
use crate::COMM_MAX;

const TRACK_SLOTS: u32 = types::netio_slot::TRACK_SLOTS.0;
const SLOT_ONE: u64 = types::netio_slot::SLOT_ONE.0 as u64;
const SLOT_EPOCH_STEP: u64 =
    (types::netio_slot::SLOT_EPOCH_UNIT.0 as u64) << types::netio_slot::SLOT_EPOCH_SHIFT.0;

/// How many EAGAIN reads a drain takes before it gives up: a million
/// sockets each (docs/kernels.md, "the socket path").
const MAX_AGAIN: u32 = 1000;

/// An entry of `tracked` that no process has (netio.h, enum netio_gen).
const GEN_NONE: u32 = types::netio_gen::GEN_NONE.0;
/// What userspace leaves in an entry it untracks: never emptied here, so
/// that the kernel's exit hook is the only one to empty an entry and a
/// slot's count stays right (docs/kernels.md, "The tracked map").
const GONE: u64 = types::netio_gen::GONE_TARGET.0 as u64;

/// The most PIDs Linux can have (PID_MAX_LIMIT): the tracked array's size
/// when /proc/sys/kernel/pid_max cannot be read.
pub const PID_MAX_LIMIT: u32 = 1 << 22;

/// The host's pid_max now: what the tracked array holds, one entry a PID.
pub fn pid_max() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&n| n > 0)
        .map_or(PID_MAX_LIMIT, |n| n.min(PID_MAX_LIMIT))
}

/// The globals the kernel programs and userspace both write: the tracking
/// slots in front of `tracked` and the drain counts. They live in the
/// object's memory-mapped .bss, shared with the kernel, so they are only
/// touched through atomics. And `tracked` itself, mapped a window at a time
/// (only the PIDs in use count in netio's memory), each entry an 8-byte word
/// changed by userspace only through compare-and-exchange.
pub(crate) struct Shared {
    bss: *mut types::bss,
    /// The .bss mapped here from its map, not libbpf's mapping: libbpf
    /// maps a pinned .bss it reuses only as a private copy.
    _bss_map: MappedWords,
    tracked: MappedWindows,
}

impl Shared {
    pub fn of(skel: &mut NetioSkel<'static>) -> Result<Shared, LoadError> {
        skel.maps.bss_data.as_deref_mut().ok_or(LoadError::NoBss)?;
        let words = size_of::<types::bss>().div_ceil(size_of::<u64>());
        let bss_map = MappedWords::of(&skel.maps.bss, words).map_err(LoadError::MapBss)?;
        let bss = bss_map.word(0).ok_or(LoadError::NoBss)?.as_ptr() as *mut types::bss;
        let map = &skel.maps.tracked;
        let entries = map.max_entries();
        let tracked = MappedWindows::of(map, entries as usize).map_err(LoadError::MapTracked)?;
        Ok(Shared {
            bss,
            _bss_map: bss_map,
            tracked,
        })
    }

    fn slot(&self, tgid: u32) -> &AtomicU64 {
        let i = (tgid % TRACK_SLOTS) as usize;
        // SAFETY: the mapping lives as long as the skeleton, which Probes
        // holds beside this; the kernel writes the slot only atomically too.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.bss).track_slots[i])) }
    }

    /// The tracked entry of `tgid`, or None past the array's end.
    fn entry(&self, tgid: u32) -> Option<&AtomicU64> {
        self.tracked.word(tgid as usize)
    }

    /// (done, begun), read in that order.
    fn drains(&self) -> (u64, u64) {
        // SAFETY: as slot.
        unsafe {
            let done = AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.bss).drains_done));
            let begun = AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.bss).drains_begun));
            let d = done.load(Ordering::SeqCst);
            (d, begun.load(Ordering::SeqCst))
        }
    }
}

/// The target id's bits of an entry's target word; the peer epoch is above
/// them (netio.h, enum netio_peer_epoch).
const TARGET_MASK: u32 = types::netio_peer_epoch::TRACKED_TARGET_MASK.0;
const EPOCH_SHIFT: u32 = types::netio_peer_epoch::PEER_EPOCH_SHIFT.0;

/// An entry's word: struct tracked as the kernel stores it.
fn word(target: u32, gen: u32) -> u64 {
    let t = types::tracked { target, r#gen };
    u64::from_ne_bytes(pod_bytes(&t).try_into().expect("struct tracked is 8 bytes"))
}

/// (target, generation) of an entry's word.
fn unword(w: u64) -> (u32, u32) {
    let t: types::tracked = read_pod(&w.to_ne_bytes()).expect("struct tracked is 8 bytes");
    (t.target, t.r#gen)
}

impl Probes {
    /// Sets the names the kernel matches at exec. Names are cut to the 15
    /// bytes the kernel keeps of `comm`.
    pub fn set_names(&self, names: &[(String, TargetId)]) -> Result<(), MapError> {
        let map = &self.skel.maps.names;
        let old: Vec<Vec<u8>> = map.keys().collect();
        let mut wanted = Vec::new();
        for (name, target) in names {
            let mut key = types::comm_key::default();
            for (dst, src) in key
                .comm
                .iter_mut()
                .zip(name.as_bytes().iter().take(COMM_MAX))
            {
                *dst = *src as _;
            }
            let k = pod_bytes(&key).to_vec();
            map.update(&k, &target.to_map().to_ne_bytes(), MapFlags::ANY)
                .map_err(|error| MapError::Name {
                    name: name.clone(),
                    error,
                })?;
            wanted.push(k);
        }
        for k in old.into_iter().filter(|k| !wanted.contains(k)) {
            let _ = map.delete(&k);
        }
        Ok(())
    }

    /// Sets the cgroups (by id) whose processes the kernel tracks at exec,
    /// in order, those no longer wanted dropped first. Returns those that
    /// could not be set (the map is full): the rest are set all the same.
    pub fn set_cgroups(&self, cgroups: &[(u64, TargetId)]) -> Vec<(u64, TargetId)> {
        let map = &self.skel.maps.cgroups;
        let wanted: std::collections::HashSet<Vec<u8>> = cgroups
            .iter()
            .map(|(id, _)| id.to_ne_bytes().to_vec())
            .collect();
        let old: Vec<Vec<u8>> = map.keys().collect();
        for k in old.into_iter().filter(|k| !wanted.contains(k)) {
            let _ = map.delete(&k);
        }
        cgroups
            .iter()
            .filter(|(id, target)| {
                map.update(
                    &id.to_ne_bytes(),
                    &target.to_map().to_ne_bytes(),
                    MapFlags::ANY,
                )
                .is_err()
            })
            .copied()
            .collect()
    }

    /// Sets the uids the kernel allows each target with a `user`
    /// constraint at exec (`None`: any). A newly constrained target's
    /// marker goes in first and stale uids go last, so no exec sees a
    /// target less constrained than both the old and the new list.
    pub fn set_uids(&self, uids: &[(TargetId, Option<&[u32]>)]) -> Result<(), MapError> {
        let map = &self.skel.maps.target_uids;
        let key = |target: TargetId, uid: u32| {
            pod_bytes(&types::uid_key {
                target: target.to_map(),
                uid,
            })
            .to_vec()
        };
        let marker = types::netio_uid::UID_CONSTRAINED.0;
        let old: Vec<Vec<u8>> = map.keys().collect();
        let mut wanted = Vec::new();
        for (target, list) in uids {
            if let Some(list) = list {
                wanted.push(key(*target, marker));
                wanted.extend(list.iter().map(|&u| key(*target, u)));
            }
        }
        for k in &wanted {
            map.update(k, &[1], MapFlags::ANY)
                .map_err(|error| MapError::Uids { error })?;
        }
        for k in old.into_iter().filter(|k| !wanted.contains(k)) {
            let _ = map.delete(&k);
        }
        Ok(())
    }

    /// Tracks a process found by userspace and creates its fallback entry;
    /// false, changing nothing, when the PID is tracked already (the kernel
    /// tracked it meanwhile, at fork or exec: its entry stands). Its slot's
    /// count goes up before an empty entry is filled and the slot's epoch
    /// moves on, as in the kernel's track_insert().
    pub fn track(&self, tgid: u32, gen: u32, target: TargetId) -> Result<bool, MapError> {
        let e = self.shared.entry(tgid).ok_or(MapError::PidBeyond {
            tgid,
            entries: self.shared.tracked.len() as u32,
        })?;
        let new = word(target.to_map(), r#gen);
        let slot = self.shared.slot(tgid);
        loop {
            let old = e.load(Ordering::SeqCst);
            if unword(old).1 != GEN_NONE {
                return Ok(false);
            }
            if old == 0 {
                slot.fetch_add(SLOT_ONE, Ordering::SeqCst);
            }
            let done = e
                .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if old == 0 && !done {
                // Filled meanwhile, by the kernel, which counted it.
                slot.fetch_sub(SLOT_ONE, Ordering::SeqCst);
            }
            if done {
                slot.fetch_add(SLOT_EPOCH_STEP, Ordering::SeqCst);
                break;
            }
        }
        let key = types::traffic_key {
            tgid,
            r#gen,
            target: target.to_key(),
            ..Default::default()
        };
        let zeros = vec![
            vec![0u8; size_of::<types::traffic_val>()];
            libbpf_rs::num_possible_cpus().unwrap_or(1)
        ];
        let _ = self
            .skel
            .maps
            .traffic
            .update_percpu(pod_bytes(&key), &zeros, MapFlags::NO_EXIST);
        Ok(true)
    }

    /// Replaces the entry of the process tracked as (tgid, gen) with
    /// `new`, in one compare-and-exchange: nothing if the PID is tracked
    /// otherwise now (its process exited, another took the PID). Neither
    /// entry is empty, so the slot's count stays; its epoch moves on, so
    /// sockets the process owns are checked again.
    fn swap_entry(&self, tgid: u32, gen: u32, new: impl Fn(u32) -> u64) -> bool {
        let Some(e) = self.shared.entry(tgid) else {
            return false;
        };
        let old = e.load(Ordering::SeqCst);
        let (target, now) = unword(old);
        if now != r#gen || r#gen == GEN_NONE {
            return false;
        }
        let new = new(target);
        let done = e
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if done {
            self.shared
                .slot(tgid)
                .fetch_add(SLOT_EPOCH_STEP, Ordering::SeqCst);
        }
        done
    }

    /// Moves the process tracked as (tgid, gen) to `target`, keeping its
    /// generation; nothing if the PID is tracked otherwise now.
    /// Its peer epoch stays: only retiring moves it (retire.rs).
    pub fn retarget(&self, tgid: u32, gen: u32, target: TargetId) -> bool {
        self.swap_entry(tgid, r#gen, |old| {
            word(target.to_map() | (old & !TARGET_MASK), r#gen)
        })
    }

    /// Untracks the process tracked as (tgid, gen), and nothing else: a
    /// process the kernel tracks at that PID now under another generation
    /// stays tracked. The entry is left GONE, which the kernel empties when
    /// the PID's process exits.
    pub fn untrack_gen(&self, tgid: u32, gen: u32) -> bool {
        self.swap_entry(tgid, r#gen, |_| GONE)
    }

    /// Moves the peer epoch of the process tracked as (tgid, gen) on, in
    /// one compare-and-exchange, and returns the new one; None if the PID
    /// is tracked otherwise now. The slot's epoch stays: a socket's owner
    /// is the same process, and its drains read the peer epoch themselves.
    fn next_peer_epoch(&self, tgid: u32, gen: u32) -> Option<u16> {
        let e = self.shared.entry(tgid)?;
        let old = e.load(Ordering::SeqCst);
        let (target, now) = unword(old);
        if now != r#gen || r#gen == GEN_NONE {
            return None;
        }
        let epoch = retire::next_epoch((target >> EPOCH_SHIFT) as u16);
        let new = word(
            (target & TARGET_MASK) | (u32::from(epoch) << EPOCH_SHIFT),
            r#gen,
        );
        e.compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| epoch)
    }

    /// The target and generation the kernel holds for a tracked process, if any.
    pub fn tracked(&self, tgid: u32) -> Option<(TargetId, u32)> {
        let w = match self.shared.entry(tgid) {
            Some(e) => e.load(Ordering::SeqCst),
            // Its window could not be mapped (no memory for it now): one
            // system call tells the same.
            None if tgid < self.pid_capacity() => self
                .skel
                .maps
                .tracked
                .lookup(&tgid.to_ne_bytes(), MapFlags::ANY)
                .ok()??
                .try_into()
                .map(u64::from_ne_bytes)
                .ok()?,
            None => return None,
        };
        let (target, r#gen) = unword(w);
        if r#gen == GEN_NONE {
            return None;
        }
        Some((TargetId::from_map(target & TARGET_MASK)?, r#gen))
    }

    /// How many PIDs the tracked array holds: the host's pid_max at load.
    pub fn pid_capacity(&self) -> u32 {
        self.shared.tracked.len() as u32
    }

    /// Unmaps the windows of the tracked array no PID was looked up in
    /// since the last call: once an interval, so that netio's memory holds
    /// the PIDs in use, not all it has seen.
    pub fn release_idle_windows(&mut self) {
        self.shared.tracked.release_idle();
    }

    /// Moves every socket's pending bytes into the traffic counters and waits
    /// for destroy-time drains under way to finish, so that a read of the
    /// counters right after holds every byte counted before this call.
    pub fn drain_sockets(&self) -> Result<(), MapError> {
        let Some(link) = &self.drain_iter else {
            return Ok(());
        };
        let iter = libbpf_rs::Iter::new(link).map_err(MapError::DrainOpen)?;
        read_iter_to_end(iter).map_err(MapError::DrainRead)?;
        // A drain at destroy runs with bottom halves off and takes well under
        // a microsecond; equal counts (done read first) mean none was under
        // way when `done` was read.
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        loop {
            let (done, begun) = self.shared.drains();
            if done == begun || std::time::Instant::now() > deadline {
                return Ok(());
            }
            std::thread::yield_now();
        }
    }

    /// Every counter, summed over CPUs, each once whatever epochs its
    /// bytes were counted in (retire.rs). Counters only grow while their
    /// key exists; the caller diffs successive reads. Then, when the map
    /// is past its fill share, retires the idle peers' keys, whose bytes
    /// the next read holds.
    pub fn read_traffic(&self) -> Vec<(TrafficKey, TrafficVal)> {
        let read = self.read_kernel_keys();
        let capacity = self.skel.maps.traffic.max_entries();
        let mut peers = self.peers.borrow_mut();
        let plan = match self.program_wait {
            Some(_) => peers.plan(&read, capacity),
            None => Vec::new(),
        };
        let rows = peers.fold(&read);
        drop(peers);
        self.retire(plan);
        rows
    }

    /// Every kernel key and its value summed over CPUs: in batches, or
    /// key by key where the kernel has no batches for the map.
    fn read_kernel_keys(&self) -> Vec<(TrafficKey, TrafficVal)> {
        let map = &self.skel.maps.traffic;
        let stride = (map.value_size() as usize).next_multiple_of(8);
        let mut out = Vec::new();
        let batched = batch::read_percpu(map, |k, values| {
            if let Some(key) = TrafficKey::from_raw(k) {
                out.push((key, sum_per_cpu(values.chunks_exact(stride))));
            }
        });
        if batched.is_ok() {
            return out;
        }
        out.clear();
        for k in map.keys() {
            let Some(key) = TrafficKey::from_raw(&k) else {
                continue;
            };
            if let Some(total) = self.kernel_value(&key) {
                out.push((key, total));
            }
        }
        out
    }

    fn kernel_value(&self, key: &TrafficKey) -> Option<TrafficVal> {
        let per_cpu = self
            .skel
            .maps
            .traffic
            .lookup_percpu(&key.raw, MapFlags::ANY)
            .ok()??;
        Some(sum_per_cpu(per_cpu.iter().map(Vec::as_slice)))
    }

    /// Moves each planned process's peer epoch on, waits for every program
    /// that may have read the old one, then reads the keys of other epochs
    /// for the last time and deletes them: nothing adds to them any more
    /// (docs/kernels.md, "Retiring idle peers").
    fn retire(&self, plan: Vec<retire::Retiring>) {
        let Some(wait) = &self.program_wait else {
            return;
        };
        let moved: Vec<(Vec<TrafficKey>, u16)> = plan
            .into_iter()
            .filter_map(|r| Some((r.keys, self.next_peer_epoch(r.tgid, r.r#gen)?)))
            .collect();
        if moved.is_empty() || wait.wait().is_err() {
            // Not waited for: every key stays, read as before.
            return;
        }
        let mut peers = self.peers.borrow_mut();
        for (keys, epoch) in moved {
            for k in keys.iter().filter(|k| k.epoch != epoch) {
                if let Some(last) = self.kernel_value(k) {
                    let _ = self.skel.maps.traffic.delete(&k.raw);
                    peers.retired(k, last);
                }
            }
        }
    }

    /// The keys of every counter, without their values.
    pub fn traffic_keys(&self) -> Vec<TrafficKey> {
        let map = &self.skel.maps.traffic;
        let mut keys = Vec::new();
        let batched = batch::read_percpu(map, |k, _| {
            keys.extend(TrafficKey::from_raw(k).map(|k| k.every_epoch()));
        });
        if batched.is_err() {
            keys.clear();
            keys.extend(
                map.keys()
                    .filter_map(|k| TrafficKey::from_raw(&k))
                    .map(|k| k.every_epoch()),
            );
        }
        keys.extend(self.peers.borrow().retired_keys());
        keys
    }

    /// Counters the last read holds for the last time: every key of theirs
    /// was retired and their peer has not come back. The caller forgets
    /// them once it has taken that read in.
    pub fn take_retired(&self) -> Vec<TrafficKey> {
        self.peers.borrow_mut().take_gone()
    }

    /// Drops a counter whose process is gone (nothing can add to it): its
    /// keys of every epoch.
    pub fn delete_traffic(&self, key: &TrafficKey) {
        let map = &self.skel.maps.traffic;
        for k in self.peers.borrow_mut().forget(key) {
            let _ = map.delete(&k.raw);
        }
        let _ = map.delete(&key.raw);
    }

    pub fn stats(&self) -> Stats {
        let map = &self.skel.maps.stats;
        Stats::from_sums(
            |stat| match map.lookup_percpu(&stat.0.to_ne_bytes(), MapFlags::ANY) {
                Ok(Some(per_cpu)) => per_cpu.iter().filter_map(|v| read_pod::<u64>(v)).sum(),
                _ => 0,
            },
        )
    }

    /// Waits up to `timeout` for lifecycle events and returns all pending.
    pub fn poll_events(&self, timeout: Duration) -> Vec<LifecycleEvent> {
        if self.queue.borrow().is_empty() {
            let _ = self.ring.poll(timeout);
        }
        let _ = self.ring.consume();
        self.queue.borrow_mut().drain(..).collect()
    }

    /// The ring buffer's fd, for callers that multiplex it with signals.
    pub fn events_fd(&self) -> i32 {
        self.ring.epoll_fd()
    }
}

/// Runs a BPF iterator to its end. The drain iterator writes nothing, so
/// the kernel ends a read after a million sockets with EAGAIN and the next
/// read goes on from there (docs/kernels.md); endless EAGAIN would be a
/// kernel fault, given up after MAX_AGAIN.
fn read_iter_to_end(mut iter: impl std::io::Read) -> std::io::Result<()> {
    let mut buf = [0u8; 256];
    let mut again = 0;
    loop {
        match iter.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && again < MAX_AGAIN => {
                again += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A counter's value: its per-CPU values added up.
fn sum_per_cpu<'a>(per_cpu: impl Iterator<Item = &'a [u8]>) -> TrafficVal {
    let mut total = TrafficVal::default();
    for v in per_cpu.filter_map(read_pod::<types::traffic_val>) {
        total.sent += v.sent;
        total.received += v.received;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::{
        read_iter_to_end, unword, word, GEN_NONE, GONE, MAX_AGAIN, SLOT_EPOCH_STEP, SLOT_ONE,
        TRACK_SLOTS,
    };
    use std::io::{self, ErrorKind, Read};

    /// Plays back a list of read results, as the kernel's iterator would.
    struct Script(Vec<io::Result<usize>>);

    impl Read for Script {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                panic!("read past the end of the iterator");
            }
            self.0.remove(0)
        }
    }

    fn again() -> io::Result<usize> {
        Err(io::Error::from(ErrorKind::WouldBlock))
    }

    #[test]
    fn a_drain_past_a_million_sockets_reads_on_after_eagain() {
        // Three stretches of a million sockets each end in EAGAIN; the
        // fourth reaches the end.
        let script = Script(vec![again(), again(), again(), Ok(0)]);
        read_iter_to_end(script).expect("EAGAIN is not the end of a drain");
    }

    #[test]
    fn a_drain_reads_through_output_and_interrupted_reads() {
        let script = Script(vec![
            Ok(3),
            Err(io::Error::from(ErrorKind::Interrupted)),
            Ok(0),
        ]);
        read_iter_to_end(script).expect("a signal is not the end of a drain");
    }

    #[test]
    fn a_drain_reports_other_errors_and_endless_eagain() {
        let script = Script(vec![Err(io::Error::from(ErrorKind::PermissionDenied))]);
        let e = read_iter_to_end(script).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);

        let script = Script((0..=MAX_AGAIN).map(|_| again()).collect());
        let e = read_iter_to_end(script).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
    }

    #[test]
    fn the_track_slots_are_indexed_and_counted_as_the_kernel_does() {
        // The kernel masks where userspace takes the remainder.
        assert!(TRACK_SLOTS.is_power_of_two());
        // The epoch's steps leave the count's 32 bits alone.
        assert_eq!(SLOT_EPOCH_STEP & u64::from(u32::MAX), 0);
        assert!(SLOT_ONE <= u64::from(u32::MAX));
    }

    #[test]
    fn a_tracked_entry_is_one_word_and_gone_is_no_process() {
        assert_eq!(unword(word(7, 0x8000_0001)), (7, 0x8000_0001));
        // What userspace leaves is no process's, and not empty: only the
        // kernel's exit hook empties an entry.
        assert_eq!(unword(GONE).1, GEN_NONE);
        assert_ne!(GONE, 0);
        assert_eq!(unword(0).1, GEN_NONE);
    }
}
