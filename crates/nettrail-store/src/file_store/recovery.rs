//! Opening a data directory after any stop, clean or not: every segment of every group
//! is read and every block verified (its checksum and header); a torn tail, what a
//! crash in the middle of a write leaves, is cut off; a damaged block followed by valid
//! ones is skipped and reported; the stream block index is rebuilt; import checkpoint
//! blocks are taken back into the state; and the next sequence number is found past
//! every one handed out before (blocks, cursors, checkpoints). [`reopen`] does it all
//! and rewrites the journal; the handle (`mod.rs`) then starts its threads.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::block::{self, BlockHeader, HEADER_LEN};
use crate::cursors::CursorFile;
use crate::error::{Result, StoreError};
use crate::segment::{BlockRef, Segment, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};

use super::config::FileStoreConfig;
use super::shared::now_ms;
use super::state::{replay_state, snapshot_records, CheckpointMark, Places, State};
use crate::journal::Journal;
use crate::metric_log::MetricLog;

/// What opening a data directory rebuilt, for the handle to start from.
pub(super) struct Reopened {
    pub(super) state: State,
    /// The journal, rewritten as a snapshot of `state`.
    pub(super) journal: Journal,
    pub(super) cursor_files: HashMap<u64, CursorFile>,
    pub(super) metrics: MetricLog,
    /// The next event sequence number.
    pub(super) next_seq: u64,
}

/// Replays the metadata journal, verifies every segment (cutting torn tails), deletes
/// orphan parts (after checking that every part the catalog lists is there), opens the metric log and rewrites the journal as a snapshot of what it
/// all says.
pub(super) fn reopen(config: &FileStoreConfig, places: &Places) -> Result<Reopened> {
    let dir = &config.dir;
    let journal_path = dir.join("meta.journal");
    let mut state = replay_state(&Journal::replay(&journal_path)?, places);

    let started = std::time::Instant::now();
    let recovered = recover_segments(&mut state, &places.groups_dir)?;
    let catalog: HashMap<String, u64> = state
        .groups
        .values()
        .flat_map(|g| g.parts.values())
        .map(|p| (p.meta.file.clone(), p.meta.bytes))
        .collect();
    places.lake.recover(&catalog)?;
    // Sequence numbers continue past every one handed out before, even those whose
    // blocks retention has deleted since: cursors and checkpoints point at them.
    let (highest_recorded, cursor_files) = highest_recorded_seq(&state)?;
    let metrics = MetricLog::open(
        &dir.join("metrics.journal"),
        i64::try_from(config.metric_retention.as_millis()).unwrap_or(i64::MAX),
        config.max_metric_series,
        &state.group_names.keys().copied().collect(),
        now_ms(),
    )?;
    let next_seq = recovered
        .next_seq
        .max(state.seq_floor)
        .max(highest_recorded + 1)
        .max(metrics.highest_cursor() + 1);
    state.seq_floor = next_seq;
    state.published_seq = next_seq - 1;
    state.segment_floor = state.segment_floor.max(recovered.next_segment_id);
    // Rewritten after recovery, so the snapshot keeps what recovery learned
    // (checkpoints from checkpoint blocks, the sequence floor).
    let journal = Journal::rewrite(&journal_path, &snapshot_records(&state))?;
    state.mark_checkpoints_journaled();
    tracing::info!(
        dir = %dir.display(),
        groups = state.groups.len(),
        blocks = recovered.blocks,
        bytes = recovered.bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store opened"
    );
    Ok(Reopened {
        state,
        journal,
        cursor_files,
        metrics,
        next_seq,
    })
}

/// The highest sequence number a cursor or an import checkpoint of any group refers to.
/// Also returns every group's cursor file, read once here and kept as the store's cache.
pub(super) fn highest_recorded_seq(state: &State) -> Result<(u64, HashMap<u64, CursorFile>)> {
    let mut highest = 0;
    let mut files = HashMap::new();
    for group in state.groups.values() {
        let file = CursorFile::open(&group.dir)?;
        highest = file.highest().unwrap_or(0).max(highest);
        files.insert(group.id, file);
        for objects in group.imports.values() {
            highest = objects.values().map(|c| c.seq).fold(highest, u64::max);
        }
    }
    Ok((highest, files))
}

/// What recovery found.
pub(super) struct Recovered {
    /// Valid event blocks indexed.
    pub(super) blocks: u64,
    /// Their bytes.
    pub(super) bytes: u64,
    /// Past the highest sequence number of any block.
    pub(super) next_seq: u64,
    /// Past the highest segment id.
    pub(super) next_segment_id: u64,
}

