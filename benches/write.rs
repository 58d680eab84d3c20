//! What a writer pays per entry, against the peers memtail competes with, each group read in one run.
//!
//! `cargo bench --features tracing --bench write` (add `-- <filter>` for one group). The groups:
//! - `write_100B/*`: one 100-byte line through `io::Write`, with 0, 1 stalled, 8 stalled and 1
//!   drained subscriber; the floor is a `parking_lot::Mutex<Vec<u8>>` cleared past 16 KiB.
//! - `tracing_full_path`: `tracing::info!` with a ~60-byte message through `tracing_subscriber::fmt()`
//!   (no ANSI) into `io::sink`, into memtail, and into tracing-appender's `non_blocking`.
//! - `write_100B/1_publisher`: the same line with one publisher (to `io::sink`) attached, beside one
//!   drained subscriber.
//! - `two_writers`: two threads writing 100-byte lines at once; throughput in lines per second.
//! - `write_100B/0_subscribers` also has `memtail_timestamps` (a time in every entry, from
//!   `SystemTime::now`), the same with cheaper clocks (`memtail_clock_*`: Linux's coarse clock,
//!   `quanta`'s precise and recent times) and `memtail_with_on_error` (the flight recorder's context printer
//!   waiting for errors); `clock_read` times the clocks a time could come from, alone.

use std::hint::black_box;
use std::io::{self, Write};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use memtail::publish::WriterPublisher;
use memtail::LogBuffer;
use parking_lot::Mutex;

const LINE: &[u8; 100] = b"2026-11-22T10:00:00Z INFO request{id=42} GET /api/items status=200 took=1.3ms peer=10.0.0.7:5173 ok\n";

/// The floor: the least any locked in-memory log can do per line.
struct Floor(Mutex<Vec<u8>>);

impl Floor {
    fn new() -> Floor {
        Floor(Mutex::new(Vec::with_capacity(32 * 1024)))
    }

    fn write(&self, line: &[u8]) {
        let mut buf = self.0.lock();
        if buf.len() > 16 * 1024 {
            buf.clear();
        }
        buf.extend_from_slice(line);
    }
}

fn memtail_write(buf: &LogBuffer) {
    (&*buf).write_all(black_box(LINE)).unwrap();
}

fn bench_floor<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    let floor = Floor::new();
    group.bench_function("mutex_vec_floor", |b| {
        b.iter(|| floor.write(black_box(LINE)))
    });
}

fn bench_non_blocking<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    let (writer, guard) = tracing_appender::non_blocking(io::sink());
    let lost = writer.error_counter();
    let mut written = 0u64;
    group.bench_function("tracing_appender_non_blocking", |b| {
        let mut writer = writer.clone();
        b.iter(|| {
            written += 1;
            writer.write_all(black_box(LINE)).unwrap()
        })
    });
    // non_blocking is lossy by default: report what it dropped, as for memtail's subscribers.
    let dropped = lost.dropped_lines() as u64;
    if written == 0 {
        return; // filtered out of this run
    }
    eprintln!(
        "tracing_appender_non_blocking: {written} lines written, {dropped} dropped ({:.3}%)",
        dropped as f64 * 100.0 / written.max(1) as f64
    );
    drop(guard);
}

fn bench_broadcast<M: criterion::measurement::Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    receivers: usize,
) {
    let (tx, rx) = tokio::sync::broadcast::channel::<Bytes>(64);
    let held: Vec<_> = (1..receivers).map(|_| tx.subscribe()).chain([rx]).collect();
    group.bench_function(format!("tokio_broadcast_{receivers}_rx"), |b| {
        b.iter(|| tx.send(Bytes::copy_from_slice(black_box(LINE))).unwrap())
    });
    drop(held);
}

