//! Any bytes given to the block decoder: it may refuse them, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nettrail_store::block::{index_events, open_payload, BlockHeader, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = BlockHeader::decode(data) else {
        return;
    };
    let Ok(raw) = open_payload(&header, &data[HEADER_LEN..]) else {
        return;
    };
    if let Ok(events) = index_events(&header, &raw) {
        for e in events {
            assert!(e.start <= e.end && e.end <= raw.len());
            assert!(std::str::from_utf8(&raw[e.start..e.end]).is_ok());
        }
    }
});
