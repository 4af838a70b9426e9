//! Retention: the sweeper thread wakes every `sweep_interval`, drops expired blocks
//! from the index and deletes sealed segments that hold no live block (every block
//! expired or of a deleted stream). A block that still holds an unexpired event is never
//! touched, so retention deletes whole segments only. Wholly expired parts are
//! dropped by the compactor, which runs after every sweep (`compaction.rs`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Result, StoreError};
use crate::model::Millis;
use crate::segment::Segment;

use super::shared::{now_ms, Shared};

/// The sweeper thread's loop, until the store shuts down.
pub(super) fn run_sweeper(shared: &Arc<Shared>) {
    let (lock, wake) = &shared.stop;
    loop {
        let stopped = lock.lock().expect("stop lock");
        // Checks the flag before sleeping, so a shutdown that came first is not missed.
        let (stopped, _) = wake
            .wait_timeout_while(stopped, shared.config.sweep_interval, |stopped| !*stopped)
            .expect("stop lock");
        if *stopped {
            return;
        }
        drop(stopped);
        if let Err(e) = sweep(shared, now_ms()) {
            tracing::error!(error = %e, "retention sweep failed");
        }
        if shared.config.compaction {
            if let Err(e) = super::compaction::compact_all(shared, now_ms()) {
                tracing::error!(error = %e, "compaction failed");
            }
        }
    }
}

/// Drops expired blocks from the index and deletes sealed segments that hold no live
/// block (every block expired or of a deleted stream). Blocks that still hold an
/// unexpired event are never touched.
pub(super) fn sweep(shared: &Shared, now: Millis) -> Result<usize> {
    let _maintenance = shared.maintenance.lock().expect("maintenance lock");
    let mut doomed = Vec::new();
    {
        let mut state = shared.state.write().expect("state lock");
        for group in state.groups.values_mut() {
            let cutoff = group.cutoff(now);
            let mut live_segments: HashSet<*const Segment> = HashSet::new();
            for stream in group.streams.values_mut() {
                if let Some(cutoff) = cutoff {
                    stream.blocks.retain(|b| b.header.max_ts >= cutoff);
                }
                live_segments.extend(stream.blocks.iter().map(|b| Arc::as_ptr(&b.segment)));
            }
            if cutoff.is_some() {
                group.restat_streams();
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
