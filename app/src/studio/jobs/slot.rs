//! A latest-value slot: the engine thread overwrites, the UI reads the newest value once per
//! frame. Large payloads (frames, token maps, masks) travel this way so that a slow UI never
//! queues up stale copies and the engine never waits for the UI.

use std::sync::{Arc, Mutex, PoisonError};

/// One value shared between the engine thread (writer) and the UI (reader), with a version
/// number that grows on every write.
pub struct Slot<T> {
    inner: Arc<Mutex<(u64, Option<Arc<T>>)>>,
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self { inner: Arc::new(Mutex::new((0, None))) }
    }
}

impl<T> Slot<T> {
    /// Replaces the value (the previous one is dropped unless a reader still holds it).
    pub fn put(&self, value: T) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 += 1;
        g.1 = Some(Arc::new(value));
    }

    /// The value if it changed since version `seen` (which is then updated).
    pub fn take_newer(&self, seen: &mut u64) -> Option<Arc<T>> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if g.0 == *seen {
            return None;
        }
        *seen = g.0;
        g.1.clone()
    }

    /// The current version (0 before the first write).
    pub fn version(&self) -> u64 {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_sees_only_the_latest_value_once() {
        let slot = Slot::default();
        let mut seen = 0;
        assert!(slot.take_newer(&mut seen).is_none());
        slot.put(1);
        slot.put(2);
        assert_eq!(slot.take_newer(&mut seen).as_deref(), Some(&2));
        assert!(slot.take_newer(&mut seen).is_none());
        let writer = slot.clone();
        std::thread::spawn(move || writer.put(3)).join().expect("writer thread");
        assert_eq!(slot.take_newer(&mut seen).as_deref(), Some(&3));
        assert_eq!(slot.version(), 3);
    }
}
