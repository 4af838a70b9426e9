//! [`FileStore`]: the embedded backend of [`LogStore`](crate::LogStore) on a local
//! directory.
//!
//! Layout of the data directory:
//! ```text
//! LOCK                      held (flock) while a store has the directory open
//! meta.journal              metadata journal (see journal.rs)
//! metrics.journal           metric filter aggregates and cursors (see metric_log.rs)
//! groups/<group id>/<segment id>.seg
//!                           segment: 16-byte header b"NTSEG\0\0\x01" + version u32 LE +
//!                           reserved u32, then blocks (see block.rs) back to back
//! ```
//! Segments are written by one writer thread only; a segment is sealed when it reaches
//! `segment_max_bytes` or `segment_max_age`, and on every restart (the writer always
//! starts new segments). Sealed segments are read-only until the retention sweeper
//! deletes them, which it does once every block in them has expired or belongs to a
//! deleted stream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::block::{self, BlockHeader, SealedPayload, HEADER_LEN};
use crate::cursors::CursorFile;
use crate::error::{Result, StoreError};
use crate::journal::{sync_dir, Journal, MetaRecord};
use crate::metric_log::MetricLog;
use crate::scan::{self, ScanBlock};
use crate::{
    AppendAck, Backlog, CommittedPage, EventKey, GroupInfo, ImportCheckpoint, LogStore,
    MetricCommit, MetricFilter, MetricId, MetricPoint, Millis, MinuteStats, NewEvent, NewGroup,
    PageLimit, ResourcePolicy, ScanPage, ScanRequest, ScannedEvent, StoreCounters, StreamInfo,
    StreamSelector, SubscriptionFilter,
};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"NTSEG\0\0\x01";
/// Length of the segment file header.
pub const SEGMENT_HEADER_LEN: u64 = 16;
const SEGMENT_FORMAT_VERSION: u32 = 1;
const MS_PER_DAY: i64 = 86_400_000;

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

/// The embedded durable store. Cheap to clone; clones share one store.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: FileStoreConfig,
    state: RwLock<State>,
    /// Serializes metadata mutations; taken before `state` when both are needed.
    journal: Mutex<Journal>,
    writer: Mutex<Option<SyncSender<WriterMsg>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: (Mutex<bool>, Condvar),
    next_segment_id: AtomicU64,
    /// Called after every commit (`LogStore::on_commit`).
    commit_listeners: Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
    /// Events and uncompressed bytes committed since open.
    ingested_events: AtomicU64,
    ingested_bytes: AtomicU64,
    /// Cursor files of the groups whose cursors were used, by group id.
    cursors: Mutex<HashMap<u64, CursorFile>>,
    /// Metric filter aggregates and cursors.
    metrics: Mutex<MetricLog>,
    _lock: File,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    policies: BTreeMap<String, ResourcePolicy>,
    /// Group id to name, for the writer and the journal records, which name groups by id.
    group_names: HashMap<u64, String>,
    next_group_id: u64,
    next_stream_id: u64,
    /// Every sequence number up to this one is committed and visible.
    published_seq: u64,
    /// No sequence number below this one is handed out again (see `IdFloor`).
    seq_floor: u64,
}

impl State {
    fn group_mut(&mut self, id: u64) -> Option<&mut Group> {
        let name = self.group_names.get(&id)?;
        self.groups.get_mut(name)
    }

    fn group_by_id(&self, id: u64) -> Option<&Group> {
        self.groups.get(self.group_names.get(&id)?)
    }
}

/// An import checkpoint and the store sequence of the commit that stored it.
#[derive(Clone)]
struct StoredCheckpoint {
    checkpoint: ImportCheckpoint,
    /// 0 when recorded by the journal alone (Firehose de-duplication, older stores).
    seq: u64,
}

/// What an import checkpoint block holds.
#[derive(Serialize, Deserialize)]
struct CheckpointMark {
    source: String,
    object: String,
    checkpoint: ImportCheckpoint,
}

