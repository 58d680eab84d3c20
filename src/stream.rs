use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::core::check_subscriber_capacity;
use crate::core::WaitSlot;
use crate::follower::{Cursor, Read, Start};
use crate::{Entry, LogBuffer, Replay, TryRecvError};

/// A follower of a [`LogBuffer`] for async code: a [`Stream`] of every entry from its position
/// on, in sequence order, with no thread and no queue of its own.
///
/// Made by [`LogBuffer::events_async`], [`LogBuffer::events_since_async`],
/// [`LogBuffer::tail_async`] or [`LogBuffer::tail_since_async`]. It is a *position* in the
/// buffer's ring, a sequence number: it reads the retained entries from there on, one batch at a
/// time (at most [`capacity`](AsyncSubscription::capacity) entries and 64 KiB per read), so its
/// memory is one batch however much is written, and a writer does no work for it beyond waking it
/// when it waits. A writer never waits for it.
///
/// When the follower falls so far behind that the ring evicts entries before it reads them, it
/// loses the **oldest** (as `tokio::sync::broadcast` does), never the newest, and counts them in
/// [`dropped`](AsyncSubscription::dropped); [`recv_batch`](AsyncSubscription::recv_batch) also
/// says how many were lost just before each batch, and the sequence numbers show where: after an
/// entry with `seq` N, the next one received is N + 1 unless entries were lost in between. Once it
/// has received everything: received + `dropped()` = entries written from its position on.
///
/// It works on any executor. The stream ends once every handle to the buffer is gone and the
/// follower has read what the ring still holds. Dropping it stops following at once.
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
#[must_use = "dropping the subscription stops following"]
pub struct AsyncSubscription {
    cursor: Cursor,
    /// Entries read from the ring and not received yet: one batch at most.
    batch: VecDeque<Entry>,
    /// Entries lost just before the first of `batch`, not reported by `recv_batch` yet.
    missed: u64,
    wait: WaitSlot,
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
        self.follow_async(Start::Now, self.subscriber_capacity())
    }

    /// An async subscription to every entry from `seq` on: those the ring still retains, then
    /// the live ones, all through the one stream, a batch at a time (nothing is copied up
    /// front). Entries from `seq` on that were evicted already count as
    /// [`dropped`](AsyncSubscription::dropped), and the first
    /// [`recv_batch`](AsyncSubscription::recv_batch) reports them. A `seq` still in the future
    /// starts with the next entry written.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let buf = memtail::LogBuffer::with_capacity(10);
    /// for line in ["aaa", "bbb", "ccc", "ddd"] {
    ///     buf.append(line.as_bytes()); // "ddd" evicts "aaa" and "bbb"
    /// }
    /// let mut live = buf.events_since_async(1);
    /// let batch = live.recv_batch().await.unwrap();
    /// assert_eq!(batch.missed(), 1); // entry 1 was evicted
    /// let seqs: Vec<u64> = batch.entries().iter().map(|e| e.seq()).collect();
    /// assert_eq!(seqs, [2, 3]);
    /// assert_eq!(live.dropped(), 1);
    /// # });
    /// ```
    pub fn events_since_async(&self, seq: u64) -> AsyncSubscription {
        self.follow_async(Start::At(seq), self.subscriber_capacity())
    }

    /// The retained entries and an async subscription to everything after them: the async
    /// [`tail`](LogBuffer::tail), with no gap and no duplicate at the seam.
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

    /// [`since(seq)`](LogBuffer::since) and an async subscription to everything after it: the
    /// async [`tail_since`](LogBuffer::tail_since). The subscription starts at the replay's
    /// [`next_seq`](Replay::next_seq), so there is no gap and no duplicate at the seam.
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

    /// [`tail_since_async`](LogBuffer::tail_since_async) with batches of at most `entries`
    /// entries instead of the buffer's [`subscriber_capacity`](LogBuffer::subscriber_capacity).
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
        let replay = self.since(seq);
        let live = self.follow_async(Start::At(replay.next_seq()), entries);
        (replay, live)
    }

    /// An async follower from `start`, reading at most `batch` entries at a time.
    pub(crate) fn follow_async(&self, start: Start, batch: usize) -> AsyncSubscription {
        let cursor = Cursor::new(self, start, batch);
        let wait = cursor.shared().wait_slot();
        AsyncSubscription {
            cursor,
            batch: VecDeque::new(),
            missed: 0,
            wait,
        }
    }
}

