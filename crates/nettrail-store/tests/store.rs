//! Behaviour of the embedded store through the `LogStore` trait: ordering, reads by
//! time range and cursor, persistence, crash recovery, retention.

use std::collections::BTreeMap;
use std::path::Path;

use nettrail_store::{
    Direction, EventKey, FileStore, FileStoreConfig, ImportCheckpoint, LogStore, MetricFilter,
    MetricId, MetricPoint, MetricTransformationDef, MinuteStats, NewEvent, NewGroup, PageLimit,
    ScanRequest, ScanStats, StoreError, StreamSelector,
};
use proptest::prelude::*;

mod common;

use common::whole_group;

const NOW: i64 = 1_763_000_000_000;

fn open(dir: &Path) -> FileStore {
    FileStore::open(FileStoreConfig::new(dir)).expect("open store")
}

fn group(name: &str) -> NewGroup {
    NewGroup {
        name: name.into(),
        class: "STANDARD".into(),
        ..NewGroup::default()
    }
}

fn events<'a>(ts_and_messages: &[(i64, &'a str)]) -> Vec<NewEvent<'a>> {
    ts_and_messages
        .iter()
        .map(|(t, m)| NewEvent {
            timestamp: *t,
            message: (*m).into(),
        })
        .collect()
}

fn all(store: &FileStore, group: &str, direction: Direction) -> Vec<(String, i64, String)> {
    read(store, &whole_group(group, direction)).0
}

/// Every event a request selects, in the request's direction (pages come back
/// ascending; a backward read is reversed here so tests read in scan order).
fn read(store: &FileStore, req: &ScanRequest) -> (Vec<(String, i64, String)>, ScanStats) {
    let page = store
        .scan(req, &|_| true, PageLimit::UNLIMITED)
        .expect("scan");
    assert!(!page.more, "an unlimited page holds everything");
    let mut out: Vec<_> = page
        .events
        .into_iter()
        .map(|e| (e.stream.to_string(), e.key.timestamp, e.message))
        .collect();
    if req.direction == Direction::Backward {
        out.reverse();
    }
    (out, page.stats)
}

fn first(max_events: usize) -> PageLimit {
    PageLimit {
        max_events,
        ..PageLimit::UNLIMITED
    }
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for group in std::fs::read_dir(dir.join("groups")).unwrap() {
        for seg in std::fs::read_dir(group.unwrap().path()).unwrap() {
            files.push(seg.unwrap().path());
        }
    }
    files.sort();
    files
}

#[test]
fn events_come_back_in_timestamp_order_across_streams_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_group(group("/g"), NOW).unwrap();
    store.create_stream("/g", "a", NOW).unwrap();
    store.create_stream("/g", "b", NOW).unwrap();
    store
        .append("/g", "a", &events(&[(10, "a10"), (30, "a30")]))
        .unwrap();
    store
        .append("/g", "b", &events(&[(20, "b20"), (30, "b30")]))
        .unwrap();
    // A late write with earlier timestamps, out of order within the call.
    store
        .append("/g", "a", &events(&[(25, "a25"), (5, "a5")]))
        .unwrap();

    let forward: Vec<String> = all(&store, "/g", Direction::Forward)
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(forward, ["a5", "a10", "b20", "a25", "a30", "b30"]);
    let backward: Vec<String> = all(&store, "/g", Direction::Backward)
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(backward, ["b30", "a30", "a25", "b20", "a10", "a5"]);

    let only_b = ScanRequest {
        streams: StreamSelector::Names(vec!["b".into()]),
        ..whole_group("/g", Direction::Forward)
    };
    assert_eq!(read(&store, &only_b).0.len(), 2);
    let time_range = ScanRequest {
        start_time: Some(20),
        end_time: Some(30),
        ..whole_group("/g", Direction::Forward)
    };
    let in_range: Vec<String> = read(&store, &time_range)
        .0
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(in_range, ["b20", "a25"], "start inclusive, end exclusive");
}

