//! `nettrail import s3 SOURCE --log-group NAME`: VPC flow log files as VPC Flow Logs
//! wrote them to S3 (any of the four key layouts, `.log.gz` text and `.parquet`), from a
//! bucket (object_store: S3 or any S3-compatible store) or a local copy of one, into a
//! log group of a running nettrail, one stream per interface as CloudWatch Logs
//! delivery names them.
//!
//! Files are read in parallel on worker threads (decompression and parsing are CPU
//! work and never run on the async runtime); each file is cut into parts in file order,
//! deterministically, and its parts are uploaded in order with ImportLogEvents, which
//! keeps the original timestamps and records a checkpoint per part. A second run asks
//! the server for the checkpoints first and skips every part already stored, so it
//! imports nothing twice; a file whose size changed is imported again.
//!
//! Checkpoints are keyed by the object key from `AWSLogs/` on (account, region, date,
//! flow log id and a random part make it unique), so a bucket and a local copy of it
//! count as the same source.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use flate2::bufread::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nettrail_client::Client;
use nettrail_formats::flow::cloudwatch::{CloudWatchMapping, TrafficType};
use nettrail_formats::flow::parquet::ParquetFlowReader;
use nettrail_formats::flow::s3::{FileFormat, ObjectKey};
use nettrail_formats::flow::{Field, FlowTextReader, LogFormat, TextFileError};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;

/// The checkpoint source of flow log files: keys from `AWSLogs/` on are globally unique.
const CHECKPOINT_SOURCE: &str = "vpcflowlogs";

/// Request JSON gathered from a file before it is cut into parts (bounds an importer's
/// memory per worker whatever the file size).
const CHUNK_MAX_JSON: usize = 64 * 1_048_576;

/// A part holds at most this many events...
const PART_MAX_EVENTS: usize = 50_000;
/// ...and at most this many bytes of event JSON (more than the message + 26 per
/// event the server counts), well under the server's ImportLogEvents limits.
const PART_MAX_BYTES: usize = 4 * 1_048_576;

/// Where the files are.
pub enum Source {
    /// A local folder holding a copy of a bucket (or of part of one).
    Folder(PathBuf),
    /// A bucket (and prefix) of S3 or an S3-compatible store.
    S3 {
        /// The store, bound to the bucket.
        store: Arc<dyn ObjectStore>,
        /// The prefix within the bucket ("" for all of it).
        prefix: String,
    },
}

/// What to import and where.
pub struct ImportOptions {
    /// Where the files are.
    pub source: Source,
    /// The log group to import into (created when missing).
    pub log_group: String,
    /// The flow log's traffic type, which names the streams (`-all`).
    pub traffic_type: TrafficType,
    /// Only list what would be imported.
    pub dry_run: bool,
    /// Parallel file readers.
    pub workers: usize,
}

/// One object of the source.
#[derive(Debug, Clone)]
struct SourceObject {
    /// The path relative to the source (with `/`), as an S3 key would be.
    relative: String,
    /// The key from `AWSLogs/` on: the checkpoint's object name.
    checkpoint_key: String,
    location: Location,
    size: u64,
    key: ObjectKey,
}

/// Where one object's bytes are.
#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    S3(ObjectPath),
}

/// What an import did, for the summary.
#[derive(Debug, Default, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Flow log files found.
    pub files_found: u64,
    /// Files imported completely by this run.
    pub files_imported: u64,
    /// Files already imported by an earlier run.
    pub files_already_imported: u64,
    /// Files that failed (corrupt, truncated, refused); the rest went on.
    pub files_failed: u64,
    /// Files under the source that are not flow log files, left alone.
    pub files_skipped: u64,
    /// Records stored.
    pub records: u64,
    /// Of them, Transit Gateway records (in their own streams).
    pub transit_gateway_records: u64,
    /// Records too old for the group's retention, not stored.
    pub records_expired: u64,
    /// Lines that are not records of their file's format, reported and left out.
    pub records_failed: u64,
    /// Compressed bytes read.
    pub compressed_bytes: u64,
    /// Seconds the import took.
    pub seconds: f64,
}

