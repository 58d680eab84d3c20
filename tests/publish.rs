//! Publishers: retries with backoff, poison entries, queue overflow, stop, and the built-in file,
//! writer and Unix-socket publishers. Waits are bounded polls on counters, never bare sleeps.
#![cfg(feature = "publish")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memtail::publish::{PublishError, Publisher, PublisherHandle, PublisherStats};
use memtail::{Entry, LogBuffer};
use parking_lot::Mutex;

#[path = "support/shared_writer.rs"]
mod shared_writer;

/// Polls `check` until it holds, failing the test after a generous deadline.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn wait_for_stats(handle: &PublisherHandle, what: &str, check: impl Fn(&PublisherStats) -> bool) {
    wait_for(what, || check(&handle.stats()));
}

/// A publisher driven by a script: records every call, fails while `down` or when a batch holds a
/// poison entry, and otherwise delivers.
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<Mutex<Vec<Vec<u64>>>>,
    delivered: Arc<Mutex<Vec<u64>>>,
    fail_first: Arc<Mutex<u32>>,
    down: Arc<AtomicBool>,
}

impl Publisher for Scripted {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        self.calls
            .lock()
            .push(batch.iter().map(Entry::seq).collect());
        {
            let mut fail_first = self.fail_first.lock();
            if *fail_first > 0 {
                *fail_first -= 1;
                return Err(PublishError::msg("scripted failure"));
            }
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError::msg("down"));
        }
        if let Some(poison) = batch.iter().position(|e| &e[..] == b"poison") {
            self.delivered
                .lock()
                .extend(batch[..poison].iter().map(Entry::seq));
            return Err(PublishError::msg("cannot ship poison").with_delivered(poison));
        }
        self.delivered.lock().extend(batch.iter().map(Entry::seq));
        Ok(batch.len())
    }
}

fn fast(buf: &LogBuffer, publisher: Scripted) -> memtail::publish::PublisherBuilder<Scripted> {
    buf.publisher(publisher)
        .interval(Duration::from_millis(1))
        .backoff(Duration::from_millis(1), Duration::from_millis(4))
}

fn assert_accounted(stats: &PublisherStats, written: u64) {
    assert_eq!(stats.written(), written, "{stats:?}");
    assert_eq!(
        stats.received,
        stats.delivered
            + stats.queued
            + stats.filtered
            + stats.dropped_queue_full
            + stats.dropped_after_attempts
            + stats.dropped_permanent
            + stats.dropped_at_stop,
        "{stats:?}"
    );
}

/// Fails, permanently, on any entry that says "poison"; delivers the rest.
#[derive(Default)]
struct Picky {
    got: Arc<Mutex<Vec<String>>>,
}

impl Publisher for Picky {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        for (n, entry) in batch.iter().enumerate() {
            let text = String::from_utf8_lossy(entry).into_owned();
            if text.contains("poison") {
                return Err(PublishError::msg("never fits")
                    .with_delivered(n)
                    .permanent());
            }
            self.got.lock().push(text);
        }
        Ok(batch.len())
    }
}

#[test]
fn a_permanent_failure_drops_that_entry_at_once_and_the_rest_go_on() {
    let buf = LogBuffer::new();
    let picky = Picky::default();
    let got = Arc::clone(&picky.got);
    // A long backoff and many attempts: a retried failure would hold the rest up for minutes.
    let handle = buf
        .publisher(picky)
        .interval(Duration::from_millis(5))
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .max_attempts(100)
        .start();
    for text in ["a\n", "poison\n", "b\n", "c\n"] {
        buf.append(text.as_bytes());
    }
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(*got.lock(), ["a\n", "b\n", "c\n"]);
    assert_eq!(stats.dropped_permanent, 1, "{stats:?}");
    assert_eq!(stats.failed_attempts, 1, "tried once, not again: {stats:?}");
    assert!(
        stats.last_error.as_deref().unwrap().contains("permanent"),
        "{stats:?}"
    );
    assert_accounted(&stats, 4);
}

#[test]
fn failures_are_retried_until_everything_is_delivered_once_in_order() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    *script.fail_first.lock() = 3;
    let handle = fast(&buf, script.clone()).max_attempts(10).start();
    for i in 0..50 {
        buf.append(format!("line {i}\n").as_bytes());
    }
    wait_for_stats(&handle, "all 50 delivered", |s| s.delivered == 50);
    let stats = handle.stop(Duration::from_secs(10));

    assert_eq!(*script.delivered.lock(), (0..50).collect::<Vec<u64>>());
    assert_eq!(stats.failed_attempts, 3);
    assert_eq!(stats.last_error.as_deref(), Some("scripted failure"));
    assert_eq!(stats.dropped(), 0);
    assert_accounted(&stats, 50);
    // Every failed attempt offered the same head again: the retries, then the success.
    let calls = script.calls.lock();
    assert!(calls.len() >= 4);
    let heads: Vec<u64> = calls.iter().take(4).map(|batch| batch[0]).collect();
    assert_eq!(heads, [0, 0, 0, 0]);
}

