//! [`FileStore`]: the embedded backend of [`LogStore`](crate::LogStore) on a local
//! directory, and its row tier.
//!
//! Layout of the data directory:
//! ```text
//! LOCK                      held (flock) while a store has the directory open
//! meta.journal              metadata journal (see journal.rs)
//! metrics.journal           metric filter aggregates and cursors (see metric_log.rs)
//! groups/<group id>/<segment id>.seg
//!                           segment: 16-byte header b"NTSEG\0\0\x01" + version u32 LE +
//!                           reserved u32, then blocks (see block.rs) back to back
//! groups/<group id>/cursors.0, cursors.1
//!                           subscription cursors (see cursors.rs)
//! lake/<group>/aws-account-id=…/aws-service=…/aws-region=…/year=/month=/day=/hour=/part-<id>.parquet
//!                           columnar parts (see parts.rs and the nettrail-columnar crate),
//!                           or the same names under a bucket's prefix (see lake.rs)
//! ```
//! Segments are written by one writer thread only; a segment is sealed when it reaches
//! `segment_max_bytes` or `segment_max_age`, and on every restart (the writer always
//! starts new segments). Sealed segments are read-only until the compactor turns them
//! into parts (`compaction.rs`) or the retention sweeper deletes them, which it does
//! once every block in them has expired or belongs to a deleted stream.
//!
//! This file is the handle: opening a directory and the [`LogStore`] calls, which
//! validate against the state, journal metadata mutations and hand writes to the writer.
//! Each role has its own file:
//! - `state.rs`: the metadata state and how a journal record changes it (replay);
//! - `writer.rs`: the writer thread, group commit and active segments;
//! - `recovery.rs`: verifying segments and rebuilding the block index on open;
//! - `retention.rs`: the sweeper (which runs the compactor after each sweep);
//! - `compaction.rs`: sealed segments into columnar parts, atomically;
//! - `reads.rs`: the read paths over both tiers (scans, commit-order reads, backlog,
//!   tier snapshots);
//! - `shared.rs`: what the handle shares with the writer and sweeper threads;
//! - `config.rs`: the settings.

mod compaction;
mod config;
mod reads;
mod recovery;
mod retention;
mod shared;
mod state;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use crate::block;
use crate::cursors::CursorFile;
use crate::error::{Result, StoreError};
use crate::fsync::sync_dir;
use crate::journal::MetaRecord;
use crate::lake::Lake;
use crate::log_store::LogStore;
use crate::metric_log::MetricLog;
use crate::model::{
    AppendAck, Backlog, CommittedPage, GroupInfo, ImportCheckpoint, MetricCommit, MetricFilter,
    MetricId, MetricPoint, Millis, MinuteStats, NewEvent, NewGroup, PageLimit, ResourcePolicy,
    ScanHint, ScanPage, ScanRequest, StoreCounters, StreamInfo, SubscriptionFilter,
};
use crate::snapshot::TierSnapshot;

pub use compaction::CompactionStats;
pub use config::FileStoreConfig;
use recovery::{reopen, Reopened};
use retention::{run_sweeper, sweep};
use shared::{now_ms, Shared};
use state::{apply, CheckpointMark, Group, Places, Stream};
use writer::{WriteJob, Writer, WriterMsg};

/// The embedded durable store. Cheap to clone; clones share one store.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

/// The handle's own part; the part its threads share is [`Shared`].
struct Inner {
    shared: Arc<Shared>,
    writer: Mutex<Option<SyncSender<WriterMsg>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Cursor files of the groups whose cursors were used, by group id.
    cursors: Mutex<HashMap<u64, CursorFile>>,
    /// Metric filter aggregates and cursors.
    metrics: Mutex<MetricLog>,
    _lock: File,
}

