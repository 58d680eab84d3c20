//! A follower: a position in the ring, and nothing else.
//!
//! A [`Tail`](crate::Tail), the HTTP streams and publishers follow the buffer this way. A follower
//! reads every retained entry from its position on, a bounded batch at a time, under the read
//! lock; when the ring evicted entries before the follower read them, the read says exactly how
//! many (the oldest are lost, as with `/dev/kmsg` or `tokio::sync::broadcast`'s `Lagged`). The
//! writer does no work per follower: it appends, and wakes the waiting ones (see
//! `core/wait.rs`).

use std::sync::Arc;

use crate::core::{Ask, Origin, Shared, BATCH_BYTES};
pub(crate) use crate::Start;
use crate::{Entry, LogBuffer};

/// A position in the ring: the sequence number of the next entry to read.
pub(crate) struct Cursor {
    shared: Arc<Shared>,
    next: u64,
    /// Entries lost because the ring evicted them before this follower read them.
    dropped: u64,
    /// The most entries one read takes.
    batch: usize,
}

impl Cursor {
    /// A follower of `buf` from `start`, taking at most `batch` entries (at least 1) per read.
    pub(crate) fn new(buf: &LogBuffer, start: Start, batch: usize) -> Cursor {
        let shared = Arc::clone(buf.shared());
        let next = shared.follower_started(start);
        Cursor {
            shared,
            next,
            dropped: 0,
            batch: batch.max(1),
        }
    }

    /// Appends to `out` the next batch: the retained entries from the position on, at most
    /// `batch` of them and [`BATCH_BYTES`] bytes (or the first entry alone, if longer).
    pub(crate) fn read(&mut self, out: &mut impl Extend<Entry>) -> Read {
        self.read_at_most(self.batch, out)
    }

    /// [`read`](Cursor::read), taking at most `entries` entries.
    pub(crate) fn read_at_most(&mut self, entries: usize, out: &mut impl Extend<Entry>) -> Read {
        let ask = Ask {
            from: Origin::Seq(self.next),
            entries: entries.max(1),
            bytes: BATCH_BYTES,
            index: true,
        };
        let batch = self.shared.read(ask);
        out.extend(batch.entries());
        let read = Read {
            missed: batch.missed,
            taken: batch.taken(),
            next: batch.next(),
            closed: batch.closed,
        };
        self.next = read.next;
        self.count(read.missed);
        read
    }

    /// Moves the position to `end` (at most the buffer's next sequence number) without reading:
    /// returns how many of the entries skipped had been evicted already, and how many were still
    /// retained.
    #[cfg(feature = "publish")]
    pub(crate) fn skip_to(&mut self, end: u64) -> (u64, u64) {
        let end = end.max(self.next);
        let first = self.shared.position(Start::Oldest);
        let missed = first.saturating_sub(self.next).min(end - self.next);
        let skipped = end - self.next - missed;
        self.next = end;
        self.count(missed);
        (missed, skipped)
    }

    fn count(&mut self, missed: u64) {
        if missed > 0 {
            self.dropped += missed;
            self.shared.count_follower_missed(missed);
        }
    }

    /// The sequence number of the next entry to read.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next
    }

    /// Entries lost because the ring evicted them before this follower read them.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The most entries one read takes.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// Sets the most entries one read takes (at least 1).
    pub(crate) fn set_batch(&mut self, batch: usize) {
        self.batch = batch.max(1);
    }

    /// Entries that could be read now.
    pub(crate) fn available(&self) -> u64 {
        self.shared.available(self.next)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Asks for a nudge, once per eviction round, when the ring is three quarters full: for a
    /// follower that reads at intervals, so that it reads before the next eviction.
    #[cfg(feature = "publish")]
    pub(crate) fn watch_pressure(&self) -> PressureWatch {
        let (id, nudges) = self.shared.watch_pressure();
        PressureWatch {
            shared: Arc::clone(&self.shared),
            id,
            nudges,
        }
    }
}

/// Nudges from writers when the ring fills up; see [`Cursor::watch_pressure`].
#[cfg(feature = "publish")]
pub(crate) struct PressureWatch {
    shared: Arc<Shared>,
    id: u64,
    pub(crate) nudges: crossbeam_channel::Receiver<()>,
}

#[cfg(feature = "publish")]
impl Drop for PressureWatch {
    fn drop(&mut self) {
        self.shared.unwatch_pressure(self.id);
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.shared.follower_stopped();
    }
}

/// What one read by position found.
// Which fields are read depends on the features.
#[cfg_attr(not(all(feature = "publish", feature = "http")), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Read {
    /// Entries from the position on that the ring evicted before this read.
    pub(crate) missed: u64,
    /// Entries appended to the output.
    pub(crate) taken: usize,
    /// Where the next read starts: one past the last entry taken.
    pub(crate) next: u64,
    /// Whether every handle to the buffer is gone, so that nothing more will be written.
    pub(crate) closed: bool,
}
