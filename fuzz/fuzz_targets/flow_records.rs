//! Flow log formats, records and S3 keys: any input is parsed or refused, never a
//! panic, and what parses writes back as it was read (single-spaced).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nettrail_formats::flow::s3::ObjectKey;
use nettrail_formats::flow::LogFormat;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // First line: a header or a ${…} spec; the rest: records.
    let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
    let format = LogFormat::from_header(head).or_else(|_| LogFormat::parse(head));
    if let Ok(format) = format {
        assert_eq!(LogFormat::from_header(&format.header()).as_ref(), Ok(&format));
        for line in rest.lines() {
            if let Ok(record) = format.parse_record(line) {
                let written = format.record_line(&record);
                assert_eq!(format.parse_record(&written).as_ref(), Ok(&record));
            }
        }
    }
    if let Ok(key) = ObjectKey::parse(text) {
        assert_eq!(ObjectKey::parse(&key.key()).as_ref(), Ok(&key));
    }
});
