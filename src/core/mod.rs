//! The owner of a buffer's shared state: the ring behind its lock, the subscribers, the waiting
//! followers, the publishers' pressure watch and the error printers' alarm. Everything that takes
//! the lock is a method here; `LogBuffer`, followers, the printer and the dump call them.
//!
//! # Locks, and their order
//!
//! - `state` (a `parking_lot::RwLock<State>`): the ring and everything writers change with it.
//!   Writers take it for writing; every read of the ring goes through [`Shared::read`] under its
//!   read lock (or under the write lock, in [`Shared::subscribe`], when a read and a subscription
//!   must be taken together).
//! - `pressure` and `alarms` (side lists of publishers to nudge and printers to wake): taken
//!   **before** `state` when both are held (registering and unregistering), and only after
//!   `state` is released on the write path. Never the other way round.
//! - The waiters' list (`wait.rs`): never held with `state`. Writers load its flag under `state`
//!   and take the list after releasing it.
//!
//! No waker, channel send that can block, or user code runs under `state`.

mod wait;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

pub(crate) use self::wait::WaitSlot;
use self::wait::Waiters;
use crate::ring::{Extras, Ring, RingCounters, Tags, MAX_CAPACITY};
use crate::time::{duration_nanos, system_clock, Clock};
use crate::{Entry, Level, Replay, Stats};

/// The most bytes one read copies out of the ring for a follower, unless its first entry alone
/// is longer. A follower's memory is one such batch, however much is written.
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

/// The most index words one look for errors goes through under the read lock.
pub(crate) const SCAN_STEP: usize = 4096;

/// Nudges for publishers come at most this often: waking a thread costs the writer a system
/// call, and a ring that goes round faster than this is beyond what a publisher can keep up with.
const NUDGE_GAP: Duration = Duration::from_millis(1);
/// Writes that do not read the clock again after one that found a nudge too soon.
const NUDGE_SKIP: u8 = 15;

/// What every handle to one buffer shares. Subscriptions hold it weakly, to unsubscribe; followers
/// hold it strongly, to read what the ring retains even after the last handle is gone.
pub(crate) struct Shared {
    state: RwLock<State>,
    /// Where entries' times come from, if they record one.
    clock: Option<Clock>,
    capacity: usize,
    subscriber_capacity: usize,
    /// `LogBuffer` handles alive. The last one to go closes the buffer.
    handles: AtomicUsize,
    /// Followers (positions in the ring) alive now.
    followers: AtomicU64,
    /// Entries that followers, past and present, lost because the ring evicted them first.
    follower_missed: AtomicU64,
    /// Async followers waiting for the next entry.
    waiters: Waiters,
    /// How full the ring is when the pressure watchers are nudged: three quarters.
    pressure_mark: usize,
    /// Where to nudge the pressure watchers, by id. Taken before `state`.
    pressure: Mutex<Vec<(u64, Sender<()>)>>,
    /// Ids for pressure watchers and error printers.
    next_watch_id: AtomicU64,
    /// Where to wake the error printers. Taken before `state`.
    alarms: Mutex<Vec<Alarm>>,
    /// A random number that tells this buffer from another, such as the one of a restarted
    /// process: resume positions handed out over HTTP carry it.
    instance: u32,
}

struct State {
    ring: Ring,
    subscribers: Vec<Slot>,
    next_subscriber_id: u64,
    subscriber_drops: u64,
    /// Every handle is gone: nothing more will be written.
    closed: bool,
    /// Followers that read at intervals (publishers) and want a nudge before the ring evicts
    /// what they have not read; see `Shared::watch_pressure`.
    pressure_watchers: usize,
    /// The eviction round in which they were last nudged, and when.
    pressure_round: u64,
    pressure_at: Option<Instant>,
    /// Writes left before the clock is read again for a nudge put off by the gap.
    pressure_skip: u8,
    /// The eviction round those writes belong to: a new round asks at once.
    pressure_skip_round: u64,
    /// The least severe level (encoded) that an error printer waits for, `u8::MAX` when none
    /// does: an entry at it or above wakes them.
    alarm: u8,
    /// Entries written at each level (encoded) that was at or above `alarm` then: a printer
    /// tells from them how many errors the ring evicted before it could read them.
    alarm_counts: [u64; Level::ENCODED],
    /// Whether a subscriber or a publisher watching for pressure wants to hear of writes; see
    /// [`State::rewatch`].
    watched: bool,
}

