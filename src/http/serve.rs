//! Serving with connection limits: [`Config::serve`] and [`Config::serve_app`].
//!
//! `axum::serve` sets no limit on connections: a client that sends half a request, or opens
//! connections and says nothing, holds them forever. This accept loop gives every connection
//! a slot out of [`Config::max_connections`] (held until its socket closes, upgraded WebSockets
//! included), a deadline for each request's head ([`Config::header_read_timeout`], which also
//! ends a keep-alive connection that sends no next request), and closes any connection on which
//! no byte moved either way for [`Config::idle_timeout`].

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use super::config::Config;
use super::permit::{Place, Places};
use super::shutdown::{begun, not_zero, Shutdown};
use crate::worker::Worker;
use crate::LogBuffer;

/// How long the accept loop rests after an error that is not about one connection (out of file
/// descriptors or memory, say), instead of retrying at once in a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a graceful shutdown waits for open connections to finish (a client that does not
/// read its final event, say) before it closes them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The server [`Config::serve`] and [`Config::serve_app`] make: await it to serve (until an
/// error that is not about one connection), or first give it a signal to stop at with
/// [`with_graceful_shutdown`](Serve::with_graceful_shutdown).
#[must_use = "a Serve does nothing until it is awaited"]
pub struct Serve {
    parts: Option<Parts>,
    running: Option<Pin<Box<dyn Future<Output = io::Result<()>> + Send>>>,
}

struct Parts {
    limits: Limits,
    listener: TcpListener,
    app: Router,
    shutdown: Shutdown,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Serve {
    fn new(limits: Limits, listener: TcpListener, app: Router, shutdown: Shutdown) -> Serve {
        Serve {
            parts: Some(Parts {
                limits,
                listener,
                app,
                shutdown,
                signal: Box::pin(std::future::pending()),
            }),
            running: None,
        }
    }

    /// Serves until `signal` completes, then shuts down gracefully, as
    /// `axum::serve(..).with_graceful_shutdown(..)` does: it stops accepting connections, ends
    /// every stream of the routers made from this config (and its clones) with a final event
    /// (`event: shutdown` on `/events`, a close frame with code 1001 on `/ws`), lets answers
    /// under way finish, and returns `Ok(())` once every connection is closed, or after
    /// [`SHUTDOWN_GRACE`] (5 s), closing those left (a client that does not read).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let buf = memtail::LogBuffer::new();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(
    ///     memtail::http::Config::new()
    ///         .serve(buf, listener)
    ///         .with_graceful_shutdown(async { let _ = stopped.await; }),
    /// );
    /// // ... later, on Ctrl-C (`tokio::signal::ctrl_c()`), say:
    /// stop.send(()).unwrap();
    /// server.await.unwrap()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Serve
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(parts) = &mut self.parts {
            parts.signal = Box::pin(signal);
        }
        self
    }
}

impl Future for Serve {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(parts) = this.parts.take() {
            this.running = Some(Box::pin(serve_with(parts)));
        }
        match &mut this.running {
            Some(running) => running.as_mut().poll(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("started", &self.running.is_some())
            .finish()
    }
}

impl Config {
    /// How long a client has to send a request's line and headers, by default.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a connection may go without a byte moving either way, by default.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Connections open at once, of every kind, by default.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

    /// How long a client has to send a request's line and headers once the server waits for
    /// them: from the connection's start for the first request, from the end of the previous
    /// response for the next. A client that sends half a request, or keeps a connection open
    /// without a next request, is disconnected after this. Used by [`serve`](Config::serve)
    /// and [`serve_app`](Config::serve_app).
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    #[track_caller]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Config {
        not_zero(timeout, "header_read_timeout");
        self.header_read_timeout = timeout;
        self
    }

    /// A connection on which no byte moved, in either direction, for this long is closed: a
    /// client that stopped reading a snapshot or a stream, or stopped answering. Live streams
    /// are never idle while their client reads: SSE sends a heartbeat event and WebSocket a
    /// ping every [`keep_alive`](Config::keep_alive), which must be shorter. Used by
    /// [`serve`](Config::serve) and [`serve_app`](Config::serve_app).
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    #[track_caller]
    pub fn idle_timeout(mut self, timeout: Duration) -> Config {
        not_zero(timeout, "idle_timeout");
        self.idle_timeout = timeout;
        self
    }

