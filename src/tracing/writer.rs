//! `LogBuffer` as a `tracing_subscriber` writer: `fmt()`'s text, one entry per event.

use std::fmt;
use std::io;

use tracing_core::Metadata;
use tracing_subscriber::fmt::MakeWriter;

use crate::write::{give_back_scratch, take_scratch};
use crate::{Level, LogBuffer};

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> EventWriter<'a> {
        EventWriter {
            buffer: self,
            pending: take_scratch(),
            level: None,
            target: 0,
        }
    }

    /// Like `make_writer`, and the entry remembers the event's level ([`Entry::level`]).
    ///
    /// [`Entry::level`]: crate::Entry::level
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventWriter<'a> {
        EventWriter {
            buffer: self,
            pending: take_scratch(),
            level: Some(meta.level().into()),
            target: crate::target::intern(meta.target()),
        }
    }
}

/// A shared reference is a `MakeWriter` too, so that the global buffer plugs in as it is:
/// `.with_writer(memtail::global())`.
///
/// ```
/// let log: &'static memtail::LogBuffer = memtail::global();
/// let subscriber = tracing_subscriber::fmt()
///     .with_writer(log)
///     .with_ansi(false)
///     .without_time()
///     .finish();
/// tracing::subscriber::with_default(subscriber, || tracing::warn!("disk 91% full"));
///
/// let entry = log.entries().pop().unwrap();
/// assert!(String::from_utf8_lossy(&entry).ends_with("disk 91% full\n"));
/// assert_eq!(entry.level(), Some(memtail::Level::Warn));
/// ```
impl<'a, 'b: 'a> MakeWriter<'a> for &'b LogBuffer {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> EventWriter<'a> {
        (**self).make_writer()
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventWriter<'a> {
        (**self).make_writer_for(meta)
    }
}

/// The writer [`LogBuffer`] makes for one `tracing` event: it gathers the event's bytes and
/// appends them as one entry when dropped.
///
/// Formatting into it does not allocate once the thread has formatted an event of that size.
#[must_use = "the entry is appended when the writer is dropped"]
pub struct EventWriter<'a> {
    buffer: &'a LogBuffer,
    pending: Vec<u8>,
    level: Option<Level>,
    /// The event's target, interned (0: none).
    target: u16,
}

impl io::Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// Does nothing: the entry is appended whole when the writer is dropped, so that a formatter
    /// that flushes halfway still makes one entry.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        self.buffer
            .append_tagged(&self.pending, self.level, self.target);
        give_back_scratch(std::mem::take(&mut self.pending));
    }
}

impl fmt::Debug for EventWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWriter")
            .field("pending", &self.pending.len())
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}
