use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ring::MAX_CAPACITY;
#[cfg(doc)]
use crate::Entry;
use crate::LogBuffer;

/// Configures a [`LogBuffer`] before it is built.
///
/// # Default values
///
/// | setting | default | constant |
/// |---|---|---|
/// | [`capacity`](Builder::capacity) | 16 KiB | [`Builder::DEFAULT_CAPACITY`] (= [`LogBuffer::DEFAULT_CAPACITY`]) |
/// | [`subscriber_capacity`](Builder::subscriber_capacity) | 64 entries | [`Builder::DEFAULT_SUBSCRIBER_CAPACITY`] |
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::builder()
///     .capacity(1 << 20)
///     .subscriber_capacity(1024)
///     .build();
/// assert_eq!(buf.capacity(), 1 << 20);
/// assert_eq!(buf.events().capacity(), 1024);
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    capacity: usize,
    subscriber_capacity: usize,
    /// Where entries' times come from; `None`: entries have no time.
    clock: Option<Clock>,
}

/// A clock for [`Builder::clock`]: returns the time since the Unix epoch, now.
///
/// A plain function (a closure that captures nothing coerces to one), called once per entry.
/// A clock that counts from elsewhere (`quanta::Instant`, a monotonic clock) must add its offset
/// to the Unix epoch itself, from a `static` set once.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let clock: memtail::Clock = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
/// assert!(clock() > Duration::from_secs(1_700_000_000));
/// ```
pub type Clock = fn() -> Duration;

