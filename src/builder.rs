use std::fmt;
use std::sync::OnceLock;

use crate::core::{check_capacity, check_subscriber_capacity};
use crate::time::{system_clock, Clock};
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
}

impl Default for LogBuffer {
    fn default() -> LogBuffer {
        LogBuffer::new()
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