#[test]
fn no_retry_comes_before_its_backoff() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    *script.fail_first.lock() = 1;
    // Takes entries every millisecond, but retries a failure only after half an hour or more.
    let handle = buf
        .publisher(script.clone())
        .interval(Duration::from_millis(1))
        .backoff(Duration::from_secs(3600), Duration::from_secs(3600))
        .start();
    buf.append(b"first");
    wait_for_stats(&handle, "the first attempt to fail", |s| {
        s.failed_attempts == 1
    });
    // Later ticks take new entries, so the publisher's loop has run on since the failure...
    for i in 0..3u64 {
        buf.append(b"more");
        wait_for_stats(&handle, "a later tick", |s| s.received == 2 + i);
    }
    // ...without trying again: the backoff holds.
    assert_eq!(script.calls.lock().len(), 1);
    assert_eq!(handle.stats().queued, 4);
    // `stop` does not wait out a backoff: it tries at once, and this time it works.
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(script.calls.lock().len(), 2);
    assert_eq!(stats.delivered, 4);
    assert_accounted(&stats, 4);
}

#[test]
fn a_poison_entry_is_dropped_after_max_attempts_and_the_rest_get_through() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    let handle = fast(&buf, script.clone()).max_attempts(3).start();
    for i in 0..10 {
        let line = if i == 4 {
            "poison".to_owned()
        } else {
            format!("ok {i}")
        };
        buf.append(line.as_bytes());
    }
    wait_for_stats(&handle, "the rest delivered", |s| {
        s.delivered == 9 && s.dropped_after_attempts == 1
    });
    let stats = handle.stop(Duration::from_secs(10));

    let expected: Vec<u64> = (0..10).filter(|&i| i != 4).collect();
    assert_eq!(*script.delivered.lock(), expected);
    assert_eq!(stats.dropped_after_attempts, 1);
    assert_eq!(stats.failed_attempts, 3);
    assert_eq!(stats.last_error.as_deref(), Some("cannot ship poison"));
    assert_accounted(&stats, 10);
}

#[test]
fn a_full_queue_drops_its_oldest_entries_and_counts_them() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    script.down.store(true, Ordering::SeqCst);
    let handle = fast(&buf, script.clone())
        .queue(10)
        .max_attempts(u32::MAX)
        .start();
    // Five bursts of ten, each taken into the queue before the next: the queue keeps the newest.
    for burst in 0..5u64 {
        for i in 0..10 {
            buf.append(format!("burst {burst} line {i}").as_bytes());
        }
        wait_for_stats(&handle, "the burst taken", |s| {
            s.received == (burst + 1) * 10
        });
    }
    let down = handle.stats();
    assert_eq!(down.dropped_queue_full, 40);
    assert_eq!(down.queued, 10);
    assert_eq!(down.delivered, 0);
    assert!(down.failed_attempts > 0);

    script.down.store(false, Ordering::SeqCst);
    wait_for_stats(&handle, "the queue delivered", |s| s.delivered == 10);
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(*script.delivered.lock(), (40..50).collect::<Vec<u64>>());
    assert_eq!(stats.delivered + stats.dropped(), 50);
    assert_accounted(&stats, 50);
}

#[test]
fn a_burst_larger_than_the_queue_waits_in_the_ring_and_is_delivered_in_full() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    // A long interval: the whole burst arrives before the publisher takes anything.
    let handle = buf
        .publisher(script.clone())
        .interval(Duration::from_secs(3600))
        .queue(10)
        .start();
    for i in 0..25 {
        buf.append(format!("{i}").as_bytes());
    }
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!(*script.delivered.lock(), (0..25).collect::<Vec<u64>>());
    // Never more than the queue at once: the rest waited in the ring.
    assert!(script.calls.lock().iter().all(|batch| batch.len() <= 10));
    assert_accounted(&stats, 25);
}

#[test]
fn entries_the_ring_evicted_before_the_publisher_read_them_are_counted_upstream() {
    // The publisher is held inside its first `publish` while the ring goes round: it reads
    // nothing meanwhile, whatever the scheduler does, so what was evicted is known exactly.
    let buf = LogBuffer::with_capacity(100);
    let (entered, release, held) = Held::new();
    let handle = buf
        .publisher(held.clone())
        .interval(Duration::from_millis(1))
        .start();
    buf.append(b"first\n");
    entered.recv_timeout(Duration::from_secs(20)).unwrap();
    for i in 0..50 {
        buf.append(format!("entry {i:02}\n").as_bytes());
    }
    let retained = buf.stats().retained_entries;
    release.send(()).unwrap();
    let stats = handle.stop(Duration::from_secs(10));
    // The oldest were lost, and counted; the newest, still in the ring, were delivered.
    assert_eq!(stats.dropped_upstream, 50 - retained, "{stats:?}");
    assert_eq!(
        *held.delivered.lock(),
        std::iter::once(0)
            .chain(51 - retained..51)
            .collect::<Vec<u64>>()
    );
    assert_eq!(buf.stats().follower_missed, 50 - retained);
    assert_accounted(&stats, 51);
}

