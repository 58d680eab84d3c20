//! The publisher's thread: reads the ring by position into a bounded queue, publishes the queue in
//! batches, retries failures with backoff, and stops on request.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::publisher::{Publisher, PublisherStats};
use crate::follower::{Cursor, PressureWatch};
use crate::Entry;

pub(super) type Transform = Box<dyn FnMut(&Entry) -> Option<Bytes> + Send>;

/// The numeric settings of a publisher; see `PublisherBuilder` for their meaning.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub(super) interval: Duration,
    pub(super) queue: usize,
    pub(super) max_batch: usize,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) max_attempts: u32,
}

pub(super) struct Dispatcher {
    publisher: Box<dyn Publisher>,
    /// The publisher's position in the ring; `None` once stopped.
    cursor: Option<Cursor>,
    /// Entries just read from the ring, on their way into `queue`; kept for its storage.
    read: Vec<Entry>,
    /// Nudges from writers when the ring is three quarters full.
    pressure: PressureWatch,
    settings: Settings,
    transform: Option<Transform>,
    shared: Arc<Mutex<PublisherStats>>,
    control: Receiver<Instant>,
    queue: VecDeque<Entry>,
    /// Failed attempts of the entry now at the head of the queue.
    attempts: u32,
    /// Whether the last publishing round ended in a failure.
    failing: bool,
    stats: PublisherStats,
    jitter: Jitter,
}

/// What a publishing round ended with.
enum Round {
    /// The queue is empty.
    Drained,
    /// A failure: try again after this delay.
    Failed(Duration),
}

impl Dispatcher {
    pub(super) fn new(
        publisher: Box<dyn Publisher>,
        cursor: Cursor,
        settings: Settings,
        transform: Option<Transform>,
        shared: Arc<Mutex<PublisherStats>>,
        control: Receiver<Instant>,
    ) -> Dispatcher {
        Dispatcher {
            publisher,
            pressure: cursor.watch_pressure(),
            cursor: Some(cursor),
            read: Vec::new(),
            settings,
            transform,
            shared,
            control,
            queue: VecDeque::new(),
            attempts: 0,
            failing: false,
            stats: PublisherStats::default(),
            jitter: Jitter::new(),
        }
    }

    pub(super) fn run(mut self) {
        let start = Instant::now();
        let mut next_take = start + self.settings.interval;
        let mut next_attempt = next_take;
        let deadline = loop {
            let wake = next_take.min(next_attempt);
            let timeout = wake.saturating_duration_since(Instant::now());
            let mut nudged = false;
            crossbeam_channel::select! {
                recv(self.control) -> request => match request {
                    Ok(deadline) => break deadline,
                    // The handle is gone without asking to stop (it always asks): stop now.
                    Err(_) => break Instant::now(),
                },
                recv(self.pressure.nudges) -> _ => nudged = true,
                default(timeout) => {}
            }
            let now = Instant::now();
            // A nudge means the ring is three quarters full: read now, or lose the oldest of what
            // is unread at the next eviction.
            let take_due = now >= next_take || nudged;
            if now >= next_take {
                next_take = now + self.settings.interval;
            }
            if now >= next_attempt || (nudged && !self.failing) {
                // What was written up to now, and no more: under a writer faster than the
                // publisher, the loop would never end, nor see a stop request.
                let end = self.written_so_far();
                next_attempt = match self.take_and_publish(end) {
                    Round::Drained => next_take,
                    Round::Failed(delay) => Instant::now() + delay,
                };
            } else if take_due {
                // Waiting out a backoff: take what is new all the same (the queue keeps the newest),
                // up to what was written now, so that a faster writer cannot keep this loop from
                // hearing a stop request.
                let end = self.written_so_far();
                self.take(end);
            }
            self.publish_stats();
        };
        self.stop(deadline, next_attempt);
    }

