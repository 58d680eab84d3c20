//! [`Tail`]: a follower by position in the ring, for sync and async code alike.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::core::{check_subscriber_capacity, WaitSlot};
use crate::follower::{Cursor, Read};
use crate::{Entry, LogBuffer, RecvTimeoutError, Replay, Start, TryRecvError};

/// A follower of a [`LogBuffer`] by position in its ring: every entry from where it starts on,
/// in sequence order, for synchronous code ([`blocking_recv`](Tail::blocking_recv),
/// [`recv_timeout`](Tail::recv_timeout)) and async code ([`recv`](Tail::recv), and with the
/// `tokio` feature a `futures_core::Stream`), with no thread and no queue of its own.
///
/// Made by [`LogBuffer::tail_from`], from now, from the oldest entry retained or from a sequence
/// number ([`Start`]). It is a *position* in the ring, a sequence number: it reads the retained
/// entries from there on, one batch at a time (at most [`capacity`](Tail::capacity) entries and
/// 64 KiB per read), so its memory is one batch however much is written, and a writer does no
/// work for it beyond waking it when it waits. A writer never waits for it.
///
/// It loses entries only when it falls a whole ring behind: then the ring evicts entries before
/// it reads them, and it loses the **oldest** (as `tokio::sync::broadcast` does), never the
/// newest, and counts them in [`dropped`](Tail::dropped); [`recv_batch`](Tail::recv_batch) also
/// says how many were lost just before each batch, and the sequence numbers show where: after an
/// entry with `seq` N, the next one received is N + 1 unless entries were lost in between. Once it
/// has received everything: received + `dropped()` = entries written from its position on. (A
/// [`Subscription`](crate::Subscription) from [`events`](LogBuffer::events) has a queue of its
/// own instead, and drops the newest entries when that is full.)
///
/// It works on any executor, and on plain threads. Receiving ends once every handle to the
/// buffer is gone and the follower has read what the ring still holds. Dropping it stops
/// following at once.
///
/// # Examples
///
/// A thread that follows from the oldest entry retained, and loses nothing in a burst:
///
/// ```
/// use memtail::{LogBuffer, Start};
///
/// let buf = LogBuffer::with_capacity(1 << 20);
/// buf.append(b"before\n");
/// let mut tail = buf.tail_from(Start::Oldest);
/// for n in 0..400 {
///     buf.append(format!("burst {n}\n").as_bytes());
/// }
/// drop(buf);
/// let mut received = 0;
/// while let Some(entry) = tail.blocking_recv() {
///     assert_eq!(entry.seq(), received);
///     received += 1;
/// }
/// assert_eq!((received, tail.dropped()), (401, 0));
/// ```
///
/// In async code:
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let buf = memtail::LogBuffer::new();
/// let mut live = buf.tail_from(memtail::Start::Now);
/// buf.append(b"ready\n");
///
/// let entry = live.recv().await.unwrap();
/// assert_eq!((entry.seq(), &entry[..]), (0, &b"ready\n"[..]));
///
/// drop(buf);
/// assert!(live.recv().await.is_none());
/// # });
/// ```
#[must_use = "dropping the tail stops following"]
pub struct Tail {
    cursor: Cursor,
    /// Entries read from the ring and not received yet: one batch at most.
    batch: VecDeque<Entry>,
    /// Entries lost just before the first of `batch`, not reported by `recv_batch` yet.
    missed: u64,
    wait: WaitSlot,
    /// The waker that unparks the thread that blocks last, kept to be left again.
    thread: Option<(thread::ThreadId, Waker)>,
}