/// Reads every segment of every group, verifying every block, and fills the index.
pub(super) fn recover_segments(state: &mut State, groups_dir: &Path) -> Result<Recovered> {
    let mut out = Recovered {
        blocks: 0,
        bytes: 0,
        next_seq: 1,
        next_segment_id: 1,
    };
    let ids: HashMap<u64, String> = state
        .groups
        .values()
        .map(|g| (g.id, g.name.clone()))
        .collect();
    let entries =
        std::fs::read_dir(groups_dir).map_err(|e| StoreError::io("listing", groups_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("listing", groups_dir, e))?;
        let path = entry.path();
        let group_name = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|id| ids.get(&id));
        let Some(group_name) = group_name else {
            // A group deleted just before a crash: its journal record is durable, the
            // directory removal was not.
            tracing::info!(path = %path.display(), "removing directory of a deleted log group");
            std::fs::remove_dir_all(&path).map_err(|e| StoreError::io("removing", &path, e))?;
            continue;
        };
        let group = state
            .groups
            .get_mut(group_name)
            .expect("id maps to a group");
        let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(&path)
            .map_err(|e| StoreError::io("listing", &path, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let p = e.path();
                let id = p
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".seg")?
                    .parse()
                    .ok()?;
                Some((id, p))
            })
            .collect();
        segments.sort();
        let mut seen_seqs = HashSet::new();
        for (segment_id, seg_path) in segments {
            out.next_segment_id = out.next_segment_id.max(segment_id + 1);
            if group.retired_segments.contains(&segment_id) {
                // Compacted into parts before a crash that came before the deletion.
                tracing::info!(path = %seg_path.display(), "removing segment already compacted into parts");
                std::fs::remove_file(&seg_path)
                    .map_err(|e| StoreError::io("removing compacted segment", &seg_path, e))?;
                continue;
            }
            let Some(RecoveredSegment {
                segment,
                blocks,
                checkpoints,
            }) = recover_segment(&seg_path)?
            else {
                continue;
            };
            // A checkpoint block is durable with the events before it; the journal
            // record that follows it may not be (a crash in between), so the later of
            // the two wins.
            for (seq, payload) in checkpoints {
                out.next_seq = out.next_seq.max(seq + 1);
                match serde_json::from_slice::<CheckpointMark>(&payload) {
                    Ok(mark) => group.record_checkpoint(&mark, seq),
                    Err(e) => {
                        tracing::error!(path = %seg_path.display(), error = %e, "unreadable import checkpoint block; ignoring it")
                    }
                }
            }
            let segment = Arc::new(segment);
            for (offset, header) in blocks {
                out.next_seq = out.next_seq.max(header.first_seq + u64::from(header.count));
                if !seen_seqs.insert(header.first_seq) {
                    continue;
                }
                let Some(stream_name) = group.stream_names.get(&header.stream_id) else {
                    continue; // a deleted stream: reclaimed with its segment
                };
                out.blocks += 1;
                out.bytes += header.block_len();
                group
                    .streams
                    .get_mut(stream_name)
                    .expect("stream names match streams")
                    .add_block(BlockRef {
                        segment: Arc::clone(&segment),
                        offset,
                        header,
                    });
            }
            group.segments.insert(segment_id, segment);
        }
        group.retired_segments.clear();
        for part in group.parts.values() {
            out.next_seq = out.next_seq.max(part.meta.max_seq + 1);
        }
        group.restat_streams();
    }
    Ok(out)
}

/// A segment found on open.
struct RecoveredSegment {
    segment: Segment,
    /// The offsets and headers of its valid event blocks.
    blocks: Vec<(u64, BlockHeader)>,
    /// The sequence and payload of its valid import checkpoint blocks.
    checkpoints: Vec<(u64, Vec<u8>)>,
}

/// Verifies one segment and returns it with its valid blocks. A torn tail (what a crash
/// in the middle of a write leaves) is cut off; a damaged block followed by valid ones is
/// skipped and reported. A segment with no valid block is deleted.
fn recover_segment(path: &Path) -> Result<Option<RecoveredSegment>> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io("reading segment", path, e))?;
    let header_ok = bytes.len() as u64 >= SEGMENT_HEADER_LEN && bytes[..8] == SEGMENT_MAGIC;
    let mut blocks = Vec::new();
    let mut checkpoints = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN as usize;
    let mut valid_end = pos;
    if header_ok {
        while pos < bytes.len() {
            if let Some(header) = valid_block_at(&bytes, pos) {
                if header.codec == block::Codec::ImportCheckpoint {
                    let payload = &bytes[pos + HEADER_LEN..pos + header.block_len() as usize];
                    checkpoints.push((header.first_seq, payload.to_vec()));
                } else {
                    blocks.push((pos as u64, header));
                }
                pos += header.block_len() as usize;
                valid_end = pos;
                continue;
            }
            match next_valid_block(&bytes, pos + 1) {
                Some(next) => {
                    tracing::error!(
                        path = %path.display(),
                        offset = pos,
                        skipped_bytes = next - pos,
                        "segment has a damaged block followed by valid ones; skipping the damaged bytes"
                    );
                    pos = next;
                }
                None => break,
            }
        }
    }
    if blocks.is_empty() && checkpoints.is_empty() {
        std::fs::remove_file(path)
            .map_err(|e| StoreError::io("removing empty segment", path, e))?;
        return Ok(None);
    }
    if valid_end < bytes.len() {
        tracing::warn!(
            path = %path.display(),
            kept_bytes = valid_end,
            dropped_bytes = bytes.len() - valid_end,
            "segment has a torn tail from an interrupted write; cutting it off"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| StoreError::io("opening segment", path, e))?;
        file.set_len(valid_end as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io("truncating segment", path, e))?;
    }
    let file = File::open(path).map_err(|e| StoreError::io("opening segment", path, e))?;
    let segment = Segment {
        path: path.to_owned(),
        file,
        sealed: AtomicBool::new(true),
    };
    Ok(Some(RecoveredSegment {
        segment,
        blocks,
        checkpoints,
    }))
}

fn valid_block_at(bytes: &[u8], pos: usize) -> Option<BlockHeader> {
    let header = BlockHeader::decode(bytes.get(pos..)?).ok()?;
    let payload = bytes.get(pos + HEADER_LEN..pos + header.block_len() as usize)?;
    (crc32c::crc32c(payload) == header.payload_crc).then_some(header)
}

fn next_valid_block(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = block::BLOCK_MAGIC;
    (from..bytes.len().saturating_sub(HEADER_LEN - 1))
        .filter(|&p| bytes[p..p + 4] == magic)
        .find(|&p| valid_block_at(bytes, p).is_some())
}
