//! The flight recorder's context on error: the entries before each error, printed when it comes.

// Implementation notes.
//
// A printer is a position in the ring that reads only when an error arrives. The writer of an
// entry at the level of some printer or above counts it (per level, under the lock it holds
// anyway) and, once the lock is released, wakes the printers that want it with a `try_send` on a
// channel of one; every other entry costs the writer one comparison of its level byte. Woken,
// the printer scans the index (one word per entry, no bytes) from where it last looked, in
// bounded steps, and copies out each error with the entries before it. The writers' count tells
// it how many errors the ring evicted before it could look: those are reported, not lost
// silently.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::core::{Ask, Shared};
use crate::worker::Worker;
use crate::{Entry, Level, LogBuffer};

/// How long dropping an [`ErrorContext`] waits for its last round of printing.
const DROP_TIMEOUT: Duration = Duration::from_secs(5);

/// A printer's registration; dropping it unregisters.
struct Watch {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.unwatch_alarm(self.id);
    }
}

impl LogBuffer {
    /// Writes the `before` entries that came before each entry at `level` or more severe, and
    /// that entry, to `out` (`std::io::stderr()`, say), once, as it arrives: the debug context of
    /// an error, kept in memory until it is wanted. Entries without a level (written through
    /// `io::Write`, not `tracing` or `log`) are context, never a trigger.
    ///
    /// The printer is a position in the ring with a thread of its own (`memtail-on-error`) that
    /// sleeps until an error arrives. Writers pay one comparison per entry for it; an entry at
    /// `level` or above also costs its writer a short lock of the printers' list and a wake-up
    /// (so `Level::Trace` makes every entry with a level pay that). The printer does not read
    /// the ring otherwise. Each block starts with a line naming the entry that triggered it,
    /// then the entries as [`render`](crate::render) shows them (with their times, when they
    /// have them):
    ///
    /// ```text
    /// --- memtail: entry 41 is ERROR; the 3 entries before it, then it ---
    /// ```
    ///
    /// **Context per request.** An error logged inside a span through memtail's
    /// [`Layer`](crate::Layer) gets the entries of its own span tree as context: those logged
    /// in the same root span (the request, in a server that gives each request a span), and in
    /// any span under it, and no others, so that the lines of concurrent requests do not mix.
    /// An error outside any span gets the entries outside any span before it. (In a log without
    /// spans, that is simply the entries before it.) Each entry is printed at most once: the
    /// context of an error starts after the previous error of its request. (A printer remembers
    /// the last error of 4096 requests; past that, contexts do not reach back before the
    /// oldest error it forgot.) A panic entry ([`PanicHook`](crate::PanicHook)) has no span: it
    /// gets the entries outside any span. The layer keeps 24 bytes a retained entry for this,
    /// and for [`Entry::span_id`](crate::Entry::span_id), once any entry was logged in a span.
    ///
    /// Nothing is lost silently. The printer wakes within a scheduler's wake-up of the error;
    /// if the ring evicts part of a context before then (a small ring written very fast), the
    /// heading says how many entries are missing (`..., then it (2 more before them were
    /// evicted unread) ---`), and if it evicts the error itself, a line says so where it would
    /// have been (`--- memtail: 1 entry at ERROR or above was evicted before it could be printed
    /// ---`). [`ErrorContext::stats`] counts both, and writes to `out` that failed.
    ///
    /// Stop it with the returned handle: [`stop`](ErrorContext::stop) prints what was written
    /// before it was called and waits for the thread (dropping the handle does the same, waiting
    /// at most 5 s). It stops by itself once every handle to the buffer is gone, after printing
    /// the errors written until then.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
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
    /// let stats = printer.stop(Duration::from_secs(5));
    /// assert_eq!((stats.printed, stats.missed), (1, 0));
    /// let printed = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    /// assert_eq!(
    ///     printed,
    ///     "--- memtail: entry 2 is ERROR; the 2 entries before it, then it ---\n\
    ///      connecting\nretrying\ngave up\n"
    /// );
    /// ```
    ///
    /// Two requests whose lines interleave, through memtail's layer: each error comes with its
    /// own request's lines (each line after its time, which is cut off here).
    ///
    /// ```
    /// # #[cfg(feature = "tracing")] {
    /// # use std::time::Duration;
    /// # #[derive(Clone, Default)]
    /// # struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    /// # impl std::io::Write for Shared {
    /// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
    /// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # let out = Shared::default();
    /// use tracing_subscriber::prelude::*;
    ///
    /// let buf = memtail::LogBuffer::with_capacity(1 << 20);
    /// let printer = buf.on_error(memtail::Level::Error, 10, out.clone());
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(buf.layer()), || {
    ///     let (one, two) = (tracing::info_span!("req", id = 1), tracing::info_span!("req", id = 2));
    ///     one.in_scope(|| tracing::info!(target: "app", "one: parsed"));
    ///     two.in_scope(|| tracing::info!(target: "app", "two: parsed"));
    ///     one.in_scope(|| tracing::error!(target: "app", "one: failed"));
    /// });
    /// printer.stop(Duration::from_secs(5));
    /// let printed = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    /// let mut lines = printed.lines();
    /// assert_eq!(lines.next(), Some("--- memtail: entry 2 is ERROR; the 1 entries before it, then it ---"));
    /// let lines: Vec<&str> = lines.map(|line| line.split_at(28).1).collect();
    /// assert_eq!(lines, ["INFO  req{id=1}: app: one: parsed", "ERROR req{id=1}: app: one: failed"]);
    /// # }
    /// ```
    pub fn on_error<W: Write + Send + 'static>(
        &self,
        level: Level,
        before: usize,
        out: W,
    ) -> ErrorContext {
        let shared = Arc::clone(self.shared());
        let least = Level::encode(Some(level));
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        // Registered and counted from in one step, so that no error falls between.
        let (id, start, baseline) = shared.watch_alarm(least, wake_tx);
        let stats = Arc::new(Mutex::new(ErrorContextStats::default()));
        let printer = Printer {
            watch: Watch {
                shared: Arc::clone(&shared),
                id,
            },
            least,
            before: u64::try_from(before).unwrap_or(u64::MAX),
            out,
            floors: HashMap::new(),
            forgotten: start,
            scanned: start,
            baseline,
            accounted: 0,
            pending_missed: 0,
            stats: Arc::clone(&stats),
        };
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let worker = Worker::spawn("memtail-on-error".into(), move || {
            printer.run(&wake_rx, &stop_rx);
        })
        .expect("memtail: could not start the on-error thread");
        ErrorContext {
            stats,
            stop: Some(stop_tx),
            worker: Some(worker),
        }
    }
}

