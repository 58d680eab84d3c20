/// Counters of a [`LogBuffer`](crate::LogBuffer), read together under its lock (the two follower
/// counters are kept apart from the lock, so they may be a moment ahead or behind the rest).
///
/// Nothing leaves the buffer uncounted: `bytes_written - bytes_evicted` is what the ring holds now,
/// `bytes_written + bytes_cut` is every byte ever offered, every entry a subscription did not
/// receive is in its [`dropped`](crate::Subscription::dropped) count and in `subscriber_drops`, and
/// every entry a follower (an async subscription, an HTTP stream, a publisher) lost because the
/// ring evicted it before the follower read it is in `follower_missed`.
///
/// # Examples
///
/// ```
/// let buf = memtail::LogBuffer::with_capacity(10);
/// buf.append(b"0123456789abc"); // longer than the capacity: the first 10 bytes are kept
/// let stats = buf.stats();
/// assert_eq!(stats.entries_written, 1);
/// assert_eq!(stats.bytes_written, 10);
/// assert_eq!(stats.entries_cut, 1);
/// assert_eq!(stats.bytes_cut, 3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Entries taken (empty writes are not entries). Also the next sequence number.
    pub entries_written: u64,
    /// Bytes stored, after cutting oversized entries.
    pub bytes_written: u64,
    /// Entries evicted, oldest first, to make room.
    pub entries_evicted: u64,
    /// Bytes of the evicted entries.
    pub bytes_evicted: u64,
    /// Entries longer than the capacity, cut to it.
    pub entries_cut: u64,
    /// Bytes removed from the ends of cut entries.
    pub bytes_cut: u64,
    /// Entries retained now.
    pub retained_entries: u64,
    /// Bytes retained now (the same as [`LogBuffer::len`](crate::LogBuffer::len)).
    pub retained_bytes: u64,
    /// Live subscriptions now.
    pub subscribers: u64,
    /// Entries dropped for full subscriptions, summed over all of them, past and present.
    pub subscriber_drops: u64,
    /// Entries queued now for subscriptions, summed over all of them: what followers hold but
    /// have not taken yet. At most `subscribers` × their channel sizes.
    pub subscriber_queued: u64,
    /// Followers now: positions in the ring that read it at their own pace ([`Tail`](crate::Tail)s,
    /// HTTP streams, publishers). A writer does no work for them.
    pub followers: u64,
    /// Entries that followers, summed over all of them, past and present, lost because the ring
    /// evicted them before the follower read them (the oldest are lost, never the newest). A
    /// follower that starts at an earlier sequence number (a [`Tail`](crate::Tail) from
    /// [`Start::At`](crate::Start::At), an SSE stream resumed with `Last-Event-ID`) counts the
    /// entries already evicted then.
    pub follower_missed: u64,
}
