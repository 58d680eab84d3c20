//! Ship the log elsewhere in batches: μ/log's publishers, with bounded queues, acknowledgements and
//! retries (feature `publish`, on by default; no extra dependency).
//!
//! A log call only appends to the ring. Each publisher is a position in the ring: its thread
//! (`memtail-publish-<name>`) reads the entries written since last time every
//! [`interval`](PublisherBuilder::interval) into its own bounded queue and offers them to
//! [`Publisher::publish`] in batches. The ring is the publisher's inbox: a burst larger than the
//! queue waits there until the queue has been published. A writer does no work for a running
//! publisher, but for one nudge per eviction round (at most one a millisecond): when the ring is
//! three quarters full, the publisher is told to read now rather than at its next interval, so
//! that the next eviction does not drop what it has not read (as long as it keeps up). The publisher acknowledges how many entries from the start of
//! the batch it delivered; the rest stay at the head of the queue and are offered again after a
//! backoff. Formatting (the [`transform`](PublisherBuilder::transform)) happens on that thread too,
//! off the caller's path.
//!
//! What μ/log's users ran into is handled: a failing entry is retried with exponential backoff and
//! jitter, and dropped (and counted) after [`max_attempts`](PublisherBuilder::max_attempts) so one
//! poison entry cannot block the rest; and [`PublisherHandle::stop`] publishes what is queued,
//! flushes and waits for the thread, within a timeout.
//!
//! # Accounting
//!
//! Every entry written while a publisher runs is counted exactly once in its [`PublisherStats`]:
//! `delivered`, `queued` (still waiting), `filtered` (the transform returned `None`), or one of the
//! drop counters: `dropped_upstream` (the ring evicted them before the publisher read them: the
//! publisher fell more than the ring's capacity behind), `dropped_queue_full` (the queue was full
//! while publishing failed: the oldest queued entries), `dropped_after_attempts` (an entry failed
//! `max_attempts` times), `dropped_permanent` (an entry failed in a way no retry can mend, such
//! as a UDP message too large to send: dropped at once, the rest go on) and `dropped_at_stop`
//! (not delivered when `stop`'s timeout ran out).
//!
//! # Memory
//!
//! A publisher holds at most [`queue`](PublisherBuilder::queue) entries, each at most the
//! buffer's capacity, plus one read from the ring (at most 1024 entries and 64 KiB) while it moves
//! them into the queue. Entries it has not read yet are the ring's, not the publisher's.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use memtail::publish::WriterPublisher;
//!
//! let buf = memtail::LogBuffer::new();
//! let publisher = buf
//!     .publisher(WriterPublisher::new(Vec::new()))
//!     .name("example")
//!     .interval(Duration::from_millis(50))
//!     .start();
//!
//! buf.append(b"shipped\n");
//! let stats = publisher.stop(Duration::from_secs(5));
//! assert_eq!(stats.delivered, 1);
//! assert_eq!(stats.dropped(), 0);
//! ```

use std::error::Error;
use std::fmt;
use std::io;

use crate::Entry;

mod builder;
mod dispatcher;
mod relp;
mod syslog;
mod writer;

pub use self::builder::{
    PublisherBuilder, PublisherHandle, PublisherStats, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN,
    DEFAULT_INTERVAL, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BATCH, DEFAULT_QUEUE, DEFAULT_STOP_TIMEOUT,
};
pub use self::syslog::{Facility, Severity, SyslogFormat, SyslogPublisher};
pub use self::writer::{FilePublisher, WriterPublisher};

