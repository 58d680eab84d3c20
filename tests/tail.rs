//! `tail()` and `tail_since()` under concurrent writers: backlog followed by live is one contiguous
//! run of sequence numbers, with no gap and no duplicate at the seam.

use std::sync::{Arc, Barrier};
use std::thread;

use memtail::{Entry, LogBuffer, Replay, Subscription};

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

#[test]
fn tail_since_resumes_without_gap_even_after_eviction() {
    // A small ring: most entries are evicted, so the replay reports them as missed.
    let buf = LogBuffer::builder()
        .capacity(2048)
        .subscriber_capacity(WRITERS * PER_WRITER)
        .build();
    let start = Arc::new(Barrier::new(WRITERS + 1));
    let handles = writers(&buf, &start);
    start.wait();
    let resumes: Vec<(u64, Replay, Subscription)> = (0..TAILS as u64)
        .map(|i| {
            let from = i * 200;
            let (replay, live) = buf.tail_since(from);
            (from, replay, live)
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    for (from, replay, live) in resumes {
        let missed = replay.missed();
        let next = replay.next_seq();
        let backlog = replay.into_entries();
        // Asked for a future sequence number: nothing replayed, live starts exactly where asked
        // or earlier (the live stream starts at whatever was next when it subscribed).
        let first = if from >= next { next } else { from + missed };
        if let Some(entry) = backlog.first() {
            assert_eq!(entry.seq(), first);
        }
        assert_seamless(backlog, live, first);
    }
}
