//! The columnar tier: compaction moves sealed segments into parts, and every read
//! answers exactly as before, whichever tier holds the events, across reopening.

use std::path::Path;

use nettrail_store::{
    Direction, EventKey, FieldCondition, FieldConditions, FileStore, FileStoreConfig,
    ImportCheckpoint, LogStore, NewEvent, PageLimit, ScanHint,
};

mod common;

use common::*;

fn config(dir: &Path) -> FileStoreConfig {
    let mut config = FileStoreConfig::new(dir);
    config.compaction = false; // compacted by the tests, when they say
    config.part_row_group_rows = 16; // several row groups per part
    config
}

fn open(dir: &Path) -> FileStore {
    FileStore::open(config(dir)).expect("open store")
}

#[test]
fn compaction_changes_no_answer_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let streams = ["a", "b", "c"];
    let store = open(dir.path());
    create(&store, "/vpc/flows", &streams);
    write(&store, "/vpc/flows", &streams, 120, base, 0);
    let before = answers(&store, "/vpc/flows", base);
    assert_eq!(before.forward.len(), 360);

    let stats = store.compact(true).unwrap();
    assert!(stats.segments_retired >= 1, "{stats:?}");
    assert_eq!(stats.events_written, 360);
    assert_eq!(stats.parts_written, 3, "one part per hour of event time");
    assert!(
        files_under(&dir.path().join("groups"), ".seg").is_empty(),
        "segments retired"
    );
    let parts = files_under(&dir.path().join("lake"), ".parquet");
    assert_eq!(parts.len(), 3);
    let relative = parts[0]
        .strip_prefix(dir.path())
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        relative.starts_with("lake/vpc_flows-")
            && relative.contains(
                "/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year="
            ),
        "{relative}"
    );
    assert_eq!(answers(&store, "/vpc/flows", base), before);
    assert!(store.group("/vpc/flows").unwrap().stored_bytes > 0);

    // More events into the same hours: the next compaction merges them into the
    // hours' parts, still one part per hour.
    write(&store, "/vpc/flows", &streams, 40, base, 5);
    let before = answers(&store, "/vpc/flows", base);
    assert_eq!(before.forward.len(), 480);
    let stats = store.compact(true).unwrap();
    assert_eq!(stats.parts_written, 3);
    assert_eq!(stats.parts_removed, 3);
    assert_eq!(answers(&store, "/vpc/flows", base), before);
    drop(store);
    assert_eq!(
        files_under(&dir.path().join("lake"), ".parquet").len(),
        3,
        "replaced parts deleted"
    );

    let store = open(dir.path());
    assert_eq!(answers(&store, "/vpc/flows", base), before);
    // Sequence numbers go on past the parts' after reopening.
    let ack = store
        .append(
            "/vpc/flows",
            "a",
            &[NewEvent {
                timestamp: base,
                message: "x".into(),
            }],
        )
        .unwrap();
    assert!(ack.first_seq > before.committed.last().unwrap().0);
}

#[test]
fn a_stream_deleted_and_created_again_does_not_see_compacted_events() {
    let dir = tempfile::tempdir().unwrap();
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let store = open(dir.path());
    create(&store, "g", &["a", "b"]);
    write(&store, "g", &["a", "b"], 30, base, 0);
    store.compact(true).unwrap();
    store.delete_stream("g", "a").unwrap();
    store.create_stream("g", "a", now()).unwrap();
    let rows = scan_all(&store, &whole_group("g", Direction::Forward), usize::MAX);
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| r.0 == "b"));
    assert_eq!(store.stream("g", "a").unwrap().stored_bytes, 0);
    // The next compaction of those hours drops the deleted stream's rows.
    write(&store, "g", &["b"], 5, base, 1);
    store.compact(true).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.stream("g", "a").unwrap().first_event_timestamp, None);
}

