//! nettrail's own operations for importing what AWS already wrote (`X-Amz-Target:
//! Nettrail_20261123.<Operation>`, same JSON 1.1 protocol and SigV4 as the rest).
//!
//! PutLogEvents refuses events older than 14 days, which is right for live writers but
//! would make months of flow logs from S3 unimportable. `ImportLogEvents` stores events
//! with their original timestamps (the group's retention still applies: expired events
//! are counted and dropped), into several streams at once, created on demand. With a
//! `checkpoint` it is idempotent per part of a source object: the store keeps, per log
//! group, source and object, the object's version and how many parts are stored, so a
//! second import of the same source stores nothing twice.

use std::collections::BTreeMap;

use nettrail_store::{ImportCheckpoint, LogStore, Millis, NewEvent, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::EVENT_OVERHEAD_BYTES;
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

/// Events in one ImportLogEvents request at most.
pub const MAX_IMPORT_EVENTS: usize = 100_000;

/// Message bytes in one ImportLogEvents request at most (counted as PutLogEvents counts:
/// UTF-8 bytes + 26 per event).
pub const MAX_IMPORT_BYTES: usize = 8 * 1_048_576;

const MS_PER_DAY: i64 = 86_400_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ImportLogEventsRequest<'a> {
    log_group_name: Option<String>,
    #[serde(borrow)]
    streams: Option<Vec<ImportStream<'a>>>,
    checkpoint: Option<CheckpointRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImportStream<'a> {
    log_stream_name: Option<String>,
    #[serde(borrow)]
    log_events: Option<Vec<ImportEvent<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportEvent<'a> {
    timestamp: Option<i64>,
    #[serde(borrow)]
    message: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckpointRequest {
    /// Where the import reads from (`s3://bucket/prefix`, a folder).
    source: Option<String>,
    /// The object (key) within the source.
    object: Option<String>,
    /// The object's version (ETag, size…): another version is imported again.
    version: Option<String>,
    /// This request's part number, from 0, in the importer's deterministic order.
    part: Option<i64>,
    /// Whether this is the object's last part.
    last: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GetImportCheckpointsRequest {
    log_group_name: Option<String>,
    source: Option<String>,
}

/// ImportLogEvents: stores events of several streams with their original timestamps.
pub(crate) fn import_log_events(
    store: &dyn LogStore,
    req: ImportLogEventsRequest<'_>,
    now: Millis,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("streams", &req.streams);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    let mut events_total = 0usize;
    let mut bytes_total = 0usize;
    for (i, stream) in req.streams.iter().flatten().enumerate() {
        let field = |name: &str| format!("streams.{}.member.{name}", i + 1);
        v.required(&field("logStreamName"), &stream.log_stream_name);
        v.log_stream_name(&field("logStreamName"), stream.log_stream_name.as_deref());
        v.required(&field("logEvents"), &stream.log_events);
        for (j, event) in stream.log_events.iter().flatten().enumerate() {
            events_total += 1;
            bytes_total += event.message.as_deref().map_or(0, str::len) + EVENT_OVERHEAD_BYTES;
            if event.timestamp.is_some_and(|t| t >= 0)
                && event.message.as_deref().is_some_and(|m| !m.is_empty())
            {
                continue;
            }
            let field =
                |name: &str| format!("streams.{}.member.logEvents.{}.member.{name}", i + 1, j + 1);
            v.required(&field("timestamp"), &event.timestamp);
            v.required(&field("message"), &event.message);
            v.range(&field("timestamp"), event.timestamp, 0, i64::MAX);
            if event.message.as_deref() == Some("") {
                v.length(&field("message"), Some(""), 1, usize::MAX);
            }
        }
    }
    if let Some(c) = &req.checkpoint {
        v.required("checkpoint.source", &c.source);
        v.required("checkpoint.object", &c.object);
        v.required("checkpoint.version", &c.version);
        v.required("checkpoint.part", &c.part);
        v.length("checkpoint.source", c.source.as_deref(), 1, 1024);
        v.length("checkpoint.object", c.object.as_deref(), 1, 1024);
        v.length("checkpoint.version", c.version.as_deref(), 1, 256);
        v.range("checkpoint.part", c.part, 0, i64::MAX);
    }
    v.finish()?;
    if events_total > MAX_IMPORT_EVENTS {
        return Err(ApiError::InvalidParameter(format!(
            "An ImportLogEvents request holds at most {MAX_IMPORT_EVENTS} events, not {events_total}."
        )));
    }
    if bytes_total > MAX_IMPORT_BYTES {
        return Err(ApiError::InvalidParameter(format!(
            "Upload too large: {bytes_total} bytes exceeds limit of {MAX_IMPORT_BYTES}"
        )));
    }
    let group = req.log_group_name.expect("validated");
    let info = store.group(&group)?;

    // Idempotence: a part already stored (same object version) is acknowledged again
    // without storing anything.
    let checkpoint = req.checkpoint.map(|c| {
        (
            c.source.expect("validated"),
            c.object.expect("validated"),
            c.version.expect("validated"),
            c.part.expect("validated") as u64,
            c.last.unwrap_or(false),
        )
    });
    if let Some((source, object, version, part, _)) = &checkpoint {
        let known = store.import_checkpoints(&group, source)?;
        let stored_parts = match known.get(object) {
            Some(c) if c.version == *version => c.parts,
            _ => 0,
        };
        if *part < stored_parts {
            return Ok(json!({ "storedEvents": 0, "expiredEvents": 0, "alreadyStored": true }));
        }
        if *part > stored_parts {
            return Err(ApiError::InvalidParameter(format!(
                "checkpoint.part is {part} but {stored_parts} part(s) of {object} are stored: parts must come in order"
            )));
        }
    }

    let cutoff = info
        .retention_days
        .map(|days| now - i64::from(days) * MS_PER_DAY);
    let mut expired = 0u64;
    let mut batches: Vec<(String, Vec<NewEvent>)> = Vec::new();
    for stream in req.streams.expect("validated") {
        let name = stream.log_stream_name.expect("validated");
        let events: Vec<NewEvent> = stream
            .log_events
            .expect("validated")
            .into_iter()
            .filter_map(|e| {
                let timestamp = e.timestamp.expect("validated");
                if cutoff.is_some_and(|c| timestamp < c) {
                    expired += 1;
                    return None;
                }
                Some(NewEvent {
                    timestamp,
                    message: e.message.expect("validated"),
                })
            })
            .collect();
        if events.is_empty() {
            continue;
        }
        match store.create_stream(&group, &name, now) {
            Ok(()) | Err(StoreError::StreamExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        batches.push((name, events));
    }
    // One commit for the whole request: a part is stored all or none, and with its
    // checkpoint, so that a crash cannot leave a stored part that an import would send
    // (and store) again.
    let streams: Vec<(&str, &[NewEvent])> = batches
        .iter()
        .map(|(n, e)| (n.as_str(), e.as_slice()))
        .collect();
    match checkpoint {
        Some((source, object, version, part, last)) => {
            let checkpoint = ImportCheckpoint {
                version,
                parts: part + 1,
                complete: last,
            };
            store.import_many(&group, &streams, &source, &object, checkpoint)?;
        }
        None => {
            store.append_many(&group, &streams)?;
        }
    }
    let stored: u64 = batches.iter().map(|(_, e)| e.len() as u64).sum();
    Ok(json!({ "storedEvents": stored, "expiredEvents": expired }))
}

/// GetImportCheckpoints: what is stored of each object of a source.
pub(crate) fn get_import_checkpoints(
    store: &dyn LogStore,
    req: GetImportCheckpointsRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("source", &req.source);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.finish()?;
    let found = store.import_checkpoints(
        &req.log_group_name.expect("validated"),
        &req.source.expect("validated"),
    )?;
    let checkpoints: BTreeMap<String, Value> = found
        .into_iter()
        .map(|(object, c)| {
            (
                object,
                json!({ "version": c.version, "parts": c.parts, "complete": c.complete }),
            )
        })
        .collect();
    Ok(json!({ "checkpoints": checkpoints }))
}
