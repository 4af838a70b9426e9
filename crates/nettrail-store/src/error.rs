//! The store's error type.

use std::path::PathBuf;

/// Why a block or journal record failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorruptKind {
    /// Fewer bytes than the record needs.
    #[error("truncated")]
    Truncated,
    /// The record does not start with the expected magic bytes.
    #[error("bad magic bytes")]
    BadMagic,
    /// The header checksum does not match.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// The header is well-formed but its fields contradict each other.
    #[error("inconsistent header fields")]
    HeaderFields,
    /// The payload checksum does not match.
    #[error("payload checksum mismatch")]
    PayloadChecksum,
    /// The codec byte names no known codec.
    #[error("unknown codec {0}")]
    UnknownCodec(u8),
    /// The payload does not decompress to the recorded length.
    #[error("payload does not decompress")]
    Decompress,
    /// The decompressed payload does not hold the events the header promises.
    #[error("payload events are malformed")]
    PayloadFields,
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No log group has that name.
    #[error("log group {0:?} does not exist")]
    GroupNotFound(String),
    /// A log group with that name exists already.
    #[error("log group {0:?} already exists")]
    GroupExists(String),
    /// No log stream has that name in the group.
    #[error("log stream {stream:?} does not exist in log group {group:?}")]
    StreamNotFound {
        /// The log group.
        group: String,
        /// The missing stream.
        stream: String,
    },
    /// A log stream with that name exists already in the group.
    #[error("log stream {stream:?} already exists in log group {group:?}")]
    StreamExists {
        /// The log group.
        group: String,
        /// The existing stream.
        stream: String,
    },
    /// No resource policy has that key.
    #[error("resource policy {0:?} does not exist")]
    PolicyNotFound(String),
    /// An I/O operation failed; `context` says which and on what.
    #[error("{context} {path}: {source}")]
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Stored data failed verification when read.
    #[error("corrupt block in {path} at offset {offset}: {kind}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the block.
        offset: u64,
        /// What failed.
        kind: CorruptKind,
    },
    /// A part of the columnar tier is missing, unreadable or not what its catalog
    /// entry says.
    #[error("part {path}: {reason}")]
    Part {
        /// The part file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The object store holding the columnar tier (`[store] lake`) failed a request.
    #[error("{context} {location}: {reason}")]
    Lake {
        /// What was being done.
        context: &'static str,
        /// The object or bucket, as a URL.
        location: String,
        /// What the object store said.
        reason: String,
    },
    /// The data directory is held by another running store.
    #[error("data directory {0} is in use by another nettrail process")]
    Locked(PathBuf),
    /// The store has been shut down.
    #[error("the store is shut down")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// True when the error is a fault of the machine (disk, corruption) rather than of
    /// the request: such errors map to a server-side status.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            StoreError::Io { .. }
                | StoreError::Corrupt { .. }
                | StoreError::Lake { .. }
                | StoreError::Locked(_)
                | StoreError::Closed
        )
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