    /// At most this many connections open at once, of every kind (page, snapshot, streams,
    /// connections still sending their request). Beyond, a new connection is closed as soon as
    /// it is accepted; the connections already open, streams among them, go on. Used by
    /// [`serve`](Config::serve) and [`serve_app`](Config::serve_app).
    ///
    /// # Panics
    ///
    /// If `connections` is 0.
    #[track_caller]
    pub fn max_connections(mut self, connections: usize) -> Config {
        assert!(
            connections > 0,
            "memtail::http::Config::max_connections: zero connections"
        );
        self.max_connections = connections;
        self
    }

    /// Serves `buf` (the router of this config) on `listener`, with this config's connection
    /// limits, until an error that is not about one connection. Sets `TCP_NODELAY` on every
    /// connection. When [`keep_alive`](Config::keep_alive) is not shorter than half the
    /// [`idle_timeout`](Config::idle_timeout), streams use half the idle timeout instead, so that
    /// a quiet log does not get them closed as idle.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let buf = memtail::LogBuffer::with_capacity(1 << 20);
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// memtail::http::Config::new().serve(buf, listener).await
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// None at present: it serves until it is dropped. An accept error that is about one
    /// connection is skipped; any other (out of file descriptors, say) makes it rest 100 ms and
    /// accept again. The `Result` leaves room for errors a later version may report.
    pub fn serve(mut self, buf: LogBuffer, listener: TcpListener) -> Serve {
        let limits = Limits::of(&self);
        // Streams must show life more often than the idle timeout, or they would be closed as
        // idle whenever the log is quiet.
        self.keep_alive = self
            .keep_alive
            .min(self.idle_timeout / 2)
            .max(Duration::from_millis(1));
        let shutdown = self.shutdown.clone();
        Serve::new(limits, listener, self.router(buf), shutdown)
    }

    /// Serves `app`, an application that nests [`router`](Config::router) among its own
    /// routes, on `listener` with this config's connection limits (the other options are the
    /// router's). See [`serve`](Config::serve); here the router was made already, so its
    /// [`keep_alive`](Config::keep_alive) must be shorter than the idle timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use axum::routing::get;
    /// use memtail::http::Config;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let buf = memtail::LogBuffer::with_capacity(1 << 20);
    /// let config = Config::new().max_connections(128);
    /// let app = axum::Router::new()
    ///     .route("/health", get(|| async { "ok" }))
    ///     .nest("/logs", config.clone().router(buf));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// config.serve_app(listener, app).await
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`serve`](Config::serve).
    pub fn serve_app(self, listener: TcpListener, app: Router) -> Serve {
        Serve::new(Limits::of(&self), listener, app, self.shutdown)
    }
}

/// A server of the log on a thread of its own, made by [`Config::spawn`]: it serves until
/// [`stop`](Server::stop) is called or the handle is dropped.
#[must_use = "dropping the handle stops the server"]
pub struct Server {
    local_addr: SocketAddr,
    /// Dropped (or sent on) to stop the server.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    worker: Option<Worker>,
}

/// How long dropping a [`Server`] waits for its thread.
const SERVER_DROP_TIMEOUT: Duration = Duration::from_secs(5);

impl Config {
    /// Serves `buf` on `address` (see [`serve`](Config::serve)) from a thread of its own
    /// (`memtail-http`, with a single-threaded tokio runtime), for a program that has no tokio
    /// runtime of its own, or wants the viewer kept apart from it. The address is bound before
    /// this returns, so an error to bind is this call's error, and a port of 0 picks a free
    /// one ([`Server::local_addr`] says which).
    ///
    /// # Errors
    ///
    /// Binding `address`, making the runtime, or starting the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"ready\n");
    /// let server = memtail::http::Config::new().spawn(buf, "127.0.0.1:0")?;
    /// let address = server.local_addr();
    ///
    /// let mut client = std::net::TcpStream::connect(address)?;
    /// write!(client, "GET /snapshot HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer)?;
    /// assert!(answer.starts_with("HTTP/1.1 200 OK"));
    /// assert!(answer.ends_with("\r\n\r\nready\n"));
    ///
    /// assert!(server.stop(Duration::from_secs(5)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(self, buf: LogBuffer, address: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = Worker::spawn("memtail-http".into(), move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    _ = self.serve(buf, listener) => {}
                    _ = stopped => {}
                }
            });
            // Every connection's task goes with the runtime.
            drop(runtime);
        })?;
        Ok(Server {
            local_addr,
            stop: Some(stop),
            worker: Some(worker),
        })
    }
}

