//! The one way memtail runs a thread of its own (an error printer, a publisher, a file follower,
//! a server) and stops it: the handle's `stop(timeout)` asks the thread to end, then
//! [`Worker::join_until`] waits for it at most until a deadline; dropping the handle does the
//! same with a fixed bound. A thread stuck past it (a write to a pipe nobody reads, a file
//! system that hangs) is left to end on its own: no stop and no drop waits without a bound.

use std::io;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

/// `timeout` from now; a timeout too long to add (`Duration::MAX`, "wait as long as it
/// takes") gives a moment a century away instead of a panic.
pub(crate) fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// A thread that says when it has finished, however it finishes (returning or unwinding). A
/// handle keeps it in an `Option` and takes it to stop: a second stop (the drop after `stop`)
/// then returns at once.
pub(crate) struct Worker {
    thread: JoinHandle<()>,
    /// Disconnected when the thread has finished.
    done: Receiver<()>,
}

impl Worker {
    /// Runs `run` on a thread named `name`.
    pub(crate) fn spawn(name: String, run: impl FnOnce() + Send + 'static) -> io::Result<Worker> {
        let (finished, done) = crossbeam_channel::bounded::<()>(0);
        let thread = thread::Builder::new().name(name).spawn(move || {
            // Dropped when `run` returns or unwinds: either way, `done` disconnects.
            let _finished = finished;
            run();
        })?;
        Ok(Worker { thread, done })
    }

    /// Waits until the thread has finished and joins it, or until `deadline`, leaving it to
    /// finish on its own; returns whether it has finished.
    pub(crate) fn join_until(self, deadline: Instant) -> bool {
        match self.done.recv_deadline(deadline) {
            // A panic in it is the handle's to tell (its counters say `stopped: false`).
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {
                let _ = self.thread.join();
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
        }
    }

    /// Waits, without a bound, until the thread has finished (for a handle whose thread ends by
    /// itself, such as a reader's follower at the reader's end).
    #[cfg(feature = "follow")]
    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }

    /// Whether the thread is still at work.
    #[cfg(feature = "follow")]
    pub(crate) fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_waits_no_longer_than_its_deadline() {
        let (release, hold) = crossbeam_channel::bounded::<()>(0);
        let (back, returned) = crossbeam_channel::bounded(1);
        let worker = Worker::spawn("memtail-test".into(), move || {
            let _ = hold.recv();
            let _ = back.send(());
        })
        .unwrap();
        assert!(!worker.join_until(Instant::now() + Duration::from_millis(10)));
        // Left to finish on its own: released, it does.
        drop(release);
        assert_eq!(returned.recv_timeout(Duration::from_secs(30)), Ok(()));
        let worker = Worker::spawn("memtail-test".into(), || {}).unwrap();
        assert!(worker.join_until(Instant::now() + Duration::from_secs(30)));
    }

    #[test]
    fn a_thread_that_panics_has_finished_too() {
        let worker = Worker::spawn("memtail-test".into(), || panic!("on purpose")).unwrap();
        assert!(worker.join_until(Instant::now() + Duration::from_secs(30)));
    }

    #[test]
    fn a_timeout_too_long_to_add_is_no_panic() {
        assert!(deadline(Duration::MAX) > Instant::now() + Duration::from_secs(3600));
        let worker = Worker::spawn("memtail-test".into(), || {}).unwrap();
        assert!(worker.join_until(deadline(Duration::MAX)));
    }
}
