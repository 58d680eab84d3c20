//! The flight recorder's dump: the retained log, written out when something went wrong.

use std::any::Any;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::panic::Location;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::core::{Ask, Origin, Shared};
use crate::ring::Tags;
use crate::write::Line;
use crate::{render, Entry, Level, LogBuffer};

/// How long a dump waits for the buffer's lock before it says it could not have it: long enough
/// for any writer to finish an append, short enough for a panicking process.
const LOCK_WAIT: Duration = Duration::from_millis(200);

/// What the ring held when a dump took it.
struct Taken {
    capacity: usize,
    /// The entries shown, sharing one copy of their bytes.
    entries: Vec<Entry>,
    evicted: u64,
    cut: u64,
    written: u64,
    /// Entries subscribers and followers lost (full channels, or evicted before they read).
    dropped: u64,
    /// Retained entries, and the first one's sequence number (the entries shown may be fewer).
    retained: usize,
    first: u64,
}

/// What a dump shows at most: the last `entries`, the entries of the last `within`.
#[derive(Clone, Copy, Debug, Default)]
struct Limit {
    entries: Option<usize>,
    within: Option<Duration>,
}

impl LogBuffer {
    /// Writes what the buffer retains to `out`, for a person to read: a header line, then every
    /// retained entry, oldest first, each exactly once (one that does not end with a newline is
    /// given one), then a closing line. Returns how many entries it wrote.
    ///
    /// The header says the capacity, how many entries are retained (and their sequence numbers),
    /// how many were evicted or cut before, and how many subscribers and followers dropped
    /// ([`Stats::subscriber_drops`](crate::Stats::subscriber_drops) plus
    /// [`Stats::follower_missed`](crate::Stats::follower_missed)): the dump is honest about what
    /// it cannot show.
    /// The buffer is copied under its read lock (one copy of at most its capacity) and written
    /// out after, so a slow `out` holds up no writer.
    ///
    /// # Errors
    ///
    /// The first error `out` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::with_capacity(64);
    /// for n in 0..10 {
    ///     buf.append(format!("line {n}\n").as_bytes());
    /// }
    /// let mut out = Vec::new();
    /// let written = buf.dump(&mut out)?;
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.starts_with("--- memtail dump: capacity 64 bytes, "));
    /// assert!(text.ends_with("line 9\n--- end of memtail dump ---\n"));
    /// assert_eq!(text.lines().count(), written as usize + 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dump(&self, out: &mut impl Write) -> io::Result<u64> {
        let taken =
            take_for_dump(self.shared(), None, Limit::default()).expect("waits for the lock");
        write_dump(&taken, out)
    }
}

/// The retained entries (within `limit`), copied under the read lock; `None` when the lock
/// could not be had within `wait` (a panic while it was held). Without `wait`, waits as long as
/// it takes.
fn take_for_dump(shared: &Shared, wait: Option<Duration>, limit: Limit) -> Option<Taken> {
    let ask = Ask {
        from: Origin::Newest {
            entries: limit.entries,
            within: limit.within,
        },
        ..Ask::all_from(0)
    };
    let batch = match wait {
        Some(wait) => shared.try_read_within(ask, wait)?,
        None => shared.read(ask),
    };
    Some(Taken {
        capacity: shared.capacity(),
        entries: batch.entries().collect(),
        evicted: batch.counters.entries_evicted,
        cut: batch.counters.entries_cut,
        written: batch.next_seq,
        dropped: batch.dropped,
        retained: batch.retained,
        first: batch.first_retained,
    })
}

fn write_dump(taken: &Taken, out: &mut impl Write) -> io::Result<u64> {
    let retained = match taken.retained {
        0 => "no entries retained".to_owned(),
        n => format!(
            "{n} entries retained (seq {} to {})",
            taken.first,
            taken.first + n as u64 - 1
        ),
    };
    let hidden = taken.retained - taken.entries.len();
    let limited = if hidden > 0 {
        format!("; the {hidden} oldest not shown (the dump's limit)")
    } else {
        String::new()
    };
    // Buffered, not gathered whole: a dump in a panicking process needs no second copy of the
    // ring; 64 KiB at a time, so that other threads' output interleaves with it rarely.
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    writeln!(
        out,
        "--- memtail dump: capacity {} bytes, {retained}, {} written, {} evicted before, {} cut, \
         {} dropped by followers{limited} ---",
        taken.capacity, taken.written, taken.evicted, taken.cut, taken.dropped
    )?;
    for entry in &taken.entries {
        render::write_line(&mut out, entry.time(), entry)?;
    }
    out.write_all(b"--- end of memtail dump ---\n")?;
    out.flush()?;
    Ok(taken.entries.len() as u64)
}