/// A publisher whose first `publish` says it was entered and waits for the test to release it.
#[derive(Clone)]
struct Held {
    entered: Arc<Mutex<Option<std::sync::mpsc::Sender<()>>>>,
    release: Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
    delivered: Arc<Mutex<Vec<u64>>>,
}

impl Held {
    fn new() -> (
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
        Held,
    ) {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let held = Held {
            entered: Arc::new(Mutex::new(Some(entered_tx))),
            release: Arc::new(Mutex::new(release_rx)),
            delivered: Arc::default(),
        };
        (entered, release, held)
    }
}

impl Publisher for Held {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        if let Some(entered) = self.entered.lock().take() {
            entered.send(()).unwrap();
            let _ = self.release.lock().recv();
        }
        self.delivered.lock().extend(batch.iter().map(Entry::seq));
        Ok(batch.len())
    }
}

#[test]
fn a_ring_filling_up_nudges_the_publisher_before_it_evicts_anything_unread() {
    // An interval of an hour: only the nudge, when the ring is three quarters full, makes the
    // publisher read. Each time, the writer waits for it to have read, then writes on through the
    // next eviction: nothing it had not read is ever evicted. (Writers nudge at most once a
    // millisecond, so each round also lets that much time pass: not to wait for the publisher,
    // which `wait_for_stats` does, but to be allowed the next nudge.)
    let buf = LogBuffer::with_capacity(1000);
    let script = Scripted::default();
    let handle = buf
        .publisher(script.clone())
        .interval(Duration::from_secs(3600))
        .start();
    for i in 0..100u64 {
        let before = buf.len();
        buf.append(format!("entry {i:03} {}\n", "x".repeat(39)).as_bytes());
        if before < 750 && buf.len() >= 750 {
            wait_for_stats(&handle, "the nudged publisher to read", |s| {
                s.received == i + 1
            });
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(
        buf.stats().entries_evicted > 50,
        "the ring went round several times"
    );
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!(*script.delivered.lock(), (0..100).collect::<Vec<u64>>());
    assert_accounted(&stats, 100);
}

#[test]
fn a_publisher_costs_the_writer_nothing_and_is_a_follower() {
    let buf = LogBuffer::new();
    let handle = buf.publish(Scripted::default());
    let stats = buf.stats();
    assert_eq!((stats.followers, stats.subscribers), (1, 0));
    handle.stop(Duration::from_secs(10));
    assert_eq!(buf.stats().followers, 0);
}

#[test]
fn stop_delivers_everything_queued_when_the_publisher_works() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    let handle = buf
        .publisher(script.clone())
        .interval(Duration::from_secs(3600))
        .max_batch(7)
        .start();
    for i in 0..100 {
        buf.append(format!("{i}").as_bytes());
    }
    let stats = handle.stop(Duration::from_secs(10));
    assert!(stats.stopped);
    assert_eq!(stats.delivered, 100);
    assert_eq!(*script.delivered.lock(), (0..100).collect::<Vec<u64>>());
    assert!(script.calls.lock().iter().all(|batch| batch.len() <= 7));
    assert_accounted(&stats, 100);
}

#[test]
fn stop_gives_up_at_its_timeout_when_the_publisher_fails() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    script.down.store(true, Ordering::SeqCst);
    let handle = fast(&buf, script.clone()).max_attempts(u32::MAX).start();
    for i in 0..20 {
        buf.append(format!("{i}").as_bytes());
    }
    let stats = handle.stop(Duration::from_millis(300));
    // Returned: the thread gave up and counted what was left.
    assert!(stats.stopped, "{stats:?}");
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.dropped_at_stop, 20);
    assert!(stats.failed_attempts > 0);
    assert_accounted(&stats, 20);
}

