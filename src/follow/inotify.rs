//! Waiting for a followed file to change, on Linux: inotify watches on the file and on its
//! directory, an eventfd to be woken for stop, and `poll(2)` over them (and over a FIFO being
//! read), all through `rustix`'s safe wrappers.

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use super::wake::{Wake, Watching};

/// Wakes the follower's thread: written once, when the follower stops.
#[derive(Clone)]
pub(super) struct Stopper(Arc<OwnedFd>);

impl Stopper {
    pub(super) fn stop(&self) {
        let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
    }
}

/// The follower thread's side.
pub(super) struct Kernel {
    stop: Arc<OwnedFd>,
    watches: Option<Watches>,
}

/// inotify watches on the followed path's directory (for the name) and on the file read now.
struct Watches {
    fd: OwnedFd,
    dir: PathBuf,
    name: OsString,
    dir_wd: Option<i32>,
    file_wd: Option<i32>,
    /// Files that appeared at the path (created there, or renamed to it) since watching began.
    arrivals: u64,
    buf: Vec<MaybeUninit<u8>>,
}

impl Kernel {
    /// An eventfd for stop, and inotify watches for `path` unless `polling`. `None` when not even
    /// the eventfd can be had (the follower then waits on a channel).
    pub(super) fn new(path: &Path, polling: bool) -> Option<(Kernel, Stopper)> {
        let stop = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?);
        let mut kernel = Kernel {
            stop: Arc::clone(&stop),
            watches: None,
        };
        if !polling {
            kernel.watches = Watches::new(path);
        }
        Some((kernel, Stopper(stop)))
    }

    pub(super) fn watching(&self) -> Watching {
        match self.watches {
            Some(_) => Watching::Notifications,
            None => Watching::Polling,
        }
    }

    /// How many files appeared at the path since watching began.
    pub(super) fn arrivals(&self) -> u64 {
        self.watches.as_ref().map_or(0, |watches| watches.arrivals)
    }

    /// Watches the file now at the path (after it was opened), and the directory again if its
    /// watch was lost (the directory was removed and made again). Falls back to polling when
    /// the kernel refuses (the watch limit).
    pub(super) fn rewatch(&mut self, path: &Path) -> io::Result<()> {
        let Some(watches) = &mut self.watches else {
            return Ok(());
        };
        match watches.rewatch(path) {
            Ok(()) => Ok(()),
            Err(Errno::NOSPC) | Err(Errno::NOMEM) => {
                self.watches = None;
                Err(io::Error::other(
                    "inotify's watch limit is reached (fs.inotify.max_user_watches): polling instead",
                ))
            }
            // The file or the directory is not there (yet): the next look finds it.
            Err(_) => Ok(()),
        }
    }

    /// Waits until `timeout` passes, something changed at the path, a stream has bytes (or lost
    /// its writers), or the follower stops. Events about other names in the directory (a
    /// sibling file created or removed) are read and let go without waking the follower.
    pub(super) fn wait(&mut self, timeout: Duration, stream: Option<BorrowedFd<'_>>) -> Wake {
        if let Some(watches) = &mut self.watches {
            // The directory may have come back (or been made) since its watch ended.
            let _ = watches.watch_dir();
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let readable = PollFlags::IN;
            let mut fds = Vec::with_capacity(3);
            fds.push(PollFd::from_borrowed_fd(self.stop.as_fd(), readable));
            if let Some(watches) = &self.watches {
                fds.push(PollFd::from_borrowed_fd(watches.fd.as_fd(), readable));
            }
            if let Some(stream) = stream {
                fds.push(PollFd::from_borrowed_fd(stream, readable));
            }
            let timeout = left.and_then(|left| rustix::event::Timespec::try_from(left).ok());
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) => return Wake::Timeout,
                Ok(_) => {}
                Err(_) => return Wake::Changed,
            }
            if !fds[0].revents().is_empty() {
                return Wake::Stop;
            }
            let stream_ready = stream.is_some() && !fds[fds.len() - 1].revents().is_empty();
            drop(fds);
            match self.watches.as_mut().map(Watches::drain) {
                Some(Drained::MoreThanWrites) | None => return Wake::Changed,
                Some(Drained::Writes) => return Wake::Appended,
                Some(Drained::Nothing) if stream_ready => return Wake::Appended,
                // Only other names' events: wait on, for what is left of the time.
                Some(Drained::Nothing) => {}
            }
        }
    }
}

