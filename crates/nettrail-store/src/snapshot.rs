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
    pub(crate) held: Vec<Arc<Part>>,
    /// Per part, the streams whose rows are still theirs (a deleted stream's rows, or
    /// those of an older stream of the same name, are not).
    pub(crate) live_streams: Vec<std::collections::HashMap<String, Arc<str>>>,
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
        let mut out = Vec::new();
        self.visit_tail(blocks, start, end, &mut |event| {
            out.push(event);
            out.len() < max
        })?;
        Ok(out)
    }

    /// The newest event timestamp the row tail may hold, if it holds any.
    pub fn tail_max_ts(&self) -> Option<Millis> {
        self.tail.iter().map(|b| b.block.header.max_ts).max()
    }

    /// Calls `visit` with each unexpired event of the row tail with a timestamp in
    /// `[start, end)`, block by block in no particular order; stops when `visit`
    /// returns false.
    pub fn visit_tail_events(
        &self,
        start: Option<Millis>,
        end: Option<Millis>,
        visit: &mut dyn FnMut(ScannedEvent) -> bool,
    ) -> Result<()> {
        self.visit_tail(self.tail.iter(), start, end, visit)
    }

    fn visit_tail<'s>(
        &self,
        blocks: impl Iterator<Item = &'s ScanBlock>,
        start: Option<Millis>,
        end: Option<Millis>,
        visit: &mut dyn FnMut(ScannedEvent) -> bool,
    ) -> Result<()> {
        let lower = start
            .unwrap_or(i64::MIN)
            .max(self.retention_cutoff.unwrap_or(i64::MIN));
        let upper = end.unwrap_or(i64::MAX);
        for candidate in blocks {
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
                if event.timestamp < lower || event.timestamp >= upper {
                    continue;
                }
                let scanned = ScannedEvent {
                    stream: Arc::clone(&candidate.stream),
                    key: EventKey {
                        timestamp: event.timestamp,
                        seq: header.first_seq + i as u64,
                    },
                    ingestion_time: header.ingestion_ms,
                    message: std::str::from_utf8(&raw[event.start..event.end])
                        .expect("validated by index_events")
                        .to_owned(),
                };
                if !visit(scanned) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl TierSnapshot {
    /// Calls `visit` with each unexpired event of a live stream in part `index` (of [`parts`]) with a
    /// timestamp in `[start, end)`, in the part's row order, its message regenerated;
    /// stops when `visit` returns false. Row groups outside the range are not read.
    ///
    /// [`parts`]: TierSnapshot::parts
    pub fn visit_part_events(
        &self,
        index: usize,
        start: Option<Millis>,
        end: Option<Millis>,
        visit: &mut dyn FnMut(ScannedEvent) -> bool,
    ) -> Result<()> {
        let part = &self.held[index];
        let lower = start
            .unwrap_or(i64::MIN)
            .max(self.retention_cutoff.unwrap_or(i64::MIN));
        let upper = end.unwrap_or(i64::MAX);
        if part.meta.max_ts < lower || part.meta.min_ts >= upper {
            return Ok(());
        }
        let reader = part.open()?;
        let bad = |e| part.read_error(e);
        let streams = &self.live_streams[index];
        for row_group in 0..reader.row_groups() {
            if let Some((lo, hi)) = reader.time_range(row_group) {
                if hi < lower || lo >= upper {
                    continue;
                }
            }
            for batch in reader.read_row_group(row_group, false).map_err(bad)? {
                let batch = batch.map_err(bad)?;
                for i in 0..batch.len() {
                    let timestamp = batch.timestamp(i);
                    if timestamp < lower || timestamp >= upper {
                        continue;
                    }
                    let Some(stream) = streams.get(batch.stream(i)) else {
                        continue;
                    };
                    let stream = Arc::clone(stream);
                    let mut message = String::new();
                    batch.write_message(i, &mut message);
                    let event = ScannedEvent {
                        stream,
                        key: EventKey {
                            timestamp,
                            seq: batch.seq(i),
                        },
                        ingestion_time: batch.ingestion_time(i),
                        message,
                    };
                    if !visit(event) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The Hive partition values in a part's relative path (`key=value` components).
pub(crate) fn partition_values(file: &str) -> Vec<(String, String)> {
    file.split('/')
        .filter_map(|c| c.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