#[test]
fn reads_by_time_range_skip_blocks_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_group(group("/g"), NOW).unwrap();
    store.create_stream("/g", "s", NOW).unwrap();
    for batch in 0..100i64 {
        let evs: Vec<NewEvent> = (0..10)
            .map(|i| NewEvent {
                timestamp: batch * 1000 + i,
                message: format!("event {batch}-{i}").into(),
            })
            .collect();
        store.append("/g", "s", &evs).unwrap();
    }
    let req = ScanRequest {
        start_time: Some(50_000),
        end_time: Some(52_000),
        ..whole_group("/g", Direction::Forward)
    };
    let (found, stats) = read(&store, &req);
    assert_eq!(found.len(), 20);
    assert_eq!(stats.blocks_total, 100);
    assert_eq!(
        stats.blocks_read, 2,
        "only the two blocks in range are read"
    );

    // A page of a few events reads only the first block, and says there is more.
    let page = store
        .scan(&whole_group("/g", Direction::Forward), &|_| true, first(4))
        .unwrap();
    assert_eq!(page.events.len(), 4);
    assert!(page.more);
    assert_eq!(page.stats.blocks_read, 1);
    // The same from the end.
    let page = store
        .scan(&whole_group("/g", Direction::Backward), &|_| true, first(4))
        .unwrap();
    assert_eq!(page.stats.blocks_read, 1);
    let stamps: Vec<i64> = page.events.iter().map(|e| e.key.timestamp).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "pages are ascending"
    );
}

#[test]
fn pages_are_bounded_by_bytes_and_hold_only_what_the_filter_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_group(group("/g"), NOW).unwrap();
    store.create_stream("/g", "s", NOW).unwrap();
    let batch: Vec<(i64, String)> = (0..100)
        .map(|i| {
            (
                i,
                format!("{} {i:03}", if i % 3 == 0 { "hit" } else { "miss" }),
            )
        })
        .collect();
    let evs: Vec<NewEvent> = batch
        .iter()
        .map(|(t, m)| NewEvent {
            timestamp: *t,
            message: m.as_str().into(),
        })
        .collect();
    store.append("/g", "s", &evs).unwrap();

    let hits = |m: &str| m.starts_with("hit");
    let page = store
        .scan(
            &whole_group("/g", Direction::Forward),
            &hits,
            PageLimit::UNLIMITED,
        )
        .unwrap();
    assert_eq!(page.events.len(), 34);
    assert!(!page.more);
    assert!(page.events.iter().all(|e| hits(&e.message)));

    // "hit 000" is 7 bytes, 33 with the overhead: a 100-byte page is full after four.
    let limit = PageLimit {
        max_events: 10_000,
        max_bytes: 100,
        overhead_per_event: 26,
    };
    let page = store
        .scan(&whole_group("/g", Direction::Forward), &hits, limit)
        .unwrap();
    let got: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(got, ["hit 000", "hit 003", "hit 006", "hit 009"]);
    assert!(page.more);
    let page = store
        .scan(&whole_group("/g", Direction::Backward), &hits, limit)
        .unwrap();
    let got: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(got, ["hit 090", "hit 093", "hit 096", "hit 099"]);

    // An event larger than the whole page still comes back alone.
    let tiny = PageLimit {
        max_bytes: 1,
        ..limit
    };
    let page = store
        .scan(&whole_group("/g", Direction::Forward), &hits, tiny)
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert!(page.more);
}

#[test]
fn cursors_resume_strictly_after_or_before_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_group(group("/g"), NOW).unwrap();
    store.create_stream("/g", "s", NOW).unwrap();
    store
        .append("/g", "s", &events(&[(1, "x"), (1, "y"), (2, "z")]))
        .unwrap();
    let keys: Vec<EventKey> = store
        .scan(
            &whole_group("/g", Direction::Forward),
            &|_| true,
            PageLimit::UNLIMITED,
        )
        .unwrap()
        .events
        .iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "keys are unique and increasing"
    );
    let after_first = ScanRequest {
        from: Some(keys[0]),
        ..whole_group("/g", Direction::Forward)
    };
    let rest: Vec<String> = read(&store, &after_first)
        .0
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(
        rest,
        ["y", "z"],
        "equal timestamps are told apart by sequence"
    );
    let before_last = ScanRequest {
        from: Some(keys[2]),
        ..whole_group("/g", Direction::Backward)
    };
    let earlier: Vec<String> = read(&store, &before_last)
        .0
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(earlier, ["y", "x"]);
    let past_end = ScanRequest {
        from: Some(EventKey::MAX),
        ..whole_group("/g", Direction::Forward)
    };
    assert!(read(&store, &past_end).0.is_empty());
}

