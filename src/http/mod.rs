//! The log in a browser: an [`axum`] router with a viewer page, a plain-text snapshot,
//! Server-Sent Events and WebSocket (feature `http`).
//!
//! ```no_run
//! use axum::serve::ListenerExt;
//!
//! # async fn run() -> std::io::Result<()> {
//! let buf = memtail::LogBuffer::with_capacity(1 << 20);
//! let app = axum::Router::new().nest("/logs", memtail::http::router(buf.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080")
//!     .await?
//!     .tap_io(|tcp| {
//!         // Without it, Nagle's algorithm can hold an event back for up to 40 ms.
//!         let _ = tcp.set_nodelay(true);
//!     });
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Set `TCP_NODELAY` on the connections, as above: a live stream writes small pieces, and with
//! Nagle's algorithm on, a piece waits until the client acknowledged the previous one, which
//! delayed acknowledgements stretch to 40 ms: in `sse_bench`, with Nagle on, the 99th percentile
//! of 1000 followers at 1000 entries a second never went below 40 ms.
//!
//! # Routes
//!
//! Relative to where the router is mounted; the page uses relative links only, so it works nested
//! under any prefix: nested at `/logs`, the page is `/logs` (axum 0.8 does not route `/logs/` to
//! a nested `/`; the page works there too if your app routes it).
//!
//! | route | what it answers |
//! |---|---|
//! | `GET /` | The viewer: one self-contained HTML page (no CDN, no build step). It shows the backlog, then live entries; auto-scroll pauses while you read further up; a text filter; ANSI colours rendered as colours, other control sequences removed; "N entries missed" notices; reconnects resume from the last entry seen. Log text is always inserted as text, never parsed as HTML. |
//! | `GET /snapshot` | The retained log as `text/plain; charset=utf-8`; `?since=SEQ` gives the retained entries from `SEQ` on. Headers `x-memtail-next-seq` (where to resume) and `x-memtail-missed` (entries from `SEQ` on that were evicted). |
//! | `GET /events` | Server-Sent Events: the retained entries, then live ones. |
//! | `GET /ws` | WebSocket: the retained entries, then live ones. |
//!
//! ## Server-Sent Events
//!
//! Each entry is one event whose `id` is the entry's sequence number. Its data is the entry as
//! UTF-8 (invalid bytes replaced with U+FFFD), with CR and CRLF line breaks turned into LF and one
//! final line break dropped: every line goes out as its own `data:` line, so no byte of a log line
//! can start a field or an event of its own. An entry `"a\nb\n"` arrives as data `"a\nb"`.
//!
//! - With no position, the stream starts with the retained entries (what
//!   [`LogBuffer::tail`](crate::LogBuffer::tail) gives).
//! - `?since=SEQ` starts at entry `SEQ`; a `Last-Event-ID: N` header (what a browser's
//!   `EventSource` sends when it reconnects) resumes with entry `N + 1`, and wins over `since`.
//!   When some of the asked entries were evicted meanwhile, an event named `missed` whose data is
//!   the exact count comes first.
//! - Each stream is a position in the buffer's ring, not a queue: it sends what the ring retains
//!   from there on, a batch at a time. When a client reads so slowly that the ring evicts entries
//!   before its stream sent them, it loses the oldest, and an event named `missed` says how many,
//!   where they were lost. Writers and other clients never wait for a slow client.
//! - A comment line keeps idle connections open every 15 seconds
//!   ([`Config::keep_alive`]); the stream asks browsers to reconnect after one second.
//!
//! ## WebSocket
//!
//! One text message per entry, the entry's bytes as UTF-8 with invalid bytes replaced with U+FFFD
//! (line breaks kept as they are). On loss, a **binary** message holding the JSON
//! `{"missed":N}`: binary, so that no log line (which always arrives as text) can pass for one.
//! Messages from the client are ignored; when the client closes, the server answers with a close
//! frame, and when the buffer goes away the server closes.
//!
//! # Safe by default
//!
//! - **Host.** Every route answers 403 unless the request's `Host` is a loopback name or address
//!   (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`) or one of
//!   [`Config::allowed_hosts`]. This stops DNS rebinding: a page on an attacker's name that
//!   resolves to 127.0.0.1 sends its own name as `Host`. Serving on another interface means naming
//!   the hosts clients use, or `allowed_hosts(["*"])` behind a proxy that checks them.
//! - **Origin.** `/events` and `/ws` answer 403 to a request whose `Origin` is neither the
//!   request's own host nor in [`Config::allowed_origins`]: another site's page cannot read the
//!   log through its visitors' browsers. Requests without `Origin` (curl, servers) pass.
//! - **Token.** With [`Config::token`] set, every route answers 401 unless the request carries
//!   it, as `Authorization: Bearer TOKEN` or as a `token` query parameter (`EventSource` and
//!   browsers' `WebSocket` cannot send headers; the viewer passes on the `token` of its own
//!   address). memtail never writes the token anywhere; see below for request logging.
//! - **Bounded.** At most [`Config::max_followers`] streams (256 by default) at once; beyond,
//!   `/events` and `/ws` answer 503. A stream holds one batch of entries (at most
//!   [`Config::follower_batch`] entries and 64 KiB, or one entry if longer) while it sends it; an
//!   SSE stream hands it to the HTTP server in pieces of at most 8 KiB, of which hyper queues at
//!   most 16 per connection: a client that never reads pins at most about 200 KiB of the server's
//!   memory (130 KiB measured), however much is written. A writer does no work per stream.
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

