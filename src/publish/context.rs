//! The flight recorder's context on error: the entries before each error, printed when it comes.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use super::{PublishError, Publisher, PublisherHandle};
use crate::{Entry, Level, LogBuffer};

/// How often the context printer reads the ring.
const INTERVAL: Duration = Duration::from_millis(20);

impl LogBuffer {
    /// Writes the `before` entries that came before each entry at `level` or more severe, and
    /// that entry, to `out` (`std::io::stderr()`, say), once, as it arrives: the debug context of
    /// an error, kept in memory until it is wanted. Entries without a level (written through
    /// `io::Write`, not `tracing`) are context, never a trigger.
    ///
    /// It is a [publisher](crate::publish) named `on-error`: a position in the ring, read by a
    /// thread of its own every 20 ms, so the writers of the log do nothing for it. Each entry
    /// is written at most once: the context of an error starts after the previous error printed.
    /// Each block starts with a line naming the entry that triggered it:
    ///
    /// ```text
    /// --- memtail: entry 41 is ERROR; the 3 entries before it, then it ---
    /// ```
    ///
    /// The context is at most `before` entries and at most the buffer's capacity in bytes. A
    /// write to `out` that fails part-way is retried whole, so that block may be printed twice.
    ///
    /// Stop it with the returned handle (dropping the handle stops it too); its
    /// [`stats`](PublisherHandle::stats) count entries the ring evicted before it read them
    /// (`dropped_upstream`), which a context then lacks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use memtail::Level;
    ///
    /// # #[derive(Clone, Default)]
    /// # struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    /// # impl std::io::Write for Shared {
    /// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
    /// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # let out = Shared::default();
    /// let buf = memtail::LogBuffer::with_capacity(1 << 20);
    /// // `std::io::stderr()` in a program; a shared Vec here.
    /// let printer = buf.on_error(Level::Error, 2, out.clone());
    /// buf.append_level(b"connecting\n", Level::Debug);
    /// buf.append_level(b"retrying\n", Level::Debug);
    /// buf.append_level(b"gave up\n", Level::Error);
    /// printer.stop(Duration::from_secs(5));
    /// let printed = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    /// assert_eq!(
    ///     printed,
    ///     "--- memtail: entry 2 is ERROR; the 2 entries before it, then it ---\n\
    ///      connecting\nretrying\ngave up\n"
    /// );
    /// ```
    pub fn on_error<W: Write + Send + 'static>(
        &self,
        level: Level,
        before: usize,
        out: W,
    ) -> PublisherHandle {
        self.publisher(ErrorContext {
            least: level,
            before,
            max_bytes: self.capacity(),
            bytes: 0,
            out,
            context: VecDeque::with_capacity(before.min(1024)),
        })
        .name("on-error")
        .interval(INTERVAL)
        .start()
    }
}

struct ErrorContext<W> {
    least: Level,
    before: usize,
    /// The context is kept to the ring's capacity in bytes too, however many entries asked.
    max_bytes: usize,
    bytes: usize,
    out: W,
    context: VecDeque<Entry>,
}

impl<W: Write + Send + 'static> Publisher for ErrorContext<W> {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        for (index, entry) in batch.iter().enumerate() {
            if entry.level().is_some_and(|level| level >= self.least) {
                self.print(entry)
                    .map_err(|error| PublishError::new(error).with_delivered(index))?;
                self.context.clear();
                self.bytes = 0;
            } else if self.before > 0 {
                self.bytes += entry.len();
                self.context.push_back(entry.clone());
                while self.context.len() > self.before || self.bytes > self.max_bytes {
                    let Some(oldest) = self.context.pop_front() else {
                        break;
                    };
                    self.bytes -= oldest.len();
                }
            }
        }
        Ok(batch.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> ErrorContext<W> {
    /// One block: the heading, the context, the entry; in one write.
    fn print(&mut self, entry: &Entry) -> std::io::Result<()> {
        let level = entry.level().map_or("", Level::as_str);
        let mut block = format!(
            "--- memtail: entry {} is {level}; the {} entries before it, then it ---\n",
            entry.seq(),
            self.context.len()
        )
        .into_bytes();
        for line in self.context.iter().chain(std::iter::once(entry)) {
            crate::dump::write_line(&mut block, line)?;
        }
        self.out.write_all(&block)?;
        self.out.flush()
    }
}
