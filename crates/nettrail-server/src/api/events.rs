//! Events: PutLogEvents, GetLogEvents and FilterLogEvents, with AWS's batch rules,
//! page limits and pagination tokens.

use std::borrow::Cow;

use nettrail_pattern::FilterPattern;
use nettrail_store::{
    Direction, EventKey, FieldCondition, FieldConditions, NewEvent, PageLimit, ScanHint,
    ScanRequest, ScannedEvent, StreamSelector,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::common::{compile_pattern, event_id, now_ms, EVENT_OVERHEAD_BYTES};
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

use super::context::{invalid_token, ApiContext};
use super::groups::stream_names;

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;
/// PutLogEvents: bytes per batch, counting each message's UTF-8 length plus 26.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// A page of events is at most this many bytes, counted as for PutLogEvents.
const MAX_PAGE_BYTES: usize = 1_048_576;

/// What the store may hold for one response page of at most `limit` events.
fn response_page_limit(limit: usize) -> PageLimit {
    PageLimit {
        max_events: limit,
        max_bytes: MAX_PAGE_BYTES,
        overhead_per_event: EVENT_OVERHEAD_BYTES,
    }
}

/// Cuts a page (ascending) to what fits in [`MAX_PAGE_BYTES`], keeping the events
/// nearest where the read started (the oldest forward, the newest backward) and always
/// at least one. The store fills a page until it reaches the byte limit, so it may hold
/// one event more than fits. Returns whether anything was cut.
fn trim_to_response_bytes(
    mut events: Vec<ScannedEvent>,
    direction: Direction,
) -> (Vec<ScannedEvent>, bool) {
    let cost = |e: &ScannedEvent| e.message.len() + EVENT_OVERHEAD_BYTES;
    let mut total = 0usize;
    let mut keep = 0usize;
    let in_read_order: Box<dyn Iterator<Item = &ScannedEvent>> = match direction {
        Direction::Forward => Box::new(events.iter()),
        Direction::Backward => Box::new(events.iter().rev()),
    };
    for event in in_read_order {
        total += cost(event);
        if keep > 0 && total > MAX_PAGE_BYTES {
            break;
        }
        keep += 1;
    }
    let trimmed = keep < events.len();
    match direction {
        Direction::Forward => events.truncate(keep),
        Direction::Backward => {
            events.drain(..events.len() - keep);
        }
    }
    (events, trimmed)
}

fn encode_key(prefix: &str, key: EventKey) -> String {
    format!("{prefix}/{:019}/{:020}", key.timestamp, key.seq)
}

fn decode_key(token: &str, prefix: &str) -> Option<EventKey> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('/')?;
    let (ts, seq) = rest.split_once('/')?;
    Some(EventKey {
        timestamp: ts.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

/// The key just before `key` in event order.
fn pred(key: EventKey) -> EventKey {
    match key.seq {
        0 => EventKey {
            timestamp: key.timestamp.saturating_sub(1),
            seq: u64::MAX,
        },
        seq => EventKey {
            timestamp: key.timestamp,
            seq: seq - 1,
        },
    }
}

/// The key just after `key` in event order.
fn succ(key: EventKey) -> EventKey {
    match key.seq {
        u64::MAX => EventKey {
            timestamp: key.timestamp.saturating_add(1),
            seq: 0,
        },
        seq => EventKey {
            timestamp: key.timestamp,
            seq: seq + 1,
        },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InputLogEvent<'a> {
    timestamp: Option<i64>,
    /// Borrowed from the request body unless it holds JSON escapes.
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutLogEventsRequest<'a> {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
    #[serde(borrow)]
    log_events: Option<Vec<InputLogEvent<'a>>>,
    sequence_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetLogEventsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FilterLogEventsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

pub(crate) fn put_log_events(api: &ApiContext, req: PutLogEventsRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("logStreamName", &req.log_stream_name);
    v.required("logEvents", &req.log_events);
    stream_names(
        &mut v,
        req.log_group_name.as_deref(),
        req.log_stream_name.as_deref(),
    );
    v.list_length("logEvents", req.log_events.as_deref(), 1, 10_000);
    v.length(
        "sequenceToken",
        req.sequence_token.as_deref(),
        1,
        usize::MAX,
    );
    for (i, event) in req.log_events.iter().flatten().enumerate() {
        // Field names are only formatted for a violation: this loop runs for every
        // event of every batch.
        let valid_timestamp = event.timestamp.is_some_and(|t| t >= 0);
        let valid_message = event.message.as_deref().is_some_and(|m| !m.is_empty());
        if valid_timestamp && valid_message {
            continue;
        }
        let field = |name: &str| format!("logEvents.{}.member.{name}", i + 1);
        v.required(&field("timestamp"), &event.timestamp);
        v.required(&field("message"), &event.message);
        v.range(&field("timestamp"), event.timestamp, 0, i64::MAX);
        if event.message.as_deref() == Some("") {
            v.length(&field("message"), Some(""), 1, usize::MAX);
        }
    }
    v.finish()?;
    let group = req.log_group_name.expect("validated");
    let stream = req.log_stream_name.expect("validated");
    let events = req.log_events.expect("validated");
    let info = api.store.group(&group)?;
    api.store.stream(&group, &stream)?;
    let stamps: Vec<i64> = events
        .iter()
        .map(|e| e.timestamp.expect("validated"))
        .collect();
    if stamps.windows(2).any(|w| w[1] < w[0]) {
        return Err(ApiError::InvalidParameter(
            "Log events in a single PutLogEvents request must be in chronological order.".into(),
        ));
    }
    let sizes: Vec<usize> = events
        .iter()
        .map(|e| e.message.as_deref().map_or(0, str::len) + EVENT_OVERHEAD_BYTES)
        .collect();
    let total: usize = sizes.iter().sum();
    if total > MAX_BATCH_BYTES {
        return Err(ApiError::InvalidParameter(format!(
            "Upload too large: {total} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    let now = now_ms();
    let too_old_end = stamps.partition_point(|&t| t < now - 14 * MS_PER_DAY);
    let expired_end = info.retention_days.map_or(0, |days| {
        stamps.partition_point(|&t| t < now - i64::from(days) * MS_PER_DAY)
    });
    let too_new_start = stamps.partition_point(|&t| t <= now + 2 * MS_PER_HOUR);
    let valid_start = too_old_end.max(expired_end).min(too_new_start);
    let valid = &stamps[valid_start..too_new_start];
    if let (Some(first), Some(last)) = (valid.first(), valid.last()) {
        if last - first > 24 * MS_PER_HOUR {
            return Err(ApiError::InvalidParameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into(),
            ));
        }
    }
    let to_store: Vec<NewEvent> = events
        .into_iter()
        .skip(valid_start)
        .take(too_new_start - valid_start)
        .map(|e| NewEvent {
            timestamp: e.timestamp.expect("validated"),
            message: e.message.expect("validated"),
        })
        .collect();
    let first_seq = if to_store.is_empty() {
        0
    } else {
        api.store.append(&group, &stream, &to_store)?.first_seq
    };
    let mut out = json!({ "nextSequenceToken": format!("{first_seq:056}") });
    let mut rejected = Map::new();
    if too_new_start < stamps.len() {
        rejected.insert("tooNewLogEventStartIndex".into(), too_new_start.into());
    }
    if too_old_end > 0 {
        rejected.insert("tooOldLogEventEndIndex".into(), too_old_end.into());
    }
    if expired_end > 0 {
        rejected.insert("expiredLogEventEndIndex".into(), expired_end.into());
    }
    if !rejected.is_empty() {
        out["rejectedLogEventsInfo"] = Value::Object(rejected);
    }
    Ok(out)
}

pub(crate) fn get_log_events(api: &ApiContext, req: GetLogEventsRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logStreamName", &req.log_stream_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.log_group_identifier("logGroupIdentifier", req.log_group_identifier.as_deref());
    v.log_stream_name("logStreamName", req.log_stream_name.as_deref());
    v.range("startTime", req.start_time, 0, i64::MAX);
    v.range("endTime", req.end_time, 0, i64::MAX);
    v.next_token("nextToken", req.next_token.as_deref());
    v.range("limit", req.limit, 1, 10_000);
    v.finish()?;
    let group = api.resolve_group(req.log_group_name, req.log_group_identifier)?;
    let stream = req.log_stream_name.expect("validated");
    api.store.stream(&group, &stream)?;
    // f/K: the events after K, ascending. b/K: the events just before K. No token:
    // the first events (startFromHead) or the last ones.
    let (direction, from) = match req.next_token.as_deref() {
        Some(token) if token.starts_with("f/") => (
            Direction::Forward,
            Some(decode_key(token, "f").ok_or_else(invalid_token)?),
        ),
        Some(token) if token.starts_with("b/") => (
            Direction::Backward,
            Some(decode_key(token, "b").ok_or_else(invalid_token)?),
        ),
        Some(_) => return Err(invalid_token()),
        None if req.start_from_head.unwrap_or(false) => (Direction::Forward, None),
        None => (Direction::Backward, None),
    };
    let limit = req.limit.unwrap_or(10_000) as usize;
    let scan = ScanRequest {
        group,
        streams: StreamSelector::Names(vec![stream]),
        start_time: req.start_time,
        end_time: req.end_time,
        from,
        direction,
    };
    let page = api
        .store
        .scan(&scan, &|_| true, response_page_limit(limit))?;
    let (events, _) = trim_to_response_bytes(page.events, direction);
    let lower = EventKey {
        timestamp: req.start_time.unwrap_or(0),
        seq: 0,
    };
    let (forward, backward) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (last.key, first.key),
        _ => match (direction, from) {
            (Direction::Forward, Some(k)) => (k, succ(k)),
            (Direction::Backward, Some(k)) => (pred(k), k),
            (Direction::Forward, None) => (pred(lower), lower),
            (Direction::Backward, None) => {
                let upper = EventKey {
                    timestamp: req.end_time.unwrap_or(i64::MAX),
                    seq: 0,
                };
                (pred(upper), upper)
            }
        },
    };
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| json!({ "timestamp": e.key.timestamp, "message": e.message, "ingestionTime": e.ingestion_time }))
        .collect();
    Ok(json!({
        "events": events,
        "nextForwardToken": encode_key("f", forward),
        "nextBackwardToken": encode_key("b", backward),
    }))
}

pub(crate) fn filter_log_events(api: &ApiContext, req: FilterLogEventsRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.log_group_identifier("logGroupIdentifier", req.log_group_identifier.as_deref());
    v.list_length("logStreamNames", req.log_stream_names.as_deref(), 1, 100);
    for name in req.log_stream_names.iter().flatten() {
        v.log_stream_name("logStreamNames.member", Some(name));
    }
    v.log_stream_name("logStreamNamePrefix", req.log_stream_name_prefix.as_deref());
    v.range("startTime", req.start_time, 0, i64::MAX);
    v.range("endTime", req.end_time, 0, i64::MAX);
    v.length("filterPattern", req.filter_pattern.as_deref(), 0, 1024);
    v.next_token("nextToken", req.next_token.as_deref());
    v.range("limit", req.limit, 1, 10_000);
    v.finish()?;
    let group = api.resolve_group(req.log_group_name, req.log_group_identifier)?;
    let streams = match (req.log_stream_names, req.log_stream_name_prefix) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidParameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.".into(),
            ))
        }
        (Some(names), None) => StreamSelector::Names(names),
        (None, Some(prefix)) => StreamSelector::Prefix(prefix),
        (None, None) => StreamSelector::All,
    };
    let pattern = compile_pattern(req.filter_pattern.as_deref().unwrap_or(""))?;
    let from = match &req.next_token {
        Some(token) => Some(decode_key(token, "e").ok_or_else(invalid_token)?),
        None => None,
    };
    let limit = req.limit.unwrap_or(10_000) as usize;
    // Existence check first, so that a missing group is an error, not an empty page.
    api.store.group(&group)?;
    let scan = ScanRequest {
        group,
        streams,
        start_time: req.start_time,
        end_time: req.end_time,
        from,
        direction: Direction::Forward,
    };
    let must_contain = pattern.required_substrings();
    let fields = PatternFields(&pattern);
    let hint = ScanHint {
        must_contain: &must_contain,
        fields: Some(&fields),
    };
    let page = api.store.scan_with_hint(
        &scan,
        &|message| pattern.matches(message),
        &hint,
        response_page_limit(limit),
    )?;
    let stats = page.stats;
    let (events, trimmed) = trim_to_response_bytes(page.events, Direction::Forward);
    let next_token = match events.last() {
        Some(last) if page.more || trimmed => Some(encode_key("e", last.key)),
        _ => None,
    };
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "logStreamName": &*e.stream,
                "timestamp": e.key.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion_time,
                "eventId": event_id(e.key, e.ingestion_time),
            })
        })
        .collect();
    tracing::debug!(
        group = %scan.group,
        pattern = pattern.as_str(),
        blocks_total = stats.blocks_total,
        blocks_read = stats.blocks_read,
        bytes_decompressed = stats.bytes_decompressed,
        row_groups_read = stats.row_groups_read,
        row_groups_skipped = stats.row_groups_skipped,
        part_bytes_read = stats.part_bytes_read,
        rows_skipped_by_fields = stats.rows_skipped_by_fields,
        events = events.len(),
        "filter log events scanned"
    );
    // AWS stopped reporting searched streams in 2020 and returns an empty list.
    let mut out = json!({ "events": events, "searchedLogStreams": [] });
    if let Some(token) = next_token {
        out["nextToken"] = token.into();
    }
    Ok(out)
}

/// A filter pattern's field tests, as the store asks for them (a space-delimited
/// pattern over flow-log parts is then checked on columns before a message is built).
struct PatternFields<'p>(&'p FilterPattern);

impl FieldConditions for PatternFields<'_> {
    fn of_width(&self, width: usize) -> Vec<FieldCondition<'_>> {
        self.0
            .field_tests(width)
            .into_iter()
            .map(|test| FieldCondition {
                field: test.field,
                holds: Box::new(move |value| test.holds(value)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let key = EventKey {
            timestamp: 5,
            seq: 9,
        };
        assert_eq!(decode_key(&encode_key("f", key), "f"), Some(key));
        assert_eq!(decode_key(&encode_key("f", key), "b"), None);
        assert_eq!(decode_key("f/x/y", "f"), None);
        assert!(pred(key) < key && key < succ(key));
        assert!(
            pred(EventKey {
                timestamp: 5,
                seq: 0
            }) < EventKey {
                timestamp: 5,
                seq: 0
            }
        );
    }
}