#[test]
fn expired_parts_are_dropped_and_deleted_groups_lose_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "old", &["s"]);
    let base = (now() - 3 * 86_400_000) / HOUR * HOUR;
    write(&store, "old", &["s"], 20, base, 0);
    store.compact(true).unwrap();
    assert_eq!(files_under(&dir.path().join("lake"), ".parquet").len(), 3);
    store.set_retention("old", Some(1)).unwrap();
    let stats = store.compact(false).unwrap();
    assert_eq!(stats.parts_removed, 3);
    assert_eq!(stats.parts_written, 0);
    assert_eq!(store.group("old").unwrap().stored_bytes, 0);
    assert!(files_under(&dir.path().join("lake"), ".parquet").is_empty());

    create(&store, "gone", &["s"]);
    write(
        &store,
        "gone",
        &["s"],
        20,
        (now() - 5 * HOUR) / HOUR * HOUR,
        0,
    );
    store.compact(true).unwrap();
    assert!(!files_under(&dir.path().join("lake"), ".parquet").is_empty());
    store.delete_group("gone").unwrap();
    assert!(files_under(&dir.path().join("lake"), ".parquet").is_empty());
}

#[test]
fn a_part_mostly_expired_is_rewritten_without_its_expired_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "g", &["s"]);
    // One event a minute for one hour, three days ago.
    let hour = (now() - 3 * 86_400_000) / HOUR * HOUR;
    let messages: Vec<String> = (0..60).map(|i| format!("event {i}")).collect();
    let events: Vec<NewEvent<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| NewEvent {
            timestamp: hour + i as i64 * 60_000,
            message: m.as_str().into(),
        })
        .collect();
    store.append("g", "s", &events).unwrap();
    store.compact(true).unwrap();
    let before = store.group("g").unwrap().stored_bytes;
    store.set_retention("g", Some(1)).unwrap();
    let day = 86_400_000;
    // A quarter expired: left as it is (expired rows are not served).
    assert_eq!(
        store.compact_as_of(hour + 15 * 60_000 + day).unwrap(),
        Default::default()
    );
    // Three quarters expired: rewritten with the last 15 events.
    let stats = store.compact_as_of(hour + 45 * 60_000 + day).unwrap();
    assert_eq!(
        (
            stats.parts_written,
            stats.parts_removed,
            stats.events_written
        ),
        (1, 1, 15)
    );
    assert!(store.group("g").unwrap().stored_bytes < before);
    // Then nothing more until the rest expires, and then the part goes.
    assert_eq!(
        store.compact_as_of(hour + 50 * 60_000 + day).unwrap(),
        Default::default()
    );
    let stats = store.compact_as_of(hour + 61 * 60_000 + day).unwrap();
    assert_eq!((stats.parts_written, stats.parts_removed), (0, 1));
}

#[test]
fn import_checkpoints_in_compacted_segments_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "g", &["s"]);
    let base = now() - HOUR;
    let events = [NewEvent {
        timestamp: base,
        message: "imported".into(),
    }];
    let checkpoint = ImportCheckpoint {
        version: "etag-1".into(),
        parts: 1,
        complete: true,
    };
    store
        .import_many(
            "g",
            &[("s", &events)],
            "s3://b/p",
            "key-1",
            checkpoint.clone(),
        )
        .unwrap();
    store.compact(true).unwrap();
    drop(store);
    let store = open(dir.path());
    let found = store.import_checkpoints("g", "s3://b/p").unwrap();
    assert_eq!(found.get("key-1"), Some(&checkpoint));
}

#[test]
fn orphan_parts_of_an_unfinished_compaction_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "g", &["s"]);
    write(&store, "g", &["s"], 10, now() - 2 * HOUR, 0);
    drop(store);
    let orphan_dir = dir.path().join(
        "lake/g/aws-account-id=1/aws-service=logs/aws-region=r/year=2026/month=01/day=01/hour=00",
    );
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("part-000000000099.parquet"), b"half a part").unwrap();
    std::fs::write(orphan_dir.join("part-000000000100.parquet.tmp"), b"x").unwrap();
    let store = open(dir.path());
    assert!(files_under(&dir.path().join("lake"), "").is_empty());
    assert!(!orphan_dir.exists());
    assert_eq!(
        store
            .scan(
                &whole_group("g", Direction::Forward),
                &|_| true,
                PageLimit::UNLIMITED
            )
            .unwrap()
            .events
            .len(),
        10
    );
}