struct Group {
    id: u64,
    name: String,
    created: Millis,
    retention_days: Option<u32>,
    class: String,
    kms_key_id: Option<String>,
    tags: BTreeMap<String, String>,
    deletion_protection: bool,
    streams: BTreeMap<String, Stream>,
    stream_names: HashMap<u64, String>,
    /// Import checkpoints by source, then object.
    imports: BTreeMap<String, BTreeMap<String, StoredCheckpoint>>,
    /// Subscription filters by name.
    subscriptions: BTreeMap<String, SubscriptionFilter>,
    /// Metric filters by name.
    metric_filters: BTreeMap<String, MetricFilter>,
    segments: BTreeMap<u64, Arc<Segment>>,
    dir: PathBuf,
}

impl Group {
    /// Takes the checkpoint of an import checkpoint block committed at `seq`, unless
    /// the group holds a later one for the same object.
    fn record_checkpoint(&mut self, mark: &CheckpointMark, seq: u64) {
        let objects = self.imports.entry(mark.source.clone()).or_default();
        if objects.get(&mark.object).is_some_and(|c| c.seq > seq) {
            return;
        }
        objects.insert(
            mark.object.clone(),
            StoredCheckpoint {
                checkpoint: mark.checkpoint.clone(),
                seq,
            },
        );
    }

    fn cutoff(&self, now: Millis) -> Option<Millis> {
        self.retention_days
            .map(|days| now - i64::from(days) * MS_PER_DAY)
    }

    fn info(&self) -> GroupInfo {
        GroupInfo {
            name: self.name.clone(),
            creation_time: self.created,
            retention_days: self.retention_days,
            stored_bytes: self.streams.values().map(|s| s.stored_bytes).sum(),
            class: self.class.clone(),
            kms_key_id: self.kms_key_id.clone(),
            tags: self.tags.clone(),
            deletion_protection: self.deletion_protection,
        }
    }
}

struct Stream {
    id: u64,
    name: Arc<str>,
    created: Millis,
    blocks: Vec<BlockRef>,
    first_ts: Option<Millis>,
    last_ts: Option<Millis>,
    last_ingest: Option<Millis>,
    stored_bytes: u64,
}

impl Stream {
    fn add_block(&mut self, block: BlockRef) {
        let h = &block.header;
        self.first_ts = Some(self.first_ts.map_or(h.min_ts, |t| t.min(h.min_ts)));
        self.last_ts = Some(self.last_ts.map_or(h.max_ts, |t| t.max(h.max_ts)));
        self.last_ingest = Some(
            self.last_ingest
                .map_or(h.ingestion_ms, |t| t.max(h.ingestion_ms)),
        );
        self.stored_bytes += h.block_len();
        self.blocks.push(block);
    }

    /// The blocks holding events with sequence numbers above `after` (a stream's
    /// blocks are in commit order).
    fn blocks_after(&self, after: u64) -> &[BlockRef] {
        let first = self
            .blocks
            .partition_point(|b| b.header.first_seq + u64::from(b.header.count) <= after + 1);
        &self.blocks[first..]
    }

    fn info(&self) -> StreamInfo {
        StreamInfo {
            name: self.name.to_string(),
            creation_time: self.created,
            first_event_timestamp: self.first_ts,
            last_event_timestamp: self.last_ts,
            last_ingestion_time: self.last_ingest,
            stored_bytes: self.stored_bytes,
        }
    }
}

/// Where a block lives.
#[derive(Clone)]
pub(crate) struct BlockRef {
    pub(crate) segment: Arc<Segment>,
    pub(crate) offset: u64,
    pub(crate) header: BlockHeader,
}

/// An open segment file. Readers keep it alive through their `Arc` even after the
/// sweeper unlinks it.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    sealed: AtomicBool,
}

enum WriterMsg {
    /// Blocks of one group, committed together.
    Write(Vec<WriteJob>),
    DropGroup {
        id: u64,
        dir: PathBuf,
    },
}

