//! Memory under attack on `Config::serve`, read from `/proc/self/status`: WebSocket clients that
//! send endless fragmented messages, and thousands of snapshots that are never read.
//!
//! Alone in their test binary, so that no other test's memory is counted, and run one at a time.
#![cfg(target_os = "linux")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{need_open_files, rss, DEADLINE};
use memtail::http::Config;
use memtail::LogBuffer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The tests measure this process's memory: one at a time.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: u64 = 1 << 20;

/// Samples this process's resident set size every 10 ms until dropped; `peak` is the highest.
struct PeakRss {
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    fn start() -> PeakRss {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss()));
        let sampled = std::sync::Arc::clone(&peak);
        let sampler = tokio::spawn(async move {
            loop {
                sampled.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        PeakRss { peak, sampler }
    }

    fn peak(&self) -> u64 {
        self.peak
            .fetch_max(rss(), std::sync::atomic::Ordering::Relaxed)
            .max(rss())
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

/// Serves on loopback with small kernel send buffers: on loopback Linux would otherwise take a
/// megabyte or more off the server's hands per connection, which a client across a real network
/// would not.
async fn serve(config: Config, buf: LogBuffer) -> SocketAddr {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(4096).unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { config.serve(buf, listener).await.unwrap() });
    address
}

/// A WebSocket client frame: `fin`, `opcode`, masked `payload`.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Opens `/ws` by hand and sends one text message that never ends: fragments of 512 bytes, up to
/// 60 MiB. Returns how many bytes of it the server took before it closed the connection.
async fn endless_message(address: SocketAddr) -> u64 {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(common::WS_HANDSHAKE).await.unwrap();
    common::read_head(&mut stream, "HTTP/1.1 101").await;
    let (mut reader, mut writer) = stream.into_split();
    // The server has nothing to send on an empty log but pings; read them so it never blocks.
    let drain = tokio::spawn(async move {
        let mut sink = [0; 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(DEADLINE, reader.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    });
    let payload = [b'a'; 512];
    let first = frame(false, 0x1, &payload);
    let more = frame(false, 0x0, &payload);
    let mut sent = 0u64;
    if writer.write_all(&first).await.is_ok() {
        sent += payload.len() as u64;
        while sent < 60 * MIB {
            match tokio::time::timeout(DEADLINE, writer.write_all(&more)).await {
                Ok(Ok(())) => sent += payload.len() as u64,
                Ok(Err(_)) => break,
                Err(_) => panic!("the server neither read nor closed"),
            }
        }
    }
    drop(writer);
    let _ = drain.await;
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_websocket_clients_sending_endless_messages_grow_the_server_by_under_50_mb() {
    let _alone = ALONE.lock().await;
    let address = serve(Config::new(), LogBuffer::with_capacity(1 << 20)).await;
    let before = rss();
    let sampled = PeakRss::start();
    let clients: Vec<_> = (0..20)
        .map(|_| tokio::spawn(endless_message(address)))
        .collect();
    let mut taken = Vec::new();
    for client in clients {
        taken.push(client.await.unwrap());
    }
    let grown = sampled.peak().saturating_sub(before);
    eprintln!(
        "20 endless WebSocket messages: the server took at most {} bytes of one before closing; \
         peak RSS grew by {} KiB",
        taken.iter().max().unwrap(),
        grown >> 10
    );
    for bytes in &taken {
        assert!(*bytes < 60 * MIB, "closed before the client sent it all");
    }
    assert!(grown < 50 * MIB, "RSS grew by {} MiB", grown / MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_snapshots_never_read_keep_the_server_under_200_mb() {
    const CLIENTS: usize = 3000;
    let _alone = ALONE.lock().await;
    // The clients' sockets, and as many of the server's if it let them all in.
    need_open_files(2 * CLIENTS as u64 + 200);
    let buf = LogBuffer::with_capacity(1 << 20);
    let line = format!("{}\n", "x".repeat(99));
    while buf.stats().entries_evicted == 0 {
        buf.append(line.as_bytes());
    }
    let address = serve(Config::new(), buf).await;
    let sampled = PeakRss::start();
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let Ok(mut stream) = socket.connect(address).await else {
            continue;
        };
        // Over the connection cap the server closes at once: the write may fail.
        let _ = stream
            .write_all(b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        clients.push(stream);
    }
    // Let the server answer what it will: until the peak has not moved for a second, bounded
    // by the deadline.
    let mut peak = sampled.peak();
    let mut steady = 0;
    let deadline = std::time::Instant::now() + DEADLINE;
    while steady < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sampled.peak();
        steady = if now > peak { 0 } else { steady + 1 };
        peak = now;
    }
    eprintln!(
        "{CLIENTS} snapshots of a 1 MiB ring, never read: peak RSS {} MiB",
        peak / MIB
    );
    assert!(peak < 200 * MIB, "RSS reached {} MiB", peak / MIB);
    drop(clients);
}
