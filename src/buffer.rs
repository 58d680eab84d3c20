use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

#[cfg(feature = "tracing")]
use crate::core::InSpan;
use crate::core::{Ask, Batch, Origin, Shared};
use crate::ring::Tags;
use crate::time::{unix_nanos, Clock};
use crate::{Entry, Level, Replay, Stats, Subscription};

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

impl LogBuffer {
    /// A buffer of `capacity` bytes whose subscriptions hold `subscriber_capacity` entries,
    /// with times from `clock`, if given.
    pub(crate) fn from_parts(
        capacity: usize,
        subscriber_capacity: usize,
        clock: Option<Clock>,
    ) -> LogBuffer {
        LogBuffer {
            shared: Arc::new(Shared::new(capacity, subscriber_capacity, clock)),
        }
    }

    /// The most bytes the ring retains.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// How many entries each new subscription's channel holds.
    pub fn subscriber_capacity(&self) -> usize {
        self.shared.subscriber_capacity()
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
        self.shared.len_and_next().0
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
        let ask = Ask {
            index: false,
            ..Ask::all_from(0)
        };
        self.shared.read(ask).bytes().clone()
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
        self.shared.read(Ask::all_from(0)).entries().collect()
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
        self.shared.read(Ask::all_from(seq)).into_replay()
    }

    /// The retained entries appended at `time` or later (by the clock when each was appended),
    /// with the next sequence number: "the last five minutes" is
    /// `since_time(SystemTime::now() - Duration::from_secs(300))`. `None` for a buffer that
    /// does not record times ([`Builder::timestamps`](crate::Builder::timestamps)).
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
        let ask = Ask {
            from: Origin::Time(unix_nanos(time)),
            ..Ask::all_from(0)
        };
        let batch = self.shared.read(ask);
        batch.records_times().then(|| batch.into_replay())
    }

    /// The sequence number of the first retained entry appended at `time` or later (`next_seq`
    /// when none was); `None` without timestamps.
    #[cfg(feature = "http")]
    pub(crate) fn seq_since_time(&self, time: SystemTime) -> Option<u64> {
        self.shared.seq_at_time(unix_nanos(time))
    }

    /// The retained bytes of the entries from `seq` on, in one copy, with what
    /// [`since`](LogBuffer::since) would say of them: the next sequence number, and how many
    /// entries from `seq` on were evicted. `None` when the ring records times: its entries are
    /// shown with them.
    #[cfg(feature = "http")]
    pub(crate) fn bytes_since(&self, seq: u64) -> Option<(Bytes, u64, u64)> {
        self.shared.bytes_since(seq)
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
        self.subscribe(None).1
    }

    /// The retained entries and a subscription to everything after them, taken under one lock:
    /// the backlog followed by the live entries has no gap and no duplicate.
    ///
    /// The subscription is a channel, as [`events`](LogBuffer::events)' is. For a follower
    /// that loses nothing while the ring holds it, see [`tail_from`](LogBuffer::tail_from).
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
        let (backlog, sub) = self.subscribe(Some(Ask::all_from(0)));
        let backlog = backlog.map_or_else(Vec::new, |batch| batch.entries().collect());
        (backlog, sub)
    }

    /// A subscription with the buffer's subscriber capacity, and the read `backlog` asks for,
    /// taken under one lock.
    fn subscribe(&self, backlog: Option<Ask>) -> (Option<Batch>, Subscription) {
        let (read, new) = self
            .shared
            .subscribe(self.shared.subscriber_capacity(), backlog);
        let sub = Subscription::new(new.rx, new.dropped, new.id, Arc::downgrade(&self.shared));
        (read, sub)
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
        self.shared.stats()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Clone for LogBuffer {
    fn clone(&self) -> LogBuffer {
        self.shared.handle_cloned();
        LogBuffer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for LogBuffer {
    fn drop(&mut self) {
        self.shared.handle_dropped();
    }
}

impl fmt::Debug for LogBuffer {
    /// A summary: capacity, bytes retained, next sequence number. Never the contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (len, next_seq) = self.shared.len_and_next();
        f.debug_struct("LogBuffer")
            .field("capacity", &self.shared.capacity())
            .field("len", &len)
            .field("next_seq", &next_seq)
            .finish()
    }
}
