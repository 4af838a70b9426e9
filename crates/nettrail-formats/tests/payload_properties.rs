//! Properties of the subscription and Firehose codecs: what is written reads back
//! equal, through every wrapper.

use nettrail_formats::firehose::{FirehoseRecord, FirehoseRequest};
use nettrail_formats::subscription::{MessageType, SubscriptionEvent, SubscriptionMessage};
use proptest::prelude::*;

fn any_message() -> impl Strategy<Value = SubscriptionMessage> {
    (
        any::<bool>(),
        "[0-9]{12}",
        "[a-zA-Z0-9/_.-]{1,40}",
        "[ -~]{1,40}",
        proptest::collection::vec("[a-z-]{1,20}", 0..3),
        proptest::collection::vec(("[0-9]{56}", 0i64..4_000_000_000_000, "\\PC{1,80}"), 0..20),
    )
        .prop_map(
            |(data, owner, log_group, log_stream, subscription_filters, events)| {
                SubscriptionMessage {
                    message_type: if data {
                        MessageType::Data
                    } else {
                        MessageType::Control
                    },
                    owner,
                    log_group,
                    log_stream,
                    subscription_filters,
                    log_events: events
                        .into_iter()
                        .map(|(id, timestamp, message)| SubscriptionEvent {
                            id,
                            timestamp,
                            message,
                        })
                        .collect(),
                }
            },
        )
}

proptest! {
    #[test]
    fn subscription_documents_read_back_through_every_wrapper(message in any_message()) {
        prop_assert_eq!(&SubscriptionMessage::from_json(message.to_json().as_bytes()).unwrap(), &message);
        prop_assert_eq!(&SubscriptionMessage::from_gzip(&message.to_gzip()).unwrap(), &message);
        prop_assert_eq!(&SubscriptionMessage::from_lambda_event(&message.to_lambda_event()).unwrap(), &message);
        prop_assert_eq!(FirehoseRecord::decode(&message.to_gzip()).unwrap(), FirehoseRecord::Subscription(message));
    }

    #[test]
    fn firehose_requests_read_back(request_id in "[a-f0-9-]{1,36}", timestamp in 0i64..4_000_000_000_000, records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20)) {
        let request = FirehoseRequest { request_id, timestamp, records };
        prop_assert_eq!(FirehoseRequest::from_json(request.to_json().as_bytes()).unwrap(), request);
    }
}
