//! Reading a page of events in key order across many blocks, in bounded memory.
//!
//! Blocks of a group overlap in time (streams are written concurrently; every flow log
//! record of a capture window carries that window's timestamps), so an ordered read
//! cannot stream one block after another, and keeping every overlapping block
//! decompressed at once would let one large read exhaust memory. Instead a read asks
//! for one page: the first `max_events` matching events in key order, within
//! `max_bytes`. Blocks are decompressed one at a time, in the order of their first key,
//! and their matching events go into a heap that keeps only the smallest keys that can
//! still be on the page. Once the page is full, a block whose first key is beyond the
//! page is not read. Memory is bounded by the page, whatever the data.
//!
//! Parts of the columnar tier are sources beside the blocks: a part is read row group
//! by row group (in key order, so a forward read stops inside a part once it is past
//! a full page), one batch decoded at a time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::block;
use crate::error::{Result, StoreError};
use crate::model::{
    Direction, EventKey, Millis, PageLimit, ScanHint, ScanPage, ScanRequest, ScanStats,
    ScannedEvent,
};
use crate::parts::Part;
use crate::segment::{read_block, BlockRef};

/// A block selected for a scan, with the name of its stream.
pub(crate) struct ScanBlock {
    pub(crate) stream: Arc<str>,
    pub(crate) block: BlockRef,
}

/// A part selected for a scan, with the streams whose rows the scan takes: by name,
/// only streams that are selected and are still the stream that wrote the rows.
pub(crate) struct ScanPart {
    pub(crate) part: Arc<Part>,
    pub(crate) streams: HashMap<String, Arc<str>>,
}

/// Where a scan's events come from: the row tier's blocks and the columnar tier's
/// parts, read together in key order.
pub(crate) enum ScanSource {
    Block(ScanBlock),
    Part(ScanPart),
}

impl ScanSource {
    fn first_key(&self) -> EventKey {
        match self {
            ScanSource::Block(b) => b.first_key(),
            ScanSource::Part(p) => p.part.meta.first_key(),
        }
    }

    fn last_key(&self) -> EventKey {
        match self {
            ScanSource::Block(b) => b.last_key(),
            ScanSource::Part(p) => p.part.meta.last_key(),
        }
    }

    fn time_range(&self) -> (Millis, Millis) {
        match self {
            ScanSource::Block(b) => (b.block.header.min_ts, b.block.header.max_ts),
            ScanSource::Part(p) => (p.part.meta.min_ts, p.part.meta.max_ts),
        }
    }
}

impl ScanBlock {
    fn first_key(&self) -> EventKey {
        EventKey {
            timestamp: self.block.header.min_ts,
            seq: self.block.header.first_seq,
        }
    }

    fn last_key(&self) -> EventKey {
        EventKey {
            timestamp: self.block.header.max_ts,
            seq: self.block.header.first_seq + u64::from(self.block.header.count) - 1,
        }
    }
}

/// The bounds every returned event satisfies.
struct Bounds {
    /// Inclusive lower timestamp (start time or retention cutoff).
    lower_ts: Millis,
    /// Exclusive upper timestamp.
    upper_ts: Millis,
    from: Option<EventKey>,
    direction: Direction,
}

impl Bounds {
    fn admits(&self, key: EventKey) -> bool {
        if key.timestamp < self.lower_ts || key.timestamp >= self.upper_ts {
            return false;
        }
        match (self.from, self.direction) {
            (None, _) => true,
            (Some(from), Direction::Forward) => key > from,
            (Some(from), Direction::Backward) => key < from,
        }
    }

    fn may_overlap(
        &self,
        first: EventKey,
        last: EventKey,
        (min_ts, max_ts): (Millis, Millis),
    ) -> bool {
        if max_ts < self.lower_ts || min_ts >= self.upper_ts {
            return false;
        }
        match (self.from, self.direction) {
            (None, _) => true,
            (Some(from), Direction::Forward) => last > from,
            (Some(from), Direction::Backward) => first < from,
        }
    }
}

/// The page being filled. Keys are stored as "rank" keys: the key itself when reading
/// forward, reversed when reading backward, so that in both directions the page keeps
/// the smallest ranks and evicts the largest.
struct Page<'l> {
    limit: &'l PageLimit,
    heap: BinaryHeap<(Rank, usize)>,
    slab: Vec<Option<ScannedEvent>>,
    cost: usize,
    /// Something matching was left out: an evicted event, or an unread block.
    more: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Forward(EventKey),
    Backward(Reverse<EventKey>),
}

impl Rank {
    fn of(key: EventKey, direction: Direction) -> Rank {
        match direction {
            Direction::Forward => Rank::Forward(key),
            Direction::Backward => Rank::Backward(Reverse(key)),
        }
    }
}