/// A problem with one file, reported as it happens and in the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileProblem {
    /// The file (relative to the source).
    pub key: String,
    /// The line, when the problem is in one.
    pub line: Option<u64>,
    /// What is wrong.
    pub error: String,
}

struct Counters {
    compressed_bytes: AtomicU64,
    records: AtomicU64,
    files_done: AtomicU64,
}

/// Runs an import.
pub fn run(
    options: &ImportOptions,
    client: Option<Client>,
    runtime: &tokio::runtime::Runtime,
) -> Result<(ImportSummary, Vec<FileProblem>)> {
    let started = Instant::now();
    let SourceListing { objects, skipped } = match &options.source {
        Source::Folder(root) => list_local(root)?,
        Source::S3 { store, prefix } => runtime.block_on(list_s3(store.as_ref(), prefix))?,
    };
    let mut summary = ImportSummary {
        files_found: objects.len() as u64,
        files_skipped: skipped.len() as u64,
        ..ImportSummary::default()
    };
    let mut problems = Vec::new();
    if options.dry_run {
        for o in &objects {
            println!("{}\t{}", o.size, o.relative);
        }
        for (relative, reason) in &skipped {
            eprintln!("skip {relative}: {reason}");
        }
        return Ok((summary, problems));
    }
    let client = client.context("an import needs a server")?;
    runtime.block_on(ensure_group(&client, &options.log_group))?;
    let checkpoints = runtime.block_on(client.nettrail(
        "GetImportCheckpoints",
        &json!({ "logGroupName": options.log_group, "source": CHECKPOINT_SOURCE }),
    ))?;
    let mut todo = Vec::new();
    for object in objects {
        let known = &checkpoints["checkpoints"][&object.checkpoint_key];
        let same_version = known["version"].as_str() == Some(object.size.to_string().as_str());
        if same_version && known["complete"].as_bool() == Some(true) {
            summary.files_already_imported += 1;
            continue;
        }
        let resume_from = if same_version {
            known["parts"].as_u64().unwrap_or(0)
        } else {
            0
        };
        todo.push((object, resume_from));
    }
    let total_bytes: u64 = todo.iter().map(|(o, _)| o.size).sum();
    let progress = progress_bar(total_bytes, todo.len());
    let counters = Arc::new(Counters {
        compressed_bytes: AtomicU64::new(0),
        records: AtomicU64::new(0),
        files_done: AtomicU64::new(0),
    });
    let queue = Arc::new(Mutex::new(todo.into_iter()));
    let results = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..options.workers.max(1) {
            let queue = Arc::clone(&queue);
            let results = Arc::clone(&results);
            let counters = Arc::clone(&counters);
            let client = client.clone();
            let progress = progress.clone();
            let handle = runtime.handle().clone();
            scope.spawn(move || loop {
                let next = queue.lock().expect("queue lock").next();
                let Some((object, resume_from)) = next else {
                    break;
                };
                let outcome = import_file(
                    &object,
                    resume_from,
                    options,
                    &client,
                    &handle,
                    &counters,
                    &progress,
                );
                counters.files_done.fetch_add(1, Ordering::Relaxed);
                results
                    .lock()
                    .expect("results lock")
                    .push((object.relative.clone(), outcome));
            });
        }
    });
    progress.finish_and_clear();
    for (relative, outcome) in Arc::try_unwrap(results)
        .expect("workers joined")
        .into_inner()
        .expect("results lock")
    {
        summary.records_failed += outcome.bad_lines.len() as u64;
        for (line, error) in &outcome.bad_lines {
            problems.push(FileProblem {
                key: relative.clone(),
                line: Some(*line),
                error: error.clone(),
            });
        }
        summary.records += outcome.stored;
        summary.records_expired += outcome.expired;
        summary.transit_gateway_records += outcome.transit_gateway_records;
        match outcome.failure {
            Some((line, error)) => {
                summary.files_failed += 1;
                problems.push(FileProblem {
                    key: relative,
                    line,
                    error,
                });
            }
            None => summary.files_imported += 1,
        }
    }
    summary.compressed_bytes = counters.compressed_bytes.load(Ordering::Relaxed);
    summary.seconds = started.elapsed().as_secs_f64();
    problems.sort_by(|a, b| (&a.key, a.line).cmp(&(&b.key, b.line)));
    Ok((summary, problems))
}

