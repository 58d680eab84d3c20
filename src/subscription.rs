use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::core::Shared;
use crate::{Entry, RecvError, RecvTimeoutError, TryRecvError};

/// A follower of a [`LogBuffer`](crate::LogBuffer): receives every entry written after it
/// subscribed, in sequence order, over its own bounded channel.
///
/// Made by [`LogBuffer::events`](crate::LogBuffer::events) or [`LogBuffer::tail`](crate::LogBuffer::tail).
/// A writer never waits for a subscription: when its channel is full, the entry is dropped for this
/// subscription alone and [`dropped`](Subscription::dropped) grows. Once the subscription is drained
/// and no write is under way, entries received + `dropped()` = entries written since it subscribed.
///
/// Dropping the subscription (or calling [`cancel`](Subscription::cancel)) unsubscribes it at once.
/// When every handle to the buffer is gone, the receiving methods report disconnection after the
/// entries already queued have been received.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use memtail::{LogBuffer, TryRecvError};
///
/// let mut buf = LogBuffer::new();
/// let sub = buf.events();
/// writeln!(buf, "started")?;
///
/// assert_eq!(&sub.recv()?[..], b"started\n");
/// assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
/// assert_eq!(sub.dropped(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscription {
    rx: Receiver<Entry>,
    dropped: Arc<AtomicU64>,
    id: u64,
    buffer: Weak<Shared>,
}

impl Subscription {
    pub(crate) fn new(
        rx: Receiver<Entry>,
        dropped: Arc<AtomicU64>,
        id: u64,
        buffer: Weak<Shared>,
    ) -> Subscription {
        Subscription {
            rx,
            dropped,
            id,
            buffer,
        }
    }

    /// Waits for the next entry.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once every handle to the buffer is gone and the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let sub = buf.events();
    /// let writer = std::thread::spawn({
    ///     let buf = buf.clone();
    ///     move || { buf.append(b"from another thread"); }
    /// });
    /// assert_eq!(sub.recv().unwrap().seq(), 0);
    /// writer.join().unwrap();
    /// ```
    pub fn recv(&self) -> Result<Entry, RecvError> {
        self.rx.recv().map_err(|_| RecvError)
    }

    /// Takes the next entry if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing is queued; [`TryRecvError::Disconnected`] once every
    /// handle to the buffer is gone and the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::{LogBuffer, TryRecvError};
    ///
    /// let buf = LogBuffer::new();
    /// let sub = buf.events();
    /// assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
    /// buf.append(b"one");
    /// assert_eq!(&sub.try_recv().unwrap()[..], b"one");
    /// drop(buf);
    /// assert_eq!(sub.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<Entry, TryRecvError> {
        self.rx.try_recv().map_err(|error| match error {
            crossbeam_channel::TryRecvError::Empty => TryRecvError::Empty,
            crossbeam_channel::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Waits at most `timeout` for the next entry.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when nothing arrived in time; [`RecvTimeoutError::Disconnected`]
    /// once every handle to the buffer is gone and the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use memtail::{LogBuffer, RecvTimeoutError};
    ///
    /// let buf = LogBuffer::new();
    /// let sub = buf.events();
    /// assert_eq!(sub.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Entry, RecvTimeoutError> {
        self.rx.recv_timeout(timeout).map_err(|error| match error {
            crossbeam_channel::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
            crossbeam_channel::RecvTimeoutError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// A blocking iterator over entries; it ends once every handle to the buffer is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let sub = buf.events();
    /// buf.append(b"a");
    /// buf.append(b"b");
    /// drop(buf);
    /// let seqs: Vec<u64> = sub.iter().map(|e| e.seq()).collect();
    /// assert_eq!(seqs, [0, 1]);
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.rx.iter())
    }

    /// An iterator over the entries queued now; it never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let sub = buf.events();
    /// buf.append(b"a");
    /// buf.append(b"b");
    /// assert_eq!(sub.try_iter().count(), 2);
    /// assert_eq!(sub.try_iter().count(), 0);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_> {
        TryIter(self.rx.try_iter())
    }

    /// How many entries this subscription lost because its channel was full when they were written.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::builder().subscriber_capacity(2).build();
    /// let sub = buf.events();
    /// for line in ["a", "b", "c", "d", "e"] {
    ///     buf.append(line.as_bytes());
    /// }
    /// assert_eq!(sub.try_iter().count(), 2);
    /// assert_eq!(sub.dropped(), 3);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Acquire)
    }

    /// How many entries are queued for this subscription now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no entry is queued for this subscription now.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// How many entries this subscription's channel holds before entries are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// assert_eq!(buf.events().capacity(), memtail::Builder::DEFAULT_SUBSCRIBER_CAPACITY);
    /// ```
    pub fn capacity(&self) -> usize {
        self.rx.capacity().unwrap_or(usize::MAX)
    }

    /// The underlying receiver, for `crossbeam_channel::select!` over several sources.
    ///
    /// The one place memtail's API names a crossbeam-channel type (0.5): `select!` takes only
    /// crossbeam's receivers. Everything else a subscription gives is memtail's own
    /// ([`RecvError`], [`TryRecvError`], [`RecvTimeoutError`], [`Iter`], [`TryIter`]), so a program
    /// that does not call this is not tied to crossbeam-channel's version.
    ///
    /// # Examples
    ///
    /// ```
    /// use crossbeam_channel::{after, select};
    /// use std::time::Duration;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let sub = buf.events();
    /// buf.append(b"tick");
    /// select! {
    ///     recv(sub.receiver()) -> entry => assert_eq!(&entry.unwrap()[..], b"tick"),
    ///     recv(after(Duration::from_secs(5))) -> _ => panic!("no entry"),
    /// }
    /// ```
    pub fn receiver(&self) -> &Receiver<Entry> {
        &self.rx
    }

    /// Unsubscribes now. The same happens when the subscription is dropped; cancelling after the
    /// buffer is gone does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let sub = buf.events();
    /// assert_eq!(buf.stats().subscribers, 1);
    /// sub.cancel();
    /// assert_eq!(buf.stats().subscribers, 0);
    /// ```
    pub fn cancel(self) {
        drop(self);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.buffer.upgrade() {
            shared.unsubscribe(self.id);
        }
    }
}

impl<'a> IntoIterator for &'a Subscription {
    type Item = Entry;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("queued", &self.rx.len())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// A blocking iterator over a [`Subscription`]'s entries: see [`Subscription::iter`].
pub struct Iter<'a>(crossbeam_channel::Iter<'a, Entry>);

impl Iterator for Iter<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        self.0.next()
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

/// An iterator over the entries a [`Subscription`] has queued now: see
/// [`Subscription::try_iter`].
pub struct TryIter<'a>(crossbeam_channel::TryIter<'a, Entry>);

impl Iterator for TryIter<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        self.0.next()
    }
}

impl fmt::Debug for TryIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").finish_non_exhaustive()
    }
}