/// Where a panic dump goes.
#[derive(Clone, Debug)]
enum Target {
    Stderr,
    File(PathBuf),
}

/// Dumps `buf` to standard error when the process panics, then runs the panic hook that was
/// installed before (which prints the panic message, by default), so the message comes last, just
/// above the shell prompt. The flight recorder's black box: keep the detailed recent log in
/// memory, and see it when something goes wrong. The panic itself is appended to the buffer
/// first, as an ERROR entry (see [`PanicHook`]), so it ends the dump and followers see it.
///
/// The dump holds the whole ring; [`PanicHook`] limits it (the last N entries, or the last
/// minutes), for a server whose handlers may panic more than once.
///
/// The hook does not wait for the buffer's lock: if it cannot be had within 200 ms (the panic
/// happened inside the buffer, while it was locked), it prints `--- memtail dump: the buffer was
/// locked; nothing dumped ---` instead. (Writing to a standard error that nobody reads can still
/// block, as any write to it can.) Every panic runs the hook, caught ones too (a panicking
/// publisher, a task a runtime catches): each dumps. While one dump is being written, a panic in
/// another thread does not start a second one: it says so in one line, and prints its message.
/// Installing it twice dumps twice. The hook holds no [`LogBuffer`] handle: when the last one is
/// dropped the buffer closes as it would without the hook (its followers end), and once its
/// memory is gone the hook dumps nothing.
///
/// # Examples
///
/// ```no_run
/// let buf = memtail::LogBuffer::with_capacity(1 << 20);
/// memtail::dump_on_panic(&buf);
/// // ... a tracing subscriber writes DEBUG into `buf` ...
/// panic!("the last megabyte of the log is on stderr, above this message");
/// ```
///
/// [`dump_on_panic_to`]'s example checks what a dump holds.
pub fn dump_on_panic(buf: &LogBuffer) {
    PanicHook::new(buf).dump_to_stderr().install();
}

/// Like [`dump_on_panic`], but appends the dump to the file at `path` (created if need be)
/// instead of writing it to standard error. If the file cannot be written, the dump goes to
/// standard error after a line saying why.
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::with_capacity(1 << 20);
/// let path = std::env::temp_dir().join(format!("memtail-doc-{}.dump", std::process::id()));
/// memtail::dump_on_panic_to(&buf, &path);
/// buf.append(b"connected to the database\n");
/// buf.append(b"query took 2.5 s\n");
///
/// let panicked = std::panic::catch_unwind(|| panic!("timed out"));
/// assert!(panicked.is_err());
///
/// let dump = std::fs::read_to_string(&path)?;
/// std::fs::remove_file(&path)?;
/// assert!(dump.starts_with("--- memtail dump: "), "{dump}");
/// assert!(dump.contains("3 entries"), "{dump}");
/// assert!(dump.contains("connected to the database\nquery took 2.5 s\n"), "{dump}");
/// // The panic is the last entry, with its time, its message and where it happened.
/// assert!(dump.contains("Z ERROR panic: thread "), "{dump}");
/// assert!(dump.ends_with(": timed out\n--- end of memtail dump ---\n"), "{dump}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn dump_on_panic_to(buf: &LogBuffer, path: impl Into<PathBuf>) {
    PanicHook::new(buf).dump_to_file(path).install();
}