async fn ensure_group(client: &Client, group: &str) -> Result<()> {
    match client
        .logs("CreateLogGroup", &json!({ "logGroupName": group }))
        .await
    {
        Err(e) if e.code() != Some("ResourceAlreadyExistsException") => Err(e.into()),
        _ => Ok(()),
    }
}

fn progress_bar(total_bytes: u64, files: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("a valid template"),
    );
    bar.set_message(format!("0/{files} files, 0 records"));
    bar
}

/// What a source holds: flow log files, and the other files with why they are left
/// alone.
#[derive(Default)]
struct SourceListing {
    objects: Vec<SourceObject>,
    /// (relative path, reason)
    skipped: Vec<(String, String)>,
}

impl SourceListing {
    /// Adds a file or object: a flow log file when its key is one (its size is asked
    /// for only then), else skipped with the reason.
    fn add(
        &mut self,
        relative: String,
        location: Location,
        size: impl FnOnce() -> Result<u64>,
    ) -> Result<()> {
        match ObjectKey::parse(&relative) {
            Ok(key) => {
                let at = relative
                    .find("AWSLogs/")
                    .expect("parsed keys have AWSLogs/");
                self.objects.push(SourceObject {
                    checkpoint_key: relative[at..].to_owned(),
                    size: size()?,
                    relative,
                    location,
                    key,
                });
            }
            Err(e) => self.skipped.push((relative, e.to_string())),
        }
        Ok(())
    }

    /// In key order, so that imports proceed the same way every run.
    fn sorted(mut self) -> SourceListing {
        self.objects.sort_by(|a, b| a.relative.cmp(&b.relative));
        self.skipped.sort();
        self
    }
}

/// Every regular file under `root`.
fn list_local(root: &Path) -> Result<SourceListing> {
    let meta = std::fs::metadata(root)
        .with_context(|| format!("cannot read the source {}", root.display()))?;
    if !meta.is_dir() {
        bail!("the source {} is not a folder", root.display());
    }
    let mut listing = SourceListing::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if file_type.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if !file_type.is_file() {
                listing
                    .skipped
                    .push((relative, "not a regular file".to_owned()));
                continue;
            }
            let metadata = entry.metadata();
            listing.add(relative, Location::File(path.clone()), || {
                Ok(metadata
                    .with_context(|| format!("cannot stat {}", path.display()))?
                    .len())
            })?;
        }
    }
    Ok(listing.sorted())
}

/// Every object under `prefix` in the bucket.
async fn list_s3(store: &dyn ObjectStore, prefix: &str) -> Result<SourceListing> {
    use futures::TryStreamExt;
    let prefix_path = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.trim_end_matches('/')));
    let metas: Vec<object_store::ObjectMeta> = store
        .list(prefix_path.as_ref())
        .try_collect()
        .await
        .context("cannot list the bucket")?;
    let mut listing = SourceListing::default();
    for meta in metas {
        let size = meta.size;
        listing.add(
            meta.location.to_string(),
            Location::S3(meta.location),
            || Ok(size),
        )?;
    }
    Ok(listing.sorted())
}

/// What became of one file.
#[derive(Debug, Default)]
struct FileOutcome {
    stored: u64,
    expired: u64,
    transit_gateway_records: u64,
    bad_lines: Vec<(u64, String)>,
    /// Why the file stopped, and at which line.
    failure: Option<(Option<u64>, String)>,
}