/// The buffer's side of one subscription.
struct Slot {
    id: u64,
    tx: Sender<Entry>,
    dropped: Arc<AtomicU64>,
    /// The subscription was dropped: the slot goes after this write.
    gone: bool,
}

/// One error printer, as the writers see it.
struct Alarm {
    id: u64,
    /// The least severe level (encoded) it prints.
    least: u8,
    wake: Sender<()>,
}

/// The span an entry was made in: its id and its root's (memtail's own), and the counter of
/// its tree's entries, which numbers it under the lock (so that the entries of a tree are
/// numbered in the order they enter the ring).
#[derive(Clone, Copy)]
pub(crate) struct InSpan<'a> {
    pub(crate) ids: [u64; 2],
    pub(crate) ordinal: &'a AtomicU64,
}

/// A new subscription's side: its channel, its drop counter and its id.
pub(crate) struct Subscribed {
    pub(crate) rx: Receiver<Entry>,
    pub(crate) dropped: Arc<AtomicU64>,
    pub(crate) id: u64,
}

/// Where a [`Tail`](crate::Tail) starts following: see
/// [`LogBuffer::tail_from`](crate::LogBuffer::tail_from).
///
/// # Examples
///
/// ```
/// use memtail::Start;
///
/// let buf = memtail::LogBuffer::new();
/// buf.append(b"old");
/// assert_eq!(buf.tail_from(Start::Oldest).next_seq(), 0);
/// assert_eq!(buf.tail_from(Start::Now).next_seq(), 1);
/// assert_eq!(buf.tail_from(Start::At(7)).next_seq(), 1); // the future: the next entry written
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Start {
    /// With the next entry written.
    Now,
    /// With the oldest entry retained now: the backlog, then the live entries.
    Oldest,
    /// With entry `seq` (or with the next one written, when `seq` is still in the future);
    /// entries from `seq` on that were evicted already are counted as dropped by the first read.
    At(u64),
}

/// Where a read of the ring starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin {
    /// Entry `seq`, or the oldest retained when it was evicted (the read counts those missed).
    Seq(u64),
    /// The first entry appended at this time (nanoseconds since the Unix epoch) or later;
    /// nothing from a ring that records no times.
    Time(u64),
    /// The newest entries: at most `entries` of them, none older than `within` before now (an
    /// entry without a time of its own counts as recent as the next one with a time).
    Newest {
        entries: Option<usize>,
        within: Option<Duration>,
    },
}

/// What a read takes: where it starts, and at most how much.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask {
    pub(crate) from: Origin,
    /// The most entries (at least one is taken, if any is retained).
    pub(crate) entries: usize,
    /// The most bytes, past the first entry.
    pub(crate) bytes: usize,
    /// Whether the read says where each entry is (for [`Batch::entries`]); a read for the bytes
    /// alone does not.
    pub(crate) index: bool,
}

impl Ask {
    /// Every retained entry from `seq` on.
    pub(crate) fn all_from(seq: u64) -> Ask {
        Ask {
            from: Origin::Seq(seq),
            entries: usize::MAX,
            bytes: usize::MAX,
            index: true,
        }
    }
}

/// What one read of the ring found: one copy of the entries' bytes, where each entry is in it,
/// and what the ring said at that moment.
pub(crate) struct Batch {
    bytes: Bytes,
    /// Each entry taken: its length, level and extras (empty without [`Ask::index`]).
    index: Vec<(usize, u8, Extras)>,
    records_times: bool,
    /// The first entry taken (where the read started, when none was).
    pub(crate) first: u64,
    /// Entries from the position asked for that the ring evicted before this read.
    pub(crate) missed: u64,
    /// The ring's next sequence number at the read.
    pub(crate) next_seq: u64,
    /// Whether every handle to the buffer is gone, so that nothing more will be written.
    pub(crate) closed: bool,
    /// The ring's oldest retained entry and how many it retains.
    pub(crate) first_retained: u64,
    pub(crate) retained: usize,
    /// The ring's counters, and the entries subscribers and followers lost.
    pub(crate) counters: RingCounters,
    pub(crate) dropped: u64,
}

impl Batch {
    /// How many entries were taken (with [`Ask::index`]).
    pub(crate) fn taken(&self) -> usize {
        self.index.len()
    }

    /// Whether the ring records times: a read from a time reads nothing from a ring that does not.
    pub(crate) fn records_times(&self) -> bool {
        self.records_times
    }

