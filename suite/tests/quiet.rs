//! Serving the log makes no log: with a subscriber that records every `tracing` event of every
//! target at every level into the served buffer, requests to each route leave the buffer empty.

mod common;

use std::time::Duration;

use common::serve;
use memtail::LogBuffer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one raw request and reads the head of the answer (or up to `limit` bytes of it).
async fn request(address: std::net::SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_the_log_writes_nothing_into_it() {
    let buf = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    // The subscriber works: an event of this test's own does reach the buffer.
    tracing::trace!("canary");
    assert_eq!(buf.stats().entries_written, 1);

    let address = serve(memtail::http::Config::new().token("k").router(buf.clone())).await;
    let requests = [
        ("GET /?token=k HTTP/1.1\r\nHost: localhost\r\n\r\n", "200"),
        ("GET /snapshot HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer k\r\n\r\n", "200"),
        ("GET /events?token=k HTTP/1.1\r\nHost: localhost\r\n\r\n", "200"),
        ("GET /events?token=wrong HTTP/1.1\r\nHost: localhost\r\n\r\n", "401"),
        ("GET /snapshot?token=k HTTP/1.1\r\nHost: evil.example\r\n\r\n", "403"),
        ("GET /nowhere?token=k HTTP/1.1\r\nHost: localhost\r\n\r\n", "404"),
        (
            "GET /ws?token=k HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "101",
        ),
        ("BREW / HTCPCP/1.0\r\n\r\n", "400"),
    ];
    for (head, status) in requests {
        let answer = request(address, head).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{head:?} -> {answer:?}"
        );
    }
    let stats = buf.stats();
    assert_eq!(
        stats.entries_written,
        1,
        "only the canary: {:?}",
        String::from_utf8_lossy(&buf.snapshot())
    );
}
