//! The event a part holds.

use std::sync::Arc;

/// One event of a part, as it is written and read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEvent {
    /// Event timestamp, Unix ms.
    pub timestamp: i64,
    /// The store-wide sequence number (with the timestamp, the event's key).
    pub seq: u64,
    /// When the event was ingested, Unix ms.
    pub ingestion_time: i64,
    /// The log stream it belongs to.
    pub stream: Arc<str>,
    /// The message.
    pub message: String,
}
