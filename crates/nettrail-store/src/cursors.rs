//! Durable reader cursors of one log group (how far each subscription has delivered).
//!
//! Cursors change with every delivered batch, so they are kept out of the metadata
//! journal (which would grow with every batch) in two small files in the group's
//! directory, `cursors.0` and `cursors.1`, written alternately. Each holds every cursor
//! of the group:
//!
//! ```text
//! offset size field
//!   0    8   magic b"NTCUR\0\0\x01"
//!   8    8   generation (u64 LE), one more than the previous write
//!  16    4   json_len (u32 LE)
//!  20    4   CRC-32C of the JSON
//!  24    n   JSON object: cursor name -> sequence number
//! ```
//!
//! A write replaces the older file and fsyncs it; a write torn by a crash leaves that
//! file invalid and the other one, one write older, is read. So a cursor never goes
//! backwards by more than its last update, and never forwards past what was written.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

const MAGIC: [u8; 8] = *b"NTCUR\0\0\x01";
const HEADER_LEN: usize = 24;

/// The cursors of one group, as last written.
pub(crate) struct CursorFile {
    dir: PathBuf,
    generation: u64,
    cursors: BTreeMap<String, u64>,
}

impl CursorFile {
    /// Reads the newest valid cursor file of `dir` (none: no cursors).
    pub(crate) fn open(dir: &Path) -> Result<CursorFile> {
        let mut best: Option<(u64, BTreeMap<String, u64>)> = None;
        for slot in 0..2 {
            let path = slot_path(dir, slot);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("reading cursors", &path, e)),
            };
            let Some((generation, cursors)) = decode(&bytes) else {
                tracing::warn!(path = %path.display(), "cursor file is torn or damaged; using the other one");
                continue;
            };
            if best.as_ref().is_none_or(|(g, _)| generation > *g) {
                best = Some((generation, cursors));
            }
        }
        let (generation, cursors) = best.unwrap_or_default();
        Ok(CursorFile {
            dir: dir.to_owned(),
            generation,
            cursors,
        })
    }

    /// The highest cursor of the group, if any.
    pub(crate) fn highest(&self) -> Option<u64> {
        self.cursors.values().copied().max()
    }

    /// The cursor `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<u64> {
        self.cursors.get(name).copied()
    }

    /// Sets (or with `None` removes) cursor `name`; durable when it returns.
    pub(crate) fn set(&mut self, name: &str, seq: Option<u64>) -> Result<()> {
        let mut next = self.cursors.clone();
        match seq {
            Some(seq) => next.insert(name.to_owned(), seq),
            None => next.remove(name),
        };
        let generation = self.generation + 1;
        let json = serde_json::to_vec(&next).expect("a map of numbers serializes");
        let mut bytes = Vec::with_capacity(HEADER_LEN + json.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&generation.to_le_bytes());
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
        bytes.extend_from_slice(&json);
        // The slot the previous write did not use: the newest valid file stays intact
        // until this one is durable.
        let path = slot_path(&self.dir, (generation % 2) as usize);
        let created = !path.exists();
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| StoreError::io("creating group directory", &self.dir, e))?;
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.sync_data()
            })
            .map_err(|e| StoreError::io("writing cursors", &path, e))?;
        if created {
            crate::fsync::sync_dir(&self.dir)?;
        }
        self.generation = generation;
        self.cursors = next;
        Ok(())
    }
}

fn slot_path(dir: &Path, slot: usize) -> PathBuf {
    dir.join(format!("cursors.{slot}"))
}

fn decode(bytes: &[u8]) -> Option<(u64, BTreeMap<String, u64>)> {
    if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
        return None;
    }
    let generation = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    let len = u32::from_le_bytes(bytes[16..20].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[20..24].try_into().ok()?);
    let json = bytes.get(HEADER_LEN..HEADER_LEN + len)?;
    if crc32c::crc32c(json) != crc {
        return None;
    }
    Some((generation, serde_json::from_slice(json).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_reopen_and_a_torn_write_falls_back_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut cursors = CursorFile::open(dir.path()).unwrap();
        assert_eq!(cursors.get("a"), None);
        cursors.set("a", Some(5)).unwrap();
        cursors.set("b", Some(7)).unwrap();
        cursors.set("a", Some(9)).unwrap();
        let reopened = CursorFile::open(dir.path()).unwrap();
        assert_eq!((reopened.get("a"), reopened.get("b")), (Some(9), Some(7)));

        // Generation 3 went to cursors.1; tear it: generation 2 (a=5, b=7) is read.
        let newest = dir.path().join("cursors.1");
        let len = std::fs::metadata(&newest).unwrap().len();
        let file = OpenOptions::new().write(true).open(&newest).unwrap();
        file.set_len(len - 3).unwrap();
        let mut fallen_back = CursorFile::open(dir.path()).unwrap();
        assert_eq!(
            (fallen_back.get("a"), fallen_back.get("b")),
            (Some(5), Some(7))
        );

        // The next write replaces the torn file, not the good one.
        fallen_back.set("b", None).unwrap();
        let last = CursorFile::open(dir.path()).unwrap();
        assert_eq!((last.get("a"), last.get("b")), (Some(5), None));
        assert_eq!(last.generation, 3);
    }
}
