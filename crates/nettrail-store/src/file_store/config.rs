//! [`FileStoreConfig`]: the settings of a [`FileStore`](super::FileStore).

use std::path::PathBuf;
use std::time::Duration;

use crate::lake::LakeConfig;

/// Settings of a [`FileStore`].
#[derive(Debug, Clone)]
pub struct FileStoreConfig {
    /// The data directory (created if missing).
    pub dir: PathBuf,
    /// zstd level for blocks; 0 stores them uncompressed.
    pub zstd_level: i32,
    /// A segment is sealed once it holds this many bytes.
    pub segment_max_bytes: u64,
    /// A segment is sealed once it has been open this long.
    pub segment_max_age: Duration,
    /// How often expired data is looked for and reclaimed.
    pub sweep_interval: Duration,
    /// How many bytes of writes one group commit takes at most.
    pub max_commit_bytes: usize,
    /// How long metric filter aggregates are kept (CloudWatch keeps one-minute
    /// datapoints for 15 days).
    pub metric_retention: Duration,
    /// Metric series held at most; points of further series are dropped (a dimension
    /// taking a new value per event would otherwise grow without bound).
    pub max_metric_series: usize,
    /// Whether sealed segments are compacted into columnar parts (on every sweep).
    pub compaction: bool,
    /// zstd level of the parts' columns.
    pub part_zstd_level: i32,
    /// Rows per row group of a part at most.
    pub part_row_group_rows: usize,
    /// Segment bytes one compaction of a group takes at most (at least one segment):
    /// its events are held in memory while their parts are written.
    pub compaction_max_bytes: u64,
    /// A part with at least this many rows is not merged again: a busy hour becomes
    /// several parts, and a compaction rewrites only the hour's small part with what is
    /// new (merging everything would rewrite the whole hour every time).
    pub part_merge_max_rows: u64,
    /// The account id in the parts' Hive paths (`aws-account-id=`).
    pub lake_account_id: String,
    /// The region in the parts' Hive paths (`aws-region=`).
    pub lake_region: String,
    /// Where the parts are kept: under the data directory, or in an object store.
    pub lake: LakeConfig,
}

impl FileStoreConfig {
    /// Defaults for a data directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStoreConfig {
            dir: dir.into(),
            zstd_level: 1,
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(60),
            max_commit_bytes: 64 << 20,
            metric_retention: Duration::from_secs(15 * 86_400),
            max_metric_series: 100_000,
            compaction: true,
            part_zstd_level: 3,
            part_row_group_rows: 1 << 20,
            compaction_max_bytes: 64 << 20,
            part_merge_max_rows: 1 << 20,
            lake_account_id: "123456789012".into(),
            lake_region: "us-east-1".into(),
            lake: LakeConfig::DataDir,
        }
    }
}
