//! Where the columnar tier's files live: under the data directory (the default), or in
//! an object store (S3 or one that speaks its API) under a prefix, `[store] lake`.
//!
//! A part's catalog entry names its file relative to the lake's root
//! (`lake/<group>/aws-account-id=…/…/part-<id>.parquet`), whichever lake holds it: on
//! disk that is `DATA_DIR/lake/…`, in a bucket the object `PREFIX/lake/…`. So the
//! catalog never says where the lake is, and a store opened with another lake than the
//! one its parts were written to refuses to open (its parts are missing) rather than
//! serving less.
//!
//! Writing: on disk a part is written to a temporary file, fsynced and renamed; in an
//! object store it is built in memory and PUT (multipart above [`SINGLE_PUT_BYTES`]),
//! and an acknowledged PUT is durable. Either way the part exists before the journal
//! record that lists it, so a crash leaves at worst an orphan, which the next open
//! deletes: on disk any file under `lake/` that no entry names; in a bucket only
//! objects under `PREFIX/lake/` named like nettrail's parts, so a prefix shared with
//! other files (AWS's own deliveries, say) never loses them.
//!
//! Reading: the store's sync readers (scans, compaction) see an object through
//! [`PartInput`], a Parquet `ChunkReader` that fetches aligned 1 MiB blocks by range
//! request and keeps the recent ones, since Parquet's reader asks for many small
//! ranges (footer, page headers, pages of several columns in turn). The query engine
//! reads the same objects through DataFusion's own async reader, given the store by
//! [`Lake::object_store`]. The object store's futures run on the lake's own small
//! runtime, so a blocking caller on any thread (the server's blocking pool, the
//! compactor's thread) waits on a channel and never needs a runtime of its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use nettrail_columnar::file::{PositionedReader, SharedFile};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

use crate::error::{Result, StoreError};

/// Parts up to this size are uploaded in one PUT; larger ones in 16 MiB pieces.
const SINGLE_PUT_BYTES: usize = 32 << 20;

/// Pieces of a multipart upload.
const MULTIPART_CHUNK_BYTES: usize = 16 << 20;

/// Reads of an object fetch aligned blocks of this size.
const BLOCK_BYTES: u64 = 1 << 20;

/// Blocks of one open object kept at most (a row group's projected columns are read a
/// page of each in turn, so every column's current block should stay).
const CACHED_BLOCKS: usize = 48;

/// Where a store keeps its columnar parts.
#[derive(Debug, Clone, Default)]
pub enum LakeConfig {
    /// Under the data directory, `DATA_DIR/lake/`.
    #[default]
    DataDir,
    /// In an object store.
    ObjectStore(ObjectLakeConfig),
}

/// An object store lake: the store, its URL and the prefix the parts go under.
#[derive(Debug, Clone)]
pub struct ObjectLakeConfig {
    /// The bucket (credentials, endpoint and region already applied).
    pub store: Arc<dyn ObjectStore>,
    /// The bucket's URL as engines name it, `s3://BUCKET`.
    pub url: String,
    /// The prefix in the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

/// The lake of an open store.
#[derive(Debug, Clone)]
pub(crate) enum Lake {
    /// Files under this data directory.
    Local(PathBuf),
    /// Objects in a bucket.
    Object(Arc<ObjectLake>),
}

/// An object store lake with the runtime its requests run on.
#[derive(Debug)]
pub(crate) struct ObjectLake {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: String,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Drop for ObjectLake {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which must not happen on a thread
        // that runs async code; background deletes left unfinished are orphans the next
        // open removes.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ObjectLake {
    /// The object key of a catalog file name.
    fn key(&self, file: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(file)
        } else {
            ObjectPath::from(format!("{}/{file}", self.prefix))
        }
    }

    /// A readable name of the object holding `file`.
    fn display(&self, file: &str) -> String {
        format!("{}/{}", self.url, self.key(file))
    }

    /// Runs `future` on the lake's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        future: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().ok()
    }

    fn error(&self, context: &'static str, file: &str, reason: impl ToString) -> StoreError {
        StoreError::Lake {
            context,
            location: self.display(file),
            reason: reason.to_string(),
        }
    }

