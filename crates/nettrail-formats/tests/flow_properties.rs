//! Properties of the flow log codecs: what is written reads back equal, and no input
//! makes a parser panic.

use nettrail_formats::flow::s3::{FileFormat, Layout, ObjectKey, S3Destination};
use nettrail_formats::flow::{Field, FieldKind, FieldValue, FlowRecord, LogFormat};
use proptest::prelude::*;
use proptest::sample::subsequence;

fn any_format() -> impl Strategy<Value = LogFormat> {
    let all: Vec<Field> = Field::all().collect();
    subsequence(all, 1..24)
        .prop_shuffle()
        .prop_map(|fields| LogFormat::new(fields).unwrap())
}

fn any_value(kind: FieldKind) -> BoxedStrategy<FieldValue> {
    let text = "[A-Za-z0-9.:_/=+-]{1,24}".prop_filter("not -", |t| t != "-");
    match kind {
        FieldKind::Int32 => prop_oneof![
            Just(FieldValue::Missing),
            any::<i32>().prop_map(|v| FieldValue::Int(i64::from(v)))
        ]
        .boxed(),
        FieldKind::Int64 => prop_oneof![
            Just(FieldValue::Missing),
            any::<i64>().prop_map(FieldValue::Int)
        ]
        .boxed(),
        FieldKind::String => {
            prop_oneof![Just(FieldValue::Missing), text.prop_map(FieldValue::Text)].boxed()
        }
    }
}

fn any_record() -> impl Strategy<Value = (LogFormat, FlowRecord)> {
    any_format().prop_flat_map(|format| {
        let values: Vec<BoxedStrategy<FieldValue>> = format
            .fields()
            .iter()
            .map(|f| any_value(f.kind()))
            .collect();
        (
            Just(format),
            values.prop_map(|values| FlowRecord { values }),
        )
    })
}

proptest! {
    #[test]
    fn records_read_back_equal((format, record) in any_record()) {
        let line = format.record_line(&record);
        prop_assert_eq!(format.parse_record(&line).unwrap(), record);
        // and the format itself survives its spec and header forms
        prop_assert_eq!(&LogFormat::parse(&format.to_spec()).unwrap(), &format);
        prop_assert_eq!(&LogFormat::from_header(&format.header()).unwrap(), &format);
        prop_assert!(LogFormat::is_header(&format.header()));
    }

    #[test]
    fn any_line_is_a_record_or_an_error(format in any_format(), line in ".{0,200}") {
        if let Ok(record) = format.parse_record(&line) {
            // Accepted lines are written back with single spaces.
            let written = format.record_line(&record);
            let normalised: Vec<&str> = line.trim_end_matches('\r').split(' ').filter(|t| !t.is_empty()).collect();
            prop_assert_eq!(written, normalised.join(" "));
        }
    }

    #[test]
    fn object_keys_read_back_equal(
        layout in prop::sample::select(Layout::ALL.to_vec()),
        prefix in "([a-z0-9-]{1,12}/){0,3}",
        account in "[0-9]{12}",
        region in "[a-z]{2}-[a-z]{4,9}-[1-4]",
        flow_log in "fl-[0-9a-f]{8,17}",
        slot in 0i64..4_102_444_800,
        hash in "[0-9a-f]{8}",
        parquet in any::<bool>(),
    ) {
        let file_format = if parquet { FileFormat::Parquet } else { FileFormat::PlainText };
        let destination = S3Destination { prefix, account_id: account, region, layout, flow_log_id: flow_log, file_format };
        let key = ObjectKey::for_slot(&destination, slot, &hash);
        prop_assert_eq!(key.slot_start() % 300, 0);
        prop_assert!(key.slot_start() <= slot && slot < key.slot_start() + 300);
        prop_assert_eq!(ObjectKey::parse(&key.key()).unwrap(), key);
    }

    #[test]
    fn any_key_is_parsed_or_refused(key in "(AWSLogs/)?([a-z0-9=_.-]{0,14}/){0,9}[a-z0-9_.-]{0,80}") {
        let _ = ObjectKey::parse(&key);
    }
}
