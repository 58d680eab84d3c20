//! A server on 127.0.0.1:0 and a small Server-Sent Events reader for the HTTP tests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;

pub mod stalled;
pub mod webdriver;

/// How long any single wait in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Serves `app` on a free loopback port; the server lives as long as the runtime.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A WebSocket handshake for `/ws`, as a client sends it.
pub const WS_HANDSHAKE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Reads an answer's status line and headers, byte by byte (leaving the body unread), and checks
/// the status line starts with `status` (like `"HTTP/1.1 200"`); panics after [`DEADLINE`].
pub async fn read_head(stream: &mut tokio::net::TcpStream, status: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .expect("the answer's head within the deadline")
            .unwrap();
        assert_eq!(n, 1, "the server answered");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with(status), "{head}");
    head
}

/// This process's resident set size, in bytes, from `/proc/self/status`.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib << 10
}

/// The soft limit on open files.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Makes sure this process may open `needed` files, raising its soft limit with util-linux's
/// `prlimit` if it is there; panics saying what to do if the limit stays lower.
pub fn need_open_files(needed: u64) {
    if open_files_limit().unwrap_or(0) < needed {
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={needed}:"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let limit = open_files_limit().unwrap_or(0);
    assert!(
        limit >= needed,
        "this test opens {needed} files, the limit is {limit}: raise it with `ulimit -n {needed}`"
    );
}

/// One parsed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    /// The sequence number part of the event id (`INSTANCE-SEQ`).
    pub id: Option<String>,
    /// The event id as sent.
    pub full_id: Option<String>,
    pub data: String,
}

/// Reads events from a streaming response, parsed as the SSE specification says; also keeps the
/// raw text.
pub struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    pending: String,
    pub raw: String,
    /// Heartbeat events seen (and skipped) so far.
    pub heartbeats: u64,
}

impl Events {
    pub fn new(response: reqwest::Response) -> Events {
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an event stream"
        );
        Events {
            body: Box::pin(response.bytes_stream()),
            pending: String::new(),
            raw: String::new(),
            heartbeats: 0,
        }
    }

    /// The next event; panics after [`DEADLINE`] or when the stream ends.
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(DEADLINE, self.next_or_end())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no event within the deadline after {:?}",
                    &self.raw[self.raw.len().saturating_sub(300)..]
                )
            })
            .expect("the stream goes on")
    }

    /// The next event but heartbeats (which it counts), or `None` when the stream ends.
    pub async fn next_or_end(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.parse_one() {
                if event.name == "heartbeat" {
                    self.heartbeats += 1;
                    continue;
                }
                return Some(event);
            }
            let chunk = self.body.next().await?.expect("a readable body");
            let text = std::str::from_utf8(&chunk).expect("UTF-8 events");
            self.raw.push_str(text);
            self.pending.push_str(text);
        }
    }

    fn parse_one(&mut self) -> Option<Event> {
        loop {
            let end = self.pending.find("\n\n")?;
            let block: String = self.pending.drain(..end + 2).collect();
            let mut event = Event {
                name: "message".into(),
                id: None,
                full_id: None,
                data: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                if line.is_empty() || line.starts_with(':') {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event.name = value.into(),
                    "id" => {
                        event.full_id = Some(value.into());
                        event.id = Some(value.rsplit('-').next().unwrap_or(value).into());
                    }
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    "retry" => {}
                    other => panic!("unexpected field {other:?}"),
                }
            }
            if has_data {
                return Some(event);
            }
        }
    }
}

/// Follows `/events` until entries with sequence numbers up to `last` are all accounted for
/// (received or announced missed); returns the received ids in order and the missed total.
pub async fn follow_until(events: &mut Events, first: u64, last: u64) -> (Vec<u64>, u64) {
    let mut ids = Vec::new();
    let mut missed = 0;
    let mut expected = first;
    while expected <= last {
        let event = events.next().await;
        match event.name.as_str() {
            "missed" => {
                let n: u64 = event.data.parse().unwrap();
                assert!(n > 0, "a missed event announces a loss");
                missed += n;
                expected += n;
            }
            "message" => {
                let id: u64 = event.id.unwrap().parse().unwrap();
                assert_eq!(id, expected, "in order, no gap that was not announced");
                ids.push(id);
                expected += 1;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    (ids, missed)
}
