//! Any bytes as a segment file (after a valid segment header) and as the journal: the
//! store opens, serves only verified events, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nettrail_store::{Direction, FileStore, FileStoreConfig, LogStore, NewEvent, NewGroup, PageLimit, ScanRequest, StreamSelector};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileStore::open(FileStoreConfig::new(dir.path())).unwrap();
        store
            .create_group(NewGroup { name: "/g".into(), class: "STANDARD".into(), ..Default::default() }, 0)
            .unwrap();
        store.create_stream("/g", "s", 0).unwrap();
        store.append("/g", "s", &[NewEvent { timestamp: 1, message: "seed".into() }]).unwrap();
        store.shutdown();
    }
    let segment_dir = dir.path().join("groups/1");
    let segment = std::fs::read_dir(&segment_dir).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.truncate(16);
    bytes.extend_from_slice(data);
    std::fs::write(&segment, &bytes).unwrap();
    let Ok(store) = FileStore::open(FileStoreConfig::new(dir.path())) else {
        return;
    };
    let request = ScanRequest {
        group: "/g".into(),
        streams: StreamSelector::All,
        start_time: None,
        end_time: None,
        from: None,
        direction: Direction::Forward,
    };
    if let Ok(page) = store.scan(&request, &|_| true, PageLimit::UNLIMITED) {
        assert!(
            page.events.windows(2).all(|w| w[0].key < w[1].key),
            "events come back in strictly increasing key order"
        );
    }
    store.shutdown();
});
