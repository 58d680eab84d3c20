//! memtail's own tracing `Layer`: the text it keeps, the level, target, time and span beside it,
//! per-layer filters, `reload`, `fmt::layer()` beside it, and on-error contexts per request.
#![cfg(feature = "tracing")]

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use memtail::{Level, LogBuffer};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;
use tracing_subscriber::reload;

fn texts(buf: &LogBuffer) -> Vec<String> {
    buf.entries()
        .iter()
        .map(|entry| String::from_utf8(entry.to_vec()).unwrap())
        .collect()
}

#[derive(Debug)]
struct Outer(&'static str);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&Inner)
    }
}

#[derive(Debug)]
struct Inner;

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset")
    }
}

impl std::error::Error for Inner {}

#[test]
fn each_event_is_one_plain_line_with_its_level_target_time_and_span() {
    let buf = LogBuffer::new();
    let before = SystemTime::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(buf.layer()), || {
        tracing::info!(target: "app", "no span");
        let request = tracing::info_span!(target: "app", "request", id = 42, path = "/users");
        let _request = request.enter();
        tracing::debug!(target: "app::db", rows = 3, "query done");
        let inner = tracing::debug_span!("db");
        inner.in_scope(|| {
            tracing::warn!(target: "app::db", user = "ada", ok = false, r#type = ?'x', "slow");
            tracing::error!(target: "app::db", error = &Outer("timed out") as &dyn std::error::Error);
        });
        tracing::info!(target: "app", "line one\nline two \x1b[31mred\x1b[0m \u{9b}2J tab\tend");
    });
    assert_eq!(
        texts(&buf),
        [
            "INFO  app: no span\n",
            "DEBUG request{id=42 path=\"/users\"}: app::db: query done rows=3\n",
            "WARN  request{id=42 path=\"/users\"}:db: app::db: slow user=\"ada\" ok=false type='x'\n",
            "ERROR request{id=42 path=\"/users\"}:db: app::db: error=timed out \
             error.sources=[connection reset]\n",
            "INFO  request{id=42 path=\"/users\"}: app: line one\nline two \\x1b[31mred\\x1b[0m \
             \\u{9b}2J tab\tend\n",
        ]
    );
    let entries = buf.entries();
    let levels: Vec<Option<Level>> = entries.iter().map(|e| e.level()).collect();
    assert_eq!(
        levels,
        [
            Some(Level::Info),
            Some(Level::Debug),
            Some(Level::Warn),
            Some(Level::Error),
            Some(Level::Info)
        ]
    );
    let targets: Vec<Option<&str>> = entries.iter().map(|e| e.target()).collect();
    assert_eq!(
        targets,
        [
            Some("app"),
            Some("app::db"),
            Some("app::db"),
            Some("app::db"),
            Some("app")
        ]
    );
    // Times whatever the buffer's default, never going back.
    let times: Vec<SystemTime> = entries.iter().map(|e| e.time().unwrap()).collect();
    assert!(times[0] >= before - Duration::from_secs(1));
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
    // Spans: the request's, then the inner span's with the request as its root.
    assert_eq!(entries[0].span_id(), None);
    let request = entries[1].span_id().unwrap();
    assert_eq!(entries[1].root_span_id(), Some(request));
    assert_ne!(entries[2].span_id(), Some(request));
    assert_eq!(entries[2].root_span_id(), Some(request));
    assert_eq!(entries[4].span_id(), Some(request));
    // The snapshot is the bytes as written; the dump shows the times.
    assert!(buf.snapshot().starts_with(b"INFO  app: no span\n"));
    let mut dump = Vec::new();
    buf.dump(&mut dump).unwrap();
    let dump = String::from_utf8(dump).unwrap();
    let line = dump.lines().nth(1).unwrap();
    assert_eq!(line.len(), 28 + "INFO  app: no span".len(), "{line}");
    assert!(line.ends_with("Z INFO  app: no span"), "{line}");
}

