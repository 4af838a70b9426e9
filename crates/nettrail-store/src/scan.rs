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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::block;
use crate::error::{Result, StoreError};
use crate::model::{
    Direction, EventKey, Millis, PageLimit, ScanPage, ScanRequest, ScanStats, ScannedEvent,
};
use crate::segment::{read_block, BlockRef};

/// A block selected for a scan, with the name of its stream.
pub(crate) struct ScanBlock {
    pub(crate) stream: Arc<str>,
    pub(crate) block: BlockRef,
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

    fn may_overlap(&self, block: &ScanBlock) -> bool {
        let h = &block.block.header;
        if h.max_ts < self.lower_ts || h.min_ts >= self.upper_ts {
            return false;
        }
        match (self.from, self.direction) {
            (None, _) => true,
            (Some(from), Direction::Forward) => block.last_key() > from,
            (Some(from), Direction::Backward) => block.first_key() < from,
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

/// The page of `request` from `blocks`: the first `limit` events in key order that are
/// within the bounds and retention and that `filter` admits.
pub(crate) fn scan_page(
    mut blocks: Vec<ScanBlock>,
    request: &ScanRequest,
    retention_cutoff: Option<Millis>,
    filter: &dyn Fn(&str) -> bool,
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
    let mut stats = ScanStats {
        blocks_total: blocks.len() as u64,
        ..ScanStats::default()
    };
    blocks.retain(|b| bounds.may_overlap(b));
    // The order in which blocks can contribute: by first key forward, by last key
    // (descending) backward.
    match direction {
        Direction::Forward => blocks.sort_by_key(|b| b.first_key()),
        Direction::Backward => blocks.sort_by_key(|b| Reverse(b.last_key())),
    }
    let mut page = Page {
        limit,
        heap: BinaryHeap::new(),
        slab: Vec::new(),
        cost: 0,
        more: false,
    };
    for candidate in blocks {
        let entry = match direction {
            Direction::Forward => candidate.first_key(),
            Direction::Backward => candidate.last_key(),
        };
        if page
            .cutoff()
            .is_some_and(|cut| Rank::of(entry, direction) > cut)
        {
            // This block, and every later one, starts beyond a full page.
            page.more = true;
            break;
        }
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
    }
    let more = page.more;
    Ok(ScanPage {
        events: page.into_events(direction),
        more,
        stats,
    })
}
