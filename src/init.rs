//! `memtail::init()`: the usual set-up in one line (feature `tracing`).

use std::fmt;
use std::io::IsTerminal;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::prelude::*;

use crate::{LogBuffer, PanicHook};

/// Sets up logging the usual way in one line, as `console_subscriber::init()` does for
/// tokio-console, and returns the buffer: a global `tracing` subscriber that prints to standard
/// error what `RUST_LOG` asks for (INFO when it is not set) and keeps DEBUG and above in the
/// global buffer ([`global`](crate::global), 1 MiB) through memtail's [`Layer`](crate::Layer),
/// and a panic hook that appends each panic to the buffer ([`PanicHook`]). [`Init`] changes
/// any of that, and with feature `http` serves the viewer too.
///
/// # Panics
///
/// When [`Init::try_init`] fails: a global `tracing` subscriber or the global buffer exists
/// already.
///
/// # Examples
///
/// ```
/// let log = memtail::init();
/// tracing::debug!("kept in memory, not shown on the console");
/// tracing::info!("shown on the console, and kept");
/// assert_eq!(log.stats().entries_written, 2);
/// assert!(log.entries()[0].ends_with(b": kept in memory, not shown on the console\n"));
/// ```
pub fn init() -> &'static LogBuffer {
    match Init::new().try_init() {
        Ok(log) => log,
        Err(error) => panic!("memtail::init: {error}"),
    }
}

/// The choices of [`init`], set before it runs.
///
/// # Default values
///
/// | setting | default | constant |
/// |---|---|---|
/// | [`console`](Init::console) | `RUST_LOG`'s directives, or INFO when it is not set | [`Init::DEFAULT_CONSOLE`] |
/// | [`memory`](Init::memory) | DEBUG and above | [`Init::DEFAULT_MEMORY`] |
/// | [`capacity`](Init::capacity) | 1 MiB | [`Init::DEFAULT_CAPACITY`] |
/// | [`panics`](Init::panics) | each panic appended as an ERROR entry | |
/// | `serve` (feature `http`) | not served | |
///
/// The console is `tracing_subscriber`'s `fmt` layer on standard error, with colours when
/// standard error is a terminal and `NO_COLOR` is not set.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::filter::LevelFilter;
///
/// let log = memtail::Init::new()
///     .console(LevelFilter::WARN)
///     .memory(LevelFilter::TRACE)
///     .capacity(8 << 20)
///     .try_init()?;
/// tracing::trace!("the finest detail, in memory only");
/// assert_eq!((log.capacity(), log.stats().entries_written), (8 << 20, 1));
/// // Once is all: the process has its subscriber now.
/// assert_eq!(memtail::Init::new().try_init().unwrap_err(), memtail::InitError::SubscriberExists);
/// # Ok::<(), memtail::InitError>(())
/// ```
///
/// With feature `http`, the viewer on a loopback port (here a free one), from a thread of its
/// own, for as long as the process runs; its address is logged at INFO:
///
/// ```
/// # #[cfg(feature = "http")] {
/// let log = memtail::Init::new().serve("127.0.0.1:0").init();
/// let announced = String::from_utf8_lossy(&log.entries()[0]).into_owned();
/// assert!(announced.starts_with("INFO  memtail: the log's viewer is at http://127.0.0.1:"));
/// # }
/// ```
#[derive(Clone)]
#[must_use = "nothing is set up until `init` or `try_init` is called"]
pub struct Init {
    console: LevelFilter,
    memory: LevelFilter,
    capacity: usize,
    panics: bool,
    #[cfg(feature = "http")]
    serve: Option<String>,
}

impl Init {
    /// What the console shows when `RUST_LOG` is not set: INFO and above.
    pub const DEFAULT_CONSOLE: LevelFilter = LevelFilter::INFO;
    /// What memory keeps: DEBUG and above.
    pub const DEFAULT_MEMORY: LevelFilter = LevelFilter::DEBUG;
    /// The global buffer's capacity: 1 MiB, some thousands of lines.
    pub const DEFAULT_CAPACITY: usize = 1 << 20;

    /// The [default values](Init#default-values).
    pub fn new() -> Init {
        Init {
            console: Init::DEFAULT_CONSOLE,
            memory: Init::DEFAULT_MEMORY,
            capacity: Init::DEFAULT_CAPACITY,
            panics: true,
            #[cfg(feature = "http")]
            serve: None,
        }
    }