/// A reader that counts the compressed bytes it hands on, for the progress bar.
struct CountingReader<R> {
    inner: R,
    counters: Arc<Counters>,
    progress: ProgressBar,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters
            .compressed_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// The events of one stream in a chunk, already in the JSON of an ImportLogEvents
/// request: each event is written as `,{"timestamp":…,"message":…}` while its line is
/// still in the cache, and a part's body is then assembled from runs of these bytes.
#[derive(Default)]
struct StreamEvents {
    name: String,
    json: Vec<u8>,
    /// Where each event starts in `json`.
    starts: Vec<u32>,
}

impl StreamEvents {
    /// The JSON of events `first..end`, without the leading comma.
    fn run(&self, first: usize, end: usize) -> &[u8] {
        let from = self.starts[first] as usize + 1;
        let to = self
            .starts
            .get(end)
            .map_or(self.json.len(), |&s| s as usize);
        &self.json[from..to]
    }

    /// The bytes event `i` takes in a request body; never less than PutLogEvents counts
    /// for it (message + 26), so parts sized by this stay within the server's limits.
    fn cost(&self, i: usize) -> usize {
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.json.len(), |&s| s as usize);
        end - self.starts[i] as usize
    }
}

/// A chunk of a file: its events by stream (each stream once), in file order within
/// each stream. The parts cut from it share it rather than copy it.
#[derive(Default)]
struct Chunk {
    streams: Vec<StreamEvents>,
    json_bytes: usize,
}

/// One ImportLogEvents request's worth of a chunk: runs of its streams' events.
#[derive(Default)]
struct Part {
    chunk: Arc<Chunk>,
    /// (stream slot in `chunk.streams`, first event, end event), in stream name order.
    runs: Vec<(usize, usize, usize)>,
    events: usize,
    bytes: usize,
}

fn import_file(
    object: &SourceObject,
    resume_from: u64,
    options: &ImportOptions,
    client: &Client,
    runtime: &tokio::runtime::Handle,
    counters: &Arc<Counters>,
    progress: &ProgressBar,
) -> FileOutcome {
    let mut outcome = FileOutcome::default();
    let mut reader = match open_records(object, &options.source, runtime, counters, progress) {
        Ok(reader) => reader,
        Err(failure) => {
            outcome.failure = Some(failure);
            return outcome;
        }
    };
    let format = reader.format().clone();
    let mapping = CloudWatchMapping::new(&format, options.traffic_type);

    // Parts are uploaded by a task of the runtime, one after another, while this thread
    // reads on: a bounded channel keeps at most two parts in flight.
    let (tx, rx) = mpsc::sync_channel::<(u64, Part, bool)>(2);
    let uploader = {
        let client = client.clone();
        let group = options.log_group.clone();
        let object_key = object.checkpoint_key.clone();
        let version = object.size.to_string();
        let spec = format.to_spec();
        runtime.spawn_blocking(move || -> Result<(u64, u64), String> {
            let handle = tokio::runtime::Handle::current();
            let (mut stored, mut expired) = (0, 0);
            // The file's format, so the server gives its records typed columns (a
            // no-op for the server when the group already has it).
            let declared = handle.block_on(client.nettrail(
                "SetFlowLogFormat",
                &json!({ "logGroupName": group, "logFormat": spec }),
            ));
            match declared {
                Ok(_) => {}
                // A server from before the columnar tier.
                Err(e) if e.code() == Some("UnknownOperationException") => {}
                Err(e) => return Err(format!("the file's format was not declared: {e}")),
            }
            for (number, part, last) in rx {
                let body = part_body(&group, &object_key, &version, number, &part, last);
                let answer = handle
                    .block_on(client.nettrail_raw("ImportLogEvents", body))
                    .map_err(|e| format!("part {number} was not stored: {e}"))?;
                stored += answer["storedEvents"].as_u64().unwrap_or(0);
                expired += answer["expiredEvents"].as_u64().unwrap_or(0);
            }
            Ok((stored, expired))
        })
    };
    let mut sink = PartSink {
        mapping: &mapping,
        traffic_type: options.traffic_type,
        action_column: format.position(Field::ACTION),
        fallback_ms: object.key.slot_start() * 1000,
        chunk: Chunk::default(),
        stream_slots: HashMap::new(),
        part_number: 0,
        resume_from,
        tx,
        counters,
    };
    let read_failure = reader.pump(&format, &mut sink, &mut outcome.bad_lines);
    // The last part (possibly empty) marks the file complete, unless reading failed.
    sink.finish(read_failure.is_none());
    let uploaded = runtime.block_on(uploader);
    match uploaded {
        Ok(Ok((stored, expired))) => {
            outcome.stored = stored;
            outcome.expired = expired;
        }
        Ok(Err(error)) => outcome.failure = Some((None, error)),
        Err(e) => outcome.failure = Some((None, format!("upload task failed: {e}"))),
    }
    if outcome.failure.is_none() {
        outcome.failure = read_failure;
    }
    if mapping.is_transit_gateway() {
        outcome.transit_gateway_records = outcome.stored;
    }
    let done = counters.files_done.load(Ordering::Relaxed) + 1;
    progress.set_message(format!(
        "{done} files, {} records",
        counters.records.load(Ordering::Relaxed)
    ));
    outcome
}