impl Page<'_> {
    fn cost_of(&self, message: &str) -> usize {
        message.len() + self.limit.overhead_per_event
    }

    fn is_full(&self) -> bool {
        self.heap.len() >= self.limit.max_events.max(1) || self.cost >= self.limit.max_bytes
    }

    /// The largest rank on the page, when the page is full: anything ranked after it
    /// cannot get on the page.
    fn cutoff(&self) -> Option<Rank> {
        if self.is_full() {
            self.heap.peek().map(|(rank, _)| *rank)
        } else {
            None
        }
    }

    fn push(&mut self, rank: Rank, event: ScannedEvent) {
        self.cost += self.cost_of(&event.message);
        self.slab.push(Some(event));
        self.heap.push((rank, self.slab.len() - 1));
        // Evict the largest ranks while the page stays full without them.
        while let Some(&(_, idx)) = self.heap.peek() {
            let largest = self.slab[idx]
                .as_ref()
                .map_or(0, |e| self.cost_of(&e.message));
            let over_count = self.heap.len() > self.limit.max_events.max(1);
            let over_bytes = self.heap.len() > 1 && self.cost - largest >= self.limit.max_bytes;
            if !over_count && !over_bytes {
                break;
            }
            self.heap.pop();
            self.slab[idx] = None;
            self.cost -= largest;
            self.more = true;
        }
    }

    fn into_events(self, direction: Direction) -> Vec<ScannedEvent> {
        let mut slab = self.slab;
        let mut ranked: Vec<(Rank, ScannedEvent)> = self
            .heap
            .into_vec()
            .into_iter()
            .map(|(rank, idx)| (rank, slab[idx].take().expect("on the page")))
            .collect();
        ranked.sort_by_key(|(rank, _)| *rank);
        let mut events: Vec<ScannedEvent> = ranked.into_iter().map(|(_, e)| e).collect();
        if direction == Direction::Backward {
            events.reverse(); // pages are always returned in ascending key order
        }
        events
    }
}

/// The page of `request` from `sources`: the first `limit` events in key order that
/// are within the bounds and retention and that `filter` admits.
pub(crate) fn scan_page(
    mut sources: Vec<ScanSource>,
    request: &ScanRequest,
    retention_cutoff: Option<Millis>,
    filter: &dyn Fn(&str) -> bool,
    hint: &ScanHint<'_>,
    limit: &PageLimit,
) -> Result<ScanPage> {
    let bounds = Bounds {
        lower_ts: request
            .start_time
            .unwrap_or(i64::MIN)
            .max(retention_cutoff.unwrap_or(i64::MIN)),
        upper_ts: request.end_time.unwrap_or(i64::MAX),
        from: request.from,
        direction: request.direction,
    };
    let direction = request.direction;
    let mut stats = ScanStats::default();
    for source in &sources {
        match source {
            ScanSource::Block(_) => stats.blocks_total += 1,
            ScanSource::Part(_) => stats.parts_total += 1,
        }
    }
    sources.retain(|b| bounds.may_overlap(b.first_key(), b.last_key(), b.time_range()));
    // The order in which sources can contribute: by first key forward, by last key
    // (descending) backward.
    match direction {
        Direction::Forward => sources.sort_by_key(|b| b.first_key()),
        Direction::Backward => sources.sort_by_key(|b| Reverse(b.last_key())),
    }
    let mut page = Page {
        limit,
        heap: BinaryHeap::new(),
        slab: Vec::new(),
        cost: 0,
        more: false,
    };
    for candidate in sources {
        let entry = match direction {
            Direction::Forward => candidate.first_key(),
            Direction::Backward => candidate.last_key(),
        };
        if page
            .cutoff()
            .is_some_and(|cut| Rank::of(entry, direction) > cut)
        {
            // This source, and every later one, starts beyond a full page.
            page.more = true;
            break;
        }
        match candidate {
            ScanSource::Block(block) => {
                read_block_into(&block, &bounds, filter, &mut page, &mut stats)?
            }
            ScanSource::Part(part) => {
                read_part_into(&part, &bounds, filter, hint, &mut page, &mut stats)?
            }
        }
    }
    let more = page.more;
    Ok(ScanPage {
        events: page.into_events(direction),
        more,
        stats,
    })
}

/// Puts the events of one block that belong on the page on it.
fn read_block_into(
    candidate: &ScanBlock,
    bounds: &Bounds,
    filter: &dyn Fn(&str) -> bool,
    page: &mut Page<'_>,
    stats: &mut ScanStats,
) -> Result<()> {
    let direction = bounds.direction;
    let raw = read_block(&candidate.block)?;
    let header = &candidate.block.header;
    let events = block::index_events(header, &raw).map_err(|kind| StoreError::Corrupt {
        path: candidate.block.segment.path.clone(),
        offset: candidate.block.offset,
        kind,
    })?;
    stats.blocks_read += 1;
    stats.bytes_decompressed += raw.len() as u64;
    let order: Box<dyn Iterator<Item = usize>> = match direction {
        Direction::Forward => Box::new(0..events.len()),
        Direction::Backward => Box::new((0..events.len()).rev()),
    };
    for i in order {
        let key = EventKey {
            timestamp: events[i].timestamp,
            seq: header.first_seq + i as u64,
        };
        if !bounds.admits(key) {
            continue;
        }
        let rank = Rank::of(key, direction);
        if page.cutoff().is_some_and(|cut| rank > cut) {
            // The rest of this block ranks later still.
            page.more = true;
            break;
        }
        let message = std::str::from_utf8(&raw[events[i].start..events[i].end])
            .expect("validated by index_events");
        if !filter(message) {
            continue;
        }
        page.push(
            rank,
            ScannedEvent {
                stream: Arc::clone(&candidate.stream),
                key,
                ingestion_time: header.ingestion_ms,
                message: message.to_owned(),
            },
        );
    }
    Ok(())
}

