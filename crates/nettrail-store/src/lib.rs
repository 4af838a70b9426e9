//! nettrail's embedded durable log store.
//!
//! This crate owns everything that is persisted about logs: log groups, their streams,
//! the events in them, retention, tags and resource policies. The API layer talks to it
//! only through the [`LogStore`] trait, so that another backend (object storage) can be
//! added later without touching the API.
//!
//! The embedded backend, [`FileStore`], keeps:
//! - a metadata journal (`meta.journal`, see [`journal`](crate::journal)) of groups,
//!   streams, retention, tags and policies, fsynced per mutation;
//! - per log group, append-only segment files (`groups/<id>/<segment>.seg`) of
//!   compressed, checksummed, time-ordered blocks (see [`block`]), one block per write;
//!   a single writer thread commits concurrent writes together with one fsync per
//!   touched segment (group commit) before any of them is acknowledged;
//! - an in-memory index of every block's stream, time range and sequence numbers,
//!   rebuilt on open by verifying every block, so that reads by time range skip blocks.
//!
//! Every call is blocking; async callers run them on a blocking thread pool.
//!
//! Where things are, by role:
//! - [`model`] and [`log_store`]: the values and the trait every backend shares;
//! - `file_store/`: the embedded backend (its handle, metadata state, writer, recovery,
//!   retention, compaction and read paths, one file each);
//! - [`block`] and `segment.rs`: the row tier's on-disk units, blocks in segment files,
//!   and the verified block access every read goes through;
//! - `parts.rs`: the columnar tier's units (catalog entries, parts, their Hive folders);
//!   `lake.rs`: where their files are (the data directory or an object store);
//!   `snapshot.rs`: one group across both tiers at one moment, for the query engine;
//! - `scan.rs`: ordered, bounded-memory page reads over blocks and parts;
//! - `journal.rs`, `cursors.rs`, `metric_log.rs`: the metadata journal, subscription
//!   cursors and metric aggregates, each a file format of its own.
//!
//! Two tiers: the row segments are the write-ahead tail; sealed segments are compacted
//! into columnar parts (Parquet per group and hour of event time, see the
//! `nettrail-columnar` crate) by one journal record that retires the rows, so every
//! read sees each event exactly once, in whichever tier holds it.

#![warn(missing_docs)]

pub mod block;
mod cursors;
mod error;
mod file_store;
mod fsync;
mod journal;
mod lake;
pub mod log_store;
mod metric_log;
pub mod model;
mod parts;
mod scan;
mod segment;
mod snapshot;

pub use error::{CorruptKind, Result, StoreError};
pub use file_store::{CompactionStats, FileStore, FileStoreConfig};
pub use lake::{LakeConfig, ObjectLakeConfig};
pub use log_store::LogStore;
pub use model::{
    policy_key, AppendAck, Backlog, CommittedPage, Direction, EventKey, FieldCondition,
    FieldConditions, GroupInfo, ImportCheckpoint, MetricCommit, MetricFilter, MetricId,
    MetricPoint, MetricTransformationDef, Millis, MinuteStats, NewEvent, NewGroup, PageLimit,
    ResourcePolicy, ScanHint, ScanPage, ScanRequest, ScanStats, ScannedEvent, StoreCounters,
    StreamInfo, StreamSelector, SubscriptionFilter,
};
pub use parts::{lake_folder, readable_name};
pub use snapshot::{LakeStore, PartFile, TierSnapshot};