    /// Runs an object store request, mapping its failure (or a stopped runtime) to a
    /// [`StoreError::Lake`].
    fn request<T: Send + 'static>(
        &self,
        context: &'static str,
        file: &str,
        future: impl std::future::Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> Result<T> {
        match self.run(future) {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(self.error(context, file, e)),
            None => Err(self.error(context, file, "the store is shutting down")),
        }
    }
}

impl Lake {
    /// The lake of `config` for the data directory `dir`.
    pub(crate) fn open(config: &LakeConfig, dir: &Path) -> Result<Lake> {
        let object = match config {
            // Absolute, as query engines read parts by absolute path: a relative data
            // directory (`--data-dir data`) would otherwise be read from the root.
            LakeConfig::DataDir => {
                let absolute = std::path::absolute(dir).map_err(|e| StoreError::Io {
                    context: "resolving the data directory",
                    path: dir.to_owned(),
                    source: e,
                })?;
                return Ok(Lake::Local(absolute));
            }
            LakeConfig::ObjectStore(object) => object,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nettrail-lake")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Lake {
                context: "starting the object store client",
                location: object.url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Lake::Object(Arc::new(ObjectLake {
            store: Arc::clone(&object.store),
            url: object.url.trim_end_matches('/').to_owned(),
            prefix: object.prefix.trim_matches('/').to_owned(),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })))
    }

    /// A readable name of where `file` is: a path, or the object's URL.
    pub(crate) fn display(&self, file: &str) -> PathBuf {
        match self {
            Lake::Local(dir) => dir.join(file),
            Lake::Object(lake) => PathBuf::from(lake.display(file)),
        }
    }

    /// Where a query engine reads `file`: an absolute path on the local file system,
    /// or the object's key in the store [`Lake::object_store`] gives.
    pub(crate) fn engine_path(&self, file: &str) -> String {
        match self {
            Lake::Local(dir) => dir.join(file).to_string_lossy().into_owned(),
            Lake::Object(lake) => lake.key(file).to_string(),
        }
    }

    /// The object store and its URL, for a lake in one.
    pub(crate) fn object_store(&self) -> Option<(String, Arc<dyn ObjectStore>)> {
        match self {
            Lake::Local(_) => None,
            Lake::Object(lake) => Some((lake.url.clone(), Arc::clone(&lake.store))),
        }
    }

    /// Opens `file` (of `len` bytes, as its catalog entry says) for reading.
    pub(crate) fn open_part(&self, file: &str, len: u64) -> Result<PartInput> {
        match self {
            Lake::Local(dir) => {
                let path = dir.join(file);
                let shared = SharedFile::open(&path)
                    .map_err(|e| StoreError::io("opening part", &path, e))?;
                Ok(PartInput::File(shared))
            }
            Lake::Object(lake) => Ok(PartInput::Object(ObjectInput(Arc::new(ObjectInputState {
                lake: Arc::clone(lake),
                key: lake.key(file),
                file: file.to_owned(),
                len,
                blocks: Mutex::new(BlockCache::default()),
            })))),
        }
    }

