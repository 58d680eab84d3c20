//! Times as the ring keeps them: nanoseconds since the Unix epoch, and the clock they come from.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock for [`Builder::clock`](crate::Builder::clock): returns the time since the Unix epoch,
/// now.
///
/// A plain function (a closure that captures nothing coerces to one), called once per entry.
/// A clock that counts from elsewhere (`quanta::Instant`, a monotonic clock) must add its offset
/// to the Unix epoch itself, from a `static` set once.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let clock: memtail::Clock = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
/// assert!(clock() > Duration::from_secs(1_700_000_000));
/// ```
pub type Clock = fn() -> Duration;

/// [`Builder::timestamps`](crate::Builder::timestamps)'s clock: `SystemTime::now`.
pub(crate) fn system_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Nanoseconds since the Unix epoch (0 for a time before it, which no entry has).
pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, duration_nanos)
}

/// A time since the Unix epoch in nanoseconds, as the ring keeps it (until the year 2554).
#[inline]
pub(crate) fn duration_nanos(since: Duration) -> u64 {
    since
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(since.subsec_nanos()))
}

/// The time `unix_nanos` gave.
pub(crate) fn from_unix_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}