/// A running [`on_error`](LogBuffer::on_error) printer.
/// [`stop`](ErrorContext::stop) it to print what is pending and wait for its thread; dropping
/// the handle does the same, waiting at most 5 s.
#[must_use = "dropping the handle stops the printer"]
pub struct ErrorContext {
    stats: Arc<Mutex<ErrorContextStats>>,
    /// Dropped to stop the thread.
    stop: Option<Sender<()>>,
    worker: Option<Worker>,
}

impl ErrorContext {
    /// The printer's counters now, brought up to date as it prints.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// let printer = buf.on_error(memtail::Level::Error, 5, std::io::sink());
    /// let now = printer.stats();
    /// assert_eq!((now.printed, now.missed, now.failed), (0, 0, 0));
    /// assert!(!now.stopped);
    /// ```
    pub fn stats(&self) -> ErrorContextStats {
        self.stats.lock().clone()
    }

    /// Stops the printer: prints every error written before this call (that the ring still
    /// holds) with its context, flushes, waits for the thread and returns the final counters.
    ///
    /// Returns after `timeout` at the latest: if a write to the output is still blocked then
    /// (a full pipe, say), the counters are those of that moment, with `stopped` false, and the
    /// thread finishes on its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let printer = buf.on_error(memtail::Level::Warn, 5, Vec::new());
    /// buf.append_level(b"low on disk\n", memtail::Level::Warn);
    /// let stats = printer.stop(Duration::from_secs(5));
    /// assert!(stats.stopped);
    /// assert_eq!(stats.printed, 1);
    /// ```
    pub fn stop(mut self, timeout: Duration) -> ErrorContextStats {
        self.shutdown(timeout)
    }

    fn shutdown(&mut self, timeout: Duration) -> ErrorContextStats {
        let Some(worker) = self.worker.take() else {
            return self.stats();
        };
        drop(self.stop.take());
        worker.join_until(crate::worker::deadline(timeout));
        self.stats()
    }
}

impl Drop for ErrorContext {
    fn drop(&mut self) {
        self.shutdown(DROP_TIMEOUT);
    }
}

impl fmt::Debug for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorContext")
            .field("running", &self.worker.is_some())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What an [`on_error`](LogBuffer::on_error) printer did. Every entry at its level or above