    /// Stores a part, `write` filling it, as `relative_dir/name`; returns the catalog
    /// file name, its size and what `write` said. The part is durable when this
    /// returns.
    pub(crate) fn write_part<T, E: std::fmt::Display>(
        &self,
        relative_dir: &str,
        name: &str,
        write: impl FnOnce(&mut (dyn std::io::Write + Send)) -> std::result::Result<T, E>,
    ) -> Result<(String, u64, T)> {
        let file = format!("{relative_dir}/{name}");
        match self {
            Lake::Local(dir) => {
                let folder = dir.join(relative_dir);
                std::fs::create_dir_all(&folder)
                    .map_err(|e| StoreError::io("creating part folder", &folder, e))?;
                let path = folder.join(name);
                let tmp = folder.join(format!("{name}.tmp"));
                let out = std::fs::File::create(&tmp)
                    .map_err(|e| StoreError::io("creating part", &tmp, e))?;
                let mut out = std::io::BufWriter::new(out);
                let written = write(&mut out).map_err(|e| StoreError::Part {
                    path: tmp.clone(),
                    reason: e.to_string(),
                })?;
                let out = out
                    .into_inner()
                    .map_err(|e| StoreError::io("writing part", &tmp, e.into_error()))?;
                out.sync_all()
                    .map_err(|e| StoreError::io("syncing part", &tmp, e))?;
                let bytes = out
                    .metadata()
                    .map_err(|e| StoreError::io("reading part size", &tmp, e))?
                    .len();
                drop(out);
                std::fs::rename(&tmp, &path)
                    .map_err(|e| StoreError::io("renaming part", &path, e))?;
                crate::fsync::sync_dir(&folder)?;
                Ok((file, bytes, written))
            }
            Lake::Object(lake) => {
                let mut buffer = Vec::new();
                let written = write(&mut buffer).map_err(|e| StoreError::Part {
                    path: PathBuf::from(lake.display(&file)),
                    reason: e.to_string(),
                })?;
                let bytes = buffer.len() as u64;
                let store = Arc::clone(&lake.store);
                let key = lake.key(&file);
                let body = Bytes::from(buffer);
                lake.request("uploading part", &file, async move {
                    if body.len() <= SINGLE_PUT_BYTES {
                        store.put(&key, PutPayload::from(body)).await?;
                        return Ok(());
                    }
                    let upload = store.put_multipart(&key).await?;
                    let mut writer =
                        WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK_BYTES);
                    writer.put(body);
                    writer.finish().await?;
                    Ok(())
                })?;
                Ok((file, bytes, written))
            }
        }
    }

    /// Deletes `file` now (a part that no journal record lists yet).
    pub(crate) fn remove(&self, file: &str) {
        match self {
            Lake::Local(dir) => {
                let _ = std::fs::remove_file(dir.join(file));
            }
            Lake::Object(lake) => {
                let store = Arc::clone(&lake.store);
                let key = lake.key(file);
                if let Err(e) =
                    lake.request(
                        "removing part",
                        file,
                        async move { store.delete(&key).await },
                    )
                {
                    tracing::warn!(error = %e, "could not remove part");
                }
            }
        }
    }

    /// Deletes a replaced part's `file` without waiting for it (the last reader of the
    /// part may be on an async thread). A failure leaves an orphan for the next open.
    pub(crate) fn remove_replaced(&self, file: &str) {
        match self {
            Lake::Local(dir) => {
                let path = dir.join(file);
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::debug!(path = %path.display(), "removed replaced part"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "could not remove replaced part")
                    }
                }
            }
            Lake::Object(lake) => {
                let store = Arc::clone(&lake.store);
                let key = lake.key(file);
                let location = lake.display(file);
                lake.handle.spawn(async move {
                    match store.delete(&key).await {
                        Ok(()) => tracing::debug!(%location, "removed replaced part"),
                        Err(e) => {
                            tracing::warn!(%location, error = %e, "could not remove replaced part")
                        }
                    }
                });
            }
        }
    }

    /// On open: checks that every part the catalog lists (`file` → bytes) is there with
    /// its size, then deletes the parts no entry lists (see the module's doc); returns
    /// how many it deleted.
    pub(crate) fn recover(&self, catalog: &HashMap<String, u64>) -> Result<usize> {
        match self {
            Lake::Local(dir) => recover_local(dir, catalog),
            Lake::Object(lake) => recover_object(lake, catalog),
        }
    }
}

/// [`Lake::recover`] under a data directory.
fn recover_local(data_dir: &Path, catalog: &HashMap<String, u64>) -> Result<usize> {
    for (file, bytes) in catalog {
        let path = data_dir.join(file);
        let found = std::fs::metadata(&path).map(|m| m.len());
        if found.as_ref().ok() != Some(bytes) {
            return Err(StoreError::Part {
                path,
                reason: match found {
                    Ok(len) => format!("{len} bytes, its catalog entry says {bytes}"),
                    Err(e) => format!("the catalog lists it but it cannot be read: {e}"),
                },
            });
        }
    }
    let lake = data_dir.join("lake");
    let known: HashSet<PathBuf> = catalog.keys().map(|f| data_dir.join(f)).collect();
    let mut removed = 0;
    let mut pending = vec![lake.clone()];
    let mut dirs = Vec::new();
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("listing", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("listing", &dir, e))?;
            let path = entry.path();
            let is_dir = entry
                .file_type()
                .map_err(|e| StoreError::io("listing", &path, e))?
                .is_dir();
            if is_dir {
                pending.push(path);
            } else if !known.contains(&path) {
                tracing::info!(path = %path.display(), "removing part file no catalog entry names");
                std::fs::remove_file(&path)
                    .map_err(|e| StoreError::io("removing orphan part", &path, e))?;
                removed += 1;
            }
        }
        dirs.push(dir);
    }
    // Deepest first; a folder that still holds something stays.
    for dir in dirs.iter().rev().filter(|d| **d != lake) {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(removed)
}