/// What the events read at once said about the followed path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drained {
    /// Nothing: only other files in the directory.
    Nothing,
    /// Bytes were written to the followed file.
    Writes,
    /// More: the path names another file now, the file was moved or deleted, events were lost.
    MoreThanWrites,
}

impl Watches {
    fn new(path: &Path) -> Option<Watches> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut watches = Watches {
            fd,
            dir,
            name: path.file_name()?.to_owned(),
            dir_wd: None,
            file_wd: None,
            arrivals: 0,
            buf: vec![MaybeUninit::uninit(); 16 * 1024],
        };
        match watches.watch_dir() {
            Err(Errno::NOSPC) | Err(Errno::NOMEM) => None,
            _ => Some(watches),
        }
    }

    fn watch_dir(&mut self) -> Result<(), Errno> {
        if self.dir_wd.is_none() {
            // Names coming and going only: a file's writes and attributes are told by its own
            // watch, so that a busy sibling file in the directory wakes nothing.
            let flags = WatchFlags::CREATE
                | WatchFlags::MOVED_TO
                | WatchFlags::MOVED_FROM
                | WatchFlags::DELETE
                | WatchFlags::MOVE_SELF
                | WatchFlags::DELETE_SELF
                | WatchFlags::ONLYDIR;
            self.dir_wd = Some(inotify::add_watch(&self.fd, &self.dir, flags)?);
        }
        Ok(())
    }

    fn rewatch(&mut self, path: &Path) -> Result<(), Errno> {
        self.watch_dir()?;
        if let Some(old) = self.file_wd.take() {
            // Watches follow files, not names: the old file's watch ends here.
            let _ = inotify::remove_watch(&self.fd, old);
        }
        let flags = WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::MOVE_SELF
            | WatchFlags::DELETE_SELF;
        self.file_wd = Some(inotify::add_watch(&self.fd, path, flags)?);
        Ok(())
    }

    /// Reads every pending event, counting the files that arrived at the path; says whether
    /// they were about the followed path at all, and whether anything but bytes written may
    /// have happened (the path names another file now, the file was moved or deleted, events
    /// were lost).
    fn drain(&mut self) -> Drained {
        let mut reader = inotify::Reader::new(&self.fd, &mut self.buf);
        let (mut arrivals, mut dir_gone, mut more_than_writes) = (0, false, false);
        let mut ours_at_all = false;
        let written = ReadFlags::MODIFY;
        // One read of what is pending: what comes after wakes the next wait (a second read
        // here would mostly find nothing, a system call per wake for naught).
        let mut first = true;
        while first || !reader.is_buffer_empty() {
            first = false;
            let Ok(event) = reader.next() else {
                break;
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                more_than_writes = true;
                ours_at_all = true;
            }
            if Some(event.wd()) == self.dir_wd {
                if flags
                    .intersects(ReadFlags::IGNORED | ReadFlags::MOVE_SELF | ReadFlags::DELETE_SELF)
                {
                    // The directory went away or was renamed: the path is in another one
                    // now, or nowhere; watch it again by name.
                    dir_gone = true;
                    more_than_writes = true;
                    ours_at_all = true;
                }
                let ours = event
                    .file_name()
                    .is_some_and(|name| name.to_bytes() == self.name.as_bytes());
                ours_at_all |= ours;
                if ours && flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) {
                    arrivals += 1;
                }
                if ours && !written.contains(flags) {
                    more_than_writes = true;
                }
            } else {
                ours_at_all = true;
                if !written.contains(flags) {
                    // The file itself: moved, deleted, its attributes changed (or a watch ended).
                    more_than_writes = true;
                }
            }
        }
        self.arrivals += arrivals;
        if dir_gone {
            if let Some(wd) = self.dir_wd.take() {
                let _ = inotify::remove_watch(&self.fd, wd);
            }
        }
        match (ours_at_all, more_than_writes) {
            (_, true) => Drained::MoreThanWrites,
            (true, false) => Drained::Writes,
            (false, false) => Drained::Nothing,
        }
    }
}
