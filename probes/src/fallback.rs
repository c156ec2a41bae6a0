//! The targets' fallback counters (netio.h, struct target_fallback): the
//! bytes the full traffic map had no entry for, neither their own nor their
//! process's `other` one, counted per target in an array that cannot fill.
//! Mapped into memory and read with atomic loads, so a read costs no system
//! call however many targets there are.

use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::LoadError;
use crate::loader::Probes;
use crate::mapped::MappedWords;
use crate::skel::{types, NetioSkel};
use crate::wire::TargetId;

/// The words of one entry, in struct target_fallback's order.
const SENT: usize = 0;
const RECEIVED: usize = 1;
const EVENTS: usize = 2;
const PEERS_SEEN: usize = 3;
const WORDS: usize = size_of::<types::target_fallback>() / size_of::<u64>();

/// One target's fallback counters as read now. `sent`, `received` and
/// `events` only grow; `peers_folded` is since the last read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fallback {
    pub sent: u64,
    pub received: u64,
    /// Events counted here: each lost which process and peer it was.
    pub events: u64,
    /// At least this many distinct peers had bytes go to `other` or here
    /// since the last read: the bits of a 64-bit hash set, which two peers
    /// may share (a lower bound, at most 64).
    pub peers_folded: u64,
}

/// The `target_fallback` array, mapped.
pub(crate) struct FallbackMap {
    words: MappedWords,
}

impl FallbackMap {
    pub fn of(skel: &NetioSkel<'static>) -> Result<FallbackMap, LoadError> {
        use libbpf_rs::MapCore;
        let map = &skel.maps.target_fallback;
        let entries = map.max_entries();
        let words =
            MappedWords::of(map, entries as usize * WORDS).map_err(LoadError::MapFallback)?;
        Ok(FallbackMap { words })
    }

    fn word(&self, target: TargetId, i: usize) -> Option<&AtomicU64> {
        self.words.word(target.index() * WORDS + i)
    }
}

impl Probes {
    /// The fallback counters of `target` now, taking its folded peers.
    pub fn take_fallback(&self, target: TargetId) -> Fallback {
        let f = &self.fallback;
        let load = |i| f.word(target, i).map_or(0, |w| w.load(Ordering::SeqCst));
        Fallback {
            sent: load(SENT),
            received: load(RECEIVED),
            events: load(EVENTS),
            peers_folded: f
                .word(target, PEERS_SEEN)
                .map_or(0, |w| u64::from(w.swap(0, Ordering::SeqCst).count_ones())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_four_words_in_the_kernel_s_order() {
        assert_eq!(WORDS, 4);
        let f = types::target_fallback {
            sent: 1,
            received: 2,
            events: 3,
            peers_seen: 4,
        };
        let words: [u64; 4] = [f.sent, f.received, f.events, f.peers_seen];
        let bytes = crate::wire::pod_bytes(&f);
        for (i, w) in words.iter().enumerate() {
            let at = &bytes[i * 8..i * 8 + 8];
            assert_eq!(u64::from_ne_bytes(at.try_into().unwrap()), *w);
        }
        assert_eq!(
            [SENT, RECEIVED, EVENTS, PEERS_SEEN],
            [0, 1, 2, 3],
            "the word indices follow the struct"
        );
    }
}