/// Whether an object's file name is one nettrail writes for a part (`part-<12
/// digits>.parquet`): the only objects an orphan sweep may delete.
fn is_part_name(name: &str) -> bool {
    name.strip_prefix("part-")
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()))
}

/// [`Lake::recover`] in a bucket: one listing of `PREFIX/lake/`.
fn recover_object(lake: &Arc<ObjectLake>, catalog: &HashMap<String, u64>) -> Result<usize> {
    let store = Arc::clone(&lake.store);
    let root = lake.key("lake");
    let listed = lake.request("listing the lake", "lake/", async move {
        let mut objects = Vec::new();
        let mut listing = store.list(Some(&root));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            objects.push((meta.location, meta.size));
        }
        Ok(objects)
    })?;
    let found: HashMap<String, u64> = listed
        .iter()
        .map(|(key, size)| (key.to_string(), *size))
        .collect();
    for (file, bytes) in catalog {
        let key = lake.key(file).to_string();
        match found.get(&key) {
            Some(size) if size == bytes => {}
            Some(size) => {
                return Err(lake.error(
                    "checking parts",
                    file,
                    format!("{size} bytes, its catalog entry says {bytes}"),
                ))
            }
            None => {
                return Err(lake.error(
                    "checking parts",
                    file,
                    "the catalog lists it but the bucket does not hold it (is `[store] lake` the one this data directory's parts were written to?)",
                ))
            }
        }
    }
    let known: HashSet<String> = catalog.keys().map(|f| lake.key(f).to_string()).collect();
    let mut removed = 0;
    for (key, _) in &listed {
        if known.contains(key.as_ref()) || !key.filename().is_some_and(is_part_name) {
            continue;
        }
        let location = format!("{}/{key}", lake.url);
        tracing::info!(%location, "removing part object no catalog entry names");
        let store = Arc::clone(&lake.store);
        let key = key.clone();
        let failure = match lake.run(async move { store.delete(&key).await }) {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(e.to_string()),
            None => Some("the store is shutting down".to_owned()),
        };
        if let Some(reason) = failure {
            return Err(StoreError::Lake {
                context: "removing orphan part",
                location,
                reason,
            });
        }
        removed += 1;
    }
    Ok(removed)
}

/// A part opened for the store's own readers: a local file, or an object read by
/// range requests.
#[derive(Clone)]
pub(crate) enum PartInput {
    /// A file under the data directory.
    File(SharedFile),
    /// An object in the lake's bucket.
    Object(ObjectInput),
}

/// A sequential reader of a [`PartInput`] from a position.
pub(crate) enum PartRead {
    File(PositionedReader),
    Object { input: ObjectInput, position: u64 },
}

impl Read for PartRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            PartRead::File(reader) => reader.read(buf),
            PartRead::Object { input, position } => {
                let n = input.read_at(*position, buf)?;
                *position += n as u64;
                Ok(n)
            }
        }
    }
}

impl Length for PartInput {
    fn len(&self) -> u64 {
        match self {
            PartInput::File(file) => file.len(),
            PartInput::Object(object) => object.0.len,
        }
    }
}

impl ChunkReader for PartInput {
    type T = PartRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<PartRead> {
        match self {
            PartInput::File(file) => file.get_read(start).map(PartRead::File),
            PartInput::Object(object) => Ok(PartRead::Object {
                input: object.clone(),
                position: start,
            }),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            PartInput::File(file) => file.get_bytes(start, length),
            PartInput::Object(object) => object.get_bytes(start, length),
        }
    }
}