impl LogBuffer {
    /// A follower by position, from `start`: every entry from there on, to receive in sync or
    /// async code. See [`Tail`]. Unlike [`tail`](LogBuffer::tail)'s subscription, which drops
    /// the newest entries when its channel is full, it loses entries only when it falls a whole
    /// ring behind (the oldest, counted).
    ///
    /// [`Start::Oldest`] gives the retained entries and then the live ones through the one
    /// follower, with no gap and no duplicate at the seam; [`Start::At`] resumes after the
    /// entries a reader has (`Last-Event-ID`, or a [`Replay::next_seq`] from
    /// [`since`](LogBuffer::since)), and counts those evicted already as
    /// [`dropped`](Tail::dropped); [`Start::Now`] starts with the next entry written.
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::Start;
    ///
    /// let buf = memtail::LogBuffer::with_capacity(10);
    /// for line in ["aaa", "bbb", "ccc", "ddd"] {
    ///     buf.append(line.as_bytes()); // "ddd" evicts "aaa" and "bbb"
    /// }
    /// let mut from_one = buf.tail_from(Start::At(1));
    /// let batch = from_one.try_recv_batch().unwrap();
    /// assert_eq!(batch.missed(), 1); // entry 1 was evicted
    /// let seqs: Vec<u64> = batch.entries().iter().map(|e| e.seq()).collect();
    /// assert_eq!(seqs, [2, 3]);
    ///
    /// let mut now = buf.tail_from(Start::Now);
    /// buf.append(b"eee");
    /// assert_eq!(now.try_recv().unwrap().seq(), 4);
    /// assert_eq!(buf.tail_from(Start::Oldest).try_recv().unwrap().seq(), 2);
    /// ```
    pub fn tail_from(&self, start: Start) -> Tail {
        let cursor = Cursor::new(self, start, self.subscriber_capacity());
        let wait = cursor.shared().wait_slot();
        Tail {
            cursor,
            batch: VecDeque::new(),
            missed: 0,
            wait,
            thread: None,
        }
    }
}

