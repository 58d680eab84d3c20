//! The async followers waiting for the next entry: a list of wakers, and the argument for why
//! no wake-up is lost.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;

use parking_lot::Mutex;

// Implementation notes.
//
// An async follower that finds nothing to read leaves its waker here, then reads once more
// before it returns `Pending`. A writer, still holding the ring's write lock after appending,
// loads `any`; if it is set, the writer takes the whole list after releasing the lock and wakes
// everyone on it.
//
// Why no wake-up is lost: the follower sets `any` before it takes the read lock for its second
// look. If that look came before the writer's append, the read lock's release happens-before
// the writer's acquisition of the write lock, so the writer's load sees `any` set (or a later
// `false`, stored by a writer that took the list, this follower's waker with it, and woke it).
// If the look came after, it sees the entry. `any` is only cleared under `list`'s lock, when
// the list is taken, so a waker on the list always has `any` set.
//
// The writer's cost is one relaxed load under the lock, plus, when some follower waits, one
// wake per waiting follower after it. A follower that is busy (reading, or blocked on its
// socket) is not on the list and costs nothing. Each taking of the list starts a new epoch; a
// follower remembers the epoch it registered in, so that it leaves its waker once per epoch,
// and takes it back when dropped, so the list never holds more than one waker per follower.
//
// A waker is executor code: cloning, waking or dropping one may log (into this very buffer,
// whose writer then takes `list`'s lock to wake the waiters), panic, or drop a task that owns
// a follower (which takes `list`'s lock to forget its slot). So no waker is cloned, woken or
// dropped while `list`'s lock or the ring's lock is held: `register` clones before locking
// and drops the waker it replaced after unlocking, `forget` drops after unlocking, and
// `wake_all` takes the list under the lock and wakes after. None of this changes the argument
// above: `any` is still set under the lock, before the follower's second look.

/// The async followers waiting for the next entry.
pub(crate) struct Waiters {
    list: Mutex<Vec<(u64, Waker)>>,
    /// Whether `list` may hold a waker.
    any: AtomicBool,
    /// How many times the list was taken; written under `list`'s lock.
    epoch: AtomicU64,
    next_id: AtomicU64,
}

/// A follower's side of the list.
pub(crate) struct WaitSlot {
    id: u64,
    /// The epoch in which this follower's waker went on the list.
    epoch: Option<u64>,
    /// The waker left then, to tell whether the next one is the same.
    waker: Option<Waker>,
}

thread_local! {
    /// Wakers taken from the list, woken after its lock is released; kept per thread so that
    /// their storage is reused.
    static TAKEN: Cell<Vec<(u64, Waker)>> = const { Cell::new(Vec::new()) };
}

/// Wakers taken off the list: should one's `wake` panic, the others are still woken as this
/// unwinds, instead of being dropped with no writer left to wake them.
struct WakeAll(Vec<(u64, Waker)>);

impl Drop for WakeAll {
    fn drop(&mut self) {
        while let Some((_, waker)) = self.0.pop() {
            waker.wake();
        }
    }
}

impl Waiters {
    pub(crate) fn new() -> Waiters {
        Waiters {
            list: Mutex::new(Vec::new()),
            any: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        }
    }

    pub(crate) fn slot(&self) -> WaitSlot {
        WaitSlot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: None,
            waker: None,
        }
    }

    /// Whether some follower may be waiting. Writers call it holding the ring's write lock.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// Leaves `waker` for the next writer. The caller then looks at the ring once more.
    pub(crate) fn register(&self, slot: &mut WaitSlot, waker: &Waker) {
        let registered = slot.epoch == Some(self.epoch.load(Ordering::Acquire));
        if registered && slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return;
        }
        // Cloned before the lock is taken, and a waker replaced is dropped after it is
        // released: cloning or dropping one runs the executor's code, which may log into
        // this buffer (whose writer then wakes the waiters, locking the list) or drop a task
        // that owns a follower (which locks the list too).
        let mut cloned = Some(waker.clone());
        let mut list = self.list.lock();
        let mut replaced = None;
        if slot.epoch == Some(self.epoch.load(Ordering::Relaxed)) {
            if let Some((_, left)) = list.iter_mut().find(|(id, _)| *id == slot.id) {
                replaced = cloned.take().map(|new| std::mem::replace(left, new));
            }
        } else if let Some(new) = cloned.take() {
            list.push((slot.id, new));
            slot.epoch = Some(self.epoch.load(Ordering::Relaxed));
        }
        self.any.store(true, Ordering::Relaxed);
        drop(list);
        drop(replaced);
        drop(cloned);
        match &mut slot.waker {
            Some(left) => left.clone_from(waker),
            none => *none = Some(waker.clone()),
        }
    }

    /// Takes back the waker a dropped follower may have left.
    pub(crate) fn forget(&self, slot: &WaitSlot) {
        if slot.epoch.is_none() {
            return;
        }
        let mut list = self.list.lock();
        let mut removed = None;
        if slot.epoch == Some(self.epoch.load(Ordering::Relaxed)) {
            if let Some(at) = list.iter().position(|(id, _)| *id == slot.id) {
                removed = Some(list.swap_remove(at));
            }
        }
        // Dropped after the lock is released (see `register`).
        drop(list);
        drop(removed);
    }

    /// Wakes every waiting follower. Called without the ring's lock.
    pub(crate) fn wake_all(&self) {
        // A thread whose locals are being destroyed (a log written from a thread-local's
        // destructor) gets a fresh list instead of a panic.
        let mut taken = WakeAll(TAKEN.try_with(Cell::take).unwrap_or_default());
        {
            let mut list = self.list.lock();
            self.any.store(false, Ordering::Relaxed);
            let epoch = self.epoch.load(Ordering::Relaxed);
            self.epoch.store(epoch + 1, Ordering::Release);
            std::mem::swap(&mut *list, &mut taken.0);
        }
        while let Some((_, waker)) = taken.0.pop() {
            waker.wake();
        }
        let storage = std::mem::take(&mut taken.0);
        let _ = TAKEN.try_with(|cell| cell.set(storage));
    }

    /// How many wakers the list holds now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.lock().len()
    }
}
