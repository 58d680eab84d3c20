//! Why a follower's wait ended, and how it waits: plain types that the follower and the
//! inotify waiter share.

/// How a file follower learns that the file changed: see
/// [`Follower::watching`](super::Follower::watching).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Watching {
    /// The kernel says so (inotify), and the follower checks every
    /// [`reconcile_interval`](super::Follow::reconcile_interval) anyway.
    Notifications,
    /// The follower checks every [`poll_interval`](super::Follow::poll_interval).
    Polling,
}

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wake {
    Stop,
    /// Bytes were written to the file (and nothing else happened, as far as notifications say).
    Appended,
    /// Something happened: look at the path too.
    Changed,
    Timeout,
}