    /// What the console shows when `RUST_LOG` is not set (`RUST_LOG` wins when it is);
    /// `LevelFilter::OFF` for nothing.
    pub fn console(mut self, level: LevelFilter) -> Init {
        self.console = level;
        self
    }

    /// What the buffer keeps, whatever the console shows.
    pub fn memory(mut self, level: LevelFilter) -> Init {
        self.memory = level;
        self
    }

    /// The global buffer's capacity in bytes.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0 (see [`Builder::capacity`](crate::Builder::capacity)).
    #[track_caller]
    pub fn capacity(mut self, bytes: usize) -> Init {
        crate::core::check_capacity(bytes);
        self.capacity = bytes;
        self
    }

    /// Whether each panic is appended to the buffer as an ERROR entry ([`PanicHook`]).
    pub fn panics(mut self, on: bool) -> Init {
        self.panics = on;
        self
    }

    /// Also serves the buffer to browsers on `address` (`"127.0.0.1:9000"`), with
    /// [`http::Config`](crate::http::Config)'s defaults (loopback hosts only), from a thread of
    /// its own for the rest of the process ([`Config::spawn`](crate::http::Config::spawn)). The
    /// address is logged at INFO, target `memtail`.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn serve(mut self, address: impl Into<String>) -> Init {
        self.serve = Some(address.into());
        self
    }

    /// Sets everything up; see [`init`].
    ///
    /// # Panics
    ///
    /// When [`try_init`](Init::try_init) fails.
    pub fn init(self) -> &'static LogBuffer {
        match self.try_init() {
            Ok(log) => log,
            Err(error) => panic!("memtail::init: {error}"),
        }
    }

    /// Sets everything up; see [`init`].
    ///
    /// # Errors
    ///
    /// [`InitError`]: a global `tracing` subscriber, or the global buffer, exists already (then
    /// nothing is set up), or (feature `http`) the address cannot be served (then the rest is
    /// set up, and the buffer can be had from [`global`](crate::global)).
    pub fn try_init(self) -> Result<&'static LogBuffer, InitError> {
        if tracing_core::dispatcher::has_been_set() {
            return Err(InitError::SubscriberExists);
        }
        let log = crate::init_global(LogBuffer::builder().capacity(self.capacity))
            .map_err(|_| InitError::BufferExists)?;
        let console = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").map_or(true, |value| value.is_empty()),
            )
            .with_filter(
                EnvFilter::builder()
                    .with_default_directive(self.console.into())
                    .from_env_lossy(),
            );
        let subscriber = tracing_subscriber::registry()
            .with(console)
            .with(log.layer().with_filter(self.memory));
        tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(subscriber))
            .map_err(|_| InitError::SubscriberExists)?;
        if self.panics {
            PanicHook::new(log).install();
        }
        #[cfg(feature = "http")]
        if let Some(address) = self.serve {
            serve(log, &address)?;
        }
        Ok(log)
    }
}

/// Serves `log` on `address` for the rest of the process.
#[cfg(feature = "http")]
fn serve(log: &'static LogBuffer, address: &str) -> Result<(), InitError> {
    static SERVER: std::sync::OnceLock<crate::http::Server> = std::sync::OnceLock::new();
    let server = crate::http::Config::new()
        .spawn(log.clone(), address)
        .map_err(|error| InitError::Serve(address.to_owned(), error.to_string()))?;
    let local = server.local_addr();
    // The first `try_init` to get here is the only one (the subscriber is set once).
    let _ = SERVER.set(server);
    tracing::info!(target: "memtail", "the log's viewer is at http://{local}/");
    Ok(())
}

impl Default for Init {
    fn default() -> Init {
        Init::new()
    }
}

impl fmt::Debug for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Init");
        f.field("console", &self.console)
            .field("memory", &self.memory)
            .field("capacity", &self.capacity)
            .field("panics", &self.panics);
        #[cfg(feature = "http")]
        f.field("serve", &self.serve);
        f.finish()
    }
}

/// Why [`Init::try_init`] did not set everything up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// A global `tracing` subscriber was set already.
    SubscriberExists,
    /// The global buffer was made already ([`global`](crate::global) or
    /// [`init_global`](crate::init_global)).
    BufferExists,
    /// The address could not be served: the address, and why.
    Serve(String, String),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::SubscriberExists => {
                f.write_str("a global tracing subscriber is set already")
            }
            InitError::BufferExists => f.write_str(
                "the global memtail buffer was made already (by init_global or a use of global)",
            ),
            InitError::Serve(address, reason) => write!(f, "cannot serve on {address}: {reason}"),
        }
    }
}

impl std::error::Error for InitError {}