/// Puts the events of one part that belong on the page on it, row group by row group
/// in the direction of the read. In a part in key order it stops at the first row
/// group that starts beyond a full page; in a part of runs (rejected flow records
/// last) it only skips such row groups, since a later run may start earlier.
///
/// Row groups are read on this thread, one batch at a time. Decoding them a few
/// batches ahead on a second thread was measured and gained nothing (a regular
/// expression over every row of 2 GB of flow lines: 8.49 s against 7.91 s): building
/// each message and matching it is the cost, not decoding.
fn read_part_into(
    candidate: &ScanPart,
    bounds: &Bounds,
    filter: &dyn Fn(&str) -> bool,
    hint: &ScanHint<'_>,
    page: &mut Page<'_>,
    stats: &mut ScanStats,
) -> Result<()> {
    let direction = bounds.direction;
    let part = &candidate.part;
    let reader = part.open()?;
    // Typed flow rows are the format's fields in order, so the filter's field
    // conditions can be checked on their columns before their text is built.
    let conditions = match (hint.fields, reader.layout().flow_format()) {
        (Some(fields), Some(format)) => fields.of_width(format.len()),
        _ => Vec::new(),
    };
    let conditions: Vec<nettrail_columnar::FieldTest<'_>> = conditions
        .iter()
        .map(|c| (c.field, &*c.holds as &dyn Fn(&str) -> bool))
        .collect();
    let in_key_order = reader.in_key_order();
    let row_groups: Vec<usize> = match direction {
        Direction::Forward => (0..reader.row_groups()).collect(),
        Direction::Backward => (0..reader.row_groups()).rev().collect(),
    };
    let bad = |e| part.read_error(e);
    let needles = nettrail_columnar::TextNeedles::new(hint.must_contain);
    let mut field_text = String::new();
    let mut message = String::new();
    'row_groups: for row_group in row_groups {
        let (lo, hi) = reader
            .time_range(row_group)
            .unwrap_or((part.meta.min_ts, part.meta.max_ts));
        if hi < bounds.lower_ts || lo >= bounds.upper_ts {
            continue;
        }
        let entry = match direction {
            Direction::Forward => EventKey {
                timestamp: lo,
                seq: 0,
            },
            Direction::Backward => EventKey {
                timestamp: hi,
                seq: u64::MAX,
            },
        };
        if page
            .cutoff()
            .is_some_and(|cut| Rank::of(entry, direction) > cut)
        {
            page.more = true;
            if in_key_order {
                break;
            }
            continue;
        }
        if !reader.row_group_may_pass(row_group, &conditions) {
            stats.row_groups_skipped += 1;
            continue;
        }
        if !hint.must_contain.is_empty() {
            let check = reader
                .may_contain(row_group, hint.must_contain)
                .map_err(bad)?;
            stats.part_bytes_read += check.bytes_read;
            if !check.may_match {
                stats.row_groups_skipped += 1;
                continue;
            }
        }
        stats.row_groups_read += 1;
        stats.part_bytes_read += reader.row_group_bytes(row_group);
        'rows: for batch in reader.read_row_group(row_group, false).map_err(bad)? {
            let batch = batch.map_err(bad)?;
            for i in 0..batch.len() {
                let key = EventKey {
                    timestamp: batch.timestamp(i),
                    seq: batch.seq(i),
                };
                if !bounds.admits(key) {
                    continue;
                }
                let rank = Rank::of(key, direction);
                if direction == Direction::Forward && page.cutoff().is_some_and(|cut| rank > cut) {
                    page.more = true;
                    if in_key_order {
                        break 'row_groups;
                    }
                    break 'rows;
                }
                let Some(stream) = candidate.streams.get(batch.stream(i)) else {
                    continue;
                };
                if page.cutoff().is_some_and(|cut| rank > cut) {
                    page.more = true;
                    continue;
                }
                if !batch.fields_may_pass(i, &conditions, &mut field_text)
                    || !batch.texts_may_contain(i, &needles)
                {
                    stats.rows_skipped_by_fields += 1;
                    continue;
                }
                // Built in one buffer; only a match is copied out.
                batch.write_message(i, &mut message);
                stats.bytes_decompressed += message.len() as u64;
                if !filter(&message) {
                    continue;
                }
                page.push(
                    rank,
                    ScannedEvent {
                        stream: Arc::clone(stream),
                        key,
                        ingestion_time: batch.ingestion_time(i),
                        message: message.clone(),
                    },
                );
            }
        }
    }
    Ok(())
}
