//! [`TierSnapshot`]: one log group seen across both tiers at one moment, for the query
//! engine. Its parts and its row tail are taken under one lock, so every event is in
//! exactly one of them; the parts' files stay on disk while the snapshot lives, even if
//! a compaction replaces them meanwhile.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::block;
use crate::error::{Result, StoreError};
use crate::model::{EventKey, Millis, ScannedEvent};
use crate::parts::Part;
use crate::scan::ScanBlock;
use crate::segment::read_block;

/// A part of the columnar tier as a query engine reads it.
#[derive(Debug, Clone)]
pub struct PartFile {
    /// The Parquet file: an absolute path, or with a [`LakeStore`] the object's key in
    /// it.
    pub location: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its rows.
    pub rows: u64,
    /// Its earliest event timestamp, Unix ms.
    pub min_ts: Millis,
    /// Its latest event timestamp, Unix ms.
    pub max_ts: Millis,
    /// Its layout, as its metadata names it (`messages`, `flow ${version} …`).
    pub layout: String,
    /// The Hive partition values of its folder (`aws-account-id` … `hour`), in order.
    pub partition_values: Vec<(String, String)>,
}

/// The object store the parts of a snapshot are in, when they are not on local disk.
#[derive(Debug, Clone)]
pub struct LakeStore {
    /// Its URL as engines name it, `s3://BUCKET`.
    pub url: String,
    /// The store.
    pub store: Arc<dyn ObjectStore>,
}

/// One log group across both tiers at one moment.
pub struct TierSnapshot {
    /// The log group.
    pub group: String,
    /// The columnar tier.
    pub parts: Vec<PartFile>,
    /// Where `parts` are, if not on the local file system.
    pub lake_store: Option<LakeStore>,
    /// Events before this are expired and never returned.
    pub retention_cutoff: Option<Millis>,
    /// The flow-log format the group's writers declared, if any.
    pub flow_log_format: Option<String>,
    pub(crate) tail: Vec<ScanBlock>,
    /// Keeps the parts' files from being deleted while the snapshot lives.
    pub(crate) _held: Vec<Arc<Part>>,
}

impl TierSnapshot {
    /// Bytes of the row tail's blocks, compressed.
    pub fn tail_bytes(&self) -> u64 {
        self.tail.iter().map(|b| b.block.header.block_len()).sum()
    }

    /// The events of the row tail with timestamps in `[start, end)` (and not expired),
    /// in no particular order.
    pub fn tail_events(
        &self,
        start: Option<Millis>,
        end: Option<Millis>,
    ) -> Result<Vec<ScannedEvent>> {
        self.read_tail(self.tail.iter(), start, end, usize::MAX)
    }

    /// Up to `max` unexpired events of the row tail, from its newest blocks (to
    /// recognise what the group holds without reading all of it).
    pub fn tail_sample(&self, max: usize) -> Result<Vec<ScannedEvent>> {
        let mut newest: Vec<&ScanBlock> = self.tail.iter().collect();
        newest.sort_by_key(|b| std::cmp::Reverse(b.block.header.first_seq));
        self.read_tail(newest.into_iter(), None, None, max)
    }

    /// The events of `blocks` with timestamps in `[start, end)` and not expired, until
    /// `max` of them.
    fn read_tail<'s>(
        &self,
        blocks: impl Iterator<Item = &'s ScanBlock>,
        start: Option<Millis>,
        end: Option<Millis>,
        max: usize,
    ) -> Result<Vec<ScannedEvent>> {
        let lower = start
            .unwrap_or(i64::MIN)
            .max(self.retention_cutoff.unwrap_or(i64::MIN));
        let upper = end.unwrap_or(i64::MAX);
        let mut out = Vec::new();
        for candidate in blocks {
            if out.len() >= max {
                break;
            }
            let header = &candidate.block.header;
            if header.max_ts < lower || header.min_ts >= upper {
                continue;
            }
            let raw = read_block(&candidate.block)?;
            let events = block::index_events(header, &raw).map_err(|kind| StoreError::Corrupt {
                path: candidate.block.segment.path.clone(),
                offset: candidate.block.offset,
                kind,
            })?;
            for (i, event) in events.iter().enumerate() {
                if event.timestamp < lower || event.timestamp >= upper || out.len() >= max {
                    continue;
                }
                out.push(ScannedEvent {
                    stream: Arc::clone(&candidate.stream),
                    key: EventKey {
                        timestamp: event.timestamp,
                        seq: header.first_seq + i as u64,
                    },
                    ingestion_time: header.ingestion_ms,
                    message: std::str::from_utf8(&raw[event.start..event.end])
                        .expect("validated by index_events")
                        .to_owned(),
                });
            }
        }
        Ok(out)
    }
}

/// The Hive partition values in a part's relative path (`key=value` components).
pub(crate) fn partition_values(file: &str) -> Vec<(String, String)> {
    file.split('/')
        .filter_map(|c| c.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
