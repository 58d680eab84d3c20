//! `GET /` (the viewer page) and `GET /snapshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::guard::{admit, query_param, refuse, Place};
use super::Served;

/// The viewer: one self-contained page, its script and style inline.
const PAGE: &str = include_str!("viewer.html");

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
        PAGE,
    )
        .into_response()
}

pub(super) async fn snapshot(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(refusal) = admit(&served, &headers, &uri) {
        return refusal.into_response();
    }
    // Without `since`: everything retained, and nothing reported missed.
    let since = match query_param(&uri, "since").map(|since| since.trim().parse::<u64>()) {
        None => None,
        Some(Ok(seq)) => Some(seq),
        Some(Err(_)) => {
            return refuse(StatusCode::BAD_REQUEST, "since must be a sequence number")
                .into_response()
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
    // The bytes and the position, read together.
    let (bytes, next_seq, missed) = served.buf.bytes_since(since.unwrap_or(0));
    let length = bytes.len();
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
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        [
            NOSNIFF,
            ("x-memtail-next-seq", HeaderValue::from(next_seq)),
            ("x-memtail-missed", HeaderValue::from(missed)),
            ("content-length", HeaderValue::from(length)),
        ],
        body,
    )
        .into_response()
}
