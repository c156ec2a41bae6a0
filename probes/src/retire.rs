//! Retiring idle peer counters (docs/kernels.md, "Retiring idle peers"), so
//! that a long-lived process's new clients keep their own counters however
//! many it has had. The kernel's keys carry a per-process peer epoch; this
//! module folds the epochs of one counter back into one, keeps the bytes of
//! the keys it retired, and picks which processes to retire when.

use std::collections::HashMap;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

use crate::skel::types;
use crate::wire::{PeerAddr, RawKey, TrafficKey, TrafficVal};

/// The epoch a drain uses once its socket's owner is no longer tracked:
/// never a process's, never retired (netio.h, enum netio_peer_epoch).
const EPOCH_AFTER: u16 = types::netio_peer_epoch::PEER_EPOCH_AFTER.0 as u16;

/// Retiring starts when the traffic map holds more than this share of its
/// capacity (1/FILL_SHARE): below it the map has room for a burst of new
/// peers and nothing is retired at all.
const FILL_SHARE: usize = 2;

/// The epoch after `e`: 0 to PEER_EPOCH_AFTER - 1, round.
pub(crate) fn next_epoch(e: u16) -> u16 {
    if e >= EPOCH_AFTER - 1 {
        0
    } else {
        e + 1
    }
}

/// Waits for every BPF program running now to finish: an update of a
/// one-entry map of maps, after which the kernel waits for an RCU grace
/// period before it returns (`maybe_wait_bpf_programs()`; in 6.12 and 6.18
/// only when the update succeeds, which this one always does). Tracing
/// programs run inside an RCU read-side section, so none that started
/// before the update is still running after it.
pub(crate) struct ProgramWait {
    outer: MapHandle,
    inner: MapHandle,
}

impl ProgramWait {
    pub fn new() -> Result<ProgramWait, libbpf_rs::Error> {
        let plain = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let inner = MapHandle::create(MapType::Array, Some("netio_wait_in"), 4, 4, 1, &plain)?;
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            inner_map_fd: inner.as_fd().as_raw_fd() as u32,
            ..plain
        };
        let outer = MapHandle::create(MapType::ArrayOfMaps, Some("netio_wait"), 4, 4, 1, &opts)?;
        Ok(ProgramWait { outer, inner })
    }

    pub fn wait(&self) -> Result<(), libbpf_rs::Error> {
        let fd = self.inner.as_fd().as_raw_fd() as u32;
        self.outer
            .update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
    }
}

/// One process whose peer epoch is to move on, and its keys of the last
/// read: once it has moved and programs have been waited for, those of
/// any other epoch are final.
pub(crate) struct Retiring {
    pub tgid: u32,
    pub gen: u32,
    pub keys: Vec<TrafficKey>,
}

/// What the agent's view of the counters needs between reads.
#[derive(Default)]
pub(crate) struct Peers {
    /// Each kernel key's value at the last read: unchanged means idle.
    last: HashMap<RawKey, TrafficVal>,
    /// Each counter's kernel keys (one per epoch) at the last read.
    keys: HashMap<RawKey, Vec<TrafficKey>>,
    /// The final bytes of retired keys, per counter: added to what its
    /// live keys hold, so that a counter only grows.
    retired: HashMap<RawKey, (TrafficKey, TrafficVal)>,
    /// Counters read for the last time: all their keys were retired.
    gone: Vec<TrafficKey>,
}

fn add(to: &mut TrafficVal, v: TrafficVal) {
    to.sent += v.sent;
    to.received += v.received;
}

impl Peers {
    /// The processes to retire after a read of every kernel key (`read`),
    /// decided before `fold` takes the read in: when the map holds more
    /// than its share, every tracked process with a peer key unchanged
    /// since the last read. Movers' keys, the `other` entry and keys of
    /// owners no longer tracked are never retired.
    pub fn plan(&self, read: &[(TrafficKey, TrafficVal)], capacity: u32) -> Vec<Retiring> {
        if read.len() * FILL_SHARE <= capacity as usize {
            return Vec::new();
        }
        let mut procs: HashMap<(u32, u32), (bool, Vec<TrafficKey>)> = HashMap::new();
        for (k, v) in read {
            if k.moved || k.peer == PeerAddr::Other || k.epoch == EPOCH_AFTER {
                continue;
            }
            let p = procs.entry((k.tgid, k.gen)).or_default();
            p.0 |= self.last.get(&k.raw) == Some(v);
            p.1.push(*k);
        }
        let mut out: Vec<Retiring> = procs
            .into_iter()
            .filter(|(_, (idle, _))| *idle)
            .map(|((tgid, gen), (_, keys))| Retiring { tgid, gen, keys })
            .collect();
        out.sort_by_key(|r| (r.tgid, r.gen));
        out
    }

    /// Folds a read of every kernel key into one row per counter (its
    /// keys of all epochs, and what its retired keys held), keys as
    /// `every_epoch`. A counter with no key left is read once more, then
    /// given to `take_gone`.
    pub fn fold(&mut self, read: &[(TrafficKey, TrafficVal)]) -> Vec<(TrafficKey, TrafficVal)> {
        let mut rows: HashMap<RawKey, (TrafficKey, TrafficVal)> =
            HashMap::with_capacity(read.len());
        self.last.clear();
        self.keys.clear();
        for (k, v) in read {
            self.last.insert(k.raw, *v);
            let one = k.every_epoch();
            // Room for one key: a counter almost always has one, and at
            // 20,000 counters a vector's default room for four was 4 MB.
            self.keys
                .entry(one.raw)
                .or_insert_with(|| Vec::with_capacity(1))
                .push(*k);
            add(
                &mut rows
                    .entry(one.raw)
                    .or_insert((one, TrafficVal::default()))
                    .1,
                *v,
            );
        }
        self.gone.clear();
        self.retired.retain(|raw, (k, v)| match rows.get_mut(raw) {
            Some(row) => {
                add(&mut row.1, *v);
                true
            }
            None => {
                rows.insert(*raw, (*k, *v));
                self.gone.push(*k);
                false
            }
        });
        rows.into_values().collect()
    }