#[test]
fn fields_recorded_later_join_the_span_and_ids_are_never_reused() {
    let buf = LogBuffer::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(buf.layer()), || {
        for n in 0..3 {
            let span = tracing::info_span!("job", n, state = tracing::field::Empty);
            span.record("state", "running");
            span.in_scope(|| tracing::info!(target: "t", "working"));
        }
        let bare = tracing::info_span!("bare");
        bare.record("late", 1);
        bare.in_scope(|| tracing::info!(target: "t", "in a bare span"));
        // A field recorded into a span around an open one shows in the inner span's events.
        let outer = tracing::info_span!("outer", status = tracing::field::Empty);
        let inner = outer.in_scope(|| tracing::info_span!("inner", k = 1));
        inner.in_scope(|| tracing::info!(target: "t", "before"));
        outer.record("status", 200);
        inner.in_scope(|| tracing::info!(target: "t", "after"));
        inner.record("k", 2);
        inner.in_scope(|| tracing::info!(target: "t", "again"));
    });
    let texts = texts(&buf);
    assert_eq!(texts[0], "INFO  job{n=0 state=\"running\"}: t: working\n");
    assert_eq!(texts[3], "INFO  bare: t: in a bare span\n");
    assert_eq!(
        texts[4..],
        [
            "INFO  outer:inner{k=1}: t: before\n",
            "INFO  outer{status=200}:inner{k=1}: t: after\n",
            "INFO  outer{status=200}:inner{k=1 k=2}: t: again\n",
        ]
    );
    // The registry reuses a closed span's id; memtail's ids are new each time.
    let ids: Vec<u64> = buf.entries()[..4]
        .iter()
        .map(|e| e.span_id().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{ids:?}");
}

/// A writer for `fmt::layer()` that keeps what it is given.
#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl Console {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Console {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn beside_fmt_each_with_a_filter_of_its_own() {
    let buf = LogBuffer::new();
    let console = Console::default();
    let writer = console.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .without_time()
                .with_filter(LevelFilter::INFO),
        )
        .with(
            buf.layer().with_filter(
                Targets::new()
                    .with_default(LevelFilter::DEBUG)
                    .with_target("noisy", LevelFilter::OFF),
            ),
        );
    tracing::subscriber::with_default(subscriber, || {
        tracing::trace!(target: "app", "nowhere");
        tracing::debug!(target: "app", "memory only");
        tracing::info!(target: "app", "both");
        tracing::warn!(target: "noisy", "console only");
    });
    assert_eq!(
        texts(&buf),
        ["DEBUG app: memory only\n", "INFO  app: both\n"]
    );
    let console = console.text();
    assert_eq!(console.lines().count(), 2, "{console}");
    assert!(console.contains("INFO app: both"), "{console}");
    assert!(console.contains("WARN noisy: console only"), "{console}");
}

#[test]
fn reload_changes_what_the_layer_keeps() {
    let buf = LogBuffer::new();
    let (filter, handle) = reload::Layer::new(LevelFilter::WARN);
    let subscriber = tracing_subscriber::registry().with(buf.layer().with_filter(filter));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "app", "before: filtered out");
        tracing::warn!(target: "app", "before: kept");
        handle.reload(LevelFilter::INFO).unwrap();
        tracing::info!(target: "app", "after: kept");
    });
    assert_eq!(
        texts(&buf),
        ["WARN  app: before: kept\n", "INFO  app: after: kept\n"]
    );

    // The layer itself reloaded in while a span is open: the span it never saw is named, and
    // entries of spans made afterwards have ids.
    let later = LogBuffer::new();
    let (layer, handle) = reload::Layer::new(None::<memtail::Layer>);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let old = tracing::info_span!("old", n = 1);
        let _old = old.enter();
        tracing::info!(target: "app", "not kept");
        handle.reload(Some(later.layer())).unwrap();
        tracing::info!(target: "app", "kept in a span the layer did not see made");
        tracing::info_span!("new").in_scope(|| tracing::info!(target: "app", "in a new one"));
    });
    let entries = later.entries();
    assert_eq!(
        texts(&later),
        [
            "INFO  old: app: kept in a span the layer did not see made\n",
            "INFO  old:new: app: in a new one\n"
        ]
    );
    assert_eq!(entries[0].span_id(), None);
    assert!(entries[1].span_id().is_some());
}