    /// Where a follower reads next: one past the last entry taken.
    pub(crate) fn next(&self) -> u64 {
        self.first + self.index.len() as u64
    }

    /// The bytes of the entries taken, in one copy.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The entries taken, sharing the one copy of their bytes.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let mut offset = 0;
        self.index
            .iter()
            .zip(self.first..)
            .map(move |(&(len, meta, extras), seq)| {
                let entry = Entry::new(
                    seq,
                    self.bytes.slice(offset..offset + len),
                    Level::decode(meta),
                )
                .with_extras(extras);
                offset += len;
                entry
            })
    }

    /// The entries as a [`Replay`]: what [`LogBuffer::since`](crate::LogBuffer::since) answers.
    pub(crate) fn into_replay(self) -> Replay {
        Replay::new(self.entries().collect(), self.missed, self.next_seq)
    }
}

/// What one look through the index for errors found; see [`Shared::scan_levels`].
pub(crate) struct Scan {
    /// Each entry at the level or above: its sequence number, its group (root span, 0 for
    /// none) and its ordinal in the group.
    pub(crate) found: Vec<(u64, u64, u64)>,
    /// Entries before this one were looked at.
    pub(crate) scanned: u64,
    /// Set when the look reached the newest entry: the writers' count of entries at the level
    /// or above, the oldest retained entry, and whether the buffer is closed, all read then.
    pub(crate) caught_up: Option<(u64, u64, bool)>,
}

/// Checks a capacity in bytes, reporting the caller's location.
#[track_caller]
pub(crate) fn check_capacity(bytes: usize) {
    assert!(bytes > 0, "memtail: a capacity must be at least 1 byte");
    assert!(
        bytes <= MAX_CAPACITY,
        "memtail: a capacity of {bytes} bytes cannot be addressed (the largest is {MAX_CAPACITY})"
    );
}

/// Checks a subscription's channel size, reporting the caller's location.
#[track_caller]
pub(crate) fn check_subscriber_capacity(entries: usize) {
    assert!(
        entries > 0,
        "memtail: a subscriber capacity must be at least 1 entry"
    );
}

impl Shared {
    /// The state of a new buffer, with one handle.
    pub(crate) fn new(capacity: usize, subscriber_capacity: usize, clock: Option<Clock>) -> Shared {
        let mut ring = Ring::new(capacity);
        if clock.is_some() {
            ring.record_times();
        }
        Shared {
            clock,
            state: RwLock::new(State {
                ring,
                subscribers: Vec::new(),
                next_subscriber_id: 0,
                subscriber_drops: 0,
                closed: false,
                pressure_watchers: 0,
                pressure_round: u64::MAX,
                pressure_at: None,
                pressure_skip: 0,
                pressure_skip_round: 0,
                alarm: u8::MAX,
                alarm_counts: [0; Level::ENCODED],
                watched: false,
            }),
            capacity,
            subscriber_capacity,
            handles: AtomicUsize::new(1),
            instance: random_instance(),
            followers: AtomicU64::new(0),
            follower_missed: AtomicU64::new(0),
            waiters: Waiters::new(),
            pressure_mark: capacity - capacity / 4,
            pressure: Mutex::new(Vec::new()),
            next_watch_id: AtomicU64::new(0),
            alarms: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn subscriber_capacity(&self) -> usize {
        self.subscriber_capacity
    }

    /// This buffer's random number; see the field.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn instance(&self) -> u32 {
        self.instance
    }

    // ---- handles ----

    /// A `LogBuffer` handle was cloned.
    pub(crate) fn handle_cloned(&self) {
        self.handles.fetch_add(1, Ordering::Relaxed);
    }

    /// A `LogBuffer` handle was dropped: the last one closes the buffer.
    pub(crate) fn handle_dropped(&self) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }

    /// Whether every handle is gone (nothing more will be written but by a panic hook).
    pub(crate) fn is_closed(&self) -> bool {
        self.handles.load(Ordering::Acquire) == 0
    }

    /// The last handle is gone: subscriptions are disconnected (once they have received what
    /// they hold), and waiting followers are woken to read what is left and see the end.
    fn close(&self) {
        {
            let mut state = self.state.write();
            state.closed = true;
            state.subscribers.clear();
            state.rewatch();
        }
        // Every error printer, to print what is left and end.
        self.sound_alarm(u8::MAX);
        self.waiters.wake_all();
    }

    // ---- the write path ----

