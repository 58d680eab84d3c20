//! memtail's own `tracing_subscriber::Layer`: one entry per event, formatted little and once.

// Implementation notes.
//
// A span's part of a line (`name{a=1 b=2}`) is formatted when the span is created, and again
// when fields are recorded into it, and kept in the span's extensions with what an event in it
// starts with (the parts of every span from the root down), and two numbers: the span's own id
// and its root's, drawn from a process-wide counter (tracing's ids are slab indices, reused as
// soon as a span closes, so they cannot tell request 2 from request 13 in a ring that outlives
// both). A field recorded later into a span makes the prefixes of its tree out of date; each is
// made again when next used. An event then costs: a look at the thread's current span, one read
// of its extensions, formatting the event's own message and fields into the thread's scratch
// buffer, one clock read and one append.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{Extensions, LookupSpan, SpanRef};

use crate::core::InSpan;
use crate::ring::Tags;
use crate::write::{give_back_scratch, take_scratch, Line};
use crate::{Level, LogBuffer};

/// memtail's `tracing` layer: each event becomes one entry with its level, target, time and
/// span. Made by [`LogBuffer::layer`]; see the [module docs](crate::tracing) for the format.
///
/// It works on any subscriber that keeps spans (`tracing_subscriber::registry()`), beside other
/// layers (memtail's own too: two buffers with a filter each), with a per-layer filter of its
/// own, and under `reload`.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let buf = memtail::LogBuffer::new();
/// let subscriber = tracing_subscriber::registry().with(buf.layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::warn!(user = "ada", attempts = 3, "login failed");
/// });
/// let entry = &buf.entries()[0];
/// assert!(entry.ends_with(b": login failed user=\"ada\" attempts=3\n"));
/// assert!(entry.starts_with(b"WARN  "));
/// ```
pub struct Layer {
    buf: LogBuffer,
    /// Tells this layer's texts in a span's extensions from another memtail layer's.
    id: u64,
}

/// A clone is a layer of its own: in one subscriber, each writes every event it is given.
impl Clone for Layer {
    fn clone(&self) -> Layer {
        self.buf.layer()
    }
}