#[test]
fn entries_reach_followers_with_their_time_and_span() {
    let buf = LogBuffer::new();
    let live = buf.events();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(buf.layer()), || {
        tracing::info_span!("request").in_scope(|| tracing::info!(target: "app", "hello"));
    });
    let received = live.try_recv().unwrap();
    let stored = buf.entries().remove(0);
    assert_eq!(received.time(), stored.time());
    assert!(received.time().is_some());
    assert_eq!(received.span_id(), stored.span_id());
    assert_eq!(received.root_span_id(), stored.root_span_id());
    assert_eq!(received.target(), Some("app"));
}

/// The blocks an on-error printer wrote: each heading, and the text of its lines (without the
/// time memtail shows before each).
fn blocks(output: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in output.lines() {
        if line.starts_with("--- memtail: ") {
            blocks.push((line.to_owned(), Vec::new()));
        } else {
            // `2026-12-04T14:39:53.123456Z ` before each line.
            let (time, text) = line.split_at(28);
            assert!(time.ends_with("Z "), "{line}");
            blocks.last_mut().unwrap().1.push(text.to_owned());
        }
    }
    blocks
}

#[test]
fn each_request_s_error_gets_its_own_lines_as_context() {
    let buf = LogBuffer::with_capacity(1 << 20);
    let out = Console::default();
    let printer = buf.on_error(Level::Error, 10, out.clone());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(buf.layer()), || {
        let a = tracing::info_span!("request", id = 1);
        let b = tracing::info_span!("request", id = 2);
        tracing::info!(target: "app", "background 0");
        for n in 0..3 {
            a.in_scope(|| tracing::info!(target: "app", "a {n}"));
            b.in_scope(|| tracing::info!(target: "app", "b {n}"));
            tracing::info!(target: "app", "background {}", n + 1);
        }
        b.in_scope(|| {
            tracing::debug_span!("db").in_scope(|| tracing::debug!(target: "app", "b db"))
        });
        a.in_scope(|| tracing::error!(target: "app", "a failed"));
        b.in_scope(|| tracing::info!(target: "app", "b 3"));
        a.in_scope(|| tracing::info!(target: "app", "a after"));
        b.in_scope(|| tracing::error!(target: "app", "b failed"));
        a.in_scope(|| tracing::error!(target: "app", "a failed again"));
        tracing::error!(target: "app", "outside failed");
    });
    let stats = printer.stop(Duration::from_secs(10));
    assert_eq!(
        (stats.printed, stats.missed, stats.context_missed),
        (4, 0, 0)
    );
    let blocks = blocks(&out.text());
    let lines = |block: &(String, Vec<String>)| block.1.clone();
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    assert!(
        blocks[0]
            .0
            .contains("is ERROR; the 3 entries before it, then it"),
        "{blocks:?}"
    );
    assert_eq!(
        lines(&blocks[0]),
        [
            "INFO  request{id=1}: app: a 0",
            "INFO  request{id=1}: app: a 1",
            "INFO  request{id=1}: app: a 2",
            "ERROR request{id=1}: app: a failed"
        ]
    );
    assert_eq!(
        lines(&blocks[1]),
        [
            "INFO  request{id=2}: app: b 0",
            "INFO  request{id=2}: app: b 1",
            "INFO  request{id=2}: app: b 2",
            "DEBUG request{id=2}:db: app: b db",
            "INFO  request{id=2}: app: b 3",
            "ERROR request{id=2}: app: b failed"
        ]
    );
    // Only what came after the request's previous error: nothing is printed twice.
    assert_eq!(
        lines(&blocks[2]),
        [
            "INFO  request{id=1}: app: a after",
            "ERROR request{id=1}: app: a failed again"
        ]
    );
    // Outside any request: the entries outside any span.
    assert_eq!(
        lines(&blocks[3]),
        [
            "INFO  app: background 0",
            "INFO  app: background 1",
            "INFO  app: background 2",
            "INFO  app: background 3",
            "ERROR app: outside failed"
        ]
    );
}

