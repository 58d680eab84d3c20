//! Recent logs in memory, live: a bounded byte ring that keeps whole entries, counts every byte it
//! drops, and hands each new entry to its followers.
//!
//! Write into a [`LogBuffer`] with `writeln!`, through memtail's `tracing` layer
//! (`buf.layer()`, feature `tracing`) or its `log` logger (feature `log`); read what it retains
//! with [`snapshot`](LogBuffer::snapshot), [`entries`](LogBuffer::entries) or
//! [`since`](LogBuffer::since); follow it live with [`events`](LogBuffer::events) or
//! [`tail`](LogBuffer::tail). Entries carry their level, target, time and span beside their
//! bytes; [`render`] shows them to people. `memtail::init()` (feature `tracing`) sets up the
//! usual case in one line.
//!
//! ```
//! use std::io::Write;
//! use memtail::LogBuffer;
//!
//! let mut buf = LogBuffer::with_capacity(64 * 1024);
//! let mut live = buf.tail_from(memtail::Start::Oldest);
//!
//! writeln!(buf, "GET /health 200")?;
//! writeln!(buf, "GET /users 500")?;
//!
//! // Followers receive every entry, in order, with its sequence number.
//! let first = live.blocking_recv().unwrap();
//! assert_eq!((first.seq(), &first[..]), (0, &b"GET /health 200\n"[..]));
//!
//! // The ring keeps the recent bytes; `since` replays from a sequence number.
//! assert_eq!(buf.snapshot(), "GET /health 200\nGET /users 500\n");
//! assert_eq!(&buf.since(1).entries()[0][..], b"GET /users 500\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - **Entries.** An entry is the bytes of one `write` call, one `write_fmt` (so one `writeln!`),
//!   or one `tracing` event. Empty writes make no entry. Every entry gets a sequence number, one
//!   more than the previous entry's, starting at 0 and never reused.
//! - **Bounded ring.** The ring never retains more than its capacity. When an entry does not fit,
//!   the oldest entries are evicted whole until at most half the capacity remains (less if the new
//!   entry needs more room), so eviction runs at most once per half a capacity of bytes written and
//!   every read starts at an entry boundary. An entry longer than the capacity keeps its first
//!   `capacity` bytes.
//! - **Two ways to follow, and writers wait for neither.**
//!   - *Subscriptions* ([`events`](LogBuffer::events), [`tail`](LogBuffer::tail)) each have their
//!     own bounded channel (64 entries by default). When a subscriber's channel is full, the new
//!     entry is dropped for that subscriber alone. An entry is copied into [`bytes::Bytes`] once,
//!     only if some subscriber has room for it, and each subscriber gets a reference-counted
//!     clone: a few nanoseconds per subscriber per write.
//!   - *Followers* ([`tail_from`](LogBuffer::tail_from), for sync and async code; the HTTP streams,
//!     feature `http`; publishers, feature `publish`) are positions in the ring, a sequence number each. A
//!     follower reads what the ring retains from its position on, a bounded batch at a time;
//!     when the ring evicted entries before the follower read them, it loses the oldest and
//!     learns exactly how many. A writer does no work per follower: a write costs the same with
//!     1 or 1000 of them.
//!
//!   Both receive entries in sequence order.
//! - **Memory.** The ring holds at most `capacity` bytes plus an index of 8 bytes per retained
//!   entry, and, from the first entry that had one, 8 bytes per retained entry for times, 2 for
//!   targets (whose names are interned once per process) and 24 for spans. Each subscription holds at most `subscriber_capacity` entries of at most `capacity`
//!   bytes each; each follower holds one batch (at most 64 KiB, or one entry if longer). A flood
//!   of writes with stalled readers keeps memory flat.
//! - **Loss is never silent.** [`Stats`] counts entries and bytes written, evicted and cut,
//!   entries dropped for subscribers and entries followers lost to eviction;
//!   [`Subscription::dropped`] counts one subscriber's losses, and [`Replay::missed`] tells a
//!   reader how many entries were evicted before it read them. For every subscription and every
//!   follower, once it has received everything with no write under way: received + dropped =
//!   entries written since it began following (for a follower that began at an earlier sequence
//!   number, since that number: entries already evicted when it began count as dropped).
//! - **No gap at the seam.** A [`Tail`] from [`Start::Oldest`] receives the backlog and then the
//!   live entries through one position; one from [`Start::At`] a [`Replay::next_seq`] starts where
//!   a [`since`](LogBuffer::since) ended: no entry is missing or repeated between the two.
//! - **Followers anywhere keep these guarantees.** A browser or client of the HTTP streams is told
//!   the exact number of entries it missed, where it missed them, whether they were evicted before
//!   it resumed or because it read too slowly.
//!
//! # Feature flags
//!
//! - `publish` (on by default, no dependency): publishers that ship the log elsewhere in batches,
//!   with bounded queues, acknowledgements and retries. See the `memtail::publish` module.
//! - `tokio`: [`Tail`] is a `futures_core::Stream` of entries too, on any executor (the feature
//!   is named for the runtime `http` uses; `Tail::recv` is async without it).
//! - `http`: `memtail::http::router`, an axum router that serves the log to browsers: a viewer
//!   page, a plain-text snapshot, Server-Sent Events and WebSocket, safe by default. Enables
//!   `tokio` and `tracing`.
//! - `follow`: `memtail::follow` follows a file like `tail -F` (through truncation, rotation
//!   and deletion; FIFOs as streams), or a reader such as stdin, one entry per line. On Linux it
//!   learns of changes from inotify, through `rustix`; elsewhere it polls.
//! - `cli`: the `memtail` command (`memtail serve FILE...`, `memtail tail URL`). Enables `http`
//!   and `follow`.
//! - `tracing`: memtail's own layer, `buf.layer()`: one entry per event with its level, target,
//!   time and span, in a plain form close to `fmt()`'s, at a fifth of its cost; `memtail::init()`
//!   and `memtail::Init` for the usual set-up (console by `RUST_LOG`, DEBUG in memory, panics as
//!   entries); and [`LogBuffer`] as a `tracing_subscriber::fmt::MakeWriter`, for `fmt()`'s text.
//!   See the `memtail::tracing` module.
//! - `log`: `memtail::log`, a logger for the `log` crate with env_logger's `RUST_LOG`
//!   directives, the same entries as the layer, and standard error too if you like.
//! - `signal` (unix): `memtail::dump_on_signal`, the ring on standard error when the process
//!   gets a signal (`kill -USR1`).
//!
//! # Supported Rust versions
//!
//! memtail itself, with the default features and with `tracing`, `tokio` and `follow`, needs Rust
//! 1.74 (`rust-version` in `Cargo.toml`). The dependencies of two features need more, with the
//! versions in memtail's `Cargo.lock`: `http` needs 1.85 (tokio, hyper-util) and `cli` needs 1.88
//! (reqwest's URL parsing, through the ICU crates). An older toolchain may still build them with
//! older dependency versions (Cargo's `incompatible-rust-versions = "fallback"` picks those).
//! CI builds and tests with the current stable toolchain only.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod buffer;
mod builder;
mod context;
mod core;
mod detect;
mod dump;
mod entry;
mod file;
#[cfg(feature = "follow")]
pub mod follow;
mod follower;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "tracing")]
mod init;
mod level;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "publish")]
pub mod publish;
mod recv;
pub mod render;
mod replay;
mod ring;
mod stats;
mod subscription;
mod tail;
mod target;
mod time;
#[cfg(feature = "tracing")]
pub mod tracing;
mod worker;
mod write;

