//! From a line appended to a file to an SSE follower: latency, and how many lines per second one
//! follower receives without loss. This is what `memtail serve FILE` does, in one process.
//!
//! Run it with `cargo run --release --example follow_bench --features follow,http`. For each rate, a writer
//! appends lines stamped with the write time to a temporary file for 3 s (one `write` per line, or
//! per batch of lines at high rates); `memtail::follow` follows the file (told of changes by the
//! kernel, or polling every 50 ms with `--poll`) into a `LogBuffer` served by `memtail::http`; a
//! subscriber in the process measures when each line reaches the buffer, and one raw-TCP client on
//! `/events` when it arrives there. Arguments `RATE[:RING_KIB] ...` (lines per second, the buffer's
//! capacity in KiB; 1 MiB, what `memtail serve` keeps, by default) replace the default rates.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memtail::follow::Follow;
use memtail::http::Config;
use memtail::LogBuffer;

#[path = "support/stamped.rs"]
mod stamped;
use axum::serve::ListenerExt;
use stamped::{follow, quantile, Totals};

const SECONDS: u64 = 3;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let poll = args.iter().any(|arg| arg == "--poll");
    args.retain(|arg| arg != "--poll");
    let runs: Vec<(u64, usize)> = match args {
        args if args.is_empty() => [100, 1_000, 10_000, 20_000, 50_000, 100_000]
            .map(|rate| (rate, 1024))
            .into(),
        args => args
            .iter()
            .map(|arg| {
                let (rate, ring) = arg.split_once(':').unwrap_or((arg, "1024"));
                match (rate.parse(), ring.parse::<usize>()) {
                    (Ok(rate), Ok(ring)) if ring > 0 => (rate, ring),
                    _ => {
                        eprintln!("follow_bench: arguments are RATE[:RING_KIB], like 400000:16384");
                        std::process::exit(2)
                    }
                }
            })
            .collect(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("memtail-follow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    println!(
        "following by {}",
        if poll {
            "polling every 50 ms"
        } else {
            "kernel notifications"
        }
    );
    println!("| lines/s written | ring | to the buffer p50 | p99 | max | received/s | missed | to the client p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (rate, ring_kib) in runs {
        let path = dir.join("app.log");
        let mut file = std::fs::File::create(&path).unwrap();
        let buf = LogBuffer::with_capacity(ring_kib << 10);
        let follower = Follow::new().polling(poll).file(&path, &buf);
        follower.wait_ready(Duration::from_secs(10));
        let app = Config::new().router(buf.clone());
        let epoch = Instant::now();
        // When each line reaches the buffer, by a follower in the process.
        let expected = rate * SECONDS;
        let mut arrivals = buf.tail_from(memtail::Start::Now);
        let to_buffer = std::thread::spawn(move || {
            let mut latencies = Vec::with_capacity(expected as usize);
            while let Ok(entry) = arrivals.recv_timeout(Duration::from_secs(30)) {
                let now = epoch.elapsed().as_nanos() as u64;
                let text = std::str::from_utf8(&entry).unwrap_or("");
                let stamp: Option<u64> = text
                    .strip_prefix("t=")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|stamp| stamp.parse().ok());
                if let Some(stamp) = stamp {
                    latencies.push(now.saturating_sub(stamp));
                }
                if latencies.len() as u64 == expected {
                    break;
                }
            }
            latencies.sort_unstable();
            latencies
        });
        let totals = Arc::new(Totals::default());
        let address = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            address
        });
        let client = runtime.spawn(follow(address, epoch, rate * SECONDS, Arc::clone(&totals)));
        while buf.stats().followers == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }

        let lines = rate * SECONDS;
        // One write per line up to 1000 lines/s; above, one write per millisecond's worth.
        let batch = (rate / 1000).max(1);
        let padding = "x".repeat(60);
        let start = Instant::now();
        let mut text = String::new();
        let mut n = 0;
        while n < lines {
            let due = start + Duration::from_nanos(n * 1_000_000_000 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            text.clear();
            let stamp = epoch.elapsed().as_nanos();
            for _ in 0..batch.min(lines - n) {
                text.push_str(&format!("t={stamp} n={n} {padding}\n"));
                n += 1;
            }
            file.write_all(text.as_bytes()).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while totals.accounted() < lines && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let elapsed = start.elapsed().as_secs_f64();
        // The client hands in its latencies once it has accounted for every line.
        let _ =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), client).await });
        drop(follower);
        let received = totals.received.load(Ordering::Relaxed);
        let missed = totals.missed.load(Ordering::Relaxed);
        let latencies = totals.sorted_latencies();
        let at = |q| quantile(&latencies, q);
        let buffered = to_buffer.join().unwrap();
        let in_buffer = |q| quantile(&buffered, q);
        println!(
            "| {rate} | {ring_kib} KiB | {} | {} | {} | {:.0} | {missed} | {} | {} | {} |",
            in_buffer(0.50),
            in_buffer(0.99),
            in_buffer(1.0),
            received as f64 / elapsed,
            at(0.50),
            at(0.99),
            at(1.0),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
