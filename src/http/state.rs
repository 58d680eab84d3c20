//! What every route's handler shares.

use bytes::Bytes;

use super::config::Config;
use super::permit::Places;
use crate::LogBuffer;

/// What every route's handler shares.
pub(super) struct Served {
    /// The viewer, with its title.
    pub(super) page: Bytes,
    pub(super) buf: LogBuffer,
    pub(super) config: Config,
    /// Streams open now, at most `config.max_followers`.
    pub(super) followers: Places,
    /// Snapshots being sent now, at most `config.max_snapshots`.
    pub(super) snapshots: Places,
}
