//! What the handle of a [`FileStore`](super::FileStore) shares with its writer and
//! sweeper threads: the configuration, the state behind its lock, the metadata journal,
//! the stop signal, and
//! the counters and listeners every commit updates.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::SystemTime;

use crate::journal::Journal;
use crate::model::Millis;

use super::config::FileStoreConfig;
use super::state::{Places, State};

/// The state shared by the store's handle and its threads.
pub(super) struct Shared {
    pub(super) config: FileStoreConfig,
    /// Where the store's files are.
    pub(super) places: Places,
    pub(super) state: RwLock<State>,
    /// Serializes metadata mutations (the handle's and the compactor's); taken before
    /// the state lock when both are needed.
    pub(super) journal: Mutex<Journal>,
    /// Set, and notified, when the store shuts down.
    pub(super) stop: (Mutex<bool>, Condvar),
    pub(super) next_segment_id: AtomicU64,
    /// Held by a retention sweep or a compaction, so that two never work on the same
    /// segments at once.
    pub(super) maintenance: Mutex<()>,
    /// Called after every commit (`LogStore::on_commit`).
    pub(super) commit_listeners: Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
    /// Events and uncompressed bytes committed since open.
    pub(super) ingested_events: AtomicU64,
    pub(super) ingested_bytes: AtomicU64,
}

/// The wall clock in Unix ms: ingestion times and retention cutoffs.
pub(super) fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
