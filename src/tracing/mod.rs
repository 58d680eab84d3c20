//! memtail in `tracing` (feature `tracing`): memtail's own [`Layer`], and [`LogBuffer`] as a
//! writer for `tracing_subscriber::fmt()`.
//!
//! # The layer
//!
//! [`LogBuffer::layer`] gives a [`Layer`] that appends one entry per event, with its level,
//! target, time and span ([`Entry::span_id`](crate::Entry::span_id)), formatted in a plain,
//! compact form close to `fmt()`'s, never with terminal escapes:
//!
//! ```text
//! DEBUG request{id=42}: my_app::db: query done rows=3
//! ```
//!
//! That is: the level, padded to five characters; the spans the event is in, from the outermost,
//! each with its fields (`name{field=value ...}`, or just `name` without fields) and followed by
//! `:`; the event's target and `: `; its message, then its other fields as `name=value`, values
//! formatted with `Debug` (so strings are quoted: `user="ada"`), errors as `fmt()` shows them
//! (`error=timed out error.sources=[connection reset]`). Control characters other than line
//! breaks and tabs are written as escapes (`\x1b`), so no message can drive a terminal. Each
//! entry ends with a line break. The time is kept beside the text and shown where people read
//! (see [`render`](crate::render)): `2026-12-04T14:39:53.123456Z DEBUG request{id=42}: ...`.
//!
//! It costs about a fifth of what `fmt()` with its defaults does for the same event, because it
//! formats less, and formats a span's fields once, when the span is created (or recorded), not
//! at every event (`cargo bench -p memtail-suite --features tracing --bench event`; README,
//! "Performance"). Once a thread has formatted an event of a given size, an event allocates
//! nothing.
//!
//! It composes as any layer does: beside a console `fmt::layer()`, each with a filter of its own
//! (a per-layer filter, `.with_filter(...)`), and under `tracing_subscriber::reload`.
//!
//! ```
//! use tracing_subscriber::filter::{EnvFilter, LevelFilter};
//! use tracing_subscriber::prelude::*;
//!
//! let buf = memtail::LogBuffer::with_capacity(1 << 20);
//! let subscriber = tracing_subscriber::registry()
//!     // The console: what RUST_LOG says, INFO when it is not set.
//!     .with(
//!         tracing_subscriber::fmt::layer().with_writer(std::io::sink).with_filter(
//!             EnvFilter::builder()
//!                 .with_default_directive(LevelFilter::INFO.into())
//!                 .from_env_lossy(),
//!         ),
//!     )
//!     // Memory: DEBUG and above, whatever the console shows.
//!     .with(buf.layer().with_filter(LevelFilter::DEBUG));
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     let request = tracing::info_span!("request", id = 42);
//!     let _entered = request.enter();
//!     tracing::debug!(target: "my_app::db", rows = 3, "query done");
//! });
//! let entry = buf.entries().pop().unwrap();
//! assert_eq!(&entry[..], b"DEBUG request{id=42}: my_app::db: query done rows=3\n");
//! assert_eq!(entry.level(), Some(memtail::Level::Debug));
//! assert_eq!(entry.target(), Some("my_app::db"));
//! assert!(entry.time().is_some());
//! ```
//!
//! # `fmt()`'s text
//!
//! `LogBuffer` is also a [`MakeWriter`](tracing_subscriber::fmt::MakeWriter), for those who want
//! exactly `fmt()`'s lines in memory: it plugs into `tracing_subscriber::fmt()` and composes
//! with [`MakeWriterExt`](tracing_subscriber::fmt::writer::MakeWriterExt)
//! (`std::io::stderr.and(buf.clone())`, `buf.clone().with_max_level(Level::INFO)`). Each event
//! becomes exactly one entry, with its level and target: the [`EventWriter`] made for an event
//! gathers whatever the formatter writes, in however many pieces, and appends it as one entry
//! when the event is done (when the writer is dropped). Turn `fmt()`'s colours off
//! (`.with_ansi(false)`): they would be stored as escapes. Such an entry has a time only if the
//! buffer records times ([`Builder::timestamps`](crate::Builder::timestamps)), and no span.
//!
//! ```
//! use tracing_subscriber::fmt::writer::MakeWriterExt;
//!
//! let buf = memtail::LogBuffer::new();
//! let subscriber = tracing_subscriber::fmt()
//!     .with_writer(std::io::sink.and(buf.clone()))
//!     .with_ansi(false)
//!     .without_time()
//!     .finish();
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(port = 8080, "listening");
//! });
//! let entries = buf.entries();
//! assert_eq!(entries.len(), 1);
//! assert!(entries[0].ends_with(b"listening port=8080\n"));
//! ```

mod layer;
mod writer;

pub use layer::Layer;
pub use writer::EventWriter;

#[cfg(doc)]
use crate::LogBuffer;
