use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Sender, TrySendError};
use parking_lot::RwLock;

use crate::builder::{check_subscriber_capacity, Clock};
#[cfg(feature = "tokio")]
use crate::follower::Waiters;
use crate::ring::{Ring, Tags};
use crate::{Builder, Entry, Level, Replay, Stats, Subscription};

/// The in-memory log: a bounded ring of recent entries that also hands every new entry to its
/// subscribers.
///
/// `LogBuffer` is a cheap handle (an `Arc` inside): clone it into every thread and writer that
/// needs it. It implements [`std::io::Write`] (for `LogBuffer` and `&LogBuffer`), where each
/// `write` call and each `write_fmt` (so each `writeln!`) is one entry, and with the `tracing`
/// feature it is a `tracing_subscriber` writer where each event is one entry.
///
/// The ring keeps at most [`capacity`](LogBuffer::capacity) bytes. When an entry does not fit, the
/// oldest entries are evicted whole until at most half the capacity remains (less if the new entry
/// needs more room), so what is retained always starts at an entry boundary. An entry longer than
/// the capacity keeps its first `capacity` bytes; the rest is cut and counted in [`Stats`].
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use memtail::LogBuffer;
///
/// let mut buf = LogBuffer::with_capacity(64 * 1024);
/// let live = buf.events();
///
/// writeln!(buf, "listening on {}", 8080)?;
/// writeln!(buf, "ready")?;
///
/// assert_eq!(&buf.snapshot()[..], b"listening on 8080\nready\n");
/// assert_eq!(&live.recv()?[..], b"listening on 8080\n");
/// assert_eq!(buf.since(1).entries().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogBuffer {
    shared: Arc<Shared>,
}

/// What every handle to one buffer shares. Subscriptions hold it weakly, to unsubscribe; followers
/// hold it strongly, to read what the ring retains even after the last handle is gone.
pub(crate) struct Shared {
    pub(crate) state: RwLock<State>,
    /// Where entries' times come from, if they record one.
    clock: Option<Clock>,
    pub(crate) capacity: usize,
    subscriber_capacity: usize,
    /// `LogBuffer` handles alive. The last one to go closes the buffer.
    handles: AtomicUsize,
    /// Followers (positions in the ring) alive now.
    pub(crate) followers: AtomicU64,
    /// Entries that followers, past and present, lost because the ring evicted them first.
    pub(crate) follower_missed: AtomicU64,
    /// Async followers waiting for the next entry.
    #[cfg(feature = "tokio")]
    pub(crate) waiters: Waiters,
    /// How full the ring is when the pressure watchers are nudged: three quarters.
    pub(crate) pressure_mark: usize,
    /// Where to nudge the pressure watchers, by id.
    pub(crate) pressure: parking_lot::Mutex<Vec<(u64, Sender<()>)>>,
    /// Ids for pressure watchers and error printers.
    pub(crate) next_pressure_id: AtomicU64,
    /// Where to wake the [`on_error`](LogBuffer::on_error) printers; see `crate::context`.
    pub(crate) alarms: parking_lot::Mutex<Vec<crate::context::Alarm>>,
    /// A random number that tells this buffer from another, such as the one of a restarted
    /// process: resume positions handed out over HTTP carry it.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) instance: u32,
}

pub(crate) struct State {
    pub(crate) ring: Ring,
    subscribers: Vec<Slot>,
    next_subscriber_id: u64,
    pub(crate) subscriber_drops: u64,
    /// Every handle is gone: nothing more will be written.
    pub(crate) closed: bool,
    /// Followers that read at intervals (publishers) and want a nudge before the ring evicts
    /// what they have not read; see `Shared::watch_pressure`.
    pressure_watchers: usize,
    /// The eviction round in which they were last nudged, and when.
    pub(crate) pressure_round: u64,
    pub(crate) pressure_at: Option<Instant>,
    /// Writes left before the clock is read again for a nudge put off by the gap.
    pub(crate) pressure_skip: u8,
    /// The eviction round those writes belong to: a new round asks at once.
    pub(crate) pressure_skip_round: u64,
    /// The least severe level (encoded) that an [`on_error`](LogBuffer::on_error) printer
    /// waits for, `u8::MAX` when none does: an entry at it or above wakes them.
    pub(crate) alarm: u8,
    /// Entries written at each level (encoded) that was at or above `alarm` then: a printer
    /// tells from them how many errors the ring evicted before it could read them.
    pub(crate) alarm_counts: [u64; Level::ENCODED],
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

impl LogBuffer {
    /// The ring's capacity in bytes for [`LogBuffer::new`]: 16 KiB.
    pub const DEFAULT_CAPACITY: usize = Builder::DEFAULT_CAPACITY;

