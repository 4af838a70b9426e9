//! [`FileStoreConfig`]: the settings of a [`FileStore`](super::FileStore).

use std::path::PathBuf;
use std::time::Duration;

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
        }
    }
}
