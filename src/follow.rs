//! Follow a file like `tail -F`, or a reader such as stdin, into a [`LogBuffer`]: one entry per
//! line (feature `follow`).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let buf = memtail::LogBuffer::with_capacity(1 << 20);
//! // Start with the last 100 lines, then follow what is appended, across rotations.
//! let follower = memtail::follow::Follow::new()
//!     .last_lines(100)
//!     .file("/var/log/app.log", &buf);
//! // ... serve `buf`, or read it ...
//! if let Some(error) = follower.last_error() {
//!     eprintln!("following /var/log/app.log: {error}");
//! }
//! drop(follower); // stops the thread
//! ```
//!
//! # What a followed file may do
//!
//! The follower survives what log files do, without losing or repeating a line:
//!
//! - **Not there yet.** It waits for the file; once the file appears, it is read from its start.
//! - **Not a regular file:** a FIFO (named pipe) or a character device is read as a stream, as
//!   the bytes come: opening a FIFO does not wait for a writer, and when its writers are gone it
//!   waits for the next one. A directory at the path is an error, reported and tried again.
//! - **Appends,** complete or not. Each complete line (up to and including its `\n`) is one
//!   entry. A last line without its newline waits for it; after
//!   [`idle_flush`](Follow::idle_flush) without new bytes (1 s by default), or when the file is
//!   rotated or truncated, it becomes an entry as it is, and the rest of it, when it comes, is
//!   another entry.
//! - **Truncation in place** (logrotate's `copytruncate`): when the file becomes shorter than
//!   what was read, reading restarts at its beginning. So it does when the file was truncated
//!   and written again to its old length or past it before the follower looked, which `tail -F`
//!   takes for an append (or for nothing new): the follower keeps the last 64 bytes it read and
//!   checks, with each read, that the file still has them where they were. Bytes appended and
//!   truncated away before the follower read them are read from the copy `copytruncate` made
//!   just before (a file beside it named after it, like `app.log.1`, that has the bytes read
//!   last where they were read; [`FollowStats::recovered_bytes`]); without one they are gone,
//!   and nobody can count them, but the truncation is counted ([`FollowStats::truncations`])
//!   and, with [`announce`](Follow::announce), noted in the log.
//! - **Rotation by rename,** with a new file created at the path: the old file is read to its end
//!   when the new one appears (what a writer appends to the old file after that is not read,
//!   as with `tail -F`), then the new one is followed from its start.
//! - **Deletion:** the follower waits for a file to appear at the path again, and follows it from
//!   its start.
//!
//! A line longer than the buffer's capacity keeps its first `capacity` bytes, as
//! [`LogBuffer::append`] does; the follower drops the rest of the line as it reads (it never
//! holds more than one capacity of a line) and counts it in [`FollowStats::bytes_cut`].
//!
//! # Notifications, and polling
//!
//! On Linux the follower learns of every change from the kernel (inotify, on the file and on its
//! directory), as GNU `tail -F` does: it reads an appended line within a fraction of a
//! millisecond, and catches a rotation or a truncation as it happens, before the next writes.
//! Notifications do not come for every file system (NFS and FUSE miss changes made on other
//! machines), so it also checks the file every
//! [`reconcile_interval`](Follow::reconcile_interval) (1 s by default) anyway, however busy the
//! file is. When inotify cannot
//! be used (another platform, the per-user watch limit reached, or
//! [`polling`](Follow::polling) asked for), it checks every
//! [`poll_interval`](Follow::poll_interval) (50 ms by default) instead: a line then reaches the
//! buffer within about that. [`Follower::watching`] says which is in use.
//!
//! Either way, one limit is left: a file truncated and written again with the very bytes the
//! follower read last, at the same place, looks unchanged (what is written after them is read).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::ring::Tags;
use crate::worker::Worker;
use crate::{Level, LogBuffer};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod inotify;
mod wake;

use self::wake::Wake;
pub use self::wake::Watching;

/// How much a follower reads at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Follows `path` into `buf` with the default options: from the end of the file as it is now (or
/// from the start of a file that appears later), checking every 50 ms.
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// let path = std::env::temp_dir().join(format!("memtail-doc-{}.log", std::process::id()));
/// let buf = memtail::LogBuffer::new();
/// let mut file = std::fs::File::create(&path)?;
/// let live = buf.events();
/// let follower = memtail::follow::follow_file(&path, &buf);
/// follower.wait_ready(std::time::Duration::from_secs(10));
///
/// writeln!(file, "appended")?;
/// let entry = live.recv_timeout(std::time::Duration::from_secs(10))?;
/// assert_eq!(&entry[..], b"appended\n");
/// # drop(follower);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn follow_file(path: impl AsRef<Path>, buf: &LogBuffer) -> Follower {
    Follow::new().file(path, buf)
}

/// Follows `reader` (stdin, a pipe, a socket) into `buf` with the default options, one entry per
/// line, until it ends; a last line without a newline becomes an entry at the end.
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::new();
/// let follower = memtail::follow::follow_reader(&b"one\ntwo\nthree"[..], &buf);
/// follower.wait();
/// assert_eq!(buf.snapshot(), "one\ntwo\nthree");
/// assert_eq!(buf.entries().len(), 3);
/// ```
pub fn follow_reader<R: Read + Send + 'static>(reader: R, buf: &LogBuffer) -> Follower {
    Follow::new().reader(reader, buf)
}

