//! The columnar tier in an object store (`[store] lake = "s3://…"`): the same answers
//! as on disk, whichever tier holds the events, across reopening; nothing of the
//! parts on local disk; replaced, expired and deleted parts leave the bucket; the
//! orphan sweep removes only nettrail's own part objects; a catalog whose parts the
//! bucket does not hold refuses to open. The bucket is object_store's in-memory
//! store (the compat suite runs the same against a real S3 server, moto).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use nettrail_store::{
    Direction, FileStore, FileStoreConfig, LakeConfig, LogStore, NewEvent, ObjectLakeConfig,
    PageLimit, StoreError,
};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

mod common;

use common::*;

const PREFIX: &str = "flows/nettrail";

fn config(dir: &Path, bucket: &Arc<InMemory>) -> FileStoreConfig {
    let mut config = FileStoreConfig::new(dir);
    config.compaction = false; // compacted by the tests, when they say
    config.part_row_group_rows = 16; // several row groups per part
    config.lake = LakeConfig::ObjectStore(ObjectLakeConfig {
        store: Arc::clone(bucket) as Arc<dyn ObjectStore>,
        url: "s3://test-bucket".into(),
        prefix: PREFIX.into(),
    });
    config
}

fn open(dir: &Path, bucket: &Arc<InMemory>) -> FileStore {
    FileStore::open(config(dir, bucket)).expect("open store")
}

/// The bucket's keys (and sizes), sorted.
fn objects(bucket: &Arc<InMemory>) -> Vec<(String, u64)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut out: Vec<(String, u64)> = runtime.block_on(async {
        bucket
            .list(None)
            .map(|m| {
                let m = m.unwrap();
                (m.location.to_string(), m.size)
            })
            .collect()
            .await
    });
    out.sort();
    out
}

fn parts(bucket: &Arc<InMemory>) -> Vec<String> {
    objects(bucket)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.ends_with(".parquet"))
        .collect()
}

/// Waits for the bucket to hold `n` parts (replaced parts are deleted in the
/// background).
fn wait_for_parts(bucket: &Arc<InMemory>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while parts(bucket).len() != n {
        assert!(
            Instant::now() < deadline,
            "{:?} is not {n} parts",
            parts(bucket)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn put_object(bucket: &Arc<InMemory>, key: &str, body: &'static [u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(bucket.put(&ObjectPath::from(key), PutPayload::from_static(body)))
        .unwrap();
}

fn count_events(store: &FileStore, group: &str) -> usize {
    store
        .scan(
            &whole_group(group, Direction::Forward),
            &|_| true,
            PageLimit::UNLIMITED,
        )
        .unwrap()
        .events
        .len()
}

#[test]
fn parts_in_a_bucket_change_no_answer_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Arc::new(InMemory::new());
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let streams = ["a", "b", "c"];
    let store = open(dir.path(), &bucket);
    create(&store, "/vpc/flows", &streams);
    write(&store, "/vpc/flows", &streams, 120, base, 0);
    let before = answers(&store, "/vpc/flows", base);

    let stats = store.compact(true).unwrap();
    assert_eq!(stats.parts_written, 3, "one part per hour of event time");
    let keys = parts(&bucket);
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys[0].starts_with(&format!("{PREFIX}/lake/vpc_flows-"))
            && keys[0].contains(
                "/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year="
            ),
        "{keys:?}"
    );
    assert!(
        files_under(dir.path(), ".parquet").is_empty(),
        "no part on local disk"
    );
    assert!(files_under(&dir.path().join("groups"), ".seg").is_empty());
    assert_eq!(answers(&store, "/vpc/flows", base), before);

    // A second compaction merges into the hours' parts, reading the old ones back
    // from the bucket; the replaced objects go.
    write(&store, "/vpc/flows", &streams, 40, base, 5);
    let before = answers(&store, "/vpc/flows", base);
    let stats = store.compact(true).unwrap();
    assert_eq!((stats.parts_written, stats.parts_removed), (3, 3));
    assert_eq!(answers(&store, "/vpc/flows", base), before);
    wait_for_parts(&bucket, 3);
    drop(store);

    let store = open(dir.path(), &bucket);
    assert_eq!(answers(&store, "/vpc/flows", base), before);
    let snapshot = store.tier_snapshot("/vpc/flows").unwrap();
    let lake = snapshot.lake_store.as_ref().expect("parts in a bucket");
    assert_eq!(lake.url, "s3://test-bucket");
    assert!(
        snapshot.parts[0].location.starts_with(PREFIX),
        "the object's key"
    );
}

#[test]
fn a_part_of_many_blocks_reads_back_whole() {
    // Text no compressor shrinks much: the part spans several of the reader's 1 MiB
    // range requests, and pages straddle their edges.
    let dir = tempfile::tempdir().unwrap();
    let bucket = Arc::new(InMemory::new());
    let mut config = config(dir.path(), &bucket);
    config.part_row_group_rows = 4096;
    let store = FileStore::open(config).unwrap();
    create(&store, "noise", &["s"]);
    let base = (now() - 2 * HOUR) / HOUR * HOUR;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut messages = Vec::new();
    for _ in 0..20_000 {
        let line: String = (0..24)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("{:016x}", state)[..12].to_owned()
            })
            .collect();
        messages.push(line);
    }
    for (i, chunk) in messages.chunks(500).enumerate() {
        let events: Vec<NewEvent<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, m)| NewEvent {
                timestamp: base + (i * 500 + j) as i64,
                message: m.as_str().into(),
            })
            .collect();
        store.append("noise", "s", &events).unwrap();
    }
    store.compact(true).unwrap();
    let sizes = objects(&bucket);
    assert!(sizes.iter().any(|(_, size)| *size > 2 << 20), "{sizes:?}");
    let page = store
        .scan(
            &whole_group("noise", Direction::Forward),
            &|_| true,
            PageLimit::UNLIMITED,
        )
        .unwrap();
    let read: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
    let written: Vec<&str> = messages.iter().map(String::as_str).collect();
    assert_eq!(read, written);
}

