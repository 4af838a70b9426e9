//! The metadata state of a [`FileStore`](super::FileStore): log groups with their
//! streams, filters, import checkpoints and segments, and the resource policies, as the
//! metadata journal (`meta.journal`, [`journal`](crate::journal)) builds them. One
//! function applies a journal record ([`apply`]); replaying the journal on open is
//! applying every record, and compacting it is writing the records that recreate the
//! state ([`snapshot_records`]).
//!
//! Each stream holds the index of its blocks in the row tier (segments); a second
//! storage tier keeps its catalog beside `segments` in [`Group`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::journal::MetaRecord;
use crate::model::{
    GroupInfo, ImportCheckpoint, MetricFilter, Millis, ResourcePolicy, StreamInfo,
    SubscriptionFilter,
};
use crate::segment::{BlockRef, Segment};

const MS_PER_DAY: i64 = 86_400_000;

/// Everything the metadata journal records, and the block index recovery adds to it.
#[derive(Default)]
pub(super) struct State {
    pub(super) groups: BTreeMap<String, Group>,
    pub(super) policies: BTreeMap<String, ResourcePolicy>,
    /// Group id to name, for the writer and the journal records, which name groups by id.
    pub(super) group_names: HashMap<u64, String>,
    pub(super) next_group_id: u64,
    pub(super) next_stream_id: u64,
    /// Every sequence number up to this one is committed and visible.
    pub(super) published_seq: u64,
    /// No sequence number below this one is handed out again (see `IdFloor`).
    pub(super) seq_floor: u64,
}

impl State {
    /// The group named `name`, or GroupNotFound.
    pub(super) fn group(&self, name: &str) -> Result<&Group> {
        self.groups
            .get(name)
            .ok_or_else(|| StoreError::GroupNotFound(name.to_owned()))
    }

    pub(super) fn group_mut(&mut self, id: u64) -> Option<&mut Group> {
        let name = self.group_names.get(&id)?;
        self.groups.get_mut(name)
    }

    pub(super) fn group_by_id(&self, id: u64) -> Option<&Group> {
        self.groups.get(self.group_names.get(&id)?)
    }
}

/// An import checkpoint and the store sequence of the commit that stored it.
#[derive(Clone)]
pub(super) struct StoredCheckpoint {
    pub(super) checkpoint: ImportCheckpoint,
    /// 0 when recorded by the journal alone (Firehose de-duplication, older stores).
    pub(super) seq: u64,
}

/// What an import checkpoint block holds.
#[derive(Serialize, Deserialize)]
pub(super) struct CheckpointMark {
    pub(super) source: String,
    pub(super) object: String,
    pub(super) checkpoint: ImportCheckpoint,
}

pub(super) struct Group {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) created: Millis,
    pub(super) retention_days: Option<u32>,
    pub(super) class: String,
    pub(super) kms_key_id: Option<String>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) deletion_protection: bool,
    pub(super) streams: BTreeMap<String, Stream>,
    pub(super) stream_names: HashMap<u64, String>,
    /// Import checkpoints by source, then object.
    pub(super) imports: BTreeMap<String, BTreeMap<String, StoredCheckpoint>>,
    /// Subscription filters by name.
    pub(super) subscriptions: BTreeMap<String, SubscriptionFilter>,
    /// Metric filters by name.
    pub(super) metric_filters: BTreeMap<String, MetricFilter>,
    pub(super) segments: BTreeMap<u64, Arc<Segment>>,
    pub(super) dir: PathBuf,
}

impl Group {
    /// Takes the checkpoint of an import checkpoint block committed at `seq`, unless
    /// the group holds a later one for the same object.
    pub(super) fn record_checkpoint(&mut self, mark: &CheckpointMark, seq: u64) {
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

    pub(super) fn cutoff(&self, now: Millis) -> Option<Millis> {
        self.retention_days
            .map(|days| now - i64::from(days) * MS_PER_DAY)
    }

    pub(super) fn info(&self) -> GroupInfo {
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

pub(super) struct Stream {
    pub(super) id: u64,
    pub(super) name: Arc<str>,
    pub(super) created: Millis,
    pub(super) blocks: Vec<BlockRef>,
    pub(super) first_ts: Option<Millis>,
    pub(super) last_ts: Option<Millis>,
    pub(super) last_ingest: Option<Millis>,
    pub(super) stored_bytes: u64,
}

impl Stream {
    pub(super) fn add_block(&mut self, block: BlockRef) {
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
    pub(super) fn blocks_after(&self, after: u64) -> &[BlockRef] {
        let first = self
            .blocks
            .partition_point(|b| b.header.first_seq + u64::from(b.header.count) <= after + 1);
        &self.blocks[first..]
    }

    pub(super) fn info(&self) -> StreamInfo {
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

/// Applies one metadata record to the in-memory state. Records are trusted: they were
/// validated before they were journaled.
pub(super) fn apply(state: &mut State, record: &MetaRecord, groups_dir: &Path) {
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

pub(super) fn replay_state(records: &[MetaRecord], groups_dir: &Path) -> State {
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
pub(super) fn snapshot_records(state: &State) -> Vec<MetaRecord> {
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
