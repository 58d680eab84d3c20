//! Stress test in the manner of the Linux printk ring buffer test (`test_prb`): writer threads write
//! self-describing records into a small ring while readers take every kind of view; every view must
//! show whole records, per-writer order, increasing sequence numbers and exact accounting.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use memtail::{Entry, LogBuffer};

const CAPACITY: usize = 4096;
const WRITERS: u32 = 3;
const RECORDS_PER_WRITER: u32 = 20_000;
const HEADER: usize = "w00 n00000000 l00000 ".len();

/// A small deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `w<writer> n<counter> l<total length> ` then a fill byte that depends on both, then `\n`.
fn record(writer: u32, counter: u32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    write!(out, "w{writer:02} n{counter:08} l{len:05} ").unwrap();
    out.resize(len - 1, fill(writer, counter));
    out.push(b'\n');
    out
}

fn fill(writer: u32, counter: u32) -> u8 {
    b'A' + ((writer * 7 + counter) % 26) as u8
}

/// Parses and checks one whole record; returns (writer, counter).
fn parse(bytes: &[u8]) -> (u32, u32) {
    let text = std::str::from_utf8(&bytes[..HEADER.min(bytes.len())]).expect("header is ASCII");
    let field = |at: usize, width: usize| -> usize {
        text.get(at..at + width)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("torn record header: {:?}", String::from_utf8_lossy(bytes)))
    };
    let writer = field(1, 2) as u32;
    let counter = field(5, 8) as u32;
    let len = field(15, 5);
    assert_eq!(bytes.len(), len, "record length");
    let expected = fill(writer, counter);
    assert!(
        bytes[HEADER..len - 1].iter().all(|&b| b == expected),
        "interleaved record body for w{writer} n{counter}"
    );
    assert_eq!(bytes[len - 1], b'\n');
    (writer, counter)
}

/// Checks per-writer order across the records of one view (or one follower's whole stream).
#[derive(Default)]
struct Order(HashMap<u32, u32>);

impl Order {
    fn see(&mut self, (writer, counter): (u32, u32)) {
        if let Some(&last) = self.0.get(&writer) {
            assert!(counter > last, "writer {writer}: n{counter} after n{last}");
        }
        self.0.insert(writer, counter);
    }
}

/// Splits a snapshot into records using each record's own length field.
fn check_snapshot(snapshot: &[u8]) -> usize {
    let mut order = Order::default();
    let mut rest = snapshot;
    let mut count = 0;
    while !rest.is_empty() {
        let header = std::str::from_utf8(&rest[..HEADER]).expect("snapshot starts at a record");
        let len: usize = header[15..20].parse().expect("length field");
        order.see(parse(&rest[..len]));
        rest = &rest[len..];
        count += 1;
    }
    count
}

fn check_entries(entries: &[Entry]) {
    let mut order = Order::default();
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1].seq(),
            pair[0].seq() + 1,
            "retained entries are contiguous"
        );
    }
    for entry in entries {
        order.see(parse(entry));
    }
}

#[test]
fn concurrent_writers_and_readers_see_whole_ordered_records() {
    let buf = LogBuffer::builder()
        .capacity(CAPACITY)
        .subscriber_capacity(256)
        .build();
    let drained = buf.events();
    let stalled = buf.events();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS as usize + 1));

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let mut buf = buf.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ u64::from(writer + 1));
                start.wait();
                for counter in 0..RECORDS_PER_WRITER {
                    let len = HEADER + 1 + (rng.next() as usize % (CAPACITY / 2 - HEADER));
                    buf.write_all(&record(writer, counter, len)).unwrap();
                }
            })
        })
        .collect();

    // Follows everything it can; drops are allowed but must be counted.
    let follower = thread::spawn(move || {
        let mut order = Order::default();
        let mut last_seq = None;
        let mut received = 0u64;
        for entry in drained.iter() {
            if let Some(last) = last_seq {
                assert!(
                    entry.seq() > last,
                    "follower: seq {} after {last}",
                    entry.seq()
                );
            }
            last_seq = Some(entry.seq());
            order.see(parse(&entry));
            received += 1;
        }
        (received, drained.dropped())
    });

    // Snapshots, entries and a chain of since() replays that must account for every entry.
    let reader = {
        let buf = buf.clone();
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let (mut next, mut replayed, mut missed, mut views) = (0u64, 0u64, 0u64, 0u64);
            loop {
                let finished = done.load(Ordering::Acquire);
                check_snapshot(&buf.snapshot());
                check_entries(&buf.entries());
                let replay = buf.since(next);
                if let Some(first) = replay.entries().first() {
                    assert_eq!(first.seq(), next + replay.missed(), "since({next}) seam");
                }
                check_entries(replay.entries());
                replayed += replay.entries().len() as u64;
                missed += replay.missed();
                next = replay.next_seq();
                views += 1;
                if finished {
                    return (replayed, missed, next, views);
                }
            }
        })
    };

    start.wait();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::Release);
    let (replayed, missed, next, views) = reader.join().unwrap();

    let total = u64::from(WRITERS * RECORDS_PER_WRITER);
    let stats = buf.stats();
    assert_eq!(stats.entries_written, total);
    assert_eq!(next, total);
    assert_eq!(
        replayed + missed,
        total,
        "since() chain accounts for every entry"
    );
    assert!(views > 0);
    assert!(buf.len() <= CAPACITY);
    assert_eq!(
        check_snapshot(&buf.snapshot()) as u64,
        stats.retained_entries
    );

    // The stalled subscriber holds at most its channel's worth and counted the rest.
    assert_eq!(stalled.len(), stalled.capacity());
    let mut order = Order::default();
    let mut held = 0u64;
    for entry in stalled.try_iter() {
        order.see(parse(&entry));
        held += 1;
    }
    assert_eq!(held + stalled.dropped(), total);

    drop(buf);
    let (received, dropped) = follower.join().unwrap();
    assert_eq!(
        received + dropped,
        total,
        "drained follower accounts for every entry"
    );
    assert_eq!(stats.subscriber_drops, stalled.dropped() + dropped);
}
