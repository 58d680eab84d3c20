//! `GET /events`: Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::guard::Filter;
use super::guard::{admit_follower, query_param, refuse, FollowerGuard, Refusal, EVENTS_PARAMS};
use super::pace::Coalesce;
use super::Served;
use crate::follower::Start as Position;
use crate::{Entry, Tail};

/// The largest piece of the response handed to the HTTP server at once. hyper queues at most 16
/// pieces per connection before it stops asking for more, so a client that does not read pins at
/// most 16 of them (and the batches they were cut from), not hyper's 400 KiB write buffer.
const FRAME: usize = 8 * 1024;

pub(super) async fn events(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let format = query_param(&uri, "format").map(|format| format.to_ascii_lowercase());
    let json = match format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(_) => {
            return refuse(StatusCode::BAD_REQUEST, "format must be text or json").into_response()
        }
    };
    let (guard, start) = match admit_follower(&served, &headers, &uri, EVENTS_PARAMS) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let live = served
        .buf
        .tail(start.position())
        .batch_size(served.config.follower_batch);
    let every = served.config.keep_alive;
    // A heartbeat says how often the next ones come, so that a client can tell a dead
    // connection from a quiet log: one at once, then one every `keep_alive` the stream is idle.
    let heartbeat = Bytes::from(format!("event: heartbeat\ndata: {}\n\n", every.as_millis()));
    let mut first = BytesMut::new();
    if start.restarted {
        first.put_slice(b"event: restart\ndata: the log started over\n\n");
    }
    first.put_slice(b"retry: 1000\n\n");
    first.put_slice(&heartbeat);
    let follow = Follow {
        id_prefix: id_prefix(served.buf.shared().instance()),
        filter: start.filter,
        json,
        live,
        keep_alive: {
            let mut keep_alive = interval_at(Instant::now() + every, every);
            keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
            keep_alive
        },
        rest: first.freeze(),
        unframed: Vec::new().into_iter(),
        heartbeat,
        coalesce: Coalesce::new(served.config.coalesce),
        shutdown: served.config.shutdown.subscribe(),
        ended: false,
        _guard: guard,
    };
    let body = stream::unfold(follow, |mut follow| async move {
        let chunk = follow.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), follow))
    });
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        [("x-accel-buffering", HeaderValue::from_static("no"))],
        Body::from_stream(body),
    )
        .into_response()
}

/// Where a stream starts: `Last-Event-ID: ID` resumes after entry `ID`, `?since=ID` starts at
/// entry `ID`, and neither gives the retained entries without reporting what was evicted before.
/// An `ID` is `INSTANCE-SEQ`, as event ids are (see [`parse_position`]), or a bare `SEQ`.
pub(super) struct Start {
    pub(super) seq: u64,
    pub(super) report_missed: bool,
    /// The position asked for is not in this buffer (another instance's, or beyond what this
    /// one ever wrote): the stream says so, then gives the retained entries from the oldest.
    pub(super) restarted: bool,
    /// What the stream sends (`?level=`, `?target=`).
    pub(super) filter: Filter,
}

impl Start {
    /// Where the follower starts in the ring: at `seq`, reporting what was evicted from there on,
    /// or, with no position asked, at the oldest entry retained now.
    pub(super) fn position(&self) -> Position {
        if self.report_missed {
            Position::At(self.seq)
        } else {
            Position::Oldest
        }
    }

    /// Where a stream of the buffer `instance`, which has written `written` entries, starts.
    pub(super) fn from_request(
        headers: &HeaderMap,
        uri: &Uri,
        instance: u32,
        written: u64,
    ) -> Result<Start, Refusal> {
        let asked = if let Some(last) = headers.get("last-event-id") {
            let last = last.to_str().ok().and_then(parse_position);
            let Some((of, last)) = last else {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "Last-Event-ID must be an event id (INSTANCE-SEQ) or a sequence number",
                ));
            };
            Some((of, last.saturating_add(1)))
        } else {
            since_param(uri)?
        };
        Ok(match asked {
            None => Start {
                seq: 0,
                report_missed: false,
                restarted: false,
                filter: Filter::default(),
            },
            Some(asked) if !in_buffer(asked, instance, written) => Start {
                seq: 0,
                report_missed: false,
                restarted: true,
                filter: Filter::default(),
            },
            Some((_, seq)) => Start {
                seq,
                report_missed: true,
                restarted: false,
                filter: Filter::default(),
            },
        })
    }
}

/// The `since` query parameter, if there is one, as a position ([`parse_position`]); 400 when it
/// is not one.
pub(super) fn since_param(uri: &Uri) -> Result<Option<(Option<u32>, u64)>, Refusal> {
    match query_param(uri, "since") {
        None => Ok(None),
        Some(since) => parse_position(&since).map(Some).ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "since must be an event id (INSTANCE-SEQ) or a sequence number",
            )
        }),
    }
}

/// Whether a position asked for is in the buffer `instance`, which has written `written`
/// entries. One of another instance (a restarted server), or beyond what this buffer ever wrote,
/// is not: the log started over.
pub(super) fn in_buffer((of, seq): (Option<u32>, u64), instance: u32, written: u64) -> bool {
    of.map_or(true, |of| of == instance) && seq <= written
}

