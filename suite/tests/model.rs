//! Model-based test: the real `LogBuffer` against a plain `VecDeque` reference, after every step of
//! random sequences of writes, reads, replays, subscriptions, cancellations and receives.

use std::collections::VecDeque;
use std::io::Write;

use memtail::{LogBuffer, Subscription, TryRecvError};
use proptest::prelude::*;

const SUBSCRIBER_CAPACITY: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// Write an entry of this many bytes (0 makes no entry).
    Write(usize),
    Snapshot,
    /// `since(next_seq - back)`, or a future sequence number when `back` is negative.
    Since(i64),
    Subscribe,
    Tail,
    /// Cancel the subscription at this index (modulo how many there are).
    Cancel(usize),
    /// Receive up to this many entries from the subscription at this index.
    Receive(usize, usize),
}

/// The reference: every entry ever stored, which of them are retained, and the counters.
struct Model {
    capacity: usize,
    stored: Vec<Vec<u8>>,
    retained: VecDeque<u64>,
    retained_bytes: usize,
    evicted_entries: u64,
    evicted_bytes: u64,
    cut_entries: u64,
    cut_bytes: u64,
    subscribers: Vec<ModelSubscriber>,
}

struct ModelSubscriber {
    real: Subscription,
    queued: VecDeque<u64>,
    dropped: u64,
    subscribed_at: u64,
    received: u64,
}

impl Model {
    fn new(capacity: usize) -> Model {
        Model {
            capacity,
            stored: Vec::new(),
            retained: VecDeque::new(),
            retained_bytes: 0,
            evicted_entries: 0,
            evicted_bytes: 0,
            cut_entries: 0,
            cut_bytes: 0,
            subscribers: Vec::new(),
        }
    }

    fn next_seq(&self) -> u64 {
        self.stored.len() as u64
    }

    fn first_seq(&self) -> u64 {
        self.retained.front().copied().unwrap_or(self.next_seq())
    }

    /// Stores an entry the way the design says, and returns the bytes that were offered.
    fn write(&mut self, size: usize) -> Vec<u8> {
        let seq = self.next_seq();
        let offered: Vec<u8> = (0..size)
            .map(|i| (seq as usize * 7 + i * 13) as u8)
            .collect();
        if size == 0 {
            return offered;
        }
        let mut entry = offered.clone();
        if entry.len() > self.capacity {
            self.cut_entries += 1;
            self.cut_bytes += (entry.len() - self.capacity) as u64;
            entry.truncate(self.capacity);
        }
        let before = self.retained_bytes;
        if before + entry.len() > self.capacity {
            let keep = (self.capacity / 2).min(self.capacity - entry.len());
            while self.retained_bytes > keep {
                let oldest = self.retained.pop_front().expect("bytes imply entries");
                let len = self.stored[oldest as usize].len();
                self.retained_bytes -= len;
                self.evicted_entries += 1;
                self.evicted_bytes += len as u64;
            }
            // Evicting one entry fewer would not have been enough: nothing was evicted needlessly.
            assert!(self.retained_bytes <= keep);
        }
        self.retained.push_back(seq);
        self.retained_bytes += entry.len();
        self.stored.push(entry);
        for sub in &mut self.subscribers {
            if sub.queued.len() < SUBSCRIBER_CAPACITY {
                sub.queued.push_back(seq);
            } else {
                sub.dropped += 1;
            }
        }
        offered
    }

    fn retained_concat(&self) -> Vec<u8> {
        self.retained
            .iter()
            .flat_map(|&seq| self.stored[seq as usize].iter().copied())
            .collect()
    }

    fn subscribe(&mut self, real: Subscription) {
        self.subscribers.push(ModelSubscriber {
            real,
            queued: VecDeque::new(),
            dropped: 0,
            subscribed_at: self.next_seq(),
            received: 0,
        });
    }
}

fn check(buf: &LogBuffer, model: &Model) {
    let capacity = model.capacity;
    assert!(
        buf.len() <= capacity,
        "retained {} > capacity {capacity}",
        buf.len()
    );
    assert_eq!(buf.len(), model.retained_bytes);

    // snapshot = concatenation of entries() = the model's retained suffix.
    let snapshot = buf.snapshot();
    let entries = buf.entries();
    let concat: Vec<u8> = entries.iter().flat_map(|e| e.iter().copied()).collect();
    assert_eq!(&snapshot[..], &concat[..]);
    assert_eq!(concat, model.retained_concat());
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, model.retained.iter().copied().collect::<Vec<_>>());
    for entry in &entries {
        assert_eq!(&entry[..], &model.stored[entry.seq() as usize][..]);
    }

    let stats = buf.stats();
    assert_eq!(stats.entries_written, model.next_seq());
    assert_eq!(
        stats.bytes_written,
        model.stored.iter().map(|e| e.len() as u64).sum::<u64>()
    );
    assert_eq!(stats.entries_evicted, model.evicted_entries);
    assert_eq!(stats.bytes_evicted, model.evicted_bytes);
    assert_eq!(stats.entries_cut, model.cut_entries);
    assert_eq!(stats.bytes_cut, model.cut_bytes);
    assert_eq!(stats.retained_entries, model.retained.len() as u64);
    assert_eq!(stats.retained_bytes, model.retained_bytes as u64);
    assert_eq!(stats.subscribers, model.subscribers.len() as u64);
    assert_eq!(stats.bytes_written - stats.bytes_evicted, buf.len() as u64);

    for sub in &model.subscribers {
        assert_eq!(sub.real.dropped(), sub.dropped);
        assert_eq!(sub.real.len(), sub.queued.len());
    }
}

