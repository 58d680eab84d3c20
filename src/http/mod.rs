//! The log in a browser: an [`axum`] router with a viewer page, a plain-text snapshot,
//! Server-Sent Events and WebSocket (feature `http`).
//!
//! ```no_run
//! use memtail::http::Config;
//!
//! # async fn run() -> std::io::Result<()> {
//! let buf = memtail::LogBuffer::with_capacity(1 << 20);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! Config::new().serve(buf, listener).await
//! # }
//! ```
//!
//! [`Config::serve`] (or [`Config::serve_app`] for an application that nests the router among
//! its own routes) runs its own accept loop with connection limits (see "Safe by default") and
//! `TCP_NODELAY`. Served by `axum::serve` instead, the router still checks hosts, origins and
//! tokens and bounds streams and snapshots, but nothing bounds connections: set `TCP_NODELAY`
//! yourself (`axum::serve::ListenerExt::tap_io`), since a live stream writes small pieces, and
//! with Nagle's algorithm on, a piece waits until the client acknowledged the previous one,
//! which delayed acknowledgements stretch to 40 ms (in `sse_bench`, the 99th percentile of 1000
//! followers at 1000 entries a second never went below 40 ms that way).
//!
//! To nest the router in an application with state of its own, use `nest_service`: it routes
//! both `/logs` and `/logs/` (axum's `nest` routes only `/logs`):
//!
//! ```
//! #[derive(Clone)]
//! struct AppState;
//!
//! let buf = memtail::LogBuffer::new();
//! let app: axum::Router = axum::Router::<AppState>::new()
//!     .nest_service("/logs", memtail::http::router(buf))
//!     .with_state(AppState);
//! ```
//!
//! # Routes
//!
//! Relative to where the router is mounted; the page uses relative links only, so it works nested
//! under any prefix: with `nest_service("/logs", …)`, at both `/logs` and `/logs/`.
//!
//! | route | what it answers |
//! |---|---|
//! | `GET /` | The viewer: one self-contained HTML page (no CDN, no build step). It shows the backlog, then live entries, adding rows once per animation frame and keeping the newest 10 000; auto-scroll pauses while you read further up; a level select, search (filter or highlight, plain or regex), pause, download of the lines shown, `#seq=N` permalinks; each line after its time (when the entry has one and the line none of its own) and coloured by its level; ANSI colours in the text rendered as colours, other control sequences removed; "N entries missed" and "the log started over" notices; reconnects (jittered backoff, after two missed heartbeats, at once when the network or tab returns) resume from the last entry seen. Log text is always inserted as text, never parsed as HTML. |
//! | `GET /snapshot` | The retained log as `text/plain; charset=utf-8`, each entry with a time after its time, as [`render`](crate::render) shows it (a log that records no times: the bytes as written); `?since=ID` gives the retained entries from `ID` on (an event id or a bare sequence number); `?format=ndjson` gives one JSON object per entry and line (`{"seq":N,"level":"WARN","text":"...","time":"2026-12-04T14:39:53.123456Z","target":"my_app"}`, `level` `null` without one, `text` without its final line break, `time` and `target` when the entry has them). Headers `x-memtail-next-seq` (where to resume), `x-memtail-missed` (entries from `ID` on that were evicted), `x-memtail-instance` and `x-memtail-restarted` (below). |
//! | `GET /events` | Server-Sent Events: the retained entries, then live ones; `?format=json` for JSON data (below). |
//! | `GET /ws` | WebSocket: the retained entries, then live ones. |
//!
//! `/snapshot`, `/events` and `/ws` take `?last=DURATION` (`90s`, `5m`, `2h`, `1d`; a bare number is
//! seconds) instead of `?since=`: the entries appended within that window, for a log that
//! records times ([`Builder::timestamps`](crate::Builder::timestamps), or entries from
//! memtail's tracing layer or logger; 400 otherwise).
//!
//! Every route but the page takes `?target=TARGET` too: only entries of that `tracing` or `log`
//! target or one under it (`my_app` keeps `my_app` and `my_app::db`, not `my_app2`), and those
//! without a target ([`Entry::target`](crate::Entry::target)); an entry whose target could not be
//! recorded (too long, or one too many) is kept by no target.
//!
//! Every route but the page takes `?level=LEVEL` (`trace`, `debug`, `info`, `warn`, `error`, in
//! any case): only entries at that level or more severe are sent. An entry with no level (text
//! written through `io::Write` without a level, or a followed file's line whose text shows none,
//! like a stack trace's) is not. Any other value answers 400.
//! `missed` counts stay about every entry, filtered or not.
//!
//! They take `?grep=REGEX` (only entries whose text matches) and `?exclude=REGEX` (only those
//! whose text does not), in the [`regex`](https://docs.rs/regex) crate's syntax (`(?i)` for any
//! case), matched against the text without its line ending. A pattern is at most 1024 bytes and
//! compiles to at most 1 MiB (a pattern that would take more answers 400, as one that is not a
//! regular expression does).
//!
//! And `?n=N`: only the newest `N` of the entries the other parameters give (for `/events` and
//! `/ws`, the backlog they start with; the live entries follow as ever). `n=0` starts with
//! nothing but what comes next. A stream that resumes (`Last-Event-ID`) resumes where it was.
//!
//! A parameter a route does not take answers 400, naming it (a misspelt `?levle=warn` would
//! otherwise answer everything); so does a parameter given a value it cannot take.
//!
//! ## Server-Sent Events
//!
//! Each entry is one event whose `id` is `INSTANCE-SEQ`: the buffer's instance, 8 hexadecimal
//! digits drawn at random when the buffer was made, then the entry's sequence number (`id:
//! 3f2a9c1b-42`). Its data is the entry as UTF-8 (invalid bytes replaced with U+FFFD), with CR and
//! CRLF line breaks turned into LF and one final line break dropped: every line goes out as its
//! own `data:` line, so no byte of a log line can start a field or an event of its own. An entry
//! `"a\nb\n"` arrives as data `"a\nb"`. With `?format=json` each entry's data is instead one
//! JSON object on one line, as `/snapshot?format=ndjson` gives it: the text keeps every
//! character, a bare CR included, and the entry's `time` (RFC 3339 in UTC with microseconds, as
//! [`render`](crate::render) shows times) and `target` when it has them (`memtail tail` and the
//! viewer ask for this, and colour each line by its `level`).
//!
//! - With no position, the stream starts with the retained entries (what
//!   [`LogBuffer::tail`](crate::LogBuffer::tail) gives, followed by position from there).
//! - `?since=ID` starts at entry `ID`; a `Last-Event-ID: ID` header (what a browser's
//!   `EventSource` sends when it reconnects) resumes after it, and wins over `since`. `ID` is an
//!   event id or a bare sequence number (taken to be this buffer's). When some of the asked
//!   entries were evicted meanwhile, an event named `missed` whose data is the exact count comes
//!   first.
//! - When the position is not this buffer's (its instance is another, as after a restart of the
//!   server's process, or its sequence number is beyond what this buffer ever wrote), the stream
//!   starts with an event named `restart` (data: `the log started over`), then this buffer's
//!   retained entries from the oldest: never a silent splice of two logs.
//! - Each stream is a position in the buffer's ring, not a queue: it sends what the ring retains
//!   from there on, a batch at a time. When a client reads so slowly that the ring evicts entries
//!   before its stream sent them, it loses the oldest, and an event named `missed` says how many,
//!   where they were lost. Writers and other clients never wait for a slow client.
//! - An event named `heartbeat`, whose data is the interval in milliseconds, comes first and
//!   then whenever the stream has sent nothing else for [`Config::keep_alive`] (15 seconds by
//!   default; [`Config::serve`] makes it at most half the idle timeout): a client
//!   that has heard nothing for two intervals knows the connection is dead, not the log quiet.
//!   The stream asks browsers to reconnect after one second. The
//!   response carries `X-Accel-Buffering: no`, so that nginx does not hold it back.
//!
//! ## WebSocket
//!
//! One text message per entry, the entry's bytes as UTF-8 with invalid bytes replaced with U+FFFD
//! (line breaks kept as they are). On loss, a **binary** message holding the JSON
//! `{"missed":N}`: binary, so that no log line (which always arrives as text) can pass for one.
//! `?since=ID` starts at entry `ID`, as for SSE; when `ID` is not this buffer's, a binary
//! `{"restart":true}` comes first, then the retained entries from the oldest. Messages from the
//! client are read but not used (see "Safe by default" for their size); when the client closes,
//! the server answers with a close frame.
//!
//! # Safe by default
//!
//! - **Host.** Every route answers 403 unless the request's `Host` is a loopback name or address
//!   (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`) or one of
//!   [`Config::allowed_hosts`]. This stops DNS rebinding: a page on an attacker's name that
//!   resolves to 127.0.0.1 sends its own name as `Host`. Serving on another interface means naming
//!   the hosts clients use, or `allowed_hosts(["*"])` behind a proxy that checks them. A `Host`
//!   must be well formed (`[::1]evil.com` or `127.0.0.1@evil.com` name no host: 403); two `Host`
//!   headers, one that is not visible ASCII, or an absolute-form request target naming another
//!   host than `Host` answer 400; an absolute-form target is checked like `Host`.
//! - **Origin.** `/events` and `/ws` answer 403 to a request whose `Origin` is neither
//!   `http://` and the request's own host (memtail speaks plain HTTP: `https://` is another
//!   origin) nor in [`Config::allowed_origins`]: another site's page cannot read the log through
//!   its visitors' browsers. Two `Origin` headers answer 400. Behind a proxy that terminates
//!   TLS, allow `https://your.host`.
//!   Requests without `Origin` (curl, servers) pass.
//! - **Token.** With [`Config::token`] set, every route answers 401 unless the request carries
//!   it, as `Authorization: Bearer TOKEN` or as a `token` query parameter (`EventSource` and
//!   browsers' `WebSocket` cannot send headers; the viewer passes on the `token` of its own
//!   address). memtail never writes the token anywhere; see below for request logging.
//! - **Bounded.** At most [`Config::max_followers`] streams (256 by default) at once; beyond,
//!   `/events` and `/ws` answer 503. A stream holds one batch of entries (at most
//!   [`Config::follower_batch`] entries and 64 KiB, or one entry if longer) while it sends it; an
//!   SSE stream hands it to the HTTP server in pieces of at most 8 KiB, of which hyper queues at
//!   most 16 per connection: with entries of up to 64 KiB, a client that never reads pins at most
//!   about 200 KiB of the server's memory (130 KiB measured), however much is written. The batch
//!   is framed into events a piece at a time, so this holds for `?format=json` too, whose events
//!   can be six times longer than the entries (a control character is escaped as `\u0001`):
//!   200 KiB measured with 1000-byte entries of control characters
//!   (`suite/tests/memory_json.rs`). With
//!   longer entries it pins about one entry (SSE) or two (WebSocket, whose library copies a
//!   message into its send buffer), each at most the buffer's capacity: 256 such clients of a
//!   1 MiB buffer whose entries are near 1 MiB pin about 230 MB (SSE) or 460 MB (WebSocket). A
//!   writer does no work per stream.
//! - **Snapshots.** At most [`Config::max_snapshots`] (16 by default) `/snapshot` answers are sent
//!   at once; beyond, 503 with `Retry-After`. Each holds one copy of what it sends, handed to the
//!   HTTP server in pieces of 16 KiB: at most the buffer's capacity, or for `format=ndjson`
//!   (which makes short entries many times longer) twice the capacity and 64 KiB, keeping the
//!   newest entries that fit; `x-memtail-omitted` says how many older ones were left out.
//! - **WebSocket messages from the client** are read (pings, pongs, close) but may not be longer
//!   than 1 KiB, whole or per frame: a client that sends more is disconnected, so no client can
//!   make the server buffer a message. The server pings every [`Config::keep_alive`] and
//!   disconnects a client that answered none of the last two pings (it stopped reading).
//! - **Connections**, when served by [`Config::serve`] or [`Config::serve_app`]:
//!   - [`Config::header_read_timeout`] (10 s by default): a request's line and headers must
//!     arrive within it, so a half-sent request is closed after it, and so is a keep-alive
//!     connection that sends no next request.
//!   - [`Config::idle_timeout`] (60 s by default): a connection on which no byte moved either way
//!     for that long is closed (a client that stopped reading). Live streams are not idle while
//!     their client reads: SSE sends a heartbeat event, WebSocket a ping, every
//!     [`Config::keep_alive`] (15 s). Bytes the kernel takes count as moved: an SSE client that
//!     stops reading a quiet log is noticed only once its socket buffers are full, which
//!     heartbeats alone take hours to do; until then it holds one of the `max_followers` places.
//!   - [`Config::max_connections`] (512 by default): connections of every kind, streams and
//!     half-sent requests included. Beyond, a new connection is closed as soon as it is accepted;
//!     the open ones, streams among them, go on.
//! - Responses carry `X-Content-Type-Options: nosniff`; the page carries a Content Security
//!   Policy that allows no images, frames or outside connections.
//!
//! # Keeping the HTTP stack out of the log
//!
//! Nothing in this module logs. axum, hyper and tower-http can emit `tracing` events of their
//! own; when the subscriber that writes into the served buffer sees them, serving the log makes
//! more log. Filter their targets out of that subscriber, and keep `tower_http::trace` (which
//! records request URIs, so a `?token=`) away from it:
//!
//! ```
//! # #[cfg(feature = "tracing")] {
//! use tracing_subscriber::filter::{LevelFilter, Targets};
//! use tracing_subscriber::prelude::*;
//!
//! let buf = memtail::LogBuffer::new();
//! let quiet_http = Targets::new()
//!     .with_default(LevelFilter::INFO)
//!     .with_target("tower_http", LevelFilter::OFF)
//!     .with_target("hyper", LevelFilter::OFF)
//!     .with_target("axum", LevelFilter::OFF);
//! let _subscriber = tracing_subscriber::registry().with(
//!     tracing_subscriber::fmt::layer().with_writer(buf.clone()).with_filter(quiet_http),
//! );
//! # }
//! ```

mod admit;
mod config;
mod pace;
mod page;
mod permit;
mod query;
mod refusal;
mod routes;
mod serve;
mod shutdown;
mod sse;
mod state;
pub mod wire;
mod ws;

use axum::Router;

pub use self::config::Config;
pub use self::serve::{Serve, Server, SHUTDOWN_GRACE};
use crate::LogBuffer;

/// The router with the default [`Config`]: loopback hosts only, same-origin streams only, no
/// token, at most 256 streams.
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::new();
/// let app: axum::Router = axum::Router::new().nest("/logs", memtail::http::router(buf));
/// ```
pub fn router<S>(buf: LogBuffer) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Config::new().router(buf)
}