    /// A buffer of [`LogBuffer::DEFAULT_CAPACITY`] bytes whose subscriptions hold
    /// [`Builder::DEFAULT_SUBSCRIBER_CAPACITY`] entries.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// assert_eq!(buf.capacity(), 16 * 1024);
    /// assert!(buf.is_empty());
    /// ```
    pub fn new() -> LogBuffer {
        Builder::new().build()
    }

    /// A buffer that retains at most `bytes` bytes. Memory is allocated as entries arrive.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0, or larger than 2^56 - 1 (64 PiB; `isize::MAX` on 32-bit targets): no
    /// process can address that much.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::with_capacity(300);
    /// assert_eq!(buf.capacity(), 300);
    /// ```
    ///
    /// ```should_panic
    /// let _ = memtail::LogBuffer::with_capacity(0);
    /// ```
    #[track_caller]
    pub fn with_capacity(bytes: usize) -> LogBuffer {
        // `Builder::capacity` checks `bytes`, and reports the caller's location.
        Builder::new().capacity(bytes).build()
    }

    /// A [`Builder`] to set the capacity and the subscriptions' channel size.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::builder().subscriber_capacity(4096).build();
    /// assert_eq!(buf.subscriber_capacity(), 4096);
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(
        capacity: usize,
        subscriber_capacity: usize,
        clock: Option<Clock>,
    ) -> LogBuffer {
        let mut ring = Ring::new(capacity);
        if clock.is_some() {
            ring.record_times();
        }
        LogBuffer {
            shared: Arc::new(Shared {
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
                #[cfg(feature = "tokio")]
                waiters: Waiters::new(),
                pressure_mark: capacity - capacity / 4,
                pressure: parking_lot::Mutex::new(Vec::new()),
                next_pressure_id: AtomicU64::new(0),
                alarms: parking_lot::Mutex::new(Vec::new()),
            }),
        }
    }

    /// The most bytes the ring retains.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// How many entries each new subscription's channel holds.
    pub fn subscriber_capacity(&self) -> usize {
        self.shared.subscriber_capacity
    }

    /// How many bytes the ring retains now.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"12345");
    /// assert_eq!(buf.len(), 5);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.state.read().ring.len()
    }

    /// Whether the ring retains nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one entry and returns its sequence number, or `None` for an empty `entry`, which
    /// makes no entry. This is what every `write` does.
    ///
    /// An entry longer than the capacity keeps its first [`capacity`](LogBuffer::capacity) bytes;
    /// the cut is counted in [`Stats::entries_cut`] and [`Stats::bytes_cut`]. The writer never
    /// waits for a subscriber.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// assert_eq!(buf.append(b"first\n"), Some(0));
    /// assert_eq!(buf.append(b""), None);
    /// assert_eq!(buf.append(b"second\n"), Some(1));
    /// ```
    #[inline]
    pub fn append(&self, entry: &[u8]) -> Option<u64> {
        self.append_with_level(entry, None)
    }

    /// [`append`](LogBuffer::append) for an entry of a known severity: [`Entry::level`] says
    /// `level`, and the level filters (`?level=` over HTTP, [`on_error`](LogBuffer::on_error),
    /// a syslog severity) see it. The `tracing` and `log` integrations append this way.
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::Level;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// buf.append_level(b"disk full\n", Level::Error);
    /// assert_eq!(buf.entries()[0].level(), Some(Level::Error));
    /// ```
    #[inline]
    pub fn append_level(&self, entry: &[u8], level: Level) -> Option<u64> {
        self.append_with_level(entry, Some(level))
    }

    /// [`append`](LogBuffer::append) for an entry that came from a `tracing` event of `level`.
    #[inline]
    pub(crate) fn append_with_level(&self, entry: &[u8], level: Option<Level>) -> Option<u64> {
        self.append_tagged(entry, level, 0)
    }