    /// Takes the entries written before the stop request and publishes until they are all
    /// delivered or `deadline`; counts the rest; flushes.
    fn stop(&mut self, deadline: Instant, mut next_attempt: Instant) {
        // Entries written from here on are not this publisher's: it has stopped.
        let end = self.written_so_far();
        // A retry that was due later than the stop request may run now; backoff still applies to
        // the failures that happen from here on.
        next_attempt = next_attempt.min(Instant::now());
        loop {
            let more = self.take(end);
            if self.queue.is_empty() && !more {
                break;
            }
            if next_attempt > deadline {
                break;
            }
            let now = Instant::now();
            if now < next_attempt {
                std::thread::sleep(next_attempt - now);
            }
            next_attempt = match self.round() {
                Round::Drained => Instant::now(),
                Round::Failed(delay) => Instant::now() + delay,
            };
            self.publish_stats();
        }
        // What is still queued, or still in the ring unread, was not delivered in time.
        if let Some(mut cursor) = self.cursor.take() {
            let (missed, unread) = cursor.skip_to(end);
            self.stats.dropped_upstream += missed;
            self.stats.received += unread;
            self.stats.dropped_at_stop += unread;
        }
        self.stats.dropped_at_stop += self.queue.len() as u64;
        self.queue.clear();
        self.flush();
        self.stats.stopped = true;
        self.publish_stats();
    }

    /// The sequence number the next entry written will get.
    fn written_so_far(&self) -> u64 {
        match &self.cursor {
            Some(cursor) => cursor.shared().position(crate::core::Start::Now),
            None => 0,
        }
    }

    /// Takes new entries (written before `end`) and publishes them, again and again while the
    /// ring holds more than the queue could take and publishing works.
    fn take_and_publish(&mut self, end: u64) -> Round {
        loop {
            let more = self.take(end);
            match self.round() {
                Round::Drained if more => continue,
                outcome => return outcome,
            }
        }
    }

    /// Moves the entries written since the last take (and before `end`) from the ring into the
    /// queue, transforming them. While publishing works, it takes no more than the queue has
    /// room for and returns whether more are waiting in the ring: they are taken after the queue
    /// is published. While publishing fails (the last round failed), it takes them all, and the
    /// oldest queued entries make room.
    fn take(&mut self, end: u64) -> bool {
        let Some(cursor) = &mut self.cursor else {
            return false;
        };
        let failing = self.failing;
        loop {
            let wanted = end.saturating_sub(cursor.next_seq());
            if wanted == 0 {
                return false;
            }
            let room = self.settings.queue - self.queue.len();
            if room == 0 && !failing {
                return true;
            }
            let limit = if failing { cursor.batch() } else { room };
            let limit = limit.min(usize::try_from(wanted).unwrap_or(usize::MAX));
            let read = cursor.read_at_most(limit, &mut self.read);
            self.stats.dropped_upstream += read.missed;
            if read.taken == 0 {
                return false;
            }
            // One clock read for the entries taken together: they were written within one
            // interval of it (or the publisher fell behind, and says so in its drop counters).
            let taken_at = SystemTime::now();
            for entry in self.read.drain(..) {
                self.stats.received += 1;
                let entry = entry.stamped(taken_at);
                let entry = match &mut self.transform {
                    None => entry,
                    Some(transform) => {
                        match panic::catch_unwind(AssertUnwindSafe(|| transform(&entry))) {
                            Ok(Some(bytes)) => entry.with_bytes(bytes),
                            Ok(None) => {
                                self.stats.filtered += 1;
                                continue;
                            }
                            Err(_) => {
                                // A transform that panics loses that entry, visibly.
                                self.stats.filtered += 1;
                                self.stats.last_error = Some("transform panicked".into());
                                continue;
                            }
                        }
                    }
                };
                if self.queue.len() == self.settings.queue {
                    self.queue.pop_front();
                    self.stats.dropped_queue_full += 1;
                    // The head changed: the new one has not failed yet.
                    self.attempts = 0;
                }
                self.queue.push_back(entry);
            }
        }
    }

