use std::fmt;
use std::ops::Deref;
use std::time::SystemTime;

use bytes::Bytes;

use crate::ring::Extras;
use crate::Level;

/// One log entry: its sequence number and its bytes.
///
/// An entry is the bytes of one `write` call, one `write_fmt` (so one `writeln!`), or one
/// `tracing` event. Cloning an entry is cheap: the bytes are reference counted, never copied.
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// let mut buf = memtail::LogBuffer::new();
/// writeln!(buf, "hello {}", "world")?;
///
/// let entries = buf.entries();
/// assert_eq!(entries[0].seq(), 0);
/// assert_eq!(&entries[0][..], b"hello world\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    seq: u64,
    bytes: Bytes,
    level: Option<Level>,
    time: Option<SystemTime>,
    target: Option<&'static str>,
    /// memtail's ids of the span the entry was made in and of that span's root.
    span: Option<(u64, u64)>,
}

impl Entry {
    pub(crate) fn new(seq: u64, bytes: Bytes, level: Option<Level>) -> Entry {
        Entry {
            seq,
            bytes,
            level,
            time: None,
            target: None,
            span: None,
        }
    }

    /// The same entry (sequence number, level and time) with other bytes: how a publisher's
    /// `transform` reshapes entries.
    #[cfg(feature = "publish")]
    pub(crate) fn with_bytes(&self, bytes: Bytes) -> Entry {
        Entry {
            bytes,
            ..self.clone()
        }
    }

    /// The entry with what the ring keeps beside its bytes: its time, target and spans.
    #[inline]
    pub(crate) fn with_extras(mut self, extras: Extras) -> Entry {
        if let Some(nanos) = extras.time {
            self.time = Some(crate::time::from_unix_nanos(nanos));
        }
        if extras.target != 0 {
            self.target = crate::target::name(extras.target);
        }
        if extras.span[0] != 0 {
            self.span = Some((extras.span[0], extras.span[1]));
        }
        self
    }

    /// The entry stamped with `time`, unless it has a time already.
    #[cfg(feature = "publish")]
    pub(crate) fn stamped(mut self, time: SystemTime) -> Entry {
        self.time.get_or_insert(time);
        self
    }

