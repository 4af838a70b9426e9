//! The single writer thread: group commit. Appenders send [`WriteJob`]s; the writer
//! takes every job queued (up to `max_commit_bytes`), appends each group's blocks to that
//! group's active segment in one write, fsyncs every touched segment once, publishes
//! the blocks to the index, calls the commit listeners, and only then acknowledges.
//! A segment is sealed when it is full or old (checked on every commit and once a second
//! when idle) and on shutdown; the writer always starts new segments after a restart.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::block::{BlockHeader, SealedPayload};
use crate::error::{Result, StoreError};
use crate::model::AppendAck;
use crate::segment::{create_segment, BlockRef, Segment, SEGMENT_HEADER_LEN};

use super::config::FileStoreConfig;
use super::shared::{now_ms, Shared};
use super::state::CheckpointMark;

/// What the writer is asked to do.
pub(super) enum WriterMsg {
    /// Blocks of one group, committed together.
    Write(Vec<WriteJob>),
    DropGroup {
        id: u64,
        dir: PathBuf,
    },
    /// Seal every active segment now (so a compaction can take them), then answer.
    SealAll(SyncSender<()>),
}

/// Blocks to write for one stream (or an import checkpoint block).
pub(super) struct WriteJob {
    pub(super) group_id: u64,
    pub(super) stream_id: u64,
    pub(super) payload: SealedPayload,
    /// Set for an import checkpoint block: published into the group's checkpoints when
    /// the commit is durable.
    pub(super) checkpoint: Option<CheckpointMark>,
    /// Answered with (`index`, the outcome).
    pub(super) reply: SyncSender<(usize, Result<AppendAck>)>,
    pub(super) index: usize,
}

/// One group's share of a commit: the encoded bytes, and each job with the offset and
/// header of its block.
type GroupBatch = (Vec<u8>, Vec<(WriteJob, u64, BlockHeader)>);

/// The single writer: appends blocks to each group's active segment and acknowledges
/// them after one fsync per touched segment.
pub(super) struct Writer {
    shared: Arc<Shared>,
    next_seq: u64,
    active: HashMap<u64, ActiveSegment>,
}

struct ActiveSegment {
    id: u64,
    segment: Arc<Segment>,
    file: File,
    len: u64,
    opened: Instant,
}

impl ActiveSegment {
    /// Seals the segment if it is full or old enough; true when it did.
    fn seal_if_due(&self, group_id: u64, config: &FileStoreConfig) -> bool {
        if self.len < config.segment_max_bytes && self.opened.elapsed() < config.segment_max_age {
            return false;
        }
        self.segment.sealed.store(true, Ordering::Release);
        tracing::debug!(
            group_id,
            segment = self.id,
            bytes = self.len,
            "segment sealed"
        );
        true
    }
}

impl Writer {
    pub(super) fn new(shared: Arc<Shared>, next_seq: u64) -> Writer {
        Writer {
            shared,
            next_seq,
            active: HashMap::new(),
        }
    }

    pub(super) fn run(mut self, rx: Receiver<WriterMsg>) {
        loop {
            // Wake up now and then even when idle, so that the segment of a group that
            // stopped receiving writes is still sealed on time and can be reclaimed.
            let first = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(msg) => msg,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.seal_old_segments();
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut jobs = Vec::new();
            let mut bytes = 0usize;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Write(batch) => {
                        bytes += batch.iter().map(|j| j.payload.bytes.len()).sum::<usize>();
                        jobs.extend(batch);
                    }
                    WriterMsg::DropGroup { id, dir } => {
                        // Commit what is pending first so no write lands after removal.
                        self.commit(std::mem::take(&mut jobs));
                        self.drop_group(id, &dir);
                    }
                    WriterMsg::SealAll(reply) => {
                        self.commit(std::mem::take(&mut jobs));
                        for active in self.active.values() {
                            active.segment.sealed.store(true, Ordering::Release);
                        }
                        self.active.clear();
                        let _ = reply.send(());
                    }
                }
                if bytes < self.shared.config.max_commit_bytes {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(jobs);
        }
        for active in self.active.values() {
            active.segment.sealed.store(true, Ordering::Release);
        }
        tracing::debug!("writer stopped");
    }

    fn seal_old_segments(&mut self) {
        let config = &self.shared.config;
        self.active
            .retain(|group_id, active| !active.seal_if_due(*group_id, config));
    }

