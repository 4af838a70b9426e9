//! Where VPC Flow Logs puts its files in S3: the four key layouts (plain or
//! Hive-compatible partitions, per day or per hour), the file names, and the rule by
//! which a writer starts a new file.
//!
//! ```text
//! prefix/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/[16/]FILE
//! prefix/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2018/month=06/day=20/[hour=16/]FILE
//! FILE = 123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz
//! ```

use std::fmt::Write;

use crate::time::UtcDateTime;

/// How files are partitioned into folders (`DestinationOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Layout {
    /// `HiveCompatiblePartitions`: `year=2018/month=06/…` instead of `2018/06/…`.
    pub hive_compatible_partitions: bool,
    /// `PerHourPartition`: one more folder level for the hour.
    pub per_hour_partition: bool,
}

impl Layout {
    /// The four layouts.
    pub const ALL: [Layout; 4] = [
        Layout {
            hive_compatible_partitions: false,
            per_hour_partition: false,
        },
        Layout {
            hive_compatible_partitions: false,
            per_hour_partition: true,
        },
        Layout {
            hive_compatible_partitions: true,
            per_hour_partition: false,
        },
        Layout {
            hive_compatible_partitions: true,
            per_hour_partition: true,
        },
    ];
}

/// The file format (`DestinationOptions.FileFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FileFormat {
    /// `plain-text`: gzip text with a header line, `.log.gz`.
    #[default]
    PlainText,
    /// `parquet`: `.log.parquet` (readers accept any `.parquet`).
    Parquet,
}

impl FileFormat {
    /// The file name extension AWS writes.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::PlainText => ".log.gz",
            FileFormat::Parquet => ".log.parquet",
        }
    }
}

/// Where a flow log subscription writes its files: everything of a key but the slot
/// and the hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Destination {
    /// The bucket prefix before `AWSLogs/` (a `/` is added when missing).
    pub prefix: String,
    /// The account that owns the flow log.
    pub account_id: String,
    /// The flow log's region.
    pub region: String,
    /// The folder layout.
    pub layout: Layout,
    /// The flow log subscription's id (`fl-…`).
    pub flow_log_id: String,
    /// Text or Parquet.
    pub file_format: FileFormat,
}

/// A flow log file's object key, every part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    /// The bucket prefix before `AWSLogs/` (empty, or ending in `/`).
    pub prefix: String,
    /// An AWS Organizations id folder before the account (`o-…`), which some
    /// organisation-wide buckets have.
    pub organization_id: Option<String>,
    /// The account that owns the flow log.
    pub account_id: String,
    /// The flow log's region.
    pub region: String,
    /// The folder layout.
    pub layout: Layout,
    /// The date (and hour, with per-hour partitions) of the folder.
    pub partition: UtcDateTime,
    /// The flow log subscription's id (`fl-…`).
    pub flow_log_id: String,
    /// The start of the 5-minute slot of the records' end times (UTC, seconds zero).
    pub slot: UtcDateTime,
    /// The random part of the name that keeps files of one slot apart.
    pub hash: String,
    /// Text or Parquet.
    pub file_format: FileFormat,
}