impl FileStore {
    /// Opens (creating if needed) the store in `config.dir`: replays the metadata
    /// journal, verifies every block, cuts off torn tails, and starts the writer and the
    /// retention sweeper.
    pub fn open(config: FileStoreConfig) -> Result<FileStore> {
        let dir = config.dir.clone();
        let groups_dir = dir.join("groups");
        std::fs::create_dir_all(&groups_dir)
            .map_err(|e| StoreError::io("creating data directory", &groups_dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io("opening lock file", &lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(dir));
        }
        let places = Places {
            groups_dir: groups_dir.clone(),
            lake: Lake::open(&config.lake, &dir)?,
        };

        let Reopened {
            state,
            journal,
            cursor_files,
            metrics,
            next_seq,
        } = reopen(&config, &places)?;
        let next_segment_id = state.segment_floor;

        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let shared = Arc::new(Shared {
            config,
            places,
            state: RwLock::new(state),
            journal: Mutex::new(journal),
            stop: (Mutex::new(false), Condvar::new()),
            next_segment_id: AtomicU64::new(next_segment_id),
            maintenance: Mutex::new(()),
            commit_listeners: Mutex::new(Vec::new()),
            ingested_events: AtomicU64::new(0),
            ingested_bytes: AtomicU64::new(0),
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("nettrail-writer".into())
                .spawn(move || Writer::new(shared, next_seq).run(rx))
                .map_err(|e| StoreError::io("starting writer thread", &dir, e))?
        };
        let sweeper = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("nettrail-sweeper".into())
                .spawn(move || run_sweeper(&shared))
                .map_err(|e| StoreError::io("starting sweeper thread", &dir, e))?
        };
        let inner = Arc::new(Inner {
            shared,
            writer: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![writer, sweeper]),
            cursors: Mutex::new(cursor_files),
            metrics: Mutex::new(metrics),
            _lock: lock,
        });
        Ok(FileStore { inner })
    }

    /// Runs one retention sweep now (the sweeper also runs on its own every
    /// `sweep_interval`). Returns the number of segment files deleted.
    pub fn sweep(&self) -> Result<usize> {
        sweep(&self.inner.shared, now_ms())
    }

    /// Compacts every group's sealed segments into columnar parts now (the sweeper
    /// also does after every sweep when `compaction` is on). With `seal_first`, the
    /// active segments are sealed first, so that everything written so far is taken.
    pub fn compact(&self, seal_first: bool) -> Result<CompactionStats> {
        if seal_first {
            let (reply, answer) = std::sync::mpsc::sync_channel(1);
            self.send(WriterMsg::SealAll(reply))?;
            answer.recv().map_err(|_| StoreError::Closed)?;
        }
        compaction::compact_all(&self.inner.shared, now_ms())
    }

    /// A compaction whose retention cutoffs are those of the time `now` (Unix ms), not
    /// of the wall clock: what the compactor will do then, for tests and tools.
    pub fn compact_as_of(&self, now: Millis) -> Result<CompactionStats> {
        compaction::compact_all(&self.inner.shared, now)
    }

    fn send(&self, msg: WriterMsg) -> Result<()> {
        let writer = self.inner.writer.lock().expect("writer lock").clone();
        writer
            .ok_or(StoreError::Closed)?
            .send(msg)
            .map_err(|_| StoreError::Closed)
    }

    fn with_group<T>(&self, name: &str, f: impl FnOnce(&Group) -> T) -> Result<T> {
        let state = self.inner.shared.state.read().expect("state lock");
        Ok(f(state.group(name)?))
    }