    fn drop_group(&mut self, id: u64, dir: &Path) {
        self.active.remove(&id);
        if let Err(e) = std::fs::remove_dir_all(dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(dir = %dir.display(), error = %e, "could not remove deleted log group's directory");
            }
        }
    }

    /// Writes a set of jobs with one fsync per touched segment, then publishes them to
    /// the index and acknowledges them.
    fn commit(&mut self, jobs: Vec<WriteJob>) {
        if jobs.is_empty() {
            return;
        }
        let ingestion_ms = now_ms();
        // Per group: the encoded bytes and the jobs with their offsets and headers.
        let mut batches: BTreeMap<u64, GroupBatch> = BTreeMap::new();
        for job in jobs {
            let active = match self.active_segment(job.group_id) {
                Ok(active) => active,
                Err(e) => {
                    let _ = job.reply.send((job.index, Err(e)));
                    continue;
                }
            };
            let base = active.len;
            let (buf, placed) = batches.entry(job.group_id).or_default();
            let header = BlockHeader {
                codec: job.payload.codec,
                payload_len: job.payload.bytes.len() as u32,
                payload_crc: job.payload.crc,
                raw_len: job.payload.raw_len,
                stream_id: job.stream_id,
                first_seq: self.next_seq,
                ingestion_ms,
                min_ts: job.payload.min_ts,
                max_ts: job.payload.max_ts,
                count: job.payload.count,
            };
            // A checkpoint block holds no events but takes a sequence number of its own,
            // so that the later of two checkpoints is always known.
            self.next_seq += u64::from(job.payload.count.max(1));
            let offset = base + buf.len() as u64;
            buf.extend_from_slice(&header.encode());
            buf.extend_from_slice(&job.payload.bytes);
            placed.push((job, offset, header));
        }

        let mut done = Vec::new();
        for (group_id, (buf, placed)) in batches {
            let active = self
                .active
                .get_mut(&group_id)
                .expect("segment opened above");
            let written = active
                .file
                .write_all(&buf)
                .and_then(|()| active.file.sync_data());
            match written {
                Ok(()) => {
                    active.len += buf.len() as u64;
                    done.push((group_id, Arc::clone(&active.segment), placed));
                }
                Err(e) => {
                    tracing::error!(path = %active.segment.path.display(), error = %e, "write failed; the writes of this commit are refused");
                    // Leave no partial block behind, and start a fresh segment next time;
                    // this one is sealed so the sweeper can reclaim it like any other.
                    let _ = active.file.set_len(active.len);
                    active.segment.sealed.store(true, Ordering::Release);
                    let path = active.segment.path.clone();
                    self.active.remove(&group_id);
                    for (job, _, _) in placed {
                        let err = StoreError::io(
                            "writing segment",
                            &path,
                            std::io::Error::new(e.kind(), e.to_string()),
                        );
                        let _ = job.reply.send((job.index, Err(err)));
                    }
                }
            }
        }

        let mut acks = Vec::new();
        {
            let mut state = self.shared.state.write().expect("state lock");
            // Sequence numbers of refused writes are skipped, never reused: everything
            // below next_seq is settled once this commit is published.
            state.published_seq = self.next_seq - 1;
            for (group_id, segment, placed) in done {
                for (job, offset, header) in placed {
                    if let (Some(group), Some(mark)) = (state.group_mut(group_id), &job.checkpoint)
                    {
                        group.record_checkpoint(mark, header.first_seq);
                    } else if let Some(group) = state.group_mut(group_id) {
                        if let Some(name) = group.stream_names.get(&header.stream_id).cloned() {
                            group
                                .streams
                                .get_mut(&name)
                                .expect("stream names match streams")
                                .add_block(BlockRef {
                                    segment: Arc::clone(&segment),
                                    offset,
                                    header,
                                });
                        }
                    }
                    self.shared
                        .ingested_events
                        .fetch_add(u64::from(header.count), Ordering::Relaxed);
                    if header.count > 0 {
                        self.shared
                            .ingested_bytes
                            .fetch_add(u64::from(header.raw_len), Ordering::Relaxed);
                    }
                    acks.push((job.reply, job.index, header));
                }
            }
        }
        // Before the acknowledgements: once a write returns, its listeners know.
        let listeners = self
            .shared
            .commit_listeners
            .lock()
            .expect("listeners lock")
            .clone();
        for listener in listeners {
            listener();
        }
        for (reply, index, header) in acks {
            let _ = reply.send((
                index,
                Ok(AppendAck {
                    first_seq: header.first_seq,
                    ingestion_time: header.ingestion_ms,
                }),
            ));
        }
    }

    /// The group's segment to append to, sealing and replacing a full or old one.
    fn active_segment(&mut self, group_id: u64) -> Result<&mut ActiveSegment> {
        let config = &self.shared.config;
        if self
            .active
            .get(&group_id)
            .is_some_and(|a| a.seal_if_due(group_id, config))
        {
            self.active.remove(&group_id);
        }
        if !self.active.contains_key(&group_id) {
            let dir = {
                let state = self.shared.state.read().expect("state lock");
                state
                    .group_by_id(group_id)
                    .map(|g| g.dir.clone())
                    .ok_or_else(|| StoreError::GroupNotFound(format!("#{group_id}")))?
            };
            // Recreated if missing (a group with no events has an empty directory, which
            // copies and archives of a data directory tend to drop).
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError::io("creating group directory", &dir, e))?;
            let id = self.shared.next_segment_id.fetch_add(1, Ordering::Relaxed);
            let (file, segment) = create_segment(&dir, id)?;
            let segment = Arc::new(segment);
            {
                let mut state = self.shared.state.write().expect("state lock");
                if let Some(g) = state.group_mut(group_id) {
                    g.segments.insert(id, Arc::clone(&segment));
                }
            }
            self.active.insert(
                group_id,
                ActiveSegment {
                    id,
                    segment,
                    file,
                    len: SEGMENT_HEADER_LEN,
                    opened: Instant::now(),
                },
            );
        }
        Ok(self.active.get_mut(&group_id).expect("inserted above"))
    }
}