#[test]
fn everything_survives_a_reopen_and_sequence_numbers_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let first_ack = {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        store.create_stream("/g", "s", NOW).unwrap();
        store.set_retention("/g", Some(3653)).unwrap();
        let mut tags = BTreeMap::new();
        tags.insert("team".to_owned(), "net".to_owned());
        store.set_tags("/g", tags).unwrap();
        let ack = store
            .append("/g", "s", &events(&[(NOW, "one"), (NOW + 1, "two")]))
            .unwrap();
        store.shutdown();
        ack
    };
    let store = open(dir.path());
    let info = store.group("/g").unwrap();
    assert_eq!(info.retention_days, Some(3653));
    assert_eq!(info.tags.get("team").map(String::as_str), Some("net"));
    assert!(info.stored_bytes > 0);
    let streams = store.streams("/g").unwrap();
    assert_eq!(streams[0].first_event_timestamp, Some(NOW));
    assert_eq!(streams[0].last_event_timestamp, Some(NOW + 1));
    assert_eq!(all(&store, "/g", Direction::Forward).len(), 2);
    let ack = store
        .append("/g", "s", &events(&[(NOW + 2, "three")]))
        .unwrap();
    assert!(ack.first_seq >= first_ack.first_seq + 2);
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path());
    assert!(matches!(
        FileStore::open(FileStoreConfig::new(dir.path())),
        Err(StoreError::Locked(_))
    ));
}

#[test]
fn a_torn_tail_is_cut_off_and_acknowledged_events_stay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        store.create_stream("/g", "s", NOW).unwrap();
        store.append("/g", "s", &events(&[(1, "kept-1")])).unwrap();
        store.append("/g", "s", &events(&[(2, "kept-2")])).unwrap();
        store.shutdown();
    }
    let segment = segment_files(dir.path()).pop().unwrap();
    let intact = std::fs::read(&segment).unwrap();
    // Every possible cut inside a third, unacknowledged block.
    let third_block = {
        let scratch = tempfile::tempdir().unwrap();
        let store = open(scratch.path());
        store.create_group(group("/g"), NOW).unwrap();
        store.create_stream("/g", "s", NOW).unwrap();
        store.append("/g", "s", &events(&[(3, "torn")])).unwrap();
        store.shutdown();
        let bytes = std::fs::read(segment_files(scratch.path()).pop().unwrap()).unwrap();
        bytes[16..].to_vec()
    };
    for cut in 1..third_block.len() {
        let mut torn = intact.clone();
        torn.extend_from_slice(&third_block[..cut]);
        std::fs::write(&segment, &torn).unwrap();
        let store = open(dir.path());
        let messages: Vec<String> = all(&store, "/g", Direction::Forward)
            .into_iter()
            .map(|e| e.2)
            .collect();
        assert_eq!(messages, ["kept-1", "kept-2"], "cut at {cut}");
        store.shutdown();
        assert_eq!(
            std::fs::read(&segment).unwrap(),
            intact,
            "the tail is truncated on disk"
        );
    }
}

#[test]
fn a_damaged_block_is_never_served_and_later_blocks_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        store.create_stream("/g", "s", NOW).unwrap();
        store.append("/g", "s", &events(&[(1, "damaged")])).unwrap();
        store.append("/g", "s", &events(&[(2, "intact")])).unwrap();
        store.shutdown();
    }
    let segment = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = 16 + 72 + 5; // inside the first block's payload
    bytes[last] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    let store = open(dir.path());
    let messages: Vec<String> = all(&store, "/g", Direction::Forward)
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(messages, ["intact"]);
}

#[test]
fn damage_after_open_is_an_error_not_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_group(group("/g"), NOW).unwrap();
    store.create_stream("/g", "s", NOW).unwrap();
    store
        .append("/g", "s", &events(&[(1, "soon damaged")]))
        .unwrap();
    let segment = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let err = store
        .scan(
            &whole_group("/g", Direction::Forward),
            &|_| true,
            PageLimit::UNLIMITED,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn expired_events_stop_being_returned_and_their_segments_are_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let now = nettrail_now();
    let day = 86_400_000;
    {
        let store = open(dir.path());
        store.create_group(group("/g"), now).unwrap();
        store.create_stream("/g", "s", now).unwrap();
        store
            .append("/g", "s", &events(&[(now - 3 * day, "old")]))
            .unwrap();
        store.shutdown();
    }
    let store = open(dir.path()); // the old segment is sealed now
    store
        .append("/g", "s", &events(&[(now - 1000, "fresh")]))
        .unwrap();
    let before = store.group("/g").unwrap().stored_bytes;
    store.set_retention("/g", Some(1)).unwrap();
    let messages: Vec<String> = all(&store, "/g", Direction::Forward)
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(
        messages,
        ["fresh"],
        "expired events are not returned even before a sweep"
    );
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(store.sweep().unwrap(), 1);
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "the old segment is deleted"
    );
    assert!(store.group("/g").unwrap().stored_bytes < before);
    let messages: Vec<String> = all(&store, "/g", Direction::Forward)
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(messages, ["fresh"], "the unexpired event is untouched");
    assert_eq!(store.sweep().unwrap(), 0);
}