/// written after it started and before [`ErrorContext::stop`] was called is in exactly one of
/// `printed`, `missed` and `failed`, once `stop` has returned with `stopped` true. (If `out`
/// panics, the thread ends there, `stopped` stays false and the rest is not counted.) "Printed"
/// means `out` took the block: a `BufWriter` that fails to flush it later loses it, and
/// `last_error` says so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorContextStats {
    /// Errors printed, each with its context.
    pub printed: u64,
    /// Errors the ring evicted before the printer could read them: the ring is too small for
    /// how fast it is written. The output says so where they would have been.
    pub missed: u64,
    /// Entries of printed contexts that the ring evicted before the printer read them; each
    /// block's heading says how many it lacks. (After a missed error, the next context starts
    /// no earlier than the oldest entry retained: where the missed error was is not known. In
    /// a log with spans, a context cut there counts at most the entries evicted since.)
    pub context_missed: u64,
    /// Errors whose block could not be written to the output.
    pub failed: u64,
    /// The text of the last failed write, if any.
    pub last_error: Option<String>,
    /// Whether the printer's thread has finished.
    pub stopped: bool,
}

/// The printer's thread.
struct Printer<W> {
    watch: Watch,
    least: u8,
    before: u64,
    out: W,
    /// For each group of entries (a request's span tree, or the entries without a span) whose
    /// error was printed: where the group's next context may start, as a sequence number and as
    /// an ordinal in the group (one past that error). At most [`MAX_GROUPS`]; see `forgotten`.
    floors: HashMap<u64, (u64, u64)>,
    /// No context reaches back before this sequence number: past a group the printer forgot,
    /// or errors the ring evicted unseen (where they were is not known).
    forgotten: u64,
    /// Entries before this one were looked at for errors already.
    scanned: u64,
    /// The writers' count of errors when the printer started.
    baseline: u64,
    /// Errors printed, missed or failed so far.
    accounted: u64,
    /// Errors found missed and not yet said in the output.
    pending_missed: u64,
    stats: Arc<Mutex<ErrorContextStats>>,
}

impl<W: Write> Printer<W> {
    fn run(mut self, wake: &Receiver<()>, stop: &Receiver<()>) {
        loop {
            let stopping = crossbeam_channel::select! {
                recv(wake) -> _ => false,
                recv(stop) -> _ => true,
            };
            let closed = self.print_new();
            if stopping || closed {
                break;
            }
        }
        let _ = self.out.flush();
        self.stats.lock().stopped = true;
    }

    /// Looks for errors written since the last look and prints each with its context; returns
    /// whether the buffer is closed.
    fn print_new(&mut self) -> bool {
        let closed = loop {
            // A step at a time: the read lock is held for at most `SCAN_STEP` index words, and
            // the errors found are printed before the next step.
            let scan = self.watch.shared.scan_levels(self.scanned, self.least);
            let errors = scan.found;
            self.scanned = scan.scanned;
            let end = scan.caught_up.map(|(counted, first_retained, closed)| {
                // Caught up, under the same lock as the writers' count: what it has beyond the
                // errors seen was evicted unseen.
                let missed =
                    (counted - self.baseline).saturating_sub(self.accounted + errors.len() as u64);
                if missed > 0 {
                    // Where the evicted errors were is not known: the next context starts no
                    // earlier than the oldest entry retained (which every error found in this
                    // step is, or comes after).
                    self.forgotten = self.forgotten.max(first_retained);
                }
                (missed, closed)
            });
            if let Some((missed, _)) = end {
                // Older than the errors of this step: said before them.
                self.accounted += missed;
                self.pending_missed += missed;
            }
            self.accounted += errors.len() as u64;
            for (seq, group, ordinal) in errors {
                self.print(seq, group, ordinal);
            }
            if let Some((_, closed)) = end {
                break closed;
            }
        };
        self.report_missed();
        if let Err(error) = self.out.flush() {
            self.stats.lock().last_error = Some(error.to_string());
        }
        closed
    }

    /// Says in the output, and counts, that the errors pending as missed were evicted unseen.
    fn report_missed(&mut self) {
        let missed = std::mem::take(&mut self.pending_missed);
        if missed == 0 {
            return;
        }
        let level = Level::decode(self.least).map_or("", Level::as_str);
        let line = if missed == 1 {
            format!("--- memtail: 1 entry at {level} or above was evicted before it could be printed ---\n")
        } else {
            format!("--- memtail: {missed} entries at {level} or above were evicted before they could be printed ---\n")
        };
        self.stats.lock().missed += missed;
        // Written with the counters' lock released: a write that blocks (a pipe nobody reads)
        // must not block `stats()` or `stop()`.
        if let Err(error) = self.out.write_all(line.as_bytes()) {
            self.stats.lock().last_error = Some(error.to_string());
        }
    }