/// Options for following a file or a reader.
///
/// | option | default |
/// |---|---|
/// | where a file is started | at its end ([`last_lines`](Follow::last_lines) to start earlier) |
/// | how changes are learnt of | kernel notifications where there are any ([`polling`](Follow::polling) to poll) |
/// | [`reconcile_interval`](Follow::reconcile_interval) | 1 s |
/// | [`poll_interval`](Follow::poll_interval) | 50 ms |
/// | [`idle_flush`](Follow::idle_flush) | 1 s |
/// | [`prefix`](Follow::prefix) | none |
/// | [`announce`](Follow::announce) | off |
/// | [`levels`](Follow::levels) | off: lines have no level |
/// | [`times`](Follow::times) | off: lines have no time (unless the buffer records times) |
/// | [`target`](Follow::target) | none |
#[derive(Clone, Debug)]
#[must_use = "a Follow does nothing until `file` or `reader` is called"]
pub struct Follow {
    last_lines: usize,
    poll_interval: Duration,
    reconcile_interval: Duration,
    polling: bool,
    idle_flush: Duration,
    prefix: Vec<u8>,
    announce: bool,
    levels: bool,
    times: bool,
    target: Option<String>,
}

impl Default for Follow {
    fn default() -> Follow {
        Follow::new()
    }
}

impl Follow {
    /// How often a followed file is checked by default.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);
    /// How long a line without its newline waits by default before it becomes an entry.
    pub const DEFAULT_IDLE_FLUSH: Duration = Duration::from_secs(1);
    /// How often a file followed through notifications is checked anyway, by default.
    pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(1);

    /// The defaults.
    pub fn new() -> Follow {
        Follow {
            last_lines: 0,
            poll_interval: Follow::DEFAULT_POLL_INTERVAL,
            reconcile_interval: Follow::DEFAULT_RECONCILE_INTERVAL,
            polling: false,
            idle_flush: Follow::DEFAULT_IDLE_FLUSH,
            prefix: Vec::new(),
            announce: false,
            levels: false,
            times: false,
            target: None,
        }
    }

    /// Starts a file that exists when following begins with its last `lines` lines instead of at
    /// its end, counting as `tail -n` does: an unfinished last line (no newline yet) is one of
    /// them.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("memtail-doc-last-{}.log", std::process::id()));
    /// std::fs::write(&path, "a\nb\nc")?;
    /// let buf = memtail::LogBuffer::new();
    /// let follower = memtail::follow::Follow::new().last_lines(2).file(&path, &buf);
    /// follower.wait_ready(std::time::Duration::from_secs(10));
    /// follower.stop(std::time::Duration::from_secs(5)); // flushes the unfinished "c"
    /// assert_eq!(buf.snapshot(), "b\nc");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn last_lines(mut self, lines: usize) -> Follow {
        self.last_lines = lines;
        self
    }

    /// How often the file is checked for new bytes, rotation and truncation when the follower
    /// polls (without notifications, or when [`polling`](Follow::polling) is asked for).
    ///
    /// # Panics
    ///
    /// If `every` is zero.
    #[track_caller]
    pub fn poll_interval(mut self, every: Duration) -> Follow {
        assert!(!every.is_zero(), "memtail::follow: zero poll interval");
        self.poll_interval = every;
        self
    }

    /// How often a file followed through kernel notifications is checked anyway, in case a
    /// notification did not come (a file system that does not send them for every change).
    ///
    /// # Panics
    ///
    /// If `every` is zero.
    #[track_caller]
    pub fn reconcile_interval(mut self, every: Duration) -> Follow {
        assert!(!every.is_zero(), "memtail::follow: zero reconcile interval");
        self.reconcile_interval = every;
        self
    }

    /// Polls every [`poll_interval`](Follow::poll_interval) instead of asking the kernel for
    /// notifications: for file systems that do not send them (network and FUSE file systems,
    /// where another machine writes), or to spare inotify watches.
    pub fn polling(mut self, polling: bool) -> Follow {
        self.polling = polling;
        self
    }

    /// Notes in the log, as entries of their own (after the [`prefix`](Follow::prefix)), what
    /// `tail -F` says on its standard error: `memtail: file truncated` when the file was
    /// truncated (bytes written just before may be lost), and `memtail: file replaced, following
    /// the new file` after a rotation. Off by default; `memtail serve` turns it on.
    pub fn announce(mut self, announce: bool) -> Follow {
        self.announce = announce;
        self
    }

    /// How long a last line without its newline waits for it before it becomes an entry.
    pub fn idle_flush(mut self, after: Duration) -> Follow {
        self.idle_flush = after;
        self
    }

    /// Bytes put before every line, such as `"app.log: "` when several files share one buffer.
    pub fn prefix(mut self, prefix: impl Into<Vec<u8>>) -> Follow {
        self.prefix = prefix.into();
        self
    }

    /// Gives each line the level its text shows ([`Level::detect`](crate::Level::detect):
    /// `INFO`, `[error]`, `level=warn`, a JSON `"level"`, syslog's `<PRI>`, klog's `E1204`, ...),
    /// so that level filters (`?level=`, the viewer's, `on_error`) work on a file's lines. A line
    /// that shows none (a stack trace's continuation) has none.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("memtail-doc-levels-{}.log", std::process::id()));
    /// std::fs::write(&path, "")?;
    /// let buf = memtail::LogBuffer::new();
    /// let follower = memtail::follow::Follow::new()
    ///     .levels(true)
    ///     .times(true)
    ///     .target("app.log")
    ///     .file(&path, &buf);
    /// follower.wait_ready(std::time::Duration::from_secs(10));
    /// std::fs::write(&path, "[error] disk full\n    at write()\n")?;
    /// follower.stop(std::time::Duration::from_secs(5)); // reads what was written until now
    /// let entries = buf.entries();
    /// assert_eq!(entries[0].level(), Some(memtail::Level::Error));
    /// assert_eq!(entries[1].level(), None);
    /// assert!(entries.iter().all(|e| e.time().is_some() && e.target() == Some("app.log")));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn levels(mut self, on: bool) -> Follow {
        self.levels = on;
        self
    }

    /// Gives each line the time it was read ([`Entry::time`](crate::Entry::time)), whether or
    /// not the buffer records times: what `?last=5m` and the viewer's times go by. One clock
    /// read per line.
    pub fn times(mut self, on: bool) -> Follow {
        self.times = on;
        self
    }

    /// Gives each line (and each notice) `target` ([`Entry::target`](crate::Entry::target)):
    /// the file's name, say, so that `?target=` and the viewer's target box select a file's
    /// lines when several share one buffer.
    pub fn target(mut self, target: impl Into<String>) -> Follow {
        self.target = Some(target.into());
        self
    }

    /// Follows the file at `path` on a thread of its own (named `memtail-follow`), until the
    /// returned [`Follower`] is dropped or stopped. Errors (a file that cannot be read, say) do not
    /// stop it: they are kept for [`Follower::last_error`] and counted, and the file is tried again
    /// at the next interval.
    pub fn file(self, path: impl AsRef<Path>, buf: &LogBuffer) -> Follower {
        let path = path.as_ref().to_owned();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let shared = Arc::new(Shared::default());
        let lines = Lines::new(&self, buf.clone());
        let (waiter, kernel_stop) = Waiter::new(&path, self.polling, stop_rx);
        shared.state.lock().watching = waiter.watching();
        let thread = Worker::spawn("memtail-follow".into(), {
            let shared = Arc::clone(&shared);
            move || FileFollower::new(path, self, lines, shared, waiter).run()
        });
        let mut follower = Follower::new(thread, Some(stop_tx), shared);
        follower.kernel_stop = kernel_stop;
        follower
    }

    /// Follows `reader` on a thread of its own (named `memtail-follow`) until it ends or fails.
    /// Dropping the [`Follower`] does not interrupt a read under way: the thread ends when the
    /// read returns (at the next line, or when the reader is closed).
    pub fn reader<R: Read + Send + 'static>(self, mut reader: R, buf: &LogBuffer) -> Follower {
        let shared = Arc::new(Shared::default());
        let mut lines = Lines::new(&self, buf.clone());
        let thread = Worker::spawn("memtail-follow".into(), {
            let shared = Arc::clone(&shared);
            move || {
                shared.ready();
                let mut chunk = vec![0; READ_CHUNK];
                loop {
                    match reader.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => lines.push(&chunk[..n], &shared),
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => {
                            shared.error(error);
                            break;
                        }
                    }
                    if shared.stopping() {
                        break;
                    }
                }
                lines.flush(&shared);
            }
        });
        Follower::new(thread, None, shared)
    }
}

