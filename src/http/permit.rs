//! Places counted against a limit: open streams, snapshots being sent, connections. One type
//! for all three, over tokio's `Semaphore`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A limited number of places.
#[derive(Clone, Debug)]
pub(super) struct Places(Arc<Semaphore>);

impl Places {
    /// `max` places (at most `Semaphore::MAX_PERMITS`, about 2^61).
    pub(super) fn new(max: usize) -> Places {
        Places(Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))))
    }

    /// A place, or `None` when all are taken. Never waits.
    pub(super) fn take(&self) -> Option<Place> {
        Arc::clone(&self.0).try_acquire_owned().ok().map(Place)
    }
}

/// A place taken, given back when dropped.
#[derive(Debug)]
pub(super) struct Place(#[allow(dead_code)] OwnedSemaphorePermit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_given_back_when_dropped() {
        let places = Places::new(2);
        let (one, two) = (places.take(), places.take());
        assert!(one.is_some() && two.is_some());
        assert!(places.take().is_none(), "both are taken");
        drop(one);
        assert!(places.take().is_some());
        assert!(Places::new(0).take().is_none());
        assert!(Places::new(usize::MAX).take().is_some());
    }
}
