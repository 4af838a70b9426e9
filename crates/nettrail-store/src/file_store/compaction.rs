//! Compaction: sealed segments of a group become columnar parts by hour of event time;
//! new events of an hour are merged with its small part (fewer rows than
//! `part_merge_max_rows`), so a quiet hour is one part and a busy one a few large
//! parts, and no compaction rewrites more than the small part it grows.
//!
//! One compaction of a group, on the sweeper thread:
//! 1. plan, under the state's read lock: the sealed segments to take (up to
//!    `compaction_max_bytes`), the blocks of live streams in them, the group's parts,
//!    its retention cutoff;
//! 2. read the blocks' unexpired events into buckets by hour; for every bucket, read
//!    the hour's small parts (all of them if retention rewrites the hour) back into
//!    it and write one new part (a temporary
//!    file, fsynced, renamed into AWS's Hive layout, the folder fsynced);
//! 3. commit, under the journal lock: one [`MetaRecord::Compact`] naming the retired
//!    segments, the replaced and expired parts and the new parts, applied to the
//!    state at once, so a read sees either the rows or the parts, never both;
//! 4. delete the retired segment files (replaced parts go when their last reader lets
//!    go, see [`Part`]).
//!
//! Retention works here too: wholly expired parts are dropped, and a part more than
//! half expired is rewritten without its expired rows.
//!
//! A crash before step 3 leaves orphan part files that the next open deletes; after
//! it, segment files that recovery deletes by the journal's word. Either way every
//! event is served exactly once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use nettrail_columnar::detect::detect_layout;
use nettrail_columnar::{write_part, PartEvent, PartSummary, WriteOptions};
use nettrail_formats::flow::LogFormat;

use crate::block;
use crate::error::{Result, StoreError};
use crate::journal::MetaRecord;
use crate::model::Millis;
use crate::parts::{hour_of, part_dir, PartMeta, PartStream};
use crate::scan::ScanPart;
use crate::segment::{read_block, BlockRef, Segment};

use super::shared::Shared;
use super::state::apply;

/// What one compaction round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    /// Segments whose events moved into parts.
    pub segments_retired: u64,
    /// Parts written.
    pub parts_written: u64,
    /// Parts replaced or expired.
    pub parts_removed: u64,
    /// Events written into parts (including those of merged parts).
    pub events_written: u64,
}

impl std::ops::AddAssign for CompactionStats {
    fn add_assign(&mut self, other: CompactionStats) {
        self.segments_retired += other.segments_retired;
        self.parts_written += other.parts_written;
        self.parts_removed += other.parts_removed;
        self.events_written += other.events_written;
    }
}

/// Compacts every group once.
pub(super) fn compact_all(shared: &Shared, now: Millis) -> Result<CompactionStats> {
    let _maintenance = shared.maintenance.lock().expect("maintenance lock");
    let ids: Vec<u64> = {
        let state = shared.state.read().expect("state lock");
        state.groups.values().map(|g| g.id).collect()
    };
    let mut total = CompactionStats::default();
    for id in ids {
        total += compact_group(shared, id, now)?;
    }
    Ok(total)
}

/// What a compaction of one group works from, taken under the read lock.
struct Plan {
    group_name: String,
    segments: Vec<(u64, Arc<Segment>)>,
    /// The blocks of live streams in those segments, with their stream's id and name.
    blocks: Vec<(u64, Arc<str>, BlockRef)>,
    /// The group's parts by hour, with their live streams.
    parts_by_hour: BTreeMap<Millis, Vec<ScanPart>>,
    /// Parts wholly expired.
    expired_parts: Vec<u64>,
    /// Hours whose part is mostly expired: rewritten without the expired rows.
    shrinking_hours: Vec<Millis>,
    /// Live streams: name to id.
    stream_ids: HashMap<Arc<str>, u64>,
    cutoff: Option<Millis>,
    /// The flow-log format the group's writers declared.
    known_format: Option<LogFormat>,
}

