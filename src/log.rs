//! `log` without env_logger (feature `log`): records of the [`log`] crate straight into a
//! [`LogBuffer`], one entry per record, with its level, target and time, filtered by
//! `RUST_LOG`-style directives, and printed to standard error too if you like.
//!
//! Each entry is one line, `LEVEL TARGET: MESSAGE`, the level padded to five characters, the
//! same form as memtail's tracing [`Layer`](crate::Layer) gives:
//!
//! ```text
//! INFO  my_app::db: connected to db-1 in 12 ms
//! WARN  my_app::api: slow request /items (820 ms)
//! ```
//!
//! The time is kept beside the text and shown where people read (see [`render`]).
//! A message with line breaks stays one entry; other control characters are written as escapes
//! (`\x1b`), so that no record can drive a terminal. Formatting happens on the logging thread, into a
//! per-thread buffer (no allocation once the thread has logged a record of that size), and never
//! under the buffer's lock.
//!
//! Directives are env_logger's, parsed by the same crate (`env_filter`): `debug`,
//! `my_app=debug,hyper=warn`, `info,my_app::db=trace`, `off`. (A `/text` suffix keeps only
//! messages containing `text`; memtail builds `env_filter` without its regular expressions.)
//!
//! # Examples
//!
//! Everything from DEBUG up in memory; on standard error, what `RUST_LOG` says, INFO when it is
//! not set:
//!
//! ```
//! let buf = memtail::LogBuffer::with_capacity(1 << 20);
//! memtail::log::Builder::new(&buf)
//!     .filter("debug")
//!     .stderr_from_env("RUST_LOG", "info")
//!     .init()?;
//! log::info!(target: "my_app::db", "connected to {} in {} ms", "db-1", 12);
//! log::trace!("too detailed: filtered out");
//! assert_eq!(buf.snapshot(), "INFO  my_app::db: connected to db-1 in 12 ms\n");
//! let entry = &buf.entries()[0];
//! assert_eq!(entry.level(), Some(memtail::Level::Info));
//! assert!(entry.time().is_some());
//! # Ok::<(), memtail::log::Error>(())
//! ```

use std::fmt::{self, Write as _};
use std::io::Write as _;

use ::log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use crate::ring::Tags;
use crate::write::{give_back_scratch, take_scratch, Line};
use crate::{render, Level, LogBuffer};

/// A [`log::Log`] that appends each record to a [`LogBuffer`], and prints it to standard
/// error if it was built to; for composing with other loggers (a logger that sends to two
/// places), or for [`log::set_logger`] yourself. [`init`] and [`Builder::init`] install one.
#[derive(Clone)]
pub struct Logger {
    buf: LogBuffer,
    memory: env_filter::Filter,
    /// What is also printed to standard error.
    stderr: Option<env_filter::Filter>,
}

impl Logger {
    /// A logger into `buf` that keeps records at `filter` or more severe.
    ///
    /// # Examples
    ///
    /// ```
    /// use log::{Log, LevelFilter};
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let logger = memtail::log::Logger::new(&buf, LevelFilter::Info);
    /// // Called directly here; `log::set_boxed_logger`, or a logger of yours, would call it.
    /// logger.log(&log::Record::builder()
    ///     .args(format_args!("cache warmed"))
    ///     .level(log::Level::Info)
    ///     .target("my_app::cache")
    ///     .build());
    /// logger.log(&log::Record::builder()
    ///     .args(format_args!("too detailed"))
    ///     .level(log::Level::Debug)
    ///     .build());
    ///
    /// let entries = buf.entries();
    /// assert_eq!(entries.len(), 1);
    /// assert_eq!(&entries[0][..], b"INFO  my_app::cache: cache warmed\n");
    /// assert_eq!(entries[0].target(), Some("my_app::cache"));
    /// ```
    pub fn new(buf: &LogBuffer, filter: LevelFilter) -> Logger {
        Logger {
            buf: buf.clone(),
            memory: env_filter::Builder::new().filter_level(filter).build(),
            stderr: None,
        }
    }