    /// Publishes batches until the queue is empty or an attempt fails, then flushes.
    fn round(&mut self) -> Round {
        if self.queue.is_empty() {
            self.failing = false;
            return Round::Drained;
        }
        let outcome = loop {
            if self.queue.is_empty() {
                break Round::Drained;
            }
            // Before each batch, which can take long (a slow daemon): `stats()` shows what was
            // received and queued meanwhile, not what the last round ended with.
            self.publish_stats();
            let len = self.queue.len().min(self.settings.max_batch);
            let batch = &self.queue.make_contiguous()[..len];
            let publisher = &mut self.publisher;
            let result = panic::catch_unwind(AssertUnwindSafe(|| publisher.publish(batch)));
            let (delivered, failure, permanent) = match result {
                Ok(Ok(0)) => (
                    0,
                    Some("the publisher delivered none of the batch".to_owned()),
                    false,
                ),
                Ok(Ok(delivered)) => (delivered.min(len), None, false),
                Ok(Err(error)) => (
                    error.delivered().min(len),
                    Some(error.to_string()),
                    error.is_permanent(),
                ),
                Err(_) => (0, Some("the publisher panicked".to_owned()), false),
            };
            self.queue.drain(..delivered);
            self.stats.delivered += delivered as u64;
            self.stats.resent = self.publisher.resent();
            self.stats.cut = self.publisher.cut();
            if delivered > 0 {
                self.attempts = 0;
            }
            let Some(failure) = failure else {
                continue;
            };
            self.stats.failed_attempts += 1;
            self.stats.last_error = Some(failure);
            if permanent && !self.queue.is_empty() {
                // No retry can mend it: drop the entry at the head and go on with the rest.
                self.queue.pop_front();
                self.stats.dropped_permanent += 1;
                self.attempts = 0;
                continue;
            }
            self.attempts += 1;
            if self.attempts >= self.settings.max_attempts {
                // Give up on the entry at the head, so that it cannot block the others.
                self.queue.pop_front();
                self.stats.dropped_after_attempts += 1;
                self.attempts = 0;
                continue;
            }
            break Round::Failed(self.jitter.apply(backoff(&self.settings, self.attempts)));
        };
        self.failing = matches!(outcome, Round::Failed(_));
        self.flush();
        outcome
    }

    fn flush(&mut self) {
        let publisher = &mut self.publisher;
        match panic::catch_unwind(AssertUnwindSafe(|| publisher.flush())) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.stats.last_error = Some(format!("flush failed: {error}")),
            Err(_) => self.stats.last_error = Some("the publisher panicked in flush".into()),
        }
    }

    fn publish_stats(&mut self) {
        self.stats.queued = self.queue.len() as u64;
        self.shared.lock().clone_from(&self.stats);
    }
}

/// The delay before the next try after `attempts` failed attempts of one entry (1 or more):
/// `min · 2^(attempts - 1)`, at most `max`, before jitter.
pub(super) fn backoff(settings: &Settings, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    settings
        .backoff_min
        .saturating_mul(factor)
        .min(settings.backoff_max)
}

/// "Equal jitter": a delay `d` becomes a random delay between `d / 2` and `d`, so that publishers
/// that failed together do not retry together.
struct Jitter {
    state: u64,
}

impl Jitter {
    fn new() -> Jitter {
        // Seeded from the standard library's per-process random hash keys: no extra dependency.
        let seed = RandomState::new().build_hasher().finish();
        Jitter { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn apply(&mut self, delay: Duration) -> Duration {
        let half = delay / 2;
        let spread = (delay - half).as_nanos() as u64;
        half + Duration::from_nanos(if spread == 0 {
            0
        } else {
            self.next() % (spread + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(min_ms: u64, max_ms: u64) -> Settings {
        Settings {
            interval: Duration::from_millis(200),
            queue: 10,
            max_batch: 10,
            backoff_min: Duration::from_millis(min_ms),
            backoff_max: Duration::from_millis(max_ms),
            max_attempts: 10,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let s = settings(100, 30_000);
        let delays: Vec<u64> = (1..=11)
            .map(|a| backoff(&s, a).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert_eq!(backoff(&s, u32::MAX), Duration::from_millis(30_000));
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let mut jitter = Jitter::new();
        let delay = Duration::from_millis(100);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..10_000 {
            let jittered = jitter.apply(delay);
            assert!(jittered >= delay / 2 && jittered <= delay, "{jittered:?}");
            seen_low |= jittered < delay * 3 / 5;
            seen_high |= jittered > delay * 9 / 10;
        }
        assert!(seen_low && seen_high, "jitter spreads over the range");
        assert_eq!(jitter.apply(Duration::ZERO), Duration::ZERO);
    }
}