#[test]
fn an_idle_segment_is_sealed_and_reclaimed_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileStoreConfig::new(dir.path());
    config.segment_max_age = std::time::Duration::from_millis(200);
    let store = FileStore::open(config).unwrap();
    let now = nettrail_now();
    store.create_group(group("/g"), now).unwrap();
    store.create_stream("/g", "s", now).unwrap();
    store
        .append("/g", "s", &events(&[(now - 3 * 86_400_000, "old")]))
        .unwrap();
    store.set_retention("/g", Some(1)).unwrap();
    assert_eq!(
        store.sweep().unwrap(),
        0,
        "the segment is still the active one"
    );
    // The writer seals segments past their age about once a second, even with no writes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.sweep().unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle segment was never sealed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(store.group("/g").unwrap().stored_bytes, 0);
    // Writing again opens a fresh segment.
    store.append("/g", "s", &events(&[(now, "new")])).unwrap();
    assert_eq!(all(&store, "/g", Direction::Forward).len(), 1);
}

#[test]
fn deleted_streams_and_groups_do_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        store.create_stream("/g", "s", NOW).unwrap();
        store.append("/g", "s", &events(&[(1, "gone")])).unwrap();
        store.delete_stream("/g", "s").unwrap();
        store.create_stream("/g", "s", NOW).unwrap();
        assert!(all(&store, "/g", Direction::Forward).is_empty());
        store.create_group(group("/h"), NOW).unwrap();
        store.create_stream("/h", "s", NOW).unwrap();
        store
            .append("/h", "s", &events(&[(1, "gone too")]))
            .unwrap();
        store.delete_group("/h").unwrap();
        store.shutdown();
    }
    let store = open(dir.path());
    assert!(all(&store, "/g", Direction::Forward).is_empty());
    assert!(matches!(
        store.group("/h"),
        Err(StoreError::GroupNotFound(_))
    ));
    store.create_group(group("/h"), NOW).unwrap();
    store.create_stream("/h", "s", NOW).unwrap();
    assert!(all(&store, "/h", Direction::Forward).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("groups"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn concurrent_writers_are_all_acknowledged_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_group(group("/g"), NOW).unwrap();
    for w in 0..8 {
        store.create_stream("/g", &format!("w{w}"), NOW).unwrap();
    }
    std::thread::scope(|scope| {
        for w in 0..8 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..50 {
                    let event = NewEvent {
                        timestamp: i,
                        message: format!("w{w}-{i}").into(),
                    };
                    store.append("/g", &format!("w{w}"), &[event]).unwrap();
                }
            });
        }
    });
    let found = all(&store, "/g", Direction::Forward);
    assert_eq!(found.len(), 400);
    let unique: std::collections::HashSet<_> = found.iter().map(|e| &e.2).collect();
    assert_eq!(unique.len(), 400);
}

fn nettrail_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The committed fixture is a data directory written by format version 1. If this test
/// fails, a change broke reading existing data: add a migration instead of changing the
/// fixture. Regenerate it only for a new format version, with
/// `NETTRAIL_WRITE_FIXTURE=1 cargo test -p nettrail-store --test store format_v1_fixture`.
#[test]
fn format_v1_fixture_still_reads() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    if std::env::var_os("NETTRAIL_WRITE_FIXTURE").is_some() {
        let _ = std::fs::remove_dir_all(&fixture);
        let store = open(&fixture);
        store.create_group(group("/vpc/flows"), NOW).unwrap();
        store
            .create_stream("/vpc/flows", "eni-0a1b2c3d4e5f60718-all", NOW)
            .unwrap();
        store
            .append(
                "/vpc/flows",
                "eni-0a1b2c3d4e5f60718-all",
                &events(&fixture_events()),
            )
            .unwrap();
        store.create_group(group("/vpn/tunnels"), NOW).unwrap();
        store
            .create_stream("/vpn/tunnels", "vpn-0123-203.0.113.5", NOW)
            .unwrap();
        store.set_retention("/vpn/tunnels", Some(30)).unwrap();
        store.shutdown();
        std::fs::remove_file(fixture.join("LOCK")).unwrap();
    }
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&fixture, copy.path());
    let store = open(copy.path());
    let found = all(&store, "/vpc/flows", Direction::Forward);
    let expected: Vec<(String, i64, String)> = fixture_events()
        .iter()
        .map(|(t, m)| ("eni-0a1b2c3d4e5f60718-all".to_owned(), *t, (*m).to_owned()))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        store.group("/vpn/tunnels").unwrap().retention_days,
        Some(30)
    );
    assert_eq!(store.streams("/vpn/tunnels").unwrap().len(), 1);
    // The empty group's directory is not in the fixture (git keeps no empty folders).
    store
        .append(
            "/vpn/tunnels",
            "vpn-0123-203.0.113.5",
            &events(&[(NOW, "{}")]),
        )
        .unwrap();
}

