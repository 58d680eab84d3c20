//! The byte ring and its entry index: append, evict to half, read ranges.
//!
//! No locking and no I/O here: [`crate::LogBuffer`] wraps a [`Ring`] in its lock.

// Implementation notes.
//
// The retained bytes live contiguously at the front of `data`, oldest first, so every read is one
// slice and a snapshot is one copy. When an entry does not fit, whole entries are evicted from the
// front until at most half the capacity remains (or less, if the new entry needs more room), and the
// survivors are moved to the front with one `copy_within`. Because that leaves at least half the
// capacity free, the move happens at most once per `capacity / 2` bytes written: amortised, well
// under one byte moved per byte written, in exchange for reads that never wrap.
//
// The index records the absolute stream position at which each retained entry starts; `base` is the
// absolute position of `data[0]`. Positions only grow, so compaction changes `base` and nothing else.

use std::collections::VecDeque;
use std::ops::Range;

/// Counters kept by the ring. Everything is counted at the moment it happens, under the writer's lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RingCounters {
    pub(crate) entries_written: u64,
    pub(crate) bytes_written: u64,
    pub(crate) entries_evicted: u64,
    pub(crate) bytes_evicted: u64,
    pub(crate) entries_cut: u64,
    pub(crate) bytes_cut: u64,
}

/// A bounded byte ring that keeps whole entries.
pub(crate) struct Ring {
    capacity: usize,
    /// The retained bytes, oldest first; never longer than `capacity`.
    data: Vec<u8>,
    /// Absolute stream position of the first byte of each retained entry, oldest first.
    starts: VecDeque<u64>,
    /// Absolute stream position of `data[0]`.
    base: u64,
    /// The sequence number the next entry gets.
    next_seq: u64,
    counters: RingCounters,
}

/// Where an appended entry landed.
pub(crate) struct Appended {
    pub(crate) seq: u64,
    /// The stored bytes of the entry, as a range of [`Ring::bytes`].
    pub(crate) range: Range<usize>,
}

/// The smallest allocation the ring grows to on its first write (or its capacity, if smaller).
const MIN_ALLOCATION: usize = 4096;

impl Ring {
    /// A ring that keeps at most `capacity` bytes. The storage grows on demand, up to `capacity`.
    pub(crate) fn new(capacity: usize) -> Ring {
        debug_assert!(capacity > 0);
        Ring {
            capacity,
            data: Vec::new(),
            starts: VecDeque::new(),
            base: 0,
            next_seq: 0,
            counters: RingCounters::default(),
        }
    }

    /// The retained bytes, oldest first, starting at an entry boundary.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// How many entries are retained.
    pub(crate) fn entry_count(&self) -> usize {
        self.starts.len()
    }

    /// The sequence number of the oldest retained entry (equal to `next_seq` when empty).
    pub(crate) fn first_seq(&self) -> u64 {
        self.next_seq - self.starts.len() as u64
    }

