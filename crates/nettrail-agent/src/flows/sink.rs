//! Where records go: stdout (an S3 file's content: the header line, then records), a
//! folder in AWS's S3 layout (gzip text with header or Parquet, plain or
//! Hive-compatible, per day or per hour, a file per 5-minute slot or 75 MB), or a
//! nettrail log group (one stream per interface, as AWS names them), with an on-disk
//! spool that keeps what the server has not taken.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use nettrail_client::Client;
use nettrail_formats::flow::cloudwatch::CloudWatchMapping;
use nettrail_formats::flow::cloudwatch::TrafficType;
use nettrail_formats::flow::s3::{ObjectKey, Rotation, S3Destination};
use nettrail_formats::flow::{FlowRecord, LogFormat};
use serde_json::{json, Value};

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

/// Events per ImportLogEvents request at most (well under the server's limits).
const BATCH_EVENTS: usize = 5_000;

/// Records into a nettrail log group, one stream per interface
/// (`eni-…-all|accept|reject`), with their original timestamps (nettrail's
/// ImportLogEvents, since records of a capture file may be older than PutLogEvents
/// takes). A batch the server does not take goes to the spool folder and is sent again,
/// in order, before anything newer.
pub struct LogsSink {
    client: Client,
    runtime: tokio::runtime::Runtime,
    group: String,
    format: LogFormat,
    mapping: CloudWatchMapping,
    /// `interface-id` of interface `n`, `{n}` replaced: names the interface's stream.
    interface_id: String,
    spool: Spool,
    /// How long `finish` keeps trying to empty the spool.
    drain_timeout: Duration,
    group_ready: bool,
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_error("starting the async runtime", Path::new("-")))?;
        Ok(LogsSink {
            client,
            runtime,
            group: group.to_owned(),
            mapping: CloudWatchMapping::new(&format, traffic_type),
            format,
            interface_id: interface_id.to_owned(),
            spool: Spool::open(spool_dir, spool_max_bytes)?,
            drain_timeout,
            group_ready: false,
        })
    }

    /// Requests for `records`: events by stream, each stream's in time order.
    fn requests(&self, records: &[InterfaceRecord]) -> Vec<Value> {
        let mut streams: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
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
        let mut requests = Vec::new();
        for (stream, mut events) in streams {
            events.sort_by_key(|(t, _)| *t);
            for chunk in events.chunks(BATCH_EVENTS) {
                requests.push(json!({
                    "logGroupName": self.group,
                    "streams": [{
                        "logStreamName": stream,
                        "logEvents": chunk.iter().map(|(t, m)| json!({"timestamp": t, "message": m})).collect::<Vec<_>>(),
                    }],
                }));
            }
        }
        requests
    }

    /// Sends one request (creating the group first, once); Err keeps it for later.
    fn send(&mut self, request: &Value) -> Result<(), String> {
        if !self.group_ready {
            let created = self.runtime.block_on(
                self.client
                    .logs("CreateLogGroup", &json!({ "logGroupName": self.group })),
            );
            match created {
                Ok(_) => {}
                Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {}
                Err(e) => return Err(e.to_string()),
            }
            self.group_ready = true;
        }
        self.runtime
            .block_on(self.client.nettrail("ImportLogEvents", request))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Sends what the spool holds, oldest first, until it is empty or a send fails.
    fn drain(&mut self) -> Result<(), String> {
        while let Some((path, request)) = self.spool.oldest()? {
            self.send(&request)?;
            self.spool.remove(&path)?;
        }
        Ok(())
    }
}

impl RecordSink for LogsSink {
    fn write(&mut self, records: &[InterfaceRecord]) -> Result<(), SinkError> {
        let requests = self.requests(records);
        // Order: what waits in the spool goes first.
        let mut failed = self.drain().err();
        for request in requests {
            if failed.is_none() {
                match self.send(&request) {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::warn!(group = self.group, error = %e, "server did not take flow records; spooling them");
                        failed = Some(e);
                    }
                }
            }
            self.spool.push(&request).map_err(SinkError::Server)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let deadline = Instant::now() + self.drain_timeout;
        let mut wait = Duration::from_millis(200);
        loop {
            match self.drain() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(SinkError::Server(format!(
                        "{} batches of records are still in the spool {} (the server did not take them: {e}); the next run sends them first",
                        self.spool.len(),
                        self.spool.dir.display()
                    )))
                }
                Err(_) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Requests the server has not taken, one file each, named by a sequence number so
/// that they go out in order; bounded in bytes.
struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
    next: u64,
}

impl Spool {
    fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SinkError> {
        fs::create_dir_all(dir).map_err(io_error("creating spool folder", dir))?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            bytes: 0,
            next: 0,
        };
        for (seq, path) in spool.entries().map_err(SinkError::Server)? {
            spool.bytes += fs::metadata(&path).map_or(0, |m| m.len());
            spool.next = spool.next.max(seq + 1);
        }
        Ok(spool)
    }

    fn entries(&self) -> Result<Vec<(u64, PathBuf)>, String> {
        let mut out = Vec::new();
        let listing = fs::read_dir(&self.dir)
            .map_err(|e| format!("reading spool {}: {e}", self.dir.display()))?;
        for entry in listing.flatten() {
            let path = entry.path();
            let seq = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(seq) = seq {
                out.push((seq, path));
            }
        }
        out.sort();
        Ok(out)
    }

    fn len(&self) -> usize {
        self.entries().map_or(0, |e| e.len())
    }

    fn push(&mut self, request: &Value) -> Result<(), String> {
        let bytes = serde_json::to_vec(request).expect("JSON values serialize");
        if self.bytes + bytes.len() as u64 > self.max_bytes {
            return Err(format!(
                "the spool {} is full ({} of {} bytes): records are being lost; raise --spool-max-bytes or bring the server back",
                self.dir.display(),
                self.bytes,
                self.max_bytes
            ));
        }
        let path = self.dir.join(format!("{:020}.json", self.next));
        let tmp = path.with_extension("tmp");
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&tmp, &path));
        written.map_err(|e| format!("writing spool file {}: {e}", path.display()))?;
        self.next += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn oldest(&self) -> Result<Option<(PathBuf, Value)>, String> {
        let Some((_, path)) = self.entries()?.into_iter().next() else {
            return Ok(None);
        };
        let bytes =
            fs::read(&path).map_err(|e| format!("reading spool file {}: {e}", path.display()))?;
        match serde_json::from_slice(&bytes) {
            Ok(request) => Ok(Some((path, request))),
            Err(e) => {
                // A torn spool file was never acknowledged by anyone; set it aside.
                let aside = path.with_extension("damaged");
                tracing::warn!(path = %path.display(), error = %e, "damaged spool file set aside");
                let _ = fs::rename(&path, &aside);
                self.oldest()
            }
        }
    }

    fn remove(&mut self, path: &Path) -> Result<(), String> {
        let len = fs::metadata(path).map_or(0, |m| m.len());
        fs::remove_file(path)
            .map_err(|e| format!("removing spool file {}: {e}", path.display()))?;
        self.bytes = self.bytes.saturating_sub(len);
        Ok(())
    }
}
