//! Golden flow log records: every verbatim sample line of the spec parses and writes
//! back byte for byte (tests/data/flow-golden.txt).

use nettrail_formats::flow::{FlowRecord, LogFormat};

#[test]
fn every_sample_line_parses_and_writes_back() {
    let data = include_str!("data/flow-golden.txt");
    let mut format: Option<LogFormat> = None;
    let mut checked = 0;
    for (number, line) in data.lines().enumerate() {
        let number = number + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix("format: ") {
            assert!(LogFormat::is_header(header), "line {number}: a header");
            format = Some(LogFormat::from_header(header).unwrap());
            continue;
        }
        let format = format.as_ref().expect("a format line first");
        let (input, expected) = line.split_once(" => ").unwrap_or((line, line));
        let record: FlowRecord = format
            .parse_record(input)
            .unwrap_or_else(|e| panic!("line {number}: {e}"));
        assert_eq!(format.record_line(&record), expected, "line {number}");
        let mut tokens = Vec::new();
        format.split_record(input, &mut tokens).unwrap();
        assert_eq!(
            tokens.join(" "),
            expected,
            "line {number}: split_record agrees"
        );
        checked += 1;
    }
    assert_eq!(checked, 37, "every sample line is checked");
}
