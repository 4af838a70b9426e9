//! The metric log: the per-minute aggregates that metric filters publish, and how far
//! each log group's metric filters have counted.
//!
//! `metrics.journal` uses the metadata journal's framing (`len | crc32c | json`, see
//! [`journal`](crate::journal)) with [`MetricRecord`]s. A metric filter pass over a
//! group appends one `commit` record holding both the aggregates it adds and the group's
//! new metric cursor, fsynced before it returns: the cursor and the counts it covers
//! are durable together, so a crash neither loses counts nor counts an event twice.
//! The whole log is held in memory (one entry per series and minute). On open, and
//! whenever the file has grown to twice its last snapshot (and past a floor), it is
//! rewritten as a snapshot without the minutes older than the retention.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::journal::Journal;
use crate::model::{MetricCommit, MetricId, MetricPoint, Millis, MinuteStats};

/// The log is not rewritten before it holds this many bytes.
const REWRITE_FLOOR_BYTES: u64 = 8 << 20;
/// Points per snapshot record.
const SNAPSHOT_CHUNK: usize = 4096;

/// One record of the metric log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum MetricRecord {
    /// A metric filter pass over group `group`: the aggregates it adds, and its cursor.
    Commit {
        group: u64,
        cursor: u64,
        points: Vec<MetricPoint>,
    },
    /// Aggregates of a snapshot.
    Points { points: Vec<MetricPoint> },
    /// The group was deleted: its cursor goes.
    ForgetGroup { group: u64 },
}

/// One series: its unit and its minutes.
#[derive(Debug, Default)]
struct Series {
    unit: Option<String>,
    minutes: BTreeMap<Millis, MinuteStats>,
}

/// The open metric log.
pub(crate) struct MetricLog {
    path: PathBuf,
    journal: Journal,
    series: BTreeMap<MetricId, Series>,
    cursors: HashMap<u64, u64>,
    retention_ms: i64,
    max_series: usize,
    /// Bytes in the file, and right after the last rewrite.
    size: u64,
    snapshot_size: u64,
}

impl MetricLog {
    /// Opens (creating if missing) the log at `path`, forgets the cursors of groups not
    /// in `live_groups` and the minutes older than `retention_ms`, and rewrites it.
    pub(crate) fn open(
        path: &Path,
        retention_ms: i64,
        max_series: usize,
        live_groups: &HashSet<u64>,
        now: Millis,
    ) -> Result<MetricLog> {
        let records: Vec<MetricRecord> = Journal::replay(path)?;
        let mut series: BTreeMap<MetricId, Series> = BTreeMap::new();
        let mut cursors = HashMap::new();
        for record in records {
            match record {
                MetricRecord::Commit {
                    group,
                    cursor,
                    points,
                } => {
                    cursors.insert(group, cursor);
                    add_points(&mut series, points);
                }
                MetricRecord::Points { points } => add_points(&mut series, points),
                MetricRecord::ForgetGroup { group } => {
                    cursors.remove(&group);
                }
            }
        }
        cursors.retain(|group, _| live_groups.contains(group));
        prune(&mut series, now - retention_ms);
        let journal = Journal::rewrite(path, &snapshot(&series, &cursors))?;
        let size = journal.size()?;
        Ok(MetricLog {
            path: path.to_owned(),
            journal,
            series,
            cursors,
            retention_ms,
            max_series,
            size,
            snapshot_size: size,
        })
    }

    /// The metric cursor of group `group`.
    pub(crate) fn cursor(&self, group: u64) -> Option<u64> {
        self.cursors.get(&group).copied()
    }

    /// The highest cursor of any group (sequence numbers must never go below it).
    pub(crate) fn highest_cursor(&self) -> u64 {
        self.cursors.values().copied().max().unwrap_or(0)
    }

