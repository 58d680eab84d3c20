//! From a line appended to a file to an SSE follower: latency, and how many lines per second one
//! follower receives without loss. This is what `memtail serve FILE` does, in one process.
//!
//! Run it with `cargo run --release --example follow_bench --features follow,http`. For each rate, a writer
//! appends lines stamped with the write time to a temporary file for 3 s (one `write` per line, or
//! per batch of lines at high rates); `memtail::follow` follows the file (polling every 50 ms) into
//! a `LogBuffer` served by `memtail::http`; one raw-TCP client on `/events` measures when each line
//! arrives. Arguments `RATE[:QUEUE] ...` (lines per second, follower queue) replace the default
//! rates.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memtail::follow::Follow;
use memtail::http::Config;
use memtail::LogBuffer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECONDS: u64 = 3;

#[derive(Default)]
struct Totals {
    received: AtomicU64,
    missed: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

fn main() {
    let runs: Vec<(u64, usize)> = match std::env::args().skip(1).collect::<Vec<_>>() {
        args if args.is_empty() => [100, 1_000, 10_000, 20_000, 50_000, 100_000]
            .map(|rate| (rate, Config::DEFAULT_FOLLOWER_QUEUE))
            .into(),
        args => args
            .iter()
            .map(|arg| {
                let (rate, queue) = arg.split_once(':').unwrap_or((arg, "1024"));
                match (rate.parse(), queue.parse()) {
                    (Ok(rate), Ok(queue)) => (rate, queue),
                    _ => {
                        eprintln!("follow_bench: arguments are RATE[:QUEUE], like 20000:8192");
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

    println!("| lines/s written | follower queue | received/s | missed | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    for (rate, queue) in runs {
        let path = dir.join("app.log");
        let mut file = std::fs::File::create(&path).unwrap();
        let buf = LogBuffer::with_capacity(16 << 20);
        let follower = Follow::new().file(&path, &buf);
        follower.wait_ready(Duration::from_secs(10));
        let app = Config::new().follower_queue(queue).router(buf.clone());
        let epoch = Instant::now();
        let totals = Arc::new(Totals::default());
        let address = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            address
        });
        let client = runtime.spawn(follow(address, epoch, Arc::clone(&totals)));
        while buf.stats().subscribers == 0 {
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
        while totals.received.load(Ordering::Relaxed) + totals.missed.load(Ordering::Relaxed)
            < lines
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let elapsed = start.elapsed().as_secs_f64();
        client.abort();
        drop(follower);
        let received = totals.received.load(Ordering::Relaxed);
        let missed = totals.missed.load(Ordering::Relaxed);
        let mut latencies = std::mem::take(&mut *totals.latencies.lock().unwrap());
        latencies.sort_unstable();
        let at = |q: f64| {
            let last = latencies.len().saturating_sub(1);
            let index = ((latencies.len() as f64 * q) as usize).min(last);
            latencies
                .get(index)
                .map_or("-".to_owned(), |&ns| format!("{:.1} ms", ns as f64 / 1e6))
        };
        println!(
            "| {rate} | {queue} | {:.0} | {missed} | {} | {} | {} |",
            received as f64 / elapsed,
            at(0.50),
            at(0.99),
            at(1.0),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One follower: `GET /events` over a raw connection, reading the stamp of each line.
async fn follow(address: std::net::SocketAddr, epoch: Instant, totals: Arc<Totals>) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut pending = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let mut latencies = Vec::new();
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = epoch.elapsed().as_nanos() as u64;
        pending.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        let mut received = 0;
        while let Some(end) = pending[consumed..].iter().position(|&b| b == b'\n') {
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
