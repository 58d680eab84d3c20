//! An SSE follower for the benchmark examples: a raw TCP connection to `/events` that reads the
//! write time stamped into each entry (`t=<nanoseconds since epoch> ...`) and counts what it
//! received and what the server said was missed.

#![allow(unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What all followers of one run saw.
#[derive(Default)]
pub struct Totals {
    pub received: AtomicU64,
    pub missed: AtomicU64,
    /// Write-to-receipt times, in nanoseconds, handed in by each follower when it is done (one
    /// shared vector appended to on every read would stall every follower while it grows).
    pub latencies: Mutex<Vec<u64>>,
}

impl Totals {
    /// Entries received or announced missed so far.
    pub fn accounted(&self) -> u64 {
        self.received.load(Ordering::Relaxed) + self.missed.load(Ordering::Relaxed)
    }

    /// The latencies, sorted, taken out.
    pub fn sorted_latencies(&self) -> Vec<u64> {
        let mut latencies = std::mem::take(&mut *self.latencies.lock().unwrap());
        latencies.sort_unstable();
        latencies
    }
}

/// The `q` quantile of sorted nanoseconds, in milliseconds.
pub fn quantile(sorted: &[u64], q: f64) -> String {
    let last = sorted.len().saturating_sub(1);
    let index = ((sorted.len() as f64 * q) as usize).min(last);
    sorted
        .get(index)
        .map_or("-".to_owned(), |&ns| format!("{:.2} ms", ns as f64 / 1e6))
}

/// Follows `/events` at `address` until `expected` entries were received or announced missed,
/// or the connection ends. Stamps are nanoseconds since `epoch`.
pub async fn follow(
    address: std::net::SocketAddr,
    epoch: Instant,
    expected: u64,
    totals: Arc<Totals>,
) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::with_capacity(64 * 1024);
    let mut body = Dechunk::default();
    let mut pending = Vec::with_capacity(64 * 1024);
    let mut latencies = Vec::new();
    let mut accounted = 0;
    // Whether the event being read is named `missed`.
    let mut in_missed = false;
    let mut chunk = vec![0; 64 * 1024];
    while accounted < expected {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = epoch.elapsed().as_nanos() as u64;
        raw.extend_from_slice(&chunk[..n]);
        body.decode(&mut raw, &mut pending);
        let mut received = 0;
        let mut consumed = 0;
        while let Some(end) = pending[consumed..].iter().position(|&b| b == b'\n') {
            let line = &pending[consumed..consumed + end];
            consumed += end + 1;
            if let Some(name) = line.strip_prefix(b"event: ") {
                in_missed = name == b"missed";
            } else if line.is_empty() {
                in_missed = false;
            }
            if let Some(rest) = line.strip_prefix(b"data: t=") {
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let stamp: u64 = std::str::from_utf8(&rest[..digits])
                    .unwrap()
                    .parse()
                    .unwrap();
                latencies.push(now.saturating_sub(stamp));
                received += 1;
            } else if let Some(rest) = line.strip_prefix(b"data: ").filter(|_| in_missed) {
                // The data of a `missed` event: a count (a heartbeat's is a number too).
                if let Ok(missed) = std::str::from_utf8(rest).unwrap_or("").parse::<u64>() {
                    totals.missed.fetch_add(missed, Ordering::Relaxed);
                    accounted += missed;
                }
            }
        }
        pending.drain(..consumed);
        accounted += received;
        totals.received.fetch_add(received, Ordering::Relaxed);
    }
    totals.latencies.lock().unwrap().append(&mut latencies);
}

/// Undoes HTTP/1.1 chunked transfer encoding (after skipping the response head): the server
/// cuts its stream into chunks wherever it likes, in the middle of a line too.
#[derive(Default)]
struct Dechunk {
    head_done: bool,
    /// Data bytes left in the current chunk, then its CRLF.
    left: usize,
}

impl Dechunk {
    /// Moves what `raw` holds of the body into `out`, leaving an incomplete size line in `raw`.
    fn decode(&mut self, raw: &mut Vec<u8>, out: &mut Vec<u8>) {
        let mut at = 0;
        if !self.head_done {
            match raw.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => {
                    at = end + 4;
                    self.head_done = true;
                }
                None => return,
            }
        }
        loop {
            if self.left > 0 {
                let take = self.left.min(raw.len() - at);
                out.extend_from_slice(&raw[at..at + take]);
                at += take;
                self.left -= take;
                if self.left > 0 {
                    break;
                }
            }
            // The CRLF that ends a chunk's data, if any, then the next size line.
            let rest = &raw[at..];
            let rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let size = std::str::from_utf8(&rest[..end]).unwrap();
            let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
            at = raw.len() - rest.len() + end + 2;
            self.left = size;
            if size == 0 {
                break;
            }
        }
        raw.drain(..at);
    }
}
