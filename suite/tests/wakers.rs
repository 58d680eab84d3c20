//! Wakers are executor code, and executors log: a waker whose clone, wake or drop logs into the
//! very buffer its follower reads must not deadlock it (tokio does this when built with its
//! tracing instrumentation and a subscriber at TRACE writes into memtail). Each test runs under a
//! deadline, so that a deadlock is a failure, not a hung run.
// A waker that runs code of its own when cloned can only be made from a `RawWaker`.
#![allow(unsafe_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use memtail::LogBuffer;
use memtail_suite::process::with_deadline;

/// What the logging waker writes into, and how often each of its functions ran.
struct Target {
    buf: LogBuffer,
    clones: AtomicU64,
    wakes: AtomicU64,
    drops: AtomicU64,
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn target<'a>(data: *const ()) -> &'a Target {
    // SAFETY: every RawWaker of this vtable points at a `Target` leaked by `logging_waker`,
    // which lives for the rest of the process.
    unsafe { &*data.cast::<Target>() }
}

fn clone(data: *const ()) -> RawWaker {
    let target = target(data);
    target.clones.fetch_add(1, Ordering::Relaxed);
    target.buf.append(b"waker cloned\n");
    RawWaker::new(data, &VTABLE)
}

fn wake(data: *const ()) {
    wake_by_ref(data);
    drop_waker(data);
}

fn wake_by_ref(data: *const ()) {
    let target = target(data);
    target.wakes.fetch_add(1, Ordering::Relaxed);
    target.buf.append(b"waker woken\n");
}

fn drop_waker(data: *const ()) {
    let target = target(data);
    target.drops.fetch_add(1, Ordering::Relaxed);
    target.buf.append(b"waker dropped\n");
}

/// A waker that logs into `buf` whenever it is cloned, woken or dropped.
fn logging_waker(buf: &LogBuffer) -> (Waker, &'static Target) {
    let target: &'static Target = Box::leak(Box::new(Target {
        buf: buf.clone(),
        clones: AtomicU64::new(0),
        wakes: AtomicU64::new(0),
        drops: AtomicU64::new(0),
    }));
    let raw = RawWaker::new(std::ptr::from_ref(target).cast::<()>(), &VTABLE);
    // SAFETY: the vtable's functions keep the contract: the data pointer stays valid (leaked),
    // and clone returns a RawWaker of the same vtable and data.
    (unsafe { Waker::from_raw(raw) }, target)
}

#[test]
fn a_waker_that_logs_when_cloned_woken_or_dropped_deadlocks_nothing() {
    with_deadline(Duration::from_secs(60), || {
        let buf = LogBuffer::with_capacity(1 << 20);
        // Another follower waits, so that every write wakes the waiters.
        let mut other = buf.tail_from(memtail::Start::Now);
        let noop = Waker::noop();
        assert!(pin!(other.recv())
            .poll(&mut Context::from_waker(noop))
            .is_pending());

        let (waker, counts) = logging_waker(&buf);
        let mut follower = buf.tail_from(memtail::Start::Now);
        let mut cx = Context::from_waker(&waker);
        // Leaving its waker clones it, which logs, which wakes the waiters (this one among them
        // when it is on the list, which wakes and logs again): it must come back, not hang.
        let mut received = 0;
        for round in 0..100 {
            match pin!(follower.recv()).poll(&mut cx) {
                Poll::Ready(Some(_)) => received += 1,
                Poll::Ready(None) => panic!("the buffer is open"),
                Poll::Pending => {}
            }
            buf.append(format!("write {round}\n").as_bytes());
        }
        drop(follower);
        drop(waker);
        assert!(counts.clones.load(Ordering::Relaxed) > 0);
        assert!(counts.wakes.load(Ordering::Relaxed) > 0);
        assert!(counts.drops.load(Ordering::Relaxed) > 0);
        assert!(received > 0);
        // Everything logged along the way is in the ring, in order, once.
        let stats = buf.stats();
        assert_eq!(stats.entries_written, stats.retained_entries);
        let seqs: Vec<u64> = buf.entries().iter().map(|entry| entry.seq()).collect();
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1));
    });
}