/// Why a file stopped: the line (or row) if known, and the error.
type Failure = (Option<u64>, String);

/// A `.log.gz` file, decompressed, counting the compressed bytes read.
type GzipText = BufReader<MultiGzDecoder<BufReader<CountingReader<Box<dyn Read + Send>>>>>;

/// The records of a file, text or Parquet.
enum RecordSource {
    Text(Box<FlowTextReader<GzipText>>),
    Parquet(ParquetFlowReader),
}

fn open_records(
    object: &SourceObject,
    source: &Source,
    runtime: &tokio::runtime::Handle,
    counters: &Arc<Counters>,
    progress: &ProgressBar,
) -> Result<RecordSource, Failure> {
    // Objects of a bucket are fetched whole (AWS's files are at most 75 MB); files are
    // read as they are decompressed, except Parquet, which needs random access.
    let fetched: Option<bytes::Bytes> = match (&object.location, source) {
        (Location::S3(path), Source::S3 { store, .. }) => {
            let bytes = runtime
                .block_on(async { store.get(path).await?.bytes().await })
                .map_err(|e| (None, format!("cannot fetch: {e}")))?;
            Some(bytes)
        }
        (Location::File(path), _) if object.key.file_format == FileFormat::Parquet => Some(
            std::fs::read(path)
                .map_err(|e| (None, format!("cannot read: {e}")))?
                .into(),
        ),
        _ => None,
    };
    if object.key.file_format == FileFormat::Parquet {
        let bytes = fetched.expect("fetched above");
        counters
            .compressed_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        progress.inc(bytes.len() as u64);
        let reader = ParquetFlowReader::new(bytes).map_err(|e| (None, e.to_string()))?;
        return Ok(RecordSource::Parquet(reader));
    }
    let inner: Box<dyn Read + Send> = match (fetched, &object.location) {
        (Some(bytes), _) => Box::new(std::io::Cursor::new(bytes)),
        (None, Location::File(path)) => {
            Box::new(std::fs::File::open(path).map_err(|e| (None, format!("cannot open: {e}")))?)
        }
        (None, Location::S3(_)) => {
            return Err((None, "a bucket object outside a bucket source".into()))
        }
    };
    let counting = CountingReader {
        inner,
        counters: Arc::clone(counters),
        progress: progress.clone(),
    };
    let text = BufReader::with_capacity(
        256 * 1024,
        MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, counting)),
    );
    match FlowTextReader::new(text, LogFormat::default_vpc()) {
        Ok(r) => Ok(RecordSource::Text(Box::new(r))),
        Err(TextFileError::Io { line, source }) => Err((Some(line), source.to_string())),
        Err(e) => Err((Some(1), e.to_string())),
    }
}

impl RecordSource {
    fn format(&self) -> &LogFormat {
        match self {
            RecordSource::Text(r) => r.format(),
            RecordSource::Parquet(r) => r.format(),
        }
    }

