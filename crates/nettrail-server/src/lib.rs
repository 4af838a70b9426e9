//! nettrail's CloudWatch-Logs-compatible HTTP API.
//!
//! This crate owns the wire: the AWS JSON 1.1 protocol (`POST /`, `X-Amz-Target:
//! Logs_20140328.<Operation>`), SigV4 verification, request validation with AWS's
//! messages, pagination tokens, and the limits that keep a flood of requests from
//! exhausting the server. It holds no data itself: everything goes through
//! [`nettrail_store::LogStore`].
//!
//! Errors become HTTP statuses and CloudWatch `__type` codes in one place,
//! [`ApiError::code`] and [`ApiError::status`].

//! Where things are, by folder (ARCHITECTURE.md has the whole map):
//! - `front/`: the HTTP front: connections, limits, SigV4, routing;
//! - `api/`: the operations by domain, and `api/operations.rs`, the table binding every
//!   operation name to its handler;
//! - `engines/`: what runs in the background: subscription delivery and its
//!   destinations, notification topics, metric filter counting, alarms;
//! - `server.rs`: start and shutdown; `config.rs`, `error.rs`, `validate.rs` and
//!   `common.rs`: what every part uses.

#![warn(missing_docs)]

mod api;
mod common;
pub mod config;
mod engines;
mod error;
mod front;
mod server;
mod validate;

pub use api::events::MAX_BATCH_BYTES;
pub use api::nettrail::imports::{MAX_IMPORT_BYTES, MAX_IMPORT_EVENTS};
pub use api::operations::{LogsApi, NETTRAIL_TARGET_PREFIX};
pub use common::{event_id, EVENT_OVERHEAD_BYTES};
pub use config::{
    AccessKey, AlarmSettings, FirehoseSettings, Limits, MetricSettings, ServerConfig, SmtpSettings,
    StoreSettings, SubscriptionSettings, TopicSettings,
};
pub use error::{ApiError, ApiResult};
pub use server::{ServeError, Server};
