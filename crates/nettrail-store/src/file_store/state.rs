//! The metadata state of a [`FileStore`](super::FileStore): log groups with their
//! streams, filters, import checkpoints and segments, and the resource policies, as the
//! metadata journal (`meta.journal`, [`journal`](crate::journal)) builds them. One
//! function applies a journal record ([`apply`]); replaying the journal on open is
//! applying every record, and compacting it is writing the records that recreate the
//! state ([`snapshot_records`]).
//!
//! Each stream holds the index of its blocks in the row tier (segments); the columnar
//! tier's catalog of parts is `parts` in [`Group`], beside `segments`. A stream's
//! statistics come from both: its blocks and what the parts say it contributed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::journal::{CompactedCheckpoint, MetaRecord};
use crate::lake::Lake;
use crate::model::{
    GroupInfo, ImportCheckpoint, MetricFilter, Millis, ResourcePolicy, StreamInfo,
    SubscriptionFilter,
};
use crate::parts::Part;
use crate::segment::{BlockRef, Segment};

const MS_PER_DAY: i64 = 86_400_000;

/// Where a store's files are: what applying a record needs to name them.
#[derive(Debug, Clone)]
pub(super) struct Places {
    /// `DATA_DIR/groups`, the segments' folders.
    pub(super) groups_dir: PathBuf,
    /// Where the parts are.
    pub(super) lake: Lake,
}

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
    /// No segment id below this one is handed out again.
    pub(super) segment_floor: u64,
    /// The next part id.
    pub(super) next_part_id: u64,
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

    /// After the journal was rewritten from the state: every checkpoint is in it.
    pub(super) fn mark_checkpoints_journaled(&mut self) {
        for group in self.groups.values_mut() {
            for objects in group.imports.values_mut() {
                objects.values_mut().for_each(|c| c.in_journal = true);
            }
        }
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
    /// Whether the journal holds it (else only a checkpoint block in a segment does,
    /// and a compaction retiring that segment must journal it).
    pub(super) in_journal: bool,
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
    /// The flow-log format its writers declared, if any.
    pub(super) flow_log_format: Option<String>,
    pub(super) streams: BTreeMap<String, Stream>,
    pub(super) stream_names: HashMap<u64, String>,
    /// Import checkpoints by source, then object.
    pub(super) imports: BTreeMap<String, BTreeMap<String, StoredCheckpoint>>,
    /// Subscription filters by name.
    pub(super) subscriptions: BTreeMap<String, SubscriptionFilter>,
    /// Metric filters by name.
    pub(super) metric_filters: BTreeMap<String, MetricFilter>,
    pub(super) segments: BTreeMap<u64, Arc<Segment>>,
    /// The columnar tier: parts by id.
    pub(super) parts: BTreeMap<u64, Arc<Part>>,
    /// Segments whose events parts now serve; recovery deletes their files if a crash
    /// left them behind.
    pub(super) retired_segments: BTreeSet<u64>,
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
                in_journal: false,
            },
        );
    }

    pub(super) fn cutoff(&self, now: Millis) -> Option<Millis> {
        self.retention_days
            .map(|days| now - i64::from(days) * MS_PER_DAY)
    }

    /// Recomputes every stream's statistics from its blocks and the parts, after
    /// blocks or parts came or went. The last event and ingestion times never go back.
    pub(super) fn restat_streams(&mut self) {
        for stream in self.streams.values_mut() {
            stream.restat(&self.parts);
        }
    }

    /// The streams of `part` that are still the streams that wrote its rows (a stream
    /// deleted and created again under its name is not) and that `selected` takes: by
    /// the name in the part, the live stream's name.
    pub(super) fn live_streams(
        &self,
        part: &Part,
        selected: impl Fn(&str) -> bool,
    ) -> HashMap<String, Arc<str>> {
        part.meta
            .streams
            .iter()
            .filter_map(|share| {
                let live = self.streams.get(&share.name)?;
                (live.id == share.id && selected(&share.name))
                    .then(|| (share.name.clone(), Arc::clone(&live.name)))
            })
            .collect()
    }

    /// The import checkpoints not yet in the journal, to be journaled by a compaction.
    pub(super) fn unjournaled_checkpoints(&self) -> Vec<CompactedCheckpoint> {
        let mut out = Vec::new();
        for (source, objects) in &self.imports {
            for (object, stored) in objects.iter().filter(|(_, c)| !c.in_journal) {
                out.push(CompactedCheckpoint {
                    source: source.clone(),
                    object: object.clone(),
                    checkpoint: stored.checkpoint.clone(),
                    seq: stored.seq,
                });
            }
        }
        out
    }

    pub(super) fn info(&self) -> GroupInfo {
        GroupInfo {
            name: self.name.clone(),
            creation_time: self.created,
            retention_days: self.retention_days,
            stored_bytes: self.streams.values().map(|s| s.stored_bytes).sum::<u64>()
                + self.parts.values().map(|p| p.meta.bytes).sum::<u64>(),
            class: self.class.clone(),
            kms_key_id: self.kms_key_id.clone(),
            tags: self.tags.clone(),
            deletion_protection: self.deletion_protection,
            flow_log_format: self.flow_log_format.clone(),
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
    /// Bytes of the stream's blocks.
    pub(super) stored_bytes: u64,
    /// The stream's share of the bytes of the parts.
    pub(super) part_bytes: u64,
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

    fn restat(&mut self, parts: &BTreeMap<u64, Arc<Part>>) {
        let mut first = self.blocks.iter().map(|b| b.header.min_ts).min();
        let mut last = self.last_ts;
        let mut ingest = self.last_ingest;
        let mut part_bytes = 0;
        for share in parts.values().filter_map(|p| p.meta.stream(self.id)) {
            first = Some(first.map_or(share.min_ts, |t| t.min(share.min_ts)));
            last = Some(last.map_or(share.max_ts, |t| t.max(share.max_ts)));
            ingest = Some(ingest.map_or(share.max_ingestion_time, |t| {
                t.max(share.max_ingestion_time)
            }));
            part_bytes += share.bytes;
        }
        for b in &self.blocks {
            last = Some(last.map_or(b.header.max_ts, |t| t.max(b.header.max_ts)));
            ingest = Some(ingest.map_or(b.header.ingestion_ms, |t| t.max(b.header.ingestion_ms)));
        }
        self.first_ts = first;
        self.last_ts = last;
        self.last_ingest = ingest;
        self.stored_bytes = self.blocks.iter().map(|b| b.header.block_len()).sum();
        self.part_bytes = part_bytes;
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
            stored_bytes: self.stored_bytes + self.part_bytes,
        }
    }
}