/// Counters of a [`Follower`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowStats {
    /// Entries appended: complete lines and flushed partial lines.
    pub lines: u64,
    /// Bytes read from the file or reader.
    pub bytes_read: u64,
    /// Lines without a newline that became entries after the idle time, at a rotation or
    /// truncation, or at the end of a reader.
    pub partial_flushes: u64,
    /// Bytes dropped from lines longer than the buffer's capacity.
    pub bytes_cut: u64,
    /// Times the file was found truncated and read again from its start.
    pub truncations: u64,
    /// Bytes read from a copy of the file after it was truncated (logrotate's `copytruncate`
    /// copies it to `app.log.1`, say, then truncates it): what was written after the follower's
    /// last read and before the copy, which would otherwise have been lost.
    pub recovered_bytes: u64,
    /// Times a new file was found at the path (after a rotation or a deletion) and followed.
    pub rotations: u64,
    /// Files that appeared at the path and were gone (renamed or deleted) before the follower
    /// could open them, in a storm of rotations: their lines were not read. Known only with
    /// notifications ([`Watching::Notifications`]); polling cannot see them.
    pub files_missed: u64,
    /// Errors met (the newest is [`Follower::last_error`]).
    pub errors: u64,
    /// Whether the follower's thread had finished when [`Follower::stop`] returned (always
    /// false in [`Follower::stats`] of a running follower).
    pub stopped: bool,
}

/// A running follower. Dropping it stops a file follower's thread (after a last read and the
/// flush of an unfinished line), waiting at most [`Follower::DROP_WAIT`] for it: a thread stuck
/// longer (a read from a file system that hangs, a buffer clock that blocks) is left to end on
/// its own.
#[must_use = "dropping the Follower stops following"]
pub struct Follower {
    thread: Option<Worker>,
    /// Dropped to wake a file follower's thread at once; `None` for a reader.
    stop: Option<Sender<()>>,
    /// Signalled to wake a file follower's thread that waits on the kernel.
    kernel_stop: Option<KernelStop>,
    shared: Arc<Shared>,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
type KernelStop = inotify::Stopper;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
type KernelStop = std::convert::Infallible;

#[derive(Default)]
struct Shared {
    state: Mutex<SharedState>,
    ready: parking_lot::Condvar,
}

struct SharedState {
    stats: FollowStats,
    last_error: Option<Arc<io::Error>>,
    ready: bool,
    stopping: bool,
    watching: Watching,
}

impl Default for SharedState {
    fn default() -> SharedState {
        SharedState {
            stats: FollowStats::default(),
            last_error: None,
            ready: false,
            stopping: false,
            watching: Watching::Polling,
        }
    }
}

impl Shared {
    fn ready(&self) {
        self.state.lock().ready = true;
        self.ready.notify_all();
    }