    /// Feeds every record to `sink`; bad lines are collected, and a failure that ends
    /// the file is returned.
    fn pump(
        &mut self,
        format: &LogFormat,
        sink: &mut PartSink<'_>,
        bad_lines: &mut Vec<(u64, String)>,
    ) -> Option<Failure> {
        match self {
            RecordSource::Text(reader) => loop {
                let line = match reader.next_line() {
                    None => return None,
                    Some(Ok(line)) => line,
                    Some(Err(TextFileError::NotUtf8 { line })) => {
                        bad_lines.push((line, "not UTF-8".into()));
                        continue;
                    }
                    Some(Err(TextFileError::Io { line, source })) => {
                        return Some((Some(line), source.to_string()))
                    }
                    Some(Err(e)) => return Some((None, e.to_string())),
                };
                let mut tokens = Vec::with_capacity(format.len());
                if let Err(e) = format.split_record(line.text, &mut tokens) {
                    bad_lines.push((line.number, e.to_string()));
                    continue;
                }
                if !sink.add(line.text, &tokens) {
                    return None; // the uploader stopped; its error is the file's
                }
            },
            RecordSource::Parquet(reader) => {
                while let Some(batch) = reader.next_batch() {
                    let records = match batch {
                        Ok(records) => records,
                        Err(e) => return Some((None, e.to_string())),
                    };
                    for record in &records {
                        let line = format.record_line(record);
                        let mut tokens = Vec::with_capacity(format.len());
                        format
                            .split_record(&line, &mut tokens)
                            .expect("written lines read back");
                        if !sink.add(&line, &tokens) {
                            return None;
                        }
                    }
                }
                None
            }
        }
    }
}

/// Gathers a file's events by stream and hands parts to the uploader.
struct PartSink<'a> {
    mapping: &'a CloudWatchMapping,
    traffic_type: TrafficType,
    action_column: Option<usize>,
    fallback_ms: i64,
    /// Records are gathered by stream over a chunk of the file (all of it, unless it is
    /// huge) before they are cut into parts, so that a part carries long runs of few
    /// streams: the store then writes large blocks, not one tiny block per interface.
    chunk: Chunk,
    /// Resource id → the stream's slot in `chunk.streams`.
    stream_slots: HashMap<String, usize>,
    part_number: u64,
    /// Parts below this number are stored already (an earlier run).
    resume_from: u64,
    tx: mpsc::SyncSender<(u64, Part, bool)>,
    counters: &'a Arc<Counters>,
}

impl PartSink<'_> {
    /// Adds a record (its line and fields); false when the uploader has stopped.
    fn add(&mut self, line: &str, tokens: &[&str]) -> bool {
        let action = self.action_column.map(|i| tokens[i]).filter(|a| *a != "-");
        if !self.traffic_type.captures(action) {
            return true;
        }
        let event = self.mapping.event(line, tokens, self.fallback_ms);
        // One hash lookup per record: the stream's slot in the chunk.
        let slot = match self.stream_slots.get(event.resource) {
            Some(&slot) => slot,
            None => {
                let slot = self.chunk.streams.len();
                self.chunk.streams.push(StreamEvents {
                    name: self.mapping.stream_name(event.resource),
                    ..StreamEvents::default()
                });
                self.stream_slots.insert(event.resource.to_owned(), slot);
                slot
            }
        };
        let chunk = &mut self.chunk;
        let stream = &mut chunk.streams[slot];
        let before = stream.json.len();
        stream.starts.push(before as u32);
        write_event_json(&mut stream.json, event.timestamp_ms, &event.message);
        chunk.json_bytes += stream.json.len() - before;
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        if chunk.json_bytes < CHUNK_MAX_JSON {
            return true;
        }
        self.stream_slots.clear();
        let mut all_sent = true;
        for part in cut_parts(std::mem::take(&mut self.chunk)) {
            all_sent &= self.send(part, false);
        }
        all_sent
    }

    fn send(&mut self, part: Part, last: bool) -> bool {
        let number = self.part_number;
        self.part_number += 1;
        if number < self.resume_from {
            return true; // stored by an earlier run
        }
        self.tx.send((number, part, last)).is_ok()
    }

    /// Sends what is left; with `complete`, the last part marks the file complete
    /// (an empty one if need be). Dropping the sink ends the upload.
    fn finish(mut self, complete: bool) {
        if !complete {
            return;
        }
        let mut parts = cut_parts(std::mem::take(&mut self.chunk));
        let last = parts.pop().unwrap_or_default();
        for part in parts {
            self.send(part, false);
        }
        self.send(last, true);
    }
}

