use std::fmt;

use crate::Entry;

/// What [`LogBuffer::since`](crate::LogBuffer::since) found: the retained entries from a sequence
/// number on, and how many entries from that number on were evicted before they could be read.
///
/// This is the `/dev/kmsg` contract: a reader that fell behind learns exactly how much it lost, then
/// resumes from [`next_seq`](Replay::next_seq).
///
/// # Examples
///
/// ```
/// use memtail::LogBuffer;
///
/// let buf = LogBuffer::with_capacity(10);
/// for line in ["aaa", "bbb", "ccc", "ddd"] {
///     buf.append(line.as_bytes());
/// }
/// // "ddd" did not fit: "aaa" and "bbb" were evicted, leaving at most half the capacity.
/// let replay = buf.since(0);
/// assert_eq!(replay.missed(), 2);
/// assert_eq!(replay.entries()[0].seq(), 2);
/// assert_eq!(replay.next_seq(), 4);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Replay {
    entries: Vec<Entry>,
    missed: u64,
    next_seq: u64,
}

impl Replay {
    pub(crate) fn new(entries: Vec<Entry>, missed: u64, next_seq: u64) -> Replay {
        Replay {
            entries,
            missed,
            next_seq,
        }
    }

    /// The retained entries with the asked sequence number or a later one, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Takes the entries.
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    /// How many entries from the asked sequence number on are no longer retained: 0 if none were
    /// evicted, or if the asked number is still in the future.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The sequence number the buffer will give its next entry: where to resume reading.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

impl IntoIterator for Replay {
    type Item = Entry;
    type IntoIter = std::vec::IntoIter<Entry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("entries", &self.entries.len())
            .field("missed", &self.missed)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}
