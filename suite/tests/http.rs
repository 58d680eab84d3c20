//! The `http` routes against a real server on loopback, with reqwest as the HTTP client and
//! tokio-tungstenite as the WebSocket client.

mod common;

use std::io::Write;
use std::time::Instant;

use common::{follow_until, serve, Events, DEADLINE};
use futures_util::{SinkExt, StreamExt};
use memtail::http::{router, Config};
use memtail::LogBuffer;
use tokio_tungstenite::tungstenite::{self, Message};

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

/// `/events` resumed after `last_id`, as a reconnecting `EventSource` asks.
async fn events_after(address: std::net::SocketAddr, last_id: &str) -> Events {
    let response = reqwest::Client::new()
        .get(format!("http://{address}/events"))
        .header("Last-Event-ID", last_id)
        .send()
        .await
        .unwrap();
    Events::new(response)
}

async fn open_events(url: &str) -> Events {
    Events::new(get(url).await)
}

#[tokio::test]
async fn an_entry_is_exactly_one_event_whatever_its_line_breaks() {
    let buf = LogBuffer::new();
    buf.append(b"a\n\ndata: fake\r\nid: 999\rb");
    buf.append(b"next\r\n");
    let address = serve(router(buf.clone())).await;

    let mut events = open_events(&format!("http://{address}/events")).await;
    let first = events.next().await;
    assert_eq!(first.name, "message");
    assert_eq!(first.id.as_deref(), Some("0"));
    assert_eq!(first.data, "a\n\ndata: fake\nid: 999\nb");
    // A heartbeat came first: named, with the interval in milliseconds.
    assert_eq!(events.heartbeats, 1);
    assert!(
        events
            .raw
            .starts_with("retry: 1000\n\nevent: heartbeat\ndata: 15000\n\n"),
        "{}",
        events.raw
    );
    let second = events.next().await;
    assert_eq!(
        (second.id.as_deref(), second.data.as_str()),
        (Some("1"), "next")
    );
    assert!(
        !events.raw.lines().any(|line| line.starts_with("id: 999")),
        "no log text starts a field: {:?}",
        events.raw
    );
}

