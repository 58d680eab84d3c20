//! The flight recorder's dump: the retained log, written out when something went wrong.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::buffer::{copy_out, Shared};
use crate::LogBuffer;

/// How long a dump waits for the buffer's lock before it says it could not have it: long enough
/// for any writer to finish an append, short enough for a panicking process.
const LOCK_WAIT: Duration = Duration::from_millis(200);

/// What the ring held when a dump took it: one copy of the retained bytes and where each entry
/// is in it.
struct Taken {
    capacity: usize,
    bytes: Bytes,
    /// (sequence number, start, end) of each retained entry in `bytes`.
    entries: Vec<(u64, usize, usize)>,
    evicted: u64,
    cut: u64,
    written: u64,
    /// Entries subscribers and followers lost (full channels, or evicted before they read).
    dropped: u64,
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
        let taken = take_for_dump(self.shared(), None).expect("waits for the lock");
        write_dump(&taken, out)
    }
}

/// The retained entries, copied under the read lock; `None` when the lock could not be had
/// within `wait` (a panic while it was held). Without `wait`, waits as long as it takes.
fn take_for_dump(shared: &Shared, wait: Option<Duration>) -> Option<Taken> {
    {
        let state = match wait {
            // Recursive: a panicking thread that holds a read lock gets another.
            Some(wait) => shared.state.try_read_recursive_for(wait)?,
            None => shared.state.read(),
        };
        let ring = &state.ring;
        let bytes = copy_out(ring, 0..ring.len());
        let entries = ring
            .ranges_from(0)
            .map(|(seq, range, _)| (seq, range.start, range.end))
            .collect();
        let counters = ring.counters();
        Some(Taken {
            capacity: shared.capacity,
            bytes,
            entries,
            evicted: counters.entries_evicted,
            cut: counters.entries_cut,
            written: ring.next_seq(),
            dropped: state.subscriber_drops + shared.follower_missed.load(Ordering::Relaxed),
        })
    }
}

fn write_dump(taken: &Taken, out: &mut impl Write) -> io::Result<u64> {
    let retained = match (taken.entries.first(), taken.entries.last()) {
        (Some((first, ..)), Some((last, ..))) => format!(
            "{} entries retained (seq {first} to {last})",
            taken.entries.len()
        ),
        _ => "no entries retained".to_owned(),
    };
    // Buffered, not gathered whole: a dump in a panicking process needs no second copy of the
    // ring; 64 KiB at a time, so that other threads' output interleaves with it rarely.
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    writeln!(
        out,
        "--- memtail dump: capacity {} bytes, {retained}, {} written, {} evicted before, {} cut, \
         {} dropped by followers ---",
        taken.capacity, taken.written, taken.evicted, taken.cut, taken.dropped
    )?;
    for &(_, start, end) in &taken.entries {
        write_line(&mut out, &taken.bytes[start..end])?;
    }
    out.write_all(b"--- end of memtail dump ---\n")?;
    out.flush()?;
    Ok(taken.entries.len() as u64)
}

/// Writes an entry as a line: with a newline after it unless it ends with one.
pub(crate) fn write_line(out: &mut impl Write, entry: &[u8]) -> io::Result<()> {
    out.write_all(entry)?;
    if entry.ends_with(b"\n") {
        Ok(())
    } else {
        out.write_all(b"\n")
    }
}

/// Where a panic dump goes.
enum Target {
    Stderr,
    File(PathBuf),
}

/// Dumps `buf` to standard error when the process panics, then runs the panic hook that was
/// installed before (which prints the panic message, by default), so the message comes last, just
/// above the shell prompt. The flight recorder's black box: keep the detailed recent log in
/// memory, and see it when something goes wrong.
///
/// The hook does not wait for the buffer's lock: if it cannot be had within 200 ms (the panic
/// happened inside the buffer, while it was locked), it prints `--- memtail dump: the buffer was
/// locked; nothing dumped ---` instead. (Writing to a standard error that nobody reads can still
/// block, as any write to it can.) Every panic runs the hook, caught ones too (a panicking
/// publisher, a task a runtime catches): each dumps. While one dump is being written, a panic in
/// another thread does not start a second one; it prints its message only. Installing it twice
/// dumps twice. The hook holds no [`LogBuffer`] handle: when the last one is dropped the buffer
/// closes as it would without the hook (its followers end), and once its memory is gone the
/// hook dumps nothing.
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
    install(buf, Target::Stderr);
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
/// assert!(dump.contains("2 entries"), "{dump}");
/// assert!(dump.ends_with("connected to the database\nquery took 2.5 s\n--- end of memtail dump ---\n"), "{dump}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn dump_on_panic_to(buf: &LogBuffer, path: impl Into<PathBuf>) {
    install(buf, Target::File(path.into()));
}

/// Whether a dump is being written (by any thread): no second one meanwhile.
static DUMPING: AtomicBool = AtomicBool::new(false);

fn install(buf: &LogBuffer, target: Target) {
    let shared = Arc::downgrade(buf.shared());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        dump_now(&shared, &target);
        previous(info);
    }));
}

fn dump_now(shared: &Weak<Shared>, target: &Target) {
    // A buffer whose handles are all gone has closed: nothing to dump.
    let Some(shared) = shared.upgrade() else {
        return;
    };
    if DUMPING.swap(true, Ordering::AcqRel) {
        return;
    }
    dump_shared(&shared, target);
    DUMPING.store(false, Ordering::Release);
}

fn dump_shared(shared: &Shared, target: &Target) {
    let taken = take_for_dump(shared, Some(LOCK_WAIT));
    let mut stderr = io::stderr().lock();
    let Some(taken) = taken else {
        let _ = stderr.write_all(b"--- memtail dump: the buffer was locked; nothing dumped ---\n");
        return;
    };
    if let Target::File(path) = target {
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
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
                dump_now(&shared, &Target::Stderr);
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

    #[test]
    fn a_panic_dump_does_not_wait_for_a_lock_held_forever() {
        let buf = LogBuffer::new();
        buf.append(b"x\n");
        // As if the panicking thread held the write lock: the dump gives up instead of waiting.
        let held = buf.shared().state.write();
        assert!(take_for_dump(buf.shared(), Some(Duration::from_millis(10))).is_none());
        drop(held);
        // A read lock held by this thread does not stop it.
        let read = buf.shared().state.read();
        assert!(take_for_dump(buf.shared(), Some(Duration::from_millis(10))).is_some());
        drop(read);
    }
}
