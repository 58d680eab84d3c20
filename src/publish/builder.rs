use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::dispatcher::{Dispatcher, Settings, Transform};
use super::publisher::{Publisher, PublisherStats};
use crate::follower::Cursor;
use crate::follower::Start;
use crate::worker::Worker;
use crate::{Entry, LogBuffer};

/// The most entries a publisher reads from the ring at once while its destination fails (while
/// it works, it reads what its queue has room for).
const FOLLOW_BATCH: usize = 1024;

/// The most [`PublisherHandle::stop`] waits past its timeout for the thread to finish.
const STOP_GRACE: Duration = Duration::from_millis(50);

/// Configures a publisher before it starts. Made by [`LogBuffer::publisher`].
///
/// # Default values
///
/// | setting | default | constant |
/// |---|---|---|
/// | [`interval`](PublisherBuilder::interval) | 200 ms | [`PublisherBuilder::DEFAULT_INTERVAL`] |
/// | [`queue`](PublisherBuilder::queue) | 10 000 entries | [`PublisherBuilder::DEFAULT_QUEUE`] |
/// | [`max_batch`](PublisherBuilder::max_batch) | 1 000 entries | [`PublisherBuilder::DEFAULT_MAX_BATCH`] |
/// | [`backoff`](PublisherBuilder::backoff) | 100 ms up to 30 s | [`PublisherBuilder::DEFAULT_BACKOFF_MIN`], [`PublisherBuilder::DEFAULT_BACKOFF_MAX`] |
/// | [`max_attempts`](PublisherBuilder::max_attempts) | 10 | [`PublisherBuilder::DEFAULT_MAX_ATTEMPTS`] |
/// | [`transform`](PublisherBuilder::transform) | none: entries as written | |
/// | [`name`](PublisherBuilder::name) | a number: `1`, `2`, … | |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use memtail::publish::WriterPublisher;
///
/// let buf = memtail::LogBuffer::new();
/// let handle = buf
///     .publisher(WriterPublisher::new(std::io::sink()))
///     .name("audit")
///     .interval(Duration::from_millis(500))
///     .queue(50_000)
///     .max_batch(500)
///     .backoff(Duration::from_millis(50), Duration::from_secs(10))
///     .max_attempts(5)
///     .transform(|entry| entry.starts_with(b"AUDIT").then(|| entry.bytes().clone()))
///     .start();
/// assert_eq!(handle.name(), "audit");
/// ```
#[must_use = "a publisher does nothing until `start` is called"]
pub struct PublisherBuilder<P> {
    buffer: LogBuffer,
    publisher: P,
    settings: Settings,
    transform: Option<Transform>,
    name: Option<String>,
}

/// The defaults, as associated constants.
///
/// ```
/// use std::time::Duration;
/// use memtail::publish::PublisherBuilder;
///
/// assert_eq!(PublisherBuilder::DEFAULT_INTERVAL, Duration::from_millis(200));
/// assert_eq!(PublisherBuilder::DEFAULT_QUEUE, 10_000);
/// assert_eq!(PublisherBuilder::DEFAULT_STOP_TIMEOUT, Duration::from_secs(1));
/// ```
impl PublisherBuilder<()> {
    /// How often a publisher takes new entries and publishes, by default: 200 ms.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);
    /// A publisher's queue bound in entries, by default.
    pub const DEFAULT_QUEUE: usize = 10_000;
    /// The most entries offered in one [`Publisher::publish`] call, by default.
    pub const DEFAULT_MAX_BATCH: usize = 1_000;
    /// The first retry delay after a failure, by default.
    pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(100);
    /// The longest retry delay, by default.
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
    /// How many times the entry at the head of the queue is tried before it is dropped, by default.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
    /// How long dropping a [`PublisherHandle`] waits for the last batch.
    pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(1);
}

impl LogBuffer {
    /// Starts `publisher` with the default settings; see [`LogBuffer::publisher`] to change them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use memtail::publish::WriterPublisher;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let handle = buf.publish(WriterPublisher::new(std::io::sink()));
    /// buf.append(b"one line\n");
    /// assert_eq!(handle.stop(Duration::from_secs(5)).delivered, 1);
    /// ```
    pub fn publish<P: Publisher>(&self, publisher: P) -> PublisherHandle {
        self.publisher(publisher).start()
    }