#[test]
fn a_declared_custom_format_gives_typed_columns_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let store = open(dir.path());
    let format = "${srcaddr} ${dstaddr} ${dstport} ${action} ${bytes}";
    let records: Vec<(i64, String)> = (0..200i64)
        .map(|i| {
            let ts = base + (i % 60) * 60_000;
            let action = if i % 3 == 0 { "REJECT" } else { "ACCEPT" };
            (
                ts,
                format!(
                    "10.0.0.{} 10.1.0.9 {} {action} {}",
                    i % 50,
                    22 + i % 2,
                    i * 7
                ),
            )
        })
        .collect();
    let put = |store: &FileStore, group: &str| {
        create(store, group, &["s"]);
        let events: Vec<NewEvent<'_>> = records
            .iter()
            .map(|(ts, m)| NewEvent {
                timestamp: *ts,
                message: m.as_str().into(),
            })
            .collect();
        store.append(group, "s", &events).unwrap();
    };
    put(&store, "/undeclared");
    put(&store, "/declared");
    store
        .set_flow_log_format("/declared", Some(format))
        .unwrap();
    let before = answers(&store, "/declared", base);
    store.compact(true).unwrap();
    let layout = |store: &FileStore, group: &str| {
        let snapshot = store.tier_snapshot(group).unwrap();
        assert_eq!(snapshot.parts.len(), 1, "{group}");
        snapshot.parts[0].layout.clone()
    };
    assert_eq!(layout(&store, "/undeclared"), "messages");
    assert!(
        layout(&store, "/declared").starts_with("flow ${srcaddr}"),
        "{}",
        layout(&store, "/declared")
    );
    // Held as columns, regenerated byte for byte.
    assert_eq!(answers(&store, "/declared", base), before);
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.group("/declared").unwrap().flow_log_format.as_deref(),
        Some(format)
    );
    assert_eq!(store.group("/undeclared").unwrap().flow_log_format, None);
    assert_eq!(answers(&store, "/declared", base), before);
    store.set_flow_log_format("/declared", None).unwrap();
    assert_eq!(store.group("/declared").unwrap().flow_log_format, None);
}

#[test]
fn a_hint_skips_row_groups_that_cannot_match_and_changes_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let store = open(dir.path());
    create(&store, "/vpc/flows", &["a", "b"]);
    write(&store, "/vpc/flows", &["a", "b"], 200, base, 0);
    store.compact(true).unwrap();
    let request = whole_group("/vpc/flows", Direction::Forward);
    let scan = |needles: &[&str]| {
        let needles: Vec<String> = needles.iter().map(|n| n.to_string()).collect();
        let hint = ScanHint {
            must_contain: &needles,
            fields: None,
        };
        let filter = |m: &str| needles.iter().all(|n| m.contains(n.as_str()));
        store
            .scan_with_hint(&request, &filter, &hint, PageLimit::UNLIMITED)
            .unwrap()
    };
    let without_hint = |needles: &[&str]| {
        let filter = |m: &str| needles.iter().all(|n| m.contains(n));
        store.scan(&request, &filter, PageLimit::UNLIMITED).unwrap()
    };
    // Absent from every field: every row group is left out after reading its text
    // columns only.
    // So is a number longer than any number column's values spell (by their
    // statistics): it could only be in text.
    for needle in ["203.0.113.77", "98765432101"] {
        let absent = scan(&[needle]);
        assert!(absent.events.is_empty());
        assert_eq!(absent.stats.row_groups_read, 0, "{needle}");
        assert!(absent.stats.row_groups_skipped > 0);
    }
    let first_start = (base / 1000).to_string();
    // Present, in text columns, in integer columns, in the raw messages of lines that
    // are not flow records, spanning fields: the same page with and without the hint.
    for needles in [
        &["REJECT"][..],
        &["10.0.3.", "ACCEPT"],
        &["4004"],
        &["not a flow record"],
        &["22 6"],
        &["eni-", "REJECT", "172.31.16.21"],
        &["123456789010"],
        &[first_start.as_str()],
    ] {
        let hinted = scan(needles);
        let plain = without_hint(needles);
        let keys = |p: &nettrail_store::ScanPage| -> Vec<EventKey> {
            p.events.iter().map(|e| e.key).collect()
        };
        assert!(!plain.events.is_empty(), "{needles:?}");
        assert_eq!(keys(&hinted), keys(&plain), "{needles:?}");
        if needles == ["10.0.3.", "ACCEPT"] {
            // Rows whose text fields lack a needle go before their message is built.
            assert!(hinted.stats.rows_skipped_by_fields > 0);
        }
    }
}