/// Applies one metadata record to the in-memory state. Records are trusted: they were
/// validated before they were journaled.
pub(super) fn apply(state: &mut State, record: &MetaRecord, places: &Places) {
    match record {
        MetaRecord::IdFloor {
            next_group_id,
            next_stream_id,
            next_seq,
            next_segment_id,
            next_part_id,
        } => {
            state.next_group_id = state.next_group_id.max(*next_group_id);
            state.next_stream_id = state.next_stream_id.max(*next_stream_id);
            state.seq_floor = state.seq_floor.max(*next_seq);
            state.segment_floor = state.segment_floor.max(*next_segment_id);
            state.next_part_id = state.next_part_id.max(*next_part_id);
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
                    flow_log_format: None,
                    streams: BTreeMap::new(),
                    stream_names: HashMap::new(),
                    imports: BTreeMap::new(),
                    subscriptions: BTreeMap::new(),
                    metric_filters: BTreeMap::new(),
                    segments: BTreeMap::new(),
                    parts: BTreeMap::new(),
                    retired_segments: BTreeSet::new(),
                    dir: places.groups_dir.join(id.to_string()),
                },
            );
        }
        MetaRecord::DeleteGroup { id } => {
            if let Some(name) = state.group_names.remove(id) {
                if let Some(group) = state.groups.remove(&name) {
                    group.parts.values().for_each(|p| p.retire());
                }
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
                        part_bytes: 0,
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
        MetaRecord::SetFlowLogFormat { group, format } => {
            if let Some(g) = state.group_mut(*group) {
                g.flow_log_format = format.clone();
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
                        in_journal: true,
                    },
                );
            }
        }
        MetaRecord::Compact {
            group,
            retired_segments,
            removed_parts,
            added_parts,
            checkpoints,
        } => {
            for meta in added_parts {
                state.next_part_id = state.next_part_id.max(meta.id + 1);
            }
            for &id in retired_segments {
                state.segment_floor = state.segment_floor.max(id + 1);
            }
            let Some(g) = state.group_mut(*group) else {
                return;
            };
            for id in removed_parts {
                if let Some(part) = g.parts.remove(id) {
                    part.retire();
                }
            }
            for meta in added_parts {
                g.parts
                    .insert(meta.id, Arc::new(Part::new(meta.clone(), &places.lake)));
            }
            let retired: Vec<Arc<Segment>> = retired_segments
                .iter()
                .filter_map(|id| g.segments.remove(id))
                .collect();
            if !retired.is_empty() {
                for stream in g.streams.values_mut() {
                    stream
                        .blocks
                        .retain(|b| !retired.iter().any(|s| Arc::ptr_eq(s, &b.segment)));
                }
            }
            g.retired_segments.extend(retired_segments.iter().copied());
            for c in checkpoints {
                g.imports.entry(c.source.clone()).or_default().insert(
                    c.object.clone(),
                    StoredCheckpoint {
                        checkpoint: c.checkpoint.clone(),
                        seq: c.seq,
                        in_journal: true,
                    },
                );
            }
            g.restat_streams();
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

pub(super) fn replay_state(records: &[MetaRecord], places: &Places) -> State {
    let mut state = State {
        next_group_id: 1,
        next_stream_id: 1,
        next_part_id: 1,
        ..State::default()
    };
    for record in records {
        apply(&mut state, record, places);
    }
    state
}

/// The records that recreate `state` from nothing.
pub(super) fn snapshot_records(state: &State) -> Vec<MetaRecord> {
    let mut records = vec![MetaRecord::IdFloor {
        next_group_id: state.next_group_id,
        next_stream_id: state.next_stream_id,
        next_seq: state.seq_floor,
        next_segment_id: state.segment_floor,
        next_part_id: state.next_part_id,
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
        if g.flow_log_format.is_some() {
            records.push(MetaRecord::SetFlowLogFormat {
                group: g.id,
                format: g.flow_log_format.clone(),
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
        if !g.parts.is_empty() {
            records.push(MetaRecord::Compact {
                group: g.id,
                retired_segments: Vec::new(),
                removed_parts: Vec::new(),
                added_parts: g.parts.values().map(|p| p.meta.clone()).collect(),
                checkpoints: Vec::new(),
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