impl LogBuffer {
    /// memtail's `tracing` [`Layer`] into this buffer (feature `tracing`): one entry per event,
    /// with its level, target, time and span, at a fraction of `fmt()`'s cost.
    ///
    /// The layer records each event's time whether or not the buffer does
    /// ([`Builder::timestamps`](crate::Builder::timestamps)): one read of the buffer's clock
    /// ([`Builder::clock`](crate::Builder::clock)), or of `SystemTime::now` (about 25 ns
    /// through the vDSO on Linux, the same read `fmt()` makes for its timestamp).
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_subscriber::filter::LevelFilter;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let buf = memtail::LogBuffer::new();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(buf.layer().with_filter(LevelFilter::DEBUG));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::debug!(target: "my_app", "kept");
    ///     tracing::trace!(target: "my_app", "filtered out");
    /// });
    /// assert_eq!(buf.snapshot(), "DEBUG my_app: kept\n");
    /// ```
    pub fn layer(&self) -> Layer {
        Layer {
            buf: self.clone(),
            id: NEXT_LAYER.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// What the layers keep in a span's extensions: one [`SpanText`] per memtail layer that saw the
/// span made (each layer has its own filter, and so its own view of the spans around).
struct Kept(Vec<(u64, SpanText)>);

impl Kept {
    fn of(&self, layer: u64) -> Option<&SpanText> {
        self.0
            .iter()
            .find(|(id, _)| *id == layer)
            .map(|(_, text)| text)
    }

    fn of_mut(&mut self, layer: u64) -> Option<&mut SpanText> {
        self.0
            .iter_mut()
            .find(|(id, _)| *id == layer)
            .map(|(_, text)| text)
    }
}

/// What one layer keeps of one span.
struct SpanText {
    /// memtail's number for the span, and for its root.
    id: u64,
    root: u64,
    /// `name{a=1 b=2}`, or `name` for a span without fields.
    text: String,
    /// Whether `text` holds fields (ends with `}`).
    fields: bool,
    /// What an event in this span starts with: the text of each span from the root to this
    /// one, each followed by `:` (`request{id=42}:db:`), as of `version`.
    prefix: String,
    /// `tree.records` when `prefix` was made: a field recorded since into this span or one
    /// around it makes it out of date.
    version: u64,
    tree: Arc<Tree>,
}

/// What the spans of one tree (a root and the spans under it) share, for one layer.
#[derive(Default)]
struct Tree {
    /// Events logged in the tree so far: an event's ordinal in its request, which tells the
    /// on-error printer how many of a request's entries the ring evicted.
    events: AtomicU64,
    /// Times fields were recorded into a span of the tree after it was created.
    records: AtomicU64,
}

/// memtail's span numbers: from 1, never reused in the life of the process.
static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

/// Numbers for layers (each clone gets its own): tell their texts apart in a span's extensions.
static NEXT_LAYER: AtomicU64 = AtomicU64::new(1);

impl Layer {
    /// What this layer keeps of `span`.
    fn kept<'a>(&self, extensions: &'a Extensions<'_>) -> Option<&'a SpanText> {
        extensions.get::<Kept>()?.of(self.id)
    }
}

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let own = NEXT_SPAN.fetch_add(1, Ordering::Relaxed);
        // The nearest enclosing span this layer saw created (one made before the layer was
        // added, under `reload`, has nothing kept) gives the root and the tree.
        let (root, tree) = span
            .scope()
            .skip(1)
            .find_map(|parent| {
                let extensions = parent.extensions();
                let kept = self.kept(&extensions)?;
                Some((kept.root, Arc::clone(&kept.tree)))
            })
            .unwrap_or_else(|| (own, Arc::default()));
        let mut text = SpanText {
            id: own,
            root,
            text: escaped(span.name()),
            fields: false,
            prefix: String::new(),
            version: 0,
            tree,
        };
        text.record(|visitor| attrs.record(visitor));
        {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<Kept>() {
                Some(kept) => kept.0.push((self.id, text)),
                None => extensions.insert(Kept(vec![(self.id, text)])),
            }
        }
        self.refresh(&span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(text) = extensions
            .get_mut::<Kept>()
            .and_then(|kept| kept.of_mut(self.id))
        else {
            return;
        };
        if text.record(|visitor| values.record(visitor)) {
            // Every prefix of the tree is to be made again when next used.
            text.tree.records.fetch_add(1, Ordering::Release);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = Level::from(meta.level());
        let time = self.buf.now();
        let mut line = Line(take_scratch());
        line.0.extend_from_slice(PADDED[level as usize].as_bytes());
        let leaf = ctx.event_span(event);
        // The span's part of the line and its numbers, taken with its extensions read and
        // nothing else done meanwhile: the event's fields are user code (which may record into
        // this span, or log), and the append waits for the buffer's lock.
        let mut tree = None;
        if let Some(leaf) = &leaf {
            let stale = self
                .kept(&leaf.extensions())
                .is_some_and(|kept| kept.version != kept.tree.records.load(Ordering::Acquire));
            if stale {
                self.refresh(leaf);
            }
            let extensions = leaf.extensions();
            match self.kept(&extensions) {
                Some(kept) => {
                    line.0.extend_from_slice(kept.prefix.as_bytes());
                    tree = Some(([kept.id, kept.root], Arc::clone(&kept.tree)));
                }
                None => {
                    drop(extensions);
                    // Spans made before the layer was added (under `reload`): their names.
                    for entered in leaf.scope().from_root() {
                        let _ = line.write_str(entered.name());
                        line.0.push(b':');
                    }
                }
            }
            line.0.push(b' ');
        }
        drop(leaf);
        // Escaped, as everything in the line: `target: "..."` can be any text.
        let _ = line.write_str(meta.target());
        line.0.extend_from_slice(b": ");
        let mut visitor = Fields {
            line: &mut line,
            first: true,
        };
        event.record(&mut visitor);
        line.0.push(b'\n');
        let tags = Tags {
            level: Level::encode(Some(level)),
            time,
            target: crate::target::intern(meta.target()),
        };
        let span = tree.as_ref().map(|(ids, tree)| InSpan {
            ids: *ids,
            ordinal: &tree.events,
        });
        self.buf.append_in(&line.0, tags, span);
        give_back_scratch(line.0);
    }
}

impl Layer {
    /// Makes `span`'s prefix again, from the texts of the spans around it (their names, for
    /// spans the layer did not see made).
    fn refresh<S>(&self, span: &SpanRef<'_, S>)
    where
        S: for<'a> LookupSpan<'a>,
    {
        let Some(version) = self
            .kept(&span.extensions())
            .map(|kept| kept.tree.records.load(Ordering::Acquire))
        else {
            return;
        };
        let mut prefix = String::new();
        for entered in span.scope().from_root() {
            match self.kept(&entered.extensions()) {
                Some(kept) => prefix.push_str(&kept.text),
                None => prefix.push_str(&escaped(entered.name())),
            }
            prefix.push(':');
        }
        let mut extensions = span.extensions_mut();
        if let Some(kept) = extensions
            .get_mut::<Kept>()
            .and_then(|kept| kept.of_mut(self.id))
        {
            kept.prefix = prefix;
            kept.version = version;
        }
    }
}

/// `text` with control characters written as escapes.
fn escaped(text: &str) -> String {
    let mut line = Line(Vec::new());
    let _ = line.write_str(text);
    String::from_utf8_lossy(&line.0).into_owned()
}

/// Each level's name padded to five characters, and a space: `INFO  `.
const PADDED: [&str; 5] = ["TRACE ", "DEBUG ", "INFO  ", "WARN  ", "ERROR "];

impl SpanText {
    /// Formats the fields `record` visits into the text, after those it has; returns whether
    /// there were any.
    fn record(&mut self, record: impl FnOnce(&mut dyn Visit)) -> bool {
        let mut added = Line(Vec::new());
        let mut visitor = Fields {
            line: &mut added,
            first: !self.fields,
        };
        record(&mut visitor);
        if added.0.is_empty() {
            return false;
        }
        if self.fields {
            // Before the closing brace.
            self.text.pop();
        } else {
            self.text.push('{');
            self.fields = true;
        }
        self.text.push_str(&String::from_utf8_lossy(&added.0));
        self.text.push('}');
        true
    }
}

/// Whether `Debug` writes `text` as `"text"`: no quote, backslash, control or non-ASCII
/// character that it would escape.
#[inline]
fn debug_plain(text: &[u8]) -> bool {
    !text.iter().fold(false, |found, &b| {
        found | !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\')
    })
}

/// `n` in decimal, as `Display` writes it.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(crate::write::decimal(n, &mut [0; 20]));
}

/// Writes an event's or a span's fields into a line: the message bare, the others
/// `name=value` with `Debug` values, separated by spaces.
struct Fields<'a> {
    line: &'a mut Line,
    /// Nothing written yet: no space before the next field.
    first: bool,
}

impl Fields<'_> {
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.line.0.push(b' ');
        }
    }

    fn name(&mut self, field: &Field) {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.line.0.extend_from_slice(name.as_bytes());
        self.line.0.push(b'=');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.separate();
            let _ = self.line.write_str(value);
        } else if debug_plain(value.as_bytes()) && !field.name().starts_with("log.") {
            // What `Debug` would write, without the formatting machinery.
            self.separate();
            self.name(field);
            self.line.0.push(b'"');
            self.line.0.extend_from_slice(value.as_bytes());
            self.line.0.push(b'"');
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name().starts_with("log.") {
            return;
        }
        self.separate();
        self.name(field);
        push_decimal(&mut self.line.0, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name().starts_with("log.") {
            return;
        }
        self.separate();
        self.name(field);
        if value < 0 {
            self.line.0.push(b'-');
        }
        push_decimal(&mut self.line.0, value.unsigned_abs());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_debug(field, &value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.separate();
        self.name(field);
        let _ = write!(self.line, "{value}");
        if let Some(mut source) = value.source() {
            self.line.0.push(b' ');
            self.name(field);
            // `error.sources=[a, b]`, as fmt() writes it: the name gets its suffix before `=`.
            self.line.0.pop();
            self.line.0.extend_from_slice(b".sources=[");
            loop {
                let _ = write!(self.line, "{source}");
                match source.source() {
                    Some(next) => {
                        self.line.0.extend_from_slice(b", ");
                        source = next;
                    }
                    None => break,
                }
            }
            self.line.0.push(b']');
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        // What `tracing-log` adds to a `log` record's event is said by the entry already.
        if name.starts_with("log.") {
            return;
        }
        self.separate();
        if name == "message" {
            let _ = write!(self.line, "{value:?}");
        } else {
            self.name(field);
            let _ = write!(self.line, "{value:?}");
        }
    }
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer").field("buffer", &self.buf).finish()
    }
}
