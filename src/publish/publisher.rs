//! What a publisher is: the [`Publisher`] trait, its error, and its counters.

use std::error::Error;
use std::fmt;
use std::io;

use crate::Entry;

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
    /// delivers at least once (like [`SyslogPublisher::relp`](super::SyslogPublisher::relp)) sends again what the destination
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

/// A publisher's counters. Every entry written while the publisher ran is in exactly one of
/// `delivered`, `queued`, `filtered` and the `dropped_*` counters:
/// `received + dropped_upstream` entries were written, and
/// `received = delivered + queued + filtered + dropped_queue_full + dropped_after_attempts +
/// dropped_permanent + dropped_at_stop`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherStats {
    /// Entries taken from the buffer (and, at stop, those written before `stop` that it had not
    /// read yet: they count as `dropped_at_stop`).
    pub received: u64,
    /// Entries the publisher acknowledged.
    pub delivered: u64,
    /// Entries waiting in the queue now.
    pub queued: u64,
    /// Entries the transform turned away.
    pub filtered: u64,
    /// Entries lost before the publisher read them: the ring evicted them first, because the
    /// publisher had fallen more than the ring's capacity behind. The oldest are lost.
    pub dropped_upstream: u64,
    /// The oldest entries, dropped because the queue was full while publishing failed.
    pub dropped_queue_full: u64,
    /// Entries dropped after failing `max_attempts` times at the head of the queue.
    pub dropped_after_attempts: u64,
    /// Entries dropped at once because publishing them failed in a way no retry can mend
    /// ([`PublishError::is_permanent`](crate::publish::PublishError::is_permanent): a UDP message
    /// too large to send, say).
    pub dropped_permanent: u64,
    /// Entries not delivered when `stop`'s timeout ran out: still queued, or written before the
    /// stop request and not read from the ring yet.
    pub dropped_at_stop: u64,
    /// Publish calls that failed (returned an error, delivered nothing, or panicked).
    pub failed_attempts: u64,
    /// Entries sent more than once: sent again after a broken connection because the
    /// destination had not acknowledged them ([`Publisher::resent`](crate::publish::Publisher::resent)).
    /// They are counted once in `delivered`; the destination may hold up to this many duplicates.
    /// Always 0 for transports that never send an entry twice.
    pub resent: u64,
    /// Entries the publisher cut to fit what its destination takes in one message
    /// ([`Publisher::cut`](crate::publish::Publisher::cut); for syslog,
    /// [`max_message_size`](crate::publish::SyslogPublisher::max_message_size)), each counted
    /// once. A cut entry is delivered, cut, and counted in `delivered` too.
    pub cut: u64,
    /// The text of the last failure (of `publish` or `flush`), if any.
    pub last_error: Option<String>,
    /// Whether the publisher's thread has finished.
    pub stopped: bool,
}

impl PublisherStats {
    /// All entries lost, whatever the reason: the `dropped_*` counters together.
    pub fn dropped(&self) -> u64 {
        self.dropped_upstream
            + self.dropped_queue_full
            + self.dropped_after_attempts
            + self.dropped_permanent
            + self.dropped_at_stop
    }

    /// Entries written while the publisher ran, as far as it knows: everything it took or lost.
    pub fn written(&self) -> u64 {
        self.received + self.dropped_upstream
    }
}