impl Server {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server: it accepts no more connections and closes the open ones (streams
    /// end), and its thread ends. Returns whether the thread ended within `timeout`.
    pub fn stop(mut self, timeout: Duration) -> bool {
        self.shutdown(timeout)
    }

    fn shutdown(&mut self, timeout: Duration) -> bool {
        let Some(worker) = self.worker.take() else {
            return true;
        };
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        worker.join_until(crate::worker::deadline(timeout))
    }
}

impl Drop for Server {
    /// Stops the server, waiting at most 5 s for its thread.
    fn drop(&mut self) {
        self.shutdown(SERVER_DROP_TIMEOUT);
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("running", &self.worker.is_some())
            .finish()
    }
}

#[derive(Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
}

impl Limits {
    fn of(config: &Config) -> Limits {
        Limits {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
        }
    }
}

async fn serve_with(parts: Parts) -> io::Result<()> {
    let Parts {
        limits,
        listener,
        app,
        shutdown,
        mut signal,
    } = parts;
    let open = Places::new(limits.max_connections);
    // Every connection's task, to wait for them at shutdown; finished ones are reaped as the
    // loop goes.
    let mut connections = tokio::task::JoinSet::new();
    let (close, closing) = tokio::sync::watch::channel(false);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) if about_one_connection(&error) => continue,
            // Anything else (out of file descriptors or memory, a firewall's EPERM, a network
            // going down) is taken to pass, as `axum::serve` does: rest, then accept again,
            // rather than end the server or spin.
            Err(_) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Over the cap: closed at once, before reading a byte.
        let Some(slot) = open.take() else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(Connection::new(tcp, limits.idle_timeout, slot));
        let service = TowerToHyperService::new(app.clone());
        let mut closing = closing.clone();
        connections.spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            // Errors are the client's: a timeout, a broken request, a reset. The connection ends.
            let connection = http.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = begun(&mut closing) => {
                    // The answer under way finishes (a stream, with its final event); then the
                    // connection closes.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    // Graceful shutdown: no more connections; streams end with a final event; connections
    // close once their answer is done, or when the grace is over.
    drop(listener);
    shutdown.begin();
    let _ = close.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    Ok(())
}

fn about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// A connection's socket that fails with `TimedOut` when it is waited on and no byte has moved
/// either way for the idle timeout, and holds the connection's slot.
struct Connection {
    tcp: TcpStream,
    idle: Duration,
    /// When a byte last moved.
    last: Instant,
    timer: Pin<Box<Sleep>>,
    _slot: Place,
}

impl Connection {
    fn new(tcp: TcpStream, idle: Duration, slot: Place) -> Connection {
        let now = Instant::now();
        Connection {
            tcp,
            idle,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            _slot: slot,
        }
    }

    fn moved(&mut self, bytes: usize) {
        if bytes > 0 {
            self.last = Instant::now();
        }
    }

    /// Called when the socket is not ready: `Pending` until the idle deadline, then the error.
    fn idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let deadline = self.last + self.idle;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no byte moved for the idle timeout",
        )))
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.tcp).poll_read(cx, buf) {
            Poll::Ready(result) => {
                let read = buf.filled().len() - before;
                self.moved(read);
                Poll::Ready(result)
            }
            Poll::Pending => self.idle(cx),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.tcp).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.moved(*result.as_ref().unwrap_or(&0));
                Poll::Ready(result)
            }
            Poll::Pending => self.idle(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.moved(*result.as_ref().unwrap_or(&0));
                Poll::Ready(result)
            }
            Poll::Pending => self.idle(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.tcp).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => self.idle(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