impl AsyncSubscription {
    /// Waits for the next entry; `None` once every handle to the buffer is gone and everything
    /// retained was received.
    ///
    /// Cancel-safe: dropping the future before it completes loses no entry.
    pub fn recv(&mut self) -> impl Future<Output = Option<Entry>> + '_ {
        poll_fn(move |cx| self.poll_recv(cx))
    }

    /// Polls for the next entry: what [`recv`](AsyncSubscription::recv) and the [`Stream`]
    /// implementation do.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        match self.poll_fill(cx) {
            Poll::Ready(true) => Poll::Ready(self.pop()),
            Poll::Ready(false) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes the next entry if one is there, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when there is nothing new; [`TryRecvError::Disconnected`] once
    /// every handle to the buffer is gone and everything retained was received.
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::TryRecvError;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let mut live = buf.events_async();
    /// assert_eq!(live.try_recv(), Err(TryRecvError::Empty));
    /// buf.append(b"one");
    /// assert_eq!(&live.try_recv().unwrap()[..], b"one");
    /// drop(buf);
    /// assert_eq!(live.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&mut self) -> Result<Entry, TryRecvError> {
        self.try_fill()?;
        self.pop().ok_or(TryRecvError::Empty)
    }

    /// Waits for entries, then takes every one there is, up to a batch: at most
    /// [`capacity`](AsyncSubscription::capacity) entries and 64 KiB (or one entry, if longer).
    /// [`Replay::missed`] is how many entries were lost just before the first of them,
    /// [`Replay::next_seq`] where this follower reads next. `None` once every handle to the
    /// buffer is gone and everything retained was received.
    ///
    /// For followers that frame many entries per write (one HTTP chunk, one syscall). Cancel-safe.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let buf = memtail::LogBuffer::new();
    /// let mut live = buf.events_async();
    /// for line in ["a", "b", "c"] {
    ///     buf.append(line.as_bytes());
    /// }
    /// let batch = live.recv_batch().await.unwrap();
    /// assert_eq!(batch.entries().len(), 3);
    /// assert_eq!((batch.missed(), batch.next_seq()), (0, 3));
    /// # });
    /// ```
    pub fn recv_batch(&mut self) -> impl Future<Output = Option<Replay>> + '_ {
        poll_fn(move |cx| self.poll_recv_batch(cx))
    }

    /// Polls for a batch: what [`recv_batch`](AsyncSubscription::recv_batch) does.
    pub fn poll_recv_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<Replay>> {
        match self.poll_fill(cx) {
            Poll::Ready(true) => Poll::Ready(Some(self.take_batch())),
            Poll::Ready(false) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes every entry there is, up to a batch, without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](AsyncSubscription::try_recv).
    pub fn try_recv_batch(&mut self) -> Result<Replay, TryRecvError> {
        self.try_fill()?;
        Ok(self.take_batch())
    }

    /// How many entries this follower lost because the ring evicted them before it read them.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::with_capacity(10);
    /// let mut live = buf.events_async();
    /// for line in ["aaa", "bbb", "ccc", "ddd"] {
    ///     buf.append(line.as_bytes()); // "ddd" evicts "aaa" and "bbb"
    /// }
    /// assert_eq!(live.try_recv().unwrap().seq(), 2);
    /// assert_eq!(live.dropped(), 2);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.cursor.dropped()
    }

    /// The sequence number of the next entry this follower will receive, if the ring still holds
    /// it then.
    pub fn next_seq(&self) -> u64 {
        self.batch
            .front()
            .map_or(self.cursor.next_seq(), |entry| entry.seq())
    }

    /// How many entries this follower could receive now without waiting: how far behind the
    /// writers it is.
    pub fn len(&self) -> usize {
        let behind = self.batch.len() as u64 + self.cursor.available();
        usize::try_from(behind).unwrap_or(usize::MAX)
    }

    /// Whether this follower has nothing to receive now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries this follower takes from the ring in one read: the size of a
    /// [`recv_batch`](AsyncSubscription::recv_batch).
    pub fn capacity(&self) -> usize {
        self.cursor.batch()
    }

    fn pop(&mut self) -> Option<Entry> {
        let entry = self.batch.pop_front()?;
        // The sequence number shows this gap; it is no longer "just before the batch".
        self.missed = 0;
        Some(entry)
    }

    fn take_batch(&mut self) -> Replay {
        let entries = self.batch.drain(..).collect();
        Replay::new(
            entries,
            std::mem::take(&mut self.missed),
            self.cursor.next_seq(),
        )
    }

    fn fill(&mut self) -> Read {
        let read = self.cursor.read(&mut self.batch);
        self.missed += read.missed;
        read
    }

    /// Makes sure the batch holds entries: `Ready(true)` when it does, `Ready(false)` at the end,
    /// `Pending` with the waker left for the next writer.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if !self.batch.is_empty() {
            return Poll::Ready(true);
        }
        let read = self.fill();
        if read.taken > 0 || read.closed {
            return Poll::Ready(read.taken > 0);
        }
        self.cursor.shared().wait(&mut self.wait, cx.waker());
        // A writer that appended after the read above and before the waker was left did not see
        // it: read again (see `Waiters`).
        let read = self.fill();
        if read.taken > 0 || read.closed {
            return Poll::Ready(read.taken > 0);
        }
        Poll::Pending
    }

    fn try_fill(&mut self) -> Result<(), TryRecvError> {
        if !self.batch.is_empty() {
            return Ok(());
        }
        let read = self.fill();
        match (read.taken, read.closed) {
            (0, true) => Err(TryRecvError::Disconnected),
            (0, false) => Err(TryRecvError::Empty),
            _ => Ok(()),
        }
    }
}

