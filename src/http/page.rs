//! `GET /` (the viewer page) and `GET /snapshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::admit::{Admitted, Checked, Snapshot};
use super::query::Format;
use super::state::Served;
use super::wire::{ndjson_within, rendered};
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

pub(super) async fn page(_: Checked, State(served): State<Arc<Served>>) -> Response {
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
    admitted: Admitted<Snapshot>,
    State(served): State<Arc<Served>>,
) -> Response {
    let Admitted { query, place, .. } = admitted;
    let instance = served.buf.shared().instance();
    let since = query.begin.since();
    let ndjson = query.format == Format::Ndjson;
    let (filter, count) = (&query.filter, query.count);
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
    let restarted = query.begin.restarted;
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
