//! Shipping events to a nettrail log group, shared by every producer (flows,
//! strongSwan, OpenVPN): events go out per stream with their own timestamps through
//! nettrail's ImportLogEvents (SigV4-signed by the client), in batches; a batch the
//! server does not take is written to an on-disk spool of bounded size and sent again,
//! in order, before anything newer. [`ShipperThread`] runs a shipper on its own
//! thread for producers that live in async code and must never block on the server.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nettrail_client::Client;
use nettrail_formats::flow::LogFormat;
use serde_json::{json, Value};

/// Events per ImportLogEvents request at most (well under the server's limits).
const BATCH_EVENTS: usize = 5_000;

/// Why events could not be shipped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The async runtime for the client could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The spool folder could not be used (or is full: events are being lost).
    #[error("{0}")]
    Spool(String),
    /// The server did not take what the spool holds before the deadline.
    #[error("{0}")]
    Undelivered(String),
}

/// Events by stream name, each `(timestamp in ms, message)`.
pub type StreamEvents = BTreeMap<String, Vec<(i64, String)>>;

/// Ships events to one log group, spooling what the server does not take.
pub struct LogShipper {
    client: Client,
    runtime: tokio::runtime::Runtime,
    group: String,
    spool: Spool,
    /// How long `finish` keeps trying to empty the spool.
    drain_timeout: Duration,
    group_ready: bool,
    /// The flow-log format of the events, declared to the server with the group.
    flow_log_format: Option<String>,
}

