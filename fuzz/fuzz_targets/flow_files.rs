//! Flow log files as read from S3: gzip text (or not) and Parquet, any bytes. Reading goes to the
//! end or stops at a reported error, never a panic.
#![no_main]

use std::io::BufReader;

use flate2::bufread::MultiGzDecoder;
use libfuzzer_sys::fuzz_target;
use nettrail_formats::flow::parquet::ParquetFlowReader;
use nettrail_formats::flow::{FlowTextReader, LogFormat};

fuzz_target!(|data: &[u8]| {
    let gz = BufReader::new(MultiGzDecoder::new(data));
    read_all(gz);
    read_all(data);
    // Parquet files, too.
    if let Ok(mut reader) = ParquetFlowReader::new(bytes::Bytes::copy_from_slice(data)) {
        let mut batches = 0;
        while let Some(batch) = reader.next_batch() {
            batches += 1;
            if batch.is_err() || batches > 100 {
                break;
            }
        }
    }
});

fn read_all(input: impl std::io::BufRead) {
    let Ok(mut reader) = FlowTextReader::new(input, LogFormat::default_vpc()) else { return };
    let format = reader.format().clone();
    let mut lines = 0;
    while let Some(line) = reader.next_line() {
        let Ok(line) = line else { continue };
        let mut tokens = Vec::new();
        let _ = format.split_record(line.text, &mut tokens);
        lines += 1;
        if lines > 10_000 {
            break;
        }
    }
}
