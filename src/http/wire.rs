//! The formats memtail's HTTP side speaks, in one place: Server-Sent Events (how an entry is
//! framed as an event, and a parser for reading them), JSON entries (written for
//! `/events?format=json` and `/snapshot?format=ndjson`, and read back), and the text of
//! `/snapshot`. The server writes them; `memtail tail` reads them with [`SseParser`] and
//! [`EntryJson`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::entry::without_line_end as line_bytes;
use crate::Entry;

/// `id: INSTANCE-`: what every event id of the buffer `instance` starts with.
pub(super) fn id_prefix(instance: u32) -> Bytes {
    Bytes::from(format!("id: {instance:08x}-"))
}

/// One entry as an event: its id, then its text (or, for `json`, one JSON object) as data.
pub(super) fn frame_entry(out: &mut BytesMut, id_prefix: &[u8], json: bool, entry: &Entry) {
    if json {
        let mut object = Vec::with_capacity(entry.len() + 64);
        json_object(&mut object, entry);
        out.put_slice(id_prefix);
        push_decimal(out, entry.seq());
        out.put_slice(b"\ndata: ");
        out.put_slice(&object);
        out.put_slice(b"\n\n");
    } else {
        push_entry(out, id_prefix, entry);
    }
}

/// The last event of a stream whose server shuts down gracefully.
pub(super) const SHUTDOWN_EVENT: &[u8] = b"event: shutdown\ndata: the server is shutting down\n\n";

pub(super) fn push_missed(out: &mut BytesMut, missed: u64) {
    out.put_slice(format!("event: missed\ndata: {missed}\n\n").as_bytes());
}

/// One event: `id: INSTANCE-SEQ` (`id_prefix` holds `id: INSTANCE-`), then one `data:` line per
/// line of the entry (see the module docs).
pub(super) fn push_entry(out: &mut BytesMut, id_prefix: &[u8], entry: &Entry) {
    out.put_slice(id_prefix);
    push_decimal(out, entry.seq());
    out.put_u8(b'\n');
    // Valid UTF-8, the usual case, is framed as it is; CR and LF are ASCII, so cutting lines at
    // them never splits a character.
    match std::str::from_utf8(entry) {
        Ok(text) => push_data(out, text.as_bytes()),
        Err(_) => push_data(out, String::from_utf8_lossy(entry).as_bytes()),
    }
}

/// `data:` lines for `text`, one per line of it, after dropping one final line break.
fn push_data(out: &mut BytesMut, text: &[u8]) {
    let text = line_bytes(text);
    let mut rest = text;
    loop {
        out.put_slice(b"data: ");
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(at) => {
                out.put_slice(&rest[..at]);
                out.put_u8(b'\n');
                let width = if rest[at..].starts_with(b"\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[at + width..];
            }
            None => {
                out.put_slice(rest);
                out.put_slice(b"\n\n");
                return;
            }
        }
    }
}

fn push_decimal(out: &mut BytesMut, n: u64) {
    out.put_slice(crate::write::decimal(n, &mut [0; 20]));
}

/// `entries` as text: an entry with a time as [`crate::render`] shows it (the time, then the
/// text, as a line), any other as it is.
pub(super) fn rendered(entries: &[&Entry]) -> Vec<u8> {
    let mut text = Vec::with_capacity(entries.iter().map(|entry| entry.len() + 28).sum());
    for entry in entries {
        match entry.time() {
            Some(time) => crate::render::write_line(&mut text, Some(time), entry)
                .expect("writing to a Vec cannot fail"),
            None => text.extend_from_slice(entry),
        }
    }
    text
}

/// The newest of `entries` whose lines fit in `budget` bytes, as NDJSON (see [`ndjson_line`]), and
/// how many older ones did not fit.
pub(super) fn ndjson_within(entries: &[&Entry], budget: usize) -> (Vec<u8>, u64) {
    let mut scratch = Vec::new();
    let mut size = 0;
    let mut first = entries.len();
    while first > 0 {
        scratch.clear();
        ndjson_line(&mut scratch, entries[first - 1]);
        if size + scratch.len() > budget {
            break;
        }
        size += scratch.len();
        first -= 1;
    }
    let mut out = Vec::with_capacity(size);
    for entry in &entries[first..] {
        ndjson_line(&mut out, entry);
    }
    (out, first as u64)
}