/// Delivers batches of entries somewhere: a file, a socket, a log service.
///
/// Called on the publisher's own thread, never concurrently. [`publish`](Publisher::publish) returns
/// how many entries from the start of the batch were delivered; the rest are offered again in a
/// later call (after a backoff, if the call failed). A panic in `publish` counts as a failed
/// attempt that delivered nothing.
///
/// # Examples
///
/// A publisher that keeps everything in memory (a test double):
///
/// ```
/// use memtail::publish::{PublishError, Publisher};
/// use memtail::Entry;
///
/// struct Collect(Vec<Vec<u8>>);
///
/// impl Publisher for Collect {
///     fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
///         self.0.extend(batch.iter().map(|entry| entry.to_vec()));
///         Ok(batch.len())
///     }
/// }
/// ```
pub trait Publisher: Send + 'static {
    /// Delivers what it can of `batch` (never empty), oldest first, and returns how many entries
    /// from its start were delivered.
    ///
    /// # Errors
    ///
    /// A [`PublishError`] when delivery failed; [`PublishError::with_delivered`] says how many
    /// entries got through before the failure.
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError>;

    /// Makes what was delivered durable or visible; called after each round of batches and at
    /// stop. Does nothing by default.
    ///
    /// # Errors
    ///
    /// The I/O error, recorded as the publisher's last error.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// How many entries this publisher has sent more than once so far. A transport that
    /// delivers at least once (like [`SyslogPublisher::relp`]) sends again what the destination
    /// had not acknowledged when a connection broke; the destination may have kept the first
    /// copy, so this many entries may be there twice. Read after each call to `publish` into
    /// [`PublisherStats::resent`]. 0 by default.
    fn resent(&self) -> u64 {
        0
    }

    /// How many entries this publisher has cut to fit what its destination takes in one
    /// message (each counted once, however often it was sent). Read after each call to
    /// `publish` into [`PublisherStats::cut`]. 0 by default.
    fn cut(&self) -> u64 {
        0
    }
}

impl<P: Publisher + ?Sized> Publisher for Box<P> {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        (**self).publish(batch)
    }

    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }

    fn resent(&self) -> u64 {
        (**self).resent()
    }

    fn cut(&self) -> u64 {
        (**self).cut()
    }
}

/// Why a [`Publisher`] could not deliver a whole batch, and how much of it got through first.
///
/// # Examples
///
/// ```
/// use std::io;
/// use memtail::publish::PublishError;
///
/// let error = PublishError::from(io::Error::from(io::ErrorKind::ConnectionRefused)).with_delivered(3);
/// assert_eq!(error.delivered(), 3);
/// assert_eq!(error.to_string(), "connection refused (after 3 entries were delivered)");
/// ```
#[derive(Debug)]
pub struct PublishError {
    delivered: usize,
    error: io::Error,
    permanent: bool,
}

/// `EMSGSIZE`: a message larger than the transport can ever carry.
#[cfg(any(target_os = "linux", target_os = "android"))]
const EMSGSIZE: i32 = 90;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
const EMSGSIZE: i32 = 40;
#[cfg(not(unix))]
const EMSGSIZE: i32 = 10040; // WSAEMSGSIZE

impl PublishError {
    /// An error that delivered nothing of the batch. It is [permanent](PublishError::permanent)
    /// when the I/O error says the message is too large for the transport (`EMSGSIZE`), and
    /// worth retrying otherwise.
    pub fn new(error: impl Into<io::Error>) -> PublishError {
        let error = error.into();
        PublishError {
            delivered: 0,
            permanent: error.raw_os_error() == Some(EMSGSIZE),
            error,
        }
    }

    /// Says that a retry cannot help the first entry not delivered (it can never fit, or the
    /// destination refuses it for what it is): the publisher drops that entry at once, counted in
    /// [`PublisherStats::dropped_permanent`], and goes on with the rest without a backoff.
    #[must_use]
    pub fn permanent(mut self) -> PublishError {
        self.permanent = true;
        self
    }

    /// Whether a retry cannot help (see [`permanent`](PublishError::permanent)).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// An error for a message, as `io::Error::other` makes it.
    pub fn msg(message: impl Into<String>) -> PublishError {
        PublishError::new(io::Error::other(message.into()))
    }

    /// Says that the first `delivered` entries of the batch got through before the failure.
    #[must_use]
    pub fn with_delivered(mut self, delivered: usize) -> PublishError {
        self.delivered = delivered;
        self
    }

    /// How many entries from the start of the batch were delivered before the failure.
    pub fn delivered(&self) -> usize {
        self.delivered
    }

    /// The underlying I/O error.
    pub fn io_error(&self) -> &io::Error {
        &self.error
    }
}

impl From<io::Error> for PublishError {
    fn from(error: io::Error) -> PublishError {
        PublishError::new(error)
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)?;
        if self.permanent {
            f.write_str(" (permanent: not retried)")?;
        }
        if self.delivered > 0 {
            write!(f, " (after {} entries were delivered)", self.delivered)?;
        }
        Ok(())
    }
}

impl Error for PublishError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}