    fn error(&self, error: io::Error) {
        let mut state = self.state.lock();
        state.stats.errors += 1;
        state.last_error = Some(Arc::new(error));
    }

    fn stopping(&self) -> bool {
        self.state.lock().stopping
    }

    fn count(&self, f: impl FnOnce(&mut FollowStats)) {
        f(&mut self.state.lock().stats);
    }
}

impl Follower {
    fn new(thread: io::Result<Worker>, stop: Option<Sender<()>>, shared: Arc<Shared>) -> Follower {
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(error) => {
                shared.error(io::Error::new(
                    error.kind(),
                    format!("memtail::follow: cannot start a thread: {error}"),
                ));
                shared.ready();
                None
            }
        };
        Follower {
            thread,
            stop,
            kernel_stop: None,
            shared,
        }
    }

    /// How long dropping a file follower waits for its thread, at most.
    pub const DROP_WAIT: Duration = Duration::from_secs(5);

    /// How this follower learns that its file changed: [`Watching::Notifications`] on Linux
    /// (inotify) unless [`Follow::polling`] was asked for or the kernel refused a watch,
    /// [`Watching::Polling`] otherwise (and for a reader, which needs neither).
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::follow::{Follow, Watching};
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let path = std::env::temp_dir().join("memtail-doc-watching.log");
    /// let follower = Follow::new().polling(true).file(&path, &buf);
    /// assert_eq!(follower.watching(), Watching::Polling);
    /// ```
    pub fn watching(&self) -> Watching {
        self.shared.state.lock().watching
    }

    fn signal_stop(&mut self) {
        self.shared.state.lock().stopping = true;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(stop) = self.kernel_stop.take() {
            stop.stop();
        }
        self.kernel_stop = None;
    }

    /// The counters so far.
    pub fn stats(&self) -> FollowStats {
        self.shared.state.lock().stats
    }

    /// The newest error met, if any: a file that could not be opened or read (the message names
    /// it), a reader that failed, or a thread that could not be started.
    pub fn last_error(&self) -> Option<Arc<io::Error>> {
        self.shared.state.lock().last_error.clone()
    }

    /// Whether the follower's thread is still at work (a reader's ends with the reader).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(Worker::is_running)
    }

    /// Waits at most `timeout` until the follower has taken its starting position (for a file
    /// that exists: after its last lines were read, at its end); true once it has. Lines appended
    /// after that are never missed.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = crate::worker::deadline(timeout);
        let mut state = self.shared.state.lock();
        while !state.ready {
            if self
                .shared
                .ready
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return state.ready;
            }
        }
        true
    }

    /// Waits until a reader is exhausted (or fails) and its last line is appended; returns the
    /// final counters. A file follower never ends by itself: for it, `wait` is
    /// [`stop`](Follower::stop) with [`Follower::DROP_WAIT`].
    pub fn wait(mut self) -> FollowStats {
        if self.stop.is_some() {
            return self.stop(Follower::DROP_WAIT);
        }
        if let Some(thread) = self.thread.take() {
            thread.join();
        }
        FollowStats {
            stopped: true,
            ..self.stats()
        }
    }

    /// Stops the thread and waits for it, at most `timeout`, flushing an unfinished last line;
    /// returns the final counters, with `stopped` true. A file follower reads what was appended
    /// until now first. A reader stops after the read under way returns: if that (or a read
    /// from a file system that hangs) takes longer than `timeout`, `stop` returns the counters
    /// of that moment with `stopped` false, and the thread ends on its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let follower = memtail::follow::Follow::new().reader(&b"one\ntwo"[..], &buf);
    /// let stats = follower.stop(Duration::from_secs(5));
    /// assert!(stats.stopped);
    /// ```
    pub fn stop(mut self, timeout: Duration) -> FollowStats {
        self.signal_stop();
        self.stop.take();
        let mut stopped = true;
        if let Some(thread) = self.thread.take() {
            stopped = thread.join_until(crate::worker::deadline(timeout));
        }
        FollowStats {
            stopped,
            ..self.stats()
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.signal_stop();
        let is_file = self.stop.take().is_some();
        if let Some(thread) = self.thread.take() {
            // A reader's thread may be blocked in `read`: it ends on its own when that returns.
            if is_file {
                thread.join_until(Instant::now() + Follower::DROP_WAIT);
            }
        }
    }
}

impl fmt::Debug for Follower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follower")
            .field("running", &self.is_running())
            .field("watching", &self.watching())
            .field("stats", &self.stats())
            .field("last_error", &self.last_error())
            .finish()
    }
}

/// Splits bytes into lines and appends them, holding at most one capacity of an unfinished line.
struct Lines {
    prefix: Vec<u8>,
    buf: LogBuffer,
    /// The unfinished line, prefix included.
    pending: Vec<u8>,
    /// [`Follow::levels`] and [`Follow::times`].
    levels: bool,
    times: bool,
    /// [`Follow::target`], interned (0: none).
    target: u16,
}

impl Lines {
    fn new(options: &Follow, buf: LogBuffer) -> Lines {
        Lines {
            prefix: options.prefix.clone(),
            buf,
            pending: Vec::new(),
            levels: options.levels,
            times: options.times,
            target: options.target.as_deref().map_or(0, crate::target::intern),
        }
    }

