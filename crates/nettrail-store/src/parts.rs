//! The columnar tier's units: parts, their catalog entries, and reading them.
//!
//! A part is a Parquet file (see the `nettrail-columnar` crate) holding the events of
//! one log group and one hour of event time, in key order. Its [`PartMeta`] is the
//! catalog entry the metadata journal keeps: the file, its time, sequence and key
//! ranges, rows, bytes and what each stream contributed, so that planning a read never
//! lists a directory and stream statistics survive without the rows they came from.
//!
//! A replaced part is not deleted at once: it is marked obsolete and its file is
//! removed when the last read holding it lets go (a read snapshots the catalog, then
//! opens the files it selected).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use nettrail_columnar::PartReader;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::lake::{Lake, PartInput};
use crate::model::{EventKey, Millis};

/// One hour, the span of event time a part covers.
pub(crate) const PART_SPAN_MS: Millis = 3_600_000;

/// What one stream contributed to a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartStream {
    /// The stream's id when the part was written (a stream deleted and created again
    /// under its name has a new id, and does not see these events).
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) rows: u64,
    pub(crate) min_ts: Millis,
    pub(crate) max_ts: Millis,
    pub(crate) min_ingestion_time: Millis,
    pub(crate) max_ingestion_time: Millis,
    /// The stream's share of the file's bytes (by message bytes).
    pub(crate) bytes: u64,
}

/// A part's catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartMeta {
    pub(crate) id: u64,
    /// The start of the hour of event time it covers, Unix ms.
    pub(crate) hour: Millis,
    /// The file, relative to the data directory.
    pub(crate) file: String,
    /// The file's size.
    pub(crate) bytes: u64,
    pub(crate) rows: u64,
    /// Rows stored as typed columns only.
    pub(crate) typed_rows: u64,
    /// The part's layout, as its file's metadata names it (`messages`, `flow …`).
    pub(crate) layout: String,
    pub(crate) min_ts: Millis,
    pub(crate) max_ts: Millis,
    pub(crate) min_seq: u64,
    pub(crate) max_seq: u64,
    pub(crate) streams: Vec<PartStream>,
}

impl PartMeta {
    /// A lower bound of the smallest key in the part.
    pub(crate) fn first_key(&self) -> EventKey {
        EventKey {
            timestamp: self.min_ts,
            seq: self.min_seq,
        }
    }

    /// An upper bound of the largest key in the part.
    pub(crate) fn last_key(&self) -> EventKey {
        EventKey {
            timestamp: self.max_ts,
            seq: self.max_seq,
        }
    }

    /// What the stream with `id` contributed, if anything.
    pub(crate) fn stream(&self, id: u64) -> Option<&PartStream> {
        self.streams.iter().find(|s| s.id == id)
    }
}

/// A part in the catalog.
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) meta: PartMeta,
    /// The lake holding its file.
    lake: Lake,
    /// Set when a commit replaced the part: its file goes when the last holder drops.
    obsolete: AtomicBool,
}

impl Part {
    /// The part of `meta`, in `lake`.
    pub(crate) fn new(meta: PartMeta, lake: &Lake) -> Part {
        Part {
            meta,
            lake: lake.clone(),
            obsolete: AtomicBool::new(false),
        }
    }

    /// Where its file is (a path, or an object's URL), for messages.
    pub(crate) fn location(&self) -> PathBuf {
        self.lake.display(&self.meta.file)
    }

    /// Where a query engine reads its file (see [`Lake::engine_path`]).
    pub(crate) fn engine_path(&self) -> String {
        self.lake.engine_path(&self.meta.file)
    }

    /// Marks the part replaced: its file is deleted once no read holds it.
    pub(crate) fn retire(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// The error of a failed read of this part.
    pub(crate) fn read_error(&self, e: nettrail_columnar::PartError) -> StoreError {
        StoreError::Part {
            path: self.location(),
            reason: e.to_string(),
        }
    }

    /// Opens the part's file for reading.
    pub(crate) fn open(&self) -> Result<PartReader<PartInput>> {
        let input = self.lake.open_part(&self.meta.file, self.meta.bytes)?;
        PartReader::open(input).map_err(|e| self.read_error(e))
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            self.lake.remove_replaced(&self.meta.file);
        }
    }
}

/// The start of the hour holding `timestamp`.
pub(crate) fn hour_of(timestamp: Millis) -> Millis {
    timestamp.div_euclid(PART_SPAN_MS) * PART_SPAN_MS
}

/// Where the parts of one group and hour live, relative to the data directory: AWS's
/// Hive-compatible layout of flow logs delivered to S3 as Parquet, under the group's
/// name, so that Athena's documented DDL, Spark and DuckDB read the folder as it is.
pub(crate) fn part_dir(
    group: &str,
    account_id: &str,
    service: &str,
    region: &str,
    hour: Millis,
) -> String {
    let t = nettrail_formats::time::UtcDateTime::from_unix(hour.div_euclid(1000));
    format!(
        "{}/aws-account-id={account_id}/aws-service={service}/aws-region={region}/year={:04}/month={:02}/day={:02}/hour={:02}",
        lake_folder(group),
        t.year,
        t.month,
        t.day,
        t.hour
    )
}

/// The folder of a log group's parts, relative to the data directory
/// (`lake/vpc_flows-1a2b3c4d`, see [`encode_group`]).
pub fn lake_folder(group: &str) -> String {
    format!("lake/{}", encode_group(group))
}

/// A log group name in lowercase letters, digits and underscores, with no leading or
/// trailing underscore (`/vpc/Flow-Logs` → `vpc_flow_logs`; empty for `///`): the
/// readable part of a part folder's name, and the query engine's table alias.
pub fn readable_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    mapped.trim_matches('_').to_owned()
}

/// A log group name as one path component that every engine reads as it is: its
/// [`readable_name`], then the CRC-32C of the exact name (`/vpc/Flows` →
/// `vpc_flows-1a2b3c4d`), so that names differing only in punctuation or case stay
/// apart. (Percent-encoding would be exact, but object stores and Hadoop decode `%` in
/// paths, each its own way.)
pub(crate) fn encode_group(name: &str) -> String {
    let readable = readable_name(name);
    let readable = if readable.is_empty() {
        "group"
    } else {
        &readable
    };
    format!("{readable}-{:08x}", crc32c::crc32c(name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_live_in_awss_hive_layout_under_the_group() {
        let dir = part_dir(
            "/vpc/flow logs",
            "123456789012",
            "vpcflowlogs",
            "us-east-1",
            1_718_131_013_000,
        );
        assert!(dir.starts_with("lake/vpc_flow_logs-"), "{dir}");
        assert!(dir.ends_with("/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=06/day=11/hour=18"), "{dir}");
        assert_ne!(encode_group("/vpc/flows"), encode_group("vpc_flows"));
        assert_eq!(
            encode_group("///"),
            format!("group-{:08x}", crc32c::crc32c(b"///"))
        );
        assert_eq!(hour_of(1_718_131_013_000), 1_718_128_800_000);
        assert_eq!(hour_of(-1), -PART_SPAN_MS);
    }
}
