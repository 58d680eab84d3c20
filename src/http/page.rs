//! `GET /` (the viewer page) and `GET /snapshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::guard::{
    admit, count_param, last_window, only_params, query_param, refuse, Filter, Place,
    SNAPSHOT_PARAMS,
};
use super::sse::{in_buffer, since_param};
use super::Served;
use crate::Entry;

/// The viewer: one self-contained page, its script and style inline.
const PAGE: &str = include_str!("viewer.html");

/// The viewer with `title` (`NAME · memtail`) in its `<title>`, HTML-escaped; the page as it is
/// without one.
pub(super) fn with_title(title: Option<&str>) -> Bytes {
    let Some(title) = title else {
        return Bytes::from_static(PAGE.as_bytes());
    };
    let mut escaped = String::with_capacity(title.len());
    for c in title.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    Bytes::from(PAGE.replacen(
        "<title>memtail</title>",
        &format!("<title>{escaped} \u{b7} memtail</title>"),
        1,
    ))
}

/// No images, frames, plugins or outside connections: even a log line that did reach the page
/// as markup could not load or send anything.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The size of the pieces a snapshot is handed to the HTTP server in. hyper queues at most 16
/// per connection: 256 KiB.
const SNAPSHOT_PIECE: usize = 16 * 1024;

const NOSNIFF: (&str, HeaderValue) = (
    "x-content-type-options",
    HeaderValue::from_static("nosniff"),
);

pub(super) async fn page(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(refusal) = admit(&served, &headers, &uri) {
        return refusal.into_response();
    }
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        [NOSNIFF],
        served.page.clone(),
    )
        .into_response()
}

pub(super) async fn snapshot(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(refusal) =
        admit(&served, &headers, &uri).and_then(|_| only_params(&uri, SNAPSHOT_PARAMS))
    {
        return refusal.into_response();
    }
    let count = match count_param(&uri) {
        Ok(count) => count,
        Err(refusal) => return refusal.into_response(),
    };
    // Without `since`, or with a position of another buffer (a restarted server): everything
    // retained, and nothing reported missed.
    let instance = served.buf.shared().instance();
    let written = served.buf.stats().entries_written;
    let (since, restarted) = match since_param(&uri) {
        Ok(None) => (None, false),
        Ok(Some(asked)) if !in_buffer(asked, instance, written) => (None, true),
        Ok(Some((_, seq))) => (Some(seq), false),
        Err(refusal) => return refusal.into_response(),
    };
    let since = match last_window(&served, &uri) {
        Ok(Some(seq)) => Some(seq),
        Ok(None) => since,
        Err(refusal) => return refusal.into_response(),
    };
    let filter = match Filter::from_uri(&uri) {
        Ok(filter) => filter,
        Err(refusal) => return refusal.into_response(),
    };
    let format = query_param(&uri, "format").map(|format| format.to_ascii_lowercase());
    let ndjson = match format.as_deref() {
        None | Some("text") => false,
        Some("ndjson") => true,
        Some(_) => {
            return refuse(StatusCode::BAD_REQUEST, "format must be text or ndjson").into_response()
        }
    };
    let max = served.config.max_snapshots;
    let Some(place) = Place::take(&served, |served| &served.snapshots, max) else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many snapshots being sent (see memtail::http::Config::max_snapshots)",
        )
        .into_response();
    };
    // The bytes and the position, read together: the retained bytes as they are, or built from
    // the entries when they are filtered, formatted, or have times to show.
    let mut omitted = 0;
    let raw = (filter.is_none() && !ndjson && count.is_none())
        .then(|| served.buf.bytes_since(since.unwrap_or(0)))
        .flatten();
    let (bytes, next_seq, missed) = match raw {
        Some(raw) => raw,
        None => {
            let replay = served.buf.since(since.unwrap_or(0));
            let mut kept: Vec<&Entry> = replay
                .entries()
                .iter()
                .filter(|entry| filter.keeps(entry))
                .collect();
            if let Some(n) = count {
                // The newest `n` of them.
                kept.drain(..kept.len().saturating_sub(n));
            }
            let bytes = if ndjson {
                // JSON makes short entries many times longer: the answer keeps the newest entries
                // that fit in twice the capacity (and 64 KiB), and says how many older ones it
                // left out.
                let budget = 2 * served.buf.capacity() + 64 * 1024;
                let (lines, left_out) = ndjson_within(&kept, budget);
                omitted = left_out;
                lines
            } else {
                rendered(&kept)
            };
            (Bytes::from(bytes), replay.next_seq(), replay.missed())
        }
    };
    let length = bytes.len();
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "text/plain; charset=utf-8"
    };
    // Handed to the server in pieces, so that what it queues for the socket is bounded; the
    // place is given back once the server took the last piece (the rest was written by then), or
    // when the connection is dropped.
    let body = Body::from_stream(futures_util::stream::unfold(
        (bytes, 0, place),
        |(bytes, sent, place)| async move {
            let end = bytes.len().min(sent + SNAPSHOT_PIECE);
            let piece = (sent < end).then(|| bytes.slice(sent..end))?;
            Some((
                Ok::<_, std::convert::Infallible>(piece),
                (bytes, end, place),
            ))
        },
    ));
    let missed = if since.is_some() { missed } else { 0 };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        [
            NOSNIFF,
            ("x-memtail-next-seq", HeaderValue::from(next_seq)),
            ("x-memtail-missed", HeaderValue::from(missed)),
            ("content-length", HeaderValue::from(length)),
            ("x-memtail-omitted", HeaderValue::from(omitted)),
            (
                "x-memtail-instance",
                HeaderValue::from_str(&format!("{instance:08x}")).expect("hexadecimal digits"),
            ),
            (
                "x-memtail-restarted",
                HeaderValue::from_static(if restarted { "true" } else { "false" }),
            ),
        ],
        body,
    )
        .into_response()
}

/// `entries` as text: an entry with a time as [`crate::render`] shows it (the time, then the
/// text, as a line), any other as it is.
fn rendered(entries: &[&Entry]) -> Vec<u8> {
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
fn ndjson_within(entries: &[&Entry], budget: usize) -> (Vec<u8>, u64) {
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
pub(super) fn json_object(out: &mut Vec<u8>, entry: &Entry) {
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
        let text = String::from_utf8_lossy(entry);
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        push_json_string(out, text);
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
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogBuffer;

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
}
