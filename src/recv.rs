//! The errors of receiving from a [`Subscription`](crate::Subscription) or an
//! [`Tail`](crate::Tail): memtail's own, so that the channel
//! underneath can change without changing them.

use std::error::Error;
use std::fmt;

/// The error of [`Subscription::recv`](crate::Subscription::recv): every handle to the buffer is
/// gone and nothing is queued, so nothing more will arrive.
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::new();
/// let sub = buf.events();
/// drop(buf);
/// assert_eq!(sub.recv(), Err(memtail::RecvError));
/// assert_eq!(memtail::RecvError.to_string(), "the buffer is gone and nothing is queued");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecvError;

/// The error of [`Subscription::try_recv`](crate::Subscription::try_recv).
///
/// # Examples
///
/// ```
/// use memtail::TryRecvError;
///
/// let buf = memtail::LogBuffer::new();
/// let sub = buf.events();
/// assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
/// assert!(TryRecvError::Empty.is_empty());
/// drop(buf);
/// assert_eq!(sub.try_recv(), Err(TryRecvError::Disconnected));
/// assert!(TryRecvError::Disconnected.is_disconnected());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing is queued now.
    Empty,
    /// Every handle to the buffer is gone and nothing is queued.
    Disconnected,
}

impl TryRecvError {
    /// Whether nothing was queued (more may come).
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// Whether nothing more will come.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Disconnected)
    }
}

/// The error of [`Subscription::recv_timeout`](crate::Subscription::recv_timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use memtail::RecvTimeoutError;
///
/// let buf = memtail::LogBuffer::new();
/// let sub = buf.events();
/// let waited = sub.recv_timeout(Duration::from_millis(1));
/// assert_eq!(waited, Err(RecvTimeoutError::Timeout));
/// assert!(RecvTimeoutError::Timeout.is_timeout());
/// assert!(RecvTimeoutError::Disconnected.is_disconnected());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// Every handle to the buffer is gone and nothing is queued.
    Disconnected,
}

impl RecvTimeoutError {
    /// Whether nothing arrived in time (more may come).
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether nothing more will come.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Disconnected)
    }
}

const GONE: &str = "the buffer is gone and nothing is queued";

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(GONE)
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no entry is queued now"),
            TryRecvError::Disconnected => f.write_str(GONE),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("no entry arrived in time"),
            RecvTimeoutError::Disconnected => f.write_str(GONE),
        }
    }
}

impl Error for RecvError {}
impl Error for TryRecvError {}
impl Error for RecvTimeoutError {}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> TryRecvError {
        TryRecvError::Disconnected
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> RecvTimeoutError {
        RecvTimeoutError::Disconnected
    }
}
