//! CloudWatch Logs subscription payloads: the JSON document (DATA_MESSAGE with the events
//! of one log stream, or CONTROL_MESSAGE), gzip-compressed as Kinesis and Firehose
//! records carry it, and wrapped as a Lambda event (`{"awslogs":{"data":BASE64}}`).

use std::io::{Read, Write};

use base64::Engine;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

/// Largest decompressed document read (a subscription batch is at most about 1 MiB of
/// events; this leaves room and stops a gzip bomb).
pub const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// `messageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageType {
    /// Events that matched a subscription filter.
    #[serde(rename = "DATA_MESSAGE")]
    Data,
    /// A reachability check, to be dropped by consumers.
    #[serde(rename = "CONTROL_MESSAGE")]
    Control,
}

/// One subscription document, keys in AWS's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionMessage {
    /// DATA_MESSAGE or CONTROL_MESSAGE.
    pub message_type: MessageType,
    /// The account that owns the log group (`CloudwatchLogs` in control messages).
    pub owner: String,
    /// The log group of the events.
    pub log_group: String,
    /// Their log stream (one per document).
    pub log_stream: String,
    /// The names of the filters that matched.
    pub subscription_filters: Vec<String>,
    /// The events.
    pub log_events: Vec<SubscriptionEvent>,
}

/// One event of a subscription document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionEvent {
    /// The 56-digit event id, a string (empty in control messages).
    pub id: String,
    /// Unix milliseconds.
    pub timestamp: i64,
    /// The message.
    pub message: String,
}

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not gzip, or a corrupt or truncated gzip stream.
    #[error("not a readable gzip stream: {0}")]
    Gzip(std::io::Error),
    /// The document decompresses to more than [`MAX_DOCUMENT_BYTES`].
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes decompressed")]
    TooLarge,
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(base64::DecodeError),
    /// Not the JSON expected.
    #[error("not a subscription document: {0}")]
    Json(serde_json::Error),
}

/// Gunzips `bytes` (all members), refusing more than `limit` bytes of output.
pub fn gunzip(bytes: &[u8], limit: u64) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(PayloadError::Gzip)?;
    if out.len() as u64 > limit {
        return Err(PayloadError::TooLarge);
    }
    Ok(out)
}

/// Whether `bytes` start like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

impl SubscriptionMessage {
    /// The control message CloudWatch Logs sends to check a destination
    /// (`destination`: `Kinesis stream`, `Firehose`, …).
    pub fn control(destination: &str, timestamp: i64) -> SubscriptionMessage {
        SubscriptionMessage {
            message_type: MessageType::Control,
            owner: "CloudwatchLogs".into(),
            log_group: String::new(),
            log_stream: String::new(),
            subscription_filters: Vec::new(),
            log_events: vec![SubscriptionEvent {
                id: String::new(),
                timestamp,
                message: format!(
                    "CWL CONTROL MESSAGE: Checking health of destination {destination}."
                ),
            }],
        }
    }

    /// The document as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }

    /// Reads a JSON document (unknown keys, such as `policyLevel`, are ignored).
    pub fn from_json(bytes: &[u8]) -> Result<SubscriptionMessage, PayloadError> {
        serde_json::from_slice(bytes).map_err(PayloadError::Json)
    }

    /// The document gzip-compressed at level 6, as a Kinesis or Firehose record.
    pub fn to_gzip(&self) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
        encoder
            .write_all(self.to_json().as_bytes())
            .expect("writing to a Vec");
        encoder.finish().expect("writing to a Vec")
    }

    /// Reads a gzip-compressed document.
    pub fn from_gzip(bytes: &[u8]) -> Result<SubscriptionMessage, PayloadError> {
        SubscriptionMessage::from_json(&gunzip(bytes, MAX_DOCUMENT_BYTES)?)
    }

    /// The Lambda invocation event: `{"awslogs":{"data":"<base64(gzip(json))>"}}`.
    pub fn to_lambda_event(&self) -> String {
        let data = base64::engine::general_purpose::STANDARD.encode(self.to_gzip());
        serde_json::json!({ "awslogs": { "data": data } }).to_string()
    }

    /// Reads a Lambda invocation event.
    pub fn from_lambda_event(text: &str) -> Result<SubscriptionMessage, PayloadError> {
        #[derive(Deserialize)]
        struct Event {
            awslogs: Data,
        }
        #[derive(Deserialize)]
        struct Data {
            data: String,
        }
        let event: Event = serde_json::from_str(text).map_err(PayloadError::Json)?;
        let gzip = base64::engine::general_purpose::STANDARD
            .decode(event.awslogs.data.trim())
            .map_err(PayloadError::Base64)?;
        SubscriptionMessage::from_gzip(&gzip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flow log payload of network-log-formats.md A.7.1 (completed where the source
    /// was cut short).
    const FLOW_PAYLOAD: &str = r#"{"messageType":"DATA_MESSAGE","owner":"647604195155","logGroup":"VPCFlowLogGroup","logStream":"eni-0c19436730cc350ae-all","subscriptionFilters":["flowlogstest"],"logEvents":[{"id":"37976342262953223179038144714945888722564951965555163136","timestamp":1702918083000,"message":"2 647604195155 eni-0c19436730cc350ae 10.5.81.140 10.90.0.45 53598 443 6 2 120 1702918083 1702918083 ACCEPT OK"}]}"#;

    /// The control message as consumers capture it (cloudwatch-logs-api.md 4.2).
    const CONTROL: &str = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1498519943285,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}"#;

    #[test]
    fn documents_read_and_write_back_byte_for_byte() {
        for text in [FLOW_PAYLOAD, CONTROL] {
            let message = SubscriptionMessage::from_json(text.as_bytes()).unwrap();
            assert_eq!(message.to_json(), text);
        }
        assert_eq!(
            SubscriptionMessage::control("Kinesis stream", 1498519943285).to_json(),
            CONTROL
        );
    }

    #[test]
    fn gzip_and_lambda_wrappers_round_trip() {
        let message = SubscriptionMessage::from_json(FLOW_PAYLOAD.as_bytes()).unwrap();
        let gzip = message.to_gzip();
        assert!(is_gzip(&gzip));
        assert_eq!(SubscriptionMessage::from_gzip(&gzip).unwrap(), message);
        let lambda = message.to_lambda_event();
        assert!(lambda.starts_with(r#"{"awslogs":{"data":"H4sI"#));
        assert_eq!(
            SubscriptionMessage::from_lambda_event(&lambda).unwrap(),
            message
        );
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        assert!(matches!(
            SubscriptionMessage::from_gzip(b"not gzip"),
            Err(PayloadError::Gzip(_))
        ));
        let message = SubscriptionMessage::from_json(FLOW_PAYLOAD.as_bytes()).unwrap();
        let gzip = message.to_gzip();
        assert!(matches!(
            SubscriptionMessage::from_gzip(&gzip[..gzip.len() / 2]),
            Err(PayloadError::Gzip(_))
        ));
        assert!(matches!(
            SubscriptionMessage::from_lambda_event(r#"{"awslogs":{"data":"!!"}}"#),
            Err(PayloadError::Base64(_))
        ));
        // A bomb: 64 MiB of zeros.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0u8; 64 << 20]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(matches!(
            SubscriptionMessage::from_gzip(&bomb),
            Err(PayloadError::TooLarge)
        ));
    }
}