fn write_100b(c: &mut Criterion) {
    {
        let mut group = c.benchmark_group("write_100B/0_subscribers");
        group.throughput(Throughput::Bytes(LINE.len() as u64));
        let buf = LogBuffer::new();
        group.bench_function("memtail", |b| b.iter(|| memtail_write(&buf)));
        // With a time in every entry (`Builder::timestamps`): what the clock read adds; then
        // the same with cheaper clocks (`Builder::clock`).
        let timed = LogBuffer::builder().timestamps(true).build();
        group.bench_function("memtail_timestamps", |b| b.iter(|| memtail_write(&timed)));
        #[cfg(target_os = "linux")]
        {
            let coarse = LogBuffer::builder().clock(coarse_clock).build();
            group.bench_function("memtail_clock_realtime_coarse", |b| {
                b.iter(|| memtail_write(&coarse))
            });
        }
        let tsc = LogBuffer::builder().clock(quanta_now_clock).build();
        group.bench_function("memtail_clock_quanta_now", |b| {
            b.iter(|| memtail_write(&tsc))
        });
        let _upkeep = quanta::Upkeep::new(Duration::from_millis(1))
            .start()
            .expect("quanta's upkeep thread");
        let recent = LogBuffer::builder().clock(quanta_recent_clock).build();
        group.bench_function("memtail_clock_quanta_recent", |b| {
            b.iter(|| memtail_write(&recent))
        });
        // With the flight recorder's context printer waiting for an error (none comes): the
        // writer should not notice it.
        let recorded = LogBuffer::new();
        let _on_error = recorded.on_error(memtail::Level::Error, 10, io::sink());
        group.bench_function("memtail_with_on_error", |b| {
            b.iter(|| memtail_write(&recorded))
        });
        bench_floor(&mut group);
        // The same floor behind the kind of lock memtail uses, to show the lock is not the gap.
        let rwlock = parking_lot::RwLock::new(Vec::<u8>::with_capacity(32 * 1024));
        group.bench_function("rwlock_vec_floor", |b| {
            b.iter(|| {
                let mut buf = rwlock.write();
                if buf.len() > 16 * 1024 {
                    buf.clear();
                }
                buf.extend_from_slice(black_box(LINE));
            })
        });
        bench_non_blocking(&mut group);
        group.finish();
    }
    {
        // The clocks a time per entry could be read from, alone.
        let mut group = c.benchmark_group("clock_read");
        group.bench_function("SystemTime::now", |b| {
            b.iter(|| black_box(std::time::SystemTime::now()))
        });
        group.bench_function("Instant::now", |b| b.iter(|| black_box(Instant::now())));
        group.bench_function("quanta::Instant::now", |b| {
            b.iter(|| black_box(quanta::Instant::now()))
        });
        group.bench_function("quanta::Instant::recent", |b| {
            b.iter(|| black_box(quanta::Instant::recent()))
        });
        #[cfg(target_os = "linux")]
        group.bench_function("clock_gettime_REALTIME_COARSE", |b| {
            b.iter(|| {
                black_box(rustix::time::clock_gettime(
                    rustix::time::ClockId::RealtimeCoarse,
                ))
            })
        });
        group.finish();
    }
    for stalled in [1usize, 8] {
        let mut group = c.benchmark_group(format!("write_100B/{stalled}_stalled"));
        group.throughput(Throughput::Bytes(LINE.len() as u64));
        let buf = LogBuffer::new();
        let subs: Vec<_> = (0..stalled).map(|_| buf.events()).collect();
        group.bench_function("memtail", |b| b.iter(|| memtail_write(&buf)));
        // Stalled means full: past the first 64 entries, every write is a counted drop.
        let written = buf.stats().entries_written;
        assert!(subs
            .iter()
            .all(|s| s.dropped() == written.saturating_sub(64)));
        bench_floor(&mut group);
        bench_broadcast(&mut group, stalled);
        group.finish();
    }
    {
        let mut group = c.benchmark_group("write_100B/1_drained");
        group.throughput(Throughput::Bytes(LINE.len() as u64));
        bench_drained(&mut group, "memtail");
        bench_floor(&mut group);
        bench_non_blocking(&mut group);
        group.finish();
    }
    {
        // What a publisher costs the writer, beside the core's one drained subscriber.
        let mut group = c.benchmark_group("write_100B/1_publisher");
        group.throughput(Throughput::Bytes(LINE.len() as u64));
        bench_publisher(&mut group, "memtail_publisher_defaults", None);
        bench_publisher(
            &mut group,
            "memtail_publisher_10ms_queue_100k",
            Some((Duration::from_millis(10), 100_000)),
        );
        bench_drained(&mut group, "memtail_1_drained_subscriber");
        group.finish();
    }
}

/// Linux's coarse wall clock: the time of the last kernel tick.
#[cfg(target_os = "linux")]
fn coarse_clock() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// A `quanta` instant as wall-clock time: its offset from a `SystemTime` read once.
fn quanta_wall(now: quanta::Instant) -> Duration {
    static BASE: std::sync::OnceLock<(quanta::Instant, Duration)> = std::sync::OnceLock::new();
    let (at, since_epoch) = BASE.get_or_init(|| {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (quanta::Instant::now(), since_epoch)
    });
    *since_epoch + now.saturating_duration_since(*at)
}