/// One JSON object and line: `{"seq":N,"level":"WARN","text":"..."}`, `level` `null` for an
/// entry without one, `text` the entry as UTF-8 (invalid bytes as U+FFFD) without its final line
/// break; then `"time"` (RFC 3339 in UTC with microseconds, as [`crate::render`] shows times) and
/// `"target"` when the entry has them.
fn ndjson_line(out: &mut Vec<u8>, entry: &Entry) {
    json_object(out, entry);
    out.push(b'\n');
}

/// `{"seq":N,"level":"WARN","text":"..."}` for `entry`, as [`ndjson_line`] without the newline.
fn json_object(out: &mut Vec<u8>, entry: &Entry) {
    {
        out.extend_from_slice(b"{\"seq\":");
        out.extend_from_slice(entry.seq().to_string().as_bytes());
        out.extend_from_slice(b",\"level\":");
        match entry.level() {
            Some(level) => {
                out.push(b'"');
                out.extend_from_slice(level.as_str().as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"text\":");
        let text = String::from_utf8_lossy(line_bytes(entry));
        push_json_string(out, &text);
        if let Some(time) = entry.time() {
            out.extend_from_slice(
                format!(",\"time\":\"{}\"", crate::render::time(time)).as_bytes(),
            );
        }
        if let Some(target) = entry.target() {
            out.extend_from_slice(b",\"target\":");
            push_json_string(out, target);
        }
        out.push(b'}');
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(json_quote(text).as_bytes());
}

/// `text` as a JSON string, quoted: quotes, backslashes and every control character (C0, DEL
/// and C1) escaped, so that it is safe in a terminal too. What the server writes for each
/// entry's text, and `memtail tail -o json` for each field.
///
/// # Examples
///
/// ```
/// use memtail::http::wire::json_quote;
///
/// assert_eq!(json_quote("a \"b\"\n\x1b[31m"), r#""a \"b\"\n\u001b[31m""#);
/// ```
pub fn json_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(quoted, "\\u{:04x}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `text` without its final line ending (`\r\n`, `\n` or `\r`): the one rule memtail uses
/// wherever an entry is shown as a line (SSE data, JSON `text`, `?grep=`, syslog messages).
///
/// # Examples
///
/// ```
/// use memtail::http::wire::without_line_end;
///
/// assert_eq!(without_line_end("ready\r\n"), "ready");
/// assert_eq!(without_line_end("a\n\n"), "a\n");
/// assert_eq!(without_line_end("no end"), "no end");
/// ```
pub fn without_line_end(text: &str) -> &str {
    let kept = line_bytes(text.as_bytes()).len();
    // Only ASCII line breaks were cut: `kept` is a character boundary.
    &text[..kept]
}

/// A Server-Sent Events parser, as the specification reads lines and fields, bounded whatever
/// the server sends (what `memtail tail` reads `/events` with): a line longer than
/// [`MAX_LINE`] keeps its first bytes (the rest is skipped up to its end), an event's data stops
/// growing at [`MAX_EVENT`], and either marks the event as cut. Each byte received is looked at
/// once.
///
/// # Examples
///
/// ```
/// use memtail::http::wire::SseParser;
///
/// let mut parser = SseParser::new();
/// assert!(parser.push(b"retry: 1000\n\nid: 00c0ffee-4\ndata: disk ").is_empty());
/// let events = parser.push(b"full\n\nevent: missed\ndata: 3\n\n");
/// assert_eq!(events[0].id.as_deref(), Some("00c0ffee-4"));
/// assert_eq!(events[0].data, "disk full");
/// assert_eq!((events[1].name.as_str(), events[1].data.as_str()), ("missed", "3"));
/// ```
#[derive(Default)]
pub struct SseParser {
    pending: Vec<u8>,
    /// Bytes of `pending` already looked at for a line break.
    scanned: usize,
    /// Skipping the rest of a line that was too long.
    skipping: bool,
    /// That line ended with a CR at the end of a piece: an LF first in the next is part of it.
    skip_lf: bool,
    event: SseEvent,
    has_data: bool,
}

/// The longest line kept, in bytes.
pub const MAX_LINE: usize = 1 << 20;
/// The most data one event keeps, in bytes.
pub const MAX_EVENT: usize = 4 << 20;

/// One event read by [`SseParser`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseEvent {
    /// The `event:` field (at most 64 characters); empty for a plain message.
    pub name: String,
    /// The last `id:` field, if any (at most 129 characters: more could not be sent back).
    pub id: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
    /// Some of the event was not kept (a line or the whole beyond [`MAX_LINE`] or
    /// [`MAX_EVENT`]).
    pub cut: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Reads `bytes`, the next piece of the stream (cut anywhere: in a line, a character, a
    /// CRLF), and returns the events it completed, in order. Comments and events without data
    /// (`retry:` alone) are not returned.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if std::mem::take(&mut self.skip_lf) {
            // The LF of a CRLF that ended a line too long to keep, cut between two pieces.
            bytes = bytes.strip_prefix(b"\n").unwrap_or(bytes);
        }
        if self.skipping {
            // The rest of a line too long to keep, and the line break that ends it (which ends
            // that line, not the event).
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(at) => {
                    self.skipping = false;
                    let crlf = bytes[at] == b'\r';
                    bytes = &bytes[at + 1..];
                    if crlf {
                        match bytes.first() {
                            Some(b'\n') => bytes = &bytes[1..],
                            Some(_) => {}
                            None => self.skip_lf = true,
                        }
                    }
                }
                None => return events,
            }
        }
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let from = self.scanned.max(start);
            let Some(at) = self.pending[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
            else {
                self.scanned = self.pending.len();
                break;
            };
            let end = from + at;
            // A CR at the very end might be the first half of a CRLF: wait for more.
            if self.pending[end] == b'\r' && end + 1 == self.pending.len() {
                self.scanned = end;
                break;
            }
            let line = String::from_utf8_lossy(&self.pending[start..end]).into_owned();
            let crlf = self.pending[end] == b'\r' && self.pending.get(end + 1) == Some(&b'\n');
            start = end + if crlf { 2 } else { 1 };
            self.line(&line, &mut events);
        }
        self.pending.drain(..start);
        self.scanned -= start.min(self.scanned);
        if self.pending.len() > MAX_LINE {
            // A line with no end in sight: what fits is read as the line, the rest skipped.
            // (A character cut in two shows as U+FFFD.)
            let line = String::from_utf8_lossy(&self.pending[..MAX_LINE]).into_owned();
            self.line(&line, &mut events);
            self.event.cut = true;
            self.pending.clear();
            self.scanned = 0;
            self.skipping = true;
        }
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if std::mem::take(&mut self.has_data) {
                events.push(event);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event.name = value.chars().take(64).collect(),
            // Kept only as far as it could be sent back (memtail's ids are 26 bytes at most).
            "id" => self.event.id = Some(value.chars().take(129).collect()),
            "data" => {
                let room = MAX_EVENT.saturating_sub(self.event.data.len() + 1);
                if self.has_data && room > 0 {
                    self.event.data.push('\n');
                }
                let mut take = value.len().min(room);
                while !value.is_char_boundary(take) {
                    take -= 1;
                }
                if take < value.len() {
                    self.event.cut = true;
                }
                self.event.data.push_str(&value[..take]);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for SseParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseParser")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// An entry as `/events?format=json` and `/snapshot?format=ndjson` send it, read back:
/// `{"seq":N,"level":"WARN","text":"...","time":"...","target":"..."}`.
///
/// # Examples
///
/// ```
/// use memtail::http::wire::EntryJson;
///
/// let entry = EntryJson::parse(r#"{"seq":7,"level":"WARN","text":"disk \"sda\" 91%"}"#).unwrap();
/// assert_eq!((entry.seq, entry.level.as_deref()), (Some(7), Some("WARN")));
/// assert_eq!(entry.text, "disk \"sda\" 91%");
/// assert_eq!((entry.time, entry.target), (None, None));
/// assert!(EntryJson::parse("plain text").is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryJson {
    /// The entry's sequence number.
    pub seq: Option<u64>,
    /// Its level (`ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`), if it has one.
    pub level: Option<String>,
    /// Its text, without its final line ending.
    pub text: String,
    /// Its time as the server rendered it (RFC 3339, UTC, microseconds), if it has one.
    pub time: Option<String>,
    /// Its target, if it has one.
    pub target: Option<String>,
}

impl EntryJson {
    /// Reads one object; `None` when it has no `text` string (it is not an entry).
    pub fn parse(object: &str) -> Option<EntryJson> {
        Some(EntryJson {
            text: json_string(object, "text")?,
            seq: json_number(object, "seq"),
            level: json_string(object, "level"),
            time: json_string(object, "time"),
            target: json_string(object, "target"),
        })
    }
}

/// The string `key` of a JSON object `{"seq":N,"level":...,"text":"...","time":"..."}`, as
/// `/events?format=json` sends each entry; `None` when it has none, or not a string. (Inside a
/// string a quote is escaped, so `"key":"` is found only where it is a key.)
fn json_string(data: &str, key: &str) -> Option<String> {
    let pattern = format!("\"{key}\":\"");
    let at = data.find(&pattern)? + pattern.len();
    let mut chars = data[at..].chars();
    let hex4 = |chars: &mut std::str::Chars<'_>| -> Option<u32> {
        let digits: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    let mut text = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(text),
            '\\' => match chars.next()? {
                'n' => text.push('\n'),
                'r' => text.push('\r'),
                't' => text.push('\t'),
                'b' => text.push('\u{8}'),
                'f' => text.push('\u{c}'),
                'u' => {
                    let high = hex4(&mut chars)?;
                    let c = if (0xd800..0xdc00).contains(&high) {
                        // A surrogate pair: `\uD83D\uDE00`.
                        if chars.next()? != '\\' || chars.next()? != 'u' {
                            return None;
                        }
                        let low = hex4(&mut chars)?.checked_sub(0xdc00)?;
                        char::from_u32(0x10000 + ((high - 0xd800) << 10) + low)
                    } else {
                        char::from_u32(high)
                    };
                    text.push(c.unwrap_or('\u{fffd}'));
                }
                other => text.push(other),
            },
            c => text.push(c),
        }
    }
}

/// The number `key` of a JSON object as the server sends each entry (`"seq":42`).
fn json_number(data: &str, key: &str) -> Option<u64> {
    let pattern = format!("\"{key}\":");
    let at = data.find(&pattern)? + pattern.len();
    let digits: String = data[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The longest pattern `?grep=` and `?exclude=` take, in bytes.
pub const PATTERN_MAX: usize = 1024;
/// The most memory one compiled pattern (and its lazy DFA) may take: a hostile pattern
/// (`(a{1000}){1000}`) is refused, not built.
const PATTERN_MEMORY: usize = 1 << 20;

/// Why a pattern is not one `?grep=` and `?exclude=` take: see [`check_pattern`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// Empty, or longer than [`PATTERN_MAX`] bytes.
    Size,
    /// Not a regular expression the server compiles within its bounds; the reason, in a line.
    Invalid(String),
}

/// Checks a pattern as the server checks `?grep=` and `?exclude=` (regular expressions of the
/// `regex` crate, at most [`PATTERN_MAX`] bytes, compiled within 1 MiB): what `memtail tail`
/// says before connecting.
///
/// # Examples
///
/// ```
/// use memtail::http::wire::{check_pattern, PatternError};
///
/// assert_eq!(check_pattern("timeout|refused"), Ok(()));
/// assert_eq!(check_pattern(""), Err(PatternError::Size));
/// assert!(matches!(check_pattern("(a{1000}){1000}"), Err(PatternError::Invalid(_))));
/// ```
pub fn check_pattern(text: &str) -> Result<(), PatternError> {
    compile_pattern(text).map(|_| ())
}

/// [`check_pattern`], keeping what it compiled.
pub(super) fn compile_pattern(text: &str) -> Result<regex::bytes::Regex, PatternError> {
    if text.is_empty() || text.len() > PATTERN_MAX {
        return Err(PatternError::Size);
    }
    regex::bytes::RegexBuilder::new(text)
        .size_limit(PATTERN_MEMORY)
        .dfa_size_limit(PATTERN_MEMORY)
        .build()
        .map_err(|error| {
            let error = error.to_string();
            PatternError::Invalid(error.lines().last().unwrap_or("").trim().to_owned())
        })
}

/// A window of time as `?last=` takes it: `500ms`, `90s`, `5m` (or `5min`), `2h`, `1d`, or a
/// bare number of seconds; `None` for anything else, or a window too long to count.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use memtail::http::wire::parse_duration;
///
/// assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
/// assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
/// assert_eq!(parse_duration("5x"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(
        number.checked_mul(millis)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogBuffer;

    fn event(text: &[u8]) -> String {
        let buf = LogBuffer::new();
        buf.append(text);
        let mut out = BytesMut::new();
        push_entry(&mut out, b"id: ", &buf.entries()[0]);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn ids_are_decimal() {
        let mut out = BytesMut::new();
        for n in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            out.clear();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn event_ids_name_the_instance() {
        assert_eq!(id_prefix(0xc0ffee), "id: 00c0ffee-");
    }

    #[test]
    fn framing() {
        assert_eq!(event(b"a\n"), "id: 0\ndata: a\n\n");
        assert_eq!(event(b"a\r\n"), "id: 0\ndata: a\n\n");
        assert_eq!(event(b"a"), "id: 0\ndata: a\n\n");
        assert_eq!(event(b"\n"), "id: 0\ndata: \n\n");
        assert_eq!(event(b"a\n\n"), "id: 0\ndata: a\ndata: \n\n");
        assert_eq!(
            event(b"a\n\ndata: fake\r\nid: 999\rb"),
            "id: 0\ndata: a\ndata: \ndata: data: fake\ndata: id: 999\ndata: b\n\n"
        );
        assert_eq!(event(b"\xff"), "id: 0\ndata: \u{fffd}\n\n");
        assert_eq!(
            event(b"caf\xc3\xa9\r\x80\n"),
            "id: 0\ndata: caf\u{e9}\ndata: \u{fffd}\n\n"
        );
    }

    #[test]
    fn ndjson_escapes_what_json_needs() {
        let buf = LogBuffer::new();
        buf.append(b"plain\n");
        buf.append(b"\"quoted\" back\\slash\ttab\x1b[31m\x7f\r\n");
        buf.append(b"bad \xff utf-8");
        let entries = buf.entries();
        let all: Vec<&Entry> = entries.iter().collect();
        let (lines, omitted) = ndjson_within(&all, usize::MAX);
        assert_eq!(omitted, 0);
        let lines = String::from_utf8(lines).unwrap();
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[0], r#"{"seq":0,"level":null,"text":"plain"}"#);
        assert_eq!(
            lines[1],
            r#"{"seq":1,"level":null,"text":"\"quoted\" back\\slash\ttab\u001b[31m\u007f"}"#
        );
        assert_eq!(
            lines[2],
            "{\"seq\":2,\"level\":null,\"text\":\"bad \u{fffd} utf-8\"}"
        );
    }

    #[test]
    fn ndjson_keeps_the_newest_that_fit() {
        let buf = LogBuffer::new();
        for n in 0..10 {
            buf.append(format!("{n}").as_bytes());
        }
        let entries = buf.entries();
        let all: Vec<&Entry> = entries.iter().collect();
        let line = r#"{"seq":9,"level":null,"text":"9"}"#.len() + 1;
        let (lines, omitted) = ndjson_within(&all, 3 * line + 1);
        assert_eq!(omitted, 7);
        let lines = String::from_utf8(lines).unwrap();
        assert!(lines.starts_with(r#"{"seq":7,"#), "{lines}");
        assert_eq!(lines.lines().count(), 3);
    }
    #[test]
    fn json_texts() {
        let data = r#"{"seq":3,"level":null,"text":"a\rb \"q\" \\ \u001b[31m \ud83d\ude00 é"}"#;
        assert_eq!(
            json_string(data, "text").unwrap(),
            "a\rb \"q\" \\ \x1b[31m 😀 é"
        );
        assert_eq!(json_string(data, "level"), None);
        assert_eq!(json_string("plain text", "text"), None);
        assert_eq!(json_string(r#"{"text":"unterminated"#, "text"), None);
        assert_eq!(json_string(r#"{"text":"\ud800x"}"#, "text"), None);
        let data = r#"{"seq":1,"level":"WARN","text":"x \"time\":\"no\"","time":"2026-12-04T14:39:53.123456Z"}"#;
        assert_eq!(
            json_string(data, "time").unwrap(),
            "2026-12-04T14:39:53.123456Z"
        );
        assert_eq!(json_string(data, "level").unwrap(), "WARN");
    }

    #[test]
    fn a_line_without_end_is_cut_and_the_parser_stays_bounded() {
        let mut parser = SseParser::default();
        let mut events = parser.push(b"id: 1\ndata: ");
        let piece = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            events.extend(parser.push(&piece));
            assert!(parser.pending.len() <= MAX_LINE + piece.len());
        }
        // The end of the line, at last, and of the event; then an ordinary one.
        events.extend(parser.push(b"xxx\n\nid: 2\ndata: next\n\n"));
        assert_eq!(events.len(), 2);
        assert!(events[0].cut);
        assert_eq!(events[0].data.len(), MAX_LINE - "data: ".len());
        assert_eq!((events[1].data.as_str(), events[1].cut), ("next", false));
        // An event of many lines stops growing at its cap.
        let mut parser = SseParser::default();
        let line = format!("data: {}\n", "y".repeat(1000));
        let mut events = Vec::new();
        for _ in 0..5000 {
            events.extend(parser.push(line.as_bytes()));
        }
        events.extend(parser.push(b"\n"));
        assert!(events[0].cut);
        assert!(events[0].data.len() <= MAX_EVENT);
        // An id is kept only as far as it could be sent back.
        let mut parser = SseParser::default();
        let events = parser.push(format!("id: {}\ndata: x\n\n", "1".repeat(200)).as_bytes());
        assert_eq!(events[0].id.as_deref().map(str::len), Some(129));
    }

    #[test]
    fn sse_lines() {
        let mut parser = SseParser::default();
        let mut events = parser.push(b"retry: 1000\n\nid: 4\ndata: a\r");
        assert!(events.is_empty());
        events.extend(parser.push(b"\ndata: b\n\n: keep-alive\n\nevent: missed\ndata: 3\n\n"));
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].id.as_deref(), events[0].data.as_str()),
            (Some("4"), "a\nb")
        );
        assert_eq!(
            (events[1].name.as_str(), events[1].data.as_str()),
            ("missed", "3")
        );
    }

    #[test]
    fn the_line_break_after_a_cut_line_ends_the_line_not_the_event() {
        for (end, split) in [
            ("\n", false),
            ("\r\n", false),
            ("\r\n", true),
            ("\r", false),
        ] {
            let mut parser = SseParser::new();
            let mut events = parser.push(b"id: 7\ndata: ");
            events.extend(parser.push(&vec![b'x'; MAX_LINE + 10]));
            let rest = format!("{end}data: more\n\n");
            if split {
                // The CR ends one piece, the LF starts the next.
                events.extend(parser.push(&rest.as_bytes()[..1]));
                events.extend(parser.push(&rest.as_bytes()[1..]));
            } else {
                events.extend(parser.push(rest.as_bytes()));
            }
            assert_eq!(events.len(), 1, "one event ({end:?}, split {split})");
            assert_eq!(events[0].id.as_deref(), Some("7"));
            assert!(events[0].cut);
            assert!(
                events[0].data.ends_with("\nmore"),
                "the next line is the same event's"
            );
        }
    }
}