    /// The sequence number the next entry will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn counters(&self) -> RingCounters {
        self.counters
    }

    /// Appends one entry, evicting the oldest entries whole if it does not fit.
    ///
    /// An empty entry is not stored and gets no sequence number. An entry longer than the capacity
    /// keeps its first `capacity` bytes; the rest is counted as cut.
    pub(crate) fn append(&mut self, entry: &[u8]) -> Option<Appended> {
        if entry.is_empty() {
            return None;
        }
        let entry = if entry.len() > self.capacity {
            self.counters.entries_cut += 1;
            self.counters.bytes_cut += (entry.len() - self.capacity) as u64;
            &entry[..self.capacity]
        } else {
            entry
        };
        if self.data.len() + entry.len() > self.capacity {
            self.evict_for(entry.len());
        }
        self.reserve(entry.len());

        let offset = self.data.len();
        self.starts.push_back(self.base + offset as u64);
        self.data.extend_from_slice(entry);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters.entries_written += 1;
        self.counters.bytes_written += entry.len() as u64;
        Some(Appended {
            seq,
            range: offset..self.data.len(),
        })
    }

    /// Evicts the oldest entries until at most half the capacity remains and `incoming` more bytes
    /// fit, then moves the survivors to the front.
    fn evict_for(&mut self, incoming: usize) {
        let keep_at_most = (self.capacity / 2).min(self.capacity - incoming);
        let mut cut = 0;
        while self.data.len() - cut > keep_at_most {
            if self.starts.pop_front().is_none() {
                break;
            }
            self.counters.entries_evicted += 1;
            cut = match self.starts.front() {
                Some(&start) => (start - self.base) as usize,
                None => self.data.len(),
            };
        }
        self.counters.bytes_evicted += cut as u64;
        self.data.copy_within(cut.., 0);
        self.data.truncate(self.data.len() - cut);
        self.base += cut as u64;
    }

    /// Makes room for `additional` bytes without ever allocating more than the capacity.
    fn reserve(&mut self, additional: usize) {
        let needed = self.data.len() + additional;
        if needed <= self.data.capacity() {
            return;
        }
        let target = (self.data.capacity() * 2)
            .max(MIN_ALLOCATION)
            .max(needed)
            .min(self.capacity);
        self.data.reserve_exact(target - self.data.len());
    }

    /// The sequence numbers and byte ranges (into [`Ring::bytes`]) of the retained entries whose
    /// sequence number is `from` or later, oldest first.
    pub(crate) fn ranges_from(&self, from: u64) -> impl Iterator<Item = (u64, Range<usize>)> + '_ {
        let first = self.first_seq();
        let skip = from.saturating_sub(first).min(self.starts.len() as u64) as usize;
        let end = self.base + self.data.len() as u64;
        (skip..self.starts.len()).map(move |i| {
            let start = self.starts[i];
            let stop = self.starts.get(i + 1).copied().unwrap_or(end);
            (
                first + i as u64,
                (start - self.base) as usize..(stop - self.base) as usize,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ring: &Ring) -> Vec<(u64, Vec<u8>)> {
        ring.ranges_from(0)
            .map(|(seq, r)| (seq, ring.bytes()[r].to_vec()))
            .collect()
    }

    #[test]
    fn evicts_whole_entries_down_to_half() {
        let mut ring = Ring::new(10);
        for chunk in [&b"aaa"[..], b"bbb", b"ccc"] {
            ring.append(chunk);
        }
        assert_eq!(ring.bytes(), b"aaabbbccc");
        // 9 + 2 > 10: evict until at most 5 remain, i.e. drop "aaa" and "bbb".
        let appended = ring.append(b"dd").expect("non-empty entry");
        assert_eq!(appended.seq, 3);
        assert_eq!(ring.bytes(), b"cccdd");
        assert_eq!(ring.first_seq(), 2);
        assert_eq!(ring.counters().entries_evicted, 2);
        assert_eq!(ring.counters().bytes_evicted, 6);
        assert_eq!(
            entries(&ring),
            vec![(2, b"ccc".to_vec()), (3, b"dd".to_vec())]
        );
    }

    #[test]
    fn large_entry_evicts_more_than_half() {
        let mut ring = Ring::new(10);
        ring.append(b"aa");
        ring.append(b"bb");
        ring.append(b"cc");
        ring.append(b"12345678");
        assert_eq!(ring.bytes(), b"cc12345678".as_slice());
    }

    #[test]
    fn oversized_entry_keeps_its_head() {
        let mut ring = Ring::new(4);
        ring.append(b"xy");
        ring.append(b"abcdefg");
        assert_eq!(ring.bytes(), b"abcd");
        assert_eq!(ring.counters().entries_cut, 1);
        assert_eq!(ring.counters().bytes_cut, 3);
        assert_eq!(ring.counters().bytes_written, 6);
    }

    #[test]
    fn storage_never_exceeds_capacity() {
        let mut ring = Ring::new(5000);
        for i in 0..10_000usize {
            ring.append(&vec![b'x'; 1 + i % 700]);
            assert!(ring.bytes().len() <= 5000);
            assert!(ring.data.capacity() <= 5000);
        }
    }

    #[test]
    fn empty_entry_is_not_stored() {
        let mut ring = Ring::new(8);
        assert!(ring.append(b"").is_none());
        assert_eq!(ring.next_seq(), 0);
        assert_eq!(ring.entry_count(), 0);
    }
}
