//! One clock rule for every reader: the time an entry is stored with is the time every reader
//! gets, never earlier than the entry before it, whatever the clock does and whatever was evicted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memtail::LogBuffer;

/// A clock the test sets, in seconds since the epoch.
static NOW: AtomicU64 = AtomicU64::new(0);

fn test_clock() -> Duration {
    Duration::from_secs(NOW.load(Ordering::Relaxed))
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[test]
fn a_clock_stepped_back_while_the_ring_empties_does_not_take_times_back() {
    let buf = LogBuffer::builder().capacity(64).clock(test_clock).build();
    let live = buf.events();
    let mut follower = buf.tail_from(memtail::Start::Now);
    NOW.store(2_000_000_100, Ordering::Relaxed);
    buf.append(b"before the step\n");
    // The clock steps back a billion seconds, and this entry evicts everything before it.
    NOW.store(1_000_000_000, Ordering::Relaxed);
    buf.append(&[b'x'; 64]);
    assert_eq!(buf.stats().entries_evicted, 1);
    NOW.store(1_000_000_001, Ordering::Relaxed);
    buf.append(b"later\n");

    let followed: Vec<SystemTime> = live.try_iter().map(|e| e.time().unwrap()).collect();
    assert_eq!(followed, [at(2_000_000_100); 3]);
    let stored: Vec<SystemTime> = buf.entries().iter().map(|e| e.time().unwrap()).collect();
    assert_eq!(stored, followed[2..]);
    // A follower by position reads the ring: the same times.
    {
        let mut read = Vec::new();
        while let Ok(entry) = follower.try_recv() {
            read.push(entry.time().unwrap());
        }
        assert_eq!(read, followed[2..], "the first was evicted before it read");
        assert_eq!(follower.dropped(), 2);
    }
    // A search by time finds them where they are.
    assert_eq!(
        buf.since_time(at(2_000_000_100)).unwrap().entries().len(),
        1
    );
}

#[test]
fn subscribers_get_the_time_the_ring_stored_with_two_writers_racing() {
    const THREADS: usize = 2;
    const ENTRIES: usize = 50_000;
    let buf = LogBuffer::builder()
        .capacity(1 << 20)
        .timestamps(true)
        .subscriber_capacity(THREADS * ENTRIES)
        .build();
    let live = buf.events();
    let start = Arc::new(Barrier::new(THREADS));
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let buf = buf.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                for n in 0..ENTRIES {
                    buf.append(format!("{thread} {n}\n").as_bytes());
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let followed: Vec<(u64, SystemTime)> = live
        .try_iter()
        .map(|entry| (entry.seq(), entry.time().unwrap()))
        .collect();
    assert_eq!(followed.len(), THREADS * ENTRIES);
    let back = followed
        .windows(2)
        .filter(|pair| pair[1].1 < pair[0].1)
        .count();
    assert_eq!(back, 0, "steps back in what subscribers got");
    // Each entry the ring still holds carries the same time for both.
    for entry in buf.entries() {
        assert_eq!(Some(followed[entry.seq() as usize].1), entry.time());
    }
}