#[test]
fn stop_is_heard_while_writers_outrun_the_publisher() {
    // A writer that never pauses and a queue of 10: there is always more in the ring than the
    // queue takes. The publisher must still come round to its stop request.
    let buf = LogBuffer::with_capacity(1 << 20);
    let script = Scripted::default();
    let handle = buf
        .publisher(script.clone())
        .interval(Duration::from_millis(1))
        .queue(10)
        .start();
    let writing = Arc::new(AtomicBool::new(true));
    let writer = std::thread::spawn({
        let (buf, writing) = (buf.clone(), Arc::clone(&writing));
        move || {
            while writing.load(Ordering::Relaxed) {
                buf.append(b"more");
            }
        }
    });
    wait_for_stats(&handle, "some deliveries", |s| s.delivered > 1000);
    let stats = handle.stop(Duration::from_secs(5));
    writing.store(false, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(stats.stopped, "{stats:?}");
    assert_eq!(
        stats.received,
        stats.delivered + stats.dropped_at_stop,
        "{stats:?}"
    );
}

/// Delivers one entry per call, taking 2 ms for it: a slow destination.
struct Slow;

impl Publisher for Slow {
    fn publish(&mut self, _: &[Entry]) -> Result<usize, PublishError> {
        std::thread::sleep(Duration::from_millis(2));
        Ok(1)
    }
}

#[test]
fn stop_counts_what_it_could_not_read_from_the_ring_in_time() {
    // A queue of one and a destination that takes 2 ms an entry: in 200 ms, stop delivers a
    // hundred or so of the 1000 entries; the rest never left the ring, and count as dropped at
    // stop, so that every entry is accounted for.
    let buf = LogBuffer::with_capacity(1 << 20);
    let handle = buf
        .publisher(Slow)
        .interval(Duration::from_secs(3600))
        .queue(1)
        .start();
    for i in 0..1000 {
        buf.append(format!("{i}").as_bytes());
    }
    let stats = handle.stop(Duration::from_millis(200));
    assert!(stats.stopped, "{stats:?}");
    assert!(
        stats.delivered < 1000 && stats.dropped_at_stop > 0,
        "{stats:?}"
    );
    assert_eq!(stats.dropped_upstream, 0, "the ring held them all");
    assert_eq!(stats.delivered + stats.dropped_at_stop, 1000);
    assert_accounted(&stats, 1000);
}

/// Blocks in `publish` until released.
struct Stuck(crossbeam_channel::Receiver<()>);

impl Publisher for Stuck {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        let _ = self.0.recv();
        Ok(batch.len())
    }
}

#[test]
fn stop_returns_even_when_a_publish_call_hangs() {
    let buf = LogBuffer::new();
    let (release, gate) = crossbeam_channel::bounded(1);
    let handle = buf
        .publisher(Stuck(gate))
        .interval(Duration::from_millis(1))
        .start();
    buf.append(b"stuck");
    let stats = handle.stop(Duration::from_millis(100));
    assert!(!stats.stopped, "the publish call is still running");
    release.send(()).unwrap();
}

#[test]
fn a_panicking_publisher_counts_as_failed_attempts() {
    struct Panics;
    impl Publisher for Panics {
        fn publish(&mut self, _: &[Entry]) -> Result<usize, PublishError> {
            panic!("publisher bug");
        }
    }
    let buf = LogBuffer::new();
    let handle = buf
        .publisher(Panics)
        .interval(Duration::from_millis(1))
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .max_attempts(2)
        .start();
    buf.append(b"x");
    wait_for_stats(&handle, "the entry given up", |s| {
        s.dropped_after_attempts == 1
    });
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(stats.failed_attempts, 2);
    assert_eq!(stats.last_error.as_deref(), Some("the publisher panicked"));
    assert_accounted(&stats, 1);
}

#[test]
fn transform_reshapes_and_filters_entries() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collected = Arc::clone(&seen);
    let handle = buf
        .publisher(script.clone())
        .interval(Duration::from_secs(3600))
        .transform(move |entry: &Entry| {
            if entry.starts_with(b"debug") {
                return None;
            }
            let json = format!("{{\"seq\":{}}}\n", entry.seq());
            collected.lock().push(json.clone());
            Some(json)
        })
        .start();
    for line in ["info a", "debug b", "info c"] {
        buf.append(line.as_bytes());
    }
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(stats.filtered, 1);
    assert_eq!(stats.delivered, 2);
    assert_eq!(*script.delivered.lock(), [0, 2]);
    assert_eq!(*seen.lock(), ["{\"seq\":0}\n", "{\"seq\":2}\n"]);
    assert_accounted(&stats, 3);
}

#[test]
fn dropping_the_handle_publishes_what_is_queued() {
    let buf = LogBuffer::new();
    let script = Scripted::default();
    let handle = buf
        .publisher(script.clone())
        .interval(Duration::from_secs(3600))
        .start();
    buf.append(b"last words");
    drop(handle);
    assert_eq!(*script.delivered.lock(), [0]);
}

#[test]
fn the_publisher_thread_is_named() {
    let buf = LogBuffer::new();
    let names = Arc::new(Mutex::new(Vec::new()));
    struct Name(Arc<Mutex<Vec<String>>>);
    impl Publisher for Name {
        fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            self.0.lock().push(name);
            Ok(batch.len())
        }
    }
    let handle = buf
        .publisher(Name(Arc::clone(&names)))
        .name("audit")
        .start();
    buf.append(b"x");
    handle.stop(Duration::from_secs(10));
    assert_eq!(*names.lock(), ["memtail-publish-audit"]);
}

