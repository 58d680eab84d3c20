//! A follower: a position in the ring, and nothing else.
//!
//! Async subscriptions, the HTTP streams and publishers follow the buffer this way. A follower
//! reads every retained entry from its position on, a bounded batch at a time, under the read
//! lock; when the ring evicted entries before the follower read them, the read says exactly how
//! many (the oldest are lost, as with `/dev/kmsg` or `tokio::sync::broadcast`'s `Lagged`). The
//! writer does no work per follower: it appends, and wakes the waiting ones (see [`Waiters`]).

// Async followers use all of it; publishers (feature `publish`) a part; without either, nothing.
#![cfg_attr(not(feature = "tokio"), allow(dead_code))]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::buffer::{copy_out, Shared, State};
use crate::ring::Extras;
use crate::{Entry, Level, LogBuffer};

/// The most bytes one read copies out of the ring, unless its first entry alone is longer. A
/// follower's memory is one such batch, however much is written.
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

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
        let next = shared.position(start);
        shared.follower_started();
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
        let read = self.shared.read_from(self.next, entries, BATCH_BYTES, out);
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

    /// Entries that could be read now.
    #[cfg(feature = "tokio")]
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

/// What one read by position found; see [`Shared::read_from`].
// Which fields are read, and which `Start`s are made, depends on the features.
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

/// Where a follower starts.
#[cfg_attr(not(all(feature = "publish", feature = "http")), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Start {
    /// With the next entry written.
    Now,
    /// With the oldest entry retained now.
    Oldest,
    /// With entry `seq` (or with the next one written, when `seq` is still in the future);
    /// entries from `seq` on that were evicted already are reported missed by the first read.
    At(u64),
}

impl Shared {
    /// The position a follower starting at `start` takes now.
    pub(crate) fn position(&self, start: Start) -> u64 {
        let state = self.state.read();
        match start {
            Start::Now => state.ring.next_seq(),
            Start::Oldest => state.ring.first_seq(),
            Start::At(seq) => seq.min(state.ring.next_seq()),
        }
    }

    /// Reads by position: appends to `out` the retained entries from `from` on, at most
    /// `max_entries` of them (at least 1) and, past the first, at most `max_bytes` bytes in all,
    /// in one copy of their bytes. The read lock is held for that copy only.
    pub(crate) fn read_from(
        &self,
        from: u64,
        max_entries: usize,
        max_bytes: usize,
        out: &mut impl Extend<Entry>,
    ) -> Read {
        // The read lock is held for finding the entries and copying their bytes, nothing else:
        // a reader that the scheduler preempts while it holds the lock keeps writers (and, with
        // a writer waiting, every other reader) waiting, so the less it does there the better.
        let mut spans: Vec<(usize, u8, Extras)> = Vec::with_capacity(max_entries.clamp(1, 64));
        let (bytes, missed, start, closed) = {
            let state = self.state.read();
            let ring = &state.ring;
            let missed = ring.first_seq().saturating_sub(from);
            let start = from.max(ring.first_seq());
            let mut ranges = ring.ranges_from(start);
            let Some((first_seq, first, meta)) = ranges.next() else {
                return Read {
                    missed,
                    taken: 0,
                    next: start,
                    closed: state.closed,
                };
            };
            spans.push((first.len(), meta, ring.extras_of(first_seq)));
            let mut end = first.end;
            for (seq, range, meta) in ranges.take(max_entries.saturating_sub(1)) {
                if range.end - first.start > max_bytes {
                    break;
                }
                spans.push((range.len(), meta, ring.extras_of(seq)));
                end = range.end;
            }
            let bytes = copy_out(ring, first.start..end);
            (bytes, missed, start, state.closed)
        };
        let mut offset = 0;
        out.extend(
            spans
                .iter()
                .zip(start..)
                .map(|(&(len, meta, extras), seq)| {
                    let entry =
                        Entry::new(seq, bytes.slice(offset..offset + len), Level::decode(meta))
                            .with_extras(extras);
                    offset += len;
                    entry
                }),
        );
        Read {
            missed,
            taken: spans.len(),
            next: start + spans.len() as u64,
            closed,
        }
    }

    /// A channel that gets a message (at most one waiting) once per eviction round, when the ring
    /// is three quarters full: for followers that read at intervals, so that they read before
    /// the next eviction. Undone by [`unwatch_pressure`](Shared::unwatch_pressure) with the id.
    #[cfg(feature = "publish")]
    pub(crate) fn watch_pressure(&self) -> (u64, crossbeam_channel::Receiver<()>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let id = self.next_pressure_id.fetch_add(1, Ordering::Relaxed);
        self.pressure.lock().push((id, tx));
        self.state.write().add_pressure_watcher();
        (id, rx)
    }

