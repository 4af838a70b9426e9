//! Segment files and the blocks in them: where a block lives ([`BlockRef`]), the open
//! file readers share ([`Segment`]), reading one block back verified ([`read_block`]),
//! and creating a segment with its header. This is the row tier's block access: the
//! writer, recovery, retention and every read path go through it, and none of it
//! knows about [`FileStore`](crate::FileStore).
//!
//! A segment file is a 16-byte header (`b"NTSEG\0\0\x01"`, format version u32 LE,
//! reserved u32) followed by blocks ([`block`](crate::block)) back to back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::block::{self, BlockHeader, HEADER_LEN};
use crate::error::{CorruptKind, Result, StoreError};
use crate::fsync::sync_dir;

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"NTSEG\0\0\x01";
/// Length of the segment file header.
pub const SEGMENT_HEADER_LEN: u64 = 16;
const SEGMENT_FORMAT_VERSION: u32 = 1;

/// Where a block lives.
#[derive(Clone)]
pub(crate) struct BlockRef {
    pub(crate) segment: Arc<Segment>,
    pub(crate) offset: u64,
    pub(crate) header: BlockHeader,
}

/// An open segment file. Readers keep it alive through their `Arc` even after the
/// sweeper unlinks it.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// Set once no block will be appended: a sealed segment may be reclaimed.
    pub(crate) sealed: AtomicBool,
}

/// Creates segment `id` in `dir` with its header, durably (the file and its directory
/// entry fsynced), and returns the file to append to and the shared reader.
pub(crate) fn create_segment(dir: &Path, id: u64) -> Result<(File, Segment)> {
    let path = dir.join(format!("{id:012}.seg"));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| StoreError::io("creating segment", &path, e))?;
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    header.extend_from_slice(&SEGMENT_MAGIC);
    header.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    file.write_all(&header)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io("writing segment header", &path, e))?;
    sync_dir(dir)?;
    let reader = File::open(&path).map_err(|e| StoreError::io("opening segment", &path, e))?;
    let segment = Segment {
        path,
        file: reader,
        sealed: AtomicBool::new(false),
    };
    Ok((file, segment))
}

/// Reads one block from its segment, verifying it.
pub(crate) fn read_block(block: &BlockRef) -> Result<Vec<u8>> {
    let len = block.header.block_len() as usize;
    let mut bytes = vec![0u8; len];
    let corrupt = |kind| StoreError::Corrupt {
        path: block.segment.path.clone(),
        offset: block.offset,
        kind,
    };
    block
        .segment
        .file
        .read_exact_at(&mut bytes, block.offset)
        .map_err(|e| StoreError::io("reading segment", &block.segment.path, e))?;
    let header = BlockHeader::decode(&bytes).map_err(corrupt)?;
    if header != block.header {
        return Err(corrupt(CorruptKind::HeaderFields));
    }
    block::open_payload(&header, &bytes[HEADER_LEN..]).map_err(corrupt)
}
