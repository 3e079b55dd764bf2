//! A small least-recently-used map from program id to compiled program.

use std::collections::HashMap;
use std::sync::Arc;

use sigil_primitives::ProgramId;

/// Keeps at most `capacity` entries and evicts the least recently used one; a capacity of 0
/// keeps nothing, so every lookup misses.
///
/// Eviction scans all entries, which is cheap at the few hundred entries a node keeps and avoids
/// a linked list; lookups are O(1).
pub struct LruCache<V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<ProgramId, (Arc<V>, u64)>,
}

impl<V> LruCache<V> {
    /// An empty cache that keeps at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// The entry for `id`, now the most recently used.
    pub fn get(&mut self, id: &ProgramId) -> Option<Arc<V>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(id).map(|(value, used)| {
            *used = tick;
            Arc::clone(value)
        })
    }

    /// Inserts `value` unless another thread already did; returns the entry now cached.
    pub fn insert(&mut self, id: ProgramId, value: Arc<V>) -> Arc<V> {
        if let Some(existing) = self.get(&id) {
            return existing;
        }
        if self.capacity == 0 {
            return value;
        }
        if self.entries.len() >= self.capacity
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| *id)
        {
            self.entries.remove(&oldest);
        }
        self.tick += 1;
        self.entries.insert(id, (Arc::clone(&value), self.tick));
        value
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is cached (without counting as a use).
    pub fn contains(&self, id: &ProgramId) -> bool {
        self.entries.contains_key(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ProgramId {
        ProgramId::from_bytes([n; 32]).expect("32 bytes")
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut cache = LruCache::new(2);
        cache.insert(id(1), Arc::new(1));
        cache.insert(id(2), Arc::new(2));
        assert_eq!(cache.get(&id(1)).as_deref(), Some(&1));
        cache.insert(id(3), Arc::new(3));
        assert!(cache.contains(&id(1)));
        assert!(!cache.contains(&id(2)));
        assert!(cache.contains(&id(3)));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut cache = LruCache::new(0);
        assert_eq!(*cache.insert(id(1), Arc::new(1)), 1);
        assert!(cache.get(&id(1)).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn insert_keeps_existing_entry() {
        let mut cache = LruCache::new(2);
        cache.insert(id(1), Arc::new(1));
        assert_eq!(*cache.insert(id(1), Arc::new(9)), 1);
    }
}
