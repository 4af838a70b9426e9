//! Parts give back every event byte for byte, in key order (or, for flow records both
//! accepted and rejected, in two runs each in key order), whatever its text.

use std::sync::Arc;

use nettrail_columnar::detect::detect_layout;
use nettrail_columnar::file::SharedFile;
use nettrail_columnar::{write_part, PartEvent, PartLayout, PartReader, WriteOptions};
use nettrail_formats::flow::{Field, LogFormat};
use proptest::prelude::*;

fn event(timestamp: i64, seq: u64, stream: &str, message: &str) -> PartEvent {
    PartEvent {
        timestamp,
        seq,
        ingestion_time: timestamp + 5,
        stream: Arc::from(stream),
        message: message.to_owned(),
    }
}

/// Writes `events` as a part of `layout` in a temporary file, reads every row back.
fn round_trip(
    events: &[PartEvent],
    layout: &PartLayout,
    options: &WriteOptions,
) -> (Vec<PartEvent>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part.parquet");
    let mut sorted = events.to_vec();
    let (_, summary) = write_part(
        &mut sorted,
        layout,
        options,
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    assert_eq!(summary.rows, events.len() as u64);
    assert_eq!(
        summary.min_ts,
        events.iter().map(|e| e.timestamp).min().unwrap()
    );
    assert_eq!(
        summary.max_ts,
        events.iter().map(|e| e.timestamp).max().unwrap()
    );
    let reader = PartReader::open(SharedFile::open(&path).unwrap()).unwrap();
    assert_eq!(reader.layout(), layout);
    let mut back = Vec::new();
    for rg in 0..reader.row_groups() {
        for batch in reader.read_row_group(rg, false).unwrap() {
            let batch = batch.unwrap();
            for i in 0..batch.len() {
                back.push(PartEvent {
                    timestamp: batch.timestamp(i),
                    seq: batch.seq(i),
                    ingestion_time: batch.ingestion_time(i),
                    stream: Arc::from(batch.stream(i)),
                    message: batch.message(i).unwrap(),
                });
            }
        }
    }
    let in_key_order = |rows: &[PartEvent]| {
        rows.windows(2)
            .all(|w| (w[0].timestamp, w[0].seq) <= (w[1].timestamp, w[1].seq))
    };
    if reader.in_key_order() {
        assert!(in_key_order(&back), "rows are in key order");
    } else {
        // Two runs, each in key order: the rejected flow records last.
        let action = layout
            .flow_format()
            .unwrap()
            .position(Field::ACTION)
            .unwrap();
        let rejected = |e: &PartEvent| e.message.split(' ').nth(action) == Some("REJECT");
        let split = back.partition_point(|e| !rejected(e));
        assert!(split > 0 && split < back.len());
        assert!(back[split..].iter().all(rejected), "rejected records last");
        assert!(in_key_order(&back[..split]) && in_key_order(&back[split..]));
        back.sort_by_key(|e| (e.timestamp, e.seq));
    }
    (back, summary.typed_rows)
}

const FLOWS: &[&str] = &[
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK",
    "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
    "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA",
    "2 123456789010 eni-1235b8ca123456789 2001:db8::1 2001:db8::2 443 50000 17 3 300 1418530010 1418530070 ACCEPT OK",
];

#[test]
fn flow_events_come_back_byte_for_byte_in_key_order() {
    let mut events = Vec::new();
    for (i, line) in FLOWS.iter().enumerate() {
        events.push(event(1_000 - i as i64, 10 + i as u64, "eni-a-all", line));
    }
    // Text the columns cannot regenerate: kept raw.
    events.push(event(
        999,
        3,
        "eni-b-all",
        "2  123456789010 eni-x 1.1.1.1 2.2.2.2 1 2 6 1 1 1 2 ACCEPT OK",
    ));
    events.push(event(
        999,
        2,
        "eni-b-all",
        "2 123456789010 eni-x 1.1.1.1 2.2.2.2 1 2 6 1 1 1 2 ACCEPT OK\r",
    ));
    events.push(event(500, 1, "eni-b-all", "not a flow record at all"));
    events.push(event(
        500,
        4,
        "eni-b-all",
        "2 123456789010 eni-x 1.1.1.1 2.2.2.2 01 2 6 1 1 1 2 ACCEPT OK",
    ));
    let layout = PartLayout::Flow(LogFormat::default_vpc());
    let (back, typed) = round_trip(&events, &layout, &WriteOptions::default());
    assert_eq!(typed, FLOWS.len() as u64, "the four odd lines are kept raw");
    let mut expected = events.clone();
    expected.sort_by_key(|e| (e.timestamp, e.seq));
    assert_eq!(back, expected);
}

#[test]
fn small_row_groups_keep_key_order_across_groups() {
    let events: Vec<PartEvent> = (0..1000)
        .map(|i| {
            event(
                (i * 7919) % 1000,
                i as u64,
                &format!("s{}", i % 3),
                FLOWS[i as usize % FLOWS.len()],
            )
        })
        .collect();
    let options = WriteOptions {
        max_row_group_rows: 64,
        ..WriteOptions::default()
    };
    let (back, _) = round_trip(
        &events,
        &PartLayout::Flow(LogFormat::default_vpc()),
        &options,
    );
    let mut expected = events.clone();
    expected.sort_by_key(|e| (e.timestamp, e.seq));
    assert_eq!(back, expected);
}

#[test]
fn rejected_records_are_a_run_that_statistics_leave_out_of_other_searches() {
    let events: Vec<PartEvent> = (0..1000)
        .map(|i| event(i, i as u64, "s", FLOWS[i as usize % 2]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part.parquet");
    let options = WriteOptions {
        max_row_group_rows: 64,
        ..WriteOptions::default()
    };
    let layout = PartLayout::Flow(LogFormat::default_vpc());
    write_part(
        &mut events.clone(),
        &layout,
        &options,
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    let reader = PartReader::open(SharedFile::open(&path).unwrap()).unwrap();
    assert!(!reader.in_key_order());
    let rejected = |v: &str| v == "REJECT";
    let accepted = |v: &str| v == "ACCEPT";
    let passing = |test: &dyn Fn(&str) -> bool| -> Vec<usize> {
        (0..reader.row_groups())
            .filter(|&rg| reader.row_group_may_pass(rg, &[(12, test)]))
            .collect()
    };
    let rows = |groups: &[usize]| -> usize {
        groups
            .iter()
            .map(|&rg| {
                reader
                    .read_row_group(rg, true)
                    .unwrap()
                    .map(|b| b.unwrap().len())
                    .sum::<usize>()
            })
            .sum()
    };
    // 500 of each, in row groups of their own: 8 + 8 of at most 64 rows.
    let (with_rejects, with_accepts) = (passing(&rejected), passing(&accepted));
    assert_eq!((rows(&with_rejects), rows(&with_accepts)), (500, 500));
    assert_eq!(with_rejects.len() + with_accepts.len(), reader.row_groups());
    // Statistics tell nothing of number columns; a text column of one value that
    // fails leaves every group out.
    assert_eq!(
        (0..reader.row_groups())
            .filter(|&rg| reader.row_group_may_pass(rg, &[(6, &|v: &str| v == "9")]))
            .count(),
        reader.row_groups(),
        "dstport is a number column"
    );
    assert_eq!(
        (0..reader.row_groups())
            .filter(|&rg| reader.row_group_may_pass(rg, &[(2, &|v: &str| v == "x")]))
            .count(),
        0,
        "one interface in every group, and not x"
    );
}

#[test]
fn message_parts_keep_any_text() {
    let events = vec![
        event(5, 1, "a", "{\"json\": [1, 2]}"),
        event(4, 2, "b", "ünïcödé  with  spaces\r"),
        event(4, 3, "a", "x"),
    ];
    let (back, _) = round_trip(&events, &PartLayout::Messages, &WriteOptions::default());
    let mut expected = events.clone();
    expected.sort_by_key(|e| (e.timestamp, e.seq));
    assert_eq!(back, expected);
}

#[test]
fn a_file_that_is_not_a_part_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    std::fs::write(&path, b"PAR1 not really").unwrap();
    assert!(PartReader::open(SharedFile::open(&path).unwrap()).is_err());
}

fn field_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-".to_owned()),
        (0i64..100_000).prop_map(|v| v.to_string()),
        "[a-z0-9.:-]{1,12}",
    ]
}

proptest! {
    /// Whatever the text, a flow part gives it back: typed when it regenerates, raw
    /// when it does not.
    #[test]
    fn any_text_round_trips_through_a_flow_part(
        lines in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(field_token(), 14).prop_map(|t| t.join(" ")),
                prop::collection::vec(field_token(), 1..16).prop_map(|t| t.join("  ")),
                ".{1,40}",
            ],
            1..40,
        ),
    ) {
        let events: Vec<PartEvent> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| event(i as i64 % 5, i as u64, "s", l))
            .collect();
        let layout = detect_layout(lines.iter().map(String::as_str), None);
        let (back, _) = round_trip(&events, &layout, &WriteOptions::default());
        let mut expected = events.clone();
        expected.sort_by_key(|e| (e.timestamp, e.seq));
        prop_assert_eq!(back, expected);
    }
}