    /// Appends events to several streams of one group in one commit, with an import
    /// checkpoint block after them when `mark` is given. Returns an acknowledgement per
    /// stream and the sequence of the checkpoint block.
    fn append_inner(
        &self,
        group: &str,
        streams: &[(&str, &[NewEvent<'_>])],
        mark: Option<CheckpointMark>,
    ) -> Result<(Vec<AppendAck>, Option<u64>)> {
        let (group_id, stream_ids) = self.with_group(group, |g| {
            let ids: Result<Vec<u64>> = streams
                .iter()
                .map(|(stream, _)| {
                    g.streams
                        .get(*stream)
                        .map(|s| s.id)
                        .ok_or_else(|| StoreError::StreamNotFound {
                            group: group.to_owned(),
                            stream: (*stream).to_owned(),
                        })
                })
                .collect();
            ids.map(|ids| (g.id, ids))
        })??;
        let empty_ack = AppendAck {
            first_seq: 0,
            ingestion_time: now_ms(),
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(streams.len().max(1));
        let mut jobs = Vec::new();
        let mut slots = Vec::new(); // per stream: Some(job index) or None when empty
        for ((_, events), stream_id) in streams.iter().zip(stream_ids) {
            if events.is_empty() {
                slots.push(None);
                continue;
            }
            let mut order: Vec<&NewEvent<'_>> = events.iter().collect();
            order.sort_by_key(|e| e.timestamp); // stable: equal timestamps keep their order
            let payload = block::seal_payload(
                order.iter().map(|e| (e.timestamp, e.message.as_ref())),
                self.inner.shared.config.zstd_level,
            )
            .map_err(|e| {
                StoreError::io("compressing block for", &self.inner.shared.config.dir, e)
            })?;
            slots.push(Some(jobs.len()));
            jobs.push(WriteJob {
                group_id,
                stream_id,
                payload,
                checkpoint: None,
                reply: reply.clone(),
                index: jobs.len(),
            });
        }
        let mark_index = match mark {
            Some(mark) => {
                let json = serde_json::to_vec(&mark).expect("a checkpoint serializes");
                let payload = block::checkpoint_payload(json).map_err(|e| {
                    StoreError::io("encoding checkpoint for", &self.inner.shared.config.dir, e)
                })?;
                jobs.push(WriteJob {
                    group_id,
                    stream_id: 0,
                    payload,
                    checkpoint: Some(mark),
                    reply: reply.clone(),
                    index: jobs.len(),
                });
                Some(jobs.len() - 1)
            }
            None => None,
        };
        let sent = jobs.len();
        if sent > 0 {
            // One message: the writer commits all of it in one write and one fsync, so
            // the streams of one call are stored all or none.
            self.send(WriterMsg::Write(jobs))?;
        }
        let mut acks: Vec<Option<AppendAck>> = vec![None; sent];
        for _ in 0..sent {
            let (index, result) = answer.recv().map_err(|_| StoreError::Closed)?;
            acks[index] = Some(result?);
        }
        let mark_seq = mark_index.map(|i| acks[i].expect("every job answered").first_seq);
        let stream_acks = slots
            .into_iter()
            .map(|slot| slot.map_or(empty_ack, |i| acks[i].expect("every job answered")))
            .collect();
        Ok((stream_acks, mark_seq))
    }

    /// Runs `f` on the cursor file of `group` (read on first use by a group created
    /// since open).
    fn with_cursors<T>(
        &self,
        group: &str,
        f: impl FnOnce(&mut CursorFile) -> Result<T>,
    ) -> Result<T> {
        let (id, dir) = self.with_group(group, |g| (g.id, g.dir.clone()))?;
        let mut cursors = self.inner.cursors.lock().expect("cursors lock");
        let file = match cursors.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(CursorFile::open(&dir)?),
        };
        f(file)
    }

    /// Records an import checkpoint in the journal (`seq`: the commit of its checkpoint
    /// block, 0 for none).
    fn journal_checkpoint(
        &self,
        group: &str,
        source: &str,
        object: &str,
        checkpoint: ImportCheckpoint,
        seq: u64,
    ) -> Result<()> {
        let id = self.with_group(group, |g| g.id)?;
        self.mutate(MetaRecord::SetImportCheckpoint {
            group: id,
            source: source.to_owned(),
            object: object.to_owned(),
            checkpoint,
            seq,
        })
    }

    /// Appends a metadata record and applies it to the state, under the journal lock.
    fn mutate(&self, record: MetaRecord) -> Result<()> {
        let mut journal = self.inner.shared.journal.lock().expect("journal lock");
        journal.append(&record)?;
        let mut state = self.inner.shared.state.write().expect("state lock");
        apply(&mut state, &record, &self.inner.shared.places);
        Ok(())
    }
}

impl LogStore for FileStore {
    fn create_group(&self, group: NewGroup, now: Millis) -> Result<()> {
        let mut journal = self.inner.shared.journal.lock().expect("journal lock");
        let id = {
            let state = self.inner.shared.state.read().expect("state lock");
            if state.groups.contains_key(&group.name) {
                return Err(StoreError::GroupExists(group.name));
            }
            state.next_group_id
        };
        let groups_dir = self.inner.shared.config.dir.join("groups");
        let dir = groups_dir.join(id.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io("creating group directory", &dir, e))?;
        sync_dir(&groups_dir)?;
        let record = MetaRecord::CreateGroup {
            id,
            name: group.name,
            created: now,
            class: group.class,
            kms_key_id: group.kms_key_id,
            tags: group.tags,
            deletion_protection: group.deletion_protection,
        };
        journal.append(&record)?;
        apply(
            &mut self.inner.shared.state.write().expect("state lock"),
            &record,
            &self.inner.shared.places,
        );
        Ok(())
    }

    fn delete_group(&self, name: &str) -> Result<()> {
        let (id, dir) = self.with_group(name, |g| (g.id, g.dir.clone()))?;
        self.mutate(MetaRecord::DeleteGroup { id })?;
        self.inner
            .metrics
            .lock()
            .expect("metrics lock")
            .forget_group(id)?;
        // The writer removes the directory once it has closed its segment there.
        self.send(WriterMsg::DropGroup { id, dir })
    }

    fn group(&self, name: &str) -> Result<GroupInfo> {
        self.with_group(name, Group::info)
    }

    fn group_count(&self) -> usize {
        self.inner
            .shared
            .state
            .read()
            .expect("state lock")
            .groups
            .len()
    }

    fn visit_groups(&self, after: Option<&str>, visit: &mut dyn FnMut(GroupInfo) -> bool) {
        let state = self.inner.shared.state.read().expect("state lock");
        let range = match after {
            Some(after) => state
                .groups
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => state.groups.range::<str, _>(..),
        };
        for (_, group) in range {
            if !visit(group.info()) {
                break;
            }
        }
    }

    fn set_retention(&self, group: &str, days: Option<u32>) -> Result<()> {
        let id = self.with_group(group, |g| g.id)?;
        self.mutate(MetaRecord::SetRetention { group: id, days })
    }

    fn set_tags(&self, group: &str, tags: BTreeMap<String, String>) -> Result<()> {
        let id = self.with_group(group, |g| g.id)?;
        self.mutate(MetaRecord::SetTags { group: id, tags })
    }

    fn set_flow_log_format(&self, group: &str, format: Option<&str>) -> Result<()> {
        let (id, unchanged) =
            self.with_group(group, |g| (g.id, g.flow_log_format.as_deref() == format))?;
        if unchanged {
            return Ok(());
        }
        self.mutate(MetaRecord::SetFlowLogFormat {
            group: id,
            format: format.map(str::to_owned),
        })
    }

    fn create_stream(&self, group: &str, stream: &str, now: Millis) -> Result<()> {
        let mut journal = self.inner.shared.journal.lock().expect("journal lock");
        let record = {
            let state = self.inner.shared.state.read().expect("state lock");
            let g = state
                .groups
                .get(group)
                .ok_or_else(|| StoreError::GroupNotFound(group.to_owned()))?;
            if g.streams.contains_key(stream) {
                return Err(StoreError::StreamExists {
                    group: group.to_owned(),
                    stream: stream.to_owned(),
                });
            }
            MetaRecord::CreateStream {
                group: g.id,
                id: state.next_stream_id,
                name: stream.to_owned(),
                created: now,
            }
        };
        journal.append(&record)?;
        apply(
            &mut self.inner.shared.state.write().expect("state lock"),
            &record,
            &self.inner.shared.places,
        );
        Ok(())
    }

    fn delete_stream(&self, group: &str, stream: &str) -> Result<()> {
        let record = self
            .with_group(group, |g| {
                g.streams.get(stream).map(|s| MetaRecord::DeleteStream {
                    group: g.id,
                    id: s.id,
                })
            })?
            .ok_or_else(|| StoreError::StreamNotFound {
                group: group.to_owned(),
                stream: stream.to_owned(),
            })?;
        self.mutate(record)
    }

    fn stream(&self, group: &str, stream: &str) -> Result<StreamInfo> {
        self.with_group(group, |g| g.streams.get(stream).map(Stream::info))?
            .ok_or_else(|| StoreError::StreamNotFound {
                group: group.to_owned(),
                stream: stream.to_owned(),
            })
    }

    fn streams(&self, group: &str) -> Result<Vec<StreamInfo>> {
        self.with_group(group, |g| g.streams.values().map(Stream::info).collect())
    }

    fn append(&self, group: &str, stream: &str, events: &[NewEvent<'_>]) -> Result<AppendAck> {
        let mut acks = self.append_many(group, &[(stream, events)])?;
        Ok(acks.pop().expect("one ack per stream"))
    }

    fn append_many(
        &self,
        group: &str,
        streams: &[(&str, &[NewEvent<'_>])],
    ) -> Result<Vec<AppendAck>> {
        Ok(self.append_inner(group, streams, None)?.0)
    }

    fn import_many(
        &self,
        group: &str,
        streams: &[(&str, &[NewEvent<'_>])],
        source: &str,
        object: &str,
        checkpoint: ImportCheckpoint,
    ) -> Result<Vec<AppendAck>> {
        let mark = CheckpointMark {
            source: source.to_owned(),
            object: object.to_owned(),
            checkpoint: checkpoint.clone(),
        };
        let (acks, seq) = self.append_inner(group, streams, Some(mark))?;
        // The checkpoint block is durable with the events; the journal keeps the
        // checkpoint once the block's segment is reclaimed by retention.
        let seq = seq.expect("a checkpoint block was committed");
        self.journal_checkpoint(group, source, object, checkpoint, seq)?;
        Ok(acks)
    }

    fn scan_with_hint(
        &self,
        request: &ScanRequest,
        filter: &dyn Fn(&str) -> bool,
        hint: &ScanHint<'_>,
        limit: PageLimit,
    ) -> Result<ScanPage> {
        reads::scan(&self.inner.shared, request, filter, hint, limit)
    }

    fn import_checkpoints(
        &self,
        group: &str,
        source: &str,
    ) -> Result<BTreeMap<String, ImportCheckpoint>> {
        self.with_group(group, |g| {
            g.imports
                .get(source)
                .map(|objects| {
                    objects
                        .iter()
                        .map(|(object, stored)| (object.clone(), stored.checkpoint.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn set_import_checkpoint(
        &self,
        group: &str,
        source: &str,
        object: &str,
        checkpoint: ImportCheckpoint,
    ) -> Result<()> {
        self.journal_checkpoint(group, source, object, checkpoint, 0)
    }

    fn remove_import_checkpoint(&self, group: &str, source: &str, object: &str) -> Result<()> {
        let (id, present) = self.with_group(group, |g| {
            (
                g.id,
                g.imports
                    .get(source)
                    .is_some_and(|o| o.contains_key(object)),
            )
        })?;
        if !present {
            return Ok(());
        }
        self.mutate(MetaRecord::RemoveImportCheckpoint {
            group: id,
            source: source.to_owned(),
            object: object.to_owned(),
        })
    }

    fn put_policy(&self, policy: ResourcePolicy) -> Result<()> {
        self.mutate(MetaRecord::PutPolicy { policy })
    }

    fn delete_policy(&self, key: &str) -> Result<()> {
        if !self
            .inner
            .shared
            .state
            .read()
            .expect("state lock")
            .policies
            .contains_key(key)
        {
            return Err(StoreError::PolicyNotFound(key.to_owned()));
        }
        self.mutate(MetaRecord::DeletePolicy {
            key: key.to_owned(),
        })
    }

    fn policies(&self) -> Vec<ResourcePolicy> {
        self.inner
            .shared
            .state
            .read()
            .expect("state lock")
            .policies
            .values()
            .cloned()
            .collect()
    }

    fn put_subscription_filter(&self, group: &str, filter: SubscriptionFilter) -> Result<()> {
        let id = self.with_group(group, |g| g.id)?;
        self.mutate(MetaRecord::PutSubscriptionFilter { group: id, filter })
    }

    fn delete_subscription_filter(&self, group: &str, name: &str) -> Result<bool> {
        let (id, present) =
            self.with_group(group, |g| (g.id, g.subscriptions.contains_key(name)))?;
        if !present {
            return Ok(false);
        }
        self.mutate(MetaRecord::DeleteSubscriptionFilter {
            group: id,
            name: name.to_owned(),
        })?;
        Ok(true)
    }

    fn subscription_filters(&self, group: &str) -> Result<Vec<SubscriptionFilter>> {
        self.with_group(group, |g| g.subscriptions.values().cloned().collect())
    }

    fn all_subscription_filters(&self) -> Vec<(String, SubscriptionFilter)> {
        let state = self.inner.shared.state.read().expect("state lock");
        state
            .groups
            .values()
            .flat_map(|g| {
                g.subscriptions
                    .values()
                    .map(|f| (g.name.clone(), f.clone()))
            })
            .collect()
    }

    fn put_metric_filter(&self, group: &str, filter: MetricFilter) -> Result<()> {
        let id = self.with_group(group, |g| g.id)?;
        self.mutate(MetaRecord::PutMetricFilter { group: id, filter })
    }

    fn delete_metric_filter(&self, group: &str, name: &str) -> Result<bool> {
        let (id, present) =
            self.with_group(group, |g| (g.id, g.metric_filters.contains_key(name)))?;
        if !present {
            return Ok(false);
        }
        self.mutate(MetaRecord::DeleteMetricFilter {
            group: id,
            name: name.to_owned(),
        })?;
        Ok(true)
    }

    fn metric_filters(&self, group: &str) -> Result<Vec<MetricFilter>> {
        self.with_group(group, |g| g.metric_filters.values().cloned().collect())
    }

    fn all_metric_filters(&self) -> Vec<(String, MetricFilter)> {
        let state = self.inner.shared.state.read().expect("state lock");
        state
            .groups
            .values()
            .flat_map(|g| {
                g.metric_filters
                    .values()
                    .map(|f| (g.name.clone(), f.clone()))
            })
            .collect()
    }

    fn metric_cursor(&self, group: &str) -> Result<Option<u64>> {
        let id = self.with_group(group, |g| g.id)?;
        Ok(self.inner.metrics.lock().expect("metrics lock").cursor(id))
    }

    fn commit_metrics(
        &self,
        group: &str,
        cursor: u64,
        points: Vec<MetricPoint>,
    ) -> Result<MetricCommit> {
        let id = self.with_group(group, |g| g.id)?;
        self.inner
            .metrics
            .lock()
            .expect("metrics lock")
            .commit(id, cursor, points, now_ms())
    }

    fn metric_minutes(
        &self,
        metric: &MetricId,
        start: Millis,
        end: Millis,
    ) -> Vec<(Millis, MinuteStats)> {
        self.inner
            .metrics
            .lock()
            .expect("metrics lock")
            .minutes(metric, start, end, now_ms())
    }

    fn metric_series(&self) -> Vec<(MetricId, Option<String>)> {
        self.inner.metrics.lock().expect("metrics lock").series()
    }

    fn committed_seq(&self) -> u64 {
        self.inner
            .shared
            .state
            .read()
            .expect("state lock")
            .published_seq
    }

    fn read_committed(&self, group: &str, after: u64, limit: PageLimit) -> Result<CommittedPage> {
        reads::read_committed(&self.inner.shared, group, after, limit)
    }

    fn backlog(&self, group: &str, after: u64) -> Result<Backlog> {
        reads::backlog(&self.inner.shared, group, after)
    }

    fn tier_snapshot(&self, group: &str) -> Result<TierSnapshot> {
        reads::tier_snapshot(&self.inner.shared, group)
    }

    fn counters(&self) -> StoreCounters {
        StoreCounters {
            ingested_events: self.inner.shared.ingested_events.load(Ordering::Relaxed),
            ingested_bytes: self.inner.shared.ingested_bytes.load(Ordering::Relaxed),
        }
    }

    fn on_commit(&self, listener: Arc<dyn Fn() + Send + Sync>) {
        self.inner
            .shared
            .commit_listeners
            .lock()
            .expect("listeners lock")
            .push(listener);
    }

    fn cursor(&self, group: &str, name: &str) -> Result<Option<u64>> {
        self.with_cursors(group, |file| Ok(file.get(name)))
    }

    fn set_cursor(&self, group: &str, name: &str, seq: Option<u64>) -> Result<()> {
        self.with_cursors(group, |file| file.set(name, seq))
    }

    fn shutdown(&self) {
        // Dropping the sender lets the writer drain what is queued and exit.
        self.inner.writer.lock().expect("writer lock").take();
        *self.inner.shared.stop.0.lock().expect("stop lock") = true;
        self.inner.shared.stop.1.notify_all();
        let threads = std::mem::take(&mut *self.inner.threads.lock().expect("threads lock"));
        for thread in threads {
            let _ = thread.join();
        }
    }
}
