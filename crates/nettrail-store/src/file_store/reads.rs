//! The read paths of a [`FileStore`](super::FileStore), over the block index and the
//! block access of [`segment`](crate::segment):
//! - [`scan`]: a page of events in key order (GetLogEvents, FilterLogEvents, live tail),
//!   from the blocks of the selected streams, through [`scan_page`];
//! - [`read_committed`]: events in commit order after a sequence number (subscription
//!   and metric filter engines);
//! - [`backlog`]: how much is left to read after a sequence number.
//!
//! Every tier of the store contributes the sources of a read here: the row tier's
//! blocks and the columnar tier's parts, read together.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::block;
use crate::error::{Result, StoreError};
use crate::model::{
    Backlog, CommittedPage, EventKey, Millis, PageLimit, ScanHint, ScanPage, ScanRequest,
    ScannedEvent, StreamSelector,
};
use crate::parts::Part;
use crate::scan::{scan_page, ScanBlock, ScanPart, ScanSource};
use crate::segment::read_block;
use crate::snapshot::{partition_values, LakeStore, PartFile, TierSnapshot};

use super::shared::{now_ms, Shared};

/// A page of the events of `request`'s group and streams that `filter` admits.
pub(super) fn scan(
    shared: &Shared,
    request: &ScanRequest,
    filter: &dyn Fn(&str) -> bool,
    hint: &ScanHint<'_>,
    limit: PageLimit,
) -> Result<ScanPage> {
    let (sources, cutoff) = {
        let state = shared.state.read().expect("state lock");
        let g = state.group(&request.group)?;
        let mut sources = Vec::new();
        let selected = |name: &str| match &request.streams {
            StreamSelector::All => true,
            StreamSelector::Names(names) => names.iter().any(|n| n == name),
            StreamSelector::Prefix(prefix) => name.starts_with(prefix.as_str()),
        };
        for stream in g.streams.values().filter(|s| selected(&s.name)) {
            sources.extend(stream.blocks.iter().map(|b| {
                ScanSource::Block(ScanBlock {
                    stream: Arc::clone(&stream.name),
                    block: b.clone(),
                })
            }));
        }
        for part in g.parts.values() {
            let streams = g.live_streams(part, selected);
            if !streams.is_empty() {
                sources.push(ScanSource::Part(ScanPart {
                    part: Arc::clone(part),
                    streams,
                }));
            }
        }
        (sources, g.cutoff(now_ms()))
    };
    scan_page(sources, request, cutoff, filter, hint, &limit)
}