    #[cfg(feature = "publish")]
    pub(crate) fn unwatch_pressure(&self, id: u64) {
        let mut watchers = self.pressure.lock();
        if let Some(at) = watchers.iter().position(|(watcher, _)| *watcher == id) {
            watchers.swap_remove(at);
            self.state.write().remove_pressure_watcher();
        }
    }

    #[cold]
    pub(crate) fn nudge_pressure_watchers(&self) {
        for (_, watcher) in self.pressure.lock().iter() {
            // A nudge already waiting is as good as two.
            let _ = watcher.try_send(());
        }
    }

    /// Entries a follower at `from` could read now.
    #[cfg(feature = "tokio")]
    pub(crate) fn available(&self, from: u64) -> u64 {
        let state = self.state.read();
        state
            .ring
            .next_seq()
            .saturating_sub(from.max(state.ring.first_seq()))
    }

    pub(crate) fn follower_started(&self) {
        self.followers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn follower_stopped(&self) {
        self.followers.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn count_follower_missed(&self, missed: u64) {
        self.follower_missed.fetch_add(missed, Ordering::Relaxed);
    }
}

/// Nudges for publishers come at most this often: waking a thread costs the writer a system
/// call, and a ring that goes round faster than this is beyond what a publisher can keep up with.
const NUDGE_GAP: Duration = Duration::from_millis(1);
/// Writes that do not read the clock again after one that found a nudge too soon.
const NUDGE_SKIP: u8 = 15;

impl State {
    /// Whether a nudge may go out now (this eviction round has had none): at most one per
    /// [`NUDGE_GAP`]; one put off by the gap is asked for again by the round's next write.
    #[cold]
    pub(crate) fn nudge_due(&mut self) -> bool {
        // A clock read costs about what a write does: after one that found it too soon, the
        // next few writes do not ask again.
        if self.pressure_skip > 0 && self.pressure_skip_round == self.ring.evictions() {
            self.pressure_skip -= 1;
            return false;
        }
        let now = Instant::now();
        if self
            .pressure_at
            .is_some_and(|last| now.duration_since(last) < NUDGE_GAP)
        {
            // Too soon after the last one: a later write of this round asks again, so that a
            // nudge put off by the gap is not skipped until the eviction it was meant to prevent.
            self.pressure_skip = NUDGE_SKIP;
            self.pressure_skip_round = self.ring.evictions();
            return false;
        }
        self.pressure_round = self.ring.evictions();
        self.pressure_at = Some(now);
        true
    }
}

#[cfg(feature = "tokio")]
pub(crate) use self::waiting::{WaitSlot, Waiters};

#[cfg(feature = "tokio")]
mod waiting {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::task::Waker;

    use parking_lot::Mutex;

    // Implementation notes.
    //
    // An async follower that finds nothing to read leaves its waker here, then reads once more
    // before it returns `Pending`. A writer, still holding the ring's write lock after appending,
    // loads `any`; if it is set, the writer takes the whole list after releasing the lock and wakes
    // everyone on it.
    //
    // Why no wake-up is lost: the follower sets `any` before it takes the read lock for its second
    // look. If that look came before the writer's append, the read lock's release happens-before
    // the writer's acquisition of the write lock, so the writer's load sees `any` set (or a later
    // `false`, stored by a writer that took the list, this follower's waker with it, and woke it).
    // If the look came after, it sees the entry. `any` is only cleared under `list`'s lock, when
    // the list is taken, so a waker on the list always has `any` set.
    //
    // The writer's cost is one relaxed load under the lock, plus, when some follower waits, one
    // wake per waiting follower after it. A follower that is busy (reading, or blocked on its
    // socket) is not on the list and costs nothing. Each taking of the list starts a new epoch; a
    // follower remembers the epoch it registered in, so that it leaves its waker once per epoch,
    // and takes it back when dropped, so the list never holds more than one waker per follower.
    //
    // A waker is executor code: cloning, waking or dropping one may log (into this very buffer,
    // whose writer then takes `list`'s lock to wake the waiters), panic, or drop a task that owns
    // a follower (which takes `list`'s lock to forget its slot). So no waker is cloned, woken or
    // dropped while `list`'s lock or the ring's lock is held: `register` clones before locking
    // and drops the waker it replaced after unlocking, `forget` drops after unlocking, and
    // `wake_all` takes the list under the lock and wakes after. None of this changes the argument
    // above: `any` is still set under the lock, before the follower's second look.

    /// The async followers waiting for the next entry.
    pub(crate) struct Waiters {
        list: Mutex<Vec<(u64, Waker)>>,
        /// Whether `list` may hold a waker.
        any: AtomicBool,
        /// How many times the list was taken; written under `list`'s lock.
        epoch: AtomicU64,
        next_id: AtomicU64,
    }

    /// A follower's side of the list.
    pub(crate) struct WaitSlot {
        id: u64,
        /// The epoch in which this follower's waker went on the list.
        epoch: Option<u64>,
        /// The waker left then, to tell whether the next one is the same.
        waker: Option<Waker>,
    }

    thread_local! {
        /// Wakers taken from the list, woken after its lock is released; kept per thread so that
        /// their storage is reused.
        static TAKEN: Cell<Vec<(u64, Waker)>> = const { Cell::new(Vec::new()) };
    }

    /// Wakers taken off the list: should one's `wake` panic, the others are still woken as this
    /// unwinds, instead of being dropped with no writer left to wake them.
    struct WakeAll(Vec<(u64, Waker)>);

    impl Drop for WakeAll {
        fn drop(&mut self) {
            while let Some((_, waker)) = self.0.pop() {
                waker.wake();
            }
        }
    }

    impl Waiters {
        pub(crate) fn new() -> Waiters {
            Waiters {
                list: Mutex::new(Vec::new()),
                any: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                next_id: AtomicU64::new(0),
            }
        }

        pub(crate) fn slot(&self) -> WaitSlot {
            WaitSlot {
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                epoch: None,
                waker: None,
            }
        }

        /// Whether some follower may be waiting. Writers call it holding the ring's write lock.
        #[inline]
        pub(crate) fn any(&self) -> bool {
            self.any.load(Ordering::Relaxed)
        }

        /// Leaves `waker` for the next writer. The caller then looks at the ring once more.
        pub(crate) fn register(&self, slot: &mut WaitSlot, waker: &Waker) {
            let registered = slot.epoch == Some(self.epoch.load(Ordering::Acquire));
            if registered && slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                return;
            }
            // Cloned before the lock is taken, and a waker replaced is dropped after it is
            // released: cloning or dropping one runs the executor's code, which may log into
            // this buffer (whose writer then wakes the waiters, locking the list) or drop a task
            // that owns a follower (which locks the list too).
            let mut cloned = Some(waker.clone());
            let mut list = self.list.lock();
            let mut replaced = None;
            if slot.epoch == Some(self.epoch.load(Ordering::Relaxed)) {
                if let Some((_, left)) = list.iter_mut().find(|(id, _)| *id == slot.id) {
                    replaced = cloned.take().map(|new| std::mem::replace(left, new));
                }
            } else if let Some(new) = cloned.take() {
                list.push((slot.id, new));
                slot.epoch = Some(self.epoch.load(Ordering::Relaxed));
            }
            self.any.store(true, Ordering::Relaxed);
            drop(list);
            drop(replaced);
            drop(cloned);
            match &mut slot.waker {
                Some(left) => left.clone_from(waker),
                none => *none = Some(waker.clone()),
            }
        }

        /// Takes back the waker a dropped follower may have left.
        pub(crate) fn forget(&self, slot: &WaitSlot) {
            if slot.epoch.is_none() {
                return;
            }
            let mut list = self.list.lock();
            let mut removed = None;
            if slot.epoch == Some(self.epoch.load(Ordering::Relaxed)) {
                if let Some(at) = list.iter().position(|(id, _)| *id == slot.id) {
                    removed = Some(list.swap_remove(at));
                }
            }
            // Dropped after the lock is released (see `register`).
            drop(list);
            drop(removed);
        }

        /// Wakes every waiting follower. Called without the ring's lock.
        pub(crate) fn wake_all(&self) {
            // A thread whose locals are being destroyed (a log written from a thread-local's
            // destructor) gets a fresh list instead of a panic.
            let mut taken = WakeAll(TAKEN.try_with(Cell::take).unwrap_or_default());
            {
                let mut list = self.list.lock();
                self.any.store(false, Ordering::Relaxed);
                let epoch = self.epoch.load(Ordering::Relaxed);
                self.epoch.store(epoch + 1, Ordering::Release);
                std::mem::swap(&mut *list, &mut taken.0);
            }
            while let Some((_, waker)) = taken.0.pop() {
                waker.wake();
            }
            let storage = std::mem::take(&mut taken.0);
            let _ = TAKEN.try_with(|cell| cell.set(storage));
        }

        /// How many wakers the list holds now.
        #[cfg(test)]
        pub(crate) fn len(&self) -> usize {
            self.list.lock().len()
        }
    }
}
