//! Small helpers every part of the server may use (and that use nothing of the server
//! but its error type): the clock, the event ids clients see, filter pattern
//! compilation with AWS's error, and how PutLogEvents counts an event's size.

use nettrail_pattern::FilterPattern;
use nettrail_store::{EventKey, Millis};

use crate::error::{ApiError, ApiResult};

/// Compiles a filter pattern; an invalid one is an InvalidParameterException that says
/// where and what is wrong.
pub(crate) fn compile_pattern(pattern: &str) -> ApiResult<FilterPattern> {
    FilterPattern::parse(pattern).map_err(|e| ApiError::InvalidParameter(e.to_string()))
}

/// The wall clock in Unix ms.
pub(crate) fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The event id clients see: a 56-digit decimal like AWS's, unique and stable per event
/// and ordered like the events (timestamp, ingestion time, sequence).
pub fn event_id(key: EventKey, ingestion_time: Millis) -> String {
    format!(
        "{:019}{:019}{:018}",
        key.timestamp.max(0),
        ingestion_time.max(0),
        key.seq % 1_000_000_000_000_000_000
    )
}

/// PutLogEvents: the overhead counted per event.
pub const EVENT_OVERHEAD_BYTES: usize = 26;

/// Forgets the oldest entries of `order` (ids, oldest first) and `by_id` beyond
/// `retained`, but only those `done` says have ended (a running query is never
/// forgotten); returns the ids forgotten. SQL executions and Insights queries keep
/// their finished ones this way.
pub(crate) fn forget_oldest_done<T>(
    order: &mut std::collections::VecDeque<String>,
    by_id: &mut std::collections::HashMap<String, std::sync::Arc<T>>,
    retained: usize,
    done: impl Fn(&T) -> bool,
) -> Vec<String> {
    let mut kept = std::collections::VecDeque::new();
    let mut forgotten = Vec::new();
    while order.len() + kept.len() > retained {
        let Some(id) = order.pop_front() else {
            break;
        };
        if by_id.get(&id).is_none_or(|entry| done(entry)) {
            by_id.remove(&id);
            forgotten.push(id);
        } else {
            kept.push_back(id);
        }
    }
    while let Some(id) = kept.pop_back() {
        order.push_front(id);
    }
    forgotten
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn event_ids_are_56_digits_and_ordered_like_events() {
        let a = event_id(
            EventKey {
                timestamp: 1_432_826_855_000,
                seq: 7,
            },
            1_432_827_365_364,
        );
        let b = event_id(
            EventKey {
                timestamp: 1_432_826_855_000,
                seq: 8,
            },
            1_432_827_365_364,
        );
        let c = event_id(
            EventKey {
                timestamp: 1_432_826_855_001,
                seq: 1,
            },
            1_432_827_365_000,
        );
        assert_eq!(a.len(), 56);
        assert!(a < b && b < c);
    }

    #[test]
    fn the_oldest_ended_entries_go_and_running_ones_stay_in_order() {
        // Entries 0..5, oldest first; 0 and 2 still run.
        let mut order: VecDeque<String> = (0..5).map(|i| i.to_string()).collect();
        let mut by_id: HashMap<String, Arc<bool>> = (0..5)
            .map(|i| (i.to_string(), Arc::new(i != 0 && i != 2)))
            .collect();
        let forgotten = forget_oldest_done(&mut order, &mut by_id, 3, |done| *done);
        assert_eq!(forgotten, ["1", "3"]);
        assert_eq!(order, ["0", "2", "4"]);
        assert_eq!(by_id.len(), 3);
    }
}
