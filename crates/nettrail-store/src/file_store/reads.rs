//! The read paths of a [`FileStore`](super::FileStore), over the block index and the
//! block access of [`segment`](crate::segment):
//! - [`scan`]: a page of events in key order (GetLogEvents, FilterLogEvents, live tail),
//!   from the blocks of the selected streams, through [`scan_page`];
//! - [`read_committed`]: events in commit order after a sequence number (subscription
//!   and metric filter engines);
//! - [`backlog`]: how much is left to read after a sequence number.
//!
//! Every tier of the store contributes the sources of a read here: today the row tier's
//! blocks; a columnar tier adds its parts beside them in [`scan`].

use std::sync::Arc;

use crate::block;
use crate::error::{Result, StoreError};
use crate::model::{
    Backlog, CommittedPage, EventKey, PageLimit, ScanPage, ScanRequest, ScannedEvent,
    StreamSelector,
};
use crate::scan::{scan_page, ScanBlock};
use crate::segment::read_block;

use super::shared::{now_ms, Shared};

/// A page of the events of `request`'s group and streams that `filter` admits.
pub(super) fn scan(
    shared: &Shared,
    request: &ScanRequest,
    filter: &dyn Fn(&str) -> bool,
    limit: PageLimit,
) -> Result<ScanPage> {
    let (blocks, cutoff) = {
        let state = shared.state.read().expect("state lock");
        let g = state.group(&request.group)?;
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
    };
    scan_page(blocks, request, cutoff, filter, &limit)
}

/// The events of `group` committed after sequence `after`, in commit order, up to
/// `limit`; `read_to` says how far the page reaches.
pub(super) fn read_committed(
    shared: &Shared,
    group: &str,
    after: u64,
    limit: PageLimit,
) -> Result<CommittedPage> {
    // Blocks and the published sequence under one lock: a commit published in between
    // would otherwise be skipped by `read_to`.
    let (mut blocks, cutoff, published) = {
        let state = shared.state.read().expect("state lock");
        let g = state.group(group)?;
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

/// The events of `group` after sequence `after` not yet expired, and the ingestion time
/// of the oldest block holding them.
pub(super) fn backlog(shared: &Shared, group: &str, after: u64) -> Result<Backlog> {
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
    Ok(backlog)
}