/// Cuts a chunk into parts of at most [`PART_MAX_EVENTS`] events and
/// [`PART_MAX_BYTES`] bytes, walking streams in name order and each stream's events in
/// file order: the same chunk always gives the same parts.
fn cut_parts(mut chunk: Chunk) -> Vec<Part> {
    chunk.streams.sort_by(|a, b| a.name.cmp(&b.name));
    let chunk = Arc::new(chunk);
    let new_part = || Part {
        chunk: Arc::clone(&chunk),
        ..Part::default()
    };
    let mut parts = Vec::new();
    let mut part = new_part();
    for (slot, stream) in chunk.streams.iter().enumerate() {
        let mut run_start = 0;
        for i in 0..stream.starts.len() {
            let cost = stream.cost(i);
            if part.events > 0
                && (part.events >= PART_MAX_EVENTS || part.bytes + cost > PART_MAX_BYTES)
            {
                if i > run_start {
                    part.runs.push((slot, run_start, i));
                }
                run_start = i;
                parts.push(std::mem::replace(&mut part, new_part()));
            }
            part.events += 1;
            part.bytes += cost;
        }
        if stream.starts.len() > run_start {
            part.runs.push((slot, run_start, stream.starts.len()));
        }
    }
    if part.events > 0 {
        parts.push(part);
    }
    parts
}

/// The ImportLogEvents request of a part, written straight to bytes.
/// Appends `,{"timestamp":T,"message":M}` to `out`.
fn write_event_json(out: &mut Vec<u8>, timestamp: i64, message: &str) {
    use std::io::Write;
    let _ = write!(out, ",{{\"timestamp\":{timestamp},\"message\":");
    // Flow log lines never need escaping; checking that in one branch-free pass is much
    // cheaper than serde_json's byte-by-byte escaper.
    let needs_escape = message.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        serde_json::to_writer(&mut *out, message).expect("writing to a Vec");
    } else {
        out.push(b'"');
        out.extend_from_slice(message.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
}

fn part_body(
    group: &str,
    object: &str,
    version: &str,
    number: u64,
    part: &Part,
    last: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(part.bytes + part.runs.len() * 64 + 512);
    let string =
        |out: &mut Vec<u8>, s: &str| serde_json::to_writer(out, s).expect("writing to a Vec");
    out.extend_from_slice(b"{\"logGroupName\":");
    string(&mut out, group);
    out.extend_from_slice(b",\"streams\":[");
    for (i, &(slot, first, end)) in part.runs.iter().enumerate() {
        let stream = &part.chunk.streams[slot];
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"logStreamName\":");
        string(&mut out, &stream.name);
        out.extend_from_slice(b",\"logEvents\":[");
        out.extend_from_slice(stream.run(first, end));
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"],\"checkpoint\":");
    let checkpoint = json!({
        "source": CHECKPOINT_SOURCE,
        "object": object,
        "version": version,
        "part": number,
        "last": last,
    });
    serde_json::to_writer(&mut out, &checkpoint).expect("writing to a Vec");
    out.push(b'}');
    out
}