/// [`Builder::timestamps`]'s clock: `SystemTime::now`.
pub(crate) fn system_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Builder {
    /// The ring's capacity in bytes when none is set: 16 KiB.
    pub const DEFAULT_CAPACITY: usize = 16 * 1024;

    /// How many entries each subscription's channel holds when no other size is set.
    pub const DEFAULT_SUBSCRIBER_CAPACITY: usize = 64;

    /// A builder with the default values.
    pub fn new() -> Builder {
        Builder {
            capacity: Builder::DEFAULT_CAPACITY,
            subscriber_capacity: Builder::DEFAULT_SUBSCRIBER_CAPACITY,
            clock: None,
        }
    }

    /// The most bytes the ring retains. Any size from 1 byte up is honoured exactly; memory for it
    /// is allocated as entries arrive, never more than `bytes`.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0, or larger than 2^56 - 1 (64 PiB; `isize::MAX` on 32-bit targets): no
    /// process can address that much.
    ///
    /// ```should_panic
    /// let _ = memtail::LogBuffer::builder().capacity(0);
    /// ```
    #[track_caller]
    pub fn capacity(mut self, bytes: usize) -> Builder {
        check_capacity(bytes);
        self.capacity = bytes;
        self
    }

    /// How many entries each subscription's channel holds. When a subscriber falls this far
    /// behind, further entries are dropped for it (and counted) until it catches up.
    ///
    /// A subscription holds at most this many entries, each at most the ring's capacity, so its
    /// memory is bounded by `entries × capacity` bytes. Its channel is allocated whole when the
    /// subscription is made, 112 bytes a slot on 64-bit targets (an [`Entry`] and the channel's
    /// stamp): 7 KiB for the default 64, 112 MB for a million.
    ///
    /// Async subscriptions (feature `tokio`) have no channel: they read the ring by position,
    /// and this is the most entries they take in one read.
    ///
    /// # Panics
    ///
    /// If `entries` is 0: a subscription that can hold nothing would drop everything.
    ///
    /// ```should_panic
    /// let _ = memtail::LogBuffer::builder().subscriber_capacity(0);
    /// ```
    #[track_caller]
    pub fn subscriber_capacity(mut self, entries: usize) -> Builder {
        check_subscriber_capacity(entries);
        self.subscriber_capacity = entries;
        self
    }

    /// Whether each entry records the wall-clock time it was appended ([`Entry::time`]), so that
    /// [`LogBuffer::since_time`] and HTTP's `?last=5m` can find "the last five minutes". (Entries
    /// from memtail's tracing layer and logger, and panic entries, have a time whatever this
    /// says; this is for the others.) Off by default: reading the clock (`SystemTime::now`, 20 ns or so through the vDSO) costs more
    /// than the rest of a write (about three times, measured), and the buffer keeps 8 more
    /// bytes per retained entry. [`clock`](Builder::clock) takes a cheaper clock; of the two, the
    /// last call wins (`timestamps(false)` turns times off whatever the clock).
    /// `cargo bench --bench write` measures it beside the alternatives (README, "Performance").
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::builder().timestamps(true).build();
    /// buf.append(b"stamped\n");
    /// let appended = buf.entries()[0].time().unwrap();
    /// assert!(appended.elapsed().unwrap_or_default() < std::time::Duration::from_secs(60));
    /// ```
    ///
    /// [`Entry::time`]: crate::Entry::time
    pub fn timestamps(mut self, on: bool) -> Builder {
        self.clock = on.then_some(system_clock as Clock);
        self
    }

    /// Records times ([`timestamps`](Builder::timestamps)) read from `now` instead of
    /// `SystemTime::now`: a cheaper clock, for a log that wants a time in every entry at less
    /// than a precise clock read costs. `now` returns the time since the Unix epoch; it is called
    /// once per entry, before the buffer's lock is taken, and should be quick and never panic.
    ///
    /// Two cheaper clocks are measured in `cargo bench --bench write` (README, "Performance"):
    /// Linux's `CLOCK_REALTIME_COARSE` (through `rustix` or `libc`), about 9 ns a read at the
    /// kernel tick's resolution (4 ms here), and `quanta`'s recent time, an atomic load kept
    /// fresh by a thread of `quanta`'s (which counts from an arbitrary point: add the Unix time
    /// of a start, as [`Clock`] says). `benches/write.rs` has both.
    ///
    /// A time is never earlier than the entry before's, whatever the clock does: a clock that
    /// jumps ahead and back holds every entry's time at the jump until it catches up, and
    /// [`LogBuffer::since_time`](crate::LogBuffer::since_time) finds them all there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// // A clock that advances a second at every read, for the example.
    /// fn ticking() -> Duration {
    ///     use std::sync::atomic::{AtomicU64, Ordering};
    ///     static SECONDS: AtomicU64 = AtomicU64::new(1_700_000_000);
    ///     Duration::from_secs(SECONDS.fetch_add(1, Ordering::Relaxed))
    /// }
    ///
    /// let buf = memtail::LogBuffer::builder().clock(ticking).build();
    /// buf.append(b"first\n");
    /// buf.append(b"second\n");
    /// let times: Vec<_> = buf.entries().iter().map(|e| e.time().unwrap()).collect();
    /// assert_eq!(times[0], UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// assert_eq!(times[1].duration_since(times[0]).unwrap(), Duration::from_secs(1));
    /// ```
    pub fn clock(mut self, now: Clock) -> Builder {
        self.clock = Some(now);
        self
    }

    /// Builds the buffer.
    pub fn build(self) -> LogBuffer {
        LogBuffer::from_parts(self.capacity, self.subscriber_capacity, self.clock)
    }
}

#[track_caller]
pub(crate) fn check_capacity(bytes: usize) {
    assert!(bytes > 0, "memtail: a capacity must be at least 1 byte");
    assert!(
        bytes <= MAX_CAPACITY,
        "memtail: a capacity of {bytes} bytes cannot be addressed (the largest is {MAX_CAPACITY})"
    );
}

#[track_caller]
pub(crate) fn check_subscriber_capacity(entries: usize) {
    assert!(
        entries > 0,
        "memtail: a subscriber capacity must be at least 1 entry"
    );
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.capacity)
            .field("subscriber_capacity", &self.subscriber_capacity)
            .field("timestamps", &self.clock.is_some())
            .finish()
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    #[test]
    fn a_subscription_slot_is_as_large_as_the_docs_say() {
        // `subscriber_capacity`'s docs: an entry and the channel's 8-byte stamp, 112 bytes.
        assert_eq!(std::mem::size_of::<crate::Entry>() + 8, 112);
    }
}