    /// [`append`](LogBuffer::append) with a level and an interned target (0: none), and the
    /// time of the buffer's clock, if it records times.
    // Inlined into `io::Write` and `append` (across crates, so it must say so): a call with its
    // prologue and epilogue was a sixth of a write's instructions.
    #[inline]
    pub(crate) fn append_tagged(
        &self,
        entry: &[u8],
        level: Option<Level>,
        target: u16,
    ) -> Option<u64> {
        // The clock is read before the lock is taken, and only by a buffer that records times.
        let time = self.shared.clock_now();
        self.append_tags(
            entry,
            Tags {
                level: Level::encode(level),
                time,
                target,
            },
        )
    }

    /// The time an entry made now gets: the buffer's clock, or `SystemTime::now` for a buffer
    /// that records no times (an entry from memtail's tracing layer or logger has one anyway).
    #[cfg(any(feature = "tracing", feature = "log"))]
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.shared.now()
    }

    /// Appends `entry` with what it carries.
    #[inline]
    pub(crate) fn append_tags(&self, entry: &[u8], tags: Tags) -> Option<u64> {
        self.shared.append_in(entry, tags, None)
    }

    /// [`Shared::append_in`].
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn append_in(
        &self,
        entry: &[u8],
        tags: Tags,
        span: Option<InSpan<'_>>,
    ) -> Option<u64> {
        self.shared.append_in(entry, tags, span)
    }

    /// The retained bytes, oldest first. They always start at an entry boundary: never half a line,
    /// half a UTF-8 character or half an escape sequence (unless an entry was itself cut to fit).
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::with_capacity(10);
    /// buf.append(b"one\n");
    /// buf.append(b"two\n");
    /// buf.append(b"three\n"); // does not fit: "one\n" is evicted
    /// assert_eq!(buf.snapshot(), "two\nthree\n");
    /// ```
    pub fn snapshot(&self) -> Bytes {
        let state = self.shared.state.read();
        copy_out(&state.ring, 0..state.ring.len())
    }

    /// The retained entries, oldest first.
    ///
    /// The entries share one copy of the retained bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"a");
    /// buf.append(b"b");
    /// let entries = buf.entries();
    /// assert_eq!(entries.len(), 2);
    /// assert_eq!((entries[1].seq(), &entries[1][..]), (1, &b"b"[..]));
    /// ```
    pub fn entries(&self) -> Vec<Entry> {
        collect_entries(&self.shared.state.read().ring, 0)
    }

    /// The retained entries with sequence number `seq` or later, and how many entries from `seq` on
    /// were evicted before this call could see them.
    ///
    /// Asking for a sequence number that has not been written yet gives no entries and misses
    /// nothing. To read everything exactly once, pass the [`Replay::next_seq`] of the previous
    /// call.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// for line in ["a", "b", "c"] {
    ///     buf.append(line.as_bytes());
    /// }
    /// let replay = buf.since(1);
    /// assert_eq!(replay.entries().len(), 2);
    /// assert_eq!(replay.missed(), 0);
    /// assert_eq!(replay.next_seq(), 3);
    /// assert!(buf.since(99).entries().is_empty());
    /// ```
    pub fn since(&self, seq: u64) -> Replay {
        replay(&self.shared.state.read().ring, seq)
    }

    /// The retained entries appended at `time` or later (by the clock when each was appended),
    /// with the next sequence number: "the last five minutes" is
    /// `since_time(SystemTime::now() - Duration::from_secs(300))`. `None` for a buffer that
    /// does not record times ([`Builder::timestamps`]).
    ///
    /// An entry's time is never earlier than the one before it (a clock that steps back, or
    /// writers that read it in one order and take the lock in the other, give the later entry
    /// the earlier one's time), so the answer is every entry from the first at or after `time`.
    /// `missed` is 0: what was evicted before is not asked for.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    ///
    /// let buf = memtail::LogBuffer::builder().timestamps(true).build();
    /// buf.append(b"old\n");
    /// buf.append(b"new\n");
    /// let last_minute = SystemTime::now() - Duration::from_secs(60);
    /// assert_eq!(buf.since_time(last_minute).unwrap().entries().len(), 2);
    /// let appended = buf.entries()[1].time().unwrap();
    /// assert_eq!(&buf.since_time(appended).unwrap().entries().last().unwrap()[..], b"new\n");
    /// let later = appended + Duration::from_secs(1);
    /// assert!(buf.since_time(later).unwrap().entries().is_empty());
    /// assert!(memtail::LogBuffer::new().since_time(last_minute).is_none());
    /// ```
    pub fn since_time(&self, time: SystemTime) -> Option<Replay> {
        let state = self.shared.state.read();
        let seq = state.ring.first_at_or_after(unix_nanos(time))?;
        Some(replay(&state.ring, seq))
    }

    /// The sequence number of the first retained entry appended at `time` or later (`next_seq`
    /// when none was); `None` without timestamps.
    #[cfg(feature = "http")]
    pub(crate) fn seq_since_time(&self, time: SystemTime) -> Option<u64> {
        let state = self.shared.state.read();
        state.ring.first_at_or_after(unix_nanos(time))
    }

    /// The retained bytes of the entries from `seq` on, in one copy, with what
    /// [`since`](LogBuffer::since) would say of them: the next sequence number, and how many
    /// entries from `seq` on were evicted. `None` when the ring records times: its entries are
    /// shown with them.
    #[cfg(feature = "http")]
    pub(crate) fn bytes_since(&self, seq: u64) -> Option<(Bytes, u64, u64)> {
        let state = self.shared.state.read();
        let ring = &state.ring;
        if ring.records_times() {
            return None;
        }
        let bytes = match ring.ranges_from(seq).next() {
            Some((_, range, _)) => copy_out(ring, range.start..ring.len()),
            None => Bytes::new(),
        };
        Some((bytes, ring.next_seq(), ring.first_seq().saturating_sub(seq)))
    }

    /// A subscription to every entry written from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"before");
    /// let sub = buf.events();
    /// buf.append(b"after");
    /// assert_eq!(&sub.recv().unwrap()[..], b"after");
    /// ```
    pub fn events(&self) -> Subscription {
        self.events_with_capacity(self.shared.subscriber_capacity)
    }

    /// [`events`](LogBuffer::events) with a channel of `entries` instead of the buffer's
    /// subscriber capacity: for a follower that drains in bursts.
    ///
    /// # Panics
    ///
    /// If `entries` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let sub = buf.events_with_capacity(10_000);
    /// assert_eq!(sub.capacity(), 10_000);
    /// ```
    #[track_caller]
    pub fn events_with_capacity(&self, entries: usize) -> Subscription {
        check_subscriber_capacity(entries);
        let mut state = self.shared.state.write();
        self.subscribe(&mut state, entries)
    }

    /// The retained entries and a subscription to everything after them, taken under one lock:
    /// the backlog followed by the live entries has no gap and no duplicate.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"old");
    /// let (backlog, live) = buf.tail();
    /// buf.append(b"new");
    /// assert_eq!(backlog[0].seq(), 0);
    /// assert_eq!(live.recv().unwrap().seq(), 1);
    /// ```
    pub fn tail(&self) -> (Vec<Entry>, Subscription) {
        let (replay, sub) = self.tail_since(0);
        (replay.into_entries(), sub)
    }

    /// [`since(seq)`](LogBuffer::since) and a subscription to everything after it, taken under one
    /// lock: how a reader that already has the entries before `seq` resumes without a gap or a
    /// duplicate (an SSE client's `Last-Event-ID`, for example). The subscription receives every
    /// entry from [`Replay::next_seq`] on, even when `seq` was still in the future.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// for line in ["a", "b", "c"] {
    ///     buf.append(line.as_bytes());
    /// }
    /// // The reader has seen entries 0 and 1.
    /// let (replay, live) = buf.tail_since(2);
    /// buf.append(b"d");
    /// assert_eq!(replay.entries()[0].seq(), 2);
    /// assert_eq!(live.recv().unwrap().seq(), 3);
    /// ```
    pub fn tail_since(&self, seq: u64) -> (Replay, Subscription) {
        let mut state = self.shared.state.write();
        let replay = replay(&state.ring, seq);
        let capacity = self.shared.subscriber_capacity;
        (replay, self.subscribe(&mut state, capacity))
    }

    /// The buffer's counters, read together.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::builder().capacity(10).subscriber_capacity(1).build();
    /// let sub = buf.events();
    /// for line in ["aaa", "bbb", "ccc", "ddd"] {
    ///     buf.append(line.as_bytes());
    /// }
    /// let stats = buf.stats();
    /// assert_eq!(stats.entries_written, 4);
    /// assert_eq!(stats.entries_evicted, 2);
    /// assert_eq!(stats.subscribers, 1);
    /// assert_eq!(stats.subscriber_drops, 3);
    /// assert_eq!(sub.dropped(), 3);
    /// ```
    pub fn stats(&self) -> Stats {
        let state = self.shared.state.read();
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
            followers: self.shared.followers.load(Ordering::Relaxed),
            follower_missed: self.shared.follower_missed.load(Ordering::Relaxed),
        }
    }

    fn subscribe(&self, state: &mut State, capacity: usize) -> Subscription {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let id = state.next_subscriber_id;
        state.next_subscriber_id += 1;
        state.subscribers.push(Slot {
            id,
            tx,
            dropped: Arc::clone(&dropped),
            gone: false,
        });
        state.rewatch();
        Subscription::new(rx, dropped, id, Arc::downgrade(&self.shared))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
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

impl Shared {
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

    /// Whether every handle is gone (nothing more will be written but by a panic hook).
    pub(crate) fn is_closed(&self) -> bool {
        self.handles.load(Ordering::Acquire) == 0
    }

    /// The buffer's clock now, if it records times; 0 (no time) if not. (A clock at the epoch
    /// gives 1 ns past it, so that 0 stays "no time".)
    #[inline]
    pub(crate) fn clock_now(&self) -> u64 {
        self.clock.map_or(0, |now| duration_nanos(now()).max(1))
    }

    /// The time an entry made now gets: the buffer's clock, or `SystemTime::now`.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        duration_nanos(self.clock.unwrap_or(crate::builder::system_clock)()).max(1)
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
        // the lock, whether one waits (see `Waiters` for why that load cannot miss one).
        #[cfg(feature = "tokio")]
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
        #[cfg(feature = "tokio")]
        if wake {
            self.waiters.wake_all();
        }
        Some(seq)
    }

    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut state = self.state.write();
        state.subscribers.retain(|slot| slot.id != id);
        state.rewatch();
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
        #[cfg(feature = "tokio")]
        self.waiters.wake_all();
    }
}

