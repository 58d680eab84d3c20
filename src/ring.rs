//! The byte ring and its entry index: append, evict to half, read ranges.
//!
//! No locking and no I/O here: [`crate::LogBuffer`] wraps a [`Ring`] in its lock.

// Implementation notes.
//
// `data` is a circular byte buffer: the retained bytes start at `head` and run for `len` bytes,
// wrapping at the end of `data`. Readers see a *logical* view in which offset 0 is the oldest
// retained byte; `slices` turns a logical range into at most two physical slices.
//
// When an entry does not fit, whole entries are evicted from the front (just `head` moves) until at
// most half the capacity remains, or less when the new entry needs more room. Since eviction leaves
// at least half the capacity free, it runs at most once per `capacity / 2` bytes written, and no
// byte is ever moved by it: the cost of a write is one copy of the entry.
//
// `data` grows by doubling as entries arrive, up to the capacity, so a large ring that is barely
// used costs little. While it is smaller than the capacity, the retained bytes never wrap: growing
// copies them to the front of the new allocation.
//
// The index keeps one word per retained entry, oldest first: in the low 56 bits, the absolute
// offset just past the entry (bytes stored since the ring was made, modulo 2^56), and a metadata
// byte in the high 8: the entry's level in its low bits (`Level::encode`), and `TIMED` when the
// entry has a time of its own.
//
// Times, targets and spans are kept beside the index, one slot per retained entry, each from the
// first entry that had one (the entries before get an empty slot): a ring fed by `io::Write`
// alone keeps none of them. The time kept for an entry without one is the time before it, so
// that times never decrease along the ring and a search by time is a binary search; `TIMED`
// tells the entries whose time is their own. The first retained byte's absolute offset is the number
// of bytes evicted, so an entry's logical range comes from its word and its predecessor's in O(1):
// a reader at sequence number `s` finds its place without walking the index. Offsets are compared
// modulo 2^56, which is safe because the ring never retains as much as 2^56 bytes.

use std::collections::VecDeque;
use std::ops::Range;

const OFFSET_BITS: u32 = 56;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// The largest capacity the index can describe: 2^56 - 1 bytes (64 PiB, beyond any address space a
/// process gets), or `isize::MAX` where that is smaller.
pub(crate) const MAX_CAPACITY: usize = {
    let index_limit = OFFSET_MASK;
    let address_limit = isize::MAX as u64;
    (if index_limit < address_limit {
        index_limit
    } else {
        address_limit
    }) as usize
};

/// One retained entry as the ring returns it: sequence number, logical byte range, level
/// (`Level::encode`).
pub(crate) type Span = (u64, Range<usize>, u8);

/// The metadata bits that hold the level.
const LEVEL_BITS: u8 = 0x07;
/// The metadata bit of an entry with a time of its own.
const TIMED: u8 = 0x08;

/// What an entry carries beside its bytes, as the writer hands it to the ring. Every field's
/// zero means "none", so that a plain write passes constants the compiler folds away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tags {
    /// `Level::encode`.
    pub(crate) level: u8,
    /// Nanoseconds since the Unix epoch.
    pub(crate) time: u64,
    /// An interned target (`crate::target`).
    pub(crate) target: u16,
}

/// What the ring keeps of an entry beside its bytes and level, as readers get it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extras {
    /// The time the entry was stored with (never earlier than the entry before's), if it had one.
    pub(crate) time: Option<u64>,
    /// An interned target, 0 for none.
    pub(crate) target: u16,
    /// The entry's span and root span, zeros for none.
    pub(crate) span: [u64; 2],
}

/// Counters kept by the ring, counted at the moment things happen, under the writer's lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RingCounters {
    pub(crate) entries_evicted: u64,
    pub(crate) bytes_evicted: u64,
    pub(crate) entries_cut: u64,
    pub(crate) bytes_cut: u64,
}