mod guard;
mod pace;
mod page;
mod sse;
mod ws;

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

use crate::builder::check_subscriber_capacity;
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
pub fn router(buf: LogBuffer) -> Router {
    Config::new().router(buf)
}

/// Options for [`router`]: who may connect, and how much each connection may hold.
///
/// # Default values
///
/// | option | default |
/// |---|---|
/// | [`allowed_hosts`](Config::allowed_hosts) | none beyond the loopback names and addresses |
/// | [`allowed_origins`](Config::allowed_origins) | none beyond the request's own host |
/// | [`token`](Config::token) | none |
/// | [`max_followers`](Config::max_followers) | [`Config::DEFAULT_MAX_FOLLOWERS`] (256) |
/// | [`follower_batch`](Config::follower_batch) | [`Config::DEFAULT_FOLLOWER_BATCH`] (1024 entries) |
/// | [`coalesce`](Config::coalesce) | [`Config::DEFAULT_COALESCE`] (5 ms) |
/// | [`keep_alive`](Config::keep_alive) | [`Config::DEFAULT_KEEP_ALIVE`] (15 s) |
///
/// # Examples
///
/// ```
/// use memtail::http::Config;
///
/// let buf = memtail::LogBuffer::new();
/// let app = Config::new()
///     .token("s3cret")
///     .allowed_hosts(["logs.internal"])
///     .allowed_origins(["https://admin.internal"])
///     .max_followers(16)
///     .router(buf);
/// # let _: axum::Router = app;
/// ```
#[derive(Clone)]
#[must_use = "a Config does nothing until `router` is called"]
pub struct Config {
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    token: Option<String>,
    max_followers: usize,
    follower_batch: usize,
    coalesce: Duration,
    keep_alive: Duration,
}