/// An object being read, cheap to clone.
#[derive(Clone)]
pub(crate) struct ObjectInput(Arc<ObjectInputState>);

struct ObjectInputState {
    lake: Arc<ObjectLake>,
    key: ObjectPath,
    file: String,
    len: u64,
    blocks: Mutex<BlockCache>,
}

/// The recently fetched blocks of an object, by block number, oldest first.
#[derive(Default)]
struct BlockCache {
    blocks: HashMap<u64, Bytes>,
    order: VecDeque<u64>,
}

impl BlockCache {
    fn insert(&mut self, number: u64, block: Bytes) {
        if self.blocks.insert(number, block).is_none() {
            self.order.push_back(number);
        }
        while self.order.len() > CACHED_BLOCKS {
            if let Some(oldest) = self.order.pop_front() {
                self.blocks.remove(&oldest);
            }
        }
    }
}

impl ObjectInput {
    /// The blocks `numbers` (consecutive), from the cache or fetched in one request.
    fn blocks(&self, numbers: Range<u64>) -> std::io::Result<Vec<Bytes>> {
        let state = &self.0;
        let mut cached = state.blocks.lock().expect("block cache lock");
        let missing: Vec<u64> = numbers
            .clone()
            .filter(|n| !cached.blocks.contains_key(n))
            .collect();
        if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
            // One range from the first missing block to the last, even over cached ones.
            let start = first * BLOCK_BYTES;
            let end = ((last + 1) * BLOCK_BYTES).min(state.len);
            let store = Arc::clone(&state.lake.store);
            let key = state.key.clone();
            let fetched = state
                .lake
                .request("reading part", &state.file, async move {
                    store.get_range(&key, start..end).await
                })
                .map_err(std::io::Error::other)?;
            if fetched.len() as u64 != end - start {
                return Err(std::io::Error::other(format!(
                    "{}: asked for {} bytes at {start}, got {}",
                    state.lake.display(&state.file),
                    end - start,
                    fetched.len()
                )));
            }
            for n in first..=last {
                let from = ((n - first) * BLOCK_BYTES) as usize;
                let to = (from + BLOCK_BYTES as usize).min(fetched.len());
                cached.insert(n, fetched.slice(from..to));
            }
        }
        Ok(numbers.map(|n| cached.blocks[&n].clone()).collect())
    }

    /// Reads from `position` into `buf`, at most to the end of the block holding it.
    fn read_at(&self, position: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if position >= self.0.len || buf.is_empty() {
            return Ok(0);
        }
        let number = position / BLOCK_BYTES;
        let block = self.blocks(number..number + 1)?.remove(0);
        let offset = (position - number * BLOCK_BYTES) as usize;
        let n = buf.len().min(block.len() - offset);
        buf[..n].copy_from_slice(&block[offset..offset + n]);
        Ok(n)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start.saturating_add(length as u64);
        if end > self.0.len {
            return Err(ParquetError::EOF(format!(
                "{length} bytes at offset {start} are past the end of a {}-byte part",
                self.0.len
            )));
        }
        if length == 0 {
            return Ok(Bytes::new());
        }
        let first = start / BLOCK_BYTES;
        let last = (end - 1) / BLOCK_BYTES;
        let blocks = self
            .blocks(first..last + 1)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        let offset = (start - first * BLOCK_BYTES) as usize;
        if blocks.len() == 1 {
            return Ok(blocks[0].slice(offset..offset + length));
        }
        let mut out = BytesMut::with_capacity(length);
        for (i, block) in blocks.iter().enumerate() {
            let from = if i == 0 { offset } else { 0 };
            let to = block.len().min(from + (length - out.len()));
            out.extend_from_slice(&block[from..to]);
        }
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nettrails_part_names_are_swept() {
        assert!(is_part_name("part-000000000042.parquet"));
        assert!(!is_part_name("part-42.parquet"));
        assert!(!is_part_name("part-00000000004x.parquet"));
        assert!(!is_part_name(
            "123456789012_vpcflowlogs_us-east-1_fl-1234_20240611T1800Z_abcd.log.parquet"
        ));
        assert!(!is_part_name("part-000000000042.parquet.tmp"));
    }
}