/// A position as clients send it back: `INSTANCE-SEQ` (an event id: the buffer's instance in 8
/// hexadecimal digits, a dash, the entry's sequence number) or a bare `SEQ`, which is taken to be
/// of this buffer.
pub(super) fn parse_position(text: &str) -> Option<(Option<u32>, u64)> {
    let text = text.trim();
    let decimal = |digits: &str| {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten()
    };
    match text.split_once('-') {
        Some((instance, seq)) => {
            let hex = instance.len() == 8 && instance.bytes().all(|b| b.is_ascii_hexdigit());
            let instance = u32::from_str_radix(instance, 16).ok().filter(|_| hex)?;
            Some((Some(instance), decimal(seq)?))
        }
        None => Some((None, decimal(text)?)),
    }
}

/// `id: INSTANCE-`: what every event id of the buffer `instance` starts with.
pub(super) fn id_prefix(instance: u32) -> Bytes {
    Bytes::from(format!("id: {instance:08x}-"))
}

struct Follow {
    /// `id: INSTANCE-`, before each entry's sequence number.
    id_prefix: Bytes,
    filter: Filter,
    /// `?format=json`: each entry's data is one JSON object, as `/snapshot?format=ndjson` has.
    json: bool,
    live: Tail,
    keep_alive: Interval,
    /// `event: heartbeat`, with the interval in milliseconds as its data.
    heartbeat: Bytes,
    /// The events framed and not yet handed out, [`FRAME`] bytes at a time.
    rest: Bytes,
    /// The entries of the last batch not yet framed: framed about [`FRAME`] bytes at a time, so
    /// that a stalled client pins the batch's entries and a piece of their events, not the
    /// whole batch as events (which JSON makes up to six times longer, for control characters).
    unframed: std::vec::IntoIter<Entry>,
    coalesce: Coalesce,
    /// Told when a graceful shutdown begins: the stream sends `event: shutdown` and ends.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// The final event was framed: the stream ends once it is sent.
    ended: bool,
    _guard: FollowerGuard,
}

impl Follow {
    /// The next piece of the response; `None` once the buffer is gone and everything retained
    /// was sent.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.rest.is_empty() {
            if self.ended {
                return None;
            }
            let mut out = BytesMut::new();
            self.frame_more(&mut out);
            if out.is_empty() {
                self.coalesce.ready().await;
                tokio::select! {
                    batch = self.live.recv_batch() => {
                        let batch = batch?;
                        if batch.missed() > 0 {
                            push_missed(&mut out, batch.missed());
                        }
                        self.unframed = batch.into_entries().into_iter();
                        self.frame_more(&mut out);
                        self.coalesce.sent(&self.live);
                        // A heartbeat is for an idle stream: the next one is due a whole
                        // interval after this.
                        self.keep_alive.reset();
                    }
                    _ = self.keep_alive.tick() => out.put_slice(&self.heartbeat),
                    () = super::serve::begun(&mut self.shutdown) => {
                        out.put_slice(SHUTDOWN_EVENT);
                        self.ended = true;
                    }
                }
            }
            self.rest = out.freeze();
        }
        Some(self.rest.split_to(self.rest.len().min(FRAME)))
    }

    /// Frames entries of the batch into `out`, until it holds [`FRAME`] bytes or the batch is
    /// all framed.
    fn frame_more(&mut self, out: &mut BytesMut) {
        while out.len() < FRAME {
            let Some(entry) = self.unframed.next() else {
                return;
            };
            if self.filter.keeps(&entry) {
                frame_entry(out, &self.id_prefix, self.json, &entry);
            }
        }
    }
}

/// One entry as an event: its id, then its text (or, for `json`, one JSON object) as data.
fn frame_entry(out: &mut BytesMut, id_prefix: &[u8], json: bool, entry: &Entry) {
    if json {
        let mut object = Vec::with_capacity(entry.len() + 64);
        super::page::json_object(&mut object, entry);
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
const SHUTDOWN_EVENT: &[u8] = b"event: shutdown\ndata: the server is shutting down\n\n";

fn push_missed(out: &mut BytesMut, missed: u64) {
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
    let text = text
        .strip_suffix(b"\r\n")
        .or_else(|| text.strip_suffix(b"\n"))
        .or_else(|| text.strip_suffix(b"\r"))
        .unwrap_or(text);
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
    fn positions() {
        assert_eq!(parse_position("42"), Some((None, 42)));
        assert_eq!(parse_position(" 0 "), Some((None, 0)));
        assert_eq!(parse_position("00c0ffee-7"), Some((Some(0x00c0_ffee), 7)));
        assert_eq!(id_prefix(0xc0ffee), "id: 00c0ffee-");
        for bad in [
            "",
            "-",
            "x",
            "+1",
            "-1",
            "c0ffee-7",
            "00c0ffee-",
            "00c0ffee-+7",
            "0xc0ffee-7",
            "00c0ffeg-7",
            "1-2-3",
            "18446744073709551616",
        ] {
            assert_eq!(parse_position(bad), None, "{bad}");
        }
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
}