    /// A [`PublisherBuilder`] for `publisher`, to set its interval, queue, batches, retries,
    /// transform and name before [`start`](PublisherBuilder::start).
    pub fn publisher<P: Publisher>(&self, publisher: P) -> PublisherBuilder<P> {
        PublisherBuilder {
            buffer: self.clone(),
            publisher,
            settings: Settings {
                interval: PublisherBuilder::DEFAULT_INTERVAL,
                queue: PublisherBuilder::DEFAULT_QUEUE,
                max_batch: PublisherBuilder::DEFAULT_MAX_BATCH,
                backoff_min: PublisherBuilder::DEFAULT_BACKOFF_MIN,
                backoff_max: PublisherBuilder::DEFAULT_BACKOFF_MAX,
                max_attempts: PublisherBuilder::DEFAULT_MAX_ATTEMPTS,
            },
            transform: None,
            name: None,
        }
    }
}

impl<P: Publisher> PublisherBuilder<P> {
    /// How often the publisher takes new entries from the buffer and publishes them. It also
    /// takes them, at once, whenever the ring is three quarters full, so that a burst that fills
    /// the ring within one interval is not evicted before the publisher reads it.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    #[track_caller]
    pub fn interval(mut self, interval: Duration) -> Self {
        assert!(
            !interval.is_zero(),
            "memtail: a publisher's interval must be longer than zero"
        );
        self.settings.interval = interval;
        self
    }

    /// The publisher's own bound, in entries. While publishing works, a burst larger than the
    /// queue stays in the ring until the queue has been published (it is lost, and counted as
    /// `dropped_upstream`, only if the ring evicts it first). When publishing fails long enough
    /// for the queue to fill, the oldest queued entries are dropped and counted as
    /// `dropped_queue_full`.
    ///
    /// # Panics
    ///
    /// If `entries` is 0.
    #[track_caller]
    pub fn queue(mut self, entries: usize) -> Self {
        assert!(
            entries > 0,
            "memtail: a publisher's queue must hold at least 1 entry"
        );
        self.settings.queue = entries;
        self
    }

    /// The most entries offered in one [`Publisher::publish`] call.
    ///
    /// # Panics
    ///
    /// If `entries` is 0.
    #[track_caller]
    pub fn max_batch(mut self, entries: usize) -> Self {
        assert!(entries > 0, "memtail: a batch must hold at least 1 entry");
        self.settings.max_batch = entries;
        self
    }

    /// Retry delays after a failure: exponential from `min`, doubling per failed attempt of the
    /// same entry, up to `max`, each with jitter (a random delay between half and all of it).
    ///
    /// # Panics
    ///
    /// If `min` is zero or larger than `max`.
    #[track_caller]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        assert!(
            !min.is_zero() && min <= max,
            "memtail: a backoff needs 0 < min <= max (got {min:?} and {max:?})"
        );
        self.settings.backoff_min = min;
        self.settings.backoff_max = max;
        self
    }

    /// How many times the entry at the head of the queue is tried before it is dropped and counted
    /// in `dropped_after_attempts`, so that one entry that always fails cannot block the rest.
    ///
    /// # Panics
    ///
    /// If `attempts` is 0.
    #[track_caller]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        assert!(attempts > 0, "memtail: max_attempts must be at least 1");
        self.settings.max_attempts = attempts;
        self
    }

    /// Formats or filters each entry on the publisher's thread as it is queued: the entry is
    /// published as the bytes returned (with its sequence number and level), or counted as
    /// `filtered` when `None` is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::publish::WriterPublisher;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let _json_lines = buf
    ///     .publisher(WriterPublisher::new(std::io::sink()))
    ///     .transform(|entry| {
    ///         let text = String::from_utf8_lossy(entry).trim_end().replace('"', "\\\"");
    ///         Some(format!("{{\"seq\":{},\"msg\":\"{text}\"}}\n", entry.seq()))
    ///     })
    ///     .start();
    /// ```
    pub fn transform<F, B>(mut self, mut transform: F) -> Self
    where
        F: FnMut(&Entry) -> Option<B> + Send + 'static,
        B: Into<Bytes>,
    {
        self.transform = Some(Box::new(move |entry: &Entry| {
            transform(entry).map(Into::into)
        }));
        self
    }

    /// The publisher's name, used in its thread's name (`memtail-publish-<name>`) and its `Debug`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Takes its position in the buffer (the next entry written) and starts the publisher's
    /// thread. Every entry written after this returns is published or counted.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn start(self) -> PublisherHandle {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = self
            .name
            .unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed).to_string());
        let cursor = Cursor::new(&self.buffer, Start::Now, FOLLOW_BATCH);
        let shared = Arc::new(Mutex::new(PublisherStats::default()));
        let (control_tx, control_rx) = crossbeam_channel::bounded(1);
        let dispatcher = Dispatcher::new(
            Box::new(self.publisher),
            cursor,
            self.settings,
            self.transform,
            Arc::clone(&shared),
            control_rx,
        );
        let worker = Worker::spawn(format!("memtail-publish-{name}"), move || dispatcher.run())
            .expect("memtail: could not start a publisher thread");
        PublisherHandle {
            name,
            stats: shared,
            control: control_tx,
            worker: Some(worker),
        }
    }
}

