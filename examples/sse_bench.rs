//! How many entries per second `/events` delivers to 1, 100 and 1000 Server-Sent Events
//! followers on loopback, and how long an entry takes from `write` to a follower's socket read.
//!
//! Run it with `cargo run --release --example sse_bench --features http`. Each scenario writes
//! entries at a fixed rate for a few seconds; every follower is a raw TCP connection on the same
//! machine that parses the event stream and reads the write time stamped into each entry.
//! Arguments `FOLLOWERS:RATE ...` (entries written per second) replace the default scenarios;
//! `COALESCE_MS=N` sets the router's `Config::coalesce` (5 ms by default). The server sets
//! `TCP_NODELAY`, as a server of live logs should: without it, Nagle's algorithm holds an event back
//! until the previous one is acknowledged, which delayed acknowledgements make up to 40 ms.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memtail::http::Config;
use memtail::LogBuffer;

#[path = "support/stamped.rs"]
mod stamped;
use axum::serve::ListenerExt;
use stamped::{follow, quantile, Totals};

const SECONDS: u64 = 5;

fn main() {
    let scenarios: Vec<(usize, u64)> = match std::env::args().skip(1).collect::<Vec<_>>() {
        args if args.is_empty() => vec![(1, 20_000), (100, 1_000), (1000, 100)],
        args => args
            .iter()
            .map(|arg| {
                let parsed = arg
                    .split_once(':')
                    .and_then(|(f, r)| Some((f.parse().ok()?, r.parse().ok()?)));
                parsed.unwrap_or_else(|| {
                    eprintln!("sse_bench: arguments are FOLLOWERS:RATE, like 1000:100");
                    std::process::exit(2)
                })
            })
            .collect(),
    };
    // The server on two worker threads; the followers on a runtime of their own.
    let server = tokio::runtime::Builder::new_multi_thread()
        .thread_name("sse-bench-server")
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients = tokio::runtime::Builder::new_multi_thread()
        .thread_name("sse-bench-client")
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // COALESCE_MS sets `Config::coalesce` (5 ms by default).
    let coalesce = std::env::var("COALESCE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Config::DEFAULT_COALESCE, Duration::from_millis);
    println!(
        "| followers | written/s | delivered/s | missed | p50 | p99 | max |\n|---|---|---|---|---|---|---|"
    );
    for (followers, rate) in scenarios {
        let buf = LogBuffer::with_capacity(4 << 20);
        let app = Config::new()
            .coalesce(coalesce)
            .max_followers(followers.max(1))
            .router(buf.clone());
        let address = server.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            address
        });
        let epoch = Instant::now();
        let totals = Arc::new(Totals::default());
        let handles: Vec<_> = (0..followers)
            .map(|_| {
                let expected = rate * SECONDS;
                clients.spawn(follow(address, epoch, expected, Arc::clone(&totals)))
            })
            .collect();
        while buf.stats().followers < followers as u64 {
            std::thread::sleep(Duration::from_millis(10));
        }

        let entries = rate * SECONDS;
        let start = Instant::now();
        let padding = "x".repeat(60);
        for n in 0..entries {
            let due = start + Duration::from_nanos(n * 1_000_000_000 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let stamp = epoch.elapsed().as_nanos();
            writeln!(&buf, "t={stamp} n={n} {padding}").unwrap();
        }
        let expected = entries * followers as u64;
        let deadline = Instant::now() + Duration::from_secs(30);
        while totals.accounted() < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = start.elapsed().as_secs_f64();
        // Each follower hands in its latencies when it has accounted for every entry.
        for handle in handles {
            let _ = clients
                .block_on(async { tokio::time::timeout(Duration::from_secs(30), handle).await });
        }
        let received = totals.received.load(Ordering::Relaxed);
        let missed = totals.missed.load(Ordering::Relaxed);
        let latencies = totals.sorted_latencies();
        let at = |q| quantile(&latencies, q);
        println!(
            "| {followers} | {rate} | {:.0} | {missed} | {} | {} | {} |",
            received as f64 / elapsed,
            at(0.50),
            at(0.99),
            at(1.0),
        );
        drop(buf);
    }
}