/// Why a key is not a flow log file key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `AWSLogs/` folder.
    #[error("no AWSLogs/ folder in the key")]
    NoAwsLogs,
    /// The folders after `AWSLogs/` are not one of the four layouts.
    #[error("the folders after AWSLogs/ are not a flow log layout: {0}")]
    Folders(&'static str),
    /// The file name is not `ACCOUNT_vpcflowlogs_REGION_FLOWLOGID_YYYYMMDDTHHmmZ_HASH.log.gz`.
    #[error("the file name is not a flow log file name: {0}")]
    FileName(&'static str),
    /// The file name's account or region disagrees with the folders.
    #[error("the file name's {0} disagrees with the folders")]
    Mismatch(&'static str),
}

impl ObjectKey {
    /// Parses an object key (or a path relative to a local copy of a bucket).
    pub fn parse(key: &str) -> Result<ObjectKey, KeyError> {
        let at = find_aws_logs(key).ok_or(KeyError::NoAwsLogs)?;
        let prefix = &key[..at];
        let mut parts: Vec<&str> = key[at + "AWSLogs/".len()..].split('/').collect();
        let file = parts.pop().ok_or(KeyError::Folders("no file name"))?;
        let hive = parts
            .first()
            .is_some_and(|p| p.starts_with("aws-account-id="));
        let organization_id = match parts.first() {
            Some(p) if !hive && p.starts_with("o-") && parts.len() > 1 => {
                Some(parts.remove(0).to_owned())
            }
            _ => None,
        };
        let per_hour = match (parts.len(), hive) {
            (6, _) => false,
            (7, _) => true,
            _ => {
                return Err(KeyError::Folders(
                    "expected account, service, region, year, month, day [and hour]",
                ))
            }
        };
        let folder = |i: usize, hive_name: &'static str| -> Result<&str, KeyError> {
            let part = parts[i];
            if hive {
                part.strip_prefix(hive_name)
                    .and_then(|p| p.strip_prefix('='))
                    .ok_or(KeyError::Folders("a Hive partition folder is misnamed"))
            } else {
                Ok(part)
            }
        };
        let account_id = folder(0, "aws-account-id")?;
        if folder(1, "aws-service")? != "vpcflowlogs" {
            return Err(KeyError::Folders("the service folder is not vpcflowlogs"));
        }
        let region = folder(2, "aws-region")?;
        let year = number(folder(3, "year")?, 4).ok_or(KeyError::Folders("bad year"))?;
        let month = number(folder(4, "month")?, 2).ok_or(KeyError::Folders("bad month"))?;
        let day = number(folder(5, "day")?, 2).ok_or(KeyError::Folders("bad day"))?;
        let hour = if per_hour {
            number(folder(6, "hour")?, 2).ok_or(KeyError::Folders("bad hour"))?
        } else {
            0
        };
        let partition = UtcDateTime {
            year: year as i32,
            month: month as u8,
            day: day as u8,
            hour: hour as u8,
            minute: 0,
            second: 0,
        };
        if partition.to_unix().is_none() {
            return Err(KeyError::Folders("the date does not exist"));
        }
        let name = FileName::parse(file)?;
        if name.account_id != account_id {
            return Err(KeyError::Mismatch("account"));
        }
        if name.region != region {
            return Err(KeyError::Mismatch("region"));
        }
        Ok(ObjectKey {
            prefix: prefix.to_owned(),
            organization_id,
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            layout: Layout {
                hive_compatible_partitions: hive,
                per_hour_partition: per_hour,
            },
            partition,
            flow_log_id: name.flow_log_id.to_owned(),
            slot: name.slot,
            hash: name.hash.to_owned(),
            file_format: name.file_format,
        })
    }

    /// The key of a new file of `destination` for the slot holding `end_seconds`, with
    /// folders from the slot, as VPC Flow Logs writes them.
    pub fn for_slot(destination: &S3Destination, end_seconds: i64, hash: &str) -> ObjectKey {
        let S3Destination {
            prefix,
            account_id,
            region,
            layout,
            flow_log_id,
            file_format,
        } = destination;
        let (layout, file_format) = (*layout, *file_format);
        let mut prefix = prefix.to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        let slot = UtcDateTime::from_unix(end_seconds - end_seconds.rem_euclid(SLOT_SECONDS));
        let partition = UtcDateTime {
            hour: if layout.per_hour_partition {
                slot.hour
            } else {
                0
            },
            minute: 0,
            ..slot
        };
        ObjectKey {
            prefix,
            organization_id: None,
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            layout,
            partition,
            flow_log_id: flow_log_id.to_owned(),
            slot,
            hash: hash.to_owned(),
            file_format,
        }
    }

    /// The key, as a string.
    pub fn key(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str(&self.prefix);
        out.push_str("AWSLogs/");
        let p = &self.partition;
        if self.layout.hive_compatible_partitions {
            let _ = write!(
                out,
                "aws-account-id={}/aws-service=vpcflowlogs/aws-region={}/year={:04}/month={:02}/day={:02}/",
                self.account_id, self.region, p.year, p.month, p.day
            );
            if self.layout.per_hour_partition {
                let _ = write!(out, "hour={:02}/", p.hour);
            }
        } else {
            if let Some(org) = &self.organization_id {
                out.push_str(org);
                out.push('/');
            }
            let _ = write!(
                out,
                "{}/vpcflowlogs/{}/{:04}/{:02}/{:02}/",
                self.account_id, self.region, p.year, p.month, p.day
            );
            if self.layout.per_hour_partition {
                let _ = write!(out, "{:02}/", p.hour);
            }
        }
        out.push_str(&self.file_name());
        out
    }

    /// The file name alone.
    pub fn file_name(&self) -> String {
        let s = &self.slot;
        format!(
            "{}_vpcflowlogs_{}_{}_{:04}{:02}{:02}T{:02}{:02}Z_{}{}",
            self.account_id,
            self.region,
            self.flow_log_id,
            s.year,
            s.month,
            s.day,
            s.hour,
            s.minute,
            self.hash,
            self.file_format.extension()
        )
    }

    /// The slot start as a Unix time in seconds.
    pub fn slot_start(&self) -> i64 {
        self.slot.to_unix().expect("validated")
    }
}

fn find_aws_logs(key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = key[from..].find("AWSLogs/") {
        let at = from + i;
        if at == 0 || key.as_bytes()[at - 1] == b'/' {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn number(text: &str, digits: usize) -> Option<u32> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

struct FileName<'k> {
    account_id: &'k str,
    region: &'k str,
    flow_log_id: &'k str,
    slot: UtcDateTime,
    hash: &'k str,
    file_format: FileFormat,
}

impl<'k> FileName<'k> {
    fn parse(name: &'k str) -> Result<FileName<'k>, KeyError> {
        let (stem, file_format) = if let Some(stem) = name.strip_suffix(".log.gz") {
            (stem, FileFormat::PlainText)
        } else if let Some(stem) = name.strip_suffix(".log.parquet") {
            (stem, FileFormat::Parquet)
        } else if let Some(stem) = name.strip_suffix(".parquet") {
            (stem, FileFormat::Parquet)
        } else {
            return Err(KeyError::FileName(
                "it ends neither in .log.gz nor in .parquet",
            ));
        };
        // ACCOUNT _vpcflowlogs_ REGION _ FLOWLOGID _ TIME _ HASH; regions and flow log
        // ids have no underscore.
        let (account_id, rest) = stem
            .split_once("_vpcflowlogs_")
            .ok_or(KeyError::FileName("no _vpcflowlogs_"))?;
        let parts: Vec<&str> = rest.split('_').collect();
        let [region, flow_log_id, time, hash] = parts[..] else {
            return Err(KeyError::FileName(
                "expected REGION_FLOWLOGID_TIME_HASH after vpcflowlogs",
            ));
        };
        let slot = parse_slot(time).ok_or(KeyError::FileName("the time is not YYYYMMDDTHHmmZ"))?;
        if account_id.is_empty() || region.is_empty() || flow_log_id.is_empty() || hash.is_empty() {
            return Err(KeyError::FileName("an empty part"));
        }
        Ok(FileName {
            account_id,
            region,
            flow_log_id,
            slot,
            hash,
            file_format,
        })
    }
}

fn parse_slot(time: &str) -> Option<UtcDateTime> {
    let b = time.as_bytes();
    if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
        return None;
    }
    let slot = UtcDateTime {
        year: number(&time[0..4], 4)? as i32,
        month: number(&time[4..6], 2)? as u8,
        day: number(&time[6..8], 2)? as u8,
        hour: number(&time[9..11], 2)? as u8,
        minute: number(&time[11..13], 2)? as u8,
        second: 0,
    };
    slot.to_unix().map(|_| slot)
}

/// The length of a delivery slot: files hold records whose end time falls in one
/// 5-minute slot.
pub const SLOT_SECONDS: i64 = 300;

/// The largest file AWS writes before starting another in the same slot.
pub const MAX_FILE_BYTES: u64 = 75 * 1024 * 1024;

/// When a writer must close its open file and start a new one: VPC Flow Logs publishes
/// a file per 5-minute slot of record end times, and starts another file within a slot
/// once one reaches the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Slot length in seconds (300).
    pub slot_seconds: i64,
    /// Bytes after which a file is closed (75 MiB).
    pub max_file_bytes: u64,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            slot_seconds: SLOT_SECONDS,
            max_file_bytes: MAX_FILE_BYTES,
        }
    }
}