#[test]
fn expired_and_deleted_parts_leave_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Arc::new(InMemory::new());
    let store = open(dir.path(), &bucket);
    create(&store, "old", &["s"]);
    write(
        &store,
        "old",
        &["s"],
        20,
        (now() - 3 * 86_400_000) / HOUR * HOUR,
        0,
    );
    store.compact(true).unwrap();
    assert_eq!(parts(&bucket).len(), 3);
    store.set_retention("old", Some(1)).unwrap();
    assert_eq!(store.compact(false).unwrap().parts_removed, 3);
    wait_for_parts(&bucket, 0);

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
    assert_eq!(parts(&bucket).len(), 3);
    store.delete_group("gone").unwrap();
    wait_for_parts(&bucket, 0);
}

#[test]
fn the_orphan_sweep_removes_only_nettrails_own_part_objects() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Arc::new(InMemory::new());
    let store = open(dir.path(), &bucket);
    create(&store, "g", &["s"]);
    write(&store, "g", &["s"], 10, now() - 5 * HOUR, 0);
    store.compact(true).unwrap();
    let kept = parts(&bucket);
    drop(store);
    let folder = format!(
        "{PREFIX}/lake/g-00000000/aws-account-id=1/aws-service=logs/aws-region=r/year=2026/month=01/day=01/hour=00"
    );
    // What a crash between a part's upload and its journal record leaves...
    put_object(
        &bucket,
        &format!("{folder}/part-000000000099.parquet"),
        b"half",
    );
    // ...and what nettrail did not write: AWS's own delivery beside it, and anything
    // outside `PREFIX/lake/`.
    let foreign = format!(
        "{folder}/123456789012_vpcflowlogs_us-east-1_fl-0123_20260101T0000Z_0a1b2c3d.log.parquet"
    );
    put_object(&bucket, &foreign, b"aws");
    put_object(&bucket, "elsewhere/part-000000000098.parquet", b"other");
    let store = open(dir.path(), &bucket);
    let mut expected = kept.clone();
    expected.push(foreign);
    expected.push("elsewhere/part-000000000098.parquet".into());
    expected.sort();
    assert_eq!(parts(&bucket), expected);
    assert_eq!(count_events(&store, "g"), 10);
}

#[test]
fn a_catalog_whose_parts_the_bucket_lacks_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Arc::new(InMemory::new());
    let store = open(dir.path(), &bucket);
    create(&store, "g", &["s"]);
    write(&store, "g", &["s"], 10, now() - 5 * HOUR, 0);
    store.compact(true).unwrap();
    drop(store);
    // Another bucket (a changed `[store] lake`): nothing served, nothing deleted.
    let other = Arc::new(InMemory::new());
    let error = FileStore::open(config(dir.path(), &other))
        .err()
        .expect("refused");
    assert!(matches!(error, StoreError::Lake { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("s3://test-bucket/flows/nettrail/lake/g-") && text.contains("[store] lake"),
        "{text}"
    );
    // The data directory's own lake (the default) lacks them too.
    let error = FileStore::open(FileStoreConfig::new(dir.path()))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("cannot be read"), "{error}");
    // With the right bucket, everything is there.
    assert_eq!(count_events(&open(dir.path(), &bucket), "g"), 10);
}
