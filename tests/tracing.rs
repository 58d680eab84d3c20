//! `LogBuffer` as a `tracing_subscriber` writer: one entry per event, whatever the formatter does.
#![cfg(feature = "tracing")]

use std::io::Write;
use std::sync::{Arc, Barrier};
use std::thread;

use memtail::LogBuffer;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

fn plain(buf: &LogBuffer) -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_ansi(false)
        .without_time()
        .finish()
}

#[test]
fn events_from_several_threads_are_one_whole_line_each() {
    const THREADS: usize = 4;
    const EVENTS: usize = 500;
    let buf = LogBuffer::with_capacity(1 << 20);
    let dispatch = tracing::Dispatch::new(plain(&buf));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    start.wait();
                    for i in 0..EVENTS {
                        tracing::info!(
                            thread = t,
                            i,
                            "event with a payload {}",
                            "x".repeat(i % 90)
                        );
                    }
                })
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let entries = buf.entries();
    assert_eq!(entries.len(), THREADS * EVENTS);
    for entry in &entries {
        let line = std::str::from_utf8(entry).unwrap();
        assert!(line.starts_with(" INFO "), "{line:?}");
        assert!(line.ends_with('\n'), "{line:?}");
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.contains("event with a payload"), "{line:?}");
    }
}

#[test]
fn composes_with_stderr_and_max_level() {
    let buf = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr.and(buf.clone().with_max_level(Level::INFO)))
        .with_max_level(Level::DEBUG)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!("stderr only");
        tracing::info!("both");
        tracing::error!("both, loudly");
    });
    let entries = buf.entries();
    assert_eq!(entries.len(), 2);
    assert!(entries[0].ends_with(b"both\n"));
    assert!(entries[1].ends_with(b"both, loudly\n"));
}

/// A formatter that writes an event in several pieces.
struct Pieces;

impl<S, N> FormatEvent<S, N> for Pieces
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "[{}]", event.metadata().level())?;
        write!(writer, " ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[test]
fn a_formatter_writing_in_pieces_makes_one_entry() {
    let buf = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_ansi(false)
        .event_format(Pieces)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(code = 7, "first");
        tracing::warn!("second");
    });
    let entries = buf.entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(&entries[0][..], b"[WARN] first code=7\n");
    assert_eq!(&entries[1][..], b"[WARN] second\n");
}

/// A layer that talks to the `MakeWriter` directly and writes each event in three `write` calls
/// with a flush in between, as a hand-written writer-level formatter might.
struct ThreeWrites(LogBuffer);

impl<S: Subscriber> Layer<S> for ThreeWrites {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut writer = self.0.make_writer_for(event.metadata());
        writer
            .write_all(event.metadata().level().as_str().as_bytes())
            .unwrap();
        writer.flush().unwrap();
        writer.write_all(b": ").unwrap();
        writer
            .write_all(event.metadata().target().as_bytes())
            .unwrap();
        writer.write_all(b"\n").unwrap();
    }
}

#[test]
fn an_event_written_in_several_writes_is_one_entry() {
    let buf = LogBuffer::new();
    let subscriber = tracing_subscriber::registry().with(ThreeWrites(buf.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("a");
        tracing::error!("b");
    });
    let entries = buf.entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(&entries[0][..], b"INFO: tracing\n");
    assert_eq!(&entries[1][..], b"ERROR: tracing\n");
}

#[test]
fn entries_remember_their_event_level() {
    let buf = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink.and(buf.clone().with_max_level(Level::TRACE)))
        .with_max_level(Level::TRACE)
        .finish();
    let live = buf.events();
    tracing::subscriber::with_default(subscriber, || {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
    });
    buf.append(b"plain write\n");
    let levels: Vec<_> = buf.entries().iter().map(|e| e.level()).collect();
    use memtail::Level as L;
    let expected = [
        Some(L::Trace),
        Some(L::Debug),
        Some(L::Info),
        Some(L::Warn),
        Some(L::Error),
        None,
    ];
    assert_eq!(levels, expected);
    let live: Vec<_> = live.try_iter().map(|e| e.level()).collect();
    assert_eq!(live, expected, "subscribers see the same levels");
}

#[test]
fn entries_remember_their_event_target_in_the_ring_and_in_followers() {
    let buf = LogBuffer::with_capacity(1 << 20);
    let live = buf.events();
    tracing::subscriber::with_default(plain(&buf), || {
        tracing::info!(target: "my_app::db", "connected");
        tracing::warn!(target: "my_app::api", "slow");
    });
    buf.append(b"plain write\n");
    let targets: Vec<Option<&str>> = buf.entries().iter().map(|e| e.target()).collect();
    assert_eq!(targets, [Some("my_app::db"), Some("my_app::api"), None]);
    let followed: Vec<Option<&str>> = live.try_iter().map(|e| e.target()).collect();
    assert_eq!(followed, targets);
    // After the ring evicted entries, the rest keep theirs.
    let small = LogBuffer::with_capacity(200);
    tracing::subscriber::with_default(plain(&small), || {
        for n in 0..50 {
            tracing::info!(target: "churn", n);
        }
    });
    assert!(small.stats().entries_evicted > 0);
    assert!(small.entries().iter().all(|e| e.target() == Some("churn")));
}
