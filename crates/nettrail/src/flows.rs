//! `nettrail flows convert IN OUT`: a flow log file from one of AWS's S3 file formats to
//! another (gzip text with its header line, or Parquet), chosen by the file names
//! (`.parquet`; `.gz`; anything else plain text).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use nettrail_formats::flow::parquet::{write_parquet, ParquetFlowReader};
use nettrail_formats::flow::{FlowRecord, FlowTextReader, LogFormat};

fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "parquet")
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Reads every record of a flow log file.
fn read(path: &Path, log_format: Option<&LogFormat>) -> Result<(LogFormat, Vec<FlowRecord>)> {
    if is_parquet(path) {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut reader = ParquetFlowReader::new(bytes::Bytes::from(bytes))
            .with_context(|| format!("{}", path.display()))?;
        let format = reader.format().clone();
        let mut records = Vec::new();
        while let Some(batch) = reader.next_batch() {
            records.extend(batch.with_context(|| format!("{}", path.display()))?);
        }
        return Ok((format, records));
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let input: Box<dyn BufRead> = if is_gzip(path) {
        Box::new(BufReader::new(MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::new(file))
    };
    let fallback = log_format.cloned().unwrap_or_default();
    let mut reader =
        FlowTextReader::new(input, fallback).with_context(|| format!("{}", path.display()))?;
    let format = reader.format().clone();
    let mut records = Vec::new();
    while let Some(line) = reader.next_line() {
        let line = line.with_context(|| format!("{}", path.display()))?;
        let record = format
            .parse_record(line.text)
            .with_context(|| format!("{}:{}", path.display(), line.number))?;
        records.push(record);
    }
    Ok((format, records))
}

/// Converts `input` to `output`; returns the records written.
pub fn convert(input: &Path, output: &Path, log_format: Option<&LogFormat>) -> Result<usize> {
    if input == output {
        bail!("the input and the output are the same file");
    }
    let (format, records) = read(input, log_format)?;
    let file = std::fs::File::create(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    if is_parquet(output) {
        write_parquet(&format, &records, file)?
            .sync_all()
            .with_context(|| format!("cannot write {}", output.display()))?;
        return Ok(records.len());
    }
    let mut out: Box<dyn Write> = if is_gzip(output) {
        Box::new(GzEncoder::new(
            std::io::BufWriter::new(file),
            Compression::default(),
        ))
    } else {
        Box::new(std::io::BufWriter::new(file))
    };
    let write = |out: &mut Box<dyn Write>| -> std::io::Result<()> {
        writeln!(out, "{}", format.header())?;
        let mut line = String::new();
        for record in &records {
            line.clear();
            format.write_record(record, &mut line);
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        out.flush()
    };
    write(&mut out).with_context(|| format!("cannot write {}", output.display()))?;
    drop(out); // finishes the gzip stream
    Ok(records.len())
}
