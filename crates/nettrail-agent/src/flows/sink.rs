//! Where records go: stdout (an S3 file's content: the header line, then records), a
//! folder in AWS's S3 layout (gzip text with header or Parquet, plain or
//! Hive-compatible, per day or per hour, a file per 5-minute slot or 75 MB), or a
//! nettrail log group (one stream per interface, as AWS names them), with an on-disk
//! spool that keeps what the server has not taken.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::write::GzEncoder;
use nettrail_client::Client;
use nettrail_formats::flow::cloudwatch::CloudWatchMapping;
use nettrail_formats::flow::cloudwatch::TrafficType;
use nettrail_formats::flow::s3::{ObjectKey, Rotation, S3Destination};
use nettrail_formats::flow::{FlowRecord, LogFormat};

use crate::ship::{LogShipper, StreamEvents};

use super::records::{identity, InterfaceIdentity, InterfaceRecord, RecordMaker};
use super::table::{FlowKey, FlowStats};

/// Why records could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing to stdout or a file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A Parquet file could not be written.
    #[error("writing Parquet file {path}: {message}")]
    Parquet {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The server did not take records, and the spool is full or could not be drained.
    #[error("{0}")]
    Server(String),
}

fn io_error<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SinkError + 'p {
    move |source| SinkError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// A destination of records.
pub trait RecordSink {
    /// Writes records (of a closed window, or NODATA/SKIPDATA ones).
    fn write(&mut self, records: &[InterfaceRecord]) -> Result<(), SinkError>;
    /// Writes the records of `flows` (part of a closed window) that `maker` keeps;
    /// returns how many. Sinks that write text lines make them without building
    /// records.
    fn write_flows(
        &mut self,
        maker: &RecordMaker,
        flows: &[(FlowKey, FlowStats)],
        identities: &[InterfaceIdentity],
    ) -> Result<u64, SinkError> {
        let records = maker.flows(flows, identities);
        self.write(&records)?;
        Ok(records.len() as u64)
    }
    /// Pushes what was written out of any buffer: live capture calls it once the
    /// windows that closed are written, so that records leave when their window closes.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Writes out what is buffered (end of input).
    fn finish(&mut self) -> Result<(), SinkError>;
}

/// Records as text lines on a writer, after the header line.
pub struct TextSink<W: Write> {
    out: W,
    format: LogFormat,
    line: String,
}

impl<W: Write> TextSink<W> {
    /// Writes the header line now, as every S3 text file starts with it.
    pub fn new(mut out: W, format: LogFormat) -> Result<TextSink<W>, SinkError> {
        writeln!(out, "{}", format.header()).map_err(io_error("writing", Path::new("stdout")))?;
        Ok(TextSink {
            out,
            format,
            line: String::new(),
        })
    }
}

impl<W: Write> RecordSink for TextSink<W> {
    fn write(&mut self, records: &[InterfaceRecord]) -> Result<(), SinkError> {
        for r in records {
            self.line.clear();
            self.format.write_record(&r.record, &mut self.line);
            self.line.push('\n');
            self.out
                .write_all(self.line.as_bytes())
                .map_err(io_error("writing", Path::new("stdout")))?;
        }
        Ok(())
    }

    fn write_flows(
        &mut self,
        maker: &RecordMaker,
        flows: &[(FlowKey, FlowStats)],
        identities: &[InterfaceIdentity],
    ) -> Result<u64, SinkError> {
        let mut written = 0;
        self.line.clear();
        for (key, stats) in flows.iter().filter(|(key, _)| maker.keeps(key.action)) {
            maker.write_flow_line(
                key,
                stats,
                identity(identities, key.interface),
                &mut self.line,
            );
            self.line.push('\n');
            written += 1;
            if self.line.len() >= 1 << 16 {
                self.out
                    .write_all(self.line.as_bytes())
                    .map_err(io_error("writing", Path::new("stdout")))?;
                self.line.clear();
            }
        }
        self.out
            .write_all(self.line.as_bytes())
            .map_err(io_error("writing", Path::new("stdout")))?;
        Ok(written)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(io_error("writing", Path::new("stdout")))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(io_error("writing", Path::new("stdout")))
    }
}

/// An open file of a [`FolderSink`].
struct OpenFile {
    slot: i64,
    key: ObjectKey,
    tmp: PathBuf,
    /// Bytes of records so far (text as written; Parquet as text, an estimate).
    bytes: u64,
    body: FileBody,
}

enum FileBody {
    Text(Box<GzEncoder<BufWriter<File>>>),
    Parquet(Vec<FlowRecord>),
}

/// Files in AWS's S3 layout under a folder (or, uploaded, a bucket prefix).
pub struct FolderSink {
    root: PathBuf,
    destination: S3Destination,
    format: LogFormat,
    rotation: Rotation,
    open: Option<OpenFile>,
    written: Vec<PathBuf>,
    line: String,
}

impl FolderSink {
    /// Files of `destination` (its prefix taken under `root`), records of `format`.
    pub fn new(root: &Path, destination: S3Destination, format: LogFormat) -> FolderSink {
        FolderSink {
            root: root.to_owned(),
            destination,
            format,
            rotation: Rotation::default(),
            open: None,
            written: Vec::new(),
            line: String::new(),
        }
    }