/// A bounded byte ring that keeps whole entries.
pub(crate) struct Ring {
    capacity: usize,
    /// Physical storage; grows up to `capacity`.
    data: Vec<u8>,
    /// Physical offset of the oldest retained byte.
    head: usize,
    /// Retained bytes; never more than `capacity`.
    len: usize,
    /// Where the next entry's bytes go, and how many fit there without wrapping, evicting or
    /// growing: worked out after every change but a plain append, which takes them from here.
    tail: usize,
    room: usize,
    /// End offset and metadata of each retained entry, oldest first (see the notes above).
    index: VecDeque<u64>,
    /// When each retained entry was appended (nanoseconds since the Unix epoch), oldest first,
    /// once any entry had a time (or from the start, for a ring that records times).
    times: Option<VecDeque<u64>>,
    /// The latest time stored, kept through evictions: no entry's time is earlier.
    last_time: u64,
    /// The target (an interned number, 0 for none) of each retained entry, oldest first, once
    /// any entry had one.
    targets: Option<VecDeque<u16>>,
    /// The span, root span and ordinal in its group of each retained entry, oldest first, once
    /// any entry had a span (see [`Ring::group_of`]).
    spans: Option<VecDeque<[u64; 3]>>,
    /// The span of the next entry (see [`Ring::span_next`]), zeros for none.
    next_span: [u64; 3],
    /// The ordinal the next entry without a span gets in the group of such entries: entries
    /// without a span written so far.
    unscoped: u64,
    /// Whether `times`, `targets` or `spans` is kept: one test on the common path for all.
    extras: bool,
    /// The sequence number the next entry gets.
    next_seq: u64,
    /// How many times entries were evicted to make room (each time, down to half the capacity).
    evictions: u64,
    counters: RingCounters,
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
            head: 0,
            len: 0,
            tail: 0,
            room: 0,
            index: VecDeque::new(),
            times: None,
            last_time: 0,
            targets: None,
            spans: None,
            next_span: [0; 3],
            unscoped: 0,
            extras: false,
            next_seq: 0,
            evictions: 0,
            counters: RingCounters::default(),
        }
    }

    /// How many bytes are retained.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many entries are retained.
    pub(crate) fn entry_count(&self) -> usize {
        self.index.len()
    }

    /// The sequence number of the oldest retained entry (equal to `next_seq` when empty).
    pub(crate) fn first_seq(&self) -> u64 {
        self.next_seq - self.index.len() as u64
    }

    /// The sequence number the next entry will get; also how many entries were ever written.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The ring records when each entry was appended (the time given to `append`) from now on.
    pub(crate) fn record_times(&mut self) {
        self.times.get_or_insert_with(VecDeque::new);
        self.extras = true;
    }

    /// Whether the ring records times: it was made to, or some entry had one.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn records_times(&self) -> bool {
        self.times.is_some()
    }

    /// The position in the index of the retained entry `seq`.
    #[inline]
    fn position(&self, seq: u64) -> Option<usize> {
        let at = usize::try_from(seq.checked_sub(self.first_seq())?).ok()?;
        (at < self.index.len()).then_some(at)
    }

    /// When the retained entry `seq` was appended, if it has a time and the ring retains it.
    pub(crate) fn time_of(&self, seq: u64) -> Option<u64> {
        self.time_at(self.position(seq)?)
    }

    /// The time of the entry at `at` in the index, if it has one.
    fn time_at(&self, at: usize) -> Option<u64> {
        let times = self.times.as_ref()?;
        let timed = (self.index[at] >> OFFSET_BITS) as u8 & TIMED != 0;
        timed.then(|| times[at])
    }

    /// The first retained entry appended at `time` or later (times grow with sequence numbers),
    /// or `next_seq` when none was; `None` if no entry of the ring ever had a time.
    pub(crate) fn first_at_or_after(&self, time: u64) -> Option<u64> {
        let times = self.times.as_ref()?;
        Some(self.first_seq() + times.partition_point(|&at| at < time) as u64)
    }

    /// The target of the entry at `at` in the index (0: none).
    fn target_at(&self, at: usize) -> u16 {
        self.targets.as_ref().map_or(0, |targets| targets[at])
    }

    /// The time, target and spans of the retained entry `seq` (all empty when it is not).
    #[inline]
    pub(crate) fn extras_of(&self, seq: u64) -> Extras {
        let at = match self.position(seq) {
            Some(at) if self.extras => at,
            _ => return Extras::default(),
        };
        Extras {
            time: self.time_at(at),
            target: self.target_at(at),
            span: self
                .spans
                .as_ref()
                .map_or([0; 2], |spans| [spans[at][0], spans[at][1]]),
        }
    }

    /// The group of the retained entry `seq` (its root span's id, 0 for an entry without a span)
    /// and its ordinal in that group (how many entries of the group were written before it);
    /// `None` when it is not retained. Before any entry had a span, every entry is in group 0,
    /// at its sequence number.
    pub(crate) fn group_of(&self, seq: u64) -> Option<(u64, u64)> {
        let at = self.position(seq)?;
        Some(match &self.spans {
            Some(spans) => (spans[at][1], spans[at][2]),
            None => (0, seq),
        })
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }

    pub(crate) fn counters(&self) -> RingCounters {
        self.counters
    }

    /// Bytes stored since the ring was made: those evicted plus those retained.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.counters.bytes_evicted + self.len as u64
    }

    /// [`append_tagged`](Ring::append_tagged) with a level and a time only, for the tests.
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        entry: &[u8],
        level: u8,
        time: u64,
    ) -> Option<(u64, Range<usize>)> {
        self.append_tagged(
            entry,
            Tags {
                level,
                time,
                ..Tags::default()
            },
        )
    }

    /// Gives the next entry appended the span it was made in, its root (memtail's own span ids,
    /// from 1), and how many entries of that root came before it (its ordinal in its root's
    /// group). Kept apart from [`Tags`] so that a plain write carries no span at all.
    pub(crate) fn span_next(&mut self, span: [u64; 3]) {
        if span[0] != 0 {
            self.next_span = span;
            self.extras = true;
        }
    }

    /// Appends one entry with what it carries (see [`Tags`], and [`Ring::span_next`]), evicting
    /// the oldest entries whole if it does not fit, and returns its sequence number and logical
    /// range.
    ///
    /// An empty entry is not stored and gets no sequence number. An entry longer than the capacity
    /// keeps its first `capacity` bytes; the rest is counted as cut.
    #[inline]
    pub(crate) fn append_tagged(
        &mut self,
        entry: &[u8],
        tags: Tags,
    ) -> Option<(u64, Range<usize>)> {
        // Taken apart here: passed on as a whole, it would be kept in memory (see `commit`).
        let Tags {
            level,
            time,
            target,
        } = tags;
        let n = entry.len();
        #[cfg(debug_assertions)]
        {
            // Up to date, but for a tail that reached the storage's end exactly: no room there
            // (the next entry takes the slow path, which finds the room at the front).
            let kept = (self.tail, self.room);
            self.find_room();
            let (tail, room) = (self.tail, self.room);
            debug_assert!(
                kept == (tail, room) || kept == (self.data.len(), 0),
                "tail and room out of date: {kept:?}, not {:?}",
                (tail, room)
            );
            (self.tail, self.room) = kept;
        }
        // The common case in one test: the entry fits at the tail without evicting, growing or
        // wrapping.
        if n == 0 || n > self.room {
            return self.append_slow(entry, level, time, target);
        }
        let tail = self.tail;
        self.data[tail..tail + n].copy_from_slice(entry);
        self.tail += n;
        self.room -= n;
        Some(self.commit(n, level, time, target))
    }

    /// Works out `tail` and `room`: the free bytes right after the retained ones, without
    /// wrapping: up to the physical end, or, once the retained bytes reach it, from the front up
    /// to `head`. The retained bytes are `head..end` modulo the storage length, so nothing
    /// retained is overwritten, whether the storage is full-sized or still growing.
    fn find_room(&mut self) {
        let end = self.head + self.len;
        (self.tail, self.room) = if end < self.data.len() {
            (end, self.data.len() - end)
        } else {
            let tail = end - self.data.len();
            (tail, self.head - tail)
        };
    }

    /// Physical offset where the next byte goes, worked out from `head` and `len`.
    #[inline]
    fn physical_end(&self) -> usize {
        let tail = self.head + self.len;
        if tail >= self.data.len() {
            tail - self.data.len()
        } else {
            tail
        }
    }

    /// Records an entry of `n` bytes whose bytes were just copied in at the tail.
    #[inline]
    fn commit(&mut self, n: usize, level: u8, time: u64, target: u16) -> (u64, Range<usize>) {
        let start = self.len;
        self.len += n;
        let end = self.counters.bytes_evicted.wrapping_add(self.len as u64) & OFFSET_MASK;
        self.index
            .push_back(end | u64::from(level & LEVEL_BITS) << OFFSET_BITS);
        // One test for a ring that keeps nothing beside its bytes, when the writer's time is
        // known to be none.
        if self.extras || (time | u64::from(target)) != 0 {
            self.commit_extras(time, target);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        (seq, start..self.len)
    }

    /// The time, target and spans of the entry being committed, for a ring that keeps them, or
    /// the first entry with one of them: from then on the ring keeps one slot per entry, empty
    /// for those before.
    fn commit_extras(&mut self, time: u64, target: u16) {
        let before = self.index.len() - 1;
        if time != 0 {
            // Never earlier than the entry before, whatever was evicted since: the clock is read
            // before the lock, so writers can reach it out of order, and the wall clock can step
            // back. Times then follow sequence numbers, and a search by time finds the first
            // entry at or after it.
            self.last_time = self.last_time.max(time);
            if let Some(word) = self.index.back_mut() {
                *word |= u64::from(TIMED) << OFFSET_BITS;
            }
        }
        if time != 0 || self.times.is_some() {
            let last_time = self.last_time;
            let times = self
                .times
                .get_or_insert_with(|| std::iter::repeat(0).take(before).collect());
            times.push_back(last_time);
        }
        if target != 0 || self.targets.is_some() {
            self.targets
                .get_or_insert_with(|| std::iter::repeat(0).take(before).collect())
                .push_back(target);
        }
        let span = std::mem::take(&mut self.next_span);
        if span[0] != 0 || self.spans.is_some() {
            // The entry being committed is in the index, not yet counted in `next_seq`.
            let first = self.next_seq - before as u64;
            let unscoped = &mut self.unscoped;
            let spans = self.spans.get_or_insert_with(|| {
                // Until now every entry was without a span, its ordinal its sequence number.
                *unscoped = first + before as u64;
                (first..first + before as u64)
                    .map(|seq| [0, 0, seq])
                    .collect()
            });
            if span[0] == 0 {
                spans.push_back([0, 0, *unscoped]);
                *unscoped += 1;
            } else {
                spans.push_back(span);
            }
        }
        self.extras = true;
    }

    /// `append` when the entry is empty, too long, or needs eviction, growth or wrapping.
    #[cold]
    fn append_slow(
        &mut self,
        entry: &[u8],
        level: u8,
        time: u64,
        target: u16,
    ) -> Option<(u64, Range<usize>)> {
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
        let n = entry.len();
        if self.len + n > self.capacity {
            self.evict_for(n);
        }
        if self.data.len() < self.capacity && self.head + self.len + n > self.data.len() {
            self.grow(self.len + n);
        }
        let tail = self.physical_end();
        let room = self.data.len() - tail;
        if n <= room {
            self.data[tail..tail + n].copy_from_slice(entry);
        } else {
            self.data[tail..].copy_from_slice(&entry[..room]);
            self.data[..n - room].copy_from_slice(&entry[room..]);
        }
        let committed = self.commit(n, level, time, target);
        self.find_room();
        Some(committed)
    }

    /// Evicts the oldest entries until at most half the capacity remains and `incoming` more bytes
    /// fit.
    fn evict_for(&mut self, incoming: usize) {
        let keep_at_most = (self.capacity / 2).min(self.capacity - incoming);
        let Some(must_evict) = self.len.checked_sub(keep_at_most) else {
            return;
        };
        if must_evict == 0 {
            return;
        }
        // The first entry whose end reaches `must_evict` is the last one to go.
        let last = self
            .index
            .partition_point(|&word| self.logical(word) < must_evict);
        let entries = last + 1;
        let evicted = self.logical(self.index[last]);
        self.index.drain(..entries);
        if let Some(times) = &mut self.times {
            times.drain(..entries);
        }
        if let Some(targets) = &mut self.targets {
            targets.drain(..entries);
        }
        if let Some(spans) = &mut self.spans {
            spans.drain(..entries);
        }
        self.evictions += 1;
        self.counters.entries_evicted += entries as u64;
        self.counters.bytes_evicted += evicted as u64;
        self.len -= evicted;
        self.head += evicted;
        if self.head >= self.data.len() {
            self.head -= self.data.len();
        }
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// Grows the storage so that `needed` bytes fit without wrapping, never beyond the capacity,
    /// moving the retained bytes to its front.
    #[cold]
    fn grow(&mut self, needed: usize) {
        let size = (self.data.len() * 2)
            .max(MIN_ALLOCATION)
            .max(needed)
            .min(self.capacity);
        let mut data = vec![0; size];
        let (a, b) = self.slices(0..self.len);
        data[..a.len()].copy_from_slice(a);
        data[a.len()..self.len].copy_from_slice(b);
        self.data = data;
        self.head = 0;
    }

    /// The bytes of a logical range (0 is the oldest retained byte), as at most two slices.
    pub(crate) fn slices(&self, range: Range<usize>) -> (&[u8], &[u8]) {
        debug_assert!(range.start <= range.end && range.end <= self.len);
        if range.is_empty() {
            return (&[], &[]);
        }
        let mut start = self.head + range.start;
        if start >= self.data.len() {
            start -= self.data.len();
        }
        let len = range.end - range.start;
        if start + len <= self.data.len() {
            (&self.data[start..start + len], &[])
        } else {
            let first = self.data.len() - start;
            (&self.data[start..], &self.data[..len - first])
        }
    }

    /// The logical offset (0 is the oldest retained byte) of the end of the entry whose index
    /// word is `word`.
    #[inline]
    fn logical(&self, word: u64) -> usize {
        ((word & OFFSET_MASK).wrapping_sub(self.counters.bytes_evicted) & OFFSET_MASK) as usize
    }

    /// The sequence numbers, logical ranges and metadata of the retained entries whose sequence
    /// number is `from` or later, oldest first. Finding the first one takes O(1).
    pub(crate) fn ranges_from(&self, from: u64) -> impl Iterator<Item = Span> + '_ {
        let first = self.first_seq();
        let skip = usize::try_from(from.saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(self.index.len());
        let mut start = match skip.checked_sub(1) {
            Some(before) => self.logical(self.index[before]),
            None => 0,
        };
        let mut seq = first + skip as u64;
        self.index.range(skip..).map(move |&word| {
            let end = self.logical(word);
            let item = (seq, start..end, (word >> OFFSET_BITS) as u8 & LEVEL_BITS);
            start = end;
            seq += 1;
            item
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ring: &Ring) -> Vec<(u64, Vec<u8>)> {
        ring.ranges_from(0)
            .map(|(seq, range, _)| (seq, concat(ring.slices(range))))
            .collect()
    }

    fn concat((a, b): (&[u8], &[u8])) -> Vec<u8> {
        [a, b].concat()
    }

    fn retained(ring: &Ring) -> Vec<u8> {
        concat(ring.slices(0..ring.len()))
    }

    #[test]
    fn evicts_whole_entries_down_to_half() {
        let mut ring = Ring::new(10);
        for chunk in [&b"aaa"[..], b"bbb", b"ccc"] {
            ring.append(chunk, 0, 0);
        }
        assert_eq!(retained(&ring), b"aaabbbccc");
        // 9 + 2 > 10: evict until at most 5 remain, i.e. drop "aaa" and "bbb".
        let (seq, range) = ring.append(b"dd", 0, 0).expect("non-empty entry");
        assert_eq!((seq, range), (3, 3..5));
        assert_eq!(retained(&ring), b"cccdd");
        assert_eq!(ring.first_seq(), 2);
        assert_eq!(ring.counters().entries_evicted, 2);
        assert_eq!(ring.counters().bytes_evicted, 6);
        assert_eq!(
            entries(&ring),
            vec![(2, b"ccc".to_vec()), (3, b"dd".to_vec())]
        );
    }

    #[test]
    fn entries_wrap_around_the_end() {
        let mut ring = Ring::new(10);
        for chunk in [&b"aaaa"[..], b"bbbb", b"cccc", b"dddd"] {
            ring.append(chunk, 0, 0);
        }
        // "cccc" evicted "aaaa" and wrapped around the physical end; "dddd" evicted "bbbb".
        assert_eq!(retained(&ring), b"ccccdddd");
        assert_eq!(ring.slices(0..4), (&b"cc"[..], &b"cc"[..]));
        assert_eq!(ring.slices(4..8), (&b"dddd"[..], &b""[..]));
        assert_eq!(
            entries(&ring),
            vec![(2, b"cccc".to_vec()), (3, b"dddd".to_vec())]
        );
    }

    #[test]
    fn large_entry_evicts_more_than_half() {
        let mut ring = Ring::new(10);
        ring.append(b"aa", 0, 0);
        ring.append(b"bb", 0, 0);
        ring.append(b"cc", 0, 0);
        ring.append(b"12345678", 0, 0);
        assert_eq!(retained(&ring), b"cc12345678");
    }

    #[test]
    fn oversized_entry_keeps_its_head() {
        let mut ring = Ring::new(4);
        ring.append(b"xy", 0, 0);
        ring.append(b"abcdefg", 0, 0);
        assert_eq!(retained(&ring), b"abcd");
        assert_eq!(ring.counters().entries_cut, 1);
        assert_eq!(ring.counters().bytes_cut, 3);
        assert_eq!(ring.bytes_written(), 6);
    }

    #[test]
    fn storage_grows_on_demand_and_never_exceeds_capacity() {
        let mut ring = Ring::new(100_000);
        ring.append(b"small", 0, 0);
        assert_eq!(ring.data.len(), MIN_ALLOCATION);
        for i in 0..10_000usize {
            ring.append(&vec![b'x'; 1 + i % 700], 0, 0);
            assert!(ring.len() <= 100_000);
            assert!(ring.data.capacity() <= 100_000);
        }
        assert_eq!(ring.data.len(), 100_000);
    }

    #[test]
    fn times_never_go_back_and_are_found_by_time() {
        let mut ring = Ring::new(12);
        ring.record_times();
        for (entry, time) in [(&b"aaaa"[..], 10), (b"bbbb", 30), (b"cccc", 20)] {
            ring.append(entry, 0, time);
        }
        // The third came with an earlier time: it keeps the second's.
        let times: Vec<Option<u64>> = (0..3).map(|seq| ring.time_of(seq)).collect();
        assert_eq!(times, [Some(10), Some(30), Some(30)]);
        assert_eq!(ring.first_at_or_after(11), Some(1));
        assert_eq!(ring.first_at_or_after(31), Some(3));
        // Evicting keeps times with their entries.
        ring.append(b"dddd", 0, 40);
        assert_eq!(ring.first_seq(), 2);
        assert_eq!(ring.time_of(1), None);
        assert_eq!(ring.time_of(3), Some(40));
        assert_eq!(ring.first_at_or_after(0), Some(2));
        let untimed = Ring::new(8);
        assert_eq!(untimed.first_at_or_after(0), None);
    }

    #[test]
    fn metadata_travels_with_its_entry() {
        let mut ring = Ring::new(10);
        ring.append(b"aaaa", 3, 0);
        ring.append(b"bbbb", 0, 0);
        ring.append(b"cccc", 5, 0); // evicts "aaaa"
        let metas: Vec<(u64, u8)> = ring
            .ranges_from(0)
            .map(|(seq, _, meta)| (seq, meta))
            .collect();
        assert_eq!(metas, [(1, 0), (2, 5)]);
        assert_eq!(ring.counters().bytes_evicted, 4);
    }

    #[test]
    fn a_reader_finds_any_retained_entry_directly() {
        let mut ring = Ring::new(1000);
        for i in 0..500usize {
            ring.append(&vec![b'a' + (i % 26) as u8; 1 + i % 37], (i % 7) as u8, 0);
        }
        let all = entries(&ring);
        let first = ring.first_seq();
        assert!(first > 0, "some were evicted");
        for (k, (seq, bytes)) in all.iter().enumerate() {
            let (found, range, meta) = ring.ranges_from(*seq).next().unwrap();
            assert_eq!((found, concat(ring.slices(range))), (*seq, bytes.clone()));
            assert_eq!(meta, (*seq % 7) as u8);
            assert_eq!(ring.ranges_from(*seq).count(), all.len() - k);
        }
        assert_eq!(
            ring.ranges_from(0).count(),
            all.len(),
            "before the first: all"
        );
        assert_eq!(ring.ranges_from(ring.next_seq()).count(), 0);
        assert_eq!(ring.ranges_from(u64::MAX).count(), 0);
    }

    #[test]
    fn offsets_wrap_at_two_to_the_56() {
        let mut ring = Ring::new(64);
        // As if 2^56 - 20 bytes had gone through the ring already.
        ring.counters.bytes_evicted = OFFSET_MASK - 20;
        for i in 0..40u8 {
            ring.append(&[i; 7], 0, 0);
            let retained = entries(&ring);
            assert!(retained
                .iter()
                .all(|(seq, bytes)| bytes == &[*seq as u8; 7]));
            assert_eq!(retained.last().unwrap().0, u64::from(i));
            assert!(ring.len() <= 64);
        }
        assert!(
            ring.counters.bytes_evicted > OFFSET_MASK,
            "the offsets wrapped"
        );
    }

    #[test]
    fn empty_entry_is_not_stored() {
        let mut ring = Ring::new(8);
        assert!(ring.append(b"", 0, 0).is_none());
        assert_eq!(ring.next_seq(), 0);
        assert_eq!(ring.entry_count(), 0);
    }

    #[test]
    fn targets_arriving_late_stay_in_step_with_entries_and_times_through_evictions() {
        let mut ring = Ring::new(64);
        ring.record_times();
        for i in 0..200u64 {
            // No target for the first 30, then every third entry has one.
            let target = if i >= 30 && i % 3 == 0 {
                (i % 50) as u16 + 1
            } else {
                0
            };
            ring.append_tagged(
                format!("{i:05}\n").as_bytes(),
                Tags {
                    time: 1000 + i,
                    target,
                    ..Tags::default()
                },
            );
            let first = ring.first_seq();
            for seq in first..ring.next_seq() {
                let expected = if seq >= 30 && seq % 3 == 0 {
                    (seq % 50) as u16 + 1
                } else {
                    0
                };
                assert_eq!(
                    ring.extras_of(seq).target,
                    expected,
                    "entry {seq} after writing {i}"
                );
                assert_eq!(ring.time_of(seq), Some(1000 + seq));
            }
            let (a, b) = ring.slices(0..ring.len());
            let text = [a, b].concat();
            assert_eq!(
                text,
                (first..=i)
                    .map(|n| format!("{n:05}\n"))
                    .collect::<String>()
                    .into_bytes()
            );
        }
        assert!(ring.evictions() > 10);
    }

    #[test]
    fn times_and_spans_start_with_the_first_entry_that_has_one() {
        let mut ring = Ring::new(40);
        ring.append(b"plain0\n", 0, 0);
        assert!(!ring.records_times());
        assert_eq!(ring.first_at_or_after(0), None);
        ring.span_next([7, 3, 0]);
        ring.append_tagged(
            b"timed1\n",
            Tags {
                level: 2,
                time: 500,
                ..Tags::default()
            },
        );
        ring.append(b"plain2\n", 0, 0);
        ring.append(b"timed3\n", 0, 400); // an earlier clock: kept at 500
        let extras: Vec<Extras> = (0..4).map(|seq| ring.extras_of(seq)).collect();
        assert_eq!(extras[0], Extras::default());
        assert_eq!(
            extras[1],
            Extras {
                time: Some(500),
                target: 0,
                span: [7, 3]
            }
        );
        // Groups: the entries without a span count on from their sequence numbers.
        let groups: Vec<Option<(u64, u64)>> = (0..5).map(|seq| ring.group_of(seq)).collect();
        assert_eq!(
            groups,
            [Some((0, 0)), Some((3, 0)), Some((0, 1)), Some((0, 2)), None]
        );
        assert_eq!(extras[2], Extras::default(), "no time of its own");
        assert_eq!(extras[3].time, Some(500));
        assert_eq!(ring.first_at_or_after(1), Some(1));
        assert_eq!(ring.first_at_or_after(501), Some(4));
        // The level bits come back without the time's mark.
        let levels: Vec<u8> = ring.ranges_from(0).map(|(_, _, level)| level).collect();
        assert_eq!(levels, [0, 2, 0, 0]);
    }

    #[test]
    fn a_time_is_never_earlier_than_one_evicted_before_it() {
        let mut ring = Ring::new(8);
        ring.append(b"12345678", 0, 2_000);
        // Evicts the whole ring, with a clock that stepped back.
        ring.append(b"abcdefgh", 0, 1_000);
        assert_eq!(ring.first_seq(), 1);
        assert_eq!(ring.time_of(1), Some(2_000));
    }
}
