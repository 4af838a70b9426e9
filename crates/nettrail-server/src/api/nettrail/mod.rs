//! nettrail's own operations (`X-Amz-Target: Nettrail_20261123.<Operation>`, the same
//! JSON 1.1 protocol and SigV4 as CloudWatch's) and reads:
//! - `imports.rs`: ImportLogEvents and GetImportCheckpoints, for what AWS already wrote;
//! - `status.rs`: GetSubscriptionStatus;
//! - `metrics.rs`: GetMetricStatistics, ListMetrics and DescribeAlarms;
//! - `lake.rs`: GetLakeTable (where a group's parts are, and their DDL) and
//!   SetFlowLogFormat (the flow-log format of a group's events);
//! - `prometheus.rs`: the `GET /metrics` page.

pub(crate) mod imports;
pub(crate) mod lake;
pub(crate) mod metrics;
pub(crate) mod prometheus;
pub(crate) mod status;
