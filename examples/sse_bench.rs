//! How many entries per second `/events` delivers to 1, 100 and 1000 Server-Sent Events
//! followers on loopback, and how long an entry takes from `write` to a follower's socket read.
//!
//! Run it with `cargo run --release --example sse_bench --features http`. Each scenario writes
//! entries at a fixed rate for a few seconds; every follower is a raw TCP connection on the same
//! machine that parses the event stream and reads the write time stamped into each entry.
//! Arguments `FOLLOWERS:RATE ...` (entries written per second) replace the default scenarios.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memtail::http::Config;
use memtail::LogBuffer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECONDS: u64 = 5;

struct Totals {
    received: AtomicU64,
    missed: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

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
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    println!(
        "| followers | written/s | delivered/s | missed | p50 | p99 | max |\n|---|---|---|---|---|---|---|"
    );
    for (followers, rate) in scenarios {
        let buf = LogBuffer::with_capacity(4 << 20);
        let app = Config::new()
            .max_followers(followers.max(1))
            .router(buf.clone());
        let address = server.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            address
        });
        let epoch = Instant::now();
        let totals = Arc::new(Totals {
            received: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
        });
        let handles: Vec<_> = (0..followers)
            .map(|_| clients.spawn(follow(address, epoch, Arc::clone(&totals))))
            .collect();
        while buf.stats().subscribers < followers as u64 {
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
        while totals.received.load(Ordering::Relaxed) + totals.missed.load(Ordering::Relaxed)
            < expected
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = start.elapsed().as_secs_f64();
        for handle in handles {
            handle.abort();
        }
        let received = totals.received.load(Ordering::Relaxed);
        let missed = totals.missed.load(Ordering::Relaxed);
        let mut latencies = std::mem::take(&mut *totals.latencies.lock().unwrap());
        latencies.sort_unstable();
        let at = |q: f64| {
            let index =
                ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
            latencies
                .get(index)
                .map_or("-".to_owned(), |&ns| format!("{:.2} ms", ns as f64 / 1e6))
        };
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

/// One follower: `GET /events` over a raw connection, parsing events as they come.
async fn follow(address: std::net::SocketAddr, epoch: Instant, totals: Arc<Totals>) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut pending = Vec::with_capacity(64 * 1024);
    let mut latencies = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = epoch.elapsed().as_nanos() as u64;
        pending.extend_from_slice(&chunk[..n]);
        let mut received = 0;
        let mut consumed = 0;
        // Chunked transfer framing lines are skipped: only `data:` lines count.
        while let Some(end) = find(&pending[consumed..], b"\n") {
            let line = &pending[consumed..consumed + end];
            consumed += end + 1;
            if let Some(rest) = line.strip_prefix(b"data: t=") {
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let stamp: u64 = std::str::from_utf8(&rest[..digits])
                    .unwrap()
                    .parse()
                    .unwrap();
                latencies.push(now.saturating_sub(stamp));
                received += 1;
            } else if let Some(rest) = line.strip_prefix(b"data: ") {
                // The data of a `missed` event: a count.
                if let Ok(missed) = std::str::from_utf8(rest).unwrap_or("").parse::<u64>() {
                    totals.missed.fetch_add(missed, Ordering::Relaxed);
                }
            }
        }
        pending.drain(..consumed);
        if received > 0 {
            totals.latencies.lock().unwrap().append(&mut latencies);
            totals.received.fetch_add(received, Ordering::Relaxed);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
