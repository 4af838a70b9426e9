//! Reading events in key order across many blocks.
//!
//! Each block is sorted internally, but blocks of a group overlap in time (streams are
//! written concurrently, and a late write may carry old timestamps). The scan keeps the
//! candidate blocks sorted by their first key and opens (reads, verifies, decompresses)
//! a block only when the merge frontier reaches its time range, so a read that stops
//! early, or a time range that covers few blocks, reads few blocks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::block::{self, RawEvent};
use crate::error::Result;
use crate::file_store::{read_block, BlockRef};
use crate::{Direction, EventKey, EventRef, Millis, ScanRequest, ScanStats, StoreError};

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

/// A decompressed block being merged.
struct OpenBlock {
    stream: Arc<str>,
    raw: Vec<u8>,
    events: Vec<RawEvent>,
    first_seq: u64,
    ingestion_time: Millis,
    /// Next event to emit: counts up when forward, down when backward.
    next: usize,
}

impl OpenBlock {
    fn key(&self, i: usize) -> EventKey {
        EventKey {
            timestamp: self.events[i].timestamp,
            seq: self.first_seq + i as u64,
        }
    }
}

/// The bounds every visited event satisfies.
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

pub(crate) fn scan(
    mut blocks: Vec<ScanBlock>,
    request: &ScanRequest,
    retention_cutoff: Option<Millis>,
    visit: &mut dyn FnMut(EventRef<'_>) -> bool,
) -> Result<ScanStats> {
    let bounds = Bounds {
        lower_ts: request
            .start_time
            .unwrap_or(i64::MIN)
            .max(retention_cutoff.unwrap_or(i64::MIN)),
        upper_ts: request.end_time.unwrap_or(i64::MAX),
        from: request.from,
        direction: request.direction,
    };
    let mut stats = ScanStats {
        blocks_total: blocks.len() as u64,
        ..ScanStats::default()
    };
    blocks.retain(|b| bounds.may_overlap(b));
    // Candidates in the order the merge frontier reaches them, consumed from the end.
    match request.direction {
        Direction::Forward => blocks.sort_by_key(|b| Reverse(b.first_key())),
        Direction::Backward => blocks.sort_by_key(|b| b.last_key()),
    }

    let mut open: Vec<OpenBlock> = Vec::new();
    // The frontier: each open block's next key. Forward pops the smallest, backward the
    // largest; `Reverse` makes the max-heap a min-heap for the forward case.
    let mut forward: BinaryHeap<Reverse<(EventKey, usize)>> = BinaryHeap::new();
    let mut backward: BinaryHeap<(EventKey, usize)> = BinaryHeap::new();
    let forward_dir = request.direction == Direction::Forward;

    loop {
        let frontier = if forward_dir {
            forward.peek().map(|Reverse((k, _))| *k)
        } else {
            backward.peek().map(|(k, _)| *k)
        };
        // Open the next candidate if it could hold a key at or before the frontier;
        // one at a time, re-reading the frontier after each.
        if let Some(next) = blocks.last() {
            let reachable = match frontier {
                None => true,
                Some(f) if forward_dir => next.first_key() <= f,
                Some(f) => next.last_key() >= f,
            };
            if reachable {
                let candidate = blocks.pop().expect("peeked above");
                let block = open_block(candidate, &mut stats)?;
                let start = if forward_dir {
                    0
                } else {
                    block.events.len() - 1
                };
                let key = block.key(start);
                let idx = open.len();
                open.push(OpenBlock {
                    next: start,
                    ..block
                });
                if forward_dir {
                    forward.push(Reverse((key, idx)));
                } else {
                    backward.push((key, idx));
                }
                continue;
            }
        }
        let popped = if forward_dir {
            forward.pop().map(|Reverse(entry)| entry)
        } else {
            backward.pop()
        };
        let Some((key, idx)) = popped else {
            return Ok(stats); // no open block and no candidate left
        };
        let block = &mut open[idx];
        let event = block.events[block.next];
        if bounds.admits(key) {
            let message = std::str::from_utf8(&block.raw[event.start..event.end])
                .expect("validated when the block was opened");
            let keep_going = visit(EventRef {
                stream: &block.stream,
                key,
                ingestion_time: block.ingestion_time,
                message,
            });
            if !keep_going {
                return Ok(stats);
            }
        }
        let more = if forward_dir {
            block.next += 1;
            block.next < block.events.len()
        } else if block.next == 0 {
            false
        } else {
            block.next -= 1;
            true
        };
        if more {
            let key = block.key(block.next);
            if forward_dir {
                forward.push(Reverse((key, idx)));
            } else {
                backward.push((key, idx));
            }
        } else {
            // Free the block's memory; its slot stays so indices remain valid.
            block.raw = Vec::new();
            block.events = Vec::new();
        }
    }
}

fn open_block(candidate: ScanBlock, stats: &mut ScanStats) -> Result<OpenBlock> {
    let raw = read_block(&candidate.block)?;
    let header = &candidate.block.header;
    let events = block::index_events(header, &raw).map_err(|kind| StoreError::Corrupt {
        path: candidate.block.segment.path.clone(),
        offset: candidate.block.offset,
        kind,
    })?;
    stats.blocks_read += 1;
    stats.bytes_decompressed += raw.len() as u64;
    Ok(OpenBlock {
        stream: candidate.stream,
        raw,
        events,
        first_seq: header.first_seq,
        ingestion_time: header.ingestion_ms,
        next: 0,
    })
}