/// The events of `group` committed after sequence `after`, in commit order, up to
/// `limit`; `read_to` says how far the page reaches.
///
/// Blocks hold consecutive sequence numbers, so without parts the page streams blocks
/// in sequence order. A part holds the events of many commits in key order; its events
/// after `after` go through a page kept in sequence order, and a source whose lowest
/// sequence is past a full page is not read.
pub(super) fn read_committed(
    shared: &Shared,
    group: &str,
    after: u64,
    limit: PageLimit,
) -> Result<CommittedPage> {
    // Sources and the published sequence under one lock: a commit published in
    // between would otherwise be skipped by `read_to`.
    let (mut blocks, mut parts, cutoff, published) = {
        let state = shared.state.read().expect("state lock");
        let g = state.group(group)?;
        let mut blocks = Vec::new();
        for stream in g.streams.values() {
            blocks.extend(stream.blocks_after(after).iter().map(|b| ScanBlock {
                stream: Arc::clone(&stream.name),
                block: b.clone(),
            }));
        }
        let parts: Vec<ScanPart> = g
            .parts
            .values()
            .filter(|p| p.meta.max_seq > after)
            .map(|p| ScanPart {
                part: Arc::clone(p),
                streams: g.live_streams(p, |_| true),
            })
            .collect();
        (blocks, parts, g.cutoff(now_ms()), state.published_seq)
    };
    blocks.sort_by_key(|b| b.block.header.first_seq);
    parts.sort_by_key(|p| p.part.meta.min_seq);
    let mut page = SeqPage::new(limit);
    for candidate in parts {
        if page.is_full_before(candidate.part.meta.min_seq) {
            break;
        }
        read_part_after(&candidate, after, cutoff, &mut page)?;
    }
    for candidate in blocks {
        let header = candidate.block.header;
        if page.is_full_before(header.first_seq) {
            break;
        }
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
            if page.is_full_before(seq) {
                break;
            }
            let message = std::str::from_utf8(&raw[event.start..event.end])
                .expect("validated by index_events")
                .to_owned();
            page.push(ScannedEvent {
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
    Ok(page.finish(published.max(after)))
}

/// Puts the events of a part after `after` on a commit-order page.
fn read_part_after(
    candidate: &ScanPart,
    after: u64,
    cutoff: Option<Millis>,
    page: &mut SeqPage,
) -> Result<()> {
    let part = &candidate.part;
    let reader = part.open()?;
    let bad = |e| part.read_error(e);
    for row_group in 0..reader.row_groups() {
        let (lo, hi) = reader
            .seq_range(row_group)
            .unwrap_or((part.meta.min_seq, part.meta.max_seq));
        if hi <= after || page.is_full_before(lo) {
            continue;
        }
        for batch in reader.read_row_group(row_group, false).map_err(bad)? {
            let batch = batch.map_err(bad)?;
            for i in 0..batch.len() {
                let seq = batch.seq(i);
                if seq <= after
                    || cutoff.is_some_and(|c| batch.timestamp(i) < c)
                    || page.is_full_before(seq)
                {
                    continue;
                }
                let Some(stream) = candidate.streams.get(batch.stream(i)) else {
                    continue;
                };
                page.push(ScannedEvent {
                    stream: Arc::clone(stream),
                    key: EventKey {
                        timestamp: batch.timestamp(i),
                        seq,
                    },
                    ingestion_time: batch.ingestion_time(i),
                    message: batch.message(i).expect("read with every column"),
                });
            }
        }
    }
    Ok(())
}

/// A page of events in sequence order that keeps only the lowest sequences that fit
/// within its limit, whatever order they arrive in.
struct SeqPage {
    limit: PageLimit,
    events: BTreeMap<u64, ScannedEvent>,
    cost: usize,
    /// An event was left out for the limit.
    cut: bool,
}

impl SeqPage {
    fn new(limit: PageLimit) -> SeqPage {
        SeqPage {
            limit,
            events: BTreeMap::new(),
            cost: 0,
            cut: false,
        }
    }

    fn cost_of(&self, event: &ScannedEvent) -> usize {
        event.message.len() + self.limit.overhead_per_event
    }

    fn is_full(&self) -> bool {
        self.events.len() >= self.limit.max_events.max(1) || self.cost >= self.limit.max_bytes
    }

    /// Whether the page is full of events below `seq` (so `seq` cannot get on it).
    fn is_full_before(&self, seq: u64) -> bool {
        self.is_full()
            && self
                .events
                .last_key_value()
                .is_some_and(|(&last, _)| seq > last)
    }

    fn push(&mut self, event: ScannedEvent) {
        self.cost += self.cost_of(&event);
        self.events.insert(event.key.seq, event);
        // Drops the highest sequences while the page stays full without them.
        while let Some((_, last)) = self.events.last_key_value() {
            let last_cost = self.cost_of(last);
            let over_count = self.events.len() > self.limit.max_events.max(1);
            let over_bytes = self.events.len() > 1 && self.cost - last_cost >= self.limit.max_bytes;
            if !over_count && !over_bytes {
                break;
            }
            self.events.pop_last();
            self.cost -= last_cost;
            self.cut = true;
        }
    }

    /// The page; when nothing was left out it reaches `published`.
    fn finish(self, published: u64) -> CommittedPage {
        let full = self.cut || self.is_full();
        let events: Vec<ScannedEvent> = self.events.into_values().collect();
        let read_to = match events.last() {
            Some(last) if full => last.key.seq,
            _ => published,
        };
        CommittedPage { events, read_to }
    }
}

/// The events of `group` after sequence `after` not yet expired, and the ingestion time
/// of the oldest block holding them.
pub(super) fn backlog(shared: &Shared, group: &str, after: u64) -> Result<Backlog> {
    let (mut backlog, parts, cutoff) = {
        let state = shared.state.read().expect("state lock");
        let g = state.group(group)?;
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
        let parts: Vec<ScanPart> = g
            .parts
            .values()
            .filter(|p| p.meta.max_seq > after && cutoff.is_none_or(|c| p.meta.max_ts >= c))
            .map(|p| ScanPart {
                part: Arc::clone(p),
                streams: g.live_streams(p, |_| true),
            })
            .collect();
        (backlog, parts, cutoff)
    };
    for candidate in parts {
        let meta = &candidate.part.meta;
        let live = meta
            .streams
            .iter()
            .filter(|s| candidate.streams.contains_key(&s.name));
        for share in live.clone() {
            backlog.oldest_ingestion_time = Some(
                backlog
                    .oldest_ingestion_time
                    .map_or(share.min_ingestion_time, |t| {
                        t.min(share.min_ingestion_time)
                    }),
            );
        }
        let wholly_after = meta.min_seq > after && cutoff.is_none_or(|c| meta.min_ts >= c);
        if wholly_after {
            backlog.events += live.map(|s| s.rows).sum::<u64>();
            continue;
        }
        // The cursor is inside the part: count its rows from the key columns.
        let reader = candidate.part.open()?;
        let bad = |e| candidate.part.read_error(e);
        for row_group in 0..reader.row_groups() {
            for batch in reader.read_row_group(row_group, true).map_err(bad)? {
                let batch = batch.map_err(bad)?;
                backlog.events += (0..batch.len())
                    .filter(|&i| {
                        batch.seq(i) > after
                            && cutoff.is_none_or(|c| batch.timestamp(i) >= c)
                            && candidate.streams.contains_key(batch.stream(i))
                    })
                    .count() as u64;
            }
        }
    }
    Ok(backlog)
}

/// `group` across both tiers at one moment.
pub(super) fn tier_snapshot(shared: &Shared, group: &str) -> Result<TierSnapshot> {
    let state = shared.state.read().expect("state lock");
    let g = state.group(group)?;
    let mut tail = Vec::new();
    for stream in g.streams.values() {
        tail.extend(stream.blocks.iter().map(|b| ScanBlock {
            stream: Arc::clone(&stream.name),
            block: b.clone(),
        }));
    }
    let held: Vec<Arc<Part>> = g.parts.values().cloned().collect();
    let live_streams = held.iter().map(|p| g.live_streams(p, |_| true)).collect();
    let parts = held
        .iter()
        .map(|p| PartFile {
            location: p.engine_path(),
            bytes: p.meta.bytes,
            rows: p.meta.rows,
            min_ts: p.meta.min_ts,
            max_ts: p.meta.max_ts,
            layout: p.meta.layout.clone(),
            partition_values: partition_values(&p.meta.file),
        })
        .collect();
    Ok(TierSnapshot {
        group: g.name.clone(),
        parts,
        lake_store: shared
            .places
            .lake
            .object_store()
            .map(|(url, store)| LakeStore { url, store }),
        retention_cutoff: g.cutoff(now_ms()),
        flow_log_format: g.flow_log_format.clone(),
        tail,
        held,
        live_streams,
    })
}
