//! `std::io::Write` for [`LogBuffer`]: one call, one entry.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice, Write};

use crate::LogBuffer;

impl Write for &LogBuffer {
    /// Appends `buf` as one entry and reports all of it as written, even when it was cut to the
    /// capacity (the cut is counted in [`Stats`](crate::Stats)): reporting less would make
    /// `write_all` store the rest as a second entry. An empty `buf` makes no entry.
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    /// Appends all the slices together as one entry.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut joined = take_scratch();
        for buf in bufs {
            joined.extend_from_slice(buf);
        }
        self.append(&joined);
        let written = joined.len();
        give_back_scratch(joined);
        Ok(written)
    }

    /// Formats first, then appends the result as one entry, so `writeln!(buf, ...)` is one entry.
    /// If a `Display` implementation fails, nothing is appended and an error is returned (no panic).
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        if let Some(text) = args.as_str() {
            self.append(text.as_bytes());
            return Ok(());
        }
        let mut formatted = Utf8Sink(take_scratch());
        // `fmt::write` rather than `io::Write::write_fmt` on the Vec: the latter panics when a
        // `Display` impl fails on its own, and bad input must not panic a logger.
        let result = fmt::write(&mut formatted, args);
        if result.is_ok() {
            self.append(&formatted.0);
        }
        give_back_scratch(formatted.0);
        result.map_err(|fmt::Error| io::Error::other("a Display implementation returned an error"))
    }

    /// Does nothing: entries are in the buffer as soon as `write` returns.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for LogBuffer {
    /// See [`impl Write for &LogBuffer`](#impl-Write-for-%26LogBuffer).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        (&*self).write_fmt(args)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Collects formatted text into a byte vector.
struct Utf8Sink(Vec<u8>);

impl fmt::Write for Utf8Sink {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

// A per-thread scratch buffer, so formatting an entry does not allocate once the thread has
// formatted one of that size. It is taken out of its cell while in use: a nested use on the same
// thread (a `Display` impl that itself logs) finds the cell empty and works on a fresh `Vec`.
thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Scratch buffers larger than this are freed rather than kept for the thread's next entry.
const SCRATCH_KEEP: usize = 64 * 1024;

pub(crate) fn take_scratch() -> Vec<u8> {
    SCRATCH.try_with(Cell::take).unwrap_or_default()
}

pub(crate) fn give_back_scratch(mut scratch: Vec<u8>) {
    if scratch.capacity() <= SCRATCH_KEEP {
        scratch.clear();
        // Fails only while the thread is being torn down; the Vec is then simply freed.
        let _ = SCRATCH.try_with(|cell| cell.set(scratch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nested<'a>(&'a LogBuffer);

    impl fmt::Display for Nested<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // Logging while being formatted for a log entry must neither panic nor deadlock.
            writeln!(&mut &*self.0, "inner {}", 1).map_err(|_| fmt::Error)?;
            f.write_str("outer")
        }
    }

    #[test]
    fn nested_formatting_makes_two_whole_entries() {
        let buf = LogBuffer::new();
        writeln!(&mut &buf, "{} {}", Nested(&buf), 2).unwrap();
        let entries = buf.entries();
        assert_eq!(&entries[0][..], b"inner 1\n");
        assert_eq!(&entries[1][..], b"outer 2\n");
    }

    struct Failing;

    impl fmt::Display for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("partial")?;
            Err(fmt::Error)
        }
    }

    #[test]
    fn failed_formatting_appends_nothing() {
        let buf = LogBuffer::new();
        assert!(write!(&mut &buf, "{} {}", 1, Failing).is_err());
        assert!(buf.is_empty());
        assert_eq!(buf.stats().entries_written, 0);
    }

    #[test]
    fn vectored_write_is_one_entry() {
        let mut buf = LogBuffer::new();
        let written = buf
            .write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cd")])
            .unwrap();
        assert_eq!(written, 4);
        assert_eq!(buf.entries().len(), 1);
        assert_eq!(buf.snapshot(), "abcd");
    }
}