pub use crate::buffer::LogBuffer;
pub use crate::builder::{global, init_global, AlreadyInitialized, Builder};
pub use crate::context::{ErrorContext, ErrorContextStats};
pub use crate::core::Start;
#[cfg(all(unix, feature = "signal"))]
pub use crate::dump::dump_on_signal;
pub use crate::dump::{dump_on_panic, dump_on_panic_to, PanicHook};
pub use crate::entry::Entry;
#[cfg(feature = "tracing")]
pub use crate::init::{init, Init, InitError};
pub use crate::level::{Level, ParseLevelError};
pub use crate::recv::{RecvError, RecvTimeoutError, TryRecvError};
pub use crate::replay::Replay;
pub use crate::stats::Stats;
pub use crate::subscription::{Iter, Subscription, TryIter};
pub use crate::tail::Tail;
pub use crate::time::Clock;
#[cfg(feature = "tracing")]
pub use crate::tracing::Layer;
/// Signals for [`dump_on_signal`] (from `signal-hook`).
#[cfg(all(unix, feature = "signal"))]
pub use signal_hook::consts::{SIGUSR1, SIGUSR2};

// The README's examples run as doctests (they need the `tracing`, `log`, `publish` and `http`
// features).
#[cfg(all(
    doctest,
    feature = "tracing",
    feature = "log",
    feature = "publish",
    feature = "http"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