    /// A kernel key retired with `last` its final bytes (deleted from the
    /// map by the caller).
    pub fn retired(&mut self, key: &TrafficKey, last: TrafficVal) {
        let one = key.every_epoch();
        self.last.remove(&key.raw);
        if let Some(keys) = self.keys.get_mut(&one.raw) {
            keys.retain(|k| k.raw != key.raw);
        }
        add(
            &mut self
                .retired
                .entry(one.raw)
                .or_insert((one, TrafficVal::default()))
                .1,
            last,
        );
    }

    /// Forgets a counter (its process is gone) and returns its kernel keys
    /// of the last read, for the caller to delete.
    pub fn forget(&mut self, key: &TrafficKey) -> Vec<TrafficKey> {
        let one = key.every_epoch();
        self.retired.remove(&one.raw);
        let keys = self.keys.remove(&one.raw).unwrap_or_default();
        for k in &keys {
            self.last.remove(&k.raw);
        }
        keys
    }

    /// Counters whose retired bytes the last read was the last to hold.
    pub fn take_gone(&mut self) -> Vec<TrafficKey> {
        std::mem::take(&mut self.gone)
    }

    /// Counters that have retired bytes still to be read.
    pub fn retired_keys(&self) -> impl Iterator<Item = TrafficKey> + '_ {
        self.retired.values().map(|(k, _)| *k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pod_bytes;

    fn key(tgid: u32, last: u8, epoch: u16) -> TrafficKey {
        let k = types::traffic_key {
            tgid,
            r#gen: 7,
            target: 1,
            family: types::netio_peer::PEER_INET.0 as u16,
            addr: [10, 0, 0, last, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            epoch,
            ..Default::default()
        };
        TrafficKey::from_raw(pod_bytes(&k)).unwrap()
    }

    fn v(sent: u64, received: u64) -> TrafficVal {
        TrafficVal { sent, received }
    }

    fn value_of(rows: &[(TrafficKey, TrafficVal)], k: &TrafficKey) -> Option<TrafficVal> {
        let one = k.every_epoch();
        rows.iter().find(|(r, _)| *r == one).map(|(_, v)| *v)
    }

    #[test]
    fn epochs_of_one_counter_read_as_one_that_only_grows() {
        let mut p = Peers::default();
        let old = key(10, 1, 0);
        let rows = p.fold(&[(old, v(100, 10))]);
        assert_eq!(value_of(&rows, &old), Some(v(100, 10)));
        assert_eq!(
            rows[0].0.epoch, 0,
            "keys leave the crate without their epoch"
        );

        // Retired with 5 more bytes sent after the read; the peer is back
        // under the next epoch.
        p.retired(&old, v(105, 10));
        let new = key(10, 1, 1);
        let rows = p.fold(&[(new, v(1, 2))]);
        assert_eq!(value_of(&rows, &new), Some(v(106, 12)));
        assert!(p.take_gone().is_empty(), "still counted under epoch 1");
        let rows = p.fold(&[(new, v(3, 2))]);
        assert_eq!(value_of(&rows, &new), Some(v(108, 12)));
    }

    #[test]
    fn a_counter_with_all_keys_retired_is_read_once_more_then_gone() {
        let mut p = Peers::default();
        let old = key(10, 1, 0);
        p.fold(&[(old, v(100, 10))]);
        p.retired(&old, v(120, 10));
        let rows = p.fold(&[]);
        assert_eq!(value_of(&rows, &old), Some(v(120, 10)), "its last bytes");
        assert_eq!(p.take_gone(), vec![old.every_epoch()]);
        assert!(p.fold(&[]).is_empty(), "nothing kept for it after");
        assert_eq!(p.retired_keys().count(), 0);
    }

    #[test]
    fn processes_are_retired_only_past_the_fill_share_and_with_an_idle_peer() {
        let mut p = Peers::default();
        let (a1, a2, b1) = (key(10, 1, 0), key(10, 2, 0), key(11, 1, 0));
        let first = [(a1, v(1, 0)), (a2, v(1, 0)), (b1, v(1, 0))];
        assert!(p.plan(&first, 4).is_empty(), "no last read: nothing idle");
        p.fold(&first);
        // a1 idle, a2 and b1 busy.
        let second = [(a1, v(1, 0)), (a2, v(2, 0)), (b1, v(2, 0))];
        assert!(p.plan(&second, 6).is_empty(), "half full: room enough");
        let plan = p.plan(&second, 5);
        assert_eq!(plan.len(), 1, "only the process with an idle peer");
        assert_eq!((plan[0].tgid, plan[0].gen), (10, 7));
        assert_eq!(
            plan[0].keys.len(),
            2,
            "all its keys: the busy one moves on too"
        );
    }

    #[test]
    fn forgetting_a_counter_hands_back_its_keys_of_every_epoch() {
        let mut p = Peers::default();
        let (e0, e1) = (key(10, 1, 0), key(10, 1, 1));
        p.fold(&[(e0, v(1, 0)), (e1, v(1, 0))]);
        let keys = p.forget(&e0.every_epoch());
        assert_eq!(keys.len(), 2);
        assert!(p.fold(&[]).is_empty());
    }

    #[test]
    fn epochs_go_round_short_of_the_one_no_process_has() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(EPOCH_AFTER - 1), 0);
        assert_ne!(next_epoch(EPOCH_AFTER - 2), EPOCH_AFTER);
    }
}
