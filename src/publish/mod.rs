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

mod builder;
mod dispatcher;
mod publisher;
mod relp;
mod syslog;
mod writer;

pub use self::builder::{PublisherBuilder, PublisherHandle};
pub use self::publisher::{PublishError, Publisher, PublisherStats};
pub use self::syslog::{Facility, Severity, SyslogFormat, SyslogPublisher};
pub use self::writer::{FilePublisher, WriterPublisher};