    /// Adds `points` and moves the cursor of `group`, durably, in one record.
    pub(crate) fn commit(
        &mut self,
        group: u64,
        cursor: u64,
        mut points: Vec<MetricPoint>,
        now: Millis,
    ) -> Result<MetricCommit> {
        let mut outcome = MetricCommit::default();
        let oldest = now - self.retention_ms;
        let mut new_series = HashSet::new();
        points.retain(|p| {
            if p.minute < oldest {
                outcome.dropped_expired += 1;
                return false;
            }
            if self.series.contains_key(&p.metric) || new_series.contains(&p.metric) {
                return true;
            }
            if self.series.len() + new_series.len() >= self.max_series {
                outcome.dropped_new_series += 1;
                return false;
            }
            new_series.insert(p.metric.clone());
            true
        });
        let record = MetricRecord::Commit {
            group,
            cursor,
            points,
        };
        self.size += self.journal.append(&record)?;
        let MetricRecord::Commit { points, .. } = record else {
            unreachable!("built above")
        };
        self.cursors.insert(group, cursor);
        add_points(&mut self.series, points);
        if self.size > REWRITE_FLOOR_BYTES.max(self.snapshot_size * 2) {
            if let Err(e) = self.rewrite(now) {
                // The old log is intact and still appended to; the next commit retries.
                tracing::warn!(path = %self.path.display(), error = %e, "cannot compact the metric log");
            }
        }
        Ok(outcome)
    }

    /// Forgets the cursor of a deleted group.
    pub(crate) fn forget_group(&mut self, group: u64) -> Result<()> {
        if self.cursors.remove(&group).is_some() {
            self.size += self.journal.append(&MetricRecord::ForgetGroup { group })?;
        }
        Ok(())
    }

    /// The minutes of `metric` in `[start, end)`.
    pub(crate) fn minutes(
        &self,
        metric: &MetricId,
        start: Millis,
        end: Millis,
        now: Millis,
    ) -> Vec<(Millis, MinuteStats)> {
        let Some(series) = self.series.get(metric) else {
            return Vec::new();
        };
        let start = start.max(now - self.retention_ms);
        if start >= end {
            return Vec::new();
        }
        series
            .minutes
            .range(start..end)
            .map(|(minute, stats)| (*minute, *stats))
            .collect()
    }

    /// Every series with its unit.
    pub(crate) fn series(&self) -> Vec<(MetricId, Option<String>)> {
        self.series
            .iter()
            .map(|(id, s)| (id.clone(), s.unit.clone()))
            .collect()
    }

    /// Replaces the file with a snapshot of what is held, without expired minutes.
    fn rewrite(&mut self, now: Millis) -> Result<()> {
        prune(&mut self.series, now - self.retention_ms);
        self.journal = Journal::rewrite(&self.path, &snapshot(&self.series, &self.cursors))?;
        self.size = self.journal.size()?;
        self.snapshot_size = self.size;
        Ok(())
    }
}

/// Drops the minutes before `oldest`, and series left with none.
fn prune(series: &mut BTreeMap<MetricId, Series>, oldest: Millis) {
    for s in series.values_mut() {
        s.minutes = s.minutes.split_off(&oldest);
    }
    series.retain(|_, s| !s.minutes.is_empty());
}

/// The records that recreate `series` and `cursors` from nothing.
fn snapshot(series: &BTreeMap<MetricId, Series>, cursors: &HashMap<u64, u64>) -> Vec<MetricRecord> {
    let mut records: Vec<MetricRecord> = cursors
        .iter()
        .map(|(group, cursor)| MetricRecord::Commit {
            group: *group,
            cursor: *cursor,
            points: Vec::new(),
        })
        .collect();
    let mut points = Vec::new();
    for (id, s) in series {
        for (minute, stats) in &s.minutes {
            points.push(MetricPoint {
                metric: id.clone(),
                unit: s.unit.clone(),
                minute: *minute,
                stats: *stats,
            });
            if points.len() == SNAPSHOT_CHUNK {
                records.push(MetricRecord::Points {
                    points: std::mem::take(&mut points),
                });
            }
        }
    }
    if !points.is_empty() {
        records.push(MetricRecord::Points { points });
    }
    records
}

