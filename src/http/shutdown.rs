//! The word that a graceful shutdown began, from the server to its streams; and a check the
//! options share.

use std::sync::Arc;
use std::time::Duration;

/// Tells the streams of a config's routers that a graceful shutdown began: shared by a
/// [`Config`](super::Config) and its clones.
#[derive(Clone, Debug)]
pub(super) struct Shutdown(Arc<tokio::sync::watch::Sender<bool>>);

impl Shutdown {
    pub(super) fn new() -> Shutdown {
        Shutdown(Arc::new(tokio::sync::watch::Sender::new(false)))
    }

    pub(super) fn begin(&self) {
        self.0.send_replace(true);
    }

    /// What a stream waits on: [`begun`] returns once the shutdown began (at once if it has).
    pub(super) fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// Returns once the shutdown `watch` tells of began (at once if it had), never otherwise.
pub(super) async fn begun(watch: &mut tokio::sync::watch::Receiver<bool>) {
    if watch.wait_for(|begun| *begun).await.is_err() {
        // Every config that could begin it is gone: it never will.
        std::future::pending::<()>().await;
    }
}

/// Panics, naming the option, when `duration` is zero.
#[track_caller]
pub(super) fn not_zero(duration: Duration, option: &str) {
    assert!(
        !duration.is_zero(),
        "memtail::http::Config::{option}: zero duration"
    );
}