impl Config {
    /// Streams served at once by default.
    pub const DEFAULT_MAX_FOLLOWERS: usize = 256;
    /// The most entries a stream reads from the ring and sends at once, by default.
    pub const DEFAULT_FOLLOWER_BATCH: usize = 1024;
    /// What [`DEFAULT_FOLLOWER_BATCH`](Config::DEFAULT_FOLLOWER_BATCH) was called when streams
    /// had queues.
    #[deprecated(
        since = "0.1.0",
        note = "streams read the ring by position; use DEFAULT_FOLLOWER_BATCH"
    )]
    pub const DEFAULT_FOLLOWER_QUEUE: usize = Config::DEFAULT_FOLLOWER_BATCH;
    /// How long a stream that has sent everything waits before it sends again, by default.
    pub const DEFAULT_COALESCE: Duration = Duration::from_millis(5);
    /// How often an idle SSE stream gets a keep-alive comment by default.
    pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

    /// The defaults (see the table above).
    pub fn new() -> Config {
        Config {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            token: None,
            max_followers: Config::DEFAULT_MAX_FOLLOWERS,
            follower_batch: Config::DEFAULT_FOLLOWER_BATCH,
            coalesce: Config::DEFAULT_COALESCE,
            keep_alive: Config::DEFAULT_KEEP_ALIVE,
        }
    }

    /// Host names (as in the `Host` header, without the port) accepted besides the loopback ones,
    /// which are always accepted: `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`. Compared
    /// without regard to case. `"*"` accepts any host: only behind a proxy that checks `Host`
    /// itself.
    ///
    /// Adds to the hosts given before.
    pub fn allowed_hosts<I, S>(mut self, hosts: I) -> Config
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_hosts.extend(
            hosts
                .into_iter()
                .map(|host| guard::normalize_host(&host.into())),
        );
        self
    }

    /// Origins (`scheme://host[:port]`, as browsers send them in `Origin`) whose pages may open
    /// `/events` and `/ws`, besides pages served by the same host. `"*"` accepts any origin.
    ///
    /// Adds to the origins given before.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Config
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins.extend(
            origins
                .into_iter()
                .map(|origin| origin.into().trim_end_matches('/').to_ascii_lowercase()),
        );
        self
    }

    /// Every route answers 401 unless the request carries this token, as
    /// `Authorization: Bearer TOKEN` or as a `token` query parameter.
    ///
    /// # Panics
    ///
    /// If `token` is empty: that would look protected and accept anyone.
    #[track_caller]
    pub fn token(mut self, token: impl Into<String>) -> Config {
        let token = token.into();
        assert!(
            !token.is_empty(),
            "memtail::http::Config::token: empty token"
        );
        self.token = Some(token);
        self
    }

    /// At most this many `/events` and `/ws` streams at once; beyond, they answer 503.
    pub fn max_followers(mut self, streams: usize) -> Config {
        self.max_followers = streams;
        self
    }

    /// The most entries a stream reads from the ring and sends at once (one SSE chunk, or that
    /// many WebSocket messages). A read also stops at 64 KiB, unless its first entry alone is
    /// longer. A stream holds one batch at a time; it has no queue, so this is not a bound on how
    /// far a client may fall behind: that is what the ring retains.
    ///
    /// # Panics
    ///
    /// If `entries` is 0.
    #[track_caller]
    pub fn follower_batch(mut self, entries: usize) -> Config {
        check_subscriber_capacity(entries);
        self.follower_batch = entries;
        self
    }

    /// What [`follower_batch`](Config::follower_batch) was called when each stream had a queue
    /// that dropped the newest entries when full; it now sets the batch.
    ///
    /// # Panics
    ///
    /// If `entries` is 0.
    #[deprecated(
        since = "0.1.0",
        note = "streams read the ring by position and have no queue; use follower_batch"
    )]
    #[track_caller]
    pub fn follower_queue(self, entries: usize) -> Config {
        self.follower_batch(entries)
    }

    /// How long a stream that has sent everything waits before it reads the ring again, so
    /// that the entries written meanwhile go out in one write (one SSE chunk, one WebSocket
    /// flush) instead of one write each. An entry written after a quiet spell goes out at once;
    /// a stream that is behind never waits. This is what keeps many streams cheap under load:
    /// with 1000 streams following 1000 entries a second, it turns a million socket writes a
    /// second into 200 000. [`Duration::ZERO`] sends every entry as soon as it is written.
    pub fn coalesce(mut self, wait: Duration) -> Config {
        self.coalesce = wait;
        self
    }

    /// How often an idle SSE stream gets a keep-alive comment.
    ///
    /// # Panics
    ///
    /// If `every` is zero.
    #[track_caller]
    pub fn keep_alive(mut self, every: Duration) -> Config {
        assert!(
            !every.is_zero(),
            "memtail::http::Config::keep_alive: zero interval"
        );
        self.keep_alive = every;
        self
    }

    /// The router serving `buf` with these options.
    pub fn router(self, buf: LogBuffer) -> Router {
        let served = Arc::new(Served {
            buf,
            config: self,
            followers: AtomicUsize::new(0),
        });
        Router::new()
            .route("/", get(page::page))
            .route("/snapshot", get(page::snapshot))
            .route("/events", get(sse::events))
            .route("/ws", get(ws::ws))
            .with_state(served)
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

impl fmt::Debug for Config {
    /// Everything but the token, which shows as `Some("…")` when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("max_followers", &self.max_followers)
            .field("follower_batch", &self.follower_batch)
            .field("coalesce", &self.coalesce)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// What every route's handler shares.
struct Served {
    buf: LogBuffer,
    config: Config,
    /// Streams open now.
    followers: AtomicUsize,
}