    /// The entry's sequence number: 0 for the first entry a buffer takes, then one more for each.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"first");
    /// buf.append(b"second");
    /// let seqs: Vec<u64> = buf.entries().iter().map(|e| e.seq()).collect();
    /// assert_eq!(seqs, [0, 1]);
    /// ```
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The entry's bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"ready");
    /// assert_eq!(buf.entries()[0].bytes(), &b"ready"[..]);
    /// ```
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The entry's level: the `tracing` event's (feature `tracing`), the `log` record's (feature
    /// `log`), or the one given to [`LogBuffer::append_level`](crate::LogBuffer::append_level);
    /// `None` for an entry written through `std::io::Write` or [`append`](crate::LogBuffer::append).
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"plain write\n");
    /// assert_eq!(buf.entries()[0].level(), None);
    /// ```
    pub fn level(&self) -> Option<Level> {
        self.level
    }

    /// The target of the `tracing` event (feature `tracing`) or `log` record (feature `log`) this
    /// entry came from, such as `my_app::db`; `None` for other entries.
    ///
    /// A buffer keeps 2 bytes a retained entry for it once any entry had a target; each distinct
    /// target's name is kept once for the life of the process: up to 4096 names of up to 256
    /// bytes (1 MiB at most, whatever the program logs). An entry whose target is longer, or new
    /// once 4096 are kept, has the target `"<target not recorded>"`, which no target filter
    /// (HTTP's `?target=`) keeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"no target\n");
    /// assert_eq!(buf.entries()[0].target(), None);
    ///
    /// # #[cfg(feature = "tracing")] {
    /// // Feature `tracing`: the event's target, here the module's unless given.
    /// let subscriber = tracing_subscriber::fmt().with_writer(buf.clone()).finish();
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::info!(target: "my_app::db", "connected");
    /// });
    /// assert_eq!(buf.entries()[1].target(), Some("my_app::db"));
    /// # }
    /// ```
    pub fn target(&self) -> Option<&'static str> {
        self.target
    }

    /// When the entry was appended, by the wall clock (never earlier than the entry before it):
    /// for an entry from memtail's tracing [`Layer`](crate::Layer) or `log` logger, or a panic
    /// entry ([`PanicHook`](crate::PanicHook)), and for every entry of a buffer that records
    /// times ([`Builder::timestamps`](crate::Builder::timestamps)). For one that does not, an entry in
    /// a batch handed to a [`Publisher`](crate::publish::Publisher) carries the time the
    /// publisher's thread read it from the ring (within one
    /// [`interval`](crate::publish::PublisherBuilder::interval) of the write, unless the publisher
    /// fell behind), so a batch that is retried keeps the time it was first taken; other entries
    /// of such a buffer have none.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"no time in this ring\n");
    /// assert_eq!(buf.entries()[0].time(), None);
    ///
    /// let timed = memtail::LogBuffer::builder().timestamps(true).build();
    /// timed.append(b"stamped\n");
    /// assert!(timed.entries()[0].time().is_some());
    /// ```
    pub fn time(&self) -> Option<SystemTime> {
        self.time
    }

    /// The span this entry was logged in, for an entry made by memtail's tracing
    /// [`Layer`](crate::Layer) inside a span: a number memtail gave the span when it was created,
    /// unique for the life of the process (unlike `tracing`'s span ids, which are reused once a
    /// span closes). `None` for other entries.
    ///
    /// A buffer keeps 24 bytes a retained entry for the span, its root and its place in the
    /// root's tree once any entry had a span.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tracing")] {
    /// use tracing_subscriber::prelude::*;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let subscriber = tracing_subscriber::registry().with(buf.layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::info!("outside");
    ///     let request = tracing::info_span!("request", id = 1);
    ///     let _in_request = request.enter();
    ///     tracing::info!("accepted");
    ///     tracing::info_span!("db").in_scope(|| tracing::info!("queried"));
    /// });
    /// let entries = buf.entries();
    /// assert_eq!(entries[0].span_id(), None);
    /// let request = entries[1].span_id().unwrap();
    /// // The inner span's entry has a span of its own, and the request's span as its root.
    /// assert_ne!(entries[2].span_id(), Some(request));
    /// assert_eq!(entries[2].root_span_id(), Some(request));
    /// assert_eq!(entries[1].root_span_id(), Some(request));
    /// # }
    /// ```
    pub fn span_id(&self) -> Option<u64> {
        self.span.map(|(span, _)| span)
    }

    /// The root of the span this entry was logged in (the outermost span around it, the request
    /// in a server whose requests each have a span), as memtail numbers spans; see
    /// [`span_id`](Entry::span_id). `None` for an entry logged outside any span.
    pub fn root_span_id(&self) -> Option<u64> {
        self.span.map(|(_, root)| root)
    }

    /// Takes the entry's bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = memtail::LogBuffer::new();
    /// buf.append(b"ready");
    /// let bytes: bytes::Bytes = buf.entries().remove(0).into_bytes();
    /// assert_eq!(bytes, "ready");
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl Deref for Entry {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for Entry {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// How many bytes of an entry `Debug` shows.
const PREVIEW: usize = 40;

impl fmt::Debug for Entry {
    /// Shows the sequence number, the length and the first bytes, escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.bytes[..self.bytes.len().min(PREVIEW)];
        let more = if self.bytes.len() > PREVIEW {
            "…"
        } else {
            ""
        };
        let mut f = f.debug_struct("Entry");
        f.field("seq", &self.seq);
        if let Some(level) = self.level {
            f.field("level", &level);
        }
        f.field("len", &self.bytes.len())
            .field(
                "preview",
                &format_args!("\"{}{more}\"", shown.escape_ascii()),
            )
            .finish()
    }
}

/// `text` without its final line ending: `\r\n`, `\n` or `\r`, whichever it ends with. The one
/// rule for every reader that shows an entry as a line of its own (SSE data, JSON `text`, the
/// patterns of `?grep=`, a syslog message).
#[cfg(any(feature = "http", feature = "publish"))]
pub(crate) fn without_line_end(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r\n")
        .or_else(|| text.strip_suffix(b"\n"))
        .or_else(|| text.strip_suffix(b"\r"))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_short_and_escaped() {
        let entry = Entry::new(
            7,
            Bytes::from(format!("\x1b[31mred\x1b[0m\n{}", "x".repeat(100))),
            None,
        );
        let shown = format!("{entry:?}");
        assert!(shown.starts_with("Entry { seq: 7, len: 113, preview: \"\\x1b[31mred"));
        assert!(shown.ends_with("…\" }"));
        assert!(!shown.contains('\x1b'));
        assert!(shown.len() < 100);
    }
}