struct WriteJob {
    group_id: u64,
    stream_id: u64,
    payload: SealedPayload,
    /// Set for an import checkpoint block: published into the group's checkpoints when
    /// the commit is durable.
    checkpoint: Option<CheckpointMark>,
    /// Answered with (`index`, the outcome).
    reply: SyncSender<(usize, Result<AppendAck>)>,
    index: usize,
}

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

        let journal_path = dir.join("meta.journal");
        let mut state = replay_state(&Journal::replay(&journal_path)?, &groups_dir);

        let started = Instant::now();
        let recovered = recover_segments(&mut state, &groups_dir)?;
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
        // Rewritten after recovery, so the snapshot keeps what recovery learned
        // (checkpoints from checkpoint blocks, the sequence floor).
        let journal = Journal::rewrite(&journal_path, &snapshot_records(&state))?;
        tracing::info!(
            dir = %dir.display(),
            groups = state.groups.len(),
            blocks = recovered.blocks,
            bytes = recovered.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );

        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let inner = Arc::new(Inner {
            config,
            state: RwLock::new(state),
            journal: Mutex::new(journal),
            writer: Mutex::new(Some(tx)),
            threads: Mutex::new(Vec::new()),
            stop: (Mutex::new(false), Condvar::new()),
            next_segment_id: AtomicU64::new(recovered.next_segment_id),
            commit_listeners: Mutex::new(Vec::new()),
            ingested_events: AtomicU64::new(0),
            ingested_bytes: AtomicU64::new(0),
            cursors: Mutex::new(cursor_files),
            metrics: Mutex::new(metrics),
            _lock: lock,
        });
        let writer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("nettrail-writer".into())
                .spawn(move || Writer::new(inner, next_seq).run(rx))
                .map_err(|e| StoreError::io("starting writer thread", &dir, e))?
        };
        let sweeper = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("nettrail-sweeper".into())
                .spawn(move || run_sweeper(&inner))
                .map_err(|e| StoreError::io("starting sweeper thread", &dir, e))?
        };
        inner
            .threads
            .lock()
            .expect("threads lock")
            .extend([writer, sweeper]);
        Ok(FileStore { inner })
    }

    /// Runs one retention sweep now (the sweeper also runs on its own every
    /// `sweep_interval`). Returns the number of segment files deleted.
    pub fn sweep(&self) -> Result<usize> {
        sweep(&self.inner, now_ms())
    }

    fn send(&self, msg: WriterMsg) -> Result<()> {
        let writer = self.inner.writer.lock().expect("writer lock").clone();
        writer
            .ok_or(StoreError::Closed)?
            .send(msg)
            .map_err(|_| StoreError::Closed)
    }

    fn with_group<T>(&self, name: &str, f: impl FnOnce(&Group) -> T) -> Result<T> {
        let state = self.inner.state.read().expect("state lock");
        let group = state
            .groups
            .get(name)
            .ok_or_else(|| StoreError::GroupNotFound(name.to_owned()))?;
        Ok(f(group))
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
                self.inner.config.zstd_level,
            )
            .map_err(|e| StoreError::io("compressing block for", &self.inner.config.dir, e))?;
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
                    StoreError::io("encoding checkpoint for", &self.inner.config.dir, e)
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
        let mut journal = self.inner.journal.lock().expect("journal lock");
        journal.append(&record)?;
        let mut state = self.inner.state.write().expect("state lock");
        apply(&mut state, &record, &self.inner.config.dir.join("groups"));
        Ok(())
    }
}

impl LogStore for FileStore {
    fn create_group(&self, group: NewGroup, now: Millis) -> Result<()> {
        let mut journal = self.inner.journal.lock().expect("journal lock");
        let id = {
            let state = self.inner.state.read().expect("state lock");
            if state.groups.contains_key(&group.name) {
                return Err(StoreError::GroupExists(group.name));
            }
            state.next_group_id
        };
        let groups_dir = self.inner.config.dir.join("groups");
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
            &mut self.inner.state.write().expect("state lock"),
            &record,
            &groups_dir,
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
        self.inner.state.read().expect("state lock").groups.len()
    }

