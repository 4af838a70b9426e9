//! StartLiveTail: a session that streams the new events of up to 10 log groups, once a
//! second, as AWS event-stream messages (`application/vnd.amazon.eventstream`), the
//! frames botocore and the AWS SDKs parse: `initial-response`, `sessionStart`, then a
//! `sessionUpdate` every second (at most 500 events, `sampled` above that), and a
//! `SessionTimeoutException` after three hours or `SessionStreamingException` when the
//! server shuts down. A client ends a session by closing the connection.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame};
use nettrail_pattern::FilterPattern;
use nettrail_store::{LogStore, PageLimit, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::common::compile_pattern;
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

use super::context::{parse, ApiContext};

/// Events per sessionUpdate at most; above this an update is a sample.
const MAX_EVENTS_PER_UPDATE: usize = 500;
/// Pages of at most 10,000 events read per group and update; beyond that the session
/// skips ahead.
const MAX_PAGES_PER_UPDATE: usize = 5;
/// Updates buffered for a slow client before the newest are dropped.
const BUFFERED_UPDATES: usize = 10;
/// How long a session lasts, as on AWS.
const SESSION_LIMIT: Duration = Duration::from_secs(3 * 3600);
const UPDATE_INTERVAL: Duration = Duration::from_secs(1);

/// A validated StartLiveTail request.
pub(crate) struct LiveTailPlan {
    /// The log groups as the request named them (names or ARNs), and their names.
    pub(crate) groups: Vec<(String, String)>,
    pub(crate) stream_names: Option<Vec<String>>,
    pub(crate) stream_prefixes: Option<Vec<String>>,
    pub(crate) pattern_source: Option<String>,
    pub(crate) pattern: FilterPattern,
}

impl LiveTailPlan {
    fn admits(&self, stream: &str, message: &str) -> bool {
        let stream_ok = match (&self.stream_names, &self.stream_prefixes) {
            (Some(names), _) => names.iter().any(|n| n == stream),
            (_, Some(prefixes)) => prefixes.iter().any(|p| stream.starts_with(p.as_str())),
            _ => true,
        };
        stream_ok && self.pattern.matches(message)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartLiveTailRequest {
    log_group_identifiers: Option<Vec<String>>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefixes: Option<Vec<String>>,
    log_event_filter_pattern: Option<String>,
}

/// Validates a StartLiveTail request (its groups must exist) into the plan of a
/// session; errors are answered as JSON before any stream starts.
pub(crate) fn plan(api: &ApiContext, body: &[u8]) -> ApiResult<LiveTailPlan> {
    let req: StartLiveTailRequest = parse(body)?;
    let mut v = Violations::new();
    v.required("logGroupIdentifiers", &req.log_group_identifiers);
    v.list_length(
        "logGroupIdentifiers",
        req.log_group_identifiers.as_deref(),
        1,
        10,
    );
    for id in req.log_group_identifiers.iter().flatten() {
        v.log_group_identifier("logGroupIdentifiers.member", Some(id));
    }
    for (field, list) in [
        ("logStreamNames", &req.log_stream_names),
        ("logStreamNamePrefixes", &req.log_stream_name_prefixes),
    ] {
        v.list_length(field, list.as_deref(), 1, 100);
        for name in list.iter().flatten() {
            v.log_stream_name(&format!("{field}.member"), Some(name));
        }
    }
    v.length(
        "logEventFilterPattern",
        req.log_event_filter_pattern.as_deref(),
        0,
        1024,
    );
    v.finish()?;
    let identifiers = req.log_group_identifiers.expect("validated");
    if req.log_stream_names.is_some() && req.log_stream_name_prefixes.is_some() {
        return Err(ApiError::InvalidParameter(
            "You can specify either logStreamNames or logStreamNamePrefixes, but not both.".into(),
        ));
    }
    if (req.log_stream_names.is_some() || req.log_stream_name_prefixes.is_some())
        && identifiers.len() > 1
    {
        return Err(ApiError::InvalidParameter(
            "logStreamNames and logStreamNamePrefixes can be used with one log group only.".into(),
        ));
    }
    let pattern = compile_pattern(req.log_event_filter_pattern.as_deref().unwrap_or(""))?;
    let mut groups = Vec::new();
    for identifier in identifiers {
        let name = api.group_name_from_identifier(&identifier);
        api.store.group(&name)?;
        groups.push((identifier, name));
    }
    Ok(LiveTailPlan {
        groups,
        stream_names: req.log_stream_names,
        stream_prefixes: req.log_stream_name_prefixes,
        pattern_source: req.log_event_filter_pattern,
        pattern,
    })
}

/// The streamed response body: event-stream messages as the session produces them.
pub(crate) struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|m| m.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Starts a session; its messages come out of the returned body.
pub(crate) fn start(
    store: Arc<dyn LogStore>,
    plan: LiveTailPlan,
    request_id: String,
    closing: watch::Receiver<bool>,
) -> ChannelBody {
    let (tx, rx) = mpsc::channel(BUFFERED_UPDATES);
    tokio::spawn(session(store, plan, request_id, tx, closing));
    ChannelBody(rx)
}

async fn session(
    store: Arc<dyn LogStore>,
    plan: LiveTailPlan,
    request_id: String,
    tx: mpsc::Sender<Bytes>,
    mut closing: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut start = json!({
        "requestId": request_id,
        "sessionId": session_id,
        "logGroupIdentifiers": plan.groups.iter().map(|(id, _)| id).collect::<Vec<_>>(),
    });
    if let Some(names) = &plan.stream_names {
        start["logStreamNames"] = json!(names);
    }
    if let Some(prefixes) = &plan.stream_prefixes {
        start["logStreamNamePrefixes"] = json!(prefixes);
    }
    if let Some(pattern) = &plan.pattern_source {
        start["logEventFilterPattern"] = json!(pattern);
    }
    if tx
        .send(event("initial-response", &json!({})))
        .await
        .is_err()
        || tx.send(event("sessionStart", &start)).await.is_err()
    {
        return;
    }
    // Events committed from now on.
    let from = store.committed_seq();
    let mut cursors: Vec<u64> = vec![from; plan.groups.len()];
    let plan = Arc::new(plan);
    let mut tick = tokio::time::interval(UPDATE_INTERVAL);
    tick.tick().await;
    tracing::debug!(
        session_id,
        groups = plan.groups.len(),
        "live tail session started"
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = closing.changed() => {
                let _ = tx.send(exception("SessionStreamingException", "The server is shutting down.")).await;
                return;
            }
        }
        if started.elapsed() >= SESSION_LIMIT {
            let _ = tx
                .send(exception(
                    "SessionTimeoutException",
                    "Session timed out after three hours.",
                ))
                .await;
            return;
        }
        let (store_c, plan_c, cursors_c) = (Arc::clone(&store), Arc::clone(&plan), cursors.clone());
        let collected =
            tokio::task::spawn_blocking(move || collect(&*store_c, &plan_c, cursors_c)).await;
        let (results, sampled, next) = match collected {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                let _ = tx
                    .send(exception("SessionStreamingException", &e.to_string()))
                    .await;
                return;
            }
            Err(_) => return,
        };
        cursors = next;
        let update = event(
            "sessionUpdate",
            &json!({ "sessionMetadata": { "sampled": sampled }, "sessionResults": results }),
        );
        match tx.try_send(update) {
            Ok(()) => {}
            // A slow client: this update is dropped, the session goes on.
            Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!(session_id, "live tail session ended by the client");
                return;
            }
        }
    }
}

