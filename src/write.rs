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

/// A line being formatted: text written through `fmt::Write` with control characters other than
/// line breaks and tabs written as escapes (C0 and DEL as `\x1b`, C1 as `\u{9b}`), so that no
/// entry made by memtail's layer or logger can drive a terminal.
pub(crate) struct Line(pub(crate) Vec<u8>);

impl fmt::Write for Line {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !needs_escape(text.as_bytes()) {
            self.0.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        for c in text.chars() {
            match c {
                '\n' | '\t' => self.0.push(c as u8),
                c if c.is_control() => {
                    // C0 and DEL as `\x1b`, C1 as `\u{9b}`.
                    let code = c as u32;
                    let hex = |n: u32| b"0123456789abcdef"[(n & 15) as usize];
                    if code < 0x80 {
                        self.0
                            .extend_from_slice(&[b'\\', b'x', hex(code >> 4), hex(code)]);
                    } else {
                        self.0.extend_from_slice(&[
                            b'\\',
                            b'u',
                            b'{',
                            hex(code >> 4),
                            hex(code),
                            b'}',
                        ]);
                    }
                }
                c => {
                    let mut utf8 = [0; 4];
                    self.0
                        .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        Ok(())
    }
}

/// Whether `text` holds a control character other than a line break or a tab: C0, DEL, or C1
/// (whose two-byte encodings, of U+0080 to U+009F, start with 0xc2; so do those of U+00A0 to
/// U+00BF, which are then looked at more closely). One pass without branches, so that the
/// compiler can look at many bytes at a time.
#[inline]
fn needs_escape(text: &[u8]) -> bool {
    text.iter().fold(false, |found, &b| {
        found | ((b < 0x20) & (b != b'\n') & (b != b'\t')) | (b == 0x7f) | (b == 0xc2)
    })
}

/// `n` in decimal, as `Display` writes it, in `digits`: the slice of it that holds the digits.
/// (Without the formatting machinery: a log line's numbers are written on the hot path.)
#[cfg_attr(not(any(feature = "tracing", feature = "http")), allow(dead_code))]
pub(crate) fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[at..]
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

    #[test]
    fn a_line_escapes_controls_but_line_breaks_and_tabs() {
        use std::fmt::Write as _;
        let mut line = Line(Vec::new());
        write!(line, "a\x1b[31mb\tc\nd\u{9b}e\u{7f}f é\r").unwrap();
        assert_eq!(
            String::from_utf8(line.0).unwrap(),
            "a\\x1b[31mb\tc\nd\\u{9b}e\\x7ff é\\x0d"
        );
        assert!(!needs_escape("plain é ü tab\tline\n".as_bytes()));
        assert!(needs_escape("\u{85}".as_bytes()));
    }

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