impl Rotation {
    /// The start of the slot a record with this end time (Unix seconds) belongs to.
    pub fn slot_start(&self, end_seconds: i64) -> i64 {
        end_seconds - end_seconds.rem_euclid(self.slot_seconds)
    }

    /// Whether a record ending at `end_seconds` and `record_bytes` long can go into the
    /// open file of slot `file_slot` that holds `file_bytes`: same slot, and the file
    /// stays within the limit (an empty file takes any record).
    pub fn fits(
        &self,
        file_slot: i64,
        file_bytes: u64,
        end_seconds: i64,
        record_bytes: u64,
    ) -> bool {
        self.slot_start(end_seconds) == file_slot
            && (file_bytes == 0 || file_bytes + record_bytes <= self.max_file_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str =
        "123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz";

    #[test]
    fn the_documented_file_name_parses_and_writes_back() {
        let key = format!("my-logs/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/{NAME}");
        let parsed = ObjectKey::parse(&key).unwrap();
        assert_eq!(parsed.prefix, "my-logs/");
        assert_eq!(parsed.flow_log_id, "fl-1234abcd");
        assert_eq!(parsed.hash, "fe123456");
        assert_eq!(parsed.slot_start(), 1_529_511_600);
        assert_eq!(parsed.file_format, FileFormat::PlainText);
        assert_eq!(parsed.key(), key);
    }

    #[test]
    fn all_four_layouts_round_trip() {
        let expected = [
            format!("AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/{NAME}"),
            format!("AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/16/{NAME}"),
            format!("AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2018/month=06/day=20/{NAME}"),
            format!("AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2018/month=06/day=20/hour=16/{NAME}"),
        ];
        for (layout, expected) in Layout::ALL.into_iter().zip(expected) {
            let destination = S3Destination {
                prefix: String::new(),
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                layout,
                flow_log_id: "fl-1234abcd".into(),
                file_format: FileFormat::PlainText,
            };
            let key = ObjectKey::for_slot(&destination, 1_529_511_600 + 299, "fe123456");
            assert_eq!(key.key(), expected);
            let parsed = ObjectKey::parse(&expected).unwrap();
            assert_eq!(parsed, key);
        }
    }

    #[test]
    fn other_keys_say_what_is_wrong() {
        let err = |k: &str| ObjectKey::parse(k).unwrap_err().to_string();
        assert_eq!(err("logs/x.log.gz"), "no AWSLogs/ folder in the key");
        assert!(err(&format!(
            "AWSLogs/123456789012/cloudtrail/us-east-1/2018/06/20/{NAME}"
        ))
        .contains("vpcflowlogs"));
        assert!(
            err("AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/readme.txt")
                .contains(".log.gz")
        );
        assert_eq!(
            err(&format!(
                "AWSLogs/999999999999/vpcflowlogs/us-east-1/2018/06/20/{NAME}"
            )),
            "the file name's account disagrees with the folders"
        );
        assert!(err(&format!(
            "AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/02/30/{NAME}"
        ))
        .contains("date"));
    }

    #[test]
    fn organisation_folders_and_parquet_names_are_read() {
        let key = "AWSLogs/o-abc123/123456789012/vpcflowlogs/eu-west-1/2024/01/02/123456789012_vpcflowlogs_eu-west-1_fl-0a_20240102T0005Z_abcdef01.log.parquet";
        let parsed = ObjectKey::parse(key).unwrap();
        assert_eq!(parsed.organization_id.as_deref(), Some("o-abc123"));
        assert_eq!(parsed.file_format, FileFormat::Parquet);
        assert_eq!(parsed.key(), key);
    }

    #[test]
    fn rotation_follows_slots_and_size() {
        let rotation = Rotation::default();
        let slot = rotation.slot_start(1_529_511_600 + 120);
        assert_eq!(slot, 1_529_511_600);
        assert!(rotation.fits(slot, 10, 1_529_511_899, 100));
        assert!(
            !rotation.fits(slot, 10, 1_529_511_900, 100),
            "the next slot"
        );
        assert!(
            !rotation.fits(slot, MAX_FILE_BYTES - 50, 1_529_511_700, 100),
            "full"
        );
        assert!(
            rotation.fits(slot, 0, 1_529_511_700, MAX_FILE_BYTES + 1),
            "an empty file takes anything"
        );
    }
}
