//! Coalescing: a stream that has caught up waits a moment before it reads the ring again, so
//! that what is written meanwhile goes out in one write, not one write per entry.
//!
//! Under load this is what keeps a thousand streams cheap: each write to a socket is a system
//! call on both ends, and a stream that wakes for every entry makes one per entry. A stream that
//! is behind (its last batch did not take everything) never waits; an entry written after a
//! quiet spell goes out at once.

use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use crate::Tail;

pub(super) struct Coalesce {
    every: Duration,
    until: Option<Instant>,
}

impl Coalesce {
    pub(super) fn new(every: Duration) -> Coalesce {
        Coalesce { every, until: None }
    }

    /// Waits until the stream may read again.
    pub(super) async fn ready(&mut self) {
        if let Some(until) = self.until.take() {
            sleep_until(until).await;
        }
    }

    /// After a batch was handed on: when `live` has caught up, the next read waits.
    pub(super) fn sent(&mut self, live: &Tail) {
        if !self.every.is_zero() && live.is_empty() {
            self.until = Some(Instant::now() + self.every);
        }
    }
}
