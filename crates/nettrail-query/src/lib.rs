//! nettrail's SQL engine: Apache DataFusion over the store's two tiers.
//!
//! Every log group is a table (named as the group, quoted: `"/vpc/flows"`, and by an
//! alias of letters, digits and underscores when that is unique: `vpc_flows`). A table
//! reads the group's columnar parts (Parquet, pruned by their statistics, page indexes
//! and bloom filters) and its row tail (events not yet compacted, turned into the same
//! columns on the fly) from one [`TierSnapshot`](nettrail_store::TierSnapshot), so a
//! query sees every acknowledged event exactly once.
//!
//! Columns: `timestamp`, `ingestion_time`, `log_stream`, `event_seq`; for a flow-log
//! group the columns of Athena's `vpc_flow_logs` DDL with AWS's Parquet types; `message`
//! (null where a flow record is held only as its columns); and the partition columns
//! of AWS's Hive layout (`aws-account-id`, `aws-service`, `aws-region`, `year`,
//! `month`, `day`, `hour`) and `date`. The same group is also `<alias>_by_day`, shaped
//! like AWS's partition-projection DDL (`day` as `'YYYY/MM/DD'`); see [`partitions`].
//! Athena's date functions (`from_unixtime`, `to_iso8601`, `day_of_week`, `date`,
//! `date_format`) are in [`functions`].
//!
//! - [`engine`]: [`QueryEngine`], a query from text to Arrow batches, cancellable;
//! - [`catalog`]: the log groups as DataFusion tables;
//! - [`table`]: one group's table over its parts and tail;
//! - [`partitions`]: a table's partition columns and the parts a filter on them keeps;
//! - [`functions`]: Athena's date and time functions;
//! - [`result`]: a result as text, with Athena's type names;
//! - [`ddl`]: `CREATE EXTERNAL TABLE` for Athena, Trino and Spark over a group's parts.

#![warn(missing_docs)]

pub mod catalog;
pub mod ddl;
pub mod engine;
mod error;
pub mod functions;
pub mod partitions;
pub mod result;
pub mod table;

pub use engine::{QueryEngine, QueryOptions, QueryOutput};
pub use error::QueryError;