#[test]
fn a_needle_is_looked_for_in_dictionary_pages_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part.parquet");
    let mut events: Vec<PartEvent> = (0..5000u64)
        .map(|i| PartEvent {
            timestamp: 1_418_530_010_000 + i as i64,
            seq: i,
            ingestion_time: 1_418_530_100_000,
            stream: Arc::from("eni-1235b8ca123456789-all"),
            message: format!(
                "2 123456789010 eni-1235b8ca123456789 172.31.16.{} 172.31.16.21 {} 22 6 20 {} 1418530010 1418530070 ACCEPT OK",
                i % 200,
                20000 + i,
                4000 + i * 7
            ),
        })
        .collect();
    let layout = PartLayout::Flow(LogFormat::default_vpc());
    write_part(
        &mut events,
        &layout,
        &WriteOptions::default(),
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    let reader = PartReader::open(SharedFile::open(&path).unwrap()).unwrap();
    let whole = reader.row_group_bytes(0);
    let absent = reader.may_contain(0, &["203.0.113.77".into()]).unwrap();
    assert!(!absent.may_match);
    assert!(
        absent.bytes_read > 0 && absent.bytes_read * 4 < whole,
        "read {} of {whole} bytes",
        absent.bytes_read
    );
    for present in ["172.31.16.199", "ACCEPT", "eni-1235b8ca"] {
        assert!(
            reader.may_contain(0, &[present.into()]).unwrap().may_match,
            "{present}"
        );
    }
    // What a number could hold is never decided from text.
    assert!(reader.may_contain(0, &["99999".into()]).unwrap().may_match);
}

