//! The routes, and the router that serves them.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use super::config::Config;
use super::permit::Places;
use super::state::Served;
use super::{page, sse, ws};
use crate::LogBuffer;

impl Config {
    /// The router serving `buf` with these options.
    pub fn router<S>(self, buf: LogBuffer) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let served = Arc::new(Served {
            page: page::with_title(self.title.as_deref()),
            buf,
            followers: Places::new(self.max_followers),
            snapshots: Places::new(self.max_snapshots),
            config: self,
        });
        Router::new()
            .route("/", get(page::page))
            .route("/snapshot", get(page::snapshot))
            .route("/events", get(sse::events))
            .route("/ws", get(ws::ws))
            .with_state(served)
    }
}
