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

use super::guard::{admit_follower, query_param, refuse, FollowerGuard, Refusal};
use super::Served;
use crate::{AsyncSubscription, Entry, TryRecvError};

/// Entries gathered into one chunk of the response at most, when many are queued.
const MAX_BATCH: usize = 256;

pub(super) async fn events(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (guard, start) = match admit_follower(&served, &headers, &uri) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let (replay, live) = served
        .buf
        .tail_since_async_with_capacity(start.seq, served.config.follower_queue);

    let mut first = BytesMut::new();
    first.put_slice(b"retry: 1000\n\n");
    if start.report_missed && replay.missed() > 0 {
        push_missed(&mut first, replay.missed());
    }
    for entry in replay.entries() {
        push_entry(&mut first, entry);
    }
    let every = served.config.keep_alive;
    let follow = Follow {
        gaps: Gaps::new(replay.next_seq()),
        live,
        keep_alive: {
            let mut keep_alive = interval_at(Instant::now() + every, every);
            keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
            keep_alive
        },
        first: Some(first.freeze()),
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

/// Where a stream starts: `Last-Event-ID: N` resumes at N + 1, `?since=SEQ` starts at SEQ, and
/// neither gives the retained entries without reporting what was evicted before.
pub(super) struct Start {
    pub(super) seq: u64,
    pub(super) report_missed: bool,
}

impl Start {
    pub(super) fn from_request(headers: &HeaderMap, uri: &Uri) -> Result<Start, Refusal> {
        if let Some(last) = headers.get("last-event-id") {
            let last = last
                .to_str()
                .ok()
                .and_then(|last| last.trim().parse::<u64>().ok());
            return match last {
                Some(last) => Ok(Start {
                    seq: last.saturating_add(1),
                    report_missed: true,
                }),
                None => Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "Last-Event-ID must be a sequence number",
                )),
            };
        }
        match query_param(uri, "since") {
            Some(since) => match since.trim().parse::<u64>() {
                Ok(seq) => Ok(Start {
                    seq,
                    report_missed: true,
                }),
                Err(_) => Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "since must be a sequence number",
                )),
            },
            None => Ok(Start {
                seq: 0,
                report_missed: false,
            }),
        }
    }
}

/// Tells where a follower lost entries: from gaps in the sequence numbers it receives, and, once
/// it has drained its queue, from its drop count (entries lost after the last one it received).
pub(super) struct Gaps {
    /// The sequence number the next entry should have.
    expected: u64,
    /// Live drops already reported.
    reported: u64,
}

impl Gaps {
    pub(super) fn new(next_seq: u64) -> Gaps {
        Gaps {
            expected: next_seq,
            reported: 0,
        }
    }

    /// How many entries were lost just before `entry`; `None` for an entry already seen, which
    /// a follower skips (it cannot happen, but a duplicate must never reach a client).
    pub(super) fn before(&mut self, entry: &Entry) -> Option<u64> {
        let seq = entry.seq();
        if seq < self.expected {
            return None;
        }
        let missed = seq - self.expected;
        self.reported += missed;
        self.expected = seq + 1;
        Some(missed)
    }

    /// Once the queue was found empty after reading `dropped`: how many entries were lost after
    /// the last one received. They are the newest: any entry sent after them would have been
    /// received, and would have shown the gap.
    pub(super) fn after(&mut self, dropped: u64) -> u64 {
        let missed = dropped.saturating_sub(self.reported);
        self.reported += missed;
        self.expected += missed;
        missed
    }
}

struct Follow {
    gaps: Gaps,
    live: AsyncSubscription,
    keep_alive: Interval,
    first: Option<Bytes>,
    _guard: FollowerGuard,
}

impl Follow {
    /// The next chunk of the response; `None` once the buffer is gone.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        // Entries lost after the last one sent are announced before waiting: the log may stay
        // quiet for a long time after a burst.
        let dropped = self.live.dropped();
        let entry = match self.live.try_recv() {
            Ok(entry) => entry,
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {
                let missed = self.gaps.after(dropped);
                if missed > 0 {
                    let mut chunk = BytesMut::new();
                    push_missed(&mut chunk, missed);
                    return Some(chunk.freeze());
                }
                tokio::select! {
                    entry = self.live.recv() => entry?,
                    _ = self.keep_alive.tick() => {
                        return Some(Bytes::from_static(b": keep-alive\n\n"));
                    }
                }
            }
        };
        let mut chunk = BytesMut::new();
        self.push(&mut chunk, &entry);
        for _ in 1..MAX_BATCH {
            let dropped = self.live.dropped();
            match self.live.try_recv() {
                Ok(entry) => self.push(&mut chunk, &entry),
                Err(TryRecvError::Empty) => {
                    let missed = self.gaps.after(dropped);
                    if missed > 0 {
                        push_missed(&mut chunk, missed);
                    }
                    break;
                }
                Err(TryRecvError::Disconnected) => break,
            }
        }
        Some(chunk.freeze())
    }

    fn push(&mut self, chunk: &mut BytesMut, entry: &Entry) {
        match self.gaps.before(entry) {
            None => {}
            Some(0) => push_entry(chunk, entry),
            Some(missed) => {
                push_missed(chunk, missed);
                push_entry(chunk, entry);
            }
        }
    }
}

fn push_missed(out: &mut BytesMut, missed: u64) {
    out.put_slice(format!("event: missed\ndata: {missed}\n\n").as_bytes());
}

/// One event: `id: SEQ`, then one `data:` line per line of the entry (see the module docs).
pub(super) fn push_entry(out: &mut BytesMut, entry: &Entry) {
    out.put_slice(format!("id: {}\n", entry.seq()).as_bytes());
    let text = String::from_utf8_lossy(entry);
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix(['\n', '\r']))
        .unwrap_or(&text);
    let mut rest = text;
    loop {
        out.put_slice(b"data: ");
        match rest.find(['\r', '\n']) {
            Some(at) => {
                out.put_slice(&rest.as_bytes()[..at]);
                out.put_u8(b'\n');
                let width = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[at + width..];
            }
            None => {
                out.put_slice(rest.as_bytes());
                out.put_slice(b"\n\n");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogBuffer;

    fn event(text: &[u8]) -> String {
        let buf = LogBuffer::new();
        buf.append(text);
        let mut out = BytesMut::new();
        push_entry(&mut out, &buf.entries()[0]);
        String::from_utf8(out.to_vec()).unwrap()
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
    }

    #[test]
    fn gaps() {
        let buf = LogBuffer::new();
        for _ in 0..10 {
            buf.append(b"x");
        }
        let entries = buf.entries();
        let mut gaps = Gaps::new(2);
        assert_eq!(gaps.before(&entries[2]), Some(0));
        assert_eq!(gaps.before(&entries[5]), Some(2));
        assert_eq!(gaps.before(&entries[5]), None);
        assert_eq!(gaps.after(2), 0);
        assert_eq!(gaps.after(5), 3);
        assert_eq!(gaps.before(&entries[9]), Some(0));
    }
}