#[test]
fn vpn_log_parts_keep_the_text_and_type_the_keys() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
    use arrow_array::Array;
    use nettrail_formats::vpn::columns::VpnLogKind;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let connected = r#"{"connection-log-type": "connection-attempt", "connection-attempt-status": "successful", "connection-id": "cvpn-connection-abc123abc123abc12", "client-vpn-endpoint-id": "cvpn-endpoint-aaa111bbb222ccc33", "connection-start-time": "2020-03-26 20:37:15", "common-name": "client1", "port": "50096", "ingress-bytes": "0", "connection-end-time": "NA"}"#;
    let reset = "{\n  \"connection-log-type\":\"connection-reset\",\n  \"client-vpn-endpoint-id\":\"cvpn-endpoint-aaa111bbb222ccc33\",\n  \"ingress-bytes\":\"12345678901\",\n  \"connection-end-time\":\"2020-03-26 21:00:00\"\n}";
    let events = vec![
        event(2000, 1, "s", connected),
        event(1000, 2, "s", reset),
        event(1500, 3, "s", "not an entry at all"),
    ];
    let layout = detect_layout(events.iter().map(|e| e.message.as_str()), None);
    assert_eq!(layout, PartLayout::Vpn(VpnLogKind::ClientVpn));
    let (back, typed) = round_trip(&events, &layout, &WriteOptions::default());
    let mut expected = events.clone();
    expected.sort_by_key(|e| (e.timestamp, e.seq));
    assert_eq!(back, expected, "every event's text comes back as it was");
    assert_eq!(typed, 0, "no event is held by its columns alone");

    // What another engine sees: the keys as typed columns, in key order.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vpn.parquet");
    let mut sorted = events.clone();
    write_part(
        &mut sorted,
        &layout,
        &WriteOptions::default(),
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    let batch = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let bytes = column("ingress_bytes");
    let bytes = bytes.as_primitive::<Int64Type>();
    assert_eq!(bytes.value(0), 12_345_678_901);
    assert!(bytes.is_null(1));
    assert_eq!(bytes.value(2), 0);
    let port = column("port");
    assert_eq!(port.as_primitive::<Int32Type>().value(2), 50096);
    let end = column("connection_end_time");
    let end = end.as_primitive::<TimestampMillisecondType>();
    assert_eq!(end.value(0), 1_585_256_400_000);
    assert!(end.is_null(2), "NA is null");
    assert_eq!(column("common_name").as_string::<i32>().value(2), "client1");
}