/// The new events of every group since `cursors`, at most [`MAX_EVENTS_PER_UPDATE`]
/// (an even sample when there are more), and the cursors after them.
fn collect(
    store: &dyn LogStore,
    plan: &LiveTailPlan,
    mut cursors: Vec<u64>,
) -> Result<(Vec<Value>, bool, Vec<u64>), StoreError> {
    let mut found = Vec::new();
    let mut skipped = false;
    for ((identifier, group), cursor) in plan.groups.iter().zip(cursors.iter_mut()) {
        let mut pages = 0;
        loop {
            if pages == MAX_PAGES_PER_UPDATE {
                // Events arrive faster than a session reads them: skip to the present
                // rather than fall further behind (the update says it is a sample).
                *cursor = store.committed_seq().max(*cursor);
                skipped = true;
                break;
            }
            pages += 1;
            let page = match store.read_committed(
                group,
                *cursor,
                PageLimit {
                    max_events: 10_000,
                    max_bytes: 8 << 20,
                    overhead_per_event: 26,
                },
            ) {
                Ok(page) => page,
                // A group deleted during the session simply has no more events.
                Err(StoreError::GroupNotFound(_)) => break,
                Err(e) => return Err(e),
            };
            let done = page.events.is_empty();
            *cursor = page.read_to.max(*cursor);
            for e in page.events {
                if plan.admits(&e.stream, &e.message) {
                    found.push(json!({
                        "logStreamName": &*e.stream,
                        "logGroupIdentifier": identifier,
                        "message": e.message,
                        "timestamp": e.key.timestamp,
                        "ingestionTime": e.ingestion_time,
                    }));
                }
            }
            if done {
                break;
            }
        }
    }
    let sampled = skipped || found.len() > MAX_EVENTS_PER_UPDATE;
    if found.len() > MAX_EVENTS_PER_UPDATE {
        let step = found.len() as f64 / MAX_EVENTS_PER_UPDATE as f64;
        found = (0..MAX_EVENTS_PER_UPDATE)
            .map(|i| found[(i as f64 * step) as usize].take())
            .collect();
    }
    Ok((found, sampled, cursors))
}

/// An event message of the stream.
fn event(event_type: &str, payload: &Value) -> Bytes {
    message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", "application/json"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An exception message that ends the stream.
fn exception(exception_type: &str, text: &str) -> Bytes {
    message(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", "application/json"),
        ],
        json!({ "message": text }).to_string().as_bytes(),
    )
}

/// One event-stream message: `total_len | headers_len | prelude_crc | headers | payload
/// | message_crc`, big-endian, CRC-32 (IEEE); string headers only (type 7).
pub(crate) fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut encoded_headers = Vec::new();
    for (name, value) in headers {
        encoded_headers.push(name.len() as u8);
        encoded_headers.extend_from_slice(name.as_bytes());
        encoded_headers.push(7);
        encoded_headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        encoded_headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + encoded_headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(encoded_headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&encoded_headers);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Bytes::from(out)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn messages_are_framed_with_both_checksums() {
        let m = message(&[(":event-type", "x")], b"{}");
        let total = u32::from_be_bytes(m[0..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, m.len());
        assert_eq!(headers, 1 + 11 + 1 + 2 + 1);
        assert_eq!(
            u32::from_be_bytes(m[8..12].try_into().unwrap()),
            crc32(&m[..8])
        );
        assert_eq!(&m[12 + headers..total - 4], b"{}");
        assert_eq!(
            u32::from_be_bytes(m[total - 4..].try_into().unwrap()),
            crc32(&m[..total - 4])
        );
    }
}
