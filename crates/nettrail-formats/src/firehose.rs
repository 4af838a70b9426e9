//! The Amazon Data Firehose HTTP endpoint delivery protocol (version 1.0): the request
//! Firehose POSTs (records as base64) and the response it expects.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::subscription::{
    gunzip, is_gzip, MessageType, PayloadError, SubscriptionMessage, MAX_DOCUMENT_BYTES,
};

/// `X-Amz-Firehose-Protocol-Version` (`1.0`).
pub const PROTOCOL_VERSION_HEADER: &str = "x-amz-firehose-protocol-version";
/// `X-Amz-Firehose-Request-Id`: the same on every retry of a batch.
pub const REQUEST_ID_HEADER: &str = "x-amz-firehose-request-id";
/// `X-Amz-Firehose-Access-Key`: the endpoint's only credential.
pub const ACCESS_KEY_HEADER: &str = "x-amz-firehose-access-key";
/// `X-Amz-Firehose-Source-Arn`.
pub const SOURCE_ARN_HEADER: &str = "x-amz-firehose-source-arn";
/// `X-Amz-Firehose-Common-Attributes`.
pub const COMMON_ATTRIBUTES_HEADER: &str = "x-amz-firehose-common-attributes";

/// Records in one request at most.
pub const MAX_RECORDS: usize = 10_000;

/// A delivery request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseRequest {
    /// `requestId` (equal to the header).
    pub request_id: String,
    /// `timestamp`, Unix ms.
    pub timestamp: i64,
    /// The records, decoded from base64.
    pub records: Vec<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    request_id: String,
    timestamp: i64,
    records: Vec<WireRecord>,
}

#[derive(Serialize, Deserialize)]
struct WireRecord {
    data: String,
}

/// Why a delivery request is refused.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// Not the JSON of a delivery request.
    #[error("not a Firehose delivery request: {0}")]
    Json(serde_json::Error),
    /// A record that is not base64.
    #[error("record {index}: not base64: {source}")]
    Base64 {
        /// 0-based record index.
        index: usize,
        /// Why.
        source: base64::DecodeError,
    },
    /// More records than the protocol allows.
    #[error("{0} records; a request holds at most {MAX_RECORDS}")]
    TooManyRecords(usize),
}

impl FirehoseRequest {
    /// Reads a request body (already decompressed if it was sent with
    /// `Content-Encoding: gzip`).
    pub fn from_json(body: &[u8]) -> Result<FirehoseRequest, FirehoseError> {
        let wire: WireRequest = serde_json::from_slice(body).map_err(FirehoseError::Json)?;
        if wire.records.len() > MAX_RECORDS {
            return Err(FirehoseError::TooManyRecords(wire.records.len()));
        }
        let records = wire
            .records
            .into_iter()
            .enumerate()
            .map(|(index, r)| {
                base64::engine::general_purpose::STANDARD
                    .decode(r.data)
                    .map_err(|source| FirehoseError::Base64 { index, source })
            })
            .collect::<Result<_, _>>()?;
        Ok(FirehoseRequest {
            request_id: wire.request_id,
            timestamp: wire.timestamp,
            records,
        })
    }

    /// The request body Firehose sends.
    pub fn to_json(&self) -> String {
        let wire = WireRequest {
            request_id: self.request_id.clone(),
            timestamp: self.timestamp,
            records: self
                .records
                .iter()
                .map(|r| WireRecord {
                    data: base64::engine::general_purpose::STANDARD.encode(r),
                })
                .collect(),
        };
        serde_json::to_string(&wire).expect("serialisable")
    }
}

/// What a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirehoseRecord {
    /// A CloudWatch Logs subscription document (from a subscription filter whose
    /// destination is the Firehose stream).
    Subscription(SubscriptionMessage),
    /// Anything else (a flow log line, an application record), decompressed if it was
    /// gzip.
    Raw(Vec<u8>),
}

impl FirehoseRecord {
    /// Classifies a record: gzip is decompressed, and a subscription document is
    /// recognised by its `messageType`.
    pub fn decode(data: &[u8]) -> Result<FirehoseRecord, PayloadError> {
        let plain = if is_gzip(data) {
            gunzip(data, MAX_DOCUMENT_BYTES)?
        } else {
            data.to_vec()
        };
        if plain.first() == Some(&b'{') {
            if let Ok(message) = SubscriptionMessage::from_json(&plain) {
                return Ok(FirehoseRecord::Subscription(message));
            }
        }
        Ok(FirehoseRecord::Raw(plain))
    }

    /// Whether this is a control message, which consumers drop.
    pub fn is_control(&self) -> bool {
        matches!(self, FirehoseRecord::Subscription(m) if m.message_type == MessageType::Control)
    }
}

/// The endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseResponse {
    /// The request's id.
    pub request_id: String,
    /// Unix ms of the answer.
    pub timestamp: i64,
    /// Why the request failed (absent on success).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_message: Option<String>,
}

impl FirehoseResponse {
    /// The body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request of AWS's documentation (the record data cut short there is replaced).
    const REQUEST: &str = r#"{"requestId":"ed4acda5-034f-9f42-bba1-f29aea6d7d8f","timestamp":1578090901599,"records":[{"data":"aGVsbG8="},{"data":"aGVsbG8gd29ybGQ="}]}"#;

    #[test]
    fn requests_read_and_write_back() {
        let request = FirehoseRequest::from_json(REQUEST.as_bytes()).unwrap();
        assert_eq!(
            request.records,
            vec![b"hello".to_vec(), b"hello world".to_vec()]
        );
        assert_eq!(request.to_json(), REQUEST);
        let response = FirehoseResponse {
            request_id: request.request_id,
            timestamp: 1578090903599,
            error_message: None,
        };
        assert_eq!(
            response.to_json(),
            r#"{"requestId":"ed4acda5-034f-9f42-bba1-f29aea6d7d8f","timestamp":1578090903599}"#
        );
    }

    #[test]
    fn records_are_classified() {
        let message = SubscriptionMessage::control("Firehose", 1);
        let record = FirehoseRecord::decode(&message.to_gzip()).unwrap();
        assert!(record.is_control());
        assert_eq!(
            FirehoseRecord::decode(b"2 1 eni-1 - - - - - - - 1 2 - NODATA\n").unwrap(),
            FirehoseRecord::Raw(b"2 1 eni-1 - - - - - - - 1 2 - NODATA\n".to_vec())
        );
        assert!(FirehoseRecord::decode(&[0x1f, 0x8b, 1, 2]).is_err());
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let err = FirehoseRequest::from_json(
            br#"{"requestId":"r","timestamp":1,"records":[{"data":"%%%"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("record 0: not base64"), "{err}");
        assert!(matches!(
            FirehoseRequest::from_json(b"[]"),
            Err(FirehoseError::Json(_))
        ));
    }
}
