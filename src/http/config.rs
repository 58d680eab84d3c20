//! [`Config`]: the HTTP side's options.

use std::fmt;
use std::time::Duration;

use super::shutdown::{not_zero, Shutdown};
use crate::core::check_subscriber_capacity;
#[cfg(doc)]
use crate::LogBuffer;

/// Options for [`router`](super::router): who may connect, and how much each connection may hold.
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
/// | [`max_snapshots`](Config::max_snapshots) | [`Config::DEFAULT_MAX_SNAPSHOTS`] (16) |
/// | [`header_read_timeout`](Config::header_read_timeout) | [`Config::DEFAULT_HEADER_READ_TIMEOUT`] (10 s) |
/// | [`idle_timeout`](Config::idle_timeout) | [`Config::DEFAULT_IDLE_TIMEOUT`] (60 s) |
/// | [`max_connections`](Config::max_connections) | [`Config::DEFAULT_MAX_CONNECTIONS`] (512) |
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
    pub(super) allowed_hosts: Vec<String>,
    pub(super) allowed_origins: Vec<String>,
    pub(super) token: Option<String>,
    pub(super) max_followers: usize,
    pub(super) follower_batch: usize,
    pub(super) coalesce: Duration,
    pub(super) keep_alive: Duration,
    pub(super) header_read_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) max_connections: usize,
    pub(super) max_snapshots: usize,
    /// What the viewer's title names.
    pub(super) title: Option<String>,
    /// Told when a graceful shutdown begins, by this config and its clones: their routers' streams
    /// end with a final event.
    pub(super) shutdown: Shutdown,
}

impl Config {
    /// Streams served at once by default.
    pub const DEFAULT_MAX_FOLLOWERS: usize = 256;
    /// The most entries a stream reads from the ring and sends at once, by default.
    pub const DEFAULT_FOLLOWER_BATCH: usize = 1024;
    /// How long a stream that has sent everything waits before it sends again, by default.
    pub const DEFAULT_COALESCE: Duration = Duration::from_millis(5);
    /// `/snapshot` answers sent at once by default.
    pub const DEFAULT_MAX_SNAPSHOTS: usize = 16;
    /// How often an idle SSE stream gets a heartbeat event by default.
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
            header_read_timeout: Config::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Config::DEFAULT_IDLE_TIMEOUT,
            max_connections: Config::DEFAULT_MAX_CONNECTIONS,
            max_snapshots: Config::DEFAULT_MAX_SNAPSHOTS,
            title: None,
            shutdown: Shutdown::new(),
        }
    }

    /// What is served, named in the viewer's title (`NAME · memtail`): the application's name,
    /// say, or the files `memtail serve` follows. Control characters are left out, and the
    /// name is cut at 200 characters; it is inserted as text, never as HTML.
    ///
    /// # Examples
    ///
    /// ```
    /// let app: axum::Router = memtail::http::Config::new()
    ///     .title("billing-api")
    ///     .router(memtail::LogBuffer::new());
    /// ```
    pub fn title(mut self, name: impl Into<String>) -> Config {
        let name: String = name
            .into()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        self.title = (!name.trim().is_empty()).then_some(name);
        self
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
        self.allowed_hosts
            .extend(hosts.into_iter().map(|host| normalize_host(&host.into())));
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

    /// At most this many `/snapshot` answers being sent at once; beyond, `/snapshot` answers 503
    /// with `Retry-After`. Each holds a copy of what it sends, at most the buffer's capacity, so
    /// snapshots pin at most this many times the capacity, however many clients ask and however
    /// slowly they read (a client that stops reading is disconnected after
    /// [`idle_timeout`](Config::idle_timeout) when served by [`serve`](Config::serve)).
    pub fn max_snapshots(mut self, snapshots: usize) -> Config {
        self.max_snapshots = snapshots;
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

    /// How often an idle SSE stream gets a heartbeat event (named `heartbeat`, the interval in
    /// milliseconds as its data), and a WebSocket a ping.
    ///
    /// # Panics
    ///
    /// If `every` is zero.
    #[track_caller]
    pub fn keep_alive(mut self, every: Duration) -> Config {
        not_zero(every, "keep_alive");
        self.keep_alive = every;
        self
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
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_snapshots", &self.max_snapshots)
            .finish()
    }
}

/// A host name as compared: lower case, without port, brackets or a final dot.
fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal: "[::1]:8080".
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            // "name:port", but not a bare IPv6 address with colons of its own.
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}