    /// The most detailed level this logger takes, in memory or on standard error: what
    /// [`log::set_max_level`] should be given when it is the process's logger.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let logger = memtail::log::Builder::new(&buf).filter("warn").stderr("info").build()?;
    /// assert_eq!(logger.max_level(), log::LevelFilter::Info);
    /// # Ok::<(), memtail::log::Error>(())
    /// ```
    pub fn max_level(&self) -> LevelFilter {
        let stderr = self
            .stderr
            .as_ref()
            .map_or(LevelFilter::Off, |f| f.filter());
        self.memory.filter().max(stderr)
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.memory.enabled(metadata)
            || self
                .stderr
                .as_ref()
                .is_some_and(|stderr| stderr.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        let memory = self.memory.matches(record);
        let stderr = self
            .stderr
            .as_ref()
            .is_some_and(|stderr| stderr.matches(record));
        if !memory && !stderr {
            return;
        }
        let level = record.level();
        let time = self.buf.now();
        // Control characters written as escapes, as the tracing layer writes them.
        let mut escaped = Line(take_scratch());
        let written = write!(
            escaped,
            "{:<5} {}: {}",
            level,
            record.target(),
            record.args()
        );
        let mut line = escaped.0;
        if written.is_err() {
            // A `Display` that failed: keep what it wrote, and say so, rather than lose it.
            line.extend_from_slice(b" [formatting failed]");
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        if memory {
            let tags = Tags {
                level: Level::encode(Some(Level::from(level))),
                time,
                target: crate::target::intern(record.target()),
            };
            self.buf.append_tags(&line, tags);
        }
        if stderr {
            // One write of the whole line, as people read it: its time, then the entry.
            let mut shown = take_scratch();
            let at = crate::time::from_unix_nanos(time);
            if render::write_line(&mut shown, Some(at), &line).is_ok() {
                let _ = std::io::stderr().lock().write_all(&shown);
            }
            give_back_scratch(shown);
        }
        give_back_scratch(line);
    }

    fn flush(&self) {}
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("memory", &self.memory)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}

impl From<::log::Level> for Level {
    fn from(level: ::log::Level) -> Level {
        match level {
            ::log::Level::Error => Level::Error,
            ::log::Level::Warn => Level::Warn,
            ::log::Level::Info => Level::Info,
            ::log::Level::Debug => Level::Debug,
            ::log::Level::Trace => Level::Trace,
        }
    }
}

/// Makes a [`Logger`] into `buf` the process's logger, and `filter` the `log` crate's maximum
/// level. [`Builder`] takes directives and prints to standard error too.
///
/// # Errors
///
/// When a logger was set already (by another `init`, env_logger, ...).
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::new();
/// memtail::log::init(&buf, log::LevelFilter::Debug)?;
/// log::warn!(target: "my_app", "retrying");
/// assert_eq!(&buf.entries()[0][..], b"WARN  my_app: retrying\n");
/// assert_eq!(buf.entries()[0].level(), Some(memtail::Level::Warn));
///
/// // The process has a logger now: a second one is refused.
/// assert!(memtail::log::init(&buf, log::LevelFilter::Info).is_err());
/// # Ok::<(), log::SetLoggerError>(())
/// ```
pub fn init(buf: &LogBuffer, filter: LevelFilter) -> Result<(), SetLoggerError> {
    ::log::set_boxed_logger(Box::new(Logger::new(buf, filter)))?;
    ::log::set_max_level(filter);
    Ok(())
}

/// Builds a [`Logger`]: what goes into memory and what goes to standard error, each with
/// `RUST_LOG`-style directives.
///
/// # Default values
///
/// | setting | default |
/// |---|---|
/// | [`filter`](Builder::filter) (memory) | `"debug"`: every record at DEBUG or above |
/// | [`stderr`](Builder::stderr), [`stderr_from_env`](Builder::stderr_from_env) | nothing printed |
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::new();
/// let logger = memtail::log::Builder::new(&buf)
///     .filter("info,my_app::db=trace")
///     .build()?;
/// # use log::Log;
/// let record = |target, level| {
///     log::Record::builder().target(target).level(level).args(format_args!("x")).build()
/// };
/// logger.log(&record("my_app::db", log::Level::Trace));
/// logger.log(&record("my_app::api", log::Level::Debug)); // below info: not kept
/// assert_eq!(buf.entries().len(), 1);
/// # Ok::<(), memtail::log::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` or `init` is called"]
pub struct Builder {
    buf: LogBuffer,
    memory: String,
    stderr: Option<Directives>,
}

/// Where the directives for standard error come from.
enum Directives {
    Given(String),
    /// An environment variable, or the default when it is not set.
    Env(String, String),
}

impl Builder {
    /// The directives for memory when none are given: DEBUG and above.
    pub const DEFAULT_FILTER: &'static str = "debug";

    /// A builder of a logger into `buf`, with the [default values](Builder#default-values).
    pub fn new(buf: &LogBuffer) -> Builder {
        Builder {
            buf: buf.clone(),
            memory: Builder::DEFAULT_FILTER.to_owned(),
            stderr: None,
        }
    }

    /// What goes into memory, as `RUST_LOG`-style directives (`"debug"`,
    /// `"my_app=debug,hyper=warn"`). Checked by [`build`](Builder::build).
    pub fn filter(mut self, directives: &str) -> Builder {
        self.memory = directives.to_owned();
        self
    }

    /// Also prints what `directives` allow to standard error, as people read it (with its time:
    /// `2026-12-04T14:39:53.123456Z INFO  my_app: ready`). Checked by
    /// [`build`](Builder::build).
    pub fn stderr(mut self, directives: &str) -> Builder {
        self.stderr = Some(Directives::Given(directives.to_owned()));
        self
    }

    /// Also prints to standard error what the directives in the environment variable `var`
    /// (`RUST_LOG`, say) allow, or `default` when it is not set. As env_logger does, directives
    /// of the variable that cannot be parsed are ignored with a warning on standard error: a
    /// mistyped `RUST_LOG` does not stop the program.
    pub fn stderr_from_env(mut self, var: &str, default: &str) -> Builder {
        self.stderr = Some(Directives::Env(var.to_owned(), default.to_owned()));
        self
    }

    /// The logger.
    ///
    /// # Errors
    ///
    /// [`Error::Directives`] when directives given to [`filter`](Builder::filter) or
    /// [`stderr`](Builder::stderr) cannot be parsed.
    pub fn build(self) -> Result<Logger, Error> {
        let memory = parse(&self.memory)?;
        let stderr = match self.stderr {
            None => None,
            Some(Directives::Given(directives)) => Some(parse(&directives)?),
            Some(Directives::Env(var, default)) => Some(match std::env::var(&var) {
                Ok(directives) => env_filter::Builder::new().parse(&directives).build(),
                Err(_) => parse(&default)?,
            }),
        };
        Ok(Logger {
            buf: self.buf,
            memory,
            stderr,
        })
    }

    /// Builds the logger and makes it the process's logger, with the `log` crate's maximum level
    /// set to the most detailed level it takes.
    ///
    /// # Errors
    ///
    /// As [`build`](Builder::build), and [`Error::AlreadySet`] when the process has a logger
    /// already.
    pub fn init(self) -> Result<(), Error> {
        let logger = self.build()?;
        let max = logger.max_level();
        ::log::set_boxed_logger(Box::new(logger)).map_err(|_| Error::AlreadySet)?;
        ::log::set_max_level(max);
        Ok(())
    }
}

fn parse(directives: &str) -> Result<env_filter::Filter, Error> {
    let mut builder = env_filter::Builder::new();
    match builder.try_parse(directives) {
        Ok(builder) => Ok(builder.build()),
        Err(error) => Err(Error::Directives {
            directives: directives.to_owned(),
            reason: error.to_string(),
        }),
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("filter", &self.memory)
            .finish_non_exhaustive()
    }
}

/// The error of [`Builder::build`] and [`Builder::init`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Directives that could not be parsed.
    Directives {
        /// The directives as given.
        directives: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The process has a logger already.
    AlreadySet,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Directives { directives, reason } => {
                write!(f, "bad log directives {directives:?}: {reason}")
            }
            Error::AlreadySet => f.write_str("a logger was set already"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_directives_are_an_error_and_levels_combine() {
        let buf = LogBuffer::new();
        let error = Builder::new(&buf)
            .filter("my_app=loud")
            .build()
            .unwrap_err();
        assert!(matches!(error, Error::Directives { .. }), "{error:?}");
        assert!(error
            .to_string()
            .starts_with("bad log directives \"my_app=loud\": "));
        let logger = Builder::new(&buf)
            .filter("warn,my_app=trace")
            .stderr("error")
            .build()
            .unwrap();
        assert_eq!(logger.max_level(), LevelFilter::Trace);
        let record = |target, level| {
            logger.log(
                &Record::builder()
                    .target(target)
                    .level(level)
                    .args(format_args!("{target} {level}"))
                    .build(),
            );
        };
        record("my_app::db", ::log::Level::Trace);
        record("other", ::log::Level::Debug); // neither kept nor printed
        record("other", ::log::Level::Warn);
        let kept: Vec<String> = buf
            .entries()
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect();
        assert_eq!(
            kept,
            [
                "TRACE my_app::db: my_app::db TRACE\n",
                "WARN  other: other WARN\n"
            ]
        );
        assert!(buf.entries().iter().all(|e| e.time().is_some()));
    }

    #[test]
    fn a_record_is_one_entry_with_its_level_and_target() {
        let buf = LogBuffer::new();
        let logger = Logger::new(&buf, LevelFilter::Info);
        let args = format_args!("two\nlines");
        let record = Record::builder()
            .level(::log::Level::Warn)
            .target("app::part")
            .args(args)
            .build();
        logger.log(&record);
        let debug = Record::builder()
            .level(::log::Level::Debug)
            .target("app")
            .args(format_args!("filtered"))
            .build();
        logger.log(&debug);
        logger.log(
            &Record::builder()
                .level(::log::Level::Error)
                .target("app\x1b[2J")
                .args(format_args!("{}", "\x1b]0;pwned\x07\u{9b}x"))
                .build(),
        );
        let entries = buf.entries();
        assert_eq!(entries.len(), 2);
        assert_eq!(&entries[0][..], b"WARN  app::part: two\nlines\n");
        assert_eq!(
            &entries[1][..],
            b"ERROR app\\x1b[2J: \\x1b]0;pwned\\x07\\u{9b}x\n"
        );
        assert_eq!(entries[0].level(), Some(Level::Warn));
    }
}