fn fixture_events() -> Vec<(i64, &'static str)> {
    vec![
        (1_418_530_010_000, "2 123456789010 eni-0a1b2c3d4e5f60718 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"),
        (1_418_530_070_000, "2 123456789010 eni-0a1b2c3d4e5f60718 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"),
        (1_418_530_070_000, "2 123456789010 eni-0a1b2c3d4e5f60718 - - - - - - - 1431280876 1431280934 - NODATA"),
    ]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A scan agrees with sorting every written event by (timestamp, write order).
    #[test]
    fn scans_agree_with_a_sorted_reference(
        writes in proptest::collection::vec((0usize..3, proptest::collection::vec(0i64..50, 1..6)), 1..20),
        start in proptest::option::of(0i64..50),
        take in 1usize..40,
        page_bytes in 1usize..300,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        for s in 0..3 {
            store.create_stream("/g", &format!("s{s}"), NOW).unwrap();
        }
        let mut reference = Vec::new();
        for (n, (stream, stamps)) in writes.iter().enumerate() {
            let mut stamps = stamps.clone();
            stamps.sort();
            let evs: Vec<NewEvent> = stamps.iter().enumerate().map(|(i, t)| NewEvent { timestamp: *t, message: format!("{n}.{i}").into() }).collect();
            store.append("/g", &format!("s{stream}"), &evs).unwrap();
            reference.extend(evs.iter().map(|e| (e.timestamp, e.message.to_string())));
        }
        reference.sort_by_key(|e| e.0); // stable: write order breaks ties, as sequence does
        let reference: Vec<_> = reference.into_iter().filter(|e| start.is_none_or(|s| e.0 >= s)).collect();
        let req = ScanRequest { start_time: start, ..whole_group("/g", Direction::Forward) };
        let forward: Vec<_> = read(&store, &req).0.into_iter().map(|e| (e.1, e.2)).collect();
        prop_assert_eq!(&forward, &reference);
        let req = ScanRequest { start_time: start, ..whole_group("/g", Direction::Backward) };
        let mut backward: Vec<_> = read(&store, &req).0.into_iter().map(|e| (e.1, e.2)).collect();
        backward.reverse();
        prop_assert_eq!(&backward, &reference);
        // Paging with cursors yields the same sequence.
        let mut paged = Vec::new();
        let mut from = None;
        loop {
            let req = ScanRequest { start_time: start, from, ..whole_group("/g", Direction::Forward) };
            let page = store.scan(&req, &|_| true, PageLimit { max_events: take, max_bytes: page_bytes, overhead_per_event: 26 }).unwrap();
            prop_assert!(page.events.len() <= take);
            let Some(last) = page.events.last() else {
                prop_assert!(!page.more || from.is_some());
                break;
            };
            from = Some(last.key);
            let more = page.more;
            paged.extend(page.events.into_iter().map(|e| (e.key.timestamp, e.message)));
            if !more { break; }
        }
        prop_assert_eq!(&paged, &reference);
        // Paging backward from the end yields it too, page by page from the back.
        let mut back_pages: Vec<Vec<(i64, String)>> = Vec::new();
        let mut from = None;
        loop {
            let req = ScanRequest { start_time: start, from, ..whole_group("/g", Direction::Backward) };
            let page = store.scan(&req, &|_| true, PageLimit { max_events: take, max_bytes: page_bytes, overhead_per_event: 26 }).unwrap();
            let Some(head) = page.events.first() else { break };
            from = Some(head.key);
            let more = page.more;
            back_pages.push(page.events.into_iter().map(|e| (e.key.timestamp, e.message)).collect());
            if !more { break; }
        }
        let back: Vec<_> = back_pages.into_iter().rev().flatten().collect();
        prop_assert_eq!(&back, &reference);
    }
}