#[tokio::test]
async fn format_json_keeps_every_character_of_an_entry() {
    let buf = LogBuffer::new();
    buf.append(b"progress 10%\rprogress 90%\n");
    buf.append(b"two\nlines \"quoted\" \x1b[31mred\x1b[0m\n");
    let address = serve(router(buf.clone())).await;
    let mut events = open_events(&format!("http://{address}/events?format=json")).await;
    let first = events.next().await;
    let second = events.next().await;
    let text = |data: &str| -> String {
        let object: serde_json::Value = serde_json::from_str(data).unwrap();
        object["text"].as_str().unwrap().to_owned()
    };
    assert_eq!(text(&first.data), "progress 10%\rprogress 90%");
    assert_eq!(
        text(&second.data),
        "two\nlines \"quoted\" \x1b[31mred\x1b[0m"
    );
    assert!(
        second.data.starts_with(r#"{"seq":1,"level":null,"text":"#),
        "{}",
        second.data
    );
    let bad = get(&format!("http://{address}/events?format=xml")).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn last_gives_a_window_of_time_when_the_log_records_times() {
    let timed = LogBuffer::builder().timestamps(true).build();
    timed.append(b"one\n");
    timed.append(b"two\n");
    let address = serve(router(timed.clone())).await;
    let text = |url: String| async move { get(&url).await.text().await.unwrap() };
    // As people read them: each entry after its time.
    let rendered: String = timed
        .entries()
        .iter()
        .map(|entry| entry.rendered().to_string())
        .collect();
    assert!(rendered.ends_with("Z two\n"), "{rendered}");
    assert_eq!(
        text(format!("http://{address}/snapshot?last=1h")).await,
        rendered
    );
    // Nothing was appended in the last 0 seconds but entries appended from now on.
    assert_eq!(text(format!("http://{address}/snapshot?last=0s")).await, "");
    let mut events = open_events(&format!("http://{address}/events?last=5m")).await;
    assert_eq!(events.next().await.data, "one");
    assert_eq!(events.next().await.data, "two");
    for bad in ["last=5x", "last=", "last=1h&since=0"] {
        let response = get(&format!("http://{address}/snapshot?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
    }

    let untimed = serve(router(LogBuffer::new())).await;
    let response = get(&format!("http://{untimed}/events?last=5m")).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("timestamps(true)"));
}

#[tokio::test]
async fn the_target_parameter_keeps_that_target_and_those_under_it() {
    let buf = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "my_app::db", "db");
        tracing::info!(target: "my_app::dbx", "not under db");
        tracing::info!(target: "my_app", "app");
        tracing::info!(target: "other", "other");
    });
    buf.append(b"plain\n");
    let address = serve(router(buf.clone())).await;
    let text = |query: &str| {
        let url = format!("http://{address}/snapshot?{query}");
        async move { get(&url).await.text().await.unwrap() }
    };
    assert_eq!(text("target=my_app::db").await, " INFO db\nplain\n");
    assert_eq!(
        text("target=my_app").await,
        " INFO db\n INFO not under db\n INFO app\nplain\n"
    );
    let mut events = open_events(&format!("http://{address}/events?target=other")).await;
    assert_eq!(events.next().await.data, " INFO other");
    assert_eq!(events.next().await.data, "plain");
    let bad = get(&format!("http://{address}/snapshot?target=")).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn backlog_then_live() {
    let buf = LogBuffer::new();
    buf.append(b"old\n");
    let address = serve(router(buf.clone())).await;
    let mut events = open_events(&format!("http://{address}/events")).await;
    assert_eq!(events.next().await.data, "old");
    buf.append(b"new\n");
    let live = events.next().await;
    assert_eq!((live.id.as_deref(), live.data.as_str()), (Some("1"), "new"));
}

#[tokio::test]
async fn last_event_id_resumes_after_it() {
    let buf = LogBuffer::new();
    for n in 0..5 {
        writeln!(&buf, "line {n}").unwrap();
    }
    let address = serve(router(buf.clone())).await;
    let mut events = events_after(address, "2").await;
    let (ids, missed) = follow_until(&mut events, 3, 4).await;
    assert_eq!((ids, missed), (vec![3, 4], 0));
    buf.append(b"line 5\n");
    assert_eq!(events.next().await.id.as_deref(), Some("5"));
}

/// The id of `buf`'s entry `seq`, as its stream sends it.
async fn event_id(buf: &LogBuffer, seq: u64) -> String {
    let address = serve(router(buf.clone())).await;
    let mut events = open_events(&format!("http://{address}/events?since={seq}")).await;
    let event = events.next().await;
    assert_eq!(event.id, Some(seq.to_string()));
    let id = event.full_id.unwrap();
    let (instance, at) = id.split_once('-').expect("INSTANCE-SEQ");
    assert_eq!((instance.len(), at), (8, seq.to_string().as_str()), "{id}");
    assert!(instance.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    id
}

#[tokio::test]
async fn a_position_of_another_buffer_says_the_log_started_over() {
    // Old has more entries than new, then fewer: positions past the end and inside the range of
    // the new buffer are both another buffer's, told by the instance in the id.
    for (old_entries, new_entries) in [(20, 5), (5, 20)] {
        let old = LogBuffer::new();
        for n in 0..old_entries {
            writeln!(&old, "old {n}").unwrap();
        }
        let last_old = event_id(&old, old_entries - 1).await;
        let new = LogBuffer::new();
        for n in 0..new_entries {
            writeln!(&new, "new {n}").unwrap();
        }
        let address = serve(router(new.clone())).await;
        let mut events = events_after(address, &last_old).await;
        let notice = events.next().await;
        assert_eq!(
            (notice.name.as_str(), notice.data.as_str()),
            ("restart", "the log started over")
        );
        for n in 0..new_entries {
            let event = events.next().await;
            assert_eq!(event.data, format!("new {n}"), "every entry of the new log");
        }
        // The same through `?since=`, which takes ids too, and in the snapshot's headers.
        let next_old =
            last_old.replace(&format!("-{}", old_entries - 1), &format!("-{old_entries}"));
        let mut events = open_events(&format!("http://{address}/events?since={next_old}")).await;
        assert_eq!(events.next().await.name, "restart");
        assert_eq!(events.next().await.data, "new 0");
        let snapshot = get(&format!("http://{address}/snapshot?since={next_old}")).await;
        assert_eq!(snapshot.headers()["x-memtail-restarted"], "true");
        let instance = snapshot.headers()["x-memtail-instance"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(snapshot.text().await.unwrap().starts_with("new 0\n"));
        // The new buffer's own ids resume where they say, without a notice.
        let own = format!("{instance}-2");
        let mut events = events_after(address, &own).await;
        let first = events.next().await;
        assert_eq!(
            (first.name.as_str(), first.data.as_str()),
            ("message", "new 3")
        );
        // WebSocket: a binary notice first.
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{address}/ws?since={next_old}"))
                .await
                .unwrap();
        let notice = ws.next().await.unwrap().unwrap();
        assert_eq!(notice.into_data(), r#"{"restart":true}"#.as_bytes());
        let first = ws.next().await.unwrap().unwrap();
        assert_eq!(first.into_text().unwrap().as_str(), "new 0\n");
    }
}

#[tokio::test]
async fn a_bare_sequence_number_beyond_the_end_says_the_log_started_over() {
    let buf = LogBuffer::new();
    buf.append(b"only\n");
    let address = serve(router(buf.clone())).await;
    let mut events = open_events(&format!("http://{address}/events?since=7")).await;
    assert_eq!(events.next().await.name, "restart");
    assert_eq!(events.next().await.data, "only");
    // At the end exactly: nothing to say, the next entry comes.
    let mut events = open_events(&format!("http://{address}/events?since=1")).await;
    buf.append(b"next\n");
    let next = events.next().await;
    assert_eq!(
        (next.name.as_str(), next.data.as_str()),
        ("message", "next")
    );
    // Ids that are neither: 400.
    for bad in ["abc", "c0ffee-1", "00c0ffee-x", "-1"] {
        let response = get(&format!("http://{address}/events?since={bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn resuming_after_eviction_announces_the_exact_loss_first() {
    // 10-byte entries into 100 bytes: retention is bounded, older entries are evicted.
    let buf = LogBuffer::with_capacity(100);
    for n in 0..50 {
        writeln!(&buf, "entry {n:03}").unwrap();
    }
    let first_retained = buf.entries()[0].seq();
    assert!(first_retained > 3, "entries were evicted");
    let address = serve(router(buf.clone())).await;

    // The client has entries up to 2: entries 3 .. first_retained are gone.
    let mut events = events_after(address, "2").await;
    let missed = events.next().await;
    assert_eq!(missed.name, "missed");
    assert_eq!(missed.data, (first_retained - 3).to_string());
    assert_eq!(events.next().await.id, Some(first_retained.to_string()));

    // `?since=SEQ` starts at SEQ, through the same path.
    let mut events = events_since(address, 1).await;
    let missed = events.next().await;
    assert_eq!(
        (missed.name.as_str(), missed.data),
        ("missed", (first_retained - 1).to_string())
    );

    // The snapshot says the same in its headers.
    let snapshot = get(&format!("http://{address}/snapshot?since=1")).await;
    assert_eq!(
        snapshot.headers()["x-memtail-missed"],
        (first_retained - 1).to_string().as_str()
    );
    let body = snapshot.text().await.unwrap();
    assert!(
        body.starts_with(&format!("entry {first_retained:03}\n")),
        "{body}"
    );

    // Without a position: the retained entries, and no talk of what was evicted before.
    let mut events = open_events(&format!("http://{address}/events")).await;
    let first = events.next().await;
    assert_eq!(
        (first.name.as_str(), first.id),
        ("message", Some(first_retained.to_string()))
    );
}

async fn events_since(address: std::net::SocketAddr, since: u64) -> Events {
    open_events(&format!("http://{address}/events?since={since}")).await
}

#[tokio::test]
async fn bad_positions_are_refused_with_400() {
    let address = serve(router(LogBuffer::new())).await;
    let response = reqwest::Client::new()
        .get(format!("http://{address}/events"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    for path in ["/events?since=-1", "/snapshot?since=x", "/ws?since=1.5"] {
        assert_eq!(
            get(&format!("http://{address}{path}")).await.status(),
            400,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gap_or_duplicate_at_the_seam_under_concurrent_writers() {
    const PER_WRITER: u64 = 3_000;
    let buf = LogBuffer::with_capacity(4 << 20);
    let address = serve(router(buf.clone())).await;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let buf = buf.clone();
            std::thread::spawn(move || {
                for n in 0..PER_WRITER {
                    writeln!(&buf, "writer {w} line {n}").unwrap();
                }
            })
        })
        .collect();
    // Connect while the writers are busy: part of the log is backlog, part is live.
    let mut events = open_events(&format!("http://{address}/events")).await;
    let (ids, missed) = follow_until(&mut events, 0, 2 * PER_WRITER - 1).await;
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(missed, 0, "nothing evicted");
    assert_eq!(ids, (0..2 * PER_WRITER).collect::<Vec<_>>());
}

/// Appends `entries` entries of 64 KiB, more than a client's socket buffers hold; returns one.
fn flood(buf: &LogBuffer, entries: u64) -> String {
    let line = format!("{}\n", "x".repeat(64 * 1024 - 1));
    for _ in 0..entries {
        buf.append(line.as_bytes());
    }
    line
}

#[tokio::test]
async fn a_slow_client_loses_the_oldest_entries_it_is_told_about_and_nobody_waits() {
    // 25 MiB into a 1 MiB ring while the server cannot run (this runtime has one thread, busy
    // writing): the stream finds most of what it had not sent evicted.
    const ENTRIES: u64 = 400;
    let buf = LogBuffer::with_capacity(1 << 20);
    let address = serve(router(buf.clone())).await;
    let mut events = open_events(&format!("http://{address}/events")).await;
    flood(&buf, ENTRIES);
    let retained = buf.stats().retained_entries;
    let (ids, missed) = follow_until(&mut events, 0, ENTRIES - 1).await;
    assert_eq!(ids.len() as u64 + missed, ENTRIES);
    // The oldest were lost, announced once, before the newest, which all arrived.
    assert_eq!(missed, ENTRIES - retained);
    assert_eq!(ids, (ENTRIES - retained..ENTRIES).collect::<Vec<_>>());
    assert_eq!(buf.stats().follower_missed, missed);
}

#[tokio::test]
async fn snapshot_is_plain_text_from_a_position() {
    let buf = LogBuffer::new();
    for line in ["a\n", "b\n", "c\n"] {
        buf.append(line.as_bytes());
    }
    let address = serve(router(buf)).await;
    let response = get(&format!("http://{address}/snapshot")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers()["x-memtail-next-seq"], "3");
    assert_eq!(response.text().await.unwrap(), "a\nb\nc\n");
    let since = get(&format!("http://{address}/snapshot?since=1")).await;
    assert_eq!(since.text().await.unwrap(), "b\nc\n");
}

#[tokio::test]
async fn the_page_is_small_self_contained_and_works_nested_in_a_stateful_app() {
    // An application with state of its own, as the README shows.
    #[derive(Clone)]
    struct AppState {
        name: &'static str,
    }
    async fn name(axum::extract::State(state): axum::extract::State<AppState>) -> &'static str {
        state.name
    }
    let buf = LogBuffer::new();
    buf.append(b"nested\n");
    // `nest_service` routes `/logs`, `/logs/` and what is under them to memtail's router;
    // `nest` would route `/logs` but not `/logs/`.
    let app = axum::Router::<AppState>::new()
        .route("/name", axum::routing::get(name))
        .nest_service("/logs", router(buf.clone()))
        .nest("/other", router(buf))
        .with_state(AppState { name: "app" });
    let address = serve(app).await;
    let response = get(&format!("http://{address}/name")).await;
    assert_eq!(response.text().await.unwrap(), "app");
    for path in ["/logs", "/logs/"] {
        let response = get(&format!("http://{address}{path}")).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        let page = response.text().await.unwrap();
        assert!(page.len() < 30 * 1024, "{} bytes", page.len());
        for outside in ["http://", "https://", "src=\"", "href=\""] {
            assert!(!page.contains(outside), "the page loads nothing: {outside}");
        }
        assert!(
            !page.contains("innerHTML"),
            "log text is never parsed as HTML"
        );
    }
    assert_eq!(
        get(&format!("http://{address}/logs/nothing"))
            .await
            .status(),
        404
    );
    assert_eq!(get(&format!("http://{address}/other")).await.status(), 200);
    let mut events = open_events(&format!("http://{address}/logs/events")).await;
    assert_eq!(events.next().await.data, "nested");
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused() {
    let address = serve(
        Config::new()
            .allowed_origins(["https://admin.example"])
            .allowed_hosts(["logs.example"])
            .router(LogBuffer::new()),
    )
    .await;
    let own = format!("http://{address}");
    // Origin, on the streaming routes.
    for path in ["/events", "/ws"] {
        assert_eq!(
            status(address, path, ("Origin", "http://evil.example")).await,
            403
        );
        assert_eq!(status(address, path, ("Origin", "null")).await, 403);
    }
    assert_eq!(status(address, "/events", ("Origin", &own)).await, 200);
    assert_eq!(
        status(address, "/events", ("Origin", "https://admin.example")).await,
        200
    );
    // Host, on every route: a DNS-rebinding page sends its own name.
    for path in ["/", "/snapshot", "/events", "/ws"] {
        assert_eq!(
            status(address, path, ("Host", "evil.example")).await,
            403,
            "{path}"
        );
        assert_eq!(
            status(address, path, ("Host", "127.0.0.1.evil.example")).await,
            403
        );
    }
    assert_eq!(
        status(address, "/snapshot", ("Host", "localhost:1")).await,
        200
    );
    assert_eq!(
        status(address, "/snapshot", ("Host", "logs.example")).await,
        200
    );
}

async fn status(address: std::net::SocketAddr, path: &str, (name, value): (&str, &str)) -> u16 {
    reqwest::Client::new()
        .get(format!("http://{address}{path}"))
        .header(name, value)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_token_guards_every_route() {
    let buf = LogBuffer::new();
    buf.append(b"secret stuff\n");
    let address = serve(Config::new().token("t0k3n/+").router(buf.clone())).await;
    let client = reqwest::Client::new();
    for path in ["/", "/snapshot", "/events", "/ws"] {
        let url = format!("http://{address}{path}");
        let without = client.get(&url).send().await.unwrap();
        assert_eq!(without.status(), 401, "{path}");
        assert!(without.headers().contains_key("www-authenticate"));
        let wrong = client.get(&url).bearer_auth("t0k3n").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let snapshot = client
        .get(format!("http://{address}/snapshot"))
        .bearer_auth("t0k3n/+")
        .send()
        .await
        .unwrap();
    assert_eq!(snapshot.status(), 200);
    assert_eq!(snapshot.text().await.unwrap(), "secret stuff\n");
    // In the query, percent-encoded, for EventSource and WebSocket.
    let mut events = open_events(&format!("http://{address}/events?token=t0k3n%2F%2B")).await;
    assert_eq!(events.next().await.data, "secret stuff");
    let page = get(&format!("http://{address}/?token=t0k3n%2F%2B")).await;
    assert_eq!(page.status(), 200);
    assert!(
        !String::from_utf8_lossy(&buf.snapshot()).contains("t0k3n"),
        "the token never reaches the log"
    );
}

#[tokio::test]
async fn followers_beyond_the_cap_get_503_until_one_leaves() {
    let buf = LogBuffer::new();
    let address = serve(Config::new().max_followers(1).router(buf.clone())).await;
    let first = get(&format!("http://{address}/events")).await;
    assert_eq!(first.status(), 200);
    for path in ["/events", "/ws"] {
        let refused = get(&format!("http://{address}{path}")).await;
        assert_eq!(refused.status(), 503, "{path}");
        assert!(refused.headers().contains_key("retry-after"));
    }
    // Other routes are not streams.
    assert_eq!(
        get(&format!("http://{address}/snapshot")).await.status(),
        200
    );
    drop(first);
    // The server notices the closed connection when it next writes to it.
    let deadline = Instant::now() + DEADLINE;
    loop {
        buf.append(b"tick\n");
        let again = get(&format!("http://{address}/events")).await;
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 503);
        assert!(Instant::now() < deadline, "the place was never given back");
        tokio::task::yield_now().await;
    }
}

async fn websocket(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    socket
}

async fn next_message<S>(socket: &mut S) -> Message
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(DEADLINE, socket.next())
        .await
        .expect("a message within the deadline")
        .expect("the socket stays open")
        .expect("a valid message")
}

#[tokio::test]
async fn websocket_sends_backlog_then_live_in_order_and_closes_cleanly() {
    let buf = LogBuffer::new();
    buf.append(b"one\n");
    buf.append(b"two\xff\n");
    let address = serve(router(buf.clone())).await;
    let mut socket = websocket(&format!("ws://{address}/ws")).await;
    assert_eq!(next_message(&mut socket).await, Message::text("one\n"));
    assert_eq!(
        next_message(&mut socket).await,
        Message::text("two\u{fffd}\n")
    );
    buf.append(b"three\n");
    assert_eq!(next_message(&mut socket).await, Message::text("three\n"));
    // Messages from the client are ignored.
    socket.send(Message::text("hello?")).await.unwrap();
    buf.append(b"four\n");
    assert_eq!(next_message(&mut socket).await, Message::text("four\n"));
    // Clean close: the server answers the close frame.
    socket.close(None).await.unwrap();
    let reply = next_message(&mut socket).await;
    assert!(matches!(reply, Message::Close(_)), "{reply:?}");
}

#[tokio::test]
async fn websocket_announces_losses_in_a_binary_json_message() {
    const ENTRIES: u64 = 400;
    let buf = LogBuffer::with_capacity(1 << 20);
    let address = serve(router(buf.clone())).await;
    let mut socket = websocket(&format!("ws://{address}/ws")).await;
    let line = flood(&buf, ENTRIES);
    let retained = buf.stats().retained_entries;
    let (mut received, mut missed) = (0, 0);
    while received + missed < ENTRIES {
        match next_message(&mut socket).await {
            Message::Text(text) => {
                assert_eq!(text.len(), line.len());
                received += 1;
            }
            Message::Binary(json) => {
                let json = std::str::from_utf8(&json).unwrap();
                let n: u64 = json
                    .strip_prefix("{\"missed\":")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("a missed notice: {json}"))
                    .parse()
                    .unwrap();
                missed += n;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(missed, ENTRIES - retained, "the oldest were lost");
    assert_eq!(received + missed, ENTRIES);
    assert_eq!(buf.stats().follower_missed, missed);
}

#[tokio::test]
async fn a_plain_get_on_the_websocket_route_asks_for_an_upgrade() {
    let address = serve(router(LogBuffer::new())).await;
    assert_eq!(get(&format!("http://{address}/ws")).await.status(), 426);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_followers_each_get_every_entry_or_an_exact_count() {
    const FOLLOWERS: usize = 200;
    const ENTRIES: u64 = 10_000;
    let buf = LogBuffer::with_capacity(1 << 20);
    let address = serve(Config::new().router(buf.clone())).await;
    let client = reqwest::Client::new();
    let mut followers = Vec::new();
    for _ in 0..FOLLOWERS {
        let response = client
            .get(format!("http://{address}/events"))
            .send()
            .await
            .unwrap();
        let mut events = Events::new(response);
        followers.push(tokio::spawn(async move {
            follow_until(&mut events, 0, ENTRIES - 1).await
        }));
    }
    assert_eq!(buf.stats().followers, FOLLOWERS as u64);

    let writer = std::thread::spawn({
        let buf = buf.clone();
        move || {
            for n in 0..ENTRIES {
                writeln!(&buf, "entry {n} of the load test").unwrap();
                if n % 100 == 0 {
                    let stats = buf.stats();
                    // The ring is every follower's queue: nothing is queued anywhere else.
                    assert_eq!(stats.subscriber_queued, 0);
                    assert!(stats.retained_bytes <= 1 << 20);
                }
            }
        }
    });
    let mut missed_total = 0;
    for follower in followers {
        let (ids, missed) = follower.await.unwrap();
        assert_eq!(ids.len() as u64 + missed, ENTRIES);
        missed_total += missed;
    }
    writer.join().unwrap();
    let stats = buf.stats();
    assert_eq!(
        stats.follower_missed, missed_total,
        "every loss was announced"
    );
    eprintln!("200 followers x 10 000 entries: {missed_total} deliveries missed");
}

#[tokio::test]
async fn the_level_parameter_keeps_that_level_and_worse_not_entries_without_one() {
    use tracing_subscriber::fmt::format::FmtSpan;
    let buf = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(FmtSpan::NONE)
        .without_time()
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::debug!("debug line");
        tracing::info!("info line");
        tracing::warn!("warn line");
        tracing::error!("error line");
    });
    buf.append(b"plain line\n");
    let address = serve(router(buf.clone())).await;
    let kept = |text: &str| -> Vec<&'static str> {
        [
            "debug line",
            "info line",
            "warn line",
            "error line",
            "plain line",
        ]
        .into_iter()
        .filter(|line| text.contains(line))
        .collect()
    };

    let text = get(&format!("http://{address}/snapshot?level=warn"))
        .await
        .text()
        .await
        .unwrap();
    // An entry with no level is not kept by a level filter.
    assert_eq!(kept(&text), ["warn line", "error line"]);

    let ndjson = get(&format!(
        "http://{address}/snapshot?level=WARN&format=ndjson"
    ))
    .await;
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    assert_eq!(ndjson.headers()["x-memtail-omitted"], "0");
    let objects: Vec<serde_json::Value> = ndjson
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let levels: Vec<&serde_json::Value> = objects.iter().map(|object| &object["level"]).collect();
    assert_eq!(
        levels,
        [&serde_json::json!("WARN"), &serde_json::json!("ERROR")]
    );
    assert_eq!(objects[1]["text"], "ERROR http: error line");
    assert_eq!(objects[1]["seq"], 3);

    let mut events = open_events(&format!("http://{address}/events?level=error")).await;
    assert!(events.next().await.data.ends_with("error line"));
    // The plain line is not sent: the next event is one appended later.
    buf.append(b"another plain line\n");
    tracing::dispatcher::with_default(&dispatch, || tracing::error!("another error"));
    assert!(events.next().await.data.ends_with("another error"));

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws?level=info"))
        .await
        .unwrap();
    let mut texts = Vec::new();
    while texts.len() < 3 {
        let message = ws.next().await.unwrap().unwrap();
        texts.push(message.into_text().unwrap().as_str().to_owned());
    }
    assert_eq!(
        kept(&texts.concat()),
        ["info line", "warn line", "error line"]
    );

    for path in [
        "/snapshot?level=loud",
        "/events?level=loud",
        "/snapshot?format=xml",
    ] {
        let response = get(&format!("http://{address}{path}")).await;
        assert_eq!(response.status(), 400, "{path}");
        let reason = response.text().await.unwrap();
        assert!(
            reason.contains("trace, debug, info, warn, error") || reason.contains("text or ndjson"),
            "{path}: {reason}"
        );
    }
}

#[tokio::test]
async fn n_grep_and_exclude_narrow_the_answer_and_unknown_parameters_are_named() {
    let buf = LogBuffer::new();
    for line in [
        "alpha one",
        "beta two",
        "gamma three",
        "alpha four",
        "delta five",
    ] {
        buf.append(format!("{line}\n").as_bytes());
    }
    let address = serve(router(buf.clone())).await;
    let text = |path: &'static str| async move {
        let response = get(&format!("http://{address}{path}")).await;
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap()
    };
    assert_eq!(text("/snapshot?n=2").await, "alpha four\ndelta five\n");
    assert_eq!(text("/snapshot?n=0").await, "");
    assert_eq!(text("/snapshot?n=99").await.lines().count(), 5);
    // The newest N of what the pattern keeps, matched without the line ending (`$`).
    assert_eq!(
        text("/snapshot?grep=alpha|gamma&n=2").await,
        "gamma three\nalpha four\n"
    );
    assert_eq!(text("/snapshot?grep=(?i)ONE$").await, "alpha one\n");
    assert_eq!(
        text("/snapshot?exclude=^alpha").await,
        "beta two\ngamma three\ndelta five\n"
    );

    // A stream starts with the newest N of the backlog, then goes on live.
    let mut events = open_events(&format!("http://{address}/events?n=1")).await;
    assert_eq!(events.next().await.data, "delta five");
    buf.append(b"epsilon six\n");
    assert_eq!(events.next().await.data, "epsilon six");
    let mut events = open_events(&format!("http://{address}/events?n=1&grep=alpha")).await;
    assert_eq!(events.next().await.data, "alpha four");
    buf.append(b"not this one\n");
    buf.append(b"alpha seven\n");
    assert_eq!(events.next().await.data, "alpha seven");

    for (path, said) in [
        ("/snapshot?levle=warn", "unknown parameter \"levle\""),
        ("/events?lines=2", "unknown parameter \"lines\""),
        ("/snapshot?n=-1", "n must be a number"),
        (
            "/snapshot?grep=(unclosed",
            "grep is not a regular expression",
        ),
        // Far more than the 1 MiB a pattern may compile to.
        (
            "/snapshot?grep=(a{1000}){1000}",
            "grep is not a regular expression",
        ),
        ("/events?exclude=", "exclude must be a regular expression"),
    ] {
        let response = get(&format!("http://{address}{path}")).await;
        assert_eq!(response.status(), 400, "{path}");
        let reason = response.text().await.unwrap();
        assert!(reason.contains(said), "{path}: {reason}");
        assert_eq!(reason.lines().count(), 1, "{path}: {reason}");
    }
}

#[tokio::test]
async fn a_graceful_shutdown_ends_streams_with_a_final_event_and_returns() {
    let buf = LogBuffer::new();
    buf.append(b"before\n");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Config::new()
            .title("billing <api>")
            .serve(buf.clone(), listener)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            }),
    );
    // The title names what is served, as text.
    let page = get(&format!("http://{address}/"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<title>billing &lt;api&gt; \u{b7} memtail</title>"),
        "{}",
        &page[..300]
    );

    let mut events = open_events(&format!("http://{address}/events")).await;
    assert_eq!(events.next().await.data, "before");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("before\n"));

    stop.send(()).unwrap();
    // The event stream's last event says why, then it ends.
    let last = events.next().await;
    assert_eq!(last.name, "shutdown");
    assert!(events.next_or_end().await.is_none());
    // The WebSocket closes with 1001, going away.
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1001);
            assert_eq!(frame.reason.as_str(), "the server is shutting down");
        }
        other => panic!("a close frame, not {other:?}"),
    }
    drop(ws);
    // And the server returns, having closed everything.
    let served = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the server returns")
        .unwrap();
    assert!(served.is_ok());
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