    fn visit_groups(&self, after: Option<&str>, visit: &mut dyn FnMut(GroupInfo) -> bool) {
        let state = self.inner.state.read().expect("state lock");
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

    fn create_stream(&self, group: &str, stream: &str, now: Millis) -> Result<()> {
        let mut journal = self.inner.journal.lock().expect("journal lock");
        let record = {
            let state = self.inner.state.read().expect("state lock");
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
            &mut self.inner.state.write().expect("state lock"),
            &record,
            &self.inner.config.dir.join("groups"),
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

    fn scan(
        &self,
        request: &ScanRequest,
        filter: &dyn Fn(&str) -> bool,
        limit: PageLimit,
    ) -> Result<ScanPage> {
        let (blocks, cutoff) = self.with_group(&request.group, |g| {
            let mut blocks = Vec::new();
            let selected = |name: &str| match &request.streams {
                StreamSelector::All => true,
                StreamSelector::Names(names) => names.iter().any(|n| n == name),
                StreamSelector::Prefix(prefix) => name.starts_with(prefix.as_str()),
            };
            for stream in g.streams.values().filter(|s| selected(&s.name)) {
                blocks.extend(stream.blocks.iter().map(|b| ScanBlock {
                    stream: Arc::clone(&stream.name),
                    block: b.clone(),
                }));
            }
            (blocks, g.cutoff(now_ms()))
        })?;
        scan::scan_page(blocks, request, cutoff, filter, &limit)
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
        let state = self.inner.state.read().expect("state lock");
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
        let state = self.inner.state.read().expect("state lock");
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
        self.inner.state.read().expect("state lock").published_seq
    }

    fn read_committed(&self, group: &str, after: u64, limit: PageLimit) -> Result<CommittedPage> {
        // Blocks and the published sequence under one lock: a commit published in between
        // would otherwise be skipped by `read_to`.
        let (mut blocks, cutoff, published) = {
            let state = self.inner.state.read().expect("state lock");
            let g = state
                .groups
                .get(group)
                .ok_or_else(|| StoreError::GroupNotFound(group.to_owned()))?;
            let mut blocks = Vec::new();
            for stream in g.streams.values() {
                blocks.extend(stream.blocks_after(after).iter().map(|b| ScanBlock {
                    stream: Arc::clone(&stream.name),
                    block: b.clone(),
                }));
            }
            (blocks, g.cutoff(now_ms()), state.published_seq)
        };
        blocks.sort_by_key(|b| b.block.header.first_seq);
        let mut events = Vec::new();
        let mut bytes = 0usize;
        for candidate in blocks {
            let header = candidate.block.header;
            let raw = read_block(&candidate.block)?;
            let index = block::index_events(&header, &raw).map_err(|kind| StoreError::Corrupt {
                path: candidate.block.segment.path.clone(),
                offset: candidate.block.offset,
                kind,
            })?;
            for (i, event) in index.iter().enumerate() {
                let seq = header.first_seq + i as u64;
                if seq <= after || cutoff.is_some_and(|c| event.timestamp < c) {
                    continue;
                }
                let full = events.len() >= limit.max_events || bytes >= limit.max_bytes;
                if full && !events.is_empty() {
                    // Everything before this event has been read.
                    return Ok(CommittedPage {
                        events,
                        read_to: seq - 1,
                    });
                }
                let message = std::str::from_utf8(&raw[event.start..event.end])
                    .expect("validated by index_events")
                    .to_owned();
                bytes += message.len() + limit.overhead_per_event;
                events.push(ScannedEvent {
                    stream: Arc::clone(&candidate.stream),
                    key: EventKey {
                        timestamp: event.timestamp,
                        seq,
                    },
                    ingestion_time: header.ingestion_ms,
                    message,
                });
            }
        }
        Ok(CommittedPage {
            events,
            read_to: published.max(after),
        })
    }

    fn backlog(&self, group: &str, after: u64) -> Result<Backlog> {
        self.with_group(group, |g| {
            let cutoff = g.cutoff(now_ms());
            let mut backlog = Backlog::default();
            for stream in g.streams.values() {
                for block in stream.blocks_after(after) {
                    let h = &block.header;
                    if cutoff.is_some_and(|c| h.max_ts < c) {
                        continue; // wholly expired
                    }
                    let skipped = (after + 1).saturating_sub(h.first_seq);
                    backlog.events += u64::from(h.count).saturating_sub(skipped);
                    backlog.oldest_ingestion_time = Some(
                        backlog
                            .oldest_ingestion_time
                            .map_or(h.ingestion_ms, |t| t.min(h.ingestion_ms)),
                    );
                }
            }
            backlog
        })
    }

    fn counters(&self) -> StoreCounters {
        StoreCounters {
            ingested_events: self.inner.ingested_events.load(Ordering::Relaxed),
            ingested_bytes: self.inner.ingested_bytes.load(Ordering::Relaxed),
        }
    }

    fn on_commit(&self, listener: Arc<dyn Fn() + Send + Sync>) {
        self.inner
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
        *self.inner.stop.0.lock().expect("stop lock") = true;
        self.inner.stop.1.notify_all();
        let threads = std::mem::take(&mut *self.inner.threads.lock().expect("threads lock"));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Applies one metadata record to the in-memory state. Records are trusted: they were
/// validated before they were journaled.
fn apply(state: &mut State, record: &MetaRecord, groups_dir: &Path) {
    match record {
        MetaRecord::IdFloor {
            next_group_id,
            next_stream_id,
            next_seq,
        } => {
            state.next_group_id = state.next_group_id.max(*next_group_id);
            state.next_stream_id = state.next_stream_id.max(*next_stream_id);
            state.seq_floor = state.seq_floor.max(*next_seq);
        }
        MetaRecord::CreateGroup {
            id,
            name,
            created,
            class,
            kms_key_id,
            tags,
            deletion_protection,
        } => {
            state.next_group_id = state.next_group_id.max(id + 1);
            state.group_names.insert(*id, name.clone());
            state.groups.insert(
                name.clone(),
                Group {
                    id: *id,
                    name: name.clone(),
                    created: *created,
                    retention_days: None,
                    class: class.clone(),
                    kms_key_id: kms_key_id.clone(),
                    tags: tags.clone(),
                    deletion_protection: *deletion_protection,
                    streams: BTreeMap::new(),
                    stream_names: HashMap::new(),
                    imports: BTreeMap::new(),
                    subscriptions: BTreeMap::new(),
                    metric_filters: BTreeMap::new(),
                    segments: BTreeMap::new(),
                    dir: groups_dir.join(id.to_string()),
                },
            );
        }
        MetaRecord::DeleteGroup { id } => {
            if let Some(name) = state.group_names.remove(id) {
                state.groups.remove(&name);
            }
        }
        MetaRecord::CreateStream {
            group,
            id,
            name,
            created,
        } => {
            state.next_stream_id = state.next_stream_id.max(id + 1);
            if let Some(g) = state.group_mut(*group) {
                g.stream_names.insert(*id, name.clone());
                g.streams.insert(
                    name.clone(),
                    Stream {
                        id: *id,
                        name: Arc::from(name.as_str()),
                        created: *created,
                        blocks: Vec::new(),
                        first_ts: None,
                        last_ts: None,
                        last_ingest: None,
                        stored_bytes: 0,
                    },
                );
            }
        }
        MetaRecord::DeleteStream { group, id } => {
            if let Some(g) = state.group_mut(*group) {
                if let Some(name) = g.stream_names.remove(id) {
                    g.streams.remove(&name);
                }
            }
        }
        MetaRecord::SetRetention { group, days } => {
            if let Some(g) = state.group_mut(*group) {
                g.retention_days = *days;
            }
        }
        MetaRecord::SetTags { group, tags } => {
            if let Some(g) = state.group_mut(*group) {
                g.tags = tags.clone();
            }
        }
        MetaRecord::PutSubscriptionFilter { group, filter } => {
            if let Some(g) = state.group_mut(*group) {
                g.subscriptions
                    .insert(filter.filter_name.clone(), filter.clone());
            }
        }
        MetaRecord::DeleteSubscriptionFilter { group, name } => {
            if let Some(g) = state.group_mut(*group) {
                g.subscriptions.remove(name);
            }
        }
        MetaRecord::PutMetricFilter { group, filter } => {
            if let Some(g) = state.group_mut(*group) {
                g.metric_filters
                    .insert(filter.filter_name.clone(), filter.clone());
            }
        }
        MetaRecord::DeleteMetricFilter { group, name } => {
            if let Some(g) = state.group_mut(*group) {
                g.metric_filters.remove(name);
            }
        }
        MetaRecord::PutPolicy { policy } => {
            state.policies.insert(policy.key(), policy.clone());
        }
        MetaRecord::DeletePolicy { key } => {
            state.policies.remove(key);
        }
        MetaRecord::SetImportCheckpoint {
            group,
            source,
            object,
            checkpoint,
            seq,
        } => {
            if let Some(g) = state.group_mut(*group) {
                g.imports.entry(source.clone()).or_default().insert(
                    object.clone(),
                    StoredCheckpoint {
                        checkpoint: checkpoint.clone(),
                        seq: *seq,
                    },
                );
            }
        }
        MetaRecord::RemoveImportCheckpoint {
            group,
            source,
            object,
        } => {
            if let Some(g) = state.group_mut(*group) {
                if let Some(objects) = g.imports.get_mut(source) {
                    objects.remove(object);
                    if objects.is_empty() {
                        g.imports.remove(source);
                    }
                }
            }
        }
    }
}

fn replay_state(records: &[MetaRecord], groups_dir: &Path) -> State {
    let mut state = State {
        next_group_id: 1,
        next_stream_id: 1,
        ..State::default()
    };
    for record in records {
        apply(&mut state, record, groups_dir);
    }
    state
}

/// The records that recreate `state` from nothing.
fn snapshot_records(state: &State) -> Vec<MetaRecord> {
    let mut records = vec![MetaRecord::IdFloor {
        next_group_id: state.next_group_id,
        next_stream_id: state.next_stream_id,
        next_seq: state.seq_floor,
    }];
    for g in state.groups.values() {
        records.push(MetaRecord::CreateGroup {
            id: g.id,
            name: g.name.clone(),
            created: g.created,
            class: g.class.clone(),
            kms_key_id: g.kms_key_id.clone(),
            tags: g.tags.clone(),
            deletion_protection: g.deletion_protection,
        });
        if g.retention_days.is_some() {
            records.push(MetaRecord::SetRetention {
                group: g.id,
                days: g.retention_days,
            });
        }
        for s in g.streams.values() {
            records.push(MetaRecord::CreateStream {
                group: g.id,
                id: s.id,
                name: s.name.to_string(),
                created: s.created,
            });
        }
        for filter in g.subscriptions.values() {
            records.push(MetaRecord::PutSubscriptionFilter {
                group: g.id,
                filter: filter.clone(),
            });
        }
        for filter in g.metric_filters.values() {
            records.push(MetaRecord::PutMetricFilter {
                group: g.id,
                filter: filter.clone(),
            });
        }
        for (source, objects) in &g.imports {
            for (object, stored) in objects {
                records.push(MetaRecord::SetImportCheckpoint {
                    group: g.id,
                    source: source.clone(),
                    object: object.clone(),
                    checkpoint: stored.checkpoint.clone(),
                    seq: stored.seq,
                });
            }
        }
    }
    records.extend(
        state
            .policies
            .values()
            .map(|p| MetaRecord::PutPolicy { policy: p.clone() }),
    );
    records
}

/// The highest sequence number a cursor or an import checkpoint of any group refers to.
/// Also returns every group's cursor file, read once here and kept as the store's cache.
fn highest_recorded_seq(state: &State) -> Result<(u64, HashMap<u64, CursorFile>)> {
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

struct Recovered {
    blocks: u64,
    bytes: u64,
    next_seq: u64,
    next_segment_id: u64,
}

/// Reads every segment of every group, verifying every block, and fills the index.
fn recover_segments(state: &mut State, groups_dir: &Path) -> Result<Recovered> {
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

/// One group's share of a commit: the encoded bytes, and each job with the offset and
/// header of its block.
type GroupBatch = (Vec<u8>, Vec<(WriteJob, u64, BlockHeader)>);

/// The single writer: appends blocks to each group's active segment and acknowledges
/// them after one fsync per touched segment.
struct Writer {
    inner: Arc<Inner>,
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
    fn new(inner: Arc<Inner>, next_seq: u64) -> Writer {
        Writer {
            inner,
            next_seq,
            active: HashMap::new(),
        }
    }

    fn run(mut self, rx: Receiver<WriterMsg>) {
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
                }
                if bytes < self.inner.config.max_commit_bytes {
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
        let config = &self.inner.config;
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
            let mut state = self.inner.state.write().expect("state lock");
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
                    self.inner
                        .ingested_events
                        .fetch_add(u64::from(header.count), Ordering::Relaxed);
                    if header.count > 0 {
                        self.inner
                            .ingested_bytes
                            .fetch_add(u64::from(header.raw_len), Ordering::Relaxed);
                    }
                    acks.push((job.reply, job.index, header));
                }
            }
        }
        // Before the acknowledgements: once a write returns, its listeners know.
        let listeners = self
            .inner
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
        let config = &self.inner.config;
        if self
            .active
            .get(&group_id)
            .is_some_and(|a| a.seal_if_due(group_id, config))
        {
            self.active.remove(&group_id);
        }
        if !self.active.contains_key(&group_id) {
            let dir = {
                let state = self.inner.state.read().expect("state lock");
                state
                    .group_by_id(group_id)
                    .map(|g| g.dir.clone())
                    .ok_or_else(|| StoreError::GroupNotFound(format!("#{group_id}")))?
            };
            // Recreated if missing (a group with no events has an empty directory, which
            // copies and archives of a data directory tend to drop).
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError::io("creating group directory", &dir, e))?;
            let id = self.inner.next_segment_id.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{id:012}.seg"));
            let mut file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| StoreError::io("creating segment", &path, e))?;
            let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
            header.extend_from_slice(&SEGMENT_MAGIC);
            header.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
            header.extend_from_slice(&0u32.to_le_bytes());
            file.write_all(&header)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io("writing segment header", &path, e))?;
            sync_dir(&dir)?;
            let reader =
                File::open(&path).map_err(|e| StoreError::io("opening segment", &path, e))?;
            let segment = Arc::new(Segment {
                path,
                file: reader,
                sealed: AtomicBool::new(false),
            });
            {
                let mut state = self.inner.state.write().expect("state lock");
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

fn run_sweeper(inner: &Arc<Inner>) {
    let (lock, wake) = &inner.stop;
    loop {
        let stopped = lock.lock().expect("stop lock");
        // Checks the flag before sleeping, so a shutdown that came first is not missed.
        let (stopped, _) = wake
            .wait_timeout_while(stopped, inner.config.sweep_interval, |stopped| !*stopped)
            .expect("stop lock");
        if *stopped {
            return;
        }
        drop(stopped);
        if let Err(e) = sweep(inner, now_ms()) {
            tracing::error!(error = %e, "retention sweep failed");
        }
    }
}

/// Drops expired blocks from the index and deletes sealed segments that hold no live
/// block (every block expired or of a deleted stream). Blocks that still hold an
/// unexpired event are never touched.
fn sweep(inner: &Inner, now: Millis) -> Result<usize> {
    let mut doomed = Vec::new();
    {
        let mut state = inner.state.write().expect("state lock");
        for group in state.groups.values_mut() {
            let cutoff = group.cutoff(now);
            let mut live_segments: HashSet<*const Segment> = HashSet::new();
            for stream in group.streams.values_mut() {
                if let Some(cutoff) = cutoff {
                    let before = stream.blocks.len();
                    stream.blocks.retain(|b| b.header.max_ts >= cutoff);
                    if stream.blocks.len() != before {
                        stream.stored_bytes =
                            stream.blocks.iter().map(|b| b.header.block_len()).sum();
                        stream.first_ts = stream.blocks.iter().map(|b| b.header.min_ts).min();
                    }
                }
                live_segments.extend(stream.blocks.iter().map(|b| Arc::as_ptr(&b.segment)));
            }
            group.segments.retain(|_, segment| {
                let dead = segment.sealed.load(Ordering::Acquire)
                    && !live_segments.contains(&Arc::as_ptr(segment));
                if dead {
                    doomed.push(segment.path.clone());
                }
                !dead
            });
        }
    }
    for path in &doomed {
        match std::fs::remove_file(path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "reclaimed segment with no live events")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("removing expired segment", path, e)),
        }
    }
    Ok(doomed.len())
}

/// Reads one block from its segment, verifying it.
pub(crate) fn read_block(block: &BlockRef) -> Result<Vec<u8>> {
    let len = block.header.block_len() as usize;
    let mut bytes = vec![0u8; len];
    let corrupt = |kind| StoreError::Corrupt {
        path: block.segment.path.clone(),
        offset: block.offset,
        kind,
    };
    block
        .segment
        .file
        .read_exact_at(&mut bytes, block.offset)
        .map_err(|e| StoreError::io("reading segment", &block.segment.path, e))?;
    let header = BlockHeader::decode(&bytes).map_err(corrupt)?;
    if header != block.header {
        return Err(corrupt(crate::CorruptKind::HeaderFields));
    }
    block::open_payload(&header, &bytes[HEADER_LEN..]).map_err(corrupt)
}