fn sizes(capacity: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0..=2 * capacity,
        1 => Just(0),
        1 => Just(capacity / 2),
        1 => Just(capacity / 2 + 1),
        1 => Just(capacity),
        1 => Just(capacity + 1),
    ]
}

fn ops(capacity: usize) -> impl Strategy<Value = Vec<Op>> {
    ops_with(sizes(capacity), 120)
}

/// Mostly small entries into a ring larger than its first allocation (4 KiB), so that the storage
/// grows while entries accumulate, and later wraps.
fn growing_ops(capacity: usize) -> impl Strategy<Value = Vec<Op>> {
    let sizes = prop_oneof![
        20 => 1..300usize,
        1 => sizes(capacity),
    ];
    ops_with(sizes, 400)
}

fn ops_with(sizes: impl Strategy<Value = usize>, max_ops: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        12 => sizes.prop_map(Op::Write),
        2 => Just(Op::Snapshot),
        2 => (-3i64..20).prop_map(Op::Since),
        2 => Just(Op::Subscribe),
        1 => Just(Op::Tail),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => (any::<usize>(), 0usize..6).prop_map(|(i, n)| Op::Receive(i, n)),
    ];
    proptest::collection::vec(op, 1..max_ops)
}

fn run(capacity: usize, ops: Vec<Op>) {
    let buf = LogBuffer::builder()
        .capacity(capacity)
        .subscriber_capacity(SUBSCRIBER_CAPACITY)
        .build();
    let mut model = Model::new(capacity);
    for op in ops {
        match op {
            Op::Write(size) => {
                let before = (buf.len(), buf.stats().entries_evicted);
                let offered = model.write(size);
                let written = (&buf).write(&offered).expect("writing never fails");
                assert_eq!(written, size, "write reports every offered byte");
                let stored = size.min(capacity);
                if buf.stats().entries_evicted > before.1 {
                    // Evicted only because the entry did not fit, and down to half the capacity
                    // (or less, when the entry needs more room).
                    assert!(before.0 + stored > capacity);
                    assert!(buf.len() - stored <= capacity / 2);
                    assert!(buf.len() - stored <= capacity - stored);
                } else {
                    assert_eq!(buf.len(), before.0 + stored);
                }
            }
            Op::Snapshot => {
                assert_eq!(&buf.snapshot()[..], &model.retained_concat()[..]);
            }
            Op::Since(back) => {
                let seq = (model.next_seq() as i64 - back).max(0) as u64;
                let replay = buf.since(seq);
                let first = model.first_seq();
                let expected: Vec<u64> = model
                    .retained
                    .iter()
                    .copied()
                    .filter(|&s| s >= seq)
                    .collect();
                let got: Vec<u64> = replay.entries().iter().map(|e| e.seq()).collect();
                assert_eq!(got, expected, "since({seq})");
                assert_eq!(
                    replay.missed(),
                    first.saturating_sub(seq),
                    "missed for since({seq})"
                );
                assert_eq!(replay.next_seq(), model.next_seq());
                // Everything from `seq` on is either replayed or counted missed.
                if seq <= model.next_seq() {
                    assert_eq!(replay.missed() + got.len() as u64, model.next_seq() - seq);
                }
            }
            Op::Subscribe => model.subscribe(buf.events()),
            Op::Tail => {
                let (backlog, live) = buf.tail();
                let seqs: Vec<u64> = backlog.iter().map(|e| e.seq()).collect();
                assert_eq!(seqs, model.retained.iter().copied().collect::<Vec<_>>());
                model.subscribe(live);
            }
            Op::Cancel(i) => {
                if !model.subscribers.is_empty() {
                    let i = i % model.subscribers.len();
                    model.subscribers.remove(i).real.cancel();
                }
            }
            Op::Receive(i, n) => {
                if !model.subscribers.is_empty() {
                    let i = i % model.subscribers.len();
                    let sub = &mut model.subscribers[i];
                    for _ in 0..n {
                        match sub.queued.pop_front() {
                            Some(seq) => {
                                let entry = sub.real.try_recv().expect("a queued entry");
                                assert_eq!(entry.seq(), seq);
                                assert_eq!(&entry[..], &model.stored[seq as usize][..]);
                                sub.received += 1;
                            }
                            None => {
                                assert_eq!(sub.real.try_recv(), Err(TryRecvError::Empty));
                            }
                        }
                    }
                }
            }
        }
        check(&buf, &model);
    }

    // Finally, drain every subscriber: received + dropped = entries written since it subscribed.
    let total = model.next_seq();
    for sub in &mut model.subscribers {
        for (entry, seq) in sub.real.try_iter().zip(sub.queued.drain(..)) {
            assert_eq!(entry.seq(), seq);
            sub.received += 1;
        }
        assert_eq!(sub.real.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(sub.received + sub.real.dropped(), total - sub.subscribed_at);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_reference_model(
        (capacity, ops) in (1usize..400).prop_flat_map(|c| (Just(c), ops(c)))
    ) {
        run(capacity, ops);
    }

    #[test]
    fn matches_the_reference_model_at_tiny_capacities(
        (capacity, ops) in (1usize..8).prop_flat_map(|c| (Just(c), ops(c)))
    ) {
        run(capacity, ops);
    }
}

proptest! {
    // Longer runs over larger rings: fewer cases keep the suite quick in debug builds.
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_reference_model_while_storage_grows(
        (capacity, ops) in (4097usize..20_000).prop_flat_map(|c| (Just(c), growing_ops(c)))
    ) {
        run(capacity, ops);
    }
}