fn plan(shared: &Shared, group_id: u64, now: Millis) -> Option<Plan> {
    let state = shared.state.read().expect("state lock");
    let g = state.group_by_id(group_id)?;
    let mut segments = Vec::new();
    let mut bytes = 0u64;
    for (&id, segment) in &g.segments {
        if !segment.sealed.load(Ordering::Acquire) {
            continue;
        }
        if !segments.is_empty() && bytes >= shared.config.compaction_max_bytes {
            break;
        }
        bytes += segment.file.metadata().map(|m| m.len()).unwrap_or(0);
        segments.push((id, Arc::clone(segment)));
    }
    let cutoff = g.cutoff(now);
    let expired_parts: Vec<u64> = g
        .parts
        .values()
        .filter(|p| cutoff.is_some_and(|c| p.meta.max_ts < c))
        .map(|p| p.meta.id)
        .collect();
    // A part more than half of whose time span has expired is rewritten without the
    // expired rows (once: the next time it is wholly expired and dropped).
    let shrinking_hours: Vec<Millis> = g
        .parts
        .values()
        .filter(|p| {
            cutoff.is_some_and(|c| {
                p.meta.min_ts < c && p.meta.max_ts >= c && c - p.meta.min_ts > p.meta.max_ts - c
            })
        })
        .map(|p| p.meta.hour)
        .collect();
    if segments.is_empty() && expired_parts.is_empty() && shrinking_hours.is_empty() {
        return None;
    }
    let mut blocks = Vec::new();
    for stream in g.streams.values() {
        for block in &stream.blocks {
            if segments.iter().any(|(_, s)| Arc::ptr_eq(s, &block.segment)) {
                blocks.push((stream.id, Arc::clone(&stream.name), block.clone()));
            }
        }
    }
    let mut parts_by_hour: BTreeMap<Millis, Vec<ScanPart>> = BTreeMap::new();
    for part in g.parts.values() {
        if !expired_parts.contains(&part.meta.id) {
            parts_by_hour
                .entry(part.meta.hour)
                .or_default()
                .push(ScanPart {
                    part: Arc::clone(part),
                    streams: g.live_streams(part, |_| true),
                });
        }
    }
    Some(Plan {
        group_name: g.name.clone(),
        segments,
        blocks,
        parts_by_hour,
        expired_parts,
        shrinking_hours,
        stream_ids: g
            .streams
            .values()
            .map(|s| (Arc::clone(&s.name), s.id))
            .collect(),
        cutoff,
        // Checked where it was declared; a format that no longer parses is only not
        // used.
        known_format: g
            .flow_log_format
            .as_deref()
            .and_then(|f| LogFormat::parse(f).ok()),
    })
}

/// Compacts the sealed segments of one group, and drops its expired parts.
pub(super) fn compact_group(
    shared: &Shared,
    group_id: u64,
    now: Millis,
) -> Result<CompactionStats> {
    let Some(plan) = plan(shared, group_id, now) else {
        return Ok(CompactionStats::default());
    };
    let mut buckets: BTreeMap<Millis, Vec<PartEvent>> = BTreeMap::new();
    for (_, stream, block_ref) in &plan.blocks {
        let raw = read_block(block_ref)?;
        let header = &block_ref.header;
        let events = block::index_events(header, &raw).map_err(|kind| StoreError::Corrupt {
            path: block_ref.segment.path.clone(),
            offset: block_ref.offset,
            kind,
        })?;
        for (i, event) in events.iter().enumerate() {
            if plan.cutoff.is_some_and(|c| event.timestamp < c) {
                continue;
            }
            buckets
                .entry(hour_of(event.timestamp))
                .or_default()
                .push(PartEvent {
                    timestamp: event.timestamp,
                    seq: header.first_seq + i as u64,
                    ingestion_time: header.ingestion_ms,
                    stream: Arc::clone(stream),
                    message: std::str::from_utf8(&raw[event.start..event.end])
                        .expect("validated by index_events")
                        .to_owned(),
                });
        }
    }
    for hour in &plan.shrinking_hours {
        buckets.entry(*hour).or_default();
    }
    let mut stats = CompactionStats::default();
    let mut added = Vec::new();
    let mut removed = plan.expired_parts.clone();
    let mut written_files = Vec::new();
    for (hour, mut events) in buckets {
        // New events join the hour's small parts; full ones stay as they are, unless
        // the hour is being rewritten for retention.
        let rewrite_all = plan.shrinking_hours.contains(&hour);
        for candidate in plan.parts_by_hour.get(&hour).into_iter().flatten() {
            if !rewrite_all && candidate.part.meta.rows >= shared.config.part_merge_max_rows {
                continue;
            }
            read_part_events(candidate, plan.cutoff, &mut events)?;
            removed.push(candidate.part.meta.id);
        }
        if events.is_empty() {
            continue;
        }
        let id = {
            let mut state = shared.state.write().expect("state lock");
            let id = state.next_part_id;
            state.next_part_id += 1;
            id
        };
        let meta = write_hour_part(shared, &plan, id, hour, &mut events)?;
        written_files.push(meta.file.clone());
        stats.events_written += meta.rows;
        stats.parts_written += 1;
        added.push(meta);
    }
    stats.segments_retired = plan.segments.len() as u64;
    stats.parts_removed = removed.len() as u64;

    // The commit: one journal record, applied at once.
    {
        let mut journal = shared.journal.lock().expect("journal lock");
        let mut state = shared.state.write().expect("state lock");
        let Some(group) = state.group_by_id(group_id) else {
            // Deleted while the parts were written: they serve nothing.
            drop(state);
            drop(journal);
            for file in &written_files {
                shared.places.lake.remove(file);
            }
            return Ok(CompactionStats::default());
        };
        let record = MetaRecord::Compact {
            group: group_id,
            retired_segments: plan.segments.iter().map(|(id, _)| *id).collect(),
            removed_parts: removed,
            added_parts: added,
            checkpoints: group.unjournaled_checkpoints(),
        };
        journal.append(&record)?;
        apply(&mut state, &record, &shared.places);
    }
    for (_, segment) in &plan.segments {
        match std::fs::remove_file(&segment.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Recovery deletes it by the journal's word.
            Err(e) => {
                tracing::warn!(path = %segment.path.display(), error = %e, "could not remove compacted segment")
            }
        }
    }
    tracing::info!(
        group = %plan.group_name,
        segments = stats.segments_retired,
        parts_written = stats.parts_written,
        parts_removed = stats.parts_removed,
        events = stats.events_written,
        "compacted"
    );
    Ok(stats)
}