/// The conditions of `[v, a, e, s, d, sp > 40100, dp, p, pk, b, st, en, action =
/// REJECT, status]` on a 14-field message.
struct RejectsFromHighPorts;

impl FieldConditions for RejectsFromHighPorts {
    fn of_width(&self, width: usize) -> Vec<FieldCondition<'_>> {
        if width != 14 {
            return Vec::new();
        }
        vec![
            FieldCondition {
                field: 5,
                holds: Box::new(|v| v.parse::<i64>().is_ok_and(|port| port > 40100)),
            },
            FieldCondition {
                field: 12,
                holds: Box::new(|v| v == "REJECT"),
            },
        ]
    }
}

#[test]
fn field_conditions_skip_typed_rows_before_their_text_and_change_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let store = open(dir.path());
    create(&store, "/vpc/flows", &["a", "b"]);
    write(&store, "/vpc/flows", &["a", "b"], 200, base, 0);
    store.compact(true).unwrap();
    let filter = |m: &str| {
        let fields: Vec<&str> = m.split(' ').collect();
        fields.len() == 14
            && fields[5].parse::<i64>().is_ok_and(|port| port > 40100)
            && fields[12] == "REJECT"
    };
    let mut row_groups_skipped = 0;
    for direction in [Direction::Forward, Direction::Backward] {
        let request = whole_group("/vpc/flows", direction);
        for max_events in [7, usize::MAX] {
            let limit = PageLimit {
                max_events,
                ..PageLimit::UNLIMITED
            };
            let hint = ScanHint {
                must_contain: &[],
                fields: Some(&RejectsFromHighPorts),
            };
            let hinted = store
                .scan_with_hint(&request, &filter, &hint, limit)
                .unwrap();
            let plain = store.scan(&request, &filter, limit).unwrap();
            let rows = |p: &nettrail_store::ScanPage| -> Vec<(EventKey, String)> {
                p.events
                    .iter()
                    .map(|e| (e.key, e.message.clone()))
                    .collect()
            };
            assert!(!plain.events.is_empty());
            assert_eq!(rows(&hinted), rows(&plain), "{direction:?} {max_events}");
            assert_eq!(hinted.more, plain.more);
            assert!(hinted.stats.rows_skipped_by_fields > 0);
            row_groups_skipped += hinted.stats.row_groups_skipped;
            assert_eq!(plain.stats.rows_skipped_by_fields, 0);
        }
    }
    // Row groups of accepted records only (and no line kept as text) are left out
    // from their statistics.
    assert!(row_groups_skipped > 0);
}

#[test]
fn full_parts_are_not_rewritten_by_later_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let mut config = config(dir.path());
    config.part_merge_max_rows = 50;
    let store = FileStore::open(config).unwrap();
    let streams = ["a", "b", "c"];
    create(&store, "/vpc/flows", &streams);
    write(&store, "/vpc/flows", &streams, 120, base, 0);
    let stats = store.compact(true).unwrap();
    assert_eq!(stats.parts_written, 3, "{stats:?}");
    // Each hour's part has ~120 rows, past the merge limit: new events of those hours
    // go into new parts beside them.
    write(&store, "/vpc/flows", &streams, 30, base, 5);
    let before = answers(&store, "/vpc/flows", base);
    let stats = store.compact(true).unwrap();
    assert_eq!(stats.parts_removed, 0, "{stats:?}");
    assert_eq!(stats.events_written, 90);
    assert_eq!(files_under(&dir.path().join("lake"), ".parquet").len(), 6);
    assert_eq!(answers(&store, "/vpc/flows", base), before);
    // The small new parts take the next events of their hours.
    write(&store, "/vpc/flows", &streams, 3, base, 9);
    let stats = store.compact(true).unwrap();
    assert!(
        stats.parts_removed >= 1 && stats.parts_removed == stats.parts_written,
        "{stats:?}"
    );
    assert_eq!(files_under(&dir.path().join("lake"), ".parquet").len(), 6);
}