impl Drop for AsyncSubscription {
    fn drop(&mut self) {
        self.cursor.shared().stop_waiting(&self.wait);
    }
}

impl Stream for AsyncSubscription {
    type Item = Entry;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        self.get_mut().poll_recv(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.batch.len(), None)
    }
}

impl fmt::Debug for AsyncSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSubscription")
            .field("next_seq", &self.next_seq())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use crate::LogBuffer;

    #[test]
    fn a_waiting_follower_leaves_one_waker_and_takes_it_back_when_dropped() {
        let buf = LogBuffer::new();
        let shared = buf.shared();
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let mut followers: Vec<_> = (0..1000).map(|_| buf.events_async()).collect();
        for _ in 0..3 {
            for live in &mut followers {
                assert!(live.poll_recv(&mut cx).is_pending());
            }
        }
        assert_eq!(
            shared.waiting(),
            1000,
            "one waker per follower, however often it waits"
        );
        followers.truncate(10);
        assert_eq!(
            shared.waiting(),
            10,
            "a dropped follower takes its waker back"
        );

        buf.append(b"wake up");
        assert_eq!(shared.waiting(), 0, "a writer takes the wakers it wakes");
        for live in &mut followers {
            assert!(matches!(live.poll_recv(&mut cx), Poll::Ready(Some(_))));
            assert!(live.poll_recv(&mut cx).is_pending());
        }
        assert_eq!(shared.waiting(), 10);
        drop(buf);
        assert_eq!(waiters_after_close(&mut followers), 0);
    }

    fn waiters_after_close(followers: &mut [crate::AsyncSubscription]) -> usize {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        for live in followers.iter_mut() {
            assert!(matches!(live.poll_recv(&mut cx), Poll::Ready(None)));
        }
        followers[0].cursor.shared().waiting()
    }
}