    /// Prints error `seq` with the entries of its group before it (`group` is its root span,
    /// 0 for an entry without a span; `ordinal` its place in the group), at most `before` of
    /// them, back to the group's previous error.
    fn print(&mut self, seq: u64, group: u64, ordinal: u64) {
        let (floor_seq, mut floor_ordinal) = self.floors.get(&group).copied().unwrap_or((0, 0));
        let lowest = floor_seq.max(self.forgotten);
        if group == 0 && ordinal == seq {
            // Every entry before this one is without a span (as in a log without spans at all):
            // sequence numbers are ordinals, and what is forgotten is not wanted.
            floor_ordinal = floor_ordinal.max(lowest);
        }
        let wanted = ordinal
            - ordinal
                .saturating_sub(self.before)
                .max(floor_ordinal)
                .min(ordinal);
        self.remember(group, seq, ordinal);
        let (entries, lost) = context_of(&self.watch.shared, seq, group, wanted, lowest);
        let Some((error, context)) = entries.split_last().filter(|(error, _)| error.seq() == seq)
        else {
            // Evicted between the look and the read.
            self.pending_missed += 1;
            return;
        };
        self.report_missed();
        let result = block(error, context, lost).and_then(|block| self.out.write_all(&block));
        let mut stats = self.stats.lock();
        stats.context_missed += lost;
        match result {
            Ok(()) => stats.printed += 1,
            Err(error) => {
                stats.failed += 1;
                stats.last_error = Some(error.to_string());
            }
        }
    }

    /// Notes that `group`'s next context starts after its error `seq`. Past [`MAX_GROUPS`]
    /// groups, the older half is forgotten (all at once, so that an error costs little however
    /// many requests had one), and no context reaches back before them any more: no entry is
    /// printed twice.
    fn remember(&mut self, group: u64, seq: u64, ordinal: u64) {
        self.floors.insert(group, (seq + 1, ordinal + 1));
        if self.floors.len() > MAX_GROUPS {
            let mut afters: Vec<u64> = self.floors.values().map(|&(after, _)| after).collect();
            let (_, &mut median, _) = afters.select_nth_unstable(MAX_GROUPS / 2);
            self.floors.retain(|_, &mut (after, _)| after > median);
            self.forgotten = self.forgotten.max(median);
        }
    }
}

/// The most groups (requests) whose last error a printer remembers.
const MAX_GROUPS: usize = 4096;

/// Error `seq` and the `wanted` entries of its `group` before it, oldest first, none before
/// `lowest`, as far as the ring retains them; and how many of the `wanted` the ring evicted
/// before they could be read. A look through the index for the group's entries holds the
/// read lock for at most [`SCAN_STEP`](crate::core::SCAN_STEP) index words at a time.
fn context_of(
    shared: &Shared,
    seq: u64,
    group: u64,
    wanted: u64,
    lowest: u64,
) -> (Vec<Entry>, u64) {
    let mut found: Vec<u64> = vec![seq];
    let mut next = seq;
    let evicted = loop {
        let (stopped, evicted) = shared.find_group(next, group, wanted, lowest, &mut found);
        next = stopped;
        if let Some(evicted) = evicted {
            break evicted;
        }
    };
    found.reverse();
    let context_wanted = found.len() - 1;
    let mut lost = (wanted - context_wanted as u64).min(evicted);
    // Read in runs of consecutive entries (with no span in the log, one run).
    let mut entries: Vec<Entry> = Vec::with_capacity(found.len());
    let mut at = 0;
    while at < found.len() {
        let mut run = 1;
        while at + run < found.len() && found[at + run] == found[at] + run as u64 {
            run += 1;
        }
        let read = shared.read(Ask {
            entries: run,
            ..Ask::all_from(found[at])
        });
        let wanted_run = &found[at..at + run];
        entries.extend(
            read.entries()
                .filter(|entry| wanted_run.binary_search(&entry.seq()).is_ok()),
        );
        at += run;
    }
    // Evicted between the look and the read (the error itself is the caller's to tell).
    let context_got = entries.iter().filter(|entry| entry.seq() != seq).count();
    lost += (context_wanted - context_got) as u64;
    (entries, lost)
}

/// One block: the heading, the context, the error.
fn block(error: &Entry, context: &[Entry], lost: u64) -> std::io::Result<Vec<u8>> {
    let level = error.level().map_or("", Level::as_str);
    let lost = if lost > 0 {
        format!(" ({lost} more before them were evicted unread)")
    } else {
        String::new()
    };
    let mut block = format!(
        "--- memtail: entry {} is {level}; the {} entries before it, then it{lost} ---\n",
        error.seq(),
        context.len()
    )
    .into_bytes();
    for line in context.iter().chain(std::iter::once(error)) {
        crate::render::write_line(&mut block, line.time(), line)?;
    }
    Ok(block)
}