#[test]
fn import_checkpoints_survive_reopen_and_go_with_their_group() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = |parts, complete| ImportCheckpoint {
        version: "etag-1".into(),
        parts,
        complete,
    };
    {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        store
            .set_import_checkpoint("/g", "s3://b/p", "k1", checkpoint(1, false))
            .unwrap();
        store
            .set_import_checkpoint("/g", "s3://b/p", "k1", checkpoint(3, true))
            .unwrap();
        store
            .set_import_checkpoint("/g", "/other", "k2", checkpoint(1, false))
            .unwrap();
        store.shutdown();
    }
    // Twice: once replaying the mutations, once the rewritten snapshot.
    for _ in 0..2 {
        let store = open(dir.path());
        let got = store.import_checkpoints("/g", "s3://b/p").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["k1"], checkpoint(3, true));
        assert_eq!(store.import_checkpoints("/g", "/other").unwrap().len(), 1);
        assert!(store
            .import_checkpoints("/g", "nothing")
            .unwrap()
            .is_empty());
        store.shutdown();
    }
    let store = open(dir.path());
    store.delete_group("/g").unwrap();
    store.create_group(group("/g"), NOW).unwrap();
    assert!(store
        .import_checkpoints("/g", "s3://b/p")
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.import_checkpoints("/none", "x"),
        Err(StoreError::GroupNotFound(_))
    ));
}

/// A crash after an import part's commit but before its journal record: the checkpoint
/// committed with the events (an import checkpoint block) brings it back on open, so a
/// resumed import does not send the part again.
#[test]
fn an_import_checkpoint_is_durable_with_its_events_even_if_the_journal_record_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = |version: &str, parts, complete| ImportCheckpoint {
        version: version.into(),
        parts,
        complete,
    };
    let journal = dir.path().join("meta.journal");
    let journal_len = {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        store.create_stream("/g", "eni-1-all", NOW).unwrap();
        // Part 0 of version v1, fully recorded; then part 1 (with events) and, for
        // another object, an empty last part: their journal records will be "lost".
        let part0 = events(&[(NOW - 10, "a"), (NOW - 9, "b")]);
        store
            .import_many(
                "/g",
                &[("eni-1-all", &part0)],
                "src",
                "k1",
                checkpoint("v1", 1, false),
            )
            .unwrap();
        let len = std::fs::metadata(&journal).unwrap().len();
        let part1 = events(&[(NOW - 8, "c")]);
        store
            .import_many(
                "/g",
                &[("eni-1-all", &part1)],
                "src",
                "k1",
                checkpoint("v1", 2, false),
            )
            .unwrap();
        store
            .import_many("/g", &[], "src", "k2", checkpoint("v9", 1, true))
            .unwrap();
        store.shutdown();
        len
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    file.set_len(journal_len).unwrap();
    drop(file);

    for _ in 0..2 {
        let store = open(dir.path());
        let got = store.import_checkpoints("/g", "src").unwrap();
        assert_eq!(got["k1"], checkpoint("v1", 2, false));
        assert_eq!(got["k2"], checkpoint("v9", 1, true));
        let messages: Vec<String> = all(&store, "/g", Direction::Forward)
            .into_iter()
            .map(|(_, _, m)| m)
            .collect();
        assert_eq!(messages, ["a", "b", "c"]);
        // A later checkpoint of the same object (a new version) wins over the blocks'.
        store
            .import_many("/g", &[], "src", "k1", checkpoint("v2", 1, false))
            .unwrap();
        store.shutdown();
        drop(store);
        let store = open(dir.path());
        assert_eq!(
            store.import_checkpoints("/g", "src").unwrap()["k1"],
            checkpoint("v2", 1, false)
        );
        // Back to v1 part 2 for the next round's first check, through a lost record again.
        let len = std::fs::metadata(&journal).unwrap().len();
        store
            .import_many("/g", &[], "src", "k1", checkpoint("v1", 2, false))
            .unwrap();
        store.shutdown();
        drop(store);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&journal)
            .unwrap();
        file.set_len(len).unwrap();
    }
}