/// Prints the summary (and problems) for people, or as JSON.
pub fn report(summary: &ImportSummary, problems: &[FileProblem], as_json: bool) {
    if as_json {
        println!("{}", json!({ "summary": summary, "problems": problems }));
        return;
    }
    for p in problems {
        match p.line {
            Some(line) => eprintln!("{}:{line}: {}", p.key, p.error),
            None => eprintln!("{}: {}", p.key, p.error),
        }
    }
    let rate = summary.records as f64 / summary.seconds.max(1e-9);
    println!(
        "files: {} found, {} imported, {} already imported, {} failed, {} not flow log files",
        summary.files_found,
        summary.files_imported,
        summary.files_already_imported,
        summary.files_failed,
        summary.files_skipped
    );
    println!(
        "records: {} stored ({} Transit Gateway), {} expired, {} bad lines",
        summary.records,
        summary.transit_gateway_records,
        summary.records_expired,
        summary.records_failed
    );
    println!(
        "{:.1} MB compressed in {:.2} s: {:.0} records/s, {:.1} MB/s",
        summary.compressed_bytes as f64 / 1e6,
        summary.seconds,
        rate,
        summary.compressed_bytes as f64 / 1e6 / summary.seconds.max(1e-9)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A chunk as the reader builds it: streams in order of first appearance.
    fn chunk(events: &[(&str, i64, &str)]) -> Chunk {
        let mut chunk = Chunk::default();
        for &(stream, ts, message) in events {
            let slot = match chunk.streams.iter().position(|s| s.name == stream) {
                Some(slot) => slot,
                None => {
                    chunk.streams.push(StreamEvents {
                        name: stream.to_owned(),
                        ..StreamEvents::default()
                    });
                    chunk.streams.len() - 1
                }
            };
            let stream = &mut chunk.streams[slot];
            stream.starts.push(stream.json.len() as u32);
            write_event_json(&mut stream.json, ts, message);
        }
        chunk
    }

    fn flatten(parts: &[Part]) -> Vec<(String, i64, String)> {
        let mut events = Vec::new();
        for part in parts {
            for &(slot, first, end) in &part.runs {
                let stream = &part.chunk.streams[slot];
                let run = std::str::from_utf8(stream.run(first, end)).unwrap();
                let parsed: Vec<Value> = serde_json::from_str(&format!("[{run}]")).unwrap();
                for event in parsed {
                    events.push((
                        stream.name.clone(),
                        event["timestamp"].as_i64().unwrap(),
                        event["message"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        events
    }

    #[test]
    fn chunks_are_cut_into_bounded_parts_by_stream_and_nothing_is_lost() {
        let big = "x".repeat(PART_MAX_BYTES / 3);
        let events: Vec<(String, i64, String)> = (0..7)
            .map(|i| (format!("eni-{}-all", i % 2), i, format!("{i} {big}")))
            .collect();
        let borrowed: Vec<(&str, i64, &str)> = events
            .iter()
            .map(|(s, t, m)| (s.as_str(), *t, m.as_str()))
            .collect();
        let parts = cut_parts(chunk(&borrowed));
        assert!(parts
            .iter()
            .all(|p| p.bytes <= PART_MAX_BYTES && p.events <= PART_MAX_EVENTS));
        assert_eq!(parts.len(), 4);
        let mut expected = events.clone();
        expected.sort_by(|a, b| a.0.cmp(&b.0)); // by stream, file order within
        assert_eq!(flatten(&parts), expected);
        assert!(cut_parts(Chunk::default()).is_empty());
    }

    #[test]
    fn part_bodies_are_the_json_the_server_reads() {
        let mut parts = cut_parts(chunk(&[
            ("eni-1-all", 5, "a \"quoted\" line"),
            ("eni-2-all", 6, "b"),
            ("eni-1-all", 7, "c\\d"),
        ]));
        assert_eq!(parts.len(), 1);
        let part = parts.pop().unwrap();
        let body: Value =
            serde_json::from_slice(&part_body("/g", "AWSLogs/k", "42", 3, &part, true)).unwrap();
        assert_eq!(
            body,
            json!({
                "logGroupName": "/g",
                "streams": [
                    {"logStreamName": "eni-1-all", "logEvents": [
                        {"timestamp": 5, "message": "a \"quoted\" line"},
                        {"timestamp": 7, "message": "c\\d"}]},
                    {"logStreamName": "eni-2-all", "logEvents": [{"timestamp": 6, "message": "b"}]}
                ],
                "checkpoint": {"source": "vpcflowlogs", "object": "AWSLogs/k", "version": "42", "part": 3, "last": true}
            })
        );
    }
}
