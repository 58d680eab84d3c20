//! Memory under attack, read from `/proc/self/status`: 1000 Server-Sent Events clients that
//! connect with a 4 KiB receive buffer and never read, while 1 GiB is written in 64 KiB entries
//! into a 1 MiB ring. Each stream is a position in the ring, so the server holds one batch per
//! stream (plus what hyper queues for the socket), not a queue of entries: its memory stays
//! bounded and flat however much is written.
//!
//! Alone in its test binary, so that no other test's memory is counted.
#![cfg(target_os = "linux")]

mod common;

use std::time::Instant;

use common::{need_open_files, rss, DEADLINE};
use memtail::http::Config;
use memtail::LogBuffer;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const CLIENTS: usize = 1000;
const ENTRY: usize = 64 * 1024;
const WRITTEN: usize = 1 << 30;
/// The bound the server's resident memory must stay under, in bytes.
const BOUND: u64 = 400 << 20;

/// Serves `app` on a loopback listener whose connections have small kernel send buffers.
///
/// On loopback, Linux grows a connection's send buffer to a megabyte or more, so the server would
/// have to format about 1.4 MB per client before the client's stalled socket stopped it: 1.4 GB
/// for the thousand, which a debug build takes minutes to produce. That memory is the kernel's,
/// not the process's, and the server holds the same per stalled connection whatever the kernel
/// takes first; with 16 KiB the streams stall after a few entries each, which is the state the
/// test is about.
async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(4096).unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A client that asks for the stream and never reads a byte of it.
async fn stalled_client(address: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    stream
}

#[test]
fn a_thousand_clients_that_never_read_keep_the_server_under_400_mb_and_flat() {
    // Each client costs two: its socket and the server's.
    need_open_files(2 * CLIENTS as u64 + 100);
    // The server on two worker threads; this thread writes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let buf = LogBuffer::with_capacity(1 << 20);
    let app = Config::new().max_followers(CLIENTS).router(buf.clone());
    let address = runtime.block_on(serve(app));
    let clients: Vec<TcpStream> = runtime.block_on(async {
        let mut clients = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            clients.push(stalled_client(address).await);
        }
        clients
    });
    let deadline = Instant::now() + DEADLINE;
    while buf.stats().followers < CLIENTS as u64 {
        assert!(Instant::now() < deadline, "{:?}", buf.stats());
        std::thread::yield_now();
    }
    let connected = rss();

    let entry = {
        let mut line = "x".repeat(ENTRY - 1);
        line.push('\n');
        line
    };
    let entries = WRITTEN / ENTRY;
    let mib = |bytes: u64| bytes >> 20;
    let mut samples = Vec::new();
    // Until every stream has stalled, the entries go at about 128 MiB a second, so that the
    // server has time to push to every client: the pace is the attack's. A stream that reads
    // finds that the ring evicted entries it had not sent, which `follower_missed` counts; the
    // streams have stalled once every client has been sent entries and no stream read anything
    // while 64 more were written. Every 64 MiB, the resident set size: every sample must be under
    // the bound, whatever the server has done by then.
    let mut stalled_at = None;
    let mut missed_before = u64::MAX;
    let deadline = Instant::now() + 4 * DEADLINE;
    // At least 1 GiB, and at least 256 MiB after the streams stalled.
    let mut n = 0;
    while stalled_at.is_none_or(|(after, _)| n < entries.max(after + 4096)) {
        n += 1;
        buf.append(entry.as_bytes());
        if n % 1024 == 0 {
            samples.push(rss());
        }
        if stalled_at.is_some() {
            continue;
        }
        if n % 2 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if n % 64 == 0 {
            let missed = buf.stats().follower_missed;
            if missed == missed_before && runtime.block_on(all_have_data(&clients)) {
                stalled_at = Some((n, rss()));
            }
            missed_before = missed;
            assert!(Instant::now() < deadline, "the streams never stalled");
        }
    }
    let (stalled_after, at_stall) = stalled_at.expect("the loop ends after the streams stalled");
    let end = rss();
    eprintln!(
        "RSS: {} MiB with {CLIENTS} clients connected, {} MiB once every stream had stalled \
         (after {} MiB written), {} MiB after {} MiB; every 64 MiB: {:?} MiB",
        mib(connected),
        mib(at_stall),
        (stalled_after * ENTRY) >> 20,
        mib(end),
        (n * ENTRY) >> 20,
        samples.iter().map(|&s| mib(s)).collect::<Vec<_>>()
    );
    let stats = buf.stats();
    assert_eq!(
        stats.followers, CLIENTS as u64,
        "every client still connected"
    );
    assert_eq!(stats.entries_written, n as u64);
    assert!(n >= entries, "at least 1 GiB written");
    let most = samples.iter().copied().chain([end]).max().unwrap();
    assert!(most < BOUND, "RSS reached {} MiB", mib(most));
    // Flat: once the streams have stalled, writing the rest (256 MiB or more) adds nothing.
    assert!(
        end < at_stall + (16 << 20),
        "RSS grew from {} MiB to {} MiB after the streams stalled",
        mib(at_stall),
        mib(end)
    );
    drop(clients);
}

/// Whether every client has been sent entries (the headers and the first event alone are 183
/// bytes), peeking at what waits in its socket without reading it.
async fn all_have_data(clients: &[TcpStream]) -> bool {
    let mut peeked = vec![0; 64 * 1024];
    for client in clients {
        if client.peek(&mut peeked).await.unwrap() < 2048 {
            return false;
        }
    }
    true
}