impl Clone for LogBuffer {
    fn clone(&self) -> LogBuffer {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        LogBuffer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for LogBuffer {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

/// The span an entry was made in: its id and its root's (memtail's own), and the counter of
/// its tree's entries, which numbers it under the lock (so that the entries of a tree are
/// numbered in the order they enter the ring).
#[derive(Clone, Copy)]
pub(crate) struct InSpan<'a> {
    pub(crate) ids: [u64; 2],
    pub(crate) ordinal: &'a AtomicU64,
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

impl State {
    /// A publisher now watches for pressure ([`Shared::watch_pressure`]).
    #[cfg(feature = "publish")]
    pub(crate) fn add_pressure_watcher(&mut self) {
        self.pressure_watchers += 1;
        self.rewatch();
    }

    /// A publisher no longer watches for pressure.
    #[cfg(feature = "publish")]
    pub(crate) fn remove_pressure_watcher(&mut self) {
        self.pressure_watchers -= 1;
        self.rewatch();
    }

    /// Works out `watched` again, after a subscriber or a publisher came or went.
    fn rewatch(&mut self) {
        self.watched = !self.subscribers.is_empty() || self.pressure_watchers > 0;
    }
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

/// The retained entries from `from` on, sharing one copy of their bytes.
fn collect_entries(ring: &Ring, from: u64) -> Vec<Entry> {
    let mut ranges = ring.ranges_from(from).peekable();
    let Some(offset) = ranges.peek().map(|(_, range, _)| range.start) else {
        return Vec::new();
    };
    let bytes = copy_out(ring, offset..ring.len());
    let mut entries = Vec::with_capacity(ring.entry_count());
    entries.extend(ranges.map(|(seq, range, meta)| {
        let bytes = bytes.slice(range.start - offset..range.end - offset);
        Entry::new(seq, bytes, Level::decode(meta)).with_extras(ring.extras_of(seq))
    }));
    entries
}

/// One copy of a logical range of the ring.
pub(crate) fn copy_out(ring: &Ring, range: std::ops::Range<usize>) -> Bytes {
    join(ring.slices(range))
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

fn replay(ring: &Ring, seq: u64) -> Replay {
    let first = ring.first_seq();
    Replay::new(
        collect_entries(ring, seq),
        first.saturating_sub(seq),
        ring.next_seq(),
    )
}

impl Default for LogBuffer {
    fn default() -> LogBuffer {
        LogBuffer::new()
    }
}

impl fmt::Debug for LogBuffer {
    /// A summary: capacity, bytes retained, next sequence number. Never the contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.read();
        f.debug_struct("LogBuffer")
            .field("capacity", &self.shared.capacity)
            .field("len", &state.ring.len())
            .field("next_seq", &state.ring.next_seq())
            .finish()
    }
}

/// The process-wide buffer, with the default capacity, created on first use.
///
/// Handy when a library and its host want one shared log without passing a handle around. It lives
/// as long as the process, so its subscriptions never see a disconnection.
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// writeln!(memtail::global(), "from anywhere")?;
/// assert!(memtail::global().snapshot().ends_with(b"from anywhere\n"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn global() -> &'static LogBuffer {
    GLOBAL.get_or_init(LogBuffer::new)
}

static GLOBAL: OnceLock<LogBuffer> = OnceLock::new();

/// Makes the process-wide buffer ([`global`]) from `builder` (a larger capacity, say), before
/// anything used it.
///
/// # Errors
///
/// [`AlreadyInitialized`] when the global buffer exists already (made by an earlier call, or by
/// a first use of [`global`]): it keeps the buffer it has.
///
/// # Examples
///
/// ```
/// let log = memtail::init_global(memtail::LogBuffer::builder().capacity(1 << 20)).unwrap();
/// assert_eq!(log.capacity(), 1 << 20);
/// assert!(std::ptr::eq(log, memtail::global()));
/// assert!(memtail::init_global(memtail::LogBuffer::builder()).is_err());
/// ```
pub fn init_global(builder: Builder) -> Result<&'static LogBuffer, AlreadyInitialized> {
    let mut made = false;
    let buffer = GLOBAL.get_or_init(|| {
        made = true;
        builder.build()
    });
    if made {
        Ok(buffer)
    } else {
        Err(AlreadyInitialized)
    }
}

/// The error of [`init_global`] when the global buffer exists already.
///
/// # Examples
///
/// ```
/// let first = memtail::global(); // made with the defaults on first use
/// let error = memtail::init_global(memtail::LogBuffer::builder().capacity(1 << 20)).unwrap_err();
/// assert_eq!(error, memtail::AlreadyInitialized);
/// assert_eq!(memtail::global().capacity(), first.capacity()); // unchanged
/// assert!(error.to_string().contains("made already"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlreadyInitialized;

impl fmt::Display for AlreadyInitialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the global memtail buffer was made already (by init_global or a first use of global)",
        )
    }
}

impl std::error::Error for AlreadyInitialized {}

/// Nanoseconds since the Unix epoch (0 for a time before it, which no entry has).
pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, duration_nanos)
}

/// A time since the Unix epoch in nanoseconds, as the ring keeps it (until the year 2554).
#[inline]
fn duration_nanos(since: Duration) -> u64 {
    since
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(since.subsec_nanos()))
}

/// The time `unix_nanos` gave.
pub(crate) fn from_unix_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

#[cfg(all(test, feature = "publish"))]
mod tests {
    use super::*;

    #[test]
    fn a_publisher_is_nudged_whatever_subscribers_come_and_go() {
        let buf = LogBuffer::with_capacity(1000);
        let shared = buf.shared();
        let (id, nudges) = shared.watch_pressure();
        assert!(shared.state.read().watched);
        let subscription = buf.events();
        drop(subscription);
        // Subscribers are all gone; the publisher still watches.
        assert!(shared.state.read().watched);
        // Three quarters full: a nudge.
        for _ in 0..80 {
            buf.append(&[b'a'; 10]);
        }
        assert_eq!(nudges.try_recv(), Ok(()));
        shared.unwatch_pressure(id);
        assert!(!shared.state.read().watched);
    }
}
