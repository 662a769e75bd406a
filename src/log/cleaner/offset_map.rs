//! The cleaner's bounded key map, after Kafka's `SkimpyOffsetMap`: a 128-bit hash of each key →
//! the latest offset seen for it, in one open-addressing table of fixed 24-byte slots (16 bytes
//! of hash, 8 of offset). Its memory is bounded by `[cleaner] dedupe-buffer-size`: at most
//! `dedupe-buffer-size / 24` slots, filled to at most `LOAD_FACTOR` of them (Kafka's
//! `log.cleaner.io.buffer.load.factor`, 0.9) so that probing stays short. When the map is full
//! the cleaner stops adding keys and cleans only up to the last offset the map covers, as Kafka
//! does; the rest of the dirty part waits for the next run.
//!
//! Two different keys with the same 128-bit hash would let the older one's latest record be
//! removed; with 128 bits (Kafka uses MD5, also 128) that is as unlikely as in Kafka.

use std::hash::{Hash, Hasher};

/// Bytes one slot takes: the bound `dedupe-buffer-size` is divided by this.
pub const SLOT_BYTES: usize = 24;
/// Fraction of the slots that may be used.
pub const LOAD_FACTOR: f64 = 0.9;

/// hash of a key → latest offset, bounded.
#[derive(Debug)]
pub struct OffsetMap {
    /// `(hash high, hash low, offset)`; offset `-1` marks an empty slot.
    slots: Vec<(u64, u64, i64)>,
    used: usize,
    max_used: usize,
    /// Largest offset put in the map (`-1` when empty).
    latest: i64,
}

/// A 128-bit hash of `key`: two SipHash-1-3 runs with different prefixes (stable within the
/// process, which is all an in-memory map needs).
pub fn key_hash(key: &[u8]) -> (u64, u64) {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    0u8.hash(&mut a);
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    1u8.hash(&mut b);
    key.hash(&mut b);
    (a.finish(), b.finish())
}

impl OffsetMap {
    /// A map that takes at most `buffer_bytes` of memory, sized for about `expected_keys` keys
    /// (fewer slots when fewer are needed: a small partition never allocates the whole buffer).
    pub fn new(buffer_bytes: usize, expected_keys: usize) -> Self {
        let max_slots = (buffer_bytes / SLOT_BYTES).max(1);
        let wanted = ((expected_keys as f64 / LOAD_FACTOR) as usize).saturating_add(1);
        let n = wanted.min(max_slots).max(1);
        let max_used = ((n as f64 * LOAD_FACTOR) as usize).clamp(1, n);
        OffsetMap { slots: vec![(0, 0, -1); n], used: 0, max_used, latest: -1 }
    }

    /// Number of slots (memory is `slots() * SLOT_BYTES`).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Keys in the map.
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Whether no new key fits.
    pub fn is_full(&self) -> bool {
        self.used >= self.max_used
    }

    /// Largest offset put in the map (`-1` when empty).
    pub fn latest_offset(&self) -> i64 {
        self.latest
    }

    fn probe(&self, h: (u64, u64)) -> usize {
        let n = self.slots.len();
        let mut i = (h.0 % n as u64) as usize;
        loop {
            let s = self.slots[i];
            if s.2 < 0 || (s.0, s.1) == h {
                return i;
            }
            i = (i + 1) % n;
        }
    }

    /// Records `offset` as the latest for `key`. Returns false (and changes nothing) when the key
    /// is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let h = key_hash(key);
        let i = self.probe(h);
        if self.slots[i].2 < 0 {
            if self.is_full() {
                return false;
            }
            self.used += 1;
        }
        self.slots[i] = (h.0, h.1, offset);
        self.latest = self.latest.max(offset);
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let s = self.slots[self.probe(key_hash(key))];
        (s.2 >= 0).then_some(s.2)
    }

    /// Empties the map, keeping its memory.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = (0, 0, -1));
        self.used = 0;
        self.latest = -1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_offset_per_key() {
        let mut m = OffsetMap::new(1 << 20, 100);
        for i in 0..300i64 {
            assert!(m.put(format!("k{}", i % 30).as_bytes(), i));
        }
        assert_eq!(m.len(), 30);
        for k in 0..30i64 {
            assert_eq!(m.get(format!("k{k}").as_bytes()), Some(270 + k));
        }
        assert_eq!(m.get(b"absent"), None);
        assert_eq!(m.latest_offset(), 299);
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.get(b"k1"), None);
    }

    #[test]
    fn memory_is_bounded_and_a_full_map_refuses_new_keys() {
        // 10 slots of 24 bytes, 9 usable.
        let mut m = OffsetMap::new(10 * SLOT_BYTES, 1_000_000);
        assert_eq!(m.slots(), 10);
        for i in 0..9 {
            assert!(m.put(format!("key-{i}").as_bytes(), i));
        }
        assert!(m.is_full());
        assert!(!m.put(b"one more", 100), "a new key does not fit");
        assert!(m.put(b"key-3", 200), "a known key still updates");
        assert_eq!(m.get(b"key-3"), Some(200));
        assert_eq!(m.get(b"one more"), None);
        assert_eq!(m.len(), 9);
    }

    #[test]
    fn small_logs_get_small_maps() {
        let m = OffsetMap::new(128 << 20, 100);
        assert!(m.slots() < 200, "{} slots", m.slots());
        let m = OffsetMap::new(0, 100);
        assert_eq!(m.slots(), 1);
    }
}
