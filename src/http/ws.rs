//! `GET /ws`: WebSocket.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;

use super::admit::{Admitted, Ws};
use super::pace::Coalesce;
use super::permit::Place;
use super::query::Filter;
use super::refusal::refuse;
use super::shutdown::begun;
use super::state::Served;
use crate::{Entry, Replay, Tail};

/// How long a closing handshake may take before the connection is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The largest message, and frame, a client may send. It has nothing to say: the server only
/// reads pings, pongs and the close frame (control frames carry at most 125 bytes). A client that
/// sends more is disconnected, so no client can make the server buffer a message.
pub(super) const MAX_CLIENT_MESSAGE: usize = 1024;

/// What the server reads from a client's socket at once.
const READ_BUFFER: usize = 4096;

pub(super) async fn ws(
    admitted: Admitted<Ws>,
    State(served): State<Arc<Served>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Admitted { query, place, .. } = admitted;
    let Ok(upgrade) = upgrade else {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this route speaks WebSocket only",
        )
        .into_response();
    };
    let live = served
        .buf
        .tail_from(query.begin.position())
        .batch_size(served.config.follower_batch);
    let coalesce = Coalesce::new(served.config.coalesce);
    let ping = served.config.keep_alive;
    let restarted = query.begin.restarted;
    let filter = query.filter;
    let shutdown = served.config.shutdown.subscribe();
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            let stream = Stream {
                live,
                coalesce,
                ping,
                restarted,
                filter,
                shutdown,
                _place: place,
            };
            serve(socket, stream)
        })
}

/// One WebSocket stream's state.
struct Stream {
    live: Tail,
    coalesce: Coalesce,
    ping: Duration,
    restarted: bool,
    filter: Filter,
    /// Told when a graceful shutdown begins: the stream closes with code 1001 (going away).
    shutdown: tokio::sync::watch::Receiver<bool>,
    _place: Place,
}

async fn serve(mut socket: WebSocket, stream: Stream) {
    let Stream {
        mut live,
        mut coalesce,
        ping,
        restarted,
        filter,
        mut shutdown,
        _place,
    } = stream;
    // The position asked for was another buffer's (a restarted server): say so, before this
    // buffer's entries from its oldest.
    if restarted
        && socket
            .send(Message::Binary(r#"{"restart":true}"#.into()))
            .await
            .is_err()
    {
        return;
    }
    // A ping every `keep_alive`: the client's pong keeps the connection from being idle, and a
    // client that is gone is noticed.
    // A client that answered none of the last two pings (nor sent anything else) has stopped
    // reading: it is disconnected, so that it does not hold a stream's place on a quiet log.
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    // After a slow send, one ping, not a burst of the ones missed.
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = tokio::time::Instant::now();
    loop {
        coalesce.ready().await;
        tokio::select! {
            _ = pings.tick() => {
                if heard.elapsed() > 2 * ping + ping / 2 {
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            batch = live.recv_batch() => {
                let Some(batch) = batch else {
                    // The buffer is gone and everything was sent: close.
                    let _ = socket.send(Message::Close(None)).await;
                    finish_close(&mut socket).await;
                    return;
                };
                if send_batch(&mut socket, &batch, &filter).await.is_err() {
                    return;
                }
                // A batch taken while pongs waited unread shows the client is there.
                heard = tokio::time::Instant::now();
                coalesce.sent(&live);
            }
            () = begun(&mut shutdown) => {
                let frame = axum::extract::ws::CloseFrame {
                    code: axum::extract::ws::close_code::AWAY,
                    reason: "the server is shutting down".into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                finish_close(&mut socket).await;
                return;
            }
            message = socket.recv() => match message {
                // The client closed (the close reply is sent on the next read), went away, or
                // broke the protocol.
                Some(Ok(Message::Close(_))) => {
                    finish_close(&mut socket).await;
                    return;
                }
                // (Err: a message over MAX_CLIENT_MESSAGE among them.)
                None | Some(Err(_)) => return,
                // Anything else from the client (pongs, mostly) only shows it is there.
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            },
        }
    }
}

/// Sends the notice of what was lost before `batch`, if anything, then its entries, in one flush:
/// one write to the socket, not one per entry.
async fn send_batch(
    socket: &mut WebSocket,
    batch: &Replay,
    filter: &Filter,
) -> Result<(), axum::Error> {
    if batch.missed() > 0 {
        socket.feed(missed_message(batch.missed())).await?;
    }
    for entry in batch.entries().iter().filter(|entry| filter.keeps(entry)) {
        socket.feed(text(entry)).await?;
    }
    socket.flush().await
}

/// The notice of `missed` lost entries: binary, so that no log line (always text) can pass for it.
fn missed_message(missed: u64) -> Message {
    Message::Binary(format!("{{\"missed\":{missed}}}").into())
}

fn text(entry: &Entry) -> Message {
    // Valid UTF-8 (the usual case) shares the entry's bytes; anything else is copied, repaired.
    let text = Utf8Bytes::try_from(entry.clone().into_bytes())
        .unwrap_or_else(|_| String::from_utf8_lossy(entry).into_owned().into());
    Message::Text(text)
}

/// Reads until the peer's side of the closing handshake is done (which also sends our reply),
/// for at most [`CLOSE_GRACE`].
async fn finish_close(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}