impl<P> fmt::Debug for PublisherBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherBuilder")
            .field("name", &self.name)
            .field("interval", &self.settings.interval)
            .field("queue", &self.settings.queue)
            .field("max_batch", &self.settings.max_batch)
            .field(
                "backoff",
                &(self.settings.backoff_min..self.settings.backoff_max),
            )
            .field("max_attempts", &self.settings.max_attempts)
            .field("transform", &self.transform.is_some())
            .finish_non_exhaustive()
    }
}

/// A running publisher. [`stop`](PublisherHandle::stop) it to publish what is queued and wait for
/// its thread; dropping the handle does the same with [`PublisherBuilder::DEFAULT_STOP_TIMEOUT`].
#[must_use = "dropping the handle stops the publisher"]
pub struct PublisherHandle {
    name: String,
    stats: Arc<Mutex<PublisherStats>>,
    control: Sender<Instant>,
    worker: Option<Worker>,
}

impl PublisherHandle {
    /// The publisher's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The publisher's counters now. They are brought up to date each time the publisher's thread
    /// wakes (every interval, and after each publishing round).
    pub fn stats(&self) -> PublisherStats {
        self.stats.lock().clone()
    }

    /// Stops the publisher: takes the entries written so far, publishes everything queued (retrying
    /// failures with backoff) until the queue is empty or `timeout` has passed, counts what is left
    /// as `dropped_at_stop`, flushes, waits for the thread and returns the final counters. Entries
    /// written by other threads while `stop` runs may or may not be taken.
    ///
    /// Returns once the thread has finished, or at the latest 50 ms after `timeout` has passed
    /// (the grace lets the thread count what is left and flush). If a [`Publisher::publish`] call
    /// is still running then (a stuck connection, say), the returned counters are those of that
    /// moment, with `stopped` false, and the thread finishes on its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use memtail::publish::WriterPublisher;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let handle = buf
    ///     .publisher(WriterPublisher::new(Vec::new()))
    ///     .interval(Duration::from_secs(3600)) // nothing is published before `stop`
    ///     .start();
    /// buf.append(b"a\n");
    /// buf.append(b"b\n");
    /// let stats = handle.stop(Duration::from_secs(5));
    /// assert!(stats.stopped);
    /// assert_eq!(stats.delivered, 2);
    /// ```
    pub fn stop(mut self, timeout: Duration) -> PublisherStats {
        self.shutdown(timeout)
    }

    fn shutdown(&mut self, timeout: Duration) -> PublisherStats {
        let Some(worker) = self.worker.take() else {
            return self.stats();
        };
        let deadline = crate::worker::deadline(timeout);
        // The channel holds one stop request and only this handle sends, so this cannot fail
        // unless the thread is already gone, which the join below finds at once.
        let _ = self.control.try_send(deadline);
        // The thread gives up publishing at `deadline`; a little grace lets it count what is left,
        // flush and finish.
        let grace = (timeout / 4).min(STOP_GRACE);
        worker.join_until(deadline.checked_add(grace).unwrap_or(deadline));
        self.stats()
    }
}

impl Drop for PublisherHandle {
    fn drop(&mut self) {
        self.shutdown(PublisherBuilder::DEFAULT_STOP_TIMEOUT);
    }
}

impl fmt::Debug for PublisherHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherHandle")
            .field("name", &self.name)
            .field("running", &self.worker.is_some())
            .finish_non_exhaustive()
    }
}