    /// The buffer's clock now, if it records times; 0 (no time) if not. (A clock at the epoch
    /// gives 1 ns past it, so that 0 stays "no time".)
    #[inline]
    pub(crate) fn clock_now(&self) -> u64 {
        self.clock.map_or(0, |now| duration_nanos(now()).max(1))
    }

    /// The time an entry made now gets: the buffer's clock, or `SystemTime::now`.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        duration_nanos(self.clock.unwrap_or(system_clock)()).max(1)
    }

    /// The one write path: appends `entry` with what it carries, and the span it was made in,
    /// if any.
    #[inline]
    pub(crate) fn append_in(
        &self,
        entry: &[u8],
        tags: Tags,
        span: Option<InSpan<'_>>,
    ) -> Option<u64> {
        self.append_locked(self.state.write(), entry, tags, span)
    }

    /// [`append_in`](Shared::append_in) if the lock can be had within `wait`: `None`
    /// if not (the thread that holds it may be the one asking, panicking), else what the
    /// append gave.
    pub(crate) fn try_append_within(
        &self,
        entry: &[u8],
        tags: Tags,
        wait: Duration,
    ) -> Option<Option<u64>> {
        let guard = self.state.try_write_for(wait)?;
        Some(self.append_locked(guard, entry, tags, None))
    }

    #[inline]
    fn append_locked(
        &self,
        mut guard: parking_lot::RwLockWriteGuard<'_, State>,
        entry: &[u8],
        tags: Tags,
        span: Option<InSpan<'_>>,
    ) -> Option<u64> {
        let meta = tags.level;
        let state = &mut *guard;
        if let Some(span) = span {
            if !entry.is_empty() {
                let ordinal = span.ordinal.fetch_add(1, Ordering::Relaxed);
                state.ring.span_next([span.ids[0], span.ids[1], ordinal]);
            }
        }
        let (seq, range) = state.ring.append_tagged(entry, tags)?;
        // Followers read the ring by position: the writer's only work for them is to see, under
        // the lock, whether one waits (see `wait.rs` for why that load cannot miss one).
        let wake = self.waiters.any();
        // An error printer costs the writers one comparison, and a wake-up per error.
        let alarm = meta >= state.alarm;
        if alarm {
            state.count_alarm(meta);
        }
        // Subscribers and publishers: one test when there are none.
        let watched = state.watched;
        let mut pressure = false;
        if watched {
            pressure = watched_write(state, self, seq, meta, range);
        }
        drop(guard);
        if pressure {
            self.nudge_pressure_watchers();
        }
        if alarm {
            self.sound_alarm(meta);
        }
        // Waking a task can take a while (its executor may have to unpark a thread): do it after
        // releasing the lock, so that other writers do not wait for it.
        if wake {
            self.waiters.wake_all();
        }
        Some(seq)
    }

    // ---- the one reader of the ring ----

    /// Reads what `ask` asks for, under the read lock held for finding the entries and copying
    /// their bytes, nothing else: a reader that the scheduler preempts while it holds the lock
    /// keeps writers (and, with a writer waiting, every other reader) waiting, so the less it
    /// does there the better.
    pub(crate) fn read(&self, ask: Ask) -> Batch {
        self.read_in(&self.state.read(), ask)
    }

    /// [`read`](Shared::read) if the read lock can be had within `wait` (a thread that holds a
    /// read lock already gets another: a panicking one may): `None` if not.
    pub(crate) fn try_read_within(&self, ask: Ask, wait: Duration) -> Option<Batch> {
        let state = self.state.try_read_recursive_for(wait)?;
        Some(self.read_in(&state, ask))
    }

    fn read_in(&self, state: &State, ask: Ask) -> Batch {
        let ring = &state.ring;
        let from = match ask.from {
            Origin::Seq(seq) => seq,
            // A ring without times: nothing, from the next entry (`records_times` says why).
            Origin::Time(nanos) => ring.first_at_or_after(nanos).unwrap_or(ring.next_seq()),
            Origin::Newest { entries, within } => self.newest(ring, entries, within),
        };
        let missed = ring.first_seq().saturating_sub(from);
        let start = from.max(ring.first_seq());
        let mut index = Vec::new();
        let mut ranges = ring.ranges_from(start);
        let bytes = match ranges.next() {
            None => Bytes::new(),
            Some((first_seq, first, meta)) => {
                let mut end = first.end;
                if ask.index {
                    index.reserve(ask.entries.min(ring.entry_count()).clamp(1, 1024));
                    index.push((first.len(), meta, ring.extras_of(first_seq)));
                }
                for (seq, range, meta) in ranges.take(ask.entries.saturating_sub(1)) {
                    if range.end - first.start > ask.bytes {
                        break;
                    }
                    if ask.index {
                        index.push((range.len(), meta, ring.extras_of(seq)));
                    }
                    end = range.end;
                }
                join(ring.slices(first.start..end))
            }
        };
        Batch {
            bytes,
            index,
            records_times: ring.records_times(),
            first: start,
            missed,
            next_seq: ring.next_seq(),
            closed: state.closed,
            first_retained: ring.first_seq(),
            retained: ring.entry_count(),
            counters: ring.counters(),
            dropped: state.subscriber_drops + self.follower_missed.load(Ordering::Relaxed),
        }
    }

    /// Where [`Origin::Newest`] starts.
    fn newest(&self, ring: &Ring, entries: Option<usize>, within: Option<Duration>) -> u64 {
        let mut from = ring.first_seq();
        if let Some(entries) = entries {
            from = from.max(ring.next_seq().saturating_sub(entries as u64));
        }
        if let Some(within) = within {
            let window = u64::try_from(within.as_nanos()).unwrap_or(u64::MAX);
            // A ring without times is not limited by time; an entry without a time of its own
            // is shown when the next one with a time is (it may be as recent).
            if let Some(mut seq) = ring.first_at_or_after(self.now().saturating_sub(window)) {
                while seq > ring.first_seq() && ring.time_of(seq - 1).is_none() {
                    seq -= 1;
                }
                from = from.max(seq);
            }
        }
        from
    }

    /// The retained bytes of the entries from `seq` on, in one copy, with what `since` would
    /// say of them: the next sequence number, and how many entries from `seq` on were evicted.
    /// `None` when the ring records times: its entries are shown with them.
    #[cfg(feature = "http")]
    pub(crate) fn bytes_since(&self, seq: u64) -> Option<(Bytes, u64, u64)> {
        let state = self.state.read();
        if state.ring.records_times() {
            return None;
        }
        let ask = Ask {
            index: false,
            ..Ask::all_from(seq)
        };
        let batch = self.read_in(&state, ask);
        Some((batch.bytes, batch.next_seq, batch.missed))
    }

    /// The sequence number of the first retained entry appended at `nanos` or later (the next
    /// one when none was); `None` without times.
    #[cfg(feature = "http")]
    pub(crate) fn seq_at_time(&self, nanos: u64) -> Option<u64> {
        self.state.read().ring.first_at_or_after(nanos)
    }

    /// Bytes retained, and the next sequence number.
    pub(crate) fn len_and_next(&self) -> (usize, u64) {
        let state = self.state.read();
        (state.ring.len(), state.ring.next_seq())
    }

    /// The buffer's counters, read together.
    pub(crate) fn stats(&self) -> Stats {
        let state = self.state.read();
        let counters = state.ring.counters();
        Stats {
            entries_written: state.ring.next_seq(),
            bytes_written: state.ring.bytes_written(),
            entries_evicted: counters.entries_evicted,
            bytes_evicted: counters.bytes_evicted,
            entries_cut: counters.entries_cut,
            bytes_cut: counters.bytes_cut,
            retained_entries: state.ring.entry_count() as u64,
            retained_bytes: state.ring.len() as u64,
            subscribers: state.subscribers.len() as u64,
            subscriber_drops: state.subscriber_drops,
            subscriber_queued: state
                .subscribers
                .iter()
                .map(|slot| slot.tx.len() as u64)
                .sum(),
            followers: self.followers.load(Ordering::Relaxed),
            follower_missed: self.follower_missed.load(Ordering::Relaxed),
        }
    }

    // ---- subscribers ----

    /// A new subscription with a channel of `capacity` entries, and, when `backlog` is given,
    /// the read it asks for, taken under the same lock: the read followed by what the
    /// subscription receives has no gap and no duplicate.
    pub(crate) fn subscribe(
        &self,
        capacity: usize,
        backlog: Option<Ask>,
    ) -> (Option<Batch>, Subscribed) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut state = self.state.write();
        let read = backlog.map(|ask| self.read_in(&state, ask));
        let id = state.next_subscriber_id;
        state.next_subscriber_id += 1;
        state.subscribers.push(Slot {
            id,
            tx,
            dropped: Arc::clone(&dropped),
            gone: false,
        });
        state.rewatch();
        (read, Subscribed { rx, dropped, id })
    }

    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut state = self.state.write();
        state.subscribers.retain(|slot| slot.id != id);
        state.rewatch();
    }

    // ---- followers ----

    /// The position a follower starting at `start` takes now; counts the follower until
    /// [`follower_stopped`](Shared::follower_stopped).
    pub(crate) fn follower_started(&self, start: Start) -> u64 {
        self.followers.fetch_add(1, Ordering::Relaxed);
        self.position(start)
    }

    pub(crate) fn follower_stopped(&self) {
        self.followers.fetch_sub(1, Ordering::Relaxed);
    }

    /// The position `start` means now.
    pub(crate) fn position(&self, start: Start) -> u64 {
        let state = self.state.read();
        match start {
            Start::Now => state.ring.next_seq(),
            Start::Oldest => state.ring.first_seq(),
            Start::At(seq) => seq.min(state.ring.next_seq()),
        }
    }

    pub(crate) fn count_follower_missed(&self, missed: u64) {
        self.follower_missed.fetch_add(missed, Ordering::Relaxed);
    }

    /// Entries a follower at `from` could read now.
    pub(crate) fn available(&self, from: u64) -> u64 {
        let state = self.state.read();
        state
            .ring
            .next_seq()
            .saturating_sub(from.max(state.ring.first_seq()))
    }

    /// A place on the waiters' list for one follower.
    pub(crate) fn wait_slot(&self) -> WaitSlot {
        self.waiters.slot()
    }

    /// Leaves `waker` for the next writer. The caller then looks at the ring once more.
    pub(crate) fn wait(&self, slot: &mut WaitSlot, waker: &Waker) {
        self.waiters.register(slot, waker);
    }

    /// Takes back the waker a dropped follower may have left.
    pub(crate) fn stop_waiting(&self, slot: &WaitSlot) {
        self.waiters.forget(slot);
    }

    /// How many wakers wait now.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    // ---- pressure: nudges for followers that read at intervals ----

    /// A channel that gets a message (at most one waiting) once per eviction round, when the ring
    /// is three quarters full: for followers that read at intervals, so that they read before
    /// the next eviction. Undone by [`unwatch_pressure`](Shared::unwatch_pressure) with the id.
    #[cfg(feature = "publish")]
    pub(crate) fn watch_pressure(&self) -> (u64, Receiver<()>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let id = self.next_watch_id.fetch_add(1, Ordering::Relaxed);
        let mut watchers = self.pressure.lock();
        watchers.push((id, tx));
        let mut state = self.state.write();
        state.pressure_watchers += 1;
        state.rewatch();
        (id, rx)
    }

    #[cfg(feature = "publish")]
    pub(crate) fn unwatch_pressure(&self, id: u64) {
        let mut watchers = self.pressure.lock();
        if let Some(at) = watchers.iter().position(|(watcher, _)| *watcher == id) {
            watchers.swap_remove(at);
            let mut state = self.state.write();
            state.pressure_watchers -= 1;
            state.rewatch();
        }
    }

    #[cold]
    fn nudge_pressure_watchers(&self) {
        for (_, watcher) in self.pressure.lock().iter() {
            // A nudge already waiting is as good as two.
            let _ = watcher.try_send(());
        }
    }

    // ---- alarms: wake-ups for the error printers ----

    /// Registers a printer of entries at `least` (encoded) or above, woken through `wake`;
    /// returns its id, the next sequence number and the writers' count of such entries, taken
    /// in one step so that no error falls between. Undone by [`unwatch_alarm`].
    ///
    /// [`unwatch_alarm`]: Shared::unwatch_alarm
    pub(crate) fn watch_alarm(&self, least: u8, wake: Sender<()>) -> (u64, u64, u64) {
        let id = self.next_watch_id.fetch_add(1, Ordering::Relaxed);
        let mut alarms = self.alarms.lock();
        alarms.push(Alarm { id, least, wake });
        let mut state = self.state.write();
        state.set_alarm_level(&alarms);
        (id, state.ring.next_seq(), state.alarms_at_or_above(least))
    }

    pub(crate) fn unwatch_alarm(&self, id: u64) {
        let mut alarms = self.alarms.lock();
        alarms.retain(|alarm| alarm.id != id);
        self.state.write().set_alarm_level(&alarms);
    }

    /// Wakes the printers that want an entry at level `meta`; one already woken stays so.
    /// `u8::MAX` wakes them all.
    #[cold]
    fn sound_alarm(&self, meta: u8) {
        for alarm in self.alarms.lock().iter() {
            if meta >= alarm.least {
                let _ = alarm.wake.try_send(());
            }
        }
    }

    /// Looks through the index from `from` (or the oldest retained entry) for entries at
    /// `least` (encoded) or above, through at most [`SCAN_STEP`] entries.
    pub(crate) fn scan_levels(&self, from: u64, least: u8) -> Scan {
        let state = self.state.read();
        let ring = &state.ring;
        let from = from.max(ring.first_seq());
        let mut found = Vec::new();
        let mut looked = 0;
        for (seq, _, meta) in ring.ranges_from(from).take(SCAN_STEP) {
            if meta >= least {
                let (group, ordinal) = ring.group_of(seq).unwrap_or((0, seq));
                found.push((seq, group, ordinal));
            }
            looked += 1;
        }
        let scanned = from + looked;
        let caught_up = (scanned == ring.next_seq()).then(|| {
            (
                state.alarms_at_or_above(least),
                ring.first_seq(),
                state.closed,
            )
        });
        Scan {
            found,
            scanned,
            caught_up,
        }
    }

    /// Goes back from `next` through the index for entries of `group` (a root span, 0 for
    /// none), none before `lowest`, pushing each onto `found` until it holds more than `wanted`,
    /// through at most [`SCAN_STEP`] entries. Returns where it stopped and, when it was stopped
    /// by the oldest retained entry or `lowest`, how many entries from `lowest` on the ring
    /// evicted.
    pub(crate) fn find_group(
        &self,
        mut next: u64,
        group: u64,
        wanted: u64,
        lowest: u64,
        found: &mut Vec<u64>,
    ) -> (u64, Option<u64>) {
        let state = self.state.read();
        let ring = &state.ring;
        let low = lowest.max(ring.first_seq());
        let mut looked = 0;
        while next > low && (found.len() as u64) <= wanted && looked < SCAN_STEP {
            next -= 1;
            looked += 1;
            if ring.group_of(next).map(|(of, _)| of) == Some(group) {
                found.push(next);
            }
        }
        let done = (found.len() as u64) > wanted || next <= low;
        // Stopped by the ring's oldest entry, not by the group's floor: what is wanted and not
        // found was evicted (no more than the entries evicted from `lowest` on).
        let evicted = done.then(|| {
            if next <= low {
                ring.first_seq().saturating_sub(lowest)
            } else {
                0
            }
        });
        (next, evicted)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// A write's work for subscribers and publishers, under the lock; returns whether the
/// publishers are to be nudged once it is released.
// Out of line, so that the writer's path without them stays small enough to inline.
#[inline(never)]
fn watched_write(
    state: &mut State,
    shared: &Shared,
    seq: u64,
    meta: u8,
    range: std::ops::Range<usize>,
) -> bool {
    // Publishers read at intervals; once per eviction round, when the ring is three quarters
    // full, they are nudged to read before the next eviction drops what they have not read.
    let pressure = state.pressure_watchers > 0
        && state.ring.len() >= shared.pressure_mark
        && state.pressure_round != state.ring.evictions()
        && state.nudge_due();
    if !state.subscribers.is_empty() {
        fan_out(state, seq, Level::decode(meta), range);
    }
    pressure
}

/// Hands the entry just stored at `range` to every subscriber, copying it into `Bytes` once, and
/// only if at least one subscriber has room for it. The last subscriber with room gets that copy
/// itself, the others clones.
// Inlined into `watched_write`, which is out of line.
#[inline]
fn fan_out(state: &mut State, seq: u64, level: Option<Level>, range: std::ops::Range<usize>) {
    let ring = &state.ring;
    let drops = &mut state.subscriber_drops;
    let mut payload: Option<Bytes> = None;
    let mut disconnected = false;
    let last = state.subscribers.len() - 1;
    // A plain loop: `retain` costs more than the rest together when every channel is full, and
    // a subscriber goes away rarely (then a second pass removes it).
    for (index, slot) in state.subscribers.iter_mut().enumerate() {
        // Only this writer sends, and only under the lock, so a channel found not full stays so
        // until `try_send`; a full one costs no copy at all, nor even finding the entry's bytes.
        if slot.tx.is_full() {
            slot.count_drop(drops);
            continue;
        }
        let copy = || join(ring.slices(range.clone()));
        let bytes = if index == last {
            payload.take().unwrap_or_else(copy)
        } else {
            payload.get_or_insert_with(copy).clone()
        };
        // What the ring stored, not what the writer brought: every reader gets the same time.
        let entry = Entry::new(seq, bytes, level).with_extras(ring.extras_of(seq));
        match slot.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => slot.count_drop(drops),
            Err(TrySendError::Disconnected(_)) => {
                slot.gone = true;
                disconnected = true;
            }
        }
    }
    if disconnected {
        state.subscribers.retain(|slot| !slot.gone);
        state.rewatch();
    }
}

