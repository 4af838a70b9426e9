//! The Amazon Data Firehose HTTP endpoint receiver (`POST /firehose` by default): a
//! Firehose stream whose destination is this URL delivers here. Records that are
//! CloudWatch Logs subscription documents (a subscription filter sending to the Firehose
//! stream) are unpacked into their original log group and stream, created on demand;
//! other records go, one event per line, into the configured group and stream.
//!
//! A delivery is answered 200 only once stored. Firehose sends a retried batch with the
//! same request id; the id is recorded per target log group (as an import checkpoint of
//! source `firehose`) together with the events, and a retry stores nothing again. Ids
//! are forgotten after `dedup_hours`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use http::{HeaderMap, StatusCode};
use nettrail_formats::firehose::{
    FirehoseRecord, FirehoseRequest, FirehoseResponse, ACCESS_KEY_HEADER, REQUEST_ID_HEADER,
};
use nettrail_formats::subscription::{gunzip, MessageType};
use nettrail_store::{ImportCheckpoint, LogStore, Millis, NewEvent, NewGroup, StoreError};

use crate::config::ServerConfig;
use crate::validate::{is_log_group_name, is_log_stream_name};

/// The checkpoint source under which request ids are remembered.
const DEDUP_SOURCE: &str = "firehose";

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;

/// Receives Firehose deliveries into the store.
pub(crate) struct FirehoseReceiver {
    store: Arc<dyn LogStore>,
    config: Arc<ServerConfig>,
}