impl LogShipper {
    /// A shipper of events to `group` through `client`, spooling to `spool_dir` (at
    /// most `spool_max_bytes`); what an earlier run left in the spool goes out first.
    pub fn new(
        client: Client,
        group: &str,
        spool_dir: &Path,
        spool_max_bytes: u64,
        drain_timeout: Duration,
    ) -> Result<LogShipper, ShipError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ShipError::Runtime)?;
        Ok(LogShipper {
            client,
            runtime,
            group: group.to_owned(),
            spool: Spool::open(spool_dir, spool_max_bytes)?,
            drain_timeout,
            group_ready: false,
            flow_log_format: None,
        })
    }

    /// Declares that the events are flow-log records of `format` (the server then
    /// stores them as typed columns); sent once, with the group's creation.
    pub fn with_flow_log_format(mut self, format: &LogFormat) -> LogShipper {
        self.flow_log_format = Some(format.to_spec());
        self
    }

    /// The log group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Bytes waiting in the spool.
    pub fn spooled_bytes(&self) -> u64 {
        self.spool.bytes
    }

    /// Ships `streams` (each stream's events are put in time order). What the spool
    /// holds goes first; whatever the server does not take is spooled. An error means
    /// events were lost (the spool is full or cannot be written).
    pub fn ship(&mut self, streams: StreamEvents) -> Result<(), ShipError> {
        let requests = self.requests(streams);
        let mut failed = self.drain().err();
        for request in requests {
            if failed.is_none() {
                match self.send(&request) {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::warn!(group = self.group, error = %e, "server did not take events; spooling them");
                        failed = Some(e);
                    }
                }
            }
            self.spool.push(&request)?;
        }
        Ok(())
    }

    /// Tries to empty the spool until the drain timeout; an error names what is left.
    pub fn finish(&mut self) -> Result<(), ShipError> {
        let deadline = Instant::now() + self.drain_timeout;
        let mut wait = Duration::from_millis(200);
        loop {
            match self.drain() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(ShipError::Undelivered(format!(
                        "{} batches of events are still in the spool {} (the server did not take them: {e}); the next run sends them first",
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

    fn requests(&self, streams: StreamEvents) -> Vec<Value> {
        let mut requests = Vec::new();
        for (stream, mut events) in streams {
            // Stable: events of one millisecond keep the order they were made in.
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
            if let Some(format) = &self.flow_log_format {
                let declared = self.runtime.block_on(self.client.nettrail(
                    "SetFlowLogFormat",
                    &json!({ "logGroupName": self.group, "logFormat": format }),
                ));
                match declared {
                    Ok(_) => {}
                    // A server from before the columnar tier: nothing to declare.
                    Err(e) if e.code() == Some("UnknownOperationException") => {}
                    Err(e) => return Err(e.to_string()),
                }
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

/// A [`LogShipper`] on its own thread: producers hand it events without waiting for
/// the server; it ships what arrived every `linger` (and at once when a batch is
/// large), retrying the spool while the server is away.
pub struct ShipperThread {
    sender: Option<mpsc::Sender<(String, i64, String)>>,
    thread: Option<thread::JoinHandle<Result<(), ShipError>>>,
}

impl ShipperThread {
    /// Starts shipping through `shipper`, gathering events for `linger` at most.
    pub fn start(mut shipper: LogShipper, linger: Duration) -> ShipperThread {
        let (sender, receiver) = mpsc::channel::<(String, i64, String)>();
        let thread = thread::Builder::new()
            .name("nettrail-ship".into())
            .spawn(move || {
                let mut pending = StreamEvents::new();
                let mut count = 0usize;
                let mut open = true;
                while open {
                    let deadline = Instant::now() + linger;
                    // Gather until the linger ends, the batch is full, or the
                    // producers are gone.
                    loop {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match receiver.recv_timeout(left) {
                            Ok((stream, time, message)) => {
                                pending.entry(stream).or_default().push((time, message));
                                count += 1;
                                if count >= BATCH_EVENTS {
                                    break;
                                }
                            }
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => {
                                open = false;
                                break;
                            }
                        }
                    }
                    if count > 0 || shipper.spooled_bytes() > 0 {
                        if let Err(e) = shipper.ship(std::mem::take(&mut pending)) {
                            tracing::error!(group = shipper.group(), error = %e, "events lost");
                        }
                        count = 0;
                    }
                }
                shipper.finish()
            })
            .expect("spawning the shipping thread");
        ShipperThread {
            sender: Some(sender),
            thread: Some(thread),
        }
    }

    /// Hands one event of `stream` to the shipper.
    pub fn send(&self, stream: &str, timestamp_ms: i64, message: String) {
        if let Some(sender) = &self.sender {
            // The thread only ends once the sender is dropped, so this cannot fail.
            let _ = sender.send((stream.to_owned(), timestamp_ms, message));
        }
    }

    /// Ships what is left and waits for the spool to empty (up to the drain timeout).
    pub fn finish(mut self) -> Result<(), ShipError> {
        self.sender.take();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ShipError::Undelivered(
                "the shipping thread stopped unexpectedly".into(),
            )),
            None => Ok(()),
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
    fn open(dir: &Path, max_bytes: u64) -> Result<Spool, ShipError> {
        fs::create_dir_all(dir).map_err(|e| {
            ShipError::Spool(format!("creating spool folder {}: {e}", dir.display()))
        })?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            bytes: 0,
            next: 0,
        };
        for (seq, path) in spool.entries().map_err(ShipError::Spool)? {
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

    fn push(&mut self, request: &Value) -> Result<(), ShipError> {
        let bytes = serde_json::to_vec(request).expect("JSON values serialize");
        if self.bytes + bytes.len() as u64 > self.max_bytes {
            return Err(ShipError::Spool(format!(
                "the spool {} is full ({} of {} bytes): events are being lost; raise --spool-max-bytes or bring the server back",
                self.dir.display(),
                self.bytes,
                self.max_bytes
            )));
        }
        let path = self.dir.join(format!("{:020}.json", self.next));
        let tmp = path.with_extension("tmp");
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&tmp, &path));
        written
            .map_err(|e| ShipError::Spool(format!("writing spool file {}: {e}", path.display())))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spool_says_so_and_keeps_what_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 100).unwrap();
        spool.push(&json!({"a": "x".repeat(40)})).unwrap();
        let err = spool.push(&json!({"a": "y".repeat(60)})).unwrap_err();
        assert!(err.to_string().contains("is full"), "{err}");
        assert_eq!(spool.len(), 1);
        // Reopened, it counts what is there and numbers after it.
        let reopened = Spool::open(dir.path(), 100).unwrap();
        assert_eq!(reopened.next, 1);
        assert!(reopened.bytes > 40);
    }

    #[test]
    fn a_torn_spool_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        fs::write(dir.path().join(format!("{:020}.json", 0)), b"{\"torn").unwrap();
        spool.next = 1;
        spool.push(&json!({"ok": 1})).unwrap();
        let (_, request) = spool.oldest().unwrap().unwrap();
        assert_eq!(request, json!({"ok": 1}));
        assert!(dir.path().join(format!("{:020}.damaged", 0)).exists());
    }
}
