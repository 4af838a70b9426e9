//! A part file shared by concurrent readers.
//!
//! Parquet's own `ChunkReader` for `std::fs::File` clones the handle and seeks, and
//! cloned handles share one file offset, so two threads reading one part at once would
//! read each other's bytes. [`SharedFile`] reads at positions instead (`pread`), which
//! needs no offset. Keeping the handle open also keeps a part readable by a read that
//! began before the part was replaced and its file deleted.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

/// An open part file, cheap to clone, read by position.
#[derive(Debug, Clone)]
pub struct SharedFile {
    file: Arc<File>,
    len: u64,
}

impl SharedFile {
    /// Opens the file at `path`.
    pub fn open(path: &Path) -> std::io::Result<SharedFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SharedFile {
            file: Arc::new(file),
            len,
        })
    }
}

impl Length for SharedFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A sequential reader over a [`SharedFile`] from a position.
pub struct PositionedReader {
    file: Arc<File>,
    position: u64,
}

impl Read for PositionedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl ChunkReader for SharedFile {
    type T = PositionedReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<PositionedReader> {
        Ok(PositionedReader {
            file: Arc::clone(&self.file),
            position: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        if start.saturating_add(length as u64) > self.len {
            return Err(ParquetError::EOF(format!(
                "{length} bytes at offset {start} are past the end of a {}-byte part",
                self.len
            )));
        }
        let mut buffer = vec![0; length];
        self.file
            .read_exact_at(&mut buffer, start)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(buffer.into())
    }
}