/// A panic hook for a [`LogBuffer`], configured before it is installed: it appends each panic to
/// the buffer as an ERROR entry (target `panic`, with the thread, the location and the message,
/// and the time), so that the viewer, followers and [`on_error`](LogBuffer::on_error) see it;
/// optionally dumps the buffer (the last entries, or the last minutes); then runs the hook that
/// was installed before (which prints the panic message, by default).
///
/// ```text
/// ERROR panic: thread 'worker-3' panicked at src/handler.rs:42:9: index out of bounds
/// ```
///
/// The entry waits at most 200 ms for the buffer's lock (the panic may have happened while it
/// was held), and is not appended to a buffer whose handles are all gone.
///
/// # Default values
///
/// | setting | default |
/// |---|---|
/// | dump | none: the panic entry only |
/// | [`last_entries`](PanicHook::last_entries) | all retained |
/// | [`last`](PanicHook::last) | all retained |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let buf = memtail::LogBuffer::builder().capacity(1 << 20).timestamps(true).build();
/// let path = std::env::temp_dir().join(format!("memtail-doc-hook-{}.dump", std::process::id()));
/// memtail::PanicHook::new(&buf)
///     .dump_to_file(&path)
///     .last_entries(3)
///     .last(Duration::from_secs(300))
///     .install();
/// for n in 0..10 {
///     buf.append(format!("request {n}\n").as_bytes());
/// }
/// assert!(std::panic::catch_unwind(|| panic!("handler failed")).is_err());
///
/// // The panic is in the buffer, for the viewer and followers.
/// let last = buf.entries().pop().unwrap();
/// assert_eq!(last.level(), Some(memtail::Level::Error));
/// assert!(String::from_utf8_lossy(&last).ends_with(": handler failed\n"));
/// // The dump shows the last 3 entries, with their times: two requests and the panic.
/// let dump = std::fs::read_to_string(&path)?;
/// std::fs::remove_file(&path)?;
/// assert!(dump.contains("the 8 oldest not shown"), "{dump}");
/// assert!(dump.contains("Z request 8\n") && dump.contains("Z request 9\n"), "{dump}");
/// assert!(!dump.contains("request 7"), "{dump}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "a panic hook does nothing until `install` is called"]
#[derive(Debug)]
pub struct PanicHook {
    shared: Weak<Shared>,
    dump: Option<Target>,
    limit: Limit,
}

impl PanicHook {
    /// A hook that appends each panic to `buf` as an ERROR entry, and dumps nothing.
    pub fn new(buf: &LogBuffer) -> PanicHook {
        PanicHook {
            shared: Arc::downgrade(buf.shared()),
            dump: None,
            limit: Limit::default(),
        }
    }

    /// Dumps the buffer to standard error at each panic, after appending the panic.
    pub fn dump_to_stderr(mut self) -> PanicHook {
        self.dump = Some(Target::Stderr);
        self
    }

    /// Appends a dump of the buffer to the file at `path` (created if need be) at each panic;
    /// if it cannot be written, the dump goes to standard error after a line saying why.
    pub fn dump_to_file(mut self, path: impl Into<PathBuf>) -> PanicHook {
        self.dump = Some(Target::File(path.into()));
        self
    }

    /// A dump shows at most the last `entries` entries (the panic's among them). The header
    /// says how many older ones it leaves out.
    pub fn last_entries(mut self, entries: usize) -> PanicHook {
        self.limit.entries = Some(entries);
        self
    }

    /// A dump shows only the entries appended within `window` of the panic, by their times
    /// ([`Entry::time`](crate::Entry::time)). An entry without a time of its own is shown when
    /// the next entry with one is (so in a buffer that records no times, this limits nothing).
    /// With [`last_entries`](PanicHook::last_entries), the fewer of the two.
    pub fn last(mut self, window: Duration) -> PanicHook {
        self.limit.within = Some(window);
        self
    }

    /// Installs the hook, in front of the one installed before.
    pub fn install(self) {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            self.run(info.payload(), info.location());
            previous(info);
        }));
    }

    fn run(&self, payload: &(dyn Any + Send), location: Option<&Location<'_>>) {
        // A buffer whose memory is gone: nothing to append or dump.
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if !shared.is_closed() {
            append_panic(&shared, payload, location);
        }
        if let Some(target) = &self.dump {
            dump_now(&shared, target, self.limit, true);
        }
    }
}

/// Appends the panic as an ERROR entry: `ERROR panic: thread 'NAME' panicked at FILE:LINE:COL:
/// MESSAGE`.
fn append_panic(shared: &Shared, payload: &(dyn Any + Send), location: Option<&Location<'_>>) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    // Control characters written as escapes, as the tracing layer writes them.
    let mut escaped = Line(Vec::new());
    let _ = write!(escaped, "ERROR panic: thread '{name}' panicked");
    if let Some(location) = location {
        let _ = write!(escaped, " at {location}");
    }
    let _ = write!(escaped, ": {message}");
    let mut line = escaped.0;
    if !line.ends_with(b"\n") {
        line.push(b'\n');
    }
    let tags = Tags {
        level: Level::encode(Some(Level::Error)),
        time: shared.now(),
        target: crate::target::intern("panic"),
    };
    // The panicking thread may hold the lock: then the entry is not appended.
    let _ = shared.try_append_within(&line, tags, LOCK_WAIT);
}