/// A failure answer.
pub(crate) fn refusal(request_id: &str, message: String) -> FirehoseResponse {
    FirehoseResponse {
        request_id: request_id.to_owned(),
        timestamp: now_ms(),
        error_message: Some(message),
    }
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Compares without an early exit, so that the time taken does not tell how much of a
/// guessed key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Events bound for one log group, by stream.
type GroupEvents = BTreeMap<String, Vec<(Millis, String)>>;

impl FirehoseReceiver {
    pub(crate) fn new(store: Arc<dyn LogStore>, config: Arc<ServerConfig>) -> FirehoseReceiver {
        FirehoseReceiver { store, config }
    }

    /// Handles one delivery: the status and the body to answer with.
    pub(crate) fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, FirehoseResponse) {
        let settings = &self.config.firehose;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let request_id = header(REQUEST_ID_HEADER).unwrap_or("").to_owned();
        let refuse = |status: StatusCode, message: String| {
            tracing::debug!(request_id, %status, message, "firehose delivery refused");
            (status, refusal(&request_id, message))
        };
        if settings.access_keys.is_empty() {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "this nettrail has no firehose access key configured ([firehose] access_keys)"
                    .into(),
            );
        }
        let presented = header(ACCESS_KEY_HEADER).unwrap_or("").as_bytes();
        if !settings
            .access_keys
            .iter()
            .any(|k| constant_time_eq(k.as_bytes(), presented))
        {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "wrong or missing X-Amz-Firehose-Access-Key".into(),
            );
        }
        if request_id.is_empty() {
            return refuse(
                StatusCode::BAD_REQUEST,
                "missing X-Amz-Firehose-Request-Id".into(),
            );
        }
        let gzipped = header("content-encoding").is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
        let decompressed;
        let body = if gzipped {
            match gunzip(body, settings.max_body_bytes as u64) {
                Ok(plain) => {
                    decompressed = plain;
                    &decompressed[..]
                }
                Err(nettrail_formats::subscription::PayloadError::TooLarge) => {
                    return refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the body is larger than {} bytes decompressed",
                            settings.max_body_bytes
                        ),
                    )
                }
                Err(e) => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        format!("Content-Encoding: gzip, but {e}"),
                    )
                }
            }
        } else {
            body
        };
        let request = match FirehoseRequest::from_json(body) {
            Ok(r) => r,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let by_group = self.route(&request);
        let now = now_ms();
        let mut stored = 0usize;
        for (group, streams) in by_group {
            match self.store_group(&group, streams, &request_id, now) {
                Ok(n) => stored += n,
                Err(e) => {
                    tracing::error!(request_id, group, error = %e, "firehose delivery not stored");
                    let status = match e {
                        StoreError::Io { .. } | StoreError::Closed => {
                            StatusCode::SERVICE_UNAVAILABLE
                        }
                        _ => StatusCode::INTERNAL_SERVER_ERROR,
                    };
                    return (status, refusal(&request_id, format!("not stored: {e}")));
                }
            }
        }
        tracing::debug!(
            request_id,
            records = request.records.len(),
            stored,
            "firehose delivery stored"
        );
        (
            StatusCode::OK,
            FirehoseResponse {
                request_id,
                timestamp: now_ms(),
                error_message: None,
            },
        )
    }

    /// Where each record's events go.
    fn route(&self, request: &FirehoseRequest) -> BTreeMap<String, GroupEvents> {
        let settings = &self.config.firehose;
        let mut by_group: BTreeMap<String, GroupEvents> = BTreeMap::new();
        let other = |by_group: &mut BTreeMap<String, GroupEvents>, text: String| {
            let events = by_group
                .entry(settings.log_group.clone())
                .or_default()
                .entry(settings.log_stream.clone())
                .or_default();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                events.push((request.timestamp, line.to_owned()));
            }
        };
        for data in &request.records {
            match FirehoseRecord::decode(data) {
                Ok(FirehoseRecord::Subscription(message)) => {
                    if message.message_type == MessageType::Control {
                        continue;
                    }
                    let named = is_log_group_name(&message.log_group)
                        && !message.log_group.is_empty()
                        && message.log_group.len() <= 512
                        && is_log_stream_name(&message.log_stream)
                        && !message.log_stream.is_empty()
                        && message.log_stream.len() <= 512;
                    if !named {
                        other(&mut by_group, message.to_json());
                        continue;
                    }
                    let events = by_group
                        .entry(message.log_group)
                        .or_default()
                        .entry(message.log_stream)
                        .or_default();
                    events.extend(
                        message
                            .log_events
                            .into_iter()
                            .filter(|e| !e.message.is_empty())
                            .map(|e| (e.timestamp.max(0), e.message)),
                    );
                }
                Ok(FirehoseRecord::Raw(bytes)) => {
                    let text = match String::from_utf8(bytes) {
                        Ok(text) => text,
                        // Kept, not dropped: binary records are stored as base64.
                        Err(e) => base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                    };
                    other(&mut by_group, text);
                }
                // A record that looks like gzip but is not: kept as base64 of its bytes.
                Err(_) => other(
                    &mut by_group,
                    base64::engine::general_purpose::STANDARD.encode(data),
                ),
            }
        }
        by_group
    }

    /// Stores one group's events of a delivery, unless this request id is already in;
    /// returns the events stored.
    fn store_group(
        &self,
        group: &str,
        streams: GroupEvents,
        request_id: &str,
        now: Millis,
    ) -> Result<usize, StoreError> {
        let info = match self.store.group(group) {
            Ok(info) => info,
            Err(StoreError::GroupNotFound(_)) => {
                let created = self.store.create_group(
                    NewGroup {
                        name: group.to_owned(),
                        class: "STANDARD".into(),
                        ..NewGroup::default()
                    },
                    now,
                );
                match created {
                    Ok(()) | Err(StoreError::GroupExists(_)) => {}
                    Err(e) => return Err(e),
                }
                self.store.group(group)?
            }
            Err(e) => return Err(e),
        };
        let known = self.store.import_checkpoints(group, DEDUP_SOURCE)?;
        if known.contains_key(request_id) {
            return Ok(0);
        }
        let cutoff = info
            .retention_days
            .map(|days| now - i64::from(days) * MS_PER_DAY);
        let mut batches: Vec<(String, Vec<NewEvent>)> = Vec::new();
        for (stream, events) in streams {
            let events: Vec<NewEvent> = events
                .into_iter()
                .filter(|(t, _)| cutoff.is_none_or(|c| *t >= c))
                .map(|(timestamp, message)| NewEvent {
                    timestamp,
                    message: message.into(),
                })
                .collect();
            if events.is_empty() {
                continue;
            }
            match self.store.create_stream(group, &stream, now) {
                Ok(()) | Err(StoreError::StreamExists { .. }) => {}
                Err(e) => return Err(e),
            }
            batches.push((stream, events));
        }
        let streams: Vec<(&str, &[NewEvent])> = batches
            .iter()
            .map(|(s, e)| (s.as_str(), e.as_slice()))
            .collect();
        self.store.append_many(group, &streams)?;
        self.store.set_import_checkpoint(
            group,
            DEDUP_SOURCE,
            request_id,
            ImportCheckpoint {
                version: now.to_string(),
                parts: 1,
                complete: true,
            },
        )?;
        // Forget ids older than Firehose could still retry.
        let horizon = now - self.config.firehose.dedup_hours as i64 * MS_PER_HOUR;
        for (old, checkpoint) in known {
            if checkpoint.version.parse::<i64>().is_ok_and(|t| t < horizon) {
                self.store
                    .remove_import_checkpoint(group, DEDUP_SOURCE, &old)?;
            }
        }
        Ok(batches.iter().map(|(_, e)| e.len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
