//! The server's memory under 1000 stream clients that never read, from `/proc/self/status`
//! (shared by `tests/memory.rs` and `tests/memory_json.rs`, each alone in its binary so that no
//! other test's memory is counted).

use std::time::Instant;

use memtail::http::Config;
use memtail::LogBuffer;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use super::{need_open_files, rss, DEADLINE};

const CLIENTS: usize = 1000;
const WRITTEN: usize = 1 << 30;

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
async fn stalled_client(address: std::net::SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    stream
}

/// A thousand clients ask for `path` and never read while at least 1 GiB of `entry` (and 256 MiB
/// more once every stream has stalled) is written into a 1 MiB ring: the server's resident
/// memory must stay under `bound` at every sample, and flat once the streams have stalled.
pub fn a_thousand_stalled_clients(path: &str, entry: &[u8], bound: u64) {
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
            clients.push(stalled_client(address, path).await);
        }
        clients
    });
    let deadline = Instant::now() + DEADLINE;
    while buf.stats().followers < CLIENTS as u64 {
        assert!(Instant::now() < deadline, "{:?}", buf.stats());
        std::thread::yield_now();
    }
    let connected = rss();

    let entries = WRITTEN / entry.len();
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
    // 256 MiB after the stall, in entries.
    let after_stall = (256 << 20) / entry.len();
    while stalled_at.is_none_or(|(after, _)| n < entries.max(after + after_stall)) {
        n += 1;
        buf.append(entry);
        if n % ((64 << 20) / entry.len()) == 0 {
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
        (stalled_after * entry.len()) >> 20,
        mib(end),
        (n * entry.len()) >> 20,
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
    assert!(most < bound, "RSS reached {} MiB", mib(most));
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
