use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::buffer::WakerSlot;
use crate::builder::check_subscriber_capacity;
use crate::{Entry, LogBuffer, Replay, Subscription, TryRecvError};

/// A follower of a [`LogBuffer`] for async code: a [`Stream`] of every entry written after it
/// subscribed, in sequence order, with no thread of its own.
///
/// Made by [`LogBuffer::events_async`], [`LogBuffer::tail_async`] or
/// [`LogBuffer::tail_since_async`]. It keeps every guarantee of a [`Subscription`]: its own bounded
/// channel, a writer never waits for it, and an entry that finds the channel full is dropped for
/// this follower alone and counted in [`dropped`](AsyncSubscription::dropped). The sequence
/// numbers tell where the gap is: after an entry with `seq` N, the next one received is N + 1
/// unless entries were dropped in between.
///
/// It works on any executor. A writer that sends an entry to an idle follower wakes its task
/// after releasing the buffer's lock; a follower that is busy costs the writer no wake at all.
/// The stream ends once every handle to the buffer is gone and the queued entries were received.
/// Dropping it unsubscribes at once.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let buf = memtail::LogBuffer::new();
/// let mut live = buf.events_async();
/// buf.append(b"ready\n");
///
/// let entry = live.recv().await.unwrap();
/// assert_eq!((entry.seq(), &entry[..]), (0, &b"ready\n"[..]));
///
/// drop(buf);
/// assert!(live.recv().await.is_none());
/// # });
/// ```
#[must_use = "dropping the subscription unsubscribes it"]
pub struct AsyncSubscription {
    inner: Subscription,
    waker: Arc<WakerSlot>,
}

impl LogBuffer {
    /// An async subscription to every entry written from now on: the async
    /// [`events`](LogBuffer::events).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"before");
    /// let mut live = buf.events_async();
    /// buf.append(b"after");
    /// assert_eq!(&live.recv().await.unwrap()[..], b"after");
    /// # });
    /// ```
    pub fn events_async(&self) -> AsyncSubscription {
        let (_, live) = self.tail_since_async_with_capacity(u64::MAX, self.subscriber_capacity());
        live
    }

    /// The retained entries and an async subscription to everything after them, taken under one
    /// lock: the async [`tail`](LogBuffer::tail), with no gap and no duplicate at the seam.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"old");
    /// let (backlog, mut live) = buf.tail_async();
    /// buf.append(b"new");
    /// assert_eq!(backlog[0].seq(), 0);
    /// assert_eq!(live.recv().await.unwrap().seq(), 1);
    /// # });
    /// ```
    pub fn tail_async(&self) -> (Vec<Entry>, AsyncSubscription) {
        let (replay, live) = self.tail_since_async(0);
        (replay.into_entries(), live)
    }

    /// [`since(seq)`](LogBuffer::since) and an async subscription to everything after it, taken
    /// under one lock: the async [`tail_since`](LogBuffer::tail_since).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let buf = memtail::LogBuffer::new();
    /// for line in ["a", "b", "c"] {
    ///     buf.append(line.as_bytes());
    /// }
    /// let (replay, mut live) = buf.tail_since_async(2);
    /// buf.append(b"d");
    /// assert_eq!(replay.entries()[0].seq(), 2);
    /// assert_eq!(live.recv().await.unwrap().seq(), 3);
    /// # });
    /// ```
    pub fn tail_since_async(&self, seq: u64) -> (Replay, AsyncSubscription) {
        self.tail_since_async_with_capacity(seq, self.subscriber_capacity())
    }

    /// [`tail_since_async`](LogBuffer::tail_since_async) with a channel of `entries` instead of
    /// the buffer's subscriber capacity.
    ///
    /// # Panics
    ///
    /// If `entries` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let (_, live) = buf.tail_since_async_with_capacity(0, 4096);
    /// assert_eq!(live.capacity(), 4096);
    /// ```
    #[track_caller]
    pub fn tail_since_async_with_capacity(
        &self,
        seq: u64,
        entries: usize,
    ) -> (Replay, AsyncSubscription) {
        check_subscriber_capacity(entries);
        let waker = Arc::new(WakerSlot::new(None));
        let (replay, inner) = self.tail_since_with(seq, entries, Some(Arc::clone(&waker)));
        (replay, AsyncSubscription { inner, waker })
    }
}

impl AsyncSubscription {
    /// Waits for the next entry; `None` once every handle to the buffer is gone and the queue is
    /// empty.
    ///
    /// Cancel-safe: dropping the future before it completes loses no entry.
    pub fn recv(&mut self) -> impl Future<Output = Option<Entry>> + '_ {
        poll_fn(move |cx| self.poll_recv(cx))
    }

    /// Polls for the next entry: what [`recv`](AsyncSubscription::recv) and the [`Stream`]
    /// implementation do.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        match self.inner.try_recv() {
            Ok(entry) => return Poll::Ready(Some(entry)),
            Err(TryRecvError::Disconnected) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        {
            let mut slot = self.waker.lock();
            match &mut *slot {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
        }
        // A writer that sent after the first look and before the waker was left did not see the
        // waker: look again. The slot's lock orders the two looks against the writer's.
        match self.inner.try_recv() {
            Ok(entry) => Poll::Ready(Some(entry)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// Takes the next entry if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing is queued; [`TryRecvError::Disconnected`] once every
    /// handle to the buffer is gone and the queue is empty.
    pub fn try_recv(&self) -> Result<Entry, TryRecvError> {
        self.inner.try_recv()
    }

    /// How many entries this follower lost because its channel was full when they were written.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::builder().subscriber_capacity(2).build();
    /// let live = buf.events_async();
    /// for line in ["a", "b", "c"] {
    ///     buf.append(line.as_bytes());
    /// }
    /// assert_eq!(live.dropped(), 1);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// How many entries are queued for this follower now.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no entry is queued for this follower now.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// How many entries this follower's channel holds before entries are dropped.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl Stream for AsyncSubscription {
    type Item = Entry;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        self.get_mut().poll_recv(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.inner.len(), None)
    }
}

impl fmt::Debug for AsyncSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSubscription")
            .field("queued", &self.inner.len())
            .field("dropped", &self.inner.dropped())
            .finish_non_exhaustive()
    }
}
