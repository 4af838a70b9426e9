//! Subscription documents (JSON, gzip, Lambda events) and Firehose delivery requests and
//! records: any input is parsed or refused, never a panic, and within the size limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nettrail_formats::firehose::{FirehoseRecord, FirehoseRequest};
use nettrail_formats::subscription::SubscriptionMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = SubscriptionMessage::from_json(data) {
        assert_eq!(SubscriptionMessage::from_gzip(&message.to_gzip()).unwrap(), message);
    }
    let _ = SubscriptionMessage::from_gzip(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SubscriptionMessage::from_lambda_event(text);
    }
    if let Ok(request) = FirehoseRequest::from_json(data) {
        assert_eq!(FirehoseRequest::from_json(request.to_json().as_bytes()).unwrap(), request);
        for record in &request.records {
            let _ = FirehoseRecord::decode(record);
        }
    }
    let _ = FirehoseRecord::decode(data);
});