/// Whether a dump is being written (by any thread): no second one meanwhile.
static DUMPING: AtomicBool = AtomicBool::new(false);

fn dump_now(shared: &Shared, target: &Target, limit: Limit, panic: bool) {
    if DUMPING.swap(true, Ordering::AcqRel) {
        if panic {
            let _ = io::stderr().write_all(
                b"--- memtail dump: another dump is being written; this panic's dump is skipped ---\n",
            );
        }
        return;
    }
    dump_shared(shared, target, limit);
    DUMPING.store(false, Ordering::Release);
}

fn dump_shared(shared: &Shared, target: &Target, limit: Limit) {
    let taken = take_for_dump(shared, Some(LOCK_WAIT), limit);
    let mut stderr = io::stderr().lock();
    let Some(taken) = taken else {
        let _ = stderr.write_all(b"--- memtail dump: the buffer was locked; nothing dumped ---\n");
        return;
    };
    if let Target::File(path) = target {
        // Never waits: a FIFO nobody reads is an error at once (the panicking process would
        // hang in `open` otherwise).
        let opened = crate::file::open_append(path);
        match opened.and_then(|mut file| write_dump(&taken, &mut file)) {
            Ok(_) => return,
            Err(error) => {
                let _ = writeln!(
                    stderr,
                    "--- memtail dump: cannot write {}: {error}; here instead ---",
                    path.display()
                );
            }
        }
    }
    let _ = write_dump(&taken, &mut stderr);
}

/// Dumps `buf` to standard error each time the process receives `signal` (such as
/// `signal_hook::consts::SIGUSR1`; unix, feature `signal`): `kill -USR1 PID` shows what a running
/// service has been doing. A thread of its own (`memtail-dump-signal`) waits for the signal, so
/// the dump is written outside the signal handler; it runs as long as the process.
///
/// # Errors
///
/// `InvalidInput` when the signal cannot be handled (`SIGKILL`, `SIGSTOP`, the ones that signal a
/// fault, and numbers that are no signal), or the error of setting up the handler or starting
/// the thread. Handling `SIGTERM` or `SIGINT` this way replaces their default (ending the
/// process).
///
/// # Examples
///
/// ```
/// use memtail::SIGUSR1;
///
/// let buf = memtail::LogBuffer::with_capacity(1 << 20);
/// memtail::dump_on_signal(&buf, SIGUSR1)?; // `kill -USR1 <pid>` dumps the ring on stderr
///
/// // SIGKILL cannot be handled: an error says so.
/// let refused = memtail::dump_on_signal(&buf, 9).unwrap_err();
/// assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(all(unix, feature = "signal"))]
pub fn dump_on_signal(buf: &LogBuffer, signal: i32) -> io::Result<()> {
    // signal-hook refuses these by panicking: say so instead.
    if !(1..128).contains(&signal) || signal_hook::consts::FORBIDDEN.contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {signal} cannot be handled (SIGKILL, SIGSTOP and fault signals cannot)"
            ),
        ));
    }
    let mut signals = signal_hook::iterator::Signals::new([signal])?;
    let shared = Arc::downgrade(buf.shared());
    std::thread::Builder::new()
        .name("memtail-dump-signal".into())
        .spawn(move || {
            for _ in signals.forever() {
                // A buffer whose memory is gone: nothing to dump.
                if let Some(shared) = shared.upgrade() {
                    dump_now(&shared, &Target::Stderr, Limit::default(), false);
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_says_what_it_cannot_show() {
        let buf = LogBuffer::with_capacity(32);
        for n in 0..10 {
            buf.append(format!("entry {n}\n").as_bytes());
        }
        buf.append(b"no newline");
        let mut out = Vec::new();
        let written = buf.dump(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(written as usize, lines.len() - 2);
        assert_eq!(
            lines[0],
            format!(
                "--- memtail dump: capacity 32 bytes, {written} entries retained (seq {} to 10), \
                 11 written, {} evicted before, 0 cut, 0 dropped by followers ---",
                11 - written,
                11 - written
            )
        );
        assert_eq!(lines[lines.len() - 2], "no newline");
        assert_eq!(*lines.last().unwrap(), "--- end of memtail dump ---");

        let empty = LogBuffer::new();
        let mut out = Vec::new();
        assert_eq!(empty.dump(&mut out).unwrap(), 0);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("no entries retained"));
    }
}