/// Subscriptions read a group in commit order from a cursor: every event once, across
/// streams, in pages, across a restart; expired events are passed over.
#[test]
fn committed_events_are_read_in_commit_order_from_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let limit = |n| PageLimit {
        max_events: n,
        max_bytes: usize::MAX,
        overhead_per_event: 26,
    };
    let read_all = |store: &FileStore, mut after: u64, page: usize| {
        let mut seen = Vec::new();
        loop {
            let got = store.read_committed("/g", after, limit(page)).unwrap();
            assert!(got.events.len() <= page);
            if got.events.is_empty() {
                assert_eq!(got.read_to, after.max(got.read_to));
                return (seen, got.read_to);
            }
            for e in &got.events {
                assert!(e.key.seq > after && e.key.seq <= got.read_to);
                seen.push((e.stream.to_string(), e.message.clone()));
            }
            after = got.read_to;
        }
    };
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let expected: Vec<(String, String)>;
    {
        let store = open(dir.path());
        let counter = std::sync::Arc::clone(&calls);
        store.on_commit(std::sync::Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        store.create_group(group("/g"), NOW).unwrap();
        store.create_group(group("/other"), NOW).unwrap();
        for s in ["a", "b"] {
            store.create_stream("/g", s, NOW).unwrap();
        }
        store.create_stream("/other", "x", NOW).unwrap();
        // Timestamps out of commit order: commit order is what counts.
        store
            .append("/g", "a", &events(&[(NOW - 10, "a1"), (NOW - 5, "a2")]))
            .unwrap();
        store
            .append("/other", "x", &events(&[(NOW, "x1")]))
            .unwrap();
        store
            .append("/g", "b", &events(&[(NOW - 60_000, "b1")]))
            .unwrap();
        store
            .append_many(
                "/g",
                &[
                    ("b", &events(&[(NOW - 1, "b2")])),
                    ("a", &events(&[(NOW - 2, "a3")])),
                ],
            )
            .unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
        expected = [
            ("a", "a1"),
            ("a", "a2"),
            ("b", "b1"),
            ("b", "b2"),
            ("a", "a3"),
        ]
        .iter()
        .map(|(s, m)| (s.to_string(), m.to_string()))
        .collect();
        for page in [1, 2, 100] {
            assert_eq!(read_all(&store, 0, page).0, expected);
        }
        store.shutdown();
    }
    let store = open(dir.path());
    let (all, end) = read_all(&store, 0, 2);
    assert_eq!(all, expected);
    // From the middle: only what came after.
    let first_two = store.read_committed("/g", 0, limit(2)).unwrap();
    assert_eq!(read_all(&store, first_two.read_to, 10).0, expected[2..]);
    // Nothing new: an empty page that keeps the cursor where it is.
    let idle = store.read_committed("/g", end, limit(10)).unwrap();
    assert!(idle.events.is_empty() && idle.read_to >= end);
    // Expired events (b1 is a minute old; retention of 1 day does not expire it, an
    // event from 2 days ago does).
    store.create_stream("/g", "old", NOW).unwrap();
    store.set_retention("/g", Some(1)).unwrap();
    store
        .append(
            "/g",
            "old",
            &events(&[(nettrail_now() - 2 * 86_400_000, "expired")]),
        )
        .unwrap();
    assert!(read_all(&store, end, 10).0.is_empty());
    assert!(matches!(
        store.read_committed("/none", 0, limit(1)),
        Err(StoreError::GroupNotFound(_))
    ));
}

#[test]
fn cursors_are_durable_and_go_with_their_group() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        assert_eq!(store.cursor("/g", "to-webhook").unwrap(), None);
        store.set_cursor("/g", "to-webhook", Some(41)).unwrap();
        store.set_cursor("/g", "to-webhook", Some(42)).unwrap();
        store.set_cursor("/g", "to-file", Some(7)).unwrap();
        store.set_cursor("/g", "to-file", None).unwrap();
        store.shutdown();
    }
    let store = open(dir.path());
    assert_eq!(store.cursor("/g", "to-webhook").unwrap(), Some(42));
    assert_eq!(store.cursor("/g", "to-file").unwrap(), None);
    store.delete_group("/g").unwrap();
    assert!(matches!(
        store.cursor("/g", "to-webhook"),
        Err(StoreError::GroupNotFound(_))
    ));
    store.create_group(group("/g"), NOW).unwrap();
    assert_eq!(store.cursor("/g", "to-webhook").unwrap(), None);
}

#[test]
fn backlog_counts_the_events_after_a_cursor_from_headers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_group(group("/g"), NOW).unwrap();
    store.create_stream("/g", "a", NOW).unwrap();
    store.create_stream("/g", "b", NOW).unwrap();
    let first = store
        .append("/g", "a", &events(&[(NOW, "1"), (NOW, "2"), (NOW, "3")]))
        .unwrap();
    store.append("/g", "b", &events(&[(NOW, "4")])).unwrap();
    let whole = store.backlog("/g", 0).unwrap();
    assert_eq!(whole.events, 4);
    assert!(whole.oldest_ingestion_time.is_some());
    // A cursor in the middle of a block counts the rest of it.
    assert_eq!(store.backlog("/g", first.first_seq).unwrap().events, 3);
    assert_eq!(store.backlog("/g", first.first_seq + 2).unwrap().events, 1);
    let all_read = store
        .read_committed("/g", 0, PageLimit::UNLIMITED)
        .unwrap()
        .read_to;
    assert_eq!(store.backlog("/g", all_read).unwrap(), Default::default());
    let counters = store.counters();
    assert_eq!(counters.ingested_events, 4);
    assert!(counters.ingested_bytes >= 4);
}