    /// Appends `entry`, a line (or a notice of the follower's, which has no level), with what
    /// the options give it.
    fn append(&self, entry: &[u8], notice: bool) {
        let text = &entry[self.prefix.len().min(entry.len())..];
        let level = (self.levels && !notice)
            .then(|| Level::detect(text))
            .flatten();
        let time = if self.times {
            self.buf.shared().now()
        } else {
            self.buf.shared().clock_now()
        };
        self.buf.append_tags(
            entry,
            Tags {
                level: Level::encode(level),
                time,
                target: self.target,
            },
        );
    }

    fn push(&mut self, mut bytes: &[u8], shared: &Shared) {
        let (mut lines, mut cut) = (0, 0);
        let read = bytes.len() as u64;
        while !bytes.is_empty() {
            let end = memchr(b'\n', bytes).map(|at| at + 1);
            let (line, rest) = bytes.split_at(end.unwrap_or(bytes.len()));
            if self.pending.is_empty() {
                self.pending.extend_from_slice(&self.prefix);
            }
            let room = self.buf.capacity().saturating_sub(self.pending.len());
            let kept = line.len().min(room);
            self.pending.extend_from_slice(&line[..kept]);
            cut += (line.len() - kept) as u64;
            if end.is_some() {
                self.append(&self.pending, false);
                self.pending.clear();
                lines += 1;
            }
            bytes = rest;
        }
        shared.count(|stats| {
            stats.lines += lines;
            stats.bytes_read += read;
            stats.bytes_cut += cut;
        });
    }

    /// Appends a notice of the follower's own (after the prefix) as an entry.
    fn notice(&mut self, text: &str) {
        let mut entry = self.prefix.clone();
        entry.extend_from_slice(b"memtail: ");
        entry.extend_from_slice(text.as_bytes());
        entry.push(b'\n');
        self.append(&entry, true);
    }

    /// Appends the unfinished line, if any.
    fn flush(&mut self, shared: &Shared) {
        if self.pending.len() > self.prefix.len() {
            self.append(&self.pending, false);
            shared.count(|stats| {
                stats.lines += 1;
                stats.partial_flushes += 1;
            });
        }
        self.pending.clear();
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// The file being read: its handle, identity and how far it was read.
struct Open {
    file: File,
    id: FileId,
    pos: u64,
    /// A FIFO, character device or socket: read as the bytes come, never truncated or seeked.
    stream: bool,
    /// The bytes just before `pos`, as they were read: if the file no longer has them there, it
    /// was truncated and written again.
    seen: Seen,
}

/// How many of the bytes before the read position are kept to compare: enough that a file
/// truncated and written again (with lines that carry times or counters) differs in them.
const SEEN: usize = 64;

/// The last (up to [`SEEN`]) bytes read from a file.
#[derive(Clone, Copy)]
struct Seen {
    bytes: [u8; SEEN],
    len: usize,
}

impl Seen {
    const NONE: Seen = Seen {
        bytes: [0; SEEN],
        len: 0,
    };

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Adds bytes read after the ones kept.
    fn extend(&mut self, new: &[u8]) {
        if new.len() >= SEEN {
            self.bytes.copy_from_slice(&new[new.len() - SEEN..]);
            self.len = SEEN;
            return;
        }
        let keep = self.len.min(SEEN - new.len());
        self.bytes.copy_within(self.len - keep..self.len, 0);
        self.bytes[keep..keep + new.len()].copy_from_slice(new);
        self.len = keep + new.len();
    }
}

/// Reads at `pos`, leaving the handle's own offset alone where the platform can.
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, pos)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, pos)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let mut file = file;
        file.seek(SeekFrom::Start(pos))?;
        file.read(buf)
    }
}

impl Open {
    /// Opens what is at `path`; a stream without blocking (a FIFO without a writer).
    fn path(path: &Path) -> io::Result<Open> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        // Never blocks in `open` (a FIFO without a writer), whatever is at the path by then; a
        // regular file's reads are the same with it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(O_NONBLOCK);
        }
        let file = options.open(path)?;
        // What was opened, not what the path named a moment before.
        let metadata = file.metadata()?;
        if metadata.is_dir() {
            return Err(io::Error::other("it is a directory"));
        }
        let stream = is_stream(&metadata);
        let id = FileId::of(&metadata);
        Ok(Open {
            file,
            id,
            pos: 0,
            stream,
            seen: Seen::NONE,
        })
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const O_NONBLOCK: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
const O_NONBLOCK: i32 = 0x4;

/// Whether a file is read as a stream rather than as a file that grows.
fn is_stream(metadata: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = metadata.file_type();
        kind.is_fifo() || kind.is_char_device()
    }
    #[cfg(not(unix))]
    {
        !metadata.is_file() && !metadata.is_dir()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }

    /// Without inode numbers, a file replaced at the path is told apart by its creation time
    /// where the platform has one.
    #[cfg(not(unix))]
    fn of(metadata: &std::fs::Metadata) -> FileId {
        let created = metadata
            .created()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos() as u64);
        FileId {
            dev: 0,
            ino: created,
        }
    }
}

/// How the follower's thread waits: on the kernel (Linux), or on the stop channel for a poll
/// interval.
struct Waiter {
    stop: Receiver<()>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    kernel: Option<inotify::Kernel>,
}

