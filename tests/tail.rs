//! `tail()`, and `since(seq)` then `tail_from(Start::At(next_seq))`, under concurrent writers:
//! backlog followed by live is one contiguous run of sequence numbers, with no gap and no
//! duplicate at the seam (entries the ring evicted in between are counted, not skipped silently).
//! And a `Tail` followed by a thread: nothing lost while the ring holds it.

use std::sync::{Arc, Barrier};
use std::thread;

use memtail::{Entry, LogBuffer, Replay, Start, Subscription, Tail};

const WRITERS: usize = 2;
const PER_WRITER: usize = 5_000;
const TAILS: usize = 40;

fn writers(buf: &LogBuffer, start: &Arc<Barrier>) -> Vec<thread::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let buf = buf.clone();
            let start = Arc::clone(start);
            thread::spawn(move || {
                start.wait();
                for i in 0..PER_WRITER {
                    buf.append(format!("writer {w} line {i}\n").as_bytes());
                }
            })
        })
        .collect()
}

/// Checks that `backlog` then everything the subscription received is contiguous up to the end.
fn assert_seamless(backlog: Vec<Entry>, live: Subscription, first_expected: u64) {
    let total = (WRITERS * PER_WRITER) as u64;
    let seqs: Vec<u64> = backlog
        .iter()
        .map(Entry::seq)
        .chain(live.try_iter().map(|e| e.seq()))
        .collect();
    assert_eq!(
        live.dropped(),
        0,
        "the channel is large enough to drop nothing"
    );
    let expected: Vec<u64> = (first_expected..total).collect();
    assert_eq!(seqs, expected, "backlog + live must be contiguous");
}

#[test]
fn tail_has_no_gap_or_duplicate_at_the_seam() {
    // Large enough that no entry is evicted: the backlog must start at 0.
    let buf = LogBuffer::builder()
        .capacity(1 << 20)
        .subscriber_capacity(WRITERS * PER_WRITER)
        .build();
    let start = Arc::new(Barrier::new(WRITERS + 1));
    let handles = writers(&buf, &start);
    start.wait();
    let tails: Vec<_> = (0..TAILS).map(|_| buf.tail()).collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let mid_stream = tails
        .iter()
        .filter(|(backlog, _)| !backlog.is_empty() && backlog.len() < WRITERS * PER_WRITER)
        .count();
    for (backlog, live) in tails {
        assert_seamless(backlog, live, 0);
    }
    // Not a timing assertion: only reported, since how the threads interleave is up to the OS.
    eprintln!("{mid_stream} of {TAILS} tails were taken while writers were writing");
}

/// Checks that `backlog` then everything the tail received (once the writers are done) is
/// contiguous up to the end, counting what the tail lost to eviction: nothing is repeated, and
/// nothing is missing that is not counted.
fn assert_seamless_tail(backlog: Vec<Entry>, mut live: Tail, first_expected: u64) {
    let total = (WRITERS * PER_WRITER) as u64;
    let mut seqs: Vec<u64> = backlog.iter().map(Entry::seq).collect();
    let first_live = live.next_seq();
    let mut received = 0;
    while let Ok(entry) = live.try_recv() {
        seqs.push(entry.seq());
        received += 1;
    }
    assert_eq!(
        received + live.dropped(),
        total - first_live,
        "every entry from where the tail began is received or counted dropped"
    );
    // What the tail lost is the oldest of its part: the seam itself has no gap but those.
    let lost = live.dropped();
    let expected: Vec<u64> = (first_expected..first_live)
        .chain(first_live + lost..total)
        .collect();
    assert_eq!(seqs, expected, "backlog + live must be contiguous");
}