    /// The files written so far (closed), in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.written
    }

    fn open_file(&mut self, end_seconds: i64) -> Result<OpenFile, SinkError> {
        let hash = format!("{:08x}", rand_u32());
        let key = ObjectKey::for_slot(&self.destination, end_seconds, &hash);
        let path = self.root.join(key.key());
        let dir = path.parent().expect("a key has folders");
        fs::create_dir_all(dir).map_err(io_error("creating folder", dir))?;
        let tmp = path.with_extension("partial");
        let body = match self.destination.file_format {
            nettrail_formats::flow::s3::FileFormat::PlainText => {
                let file = File::create(&tmp).map_err(io_error("creating", &tmp))?;
                let mut gz = GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
                writeln!(gz, "{}", self.format.header()).map_err(io_error("writing", &tmp))?;
                FileBody::Text(Box::new(gz))
            }
            nettrail_formats::flow::s3::FileFormat::Parquet => FileBody::Parquet(Vec::new()),
        };
        Ok(OpenFile {
            slot: self.rotation.slot_start(end_seconds),
            key,
            tmp,
            bytes: 0,
            body,
        })
    }

    /// Closes the open file: complete on disk under its final name, or not at all.
    fn close_file(&mut self) -> Result<(), SinkError> {
        let Some(file) = self.open.take() else {
            return Ok(());
        };
        let path = self.root.join(file.key.key());
        match file.body {
            FileBody::Text(gz) => {
                let out = gz.finish().map_err(io_error("writing", &file.tmp))?;
                let inner = out
                    .into_inner()
                    .map_err(|e| io_error("writing", &file.tmp)(e.into_error()))?;
                inner.sync_all().map_err(io_error("syncing", &file.tmp))?;
            }
            FileBody::Parquet(records) => {
                let out = File::create(&file.tmp).map_err(io_error("creating", &file.tmp))?;
                let out =
                    nettrail_formats::flow::parquet::write_parquet(&self.format, &records, out)
                        .map_err(|e| SinkError::Parquet {
                            path: file.tmp.display().to_string(),
                            message: e.to_string(),
                        })?;
                out.sync_all().map_err(io_error("syncing", &file.tmp))?;
            }
        }
        fs::rename(&file.tmp, &path).map_err(io_error("renaming", &path))?;
        self.written.push(path);
        Ok(())
    }
}

impl RecordSink for FolderSink {
    fn write(&mut self, records: &[InterfaceRecord]) -> Result<(), SinkError> {
        let end_column = self.format.position(nettrail_formats::flow::Field::END);
        for r in records {
            self.line.clear();
            self.format.write_record(&r.record, &mut self.line);
            self.line.push('\n');
            let end = end_column
                .and_then(|i| r.record.values[i].as_int())
                .unwrap_or_else(now_seconds);
            let fits = self.open.as_ref().is_some_and(|f| {
                self.rotation
                    .fits(f.slot, f.bytes, end, self.line.len() as u64)
            });
            if !fits {
                self.close_file()?;
                self.open = Some(self.open_file(end)?);
            }
            let file = self.open.as_mut().expect("opened above");
            file.bytes += self.line.len() as u64;
            match &mut file.body {
                FileBody::Text(gz) => gz
                    .write_all(self.line.as_bytes())
                    .map_err(io_error("writing", &file.tmp))?,
                FileBody::Parquet(rows) => rows.push(r.record.clone()),
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.close_file()
    }
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A random 32-bit number for file names (no cryptographic need: it only keeps two
/// files of one slot apart).
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
}

/// Records into a nettrail log group, one stream per interface
/// (`eni-…-all|accept|reject`), with their original timestamps (nettrail's
/// ImportLogEvents, since records of a capture file may be older than PutLogEvents
/// takes). A batch the server does not take goes to the spool folder and is sent again,
/// in order, before anything newer.
pub struct LogsSink {
    shipper: LogShipper,
    format: LogFormat,
    mapping: CloudWatchMapping,
    /// `interface-id` of interface `n`, `{n}` replaced: names the interface's stream.
    interface_id: String,
}

impl LogsSink {
    /// Records of `format` to `group` through `client`, spooling to `spool_dir`
    /// (at most `spool_max_bytes`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        group: &str,
        format: LogFormat,
        traffic_type: TrafficType,
        interface_id: &str,
        spool_dir: &Path,
        spool_max_bytes: u64,
        drain_timeout: Duration,
    ) -> Result<LogsSink, SinkError> {
        Ok(LogsSink {
            shipper: LogShipper::new(client, group, spool_dir, spool_max_bytes, drain_timeout)
                .map_err(|e| SinkError::Server(e.to_string()))?
                .with_flow_log_format(&format),
            mapping: CloudWatchMapping::new(&format, traffic_type),
            format,
            interface_id: interface_id.to_owned(),
        })
    }

    /// Events of `records` by stream.
    fn events(&self, records: &[InterfaceRecord]) -> StreamEvents {
        let mut streams = StreamEvents::new();
        for r in records {
            let line = self.format.record_line(&r.record);
            let mut tokens = Vec::new();
            if self.format.split_record(&line, &mut tokens).is_err() {
                continue;
            }
            let event = self.mapping.event(&line, &tokens, now_seconds() * 1000);
            let stream = self
                .mapping
                .stream_name(&self.interface_id.replace("{n}", &r.interface.to_string()));
            streams
                .entry(stream)
                .or_default()
                .push((event.timestamp_ms, event.message.into_owned()));
        }
        streams
    }
}

impl RecordSink for LogsSink {
    fn write(&mut self, records: &[InterfaceRecord]) -> Result<(), SinkError> {
        let events = self.events(records);
        self.shipper
            .ship(events)
            .map_err(|e| SinkError::Server(e.to_string()))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.shipper
            .finish()
            .map_err(|e| SinkError::Server(e.to_string()))
    }
}