mod builtin {
    use super::*;
    use crate::shared_writer::Shared;
    use memtail::publish::{FilePublisher, SyslogPublisher, WriterPublisher};

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("memtail-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn file_publisher_follows_rotation_by_rename() {
        let dir = temp_dir("file-rotation");
        let path = dir.join("app.log");
        let buf = LogBuffer::new();
        let handle = buf
            .publisher(FilePublisher::new(&path).unwrap().fsync(true))
            .interval(Duration::from_millis(1))
            .start();
        buf.append(b"before 1\n");
        buf.append(b"before 2\n");
        wait_for_stats(&handle, "first lines", |s| s.delivered == 2);

        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        buf.append(b"after 1\n");
        let stats = handle.stop(Duration::from_secs(10));
        assert_eq!(stats.delivered, 3);
        assert_eq!(
            std::fs::read_to_string(dir.join("app.log.1")).unwrap(),
            "before 1\nbefore 2\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after 1\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_publisher_recreates_a_deleted_file() {
        let dir = temp_dir("file-deleted");
        let path = dir.join("app.log");
        let buf = LogBuffer::new();
        let handle = buf
            .publisher(FilePublisher::new(&path).unwrap())
            .interval(Duration::from_millis(1))
            .start();
        buf.append(b"one\n");
        wait_for_stats(&handle, "first line", |s| s.delivered == 1);
        std::fs::remove_file(&path).unwrap();
        buf.append(b"two\n");
        handle.stop(Duration::from_secs(10));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_the_file_is_refused_counted_and_stop_returns() {
        let dir = temp_dir("file-fifo");
        let path = dir.join("app.log");
        let buf = LogBuffer::new();
        let handle = buf
            .publisher(FilePublisher::new(&path).unwrap())
            .interval(Duration::from_millis(1))
            .backoff(Duration::from_millis(1), Duration::from_millis(5))
            .max_attempts(1_000_000)
            .start();
        buf.append(b"before\n");
        wait_for_stats(&handle, "the first line", |s| s.delivered == 1);
        // Rotated away, and a FIFO nobody reads put at the path: opening it would wait forever.
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success());
        buf.append(b"after\n");
        wait_for_stats(&handle, "failed attempts", |s| s.failed_attempts >= 2);
        let stats = handle.stats();
        assert!(
            stats
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("is a FIFO, not a regular file"),
            "{stats:?}"
        );
        let stats = handle.stop(Duration::from_secs(2));
        assert!(stats.stopped, "{stats:?}");
        assert_eq!(stats.delivered, 1);
        assert_eq!(stats.dropped_at_stop, 1, "{stats:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_publisher_names_a_path_it_cannot_open() {
        let error = FilePublisher::new("/nonexistent-memtail-dir/app.log").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/nonexistent-memtail-dir/app.log"),
            "{error}"
        );
    }

    #[test]
    fn writer_publisher_writes_entries_as_they_are() {
        let out = Shared::default();
        let buf = LogBuffer::new();
        let handle = buf.publish(WriterPublisher::new(out.clone()));
        buf.append(b"a\n");
        buf.append(b"b\n");
        let stats = handle.stop(Duration::from_secs(10));
        assert_eq!(stats.delivered, 2);
        assert_eq!(&out.0.lock()[..], b"a\nb\n");
    }

    #[cfg(unix)]
    #[test]
    fn syslog_over_a_unix_datagram_socket() {
        use std::os::unix::net::UnixDatagram;
        let dir = temp_dir("syslog-unix");
        let path = dir.join("log.sock");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let buf = LogBuffer::new();
        let syslog = SyslogPublisher::unix(&path)
            .unwrap()
            .hostname("host")
            .app_name("app")
            .procid("7");
        let handle = buf.publish(syslog);
        buf.append(b"first\n");
        buf.append(b"second\twith tab\n");
        let stats = handle.stop(Duration::from_secs(10));
        assert_eq!(stats.delivered, 2);
        let mut datagram = [0u8; 256];
        let mut received = Vec::new();
        for _ in 0..2 {
            let n = daemon.recv(&mut datagram).unwrap();
            received.push(String::from_utf8(datagram[..n].to_vec()).unwrap());
        }
        // RFC 3164, as local daemons expect: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, no host.
        let after_stamp: Vec<&str> = received.iter().map(|m| &m[4 + 16..]).collect();
        assert_eq!(after_stamp, ["app[7]: first", "app[7]: second\twith tab"]);
        for message in &received {
            let stamp = &message[4..4 + 16];
            assert!(message.starts_with("<14>"), "{message}");
            assert_eq!(&stamp[3..4], " ", "{message}");
            assert_eq!(&stamp[9..10], ":", "{message}");
            assert_eq!(&stamp[15..], " ", "{message}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_udp_message_too_large_to_send_is_dropped_at_once_and_the_rest_arrive() {
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Messages are cut to 8 000 bytes by default: allowed past a datagram here, to see that
    // path.
    let syslog = memtail::publish::SyslogPublisher::udp(daemon.local_addr().unwrap())
        .unwrap()
        .max_message_size(100_000);
    let buf = LogBuffer::with_capacity(1 << 20);
    let handle = buf
        .publisher(syslog)
        .interval(Duration::from_millis(5))
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .max_attempts(10)
        .start();
    buf.append(b"before\n");
    // Larger than any UDP datagram can be (65 507 bytes of payload): EMSGSIZE.
    buf.append(format!("{}\n", "x".repeat(70_000)).as_bytes());
    buf.append(b"after\n");
    let mut received = Vec::new();
    let mut datagram = vec![0; 1 << 17];
    for _ in 0..2 {
        let n = daemon.recv(&mut datagram).expect("a datagram within 30 s");
        received.push(String::from_utf8_lossy(&datagram[..n]).into_owned());
    }
    let stats = handle.stop(Duration::from_secs(10));
    assert!(received[0].ends_with(" before"), "{received:?}");
    assert!(received[1].ends_with(" after"), "{received:?}");
    assert_eq!(stats.delivered, 2, "{stats:?}");
    assert_eq!(stats.dropped_permanent, 1, "{stats:?}");
    assert_eq!(stats.failed_attempts, 1, "not retried: {stats:?}");
    assert_accounted(&stats, 3);
}

#[test]
fn a_tcp_daemon_that_never_reads_fails_the_attempt_within_the_write_timeout() {
    // It accepts, then reads nothing: once the kernel's buffers are full, writes block.
    let daemon = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = daemon.local_addr().unwrap();
    let (held, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((connection, _)) = daemon.accept() {
            if held.send(connection).is_err() {
                return;
            }
        }
    });
    let syslog = memtail::publish::SyslogPublisher::tcp(address)
        .unwrap()
        .write_timeout(Duration::from_millis(300));
    let buf = LogBuffer::with_capacity(64 << 20);
    let handle = buf
        .publisher(syslog)
        .interval(Duration::from_millis(5))
        .backoff(Duration::from_millis(50), Duration::from_millis(100))
        .queue(4096)
        .max_attempts(u32::MAX)
        .start();
    // 32 MiB: far more than loopback buffers take.
    let line = format!("{}\n", "x".repeat(8191));
    for _ in 0..4096 {
        buf.append(line.as_bytes());
    }
    // Bounded: attempts fail, and the stats say so while the daemon still stalls.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = handle.stats();
        if stats.failed_attempts >= 2 {
            assert!(
                stats.last_error.as_deref().unwrap_or("").contains("300ms"),
                "{stats:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = handle.stop(Duration::from_secs(5));
    assert!(
        stats.stopped,
        "stop returned in time with the thread finished: {stats:?}"
    );
    // Plain TCP has no acknowledgement: each failed attempt drops the connection, and what a new
    // one's kernel buffers took counts as delivered. Every entry is still accounted for.
    assert_accounted(&stats, 4096);
    drop(accepted);
}

/// RELP against a scripted server on loopback: what the server acknowledges, refuses, or never
/// answers, and what happens when it ends a session mid-batch.
mod relp {
    use super::*;
    use memtail::publish::SyslogPublisher;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// A frame from the client: TXNR, COMMAND, DATA.
    type Frame = (u32, String, Vec<u8>);

    fn read_frame(reader: &mut BufReader<TcpStream>) -> Option<Frame> {
        let mut fields = Vec::new();
        let mut last = 0;
        for _ in 0..3 {
            let mut field = Vec::new();
            let mut byte = [0u8];
            loop {
                if reader.read(&mut byte).ok()? == 0 {
                    return None;
                }
                if byte[0] == b' ' || byte[0] == b'\n' {
                    last = byte[0];
                    break;
                }
                field.push(byte[0]);
            }
            fields.push(String::from_utf8(field).unwrap());
        }
        let len: usize = fields[2].parse().unwrap();
        let mut data = vec![0; len];
        if len > 0 {
            assert_eq!(last, b' ');
            reader.read_exact(&mut data).ok()?;
            let mut trailer = Vec::new();
            reader.read_until(b'\n', &mut trailer).ok()?;
            assert_eq!(trailer, b"\n", "a frame ends with LF");
        } else {
            assert_eq!(last, b'\n');
        }
        Some((fields[0].parse().unwrap(), fields[1].clone(), data))
    }

    fn answer(stream: &mut TcpStream, txnr: u32, data: &str) {
        let frame = format!("{txnr} rsp {} {data}\n", data.len());
        stream.write_all(frame.as_bytes()).unwrap();
    }

    /// What the server does with a `syslog` frame.
    enum Reply {
        Ok,
        Refuse,
        /// End the session (FIN) without answering, after reading everything the client sends.
        Hang,
        /// Never answer, keep reading.
        Silent,
        /// Answer a byte at a time, one every 100 ms (a daemon that drips).
        Drip,
    }

    /// Serves sessions one after the other; `script(session, message)` decides each reply.
    /// Returns the messages each session received, once the client is gone.
    fn serve(
        listener: TcpListener,
        sessions: usize,
        script: impl Fn(usize, &str) -> Reply + Send + 'static,
    ) -> std::thread::JoinHandle<Vec<Vec<(u32, String)>>> {
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for session in 0..sessions {
                let (stream, _) = listener.accept().unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let (txnr, command, offers) = read_frame(&mut reader).unwrap();
                assert_eq!((txnr, command.as_str()), (1, "open"));
                let offers = String::from_utf8(offers).unwrap();
                assert!(offers.contains("relp_version=0"), "{offers}");
                assert!(offers.contains("commands=syslog"), "{offers}");
                answer(&mut writer, 1, "200 OK\nrelp_version=0\ncommands=syslog");
                let mut messages = Vec::new();
                let mut silent = false;
                while let Some((txnr, command, data)) = read_frame(&mut reader) {
                    let message = String::from_utf8(data).unwrap();
                    match command.as_str() {
                        "close" => {
                            answer(&mut writer, txnr, "200 OK");
                            break;
                        }
                        "syslog" => {}
                        other => panic!("unexpected command {other}"),
                    }
                    let text = message.rsplit(" - - ").next().unwrap().to_owned();
                    messages.push((txnr, text.clone()));
                    if silent {
                        continue;
                    }
                    match script(session, &text) {
                        Reply::Ok => answer(&mut writer, txnr, "200 OK"),
                        Reply::Refuse => answer(&mut writer, txnr, "500 not today"),
                        Reply::Hang => {
                            writer.shutdown(std::net::Shutdown::Write).unwrap();
                            silent = true;
                        }
                        Reply::Silent => silent = true,
                        Reply::Drip => {
                            let frame = format!("{txnr} rsp 6 200 OK\n");
                            for byte in frame.bytes() {
                                if writer.write_all(&[byte]).is_err() {
                                    break;
                                }
                                // The daemon's slowness, not a wait for the test.
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                    }
                }
                seen.push(messages);
            }
            seen
        })
    }

    fn texts(session: &[(u32, String)]) -> Vec<&str> {
        session.iter().map(|(_, text)| text.as_str()).collect()
    }

    #[test]
    fn delivered_is_acknowledged_and_a_broken_session_resends_only_what_was_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Session 0 takes entries 0-2, refuses 3, takes 4, and ends on 5 without answering it.
        // Session 1 takes everything.
        let server = serve(listener, 2, |session, text| match (session, text) {
            (0, "entry 3") => Reply::Refuse,
            (0, "entry 5") => Reply::Hang,
            _ => Reply::Ok,
        });
        let buf = LogBuffer::new();
        // A long interval: the publisher reads only at stop, so the ten entries are one batch.
        let handle = buf
            .publisher(SyslogPublisher::relp(address).unwrap())
            .interval(Duration::from_secs(3600))
            .backoff(Duration::from_millis(1), Duration::from_millis(4))
            .start();
        for i in 0..10 {
            buf.append(format!("entry {i}\n").as_bytes());
        }
        let stats = handle.stop(Duration::from_secs(20));
        let seen = server.join().unwrap();
        assert_eq!(stats.delivered, 10, "{stats:?}");
        assert_eq!(stats.failed_attempts, 1, "{stats:?}");
        assert_accounted(&stats, 10);
        let first: Vec<String> = (0..10).map(|i| format!("entry {i}")).collect();
        // The client sent the whole batch at once (within the window); the server read up to 5.
        assert_eq!(texts(&seen[0])[..6], first[..6]);
        // Session 1: the refused entry, then the unanswered ones; 4 was acknowledged: not again.
        assert_eq!(
            texts(&seen[1]),
            ["entry 3", "entry 5", "entry 6", "entry 7", "entry 8", "entry 9"]
        );
        assert_eq!(stats.resent, 6, "{stats:?}");
        // Transaction numbers start at 1 (the open) in each session.
        let txnrs: Vec<u32> = seen[1].iter().map(|(txnr, _)| *txnr).collect();
        assert_eq!(txnrs, [2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_daemon_that_drips_its_answers_fails_the_attempt_within_the_write_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Session 0 drips its answer (15 bytes, 1.5 s); session 1 answers at once.
        let server = serve(listener, 2, |session, _| match session {
            0 => Reply::Drip,
            _ => Reply::Ok,
        });
        let buf = LogBuffer::new();
        let handle = buf
            .publisher(
                SyslogPublisher::relp(address)
                    .unwrap()
                    .write_timeout(Duration::from_millis(300)),
            )
            .interval(Duration::from_secs(3600))
            .backoff(Duration::from_millis(1), Duration::from_millis(4))
            .start();
        buf.append(b"slowly answered\n");
        let stats = handle.stop(Duration::from_secs(20));
        let seen = server.join().unwrap();
        assert_eq!(stats.delivered, 1, "{stats:?}");
        assert_eq!(stats.failed_attempts, 1, "a drip is no answer: {stats:?}");
        assert_eq!(texts(&seen[1]), ["slowly answered"]);
    }

    #[test]
    fn a_session_the_server_ended_while_idle_is_replaced_before_the_next_batch() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (ended, batch_ended) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for session in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                read_frame(&mut reader).unwrap();
                answer(&mut writer, 1, "200 OK\nrelp_version=0\ncommands=syslog");
                let (txnr, _, data) = read_frame(&mut reader).unwrap();
                answer(&mut writer, txnr, "200 OK");
                seen.push(String::from_utf8(data).unwrap());
                if session == 0 {
                    // As a daemon that shuts down: `serverclose`, then the connection closes.
                    writer.write_all(b"0 serverclose 0\n").unwrap();
                    writer.shutdown(std::net::Shutdown::Write).unwrap();
                    ended.send(()).unwrap();
                    while read_frame(&mut reader).is_some() {}
                }
            }
            seen
        });
        let buf = LogBuffer::new();
        let handle = buf
            .publisher(SyslogPublisher::relp(address).unwrap())
            .interval(Duration::from_millis(1))
            .backoff(Duration::from_secs(60), Duration::from_secs(60))
            .start();
        buf.append(b"first\n");
        batch_ended.recv().unwrap();
        buf.append(b"second\n");
        wait_for_stats(&handle, "both delivered", |s| s.delivered == 2);
        let stats = handle.stop(Duration::from_secs(5));
        let seen = server.join().unwrap();
        assert!(
            seen[0].ends_with(" first") && seen[1].ends_with(" second"),
            "{seen:?}"
        );
        assert_eq!(
            stats.failed_attempts, 0,
            "no attempt on the ended session: {stats:?}"
        );
        assert_eq!(stats.resent, 0, "{stats:?}");
    }

    #[test]
    fn a_server_that_never_answers_fails_the_attempt_within_the_write_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts sessions, reads every frame, answers none.
        std::thread::spawn(move || {
            let _ = serve(listener, usize::MAX, |_, _| Reply::Silent).join();
        });
        let buf = LogBuffer::new();
        let handle = buf
            .publisher(
                SyslogPublisher::relp(address)
                    .unwrap()
                    .write_timeout(Duration::from_millis(300)),
            )
            .interval(Duration::from_millis(5))
            .backoff(Duration::from_millis(20), Duration::from_millis(40))
            .max_attempts(u32::MAX)
            .start();
        for i in 0..100 {
            buf.append(format!("entry {i}\n").as_bytes());
        }
        wait_for("two failed attempts", || {
            handle.stats().failed_attempts >= 2
        });
        let during = handle.stats();
        assert_eq!(during.delivered, 0, "nothing was acknowledged: {during:?}");
        assert!(
            during
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("for the write timeout"),
            "{during:?}"
        );
        let stats = handle.stop(Duration::from_secs(1));
        assert!(stats.stopped, "{stats:?}");
        assert_eq!(stats.delivered, 0, "{stats:?}");
        assert_eq!(stats.dropped_at_stop, 100, "{stats:?}");
        assert_accounted(&stats, 100);
    }

    #[test]
    fn a_server_that_is_not_relp_or_refuses_the_session_is_named_in_the_error() {
        let rsp = |data: &str| format!("1 rsp {} {data}\n", data.len()).into_bytes();
        let cases = [
            (
                b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
                "malformed RELP frame",
            ),
            (rsp("500 go away"), "refused the session: 500 go away"),
            (
                rsp("200 OK\nrelp_version=0\ncommands="),
                "does not offer the `syslog` command",
            ),
        ];
        for (reply, expected) in cases {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            std::thread::spawn(move || {
                while let Ok((stream, _)) = listener.accept() {
                    // Reads the open frame, replies, and reads until the client hangs up (so
                    // that no unread byte turns the close into a reset).
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    if read_frame(&mut reader).is_some() {
                        let _ = writer.write_all(&reply);
                    }
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                }
            });
            let buf = LogBuffer::new();
            let handle = buf
                .publisher(SyslogPublisher::relp(address).unwrap())
                .interval(Duration::from_millis(5))
                .backoff(Duration::from_secs(60), Duration::from_secs(60))
                .start();
            buf.append(b"hello\n");
            wait_for("a failed attempt", || handle.stats().failed_attempts >= 1);
            let stats = handle.stop(Duration::from_millis(100));
            let error = stats.last_error.clone().unwrap_or_default();
            assert!(error.contains(expected), "{error}");
            assert!(error.contains(&address.to_string()), "{error}");
            assert_accounted(&stats, 1);
        }
    }
}

#[test]
fn stats_show_what_is_queued_while_a_batch_is_in_flight() {
    let buf = LogBuffer::new();
    let (entered, release, held) = Held::new();
    let handle = buf
        .publisher(held)
        .interval(Duration::from_millis(1))
        .start();
    for i in 0..5 {
        buf.append(format!("entry {i}\n").as_bytes());
    }
    // Held inside its first publish: the counters already say what it received and holds.
    entered.recv_timeout(Duration::from_secs(20)).unwrap();
    let now = handle.stats();
    assert!(now.received >= 1, "{now:?}");
    assert_eq!(now.queued, now.received, "{now:?}");
    assert_eq!(now.delivered, 0);
    release.send(()).unwrap();
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(stats.delivered, 5, "{stats:?}");
}
