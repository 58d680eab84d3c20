//! What a writer pays per entry with N async followers, against `tokio::sync::broadcast` with N
//! receivers, in the same groups so the ratio is read from one run.
//!
//! `cargo bench --features tokio --bench fan_out` (add `-- <filter>` for one group). A 100-byte
//! line into a 1 MiB ring; broadcast sends the same line as a fresh `Bytes` into a channel of 64.
//! - `fan_out_stalled/<peer>/<N>`: the followers (receivers) never read.
//! - `fan_out_live/<peer>/<N>`: each follower (receiver) is drained by its own task; all N tasks
//!   run on one tokio worker thread, the writer on the bench thread. After each run the bench
//!   prints what the followers received and what they lost (memtail: entries the ring evicted
//!   before they were read; broadcast: `Lagged`).

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memtail::LogBuffer;
use tokio::sync::broadcast::{self, error::RecvError};

const LINE: &[u8; 100] = b"2026-11-22T10:00:00Z INFO request{id=42} GET /api/items status=200 took=1.3ms peer=10.0.0.7:5173 ok\n";
const FOLLOWERS: [usize; 4] = [1, 16, 256, 1024];
const RING: usize = 1 << 20;
const BROADCAST_CAPACITY: usize = 64;

fn memtail_write(buf: &LogBuffer) {
    (&*buf).write_all(black_box(LINE)).unwrap();
}

fn broadcast_send(tx: &broadcast::Sender<Bytes>) {
    // Sending fails only without receivers, and every run has some.
    let _ = tx.send(Bytes::copy_from_slice(black_box(LINE)));
}

fn stalled(c: &mut Criterion) {
    let mut group = c.benchmark_group("fan_out_stalled");
    group.throughput(Throughput::Elements(1));
    for n in FOLLOWERS {
        let buf = LogBuffer::with_capacity(RING);
        let followers: Vec<_> = (0..n).map(|_| buf.tail_from(memtail::Start::Now)).collect();
        group.bench_with_input(BenchmarkId::new("memtail", n), &n, |b, _| {
            b.iter(|| memtail_write(&buf))
        });
        assert_eq!(buf.stats().followers, n as u64);
        drop(followers);

        let (tx, rx) = broadcast::channel::<Bytes>(BROADCAST_CAPACITY);
        let receivers: Vec<_> = (1..n).map(|_| tx.subscribe()).chain([rx]).collect();
        group.bench_with_input(BenchmarkId::new("tokio_broadcast", n), &n, |b, _| {
            b.iter(|| broadcast_send(&tx))
        });
        drop(receivers);
    }
    group.finish();
}

/// What the draining tasks of one run saw.
#[derive(Default)]
struct Drained {
    received: AtomicU64,
    lost: AtomicU64,
}

fn live(c: &mut Criterion) {
    let mut group = c.benchmark_group("fan_out_live");
    group.throughput(Throughput::Elements(1));
    // The followers' one worker thread; the writer is the bench thread.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for n in FOLLOWERS {
        let buf = LogBuffer::with_capacity(RING);
        let drained = Arc::new(Drained::default());
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let mut live = buf.tail_from(memtail::Start::Now);
                let drained = Arc::clone(&drained);
                runtime.spawn(async move {
                    let mut received = 0;
                    while let Some(entry) = live.recv().await {
                        black_box(entry);
                        received += 1;
                    }
                    drained.received.fetch_add(received, Ordering::Relaxed);
                    drained.lost.fetch_add(live.dropped(), Ordering::Relaxed);
                })
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("memtail", n), &n, |b, _| {
            b.iter(|| memtail_write(&buf))
        });
        let written = buf.stats().entries_written;
        drop(buf);
        for task in tasks {
            runtime.block_on(task).unwrap();
        }
        report("memtail", n, written, &drained);

        let (tx, rx) = broadcast::channel::<Bytes>(BROADCAST_CAPACITY);
        let drained = Arc::new(Drained::default());
        let receivers: Vec<_> = (1..n).map(|_| tx.subscribe()).chain([rx]).collect();
        let tasks: Vec<_> = receivers
            .into_iter()
            .map(|mut rx| {
                let drained = Arc::clone(&drained);
                runtime.spawn(async move {
                    let (mut received, mut lost) = (0, 0);
                    loop {
                        match rx.recv().await {
                            Ok(bytes) => {
                                black_box(bytes);
                                received += 1;
                            }
                            Err(RecvError::Lagged(n)) => lost += n,
                            Err(RecvError::Closed) => break,
                        }
                    }
                    drained.received.fetch_add(received, Ordering::Relaxed);
                    drained.lost.fetch_add(lost, Ordering::Relaxed);
                })
            })
            .collect();
        let sent = Arc::new(AtomicU64::new(0));
        group.bench_with_input(BenchmarkId::new("tokio_broadcast", n), &n, |b, _| {
            b.iter(|| {
                broadcast_send(&tx);
                sent.fetch_add(1, Ordering::Relaxed);
            })
        });
        drop(tx);
        for task in tasks {
            runtime.block_on(task).unwrap();
        }
        report("tokio_broadcast", n, sent.load(Ordering::Relaxed), &drained);
    }
    group.finish();
}

fn report(peer: &str, n: usize, written: u64, drained: &Drained) {
    if written == 0 {
        return; // filtered out of this run
    }
    let received = drained.received.load(Ordering::Relaxed);
    let lost = drained.lost.load(Ordering::Relaxed);
    let deliveries = written * n as u64;
    eprintln!(
        "fan_out_live/{peer}/{n}: {written} written, {received} of {deliveries} deliveries received, {lost} lost ({:.1}%)",
        lost as f64 * 100.0 / deliveries as f64
    );
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = stalled, live }
criterion_main!(benches);
