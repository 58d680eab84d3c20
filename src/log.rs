//! `log` without env_logger (feature `log`): records of the [`log`] crate straight into a
//! [`LogBuffer`], one entry per record, with the record's level as the entry's
//! [`Level`].
//!
//! Each entry is one line, `LEVEL TARGET: MESSAGE`, the level padded to five characters:
//!
//! ```text
//! INFO  my_app::db: connected to db-1 in 12 ms
//! WARN  my_app::api: slow request /items (820 ms)
//! ```
//!
//! A message with line breaks stays one entry. Formatting happens on the logging thread, into a
//! per-thread buffer (no allocation once the thread has logged a record of that size), and never
//! under the buffer's lock.
//!
//! # Examples
//!
//! ```
//! let buf = memtail::LogBuffer::with_capacity(1 << 20);
//! memtail::log::init(&buf, log::LevelFilter::Debug).expect("no other logger");
//! log::info!(target: "my_app::db", "connected to {} in {} ms", "db-1", 12);
//! log::trace!("too detailed: filtered out");
//! assert_eq!(buf.snapshot(), "INFO  my_app::db: connected to db-1 in 12 ms\n");
//! assert_eq!(buf.entries()[0].level(), Some(memtail::Level::Info));
//! ```

use std::io::Write;

use ::log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use crate::write::{give_back_scratch, take_scratch};
use crate::{Level, LogBuffer};

/// A [`log::Log`] that appends each record to a [`LogBuffer`]; for composing with
/// other loggers (a logger that sends to two places), or for [`log::set_logger`]
/// yourself. [`init`] installs one.
#[derive(Debug, Clone)]
pub struct Logger {
    buf: LogBuffer,
    filter: LevelFilter,
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
            filter,
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.filter
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = record.level();
        let mut line = take_scratch();
        let written = write!(line, "{:<5} {}: {}", level, record.target(), record.args());
        if written.is_err() {
            // A `Display` that failed: keep what it wrote, and say so, rather than lose it.
            line.extend_from_slice(b" [formatting failed]");
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let target = crate::target::intern(record.target());
        self.buf
            .append_tagged(&line, Some(Level::from(level)), target);
        give_back_scratch(line);
    }

    fn flush(&self) {}
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
/// level.
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let entries = buf.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(&entries[0][..], b"WARN  app::part: two\nlines\n");
        assert_eq!(entries[0].level(), Some(Level::Warn));
    }
}