impl Waiter {
    #[allow(unused_variables)]
    fn new(path: &Path, polling: bool, stop: Receiver<()>) -> (Waiter, Option<KernelStop>) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let (kernel, stopper) = match inotify::Kernel::new(path, polling) {
                Some((kernel, stopper)) => (Some(kernel), Some(stopper)),
                None => (None, None),
            };
            (Waiter { stop, kernel }, stopper)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        (Waiter { stop }, None)
    }

    fn watching(&self) -> Watching {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(kernel) = &self.kernel {
            return kernel.watching();
        }
        Watching::Polling
    }

    /// Files that appeared at the path since watching began, as far as notifications tell.
    fn arrivals(&self) -> Option<u64> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(kernel) = &self.kernel {
            if kernel.watching() == Watching::Notifications {
                return Some(kernel.arrivals());
            }
        }
        None
    }

    #[allow(unused_variables)]
    fn rewatch(&mut self, path: &Path) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(kernel) = &mut self.kernel {
            return kernel.rewatch(path);
        }
        Ok(())
    }

    #[allow(unused_variables)]
    fn wait(&mut self, timeout: Duration, stream: Option<&File>) -> Wake {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(kernel) = &mut self.kernel {
            use std::os::fd::AsFd;
            return kernel.wait(timeout, stream.map(|file| file.as_fd()));
        }
        match self.stop.recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => Wake::Timeout,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => Wake::Stop,
        }
    }
}

struct FileFollower {
    path: PathBuf,
    options: Follow,
    lines: Lines,
    shared: Arc<Shared>,
    waiter: Waiter,
    current: Option<Open>,
    /// New files opened at the path since watching began (to tell files missed).
    opened: u64,
    /// When the unfinished line last grew.
    last_growth: Instant,
    /// When the path is looked at next however busy the file is (the reconcile pass).
    next_look: Instant,
    /// Whether the last read stopped at its limit with more to read: look again at once.
    more: bool,
    chunk: Vec<u8>,
}

/// The most one read of the file takes before the follower looks at its stop signal and the
/// path again (a file written faster than it is read, a character device that never ends).
const READ_LIMIT: usize = 64 * READ_CHUNK;

impl FileFollower {
    fn new(
        path: PathBuf,
        options: Follow,
        lines: Lines,
        shared: Arc<Shared>,
        waiter: Waiter,
    ) -> FileFollower {
        FileFollower {
            path,
            options,
            lines,
            shared,
            waiter,
            current: None,
            opened: 0,
            last_growth: Instant::now(),
            next_look: Instant::now(),
            more: false,
            chunk: vec![0; READ_CHUNK],
        }
    }

    fn run(mut self) {
        self.start();
        self.shared.ready();
        let mut wake = Wake::Changed;
        loop {
            if wake == Wake::Appended && Instant::now() < self.next_look {
                // The quick way, as bytes come: no look at the path.
                self.read_current();
                self.flush_if_idle();
            } else {
                self.poll();
                self.next_look = Instant::now() + self.every();
            }
            let timeout = self.timeout();
            let stream = self.current.as_ref().filter(|open| open.stream);
            wake = self.waiter.wait(timeout, stream.map(|open| &open.file));
            if wake == Wake::Stop {
                break;
            }
        }
        // Whatever was appended until now, then the unfinished line.
        self.read_current();
        self.lines.flush(&self.shared);
    }

    /// How often the path is looked at without being told to.
    fn every(&self) -> Duration {
        match self.waiter.watching() {
            Watching::Notifications => self.options.reconcile_interval,
            Watching::Polling => self.options.poll_interval,
        }
    }

    /// How long to wait before looking again without being told to.
    fn timeout(&self) -> Duration {
        if self.more {
            return Duration::ZERO;
        }
        let every = self
            .next_look
            .saturating_duration_since(Instant::now())
            .min(self.every());
        if self.lines.has_pending() {
            let flush_in = self
                .options
                .idle_flush
                .saturating_sub(self.last_growth.elapsed());
            every.min(flush_in.max(Duration::from_millis(1)))
        } else {
            every
        }
    }

    /// The starting position: the end of the file as it is now, or its last lines. A stream
    /// starts with what comes next.
    fn start(&mut self) {
        let result = Open::path(&self.path).and_then(|mut open| {
            if !open.stream {
                let len = open.file.metadata()?.len();
                open.pos = if self.options.last_lines == 0 {
                    len
                } else {
                    // No further back than the buffer holds: what is older would be evicted
                    // at once (and a 10 GB file without a line break is not read through).
                    let window = self.lines.buf.capacity() as u64;
                    start_of_last_lines(&open.file, len, self.options.last_lines, window)?
                };
                // What is before the start, to tell a truncation even once the file has grown
                // past it again.
                let before = open.pos.min(SEEN as u64) as usize;
                let mut seen = [0; SEEN];
                let got = read_at(&open.file, &mut seen[..before], open.pos - before as u64)?;
                open.seen.extend(&seen[..got]);
                if got < before {
                    // Shorter already: the first read will say it was truncated.
                    open.seen = Seen::NONE;
                    open.pos = 0;
                }
            }
            Ok(open)
        });
        match result {
            Ok(open) => self.current = Some(open),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => self.shared.error(context(&self.path, error)),
        }
        self.rewatch();
    }

    fn rewatch(&mut self) {
        if let Err(error) = self.waiter.rewatch(&self.path) {
            self.shared.error(error);
        }
        self.shared.state.lock().watching = self.waiter.watching();
    }

