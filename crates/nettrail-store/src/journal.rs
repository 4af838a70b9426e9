//! The metadata journal: log groups, streams, retention, tags, resource policies and
//! import checkpoints.
//!
//! `meta.journal` is a sequence of records, each `len: u32 LE | crc32c(json): u32 LE |
//! json`, where the JSON is one [`MetaRecord`]. Every mutation appends one record and
//! fsyncs before it is acknowledged. On open the journal is replayed, a torn tail is cut
//! off, and the live state is written back as a fresh journal (tmp file, fsync, rename,
//! directory fsync), so the journal never grows beyond the live metadata plus the
//! mutations of one run.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::fsync::sync_dir;
use crate::model::{ImportCheckpoint, MetricFilter, ResourcePolicy, SubscriptionFilter};
use crate::parts::PartMeta;

/// Largest record the journal accepts; anything bigger is treated as corruption.
const MAX_RECORD: u32 = 16 << 20;

/// One metadata mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum MetaRecord {
    /// The id counters, so that ids of deleted groups and streams are never reused
    /// (old blocks of a deleted stream must not come back under a new stream).
    IdFloor {
        next_group_id: u64,
        next_stream_id: u64,
        /// The next event sequence number as of the last open, so that sequence
        /// numbers (event ids, subscription cursors) never go back even when retention
        /// has deleted every block.
        #[serde(default)]
        next_seq: u64,
        /// Past every segment id handed out: a compacted segment's id is never reused
        /// (recovery deletes the files of compacted segments by id).
        #[serde(default)]
        next_segment_id: u64,
        /// Past every part id handed out.
        #[serde(default)]
        next_part_id: u64,
    },
    CreateGroup {
        id: u64,
        name: String,
        created: i64,
        class: String,
        kms_key_id: Option<String>,
        tags: BTreeMap<String, String>,
        deletion_protection: bool,
    },
    DeleteGroup {
        id: u64,
    },
    CreateStream {
        group: u64,
        id: u64,
        name: String,
        created: i64,
    },
    DeleteStream {
        group: u64,
        id: u64,
    },
    SetRetention {
        group: u64,
        days: Option<u32>,
    },
    SetTags {
        group: u64,
        tags: BTreeMap<String, String>,
    },
    /// The flow-log format (`${version} ${account-id} …`) that the group's writers
    /// say its events have; the compactor gives such events typed columns.
    SetFlowLogFormat {
        group: u64,
        format: Option<String>,
    },
    PutPolicy {
        policy: ResourcePolicy,
    },
    PutSubscriptionFilter {
        group: u64,
        filter: SubscriptionFilter,
    },
    DeleteSubscriptionFilter {
        group: u64,
        name: String,
    },
    DeletePolicy {
        key: String,
    },
    PutMetricFilter {
        group: u64,
        filter: MetricFilter,
    },
    DeleteMetricFilter {
        group: u64,
        name: String,
    },
    /// How far the import of one source object into a group has come.
    SetImportCheckpoint {
        group: u64,
        source: String,
        object: String,
        checkpoint: ImportCheckpoint,
        /// The store sequence of the commit that stored the checkpoint with its events
        /// (0 when it was recorded by the journal alone).
        #[serde(default)]
        seq: u64,
    },
    RemoveImportCheckpoint {
        group: u64,
        source: String,
        object: String,
    },
    /// A compaction of one group, committed at once: the events of the sealed
    /// segments `retired_segments` and of the parts `removed_parts` are from now on
    /// served by `added_parts`. Every added part's file is durable before this record
    /// is written; the retired files are deleted after it.
    Compact {
        group: u64,
        retired_segments: Vec<u64>,
        removed_parts: Vec<u64>,
        added_parts: Vec<PartMeta>,
        /// Import checkpoints whose checkpoint blocks were in the retired segments and
        /// are not in the journal yet (the journal now keeps them).
        checkpoints: Vec<CompactedCheckpoint>,
    },
}

/// An import checkpoint carried by a [`MetaRecord::Compact`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompactedCheckpoint {
    pub(crate) source: String,
    pub(crate) object: String,
    pub(crate) checkpoint: ImportCheckpoint,
    pub(crate) seq: u64,
}

/// The open journal, appended to under the store's metadata lock.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Reads every intact record of the journal at `path`, cutting off a torn or corrupt
    /// tail. A missing journal reads as empty. (The metric log uses the same framing
    /// with records of its own, hence the type parameter.)
    pub(crate) fn replay<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)
                    .map_err(|e| StoreError::io("reading journal", path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("opening journal", path, e)),
        }
        let mut records = Vec::new();
        let mut pos = 0usize;
        while pos + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
            let end = pos + 8 + len as usize;
            if len > MAX_RECORD || end > bytes.len() {
                break;
            }
            let body = &bytes[pos + 8..end];
            if crc32c::crc32c(body) != crc {
                break;
            }
            let Ok(record) = serde_json::from_slice::<R>(body) else {
                break;
            };
            records.push(record);
            pos = end;
        }
        if pos != bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept_bytes = pos,
                dropped_bytes = bytes.len() - pos,
                "journal has a torn or corrupt tail; it was never acknowledged and is dropped"
            );
        }
        Ok(records)
    }

    /// Atomically replaces the journal at `path` with `records` and opens it for appends.
    pub(crate) fn rewrite<R: Serialize>(path: &Path, records: &[R]) -> Result<Journal> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut buf = Vec::new();
        for record in records {
            frame(record, &mut buf);
        }
        {
            let mut file =
                File::create(&tmp).map_err(|e| StoreError::io("creating journal", &tmp, e))?;
            file.write_all(&buf)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io("writing journal", &tmp, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io("replacing journal", path, e))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| StoreError::io("opening journal", path, e))?;
        Ok(Journal {
            path: path.to_owned(),
            file,
        })
    }

    /// The journal file's size in bytes.
    pub(crate) fn size(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| StoreError::io("reading journal size", &self.path, e))
    }

    /// Appends one record and makes it durable; returns the bytes appended.
    pub(crate) fn append<R: Serialize>(&mut self, record: &R) -> Result<u64> {
        let mut buf = Vec::new();
        frame(record, &mut buf);
        let before = self.size()?;
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Leave no half record behind for the next append to follow.
            let _ = self.file.set_len(before);
            return Err(StoreError::io("appending to journal", &self.path, e));
        }
        Ok(buf.len() as u64)
    }
}

fn frame<R: Serialize>(record: &R, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(record).expect("journal records always serialize");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_cuts_a_torn_tail_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.journal");
        let records = vec![
            MetaRecord::IdFloor {
                next_group_id: 1,
                next_stream_id: 1,
                next_seq: 1,
                next_segment_id: 1,
                next_part_id: 1,
            },
            MetaRecord::SetRetention {
                group: 3,
                days: Some(7),
            },
        ];
        let mut journal = Journal::rewrite(&path, &records).unwrap();
        journal.append(&MetaRecord::DeleteGroup { id: 3 }).unwrap();
        let full = std::fs::read(&path).unwrap();
        for cut in 0..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let replayed: Vec<MetaRecord> = Journal::replay(&path).unwrap();
            assert!(replayed.len() <= 3);
            assert_eq!(
                &replayed[..],
                &[records.clone(), vec![MetaRecord::DeleteGroup { id: 3 }]].concat()
                    [..replayed.len()]
            );
        }
        std::fs::write(&path, &full).unwrap();
        assert_eq!(Journal::replay::<MetaRecord>(&path).unwrap().len(), 3);
    }
}