/// Appends the unexpired events of the live streams of a part to `events`.
fn read_part_events(
    candidate: &ScanPart,
    cutoff: Option<Millis>,
    events: &mut Vec<PartEvent>,
) -> Result<()> {
    let part = &candidate.part;
    let reader = part.open()?;
    let bad = |e| part.read_error(e);
    for row_group in 0..reader.row_groups() {
        for batch in reader.read_row_group(row_group, false).map_err(bad)? {
            let batch = batch.map_err(bad)?;
            for i in 0..batch.len() {
                let Some(stream) = candidate.streams.get(batch.stream(i)) else {
                    continue;
                };
                if cutoff.is_some_and(|c| batch.timestamp(i) < c) {
                    continue;
                }
                events.push(PartEvent {
                    timestamp: batch.timestamp(i),
                    seq: batch.seq(i),
                    ingestion_time: batch.ingestion_time(i),
                    stream: Arc::clone(stream),
                    message: batch.message(i).expect("read with every column"),
                });
            }
        }
    }
    Ok(())
}

/// Writes the part `id` of `hour` durably and returns its catalog entry.
fn write_hour_part(
    shared: &Shared,
    plan: &Plan,
    id: u64,
    hour: Millis,
    events: &mut [PartEvent],
) -> Result<PartMeta> {
    let config = &shared.config;
    let layout = detect_layout(
        events.iter().map(|e| e.message.as_str()),
        plan.known_format.as_ref(),
    );
    let relative_dir = part_dir(
        &plan.group_name,
        &config.lake_account_id,
        layout.aws_service(),
        &config.lake_region,
        hour,
    );
    let name = format!("part-{id:012}.parquet");
    let options = WriteOptions {
        zstd_level: config.part_zstd_level,
        max_row_group_rows: config.part_row_group_rows,
        metadata: vec![("nettrail.log_group".to_owned(), plan.group_name.clone())],
    };
    let (file, bytes, summary) = shared.places.lake.write_part(&relative_dir, &name, |out| {
        write_part(events, &layout, &options, out).map(|(_, summary)| summary)
    })?;
    Ok(PartMeta {
        id,
        hour,
        file,
        bytes,
        rows: summary.rows,
        typed_rows: summary.typed_rows,
        layout: layout.to_metadata(),
        min_ts: summary.min_ts,
        max_ts: summary.max_ts,
        min_seq: summary.min_seq,
        max_seq: summary.max_seq,
        streams: stream_shares(&summary, &plan.stream_ids, bytes),
    })
}

/// What each stream contributed, its share of the file's bytes by message bytes.
fn stream_shares(
    summary: &PartSummary,
    stream_ids: &HashMap<Arc<str>, u64>,
    bytes: u64,
) -> Vec<PartStream> {
    let total: u64 = summary
        .streams
        .values()
        .map(|s| s.message_bytes)
        .sum::<u64>()
        .max(1);
    summary
        .streams
        .iter()
        .filter_map(|(name, s)| {
            Some(PartStream {
                id: *stream_ids.get(name)?,
                name: name.to_string(),
                rows: s.rows,
                min_ts: s.min_ts,
                max_ts: s.max_ts,
                min_ingestion_time: s.min_ingestion_time,
                max_ingestion_time: s.max_ingestion_time,
                bytes: (u128::from(bytes) * u128::from(s.message_bytes) / u128::from(total)) as u64,
            })
        })
        .collect()
}