    fn poll(&mut self) {
        self.read_current();
        // What is at the path now?
        let at_path = match std::fs::metadata(&self.path) {
            Ok(metadata) => Some(FileId::of(&metadata)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => {
                self.shared.error(context(&self.path, error));
                None
            }
        };
        match (&self.current, at_path) {
            // Still the same file.
            (Some(open), Some(id)) if open.id == id => {}
            // A new file at the path (rotated, or deleted and created again), or a first one:
            // the old one was read to its end above.
            (_, Some(_)) => match Open::path(&self.path) {
                // The path changed back between the look and the open: nothing new.
                Ok(open)
                    if self
                        .current
                        .as_ref()
                        .is_some_and(|current| current.id == open.id) => {}
                Ok(open) => {
                    if self.current.is_some() {
                        self.lines.flush(&self.shared);
                        self.shared.count(|stats| stats.rotations += 1);
                        if self.options.announce {
                            self.lines.notice("file replaced, following the new file");
                        }
                    }
                    self.opened += 1;
                    self.current = Some(open);
                    self.rewatch();
                    self.read_current();
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => self.shared.error(context(&self.path, error)),
            },
            // Deleted or renamed away, nothing new yet: keep reading the old file, which a
            // writer may still append to.
            (_, None) => {}
        }
        // A file at the path not opened yet (unreadable for now) has not come and gone.
        let unopened =
            at_path.is_some_and(|id| self.current.as_ref().map_or(true, |open| open.id != id));
        self.count_missed_files(unopened);
        self.flush_if_idle();
    }

    /// An unfinished line that waited `idle_flush` for its end becomes an entry.
    fn flush_if_idle(&mut self) {
        if self.lines.has_pending() && self.last_growth.elapsed() >= self.options.idle_flush {
            self.lines.flush(&self.shared);
        }
    }

    /// Files that arrived at the path (as notifications tell) and were gone before they were
    /// opened; `unopened` when the one at the path now is still to be opened.
    fn count_missed_files(&mut self, unopened: bool) {
        let Some(arrivals) = self.waiter.arrivals() else {
            return;
        };
        let missed = arrivals
            .saturating_sub(self.opened)
            .saturating_sub(u64::from(unopened));
        let before = self.shared.state.lock().stats.files_missed;
        if missed > before {
            self.shared.count(|stats| stats.files_missed = missed);
            if self.options.announce {
                let text = format!(
                    "{} file(s) came and went at the path before they could be read",
                    missed - before
                );
                self.lines.notice(&text);
            }
        }
    }

    /// Reads what was appended to the current file; restarts from its start when it was
    /// truncated. A stream is read as far as it has bytes now, and opened again when its
    /// writers are gone (so that waiting on it does not wake at once, and a new writer is heard).
    fn read_current(&mut self) {
        self.more = false;
        let Some(open) = &mut self.current else {
            return;
        };
        if open.stream {
            return self.read_stream();
        }
        // The first read starts at the bytes seen last, to check that they are still there:
        // if the file is shorter, or has other bytes there, it was truncated (and perhaps
        // written past its old length again) since. One read either way, no `fstat`.
        let mut check = open.seen.len;
        let mut taken = 0;
        loop {
            if taken >= READ_LIMIT {
                self.more = true;
                break;
            }
            let from = open.pos - check as u64;
            let n = match read_at(&open.file, &mut self.chunk, from) {
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return self.shared.error(context(&self.path, error)),
            };
            if check > 0 {
                let same = n >= check && self.chunk[..check] == *open.seen.as_slice();
                if !same {
                    // What was written after the last read may be in a copy (copytruncate):
                    // read it from there first.
                    let lines = &mut self.lines;
                    let shared = &self.shared;
                    let limit = (lines.buf.capacity() as u64).max(READ_LIMIT as u64);
                    let copy = read_copy(&self.path, open, &mut self.chunk, limit, |bytes| {
                        lines.push(bytes, shared)
                    });
                    open.pos = 0;
                    open.seen = Seen::NONE;
                    check = 0;
                    self.lines.flush(&self.shared);
                    self.shared.count(|stats| {
                        stats.truncations += 1;
                        stats.recovered_bytes += copy.as_ref().map_or(0, |(bytes, _)| *bytes);
                    });
                    if self.options.announce {
                        match copy {
                            Some((bytes, name)) if bytes > 0 => self.lines.notice(&format!(
                                "file truncated (the {bytes} bytes written before were read from \
                                 its copy {})",
                                name.to_string_lossy().escape_debug()
                            )),
                            _ => self.lines.notice("file truncated"),
                        }
                    }
                    continue;
                }
            }
            let new = &self.chunk[check..n];
            check = 0;
            if new.is_empty() {
                break;
            }
            taken += new.len();
            open.pos += new.len() as u64;
            open.seen.extend(new);
            self.lines.push(new, &self.shared);
            self.last_growth = Instant::now();
            if n < self.chunk.len() {
                // A short read of a regular file: its end, for now. What is appended next is
                // told by the next wake (or look), without a read for nothing here.
                break;
            }
        }
    }

    fn read_stream(&mut self) {
        let Some(open) = &mut self.current else {
            return;
        };
        let mut taken = 0;
        loop {
            if taken >= READ_LIMIT {
                self.more = true;
                return;
            }
            match open.file.read(&mut self.chunk) {
                Ok(0) => {
                    // No writer: open it again, to wait for the next one. If it cannot be (it
                    // was removed), let go of it: waiting on a stream without writers would
                    // wake at once, again and again.
                    match Open::path(&self.path) {
                        Ok(again) if again.stream => *open = again,
                        Ok(_) => self.current = None,
                        Err(error) => {
                            self.current = None;
                            if error.kind() != io::ErrorKind::NotFound {
                                self.shared.error(context(&self.path, error));
                            }
                        }
                    }
                    return;
                }
                Ok(n) => {
                    taken += n;
                    open.pos += n as u64;
                    self.lines.push(&self.chunk[..n], &self.shared);
                    self.last_growth = Instant::now();
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => return self.shared.error(context(&self.path, error)),
            }
        }
    }
}

/// Suffixes of compressed copies: never the copy being looked for (its bytes differ).
const COMPRESSED: [&str; 6] = [".gz", ".xz", ".zst", ".bz2", ".lz4", ".Z"];

/// After `open` (followed at `path`) was found truncated: looks for a copy of it beside it,
/// named after it (`app.log.1`, `app.log-20261204`), as logrotate's `copytruncate` makes just
/// before it truncates. A copy has the bytes the follower read last where it read them; its
/// bytes after them (at most `limit`) are handed to `push`. Returns how many, and the copy's
/// name; `None` when no copy was found. The eight newest candidates are looked at.
fn read_copy(
    path: &Path,
    open: &Open,
    chunk: &mut [u8],
    limit: u64,
    mut push: impl FnMut(&[u8]),
) -> Option<(u64, std::ffi::OsString)> {
    let seen = open.seen.as_slice();
    if seen.is_empty() {
        return None;
    }
    let name = path.file_name()?.to_string_lossy().into_owned();
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let other = entry.file_name().to_string_lossy().into_owned();
            other.len() > name.len()
                && other.starts_with(&name)
                && !COMPRESSED.iter().any(|suffix| other.ends_with(suffix))
        })
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            let fits = metadata.is_file() && metadata.len() >= open.pos;
            let modified = metadata.modified().ok()?;
            fits.then(|| (modified, entry.path()))
        })
        .collect();
    candidates.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, candidate) in candidates.into_iter().take(8) {
        let Ok(copy) = Open::path(&candidate) else {
            continue;
        };
        if copy.stream || copy.id == open.id {
            continue;
        }
        let from = open.pos - seen.len() as u64;
        let mut there = [0; SEEN];
        let there = &mut there[..seen.len()];
        if read_at(&copy.file, there, from).ok() != Some(seen.len()) || there != seen {
            continue;
        }
        let mut at = open.pos;
        while at - open.pos < limit {
            let room = chunk.len().min((limit - (at - open.pos)) as usize);
            match read_at(&copy.file, &mut chunk[..room], at) {
                Ok(0) => break,
                Ok(n) => {
                    push(&chunk[..n]);
                    at += n as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        return Some((at - open.pos, candidate.file_name()?.to_owned()));
    }
    None
}

/// Where the last `lines` lines of a file of `len` bytes start, counting as `tail -n` does: an
/// unfinished last line is one of them. No more than the last `window` bytes are looked at:
/// when they hold fewer lines, the start is just after the first line break among them, or,
/// without any, `window` bytes before the end (the ring would keep no more of that line).
fn start_of_last_lines(mut file: &File, len: u64, lines: usize, window: u64) -> io::Result<u64> {
    let floor = len.saturating_sub(window);
    let mut first_break = None;
    let mut end = len;
    let mut newlines = 0;
    // A newline that ends the file ends the last line: it is not a boundary before it.
    let mut seen_last = false;
    let mut block = vec![0; 8192];
    while end > floor {
        let start = end.saturating_sub(block.len() as u64).max(floor);
        let block = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(block)?;
        for (at, _) in block.iter().enumerate().rev().filter(|(_, &b)| b == b'\n') {
            first_break = Some(start + at as u64 + 1);
            if !seen_last {
                seen_last = true;
                if start + at as u64 + 1 == len {
                    continue;
                }
            }
            newlines += 1;
            if newlines == lines {
                return Ok(start + at as u64 + 1);
            }
        }
        end = start;
    }
    if floor == 0 {
        return Ok(0);
    }
    Ok(first_break.filter(|&after| after < len).unwrap_or(floor))
}

fn context(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_seen_last_are_the_last_ones_read() {
        let mut seen = Seen::NONE;
        seen.extend(b"abc");
        seen.extend(b"de");
        assert_eq!(seen.as_slice(), b"abcde");
        let long: Vec<u8> = (0..100).collect();
        seen.extend(&long);
        assert_eq!(seen.as_slice(), &long[100 - SEEN..]);
        seen.extend(b"xy");
        assert_eq!(&seen.as_slice()[..SEEN - 2], &long[100 - SEEN + 2..]);
        assert_eq!(&seen.as_slice()[SEEN - 2..], b"xy");
    }

    #[test]
    fn the_last_lines_are_looked_for_no_further_back_than_the_window() {
        let path = std::env::temp_dir().join(format!("memtail-last-lines-{}", std::process::id()));
        let start = |text: &[u8], lines: usize, window: u64| {
            std::fs::write(&path, text).unwrap();
            let file = File::open(&path).unwrap();
            start_of_last_lines(&file, text.len() as u64, lines, window).unwrap()
        };
        let text = b"one\ntwo\nthree\nfour\n";
        assert_eq!(start(text, 2, 1 << 20), 8); // "three\nfour\n"
        assert_eq!(start(text, 10, 1 << 20), 0);
        // Within 8 bytes ("ee\nfour\n"), the start is after the first line break among them.
        assert_eq!(start(text, 10, 8), 14);
        // No line break in the window but the last: the window's start.
        let long = [b'x'; 100];
        let mut text = long.to_vec();
        text.push(b'\n');
        assert_eq!(start(&text, 10, 16), 101 - 16);
        // A file with no line break at all, longer than the window.
        assert_eq!(start(&long, 10, 16), 100 - 16);
        std::fs::remove_file(&path).unwrap();
    }
}