/// `quanta`'s precise time (the TSC, scaled).
fn quanta_now_clock() -> Duration {
    quanta_wall(quanta::Instant::now())
}

/// `quanta`'s recent time: an atomic load, kept fresh by its upkeep thread.
fn quanta_recent_clock() -> Duration {
    quanta_wall(quanta::Instant::recent())
}

/// memtail with one subscriber that another thread drains.
fn bench_drained<M: criterion::measurement::Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    name: &str,
) {
    // A channel large enough that the reader thread keeps up and drops (almost) nothing.
    let buf = LogBuffer::builder().subscriber_capacity(1 << 16).build();
    let sub = buf.events();
    let reader = thread::spawn(move || {
        let mut received = 0u64;
        for entry in sub.iter() {
            black_box(entry);
            received += 1;
        }
        (received, sub.dropped())
    });
    group.bench_function(name, |b| b.iter(|| memtail_write(&buf)));
    let written = buf.stats().entries_written;
    drop(buf);
    let (received, dropped) = reader.join().unwrap();
    if written == 0 {
        return; // filtered out of this run
    }
    eprintln!(
        "{name}: {written} entries written, {received} received, {dropped} dropped ({:.3}%)",
        dropped as f64 * 100.0 / written.max(1) as f64
    );
}

/// memtail with one publisher writing to `io::sink`, with the default settings or the given
/// interval and queue.
fn bench_publisher<M: criterion::measurement::Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    name: &str,
    settings: Option<(Duration, usize)>,
) {
    let buf = LogBuffer::new();
    let mut builder = buf.publisher(WriterPublisher::new(io::sink()));
    if let Some((interval, queue)) = settings {
        builder = builder.interval(interval).queue(queue);
    }
    let handle = builder.start();
    group.bench_function(name, |b| b.iter(|| memtail_write(&buf)));
    let stats = handle.stop(Duration::from_secs(10));
    if stats.written() == 0 {
        return; // filtered out of this run
    }
    eprintln!(
        "{name}: {} entries written, {} delivered, {} dropped ({:.3}%)",
        stats.written(),
        stats.delivered,
        stats.dropped(),
        stats.dropped() as f64 * 100.0 / stats.written().max(1) as f64
    );
}

fn tracing_full_path(c: &mut Criterion) {
    use tracing_subscriber::fmt::MakeWriter;

    fn bench_into<W>(c: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, name: &str, w: W)
    where
        W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(w)
            .with_ansi(false)
            .finish();
        let dispatch = tracing::Dispatch::new(subscriber);
        tracing::dispatcher::with_default(&dispatch, || {
            c.bench_function(name, |b| {
                b.iter(|| {
                    tracing::info!(
                        user = black_box(42),
                        "handled request GET /api/items in 1.3 ms, all good"
                    )
                })
            });
        });
    }

    let mut group = c.benchmark_group("tracing_full_path");
    bench_into(&mut group, "io_sink", io::sink);
    bench_into(&mut group, "memtail", LogBuffer::new());
    let (non_blocking, guard) = tracing_appender::non_blocking(io::sink());
    bench_into(&mut group, "tracing_appender_non_blocking", non_blocking);
    drop(guard);
    group.finish();
}

/// Two threads writing `iters` lines between them; returns the wall time.
fn two_threads(iters: u64, write: impl Fn() + Send + Sync + 'static) -> Duration {
    let write = Arc::new(write);
    let start = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let write = Arc::clone(&write);
            let start = Arc::clone(&start);
            let share = iters / 2 + (iters % 2) * (t == 0) as u64;
            thread::spawn(move || {
                start.wait();
                for _ in 0..share {
                    write();
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for handle in handles {
        handle.join().unwrap();
    }
    began.elapsed()
}

fn two_writers(c: &mut Criterion) {
    let mut group = c.benchmark_group("two_writers");
    group.throughput(Throughput::Elements(1));
    let buf = LogBuffer::new();
    group.bench_function("memtail", |b| {
        b.iter_custom(|iters| {
            let buf = buf.clone();
            two_threads(iters, move || memtail_write(&buf))
        })
    });
    let floor = Arc::new(Floor::new());
    group.bench_function("mutex_vec_floor", |b| {
        b.iter_custom(|iters| {
            let floor = Arc::clone(&floor);
            two_threads(iters, move || floor.write(black_box(LINE)))
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = write_100b, tracing_full_path, two_writers }
criterion_main!(benches);