/// Unparks a thread blocked in [`Tail::blocking_recv`] or [`Tail::recv_timeout`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl Tail {
    /// This follower, reading at most `entries` entries from the ring at a time (the size of a
    /// [`recv_batch`](Tail::recv_batch)) instead of the buffer's
    /// [`subscriber_capacity`](LogBuffer::subscriber_capacity).
    ///
    /// # Panics
    ///
    /// If `entries` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let live = buf.tail_from(memtail::Start::Now).batch_size(4096);
    /// assert_eq!(live.capacity(), 4096);
    /// ```
    #[track_caller]
    pub fn batch_size(mut self, entries: usize) -> Tail {
        check_subscriber_capacity(entries);
        self.cursor.set_batch(entries);
        self
    }

    /// Waits, blocking the thread, for the next entry; `None` once every handle to the buffer
    /// is gone and everything retained was received.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let mut tail = buf.tail_from(memtail::Start::Now);
    /// let writer = std::thread::spawn({
    ///     let buf = buf.clone();
    ///     move || { buf.append(b"from another thread"); }
    /// });
    /// assert_eq!(tail.blocking_recv().unwrap().seq(), 0);
    /// writer.join().unwrap();
    /// ```
    pub fn blocking_recv(&mut self) -> Option<Entry> {
        match self.block(None) {
            Ok(()) => self.pop(),
            Err(_) => None,
        }
    }

    /// Waits, blocking the thread, at most `timeout` for the next entry.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when nothing arrived in time;
    /// [`RecvTimeoutError::Disconnected`] once every handle to the buffer is gone and everything
    /// retained was received.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use memtail::RecvTimeoutError;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let mut tail = buf.tail_from(memtail::Start::Now);
    /// assert_eq!(tail.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// buf.append(b"one");
    /// assert_eq!(&tail.recv_timeout(Duration::from_secs(5)).unwrap()[..], b"one");
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Entry, RecvTimeoutError> {
        self.block(Instant::now().checked_add(timeout))?;
        self.pop().ok_or(RecvTimeoutError::Disconnected)
    }

    /// Waits, blocking the thread, for entries, then takes every one there is, up to a batch:
    /// the blocking [`recv_batch`](Tail::recv_batch).
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let mut tail = buf.tail_from(memtail::Start::Now);
    /// buf.append(b"a");
    /// buf.append(b"b");
    /// let batch = tail.blocking_recv_batch().unwrap();
    /// assert_eq!((batch.entries().len(), batch.next_seq()), (2, 2));
    /// ```
    pub fn blocking_recv_batch(&mut self) -> Option<Replay> {
        match self.block(None) {
            Ok(()) => Some(self.take_batch()),
            Err(_) => None,
        }
    }

    /// Makes sure the batch holds entries, parking the thread until a writer wakes it or
    /// `deadline` passes.
    fn block(&mut self, deadline: Option<Instant>) -> Result<(), RecvTimeoutError> {
        loop {
            if !self.batch.is_empty() {
                return Ok(());
            }
            let waker = self.thread_waker();
            match self.poll_fill(&waker) {
                Poll::Ready(true) => return Ok(()),
                Poll::Ready(false) => return Err(RecvTimeoutError::Disconnected),
                Poll::Pending => {}
            }
            // A wake-up that came before `park` makes it return at once; a spurious one goes
            // round the loop again.
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// A waker for this thread, made once per thread that blocks.
    fn thread_waker(&mut self) -> Waker {
        let current = thread::current();
        match &self.thread {
            Some((id, waker)) if *id == current.id() => waker.clone(),
            _ => {
                let id = current.id();
                let waker = Waker::from(Arc::new(Unpark(current)));
                self.thread = Some((id, waker.clone()));
                waker
            }
        }
    }

    /// Waits for the next entry, in async code; `None` once every handle to the buffer is gone
    /// and everything retained was received.
    ///
    /// Cancel-safe: dropping the future before it completes loses no entry.
    pub fn recv(&mut self) -> impl Future<Output = Option<Entry>> + '_ {
        poll_fn(move |cx| self.poll_recv(cx))
    }

    /// Polls for the next entry: what [`recv`](Tail::recv) and the `Stream` implementation
    /// do.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        match self.poll_fill(cx.waker()) {
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
    /// let mut live = buf.tail_from(memtail::Start::Now);
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
    /// [`capacity`](Tail::capacity) entries and 64 KiB (or one entry, if longer).
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
    /// let mut live = buf.tail_from(memtail::Start::Now);
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

    /// Polls for a batch: what [`recv_batch`](Tail::recv_batch) does.
    pub fn poll_recv_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<Replay>> {
        match self.poll_fill(cx.waker()) {
            Poll::Ready(true) => Poll::Ready(Some(self.take_batch())),
            Poll::Ready(false) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes every entry there is, up to a batch, without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Tail::try_recv).
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
    /// let mut live = buf.tail_from(memtail::Start::Now);
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
    /// [`recv_batch`](Tail::recv_batch) ([`batch_size`](Tail::batch_size)).
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
    fn poll_fill(&mut self, waker: &Waker) -> Poll<bool> {
        if !self.batch.is_empty() {
            return Poll::Ready(true);
        }
        let read = self.fill();
        if read.taken > 0 || read.closed {
            return Poll::Ready(read.taken > 0);
        }
        self.cursor.shared().wait(&mut self.wait, waker);
        // A writer that appended after the read above and before the waker was left did not see
        // it: read again (see `core/wait.rs`).
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

impl Drop for Tail {
    fn drop(&mut self) {
        self.cursor.shared().stop_waiting(&self.wait);
    }
}

#[cfg(feature = "tokio")]
impl futures_core::Stream for Tail {
    type Item = Entry;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        self.get_mut().poll_recv(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.batch.len(), None)
    }
}

impl fmt::Debug for Tail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tail")
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
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut followers: Vec<_> = (0..1000)
            .map(|_| buf.tail_from(crate::Start::Now))
            .collect();
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

    fn waiters_after_close(followers: &mut [crate::Tail]) -> usize {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for live in followers.iter_mut() {
            assert!(matches!(live.poll_recv(&mut cx), Poll::Ready(None)));
        }
        followers[0].cursor.shared().waiting()
    }
}
