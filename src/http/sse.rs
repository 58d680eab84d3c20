//! `GET /events`: Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::admit::{Admitted, Events};
use super::pace::Coalesce;
use super::permit::Place;
use super::query::{Filter, Format};
use super::shutdown::begun;
use super::state::Served;
use super::wire::{frame_entry, id_prefix, push_missed, SHUTDOWN_EVENT};
use crate::{Entry, Tail};

/// The largest piece of the response handed to the HTTP server at once. hyper queues at most 16
/// pieces per connection before it stops asking for more, so a client that does not read pins at
/// most 16 of them (and the batches they were cut from), not hyper's 400 KiB write buffer.
const FRAME: usize = 8 * 1024;

pub(super) async fn events(
    admitted: Admitted<Events>,
    State(served): State<Arc<Served>>,
) -> Response {
    let Admitted { query, place, .. } = admitted;
    let json = query.format == Format::Json;
    let live = served
        .buf
        .tail_from(query.begin.position())
        .batch_size(served.config.follower_batch);
    let every = served.config.keep_alive;
    // A heartbeat says how often the next ones come, so that a client can tell a dead
    // connection from a quiet log: one at once, then one every `keep_alive` the stream is idle.
    let heartbeat = Bytes::from(format!("event: heartbeat\ndata: {}\n\n", every.as_millis()));
    let mut first = BytesMut::new();
    if query.begin.restarted {
        first.put_slice(b"event: restart\ndata: the log started over\n\n");
    }
    first.put_slice(b"retry: 1000\n\n");
    first.put_slice(&heartbeat);
    let follow = Follow {
        id_prefix: id_prefix(served.buf.shared().instance()),
        filter: query.filter,
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
        _place: place,
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
    _place: Place,
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
                    () = begun(&mut self.shutdown) => {
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
