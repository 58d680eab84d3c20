//! `Config::serve` under hostile and slow clients: half-sent requests, idle connections, more
//! connections than the cap, snapshots that are never read, and `Host` values that are not what
//! they seem. Loopback only; every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{need_open_files, DEADLINE};
use futures_util::StreamExt;
use memtail::http::Config;
use memtail::LogBuffer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Serves `buf` with `config`'s limits on a free loopback port.
async fn serve(config: Config, buf: LogBuffer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { config.serve(buf, listener).await.unwrap() });
    address
}

/// Reads until the server closes the connection (end of stream or reset); panics after the
/// deadline. Returns what was read.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut chunk)).await {
            Err(_) => panic!("the server never closed the connection"),
            Ok(Ok(0)) | Ok(Err(_)) => return read,
            Ok(Ok(n)) => read.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `request` as it is and returns the whole answer (the request should say
/// `Connection: close`).
async fn raw(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    String::from_utf8_lossy(&until_closed(&mut stream).await).into_owned()
}

async fn snapshot_status(address: SocketAddr) -> String {
    let answer = raw(
        address,
        "GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    answer.lines().next().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_after_the_header_timeout_while_others_are_served() {
    const HALF_SENT: usize = 1000;
    need_open_files(2 * HALF_SENT as u64 + 100);
    let buf = LogBuffer::new();
    buf.append(b"still served\n");
    let timeout = Duration::from_secs(2);
    let address = serve(
        Config::new()
            .header_read_timeout(timeout)
            .max_connections(2 * HALF_SENT),
        buf,
    )
    .await;

    let started = Instant::now();
    let mut half_sent = Vec::with_capacity(HALF_SENT);
    for _ in 0..HALF_SENT {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127")
            .await
            .unwrap();
        half_sent.push(stream);
    }
    // Meanwhile, a whole request is answered.
    let asked = Instant::now();
    let answer = raw(
        address,
        "GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    let answered = asked.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("still served\n"), "{answer}");

    // Every half-sent request is closed by the server (without an answer, or with 408).
    let mut answers = 0;
    for stream in &mut half_sent {
        let read = until_closed(stream).await;
        if !read.is_empty() {
            assert!(read.starts_with(b"HTTP/1.1 408"), "{read:?}");
            answers += 1;
        }
    }
    let all_closed = started.elapsed();
    eprintln!(
        "{HALF_SENT} half-sent requests with a {timeout:?} header timeout: a whole request was \
         answered in {answered:?} meanwhile; all were closed {all_closed:?} after the first \
         connected ({answers} with 408)"
    );
    assert!(all_closed >= timeout, "none closed before the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let address = serve(
        Config::new().header_read_timeout(Duration::from_millis(500)),
        LogBuffer::new(),
    )
    .await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&until_closed(&mut stream).await).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "answered, then closed: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_new_connections_are_closed_at_once_and_open_streams_flow() {
    let buf = LogBuffer::new();
    let address = serve(
        Config::new()
            .max_connections(3)
            .header_read_timeout(Duration::from_secs(1)),
        buf.clone(),
    )
    .await;
    // One stream and two half-sent requests take the three places.
    let response = reqwest::get(format!("http://{address}/events"))
        .await
        .unwrap();
    let mut events = common::Events::new(response);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }
    // The next one is closed before it is answered (it may have sent its request first).
    let mut refused = TcpStream::connect(address).await.unwrap();
    let _ = refused
        .write_all(b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(until_closed(&mut refused).await, b"", "closed, no answer");
    // The stream goes on.
    buf.append(b"after the cap\n");
    assert_eq!(events.next().await.data, "after the cap");
    // Once the half-sent ones are timed out, new connections are served again.
    for stream in &mut held {
        until_closed(stream).await;
    }
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = snapshot_status(address).await;
        if status.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {status:?}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_being_sent_holds_its_place_until_it_is_sent_or_its_connection_closed() {
    let buf = LogBuffer::with_capacity(1 << 20);
    let line = format!("{}\n", "x".repeat(99));
    while buf.stats().entries_evicted == 0 {
        buf.append(line.as_bytes());
    }
    let listener = TcpSocket::new_v4().unwrap();
    listener.set_send_buffer_size(16 * 1024).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listener.listen(64).unwrap();
    let address = listener.local_addr().unwrap();
    let config = Config::new()
        .max_snapshots(1)
        .idle_timeout(Duration::from_secs(1));
    tokio::spawn(async move { config.serve(buf, listener).await.unwrap() });
    // A client with a small receive buffer asks for the ~1 MiB snapshot and never reads it.
    // The server's sockets have small send buffers too, so that the kernel cannot take the whole
    // snapshot off its hands.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(address).await.unwrap();
    stalled
        .write_all(b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // It reads the status line and headers only: then it holds the one place.
    common::read_head(&mut stalled, "HTTP/1.1 200").await;
    // While it holds the place, others are told to come back.
    let busy = raw(
        address,
        "GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    assert!(busy.contains("retry-after: 5"), "{busy}");
    assert!(busy.contains("max_snapshots"), "{busy}");
    // The place comes back once the server has handed the snapshot to the kernel, or closed the
    // stalled connection after the idle timeout.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = snapshot_status(address).await;
        if status.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the place never came back: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_on_which_nothing_moves_is_closed_after_the_idle_timeout() {
    // A WebSocket and an SSE stream with nothing to send either way: pings and heartbeats only
    // every minute (which `serve` would shorten; `serve_app` takes the router as
    // it is).
    let router = Config::new()
        .keep_alive(Duration::from_secs(60))
        .router(LogBuffer::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = Config::new().idle_timeout(Duration::from_millis(500));
    tokio::spawn(async move { config.serve_app(listener, router).await.unwrap() });
    // Timed from before the handshake: the idle time runs from its last byte.
    let started = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
        .await
        .unwrap();
    let end = tokio::time::timeout(DEADLINE, ws.next())
        .await
        .expect("the server closes the connection");
    assert!(
        matches!(end, None | Some(Err(_))),
        "closed, without a message: {end:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before"
    );
    // The same for an SSE stream with nothing to send.
    let started = Instant::now();
    let mut sse = TcpStream::connect(address).await.unwrap();
    sse.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let sent = String::from_utf8_lossy(&until_closed(&mut sse).await).into_owned();
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(sent.contains("event: heartbeat"), "{sent}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_answers_no_ping_is_disconnected_on_a_quiet_log() {
    // Its socket takes the pings (so bytes move and the idle timeout never fires), but it never
    // answers one: after two unanswered pings the server lets it go.
    let address = serve(
        Config::new().keep_alive(Duration::from_millis(200)),
        LogBuffer::new(),
    )
    .await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(common::WS_HANDSHAKE).await.unwrap();
    let read = until_closed(&mut stream).await;
    assert!(read.starts_with(b"HTTP/1.1 101"), "{read:?}");
    // 0x89: a ping frame. At least two went unanswered before the end.
    let pings = read.windows(2).filter(|pair| pair == &[0x89, 0x00]).count();
    assert!(pings >= 2, "{pings} pings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_stay_open_past_the_idle_timeout() {
    let buf = LogBuffer::new();
    // `serve` makes the keep-alive interval half the idle timeout: 300 ms.
    let address = serve(
        Config::new().idle_timeout(Duration::from_millis(600)),
        buf.clone(),
    )
    .await;
    // SSE: ten heartbeats (past the idle timeout), then an entry.
    let mut sse = TcpStream::connect(address).await.unwrap();
    sse.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    let mut chunk = [0; 1024];
    while text.matches("event: heartbeat").count() < 10 {
        let n = tokio::time::timeout(DEADLINE, sse.read(&mut chunk))
            .await
            .expect("heartbeats")
            .unwrap();
        assert!(n > 0, "the stream was closed: {text}");
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    // WebSocket: ten pings, answered by the client, then an entry.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
        .await
        .unwrap();
    let mut pings = 0;
    while pings < 10 {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("pings")
            .expect("the socket stays open")
            .unwrap();
        if message.is_ping() {
            pings += 1;
        }
    }
    buf.append(b"still here\n");
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("the entry")
            .unwrap()
            .unwrap();
        if message.is_text() {
            assert_eq!(message.into_text().unwrap().as_str(), "still here\n");
            break;
        }
    }
    let mut rest = String::new();
    while !rest.contains("data: still here") {
        let n = tokio::time::timeout(DEADLINE, sse.read(&mut chunk))
            .await
            .expect("the entry")
            .unwrap();
        assert!(n > 0, "the stream was closed");
        rest.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_that_are_not_what_they_seem_are_refused() {
    let address = serve(Config::new(), LogBuffer::new()).await;
    let port = address.port();
    let status_of = |request: String| async move {
        let answer = raw(address, &request).await;
        let status: u16 = answer
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {answer:?}"));
        (status, answer)
    };
    let request =
        |host: &str| format!("GET /snapshot HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    // Look-alikes of a loopback host.
    for host in [
        "[::1]evil.com".to_owned(),
        format!("[::1]@evil.com:{port}"),
        format!("127.0.0.1@evil.com:{port}"),
        format!("localhost:{port}x"),
        "localhost:99999".to_owned(),
        "..localhost".to_owned(),
    ] {
        let (status, answer) = status_of(request(&host)).await;
        assert!(status == 400 || status == 403, "{host}: {answer}");
    }
    // Two Host headers.
    let (status, answer) = status_of(format!(
        "GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.com\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert_eq!(status, 400, "{answer}");
    // An absolute-form target names another host than the Host header.
    let (status, answer) = status_of(format!(
        "GET http://evil.com/snapshot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(status == 400 || status == 403, "{answer}");
    // Bytes that are not visible ASCII: a clear reason, not "no Host header".
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\xc3\xa9\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&until_closed(&mut stream).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("no Host header"), "{answer}");
    // Two Origin headers: which one would a browser have meant?
    let (status, answer) = status_of(format!(
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nOrigin: http://evil.com\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert_eq!(status, 400, "{answer}");
    // The same host over another scheme is another origin.
    let (status, answer) = status_of(format!(
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert_eq!(status, 403, "{answer}");
    // What is right still passes.
    let (status, answer) = status_of(request(&format!("127.0.0.1:{port}"))).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = status_of(format!(
        "GET http://127.0.0.1:{port}/snapshot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert_eq!(status, 200, "{answer}");
}