#[test]
fn a_tail_from_where_since_ended_resumes_without_gap_even_after_eviction() {
    // A small ring: most entries are evicted, so the replay reports them as missed.
    let buf = LogBuffer::builder().capacity(2048).build();
    let start = Arc::new(Barrier::new(WRITERS + 1));
    let handles = writers(&buf, &start);
    start.wait();
    let resumes: Vec<(u64, Replay, Tail)> = (0..TAILS as u64)
        .map(|i| {
            let from = i * 200;
            let replay = buf.since(from);
            let live = buf.tail_from(Start::At(replay.next_seq()));
            (from, replay, live)
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    for (from, replay, live) in resumes {
        let missed = replay.missed();
        let next = replay.next_seq();
        assert_eq!(
            live.next_seq(),
            next,
            "the tail starts where the replay ended"
        );
        let backlog = replay.into_entries();
        // Asked for a future sequence number: nothing replayed, live starts where the replay
        // said the next entry would be.
        let first = if from >= next { next } else { from + missed };
        if let Some(entry) = backlog.first() {
            assert_eq!(entry.seq(), first);
        }
        assert_seamless_tail(backlog, live, first);
    }
}

#[test]
fn a_thread_following_a_burst_loses_nothing_while_the_ring_holds_it() {
    // The case that `events()` (a channel of 64 entries) loses: a burst of 401 entries, the last
    // an ERROR, followed by a thread that blocks between entries.
    let buf = LogBuffer::with_capacity(1 << 20);
    let mut tail = buf.tail_from(Start::Now);
    let follower = thread::spawn(move || {
        let mut received = Vec::new();
        while let Some(entry) = tail.blocking_recv() {
            received.push(entry);
        }
        (received, tail.dropped())
    });
    for n in 0..400 {
        buf.append_level(
            format!("request {n} done\n").as_bytes(),
            memtail::Level::Info,
        );
    }
    buf.append_level(b"disk full\n", memtail::Level::Error);
    drop(buf);
    let (received, dropped) = follower.join().unwrap();
    assert_eq!((received.len(), dropped), (401, 0));
    let seqs: Vec<u64> = received.iter().map(Entry::seq).collect();
    assert_eq!(seqs, (0..401).collect::<Vec<_>>());
    assert_eq!(received[400].level(), Some(memtail::Level::Error));
}

#[test]
fn a_thread_a_whole_ring_behind_loses_the_oldest_and_counts_them() {
    let buf = LogBuffer::with_capacity(100);
    let mut tail = buf.tail_from(Start::Now);
    for n in 0..100u64 {
        buf.append(format!("{n:09}\n").as_bytes()); // 10 bytes each
    }
    let evicted = buf.stats().entries_evicted;
    assert!(evicted > 0, "the ring went round");
    let mut seqs = Vec::new();
    while let Ok(entry) = tail.try_recv() {
        seqs.push(entry.seq());
    }
    assert_eq!(
        tail.dropped(),
        evicted,
        "exactly the evicted entries are lost"
    );
    assert_eq!(
        seqs,
        (evicted..100).collect::<Vec<_>>(),
        "the newest are kept"
    );
}

#[test]
fn a_blocked_thread_is_woken_by_every_write_it_waits_for() {
    // A writer racing a thread that keeps catching up and blocking again: a lost wake-up would
    // leave it blocked until the (generous) timeout, which fails the test.
    const ENTRIES: u64 = 20_000;
    let buf = LogBuffer::with_capacity(1 << 20);
    let mut tail = buf.tail_from(Start::Now);
    let writer = thread::spawn({
        let buf = buf.clone();
        move || {
            for n in 0..ENTRIES {
                buf.append(format!("{n}\n").as_bytes());
                if n % 64 == 0 {
                    thread::yield_now();
                }
            }
        }
    });
    for expected in 0..ENTRIES {
        let entry = tail
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("no lost wake-up");
        assert_eq!(entry.seq(), expected);
    }
    writer.join().unwrap();
    assert_eq!(tail.dropped(), 0);
    drop(buf);
    assert_eq!(
        tail.recv_timeout(std::time::Duration::from_secs(30)),
        Err(memtail::RecvTimeoutError::Disconnected)
    );
}
