//! The operations of the API, by domain, each module owning its request and response
//! shapes and its handlers:
//! - `groups.rs`: log groups and streams;
//! - `events.rs`: PutLogEvents, GetLogEvents, FilterLogEvents;
//! - `policies.rs`: retention, tags, resource policies;
//! - `subscription_filters.rs` and `metric_filters.rs`: the filters as operations (their
//!   engines are under `engines/`);
//! - `nettrail/`: nettrail's own operations (import, status, metric and alarm reads) and
//!   the `/metrics` page;
//! - `live_tail.rs`: StartLiveTail, validated here and streamed as event-stream frames;
//! - `firehose.rs`: the Firehose HTTP endpoint receiver;
//! - `athena.rs`: the Athena-compatible SQL API (`AmazonAthena.*`);
//! - `insights.rs`: Logs Insights (StartQuery, GetQueryResults and the rest).
//!
//! `operations.rs` binds every operation name to its handler; `context.rs` is what
//! every handler works with.

pub(crate) mod athena;
pub(crate) mod context;
pub(crate) mod events;
pub(crate) mod firehose;
pub(crate) mod groups;
pub(crate) mod insights;
pub(crate) mod live_tail;
pub(crate) mod metric_filters;
pub(crate) mod nettrail;
pub(crate) mod operations;
pub(crate) mod policies;
pub(crate) mod subscription_filters;