/// Retention can delete every block; sequence numbers must still never go back, or a
/// subscription's cursor would point past new events and skip them.
#[test]
fn sequence_numbers_never_go_back_when_retention_deleted_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let old = nettrail_now() - 30 * 86_400_000;
    let cursor = {
        let store = open(dir.path());
        store.create_group(group("/g"), NOW).unwrap();
        store.create_stream("/g", "s", NOW).unwrap();
        let ack = store
            .append("/g", "s", &events(&[(old, "a"), (old, "b")]))
            .unwrap();
        let cursor = ack.first_seq + 1;
        store.set_cursor("/g", "to-webhook", Some(cursor)).unwrap();
        store.set_retention("/g", Some(1)).unwrap();
        store.shutdown();
        cursor
    };
    {
        // Sealed on reopen, expired: the sweep deletes every segment.
        let store = open(dir.path());
        assert!(store.sweep().unwrap() >= 1);
        store.shutdown();
    }
    for round in 0..2 {
        let store = open(dir.path());
        let ack = store
            .append("/g", "s", &events(&[(nettrail_now(), "new")]))
            .unwrap();
        assert!(
            ack.first_seq > cursor,
            "round {round}: {} <= {cursor}",
            ack.first_seq
        );
        let page = store
            .read_committed("/g", cursor, PageLimit::UNLIMITED)
            .unwrap();
        assert!(page.events.iter().any(|e| e.message == "new"));
        store.shutdown();
    }
}

fn metric_filter(name: &str, start_after: u64) -> MetricFilter {
    MetricFilter {
        filter_name: name.into(),
        filter_pattern: "REJECT".into(),
        metric_transformations: vec![MetricTransformationDef {
            metric_name: "RejectedFlows".into(),
            metric_namespace: "VPC".into(),
            metric_value: "1".into(),
            default_value: Some(0.0),
            dimensions: BTreeMap::new(),
            unit: Some("Count".into()),
        }],
        apply_on_transformed_logs: false,
        field_selection_criteria: None,
        emit_system_field_dimensions: Vec::new(),
        creation_time: NOW,
        start_after,
    }
}

#[test]
fn metric_filters_and_their_counts_survive_reopen_and_filters_go_with_their_group() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = MetricId {
        namespace: "VPC".into(),
        name: "RejectedFlows".into(),
        dimensions: BTreeMap::new(),
    };
    let minute = nettrail_now() / 60_000 * 60_000;
    let cursor = {
        let store = open(dir.path());
        store.create_group(group("/vpc/flows"), NOW).unwrap();
        store.create_stream("/vpc/flows", "eni-1", NOW).unwrap();
        store
            .put_metric_filter("/vpc/flows", metric_filter("rejects", 0))
            .unwrap();
        store
            .put_metric_filter("/vpc/flows", metric_filter("other", 0))
            .unwrap();
        assert!(store.delete_metric_filter("/vpc/flows", "other").unwrap());
        assert!(!store.delete_metric_filter("/vpc/flows", "other").unwrap());
        let ack = store
            .append("/vpc/flows", "eni-1", &events(&[(minute, "REJECT")]))
            .unwrap();
        let point = MetricPoint {
            metric: rejects.clone(),
            unit: Some("Count".into()),
            minute,
            stats: MinuteStats {
                seen: 1,
                ..MinuteStats::sample(1.0)
            },
        };
        store
            .commit_metrics("/vpc/flows", ack.first_seq, vec![point])
            .unwrap();
        store.shutdown();
        ack.first_seq
    };
    let store = open(dir.path());
    let names: Vec<String> = store
        .metric_filters("/vpc/flows")
        .unwrap()
        .into_iter()
        .map(|f| f.filter_name)
        .collect();
    assert_eq!(names, ["rejects"]);
    assert_eq!(store.metric_cursor("/vpc/flows").unwrap(), Some(cursor));
    let minutes = store.metric_minutes(&rejects, 0, i64::MAX);
    assert_eq!(minutes.len(), 1);
    assert_eq!((minutes[0].0, minutes[0].1.sum), (minute, 1.0));
    // Sequence numbers continue past the metric cursor.
    assert!(store.committed_seq() >= cursor);
    // The group goes, and its filters and cursor with it; the series stays (CloudWatch
    // metrics outlive the log group that fed them) until it expires.
    store.delete_group("/vpc/flows").unwrap();
    assert!(store.all_metric_filters().is_empty());
    store.create_group(group("/vpc/flows"), NOW).unwrap();
    assert_eq!(store.metric_cursor("/vpc/flows").unwrap(), None);
    assert_eq!(store.metric_series().len(), 1);
    store.shutdown();
}