#[test]
fn requests_on_threads_of_their_own_get_only_their_lines_once() {
    const REQUESTS: usize = 4;
    const LINES: usize = 200;
    let buf = LogBuffer::with_capacity(4 << 20);
    let out = Console::default();
    let printer = buf.on_error(Level::Error, 1000, out.clone());
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(buf.layer()));
    let threads: Vec<_> = (0..REQUESTS)
        .map(|request| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let span = tracing::info_span!("request", request);
                    let _entered = span.enter();
                    for line in 0..LINES {
                        tracing::info!(target: "app", "line {line}");
                        if line % 50 == 49 {
                            tracing::error!(target: "app", "failed at {line}");
                        }
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = printer.stop(Duration::from_secs(10));
    assert_eq!(stats.printed, (REQUESTS * LINES / 50) as u64);
    assert_eq!((stats.missed, stats.context_missed), (0, 0));
    // Each request's lines, in order, each exactly once, in the blocks of that request.
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); REQUESTS];
    for (heading, lines) in blocks(&out.text()) {
        let error = lines.last().unwrap();
        let request: usize = error
            .strip_prefix("ERROR request{request=")
            .and_then(|rest| rest.split('}').next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("{error:?} in {heading}"));
        for line in &lines {
            assert!(
                line[6..].starts_with(&format!("request{{request={request}}}: ")),
                "{line}"
            );
        }
        seen[request].extend(lines.into_iter().map(|line| line[6..].to_owned()));
    }
    for (request, seen) in seen.iter().enumerate() {
        let mut expected = Vec::new();
        for line in 0..LINES {
            expected.push(format!("request{{request={request}}}: app: line {line}"));
            if line % 50 == 49 {
                expected.push(format!(
                    "request{{request={request}}}: app: failed at {line}"
                ));
            }
        }
        assert_eq!(seen, &expected, "request {request}");
    }
}

#[test]
fn two_memtail_layers_with_filters_of_their_own_each_keep_their_entries() {
    let debug = LogBuffer::new();
    let errors = LogBuffer::new();
    let twice = LogBuffer::new();
    let layer = twice.layer();
    let subscriber = tracing_subscriber::registry()
        .with(debug.layer().with_filter(LevelFilter::DEBUG))
        .with(errors.layer().with_filter(LevelFilter::ERROR))
        .with(layer.clone())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", id = 7, status = tracing::field::Empty);
        let _entered = span.enter();
        tracing::debug!(target: "app", "detail");
        span.record("status", 500);
        tracing::error!(target: "app", "failed");
    });
    assert_eq!(
        texts(&debug),
        [
            "DEBUG request{id=7}: app: detail\n",
            "ERROR request{id=7 status=500}: app: failed\n"
        ]
    );
    // The error layer's filter saw no INFO span: the event is outside any span for it.
    assert_eq!(texts(&errors), ["ERROR app: failed\n"]);
    // Two clones of one layer in one subscriber: two layers, each recording the span once.
    assert_eq!(
        texts(&twice),
        [
            "DEBUG request{id=7}: app: detail\n",
            "DEBUG request{id=7}: app: detail\n",
            "ERROR request{id=7 status=500}: app: failed\n",
            "ERROR request{id=7 status=500}: app: failed\n"
        ]
    );
}

/// A value whose `Debug` records into the span it is logged in (through a handle of its own,
/// which reaches the subscriber directly) and logs: neither may deadlock.
struct Meddling(tracing::Span);

impl fmt::Debug for Meddling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.record("late", 1);
        // `tracing` itself drops an event made while the subscriber handles one.
        tracing::info!(target: "app", "logged while formatting");
        f.write_str("meddling")
    }
}

#[test]
fn a_field_that_records_into_its_span_or_logs_while_formatted_does_not_deadlock() {
    let buf = LogBuffer::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(buf.layer()), || {
        let span = tracing::info_span!("request", late = tracing::field::Empty);
        let _entered = span.enter();
        tracing::info!(target: "app", value = ?Meddling(span.clone()), "outer");
        tracing::info!(target: "app", "next");
    });
    assert_eq!(
        texts(&buf),
        [
            "INFO  request: app: outer value=meddling\n",
            "INFO  request{late=1}: app: next\n"
        ]
    );
}

#[test]
fn a_target_holding_escapes_is_written_escaped() {
    let buf = LogBuffer::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(buf.layer()), || {
        tracing::info!(target: "app\x1b]0;title\x07", "x");
    });
    assert_eq!(texts(&buf), ["INFO  app\\x1b]0;title\\x07: x\n"]);
}