fn add_points(series: &mut BTreeMap<MetricId, Series>, points: Vec<MetricPoint>) {
    for point in points {
        let entry = series.entry(point.metric).or_default();
        if point.unit.is_some() {
            entry.unit = point.unit;
        }
        entry
            .minutes
            .entry(point.minute)
            .or_default()
            .merge(&point.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    const NOW: i64 = 1_790_000_040_000;

    fn point(name: &str, minute: i64, value: f64) -> MetricPoint {
        MetricPoint {
            metric: MetricId {
                namespace: "VPC".into(),
                name: name.into(),
                dimensions: BTreeMap::new(),
            },
            unit: Some("Count".into()),
            minute,
            stats: MinuteStats {
                seen: 1,
                ..MinuteStats::sample(value)
            },
        }
    }

    fn id(name: &str) -> MetricId {
        point(name, 0, 0.0).metric
    }

    fn open(path: &Path, live: &[u64]) -> MetricLog {
        MetricLog::open(
            path,
            15 * 86_400_000,
            10,
            &live.iter().copied().collect(),
            NOW,
        )
        .unwrap()
    }

    #[test]
    fn commits_survive_reopen_and_merge_per_minute() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.journal");
        let minute = NOW / MINUTE * MINUTE;
        let mut log = open(&path, &[1]);
        log.commit(1, 10, vec![point("Rejects", minute, 1.0)], NOW)
            .unwrap();
        log.commit(
            1,
            20,
            vec![
                point("Rejects", minute, 3.0),
                point("Rejects", minute - MINUTE, 2.0),
            ],
            NOW,
        )
        .unwrap();
        drop(log);
        let log = open(&path, &[1]);
        assert_eq!(log.cursor(1), Some(20));
        let minutes = log.minutes(&id("Rejects"), 0, i64::MAX, NOW);
        assert_eq!(minutes.len(), 2);
        let (m, stats) = minutes[1];
        assert_eq!(m, minute);
        assert_eq!(
            (stats.samples, stats.sum, stats.min, stats.max, stats.seen),
            (2, 4.0, 1.0, 3.0, 2)
        );
    }

    #[test]
    fn a_torn_commit_loses_its_points_and_its_cursor_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.journal");
        let minute = NOW / MINUTE * MINUTE;
        let mut log = open(&path, &[1]);
        log.commit(1, 10, vec![point("Rejects", minute, 1.0)], NOW)
            .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        log.commit(1, 20, vec![point("Rejects", minute, 5.0)], NOW)
            .unwrap();
        drop(log);
        let full = std::fs::read(&path).unwrap();
        for cut in before..full.len() as u64 {
            std::fs::write(&path, &full[..cut as usize]).unwrap();
            let log = open(&path, &[1]);
            assert_eq!(log.cursor(1), Some(10), "cut at {cut}");
            let minutes = log.minutes(&id("Rejects"), 0, i64::MAX, NOW);
            assert_eq!(minutes[0].1.sum, 1.0, "cut at {cut}");
            drop(log);
            // The reopen rewrote the file; put the torn one back for the next cut.
        }
    }

    #[test]
    fn expired_minutes_deleted_groups_and_surplus_series_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.journal");
        let mut log = open(&path, &[1, 2]);
        let old = NOW - 16 * 86_400_000;
        let outcome = log.commit(1, 5, vec![point("Old", old, 1.0)], NOW).unwrap();
        assert_eq!(outcome.dropped_expired, 1);
        let points: Vec<_> = (0..12)
            .map(|i| point(&format!("M{i:02}"), NOW / MINUTE * MINUTE, 1.0))
            .collect();
        let outcome = log.commit(2, 7, points, NOW).unwrap();
        assert_eq!(outcome.dropped_new_series, 2);
        assert_eq!(log.series().len(), 10);
        drop(log);
        let log = open(&path, &[2]);
        assert_eq!(log.cursor(1), None, "group 1 was deleted");
        assert_eq!(log.cursor(2), Some(7));
        assert_eq!(log.highest_cursor(), 7);
        // Minutes age out of queries and of the next snapshot.
        let later = NOW + 16 * 86_400_000;
        assert!(log.minutes(&id("M00"), 0, i64::MAX, later).is_empty());
        drop(log);
        let log = MetricLog::open(&path, 15 * 86_400_000, 10, &HashSet::new(), later).unwrap();
        assert!(log.series().is_empty());
    }
}