impl Slot {
    #[inline]
    fn count_drop(&self, drops: &mut u64) {
        // A load and a store rather than `fetch_add`: only writers holding the lock change the
        // counter, and a locked read-modify-write per stalled subscriber per entry is measurable.
        let dropped = self.dropped.load(Ordering::Relaxed) + 1;
        self.dropped.store(dropped, Ordering::Release);
        *drops += 1;
    }
}

impl State {
    /// Works out `watched` again, after a subscriber or a publisher came or went.
    fn rewatch(&mut self) {
        self.watched = !self.subscribers.is_empty() || self.pressure_watchers > 0;
    }

    /// Whether a nudge may go out now (this eviction round has had none): at most one per
    /// [`NUDGE_GAP`]; one put off by the gap is asked for again by the round's next write.
    #[cold]
    fn nudge_due(&mut self) -> bool {
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

    /// Counts an entry at level `meta`, which is at or above the alarm level.
    #[inline]
    fn count_alarm(&mut self, meta: u8) {
        if let Some(count) = self.alarm_counts.get_mut(usize::from(meta)) {
            *count += 1;
        }
    }

    /// Entries written at `least` or above, as counted while some printer wanted them.
    fn alarms_at_or_above(&self, least: u8) -> u64 {
        let from = usize::from(least).min(self.alarm_counts.len());
        self.alarm_counts[from..].iter().sum()
    }

    /// Sets the writers' alarm level to the least one any printer wants.
    fn set_alarm_level(&mut self, alarms: &[Alarm]) {
        self.alarm = alarms
            .iter()
            .map(|alarm| alarm.least)
            .min()
            .unwrap_or(u8::MAX);
    }
}

fn join((a, b): (&[u8], &[u8])) -> Bytes {
    if b.is_empty() {
        return Bytes::copy_from_slice(a);
    }
    let mut joined = BytesMut::with_capacity(a.len() + b.len());
    joined.extend_from_slice(a);
    joined.extend_from_slice(b);
    joined.freeze()
}

/// A number unlikely to be drawn again, here or in another process: the standard library's
/// randomly keyed hasher over the time, the process id and a counter.
fn random_instance() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    static DRAWN: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    hasher.write_u64(DRAWN.fetch_add(1, Ordering::Relaxed));
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "publish")]
    #[test]
    fn a_publisher_is_nudged_whatever_subscribers_come_and_go() {
        let shared = Shared::new(1000, 4, None);
        let (id, nudges) = shared.watch_pressure();
        assert!(shared.state.read().watched);
        let (_, subscribed) = shared.subscribe(4, None);
        shared.unsubscribe(subscribed.id);
        // Subscribers are all gone; the publisher still watches.
        assert!(shared.state.read().watched);
        // Three quarters full: a nudge.
        for _ in 0..80 {
            shared.append_in(&[b'a'; 10], Tags::default(), None);
        }
        assert_eq!(nudges.try_recv(), Ok(()));
        shared.unwatch_pressure(id);
        assert!(!shared.state.read().watched);
    }

    #[test]
    fn a_read_within_a_wait_does_not_wait_for_a_lock_held_forever() {
        let shared = Shared::new(1000, 4, None);
        shared.append_in(b"x\n", Tags::default(), None);
        let ask = Ask::all_from(0);
        // As if the panicking thread held the write lock: the read gives up instead of waiting.
        let held = shared.state.write();
        assert!(shared
            .try_read_within(ask, Duration::from_millis(10))
            .is_none());
        drop(held);
        // A read lock held by this thread does not stop it.
        let read = shared.state.read();
        let batch = shared.try_read_within(ask, Duration::from_millis(10));
        assert_eq!(batch.map(|batch| batch.taken()), Some(1));
        drop(read);
    }
}
