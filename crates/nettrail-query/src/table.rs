//! One log group as a table: its parts and its row tail, with the same columns.
//!
//! The table's columns are its layout's, then the partition columns of its
//! [`TableShape`]. The table's layout is the flow-log layout its parts were written
//! with (the most rows win when they differ), else one recognised from the tail, else
//! messages. The
//! parts are read by DataFusion's Parquet scan, the partition columns coming from
//! their Hive folders; the tail's events are turned into the same columns in memory.
//! Filters are offered to the Parquet scan (row group statistics, page indexes, bloom
//! filters) and applied again above it; filters on partition columns alone leave
//! out whole parts before that.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;
use nettrail_columnar::detect::detect_layout;
use nettrail_columnar::{record_batch, PartEvent, PartLayout};
use nettrail_formats::time::UtcDateTime;
use nettrail_store::TierSnapshot;

use crate::partitions::{may_match, partition_batch, Folder, TableShape};

/// Where the tail's partition values come from: what the parts' folders would say.
#[derive(Debug, Clone)]
pub struct LakeIdentity {
    /// `aws-account-id=`.
    pub account_id: String,
    /// `aws-region=`.
    pub region: String,
}

/// One log group's table.
#[derive(Debug)]
pub struct GroupTable {
    snapshot: Arc<SnapshotHandle>,
    layout: PartLayout,
    shape: TableShape,
    file_schema: SchemaRef,
    partition_fields: Vec<Field>,
    schema: SchemaRef,
    lake: LakeIdentity,
}

/// The snapshot, shared with the plans that read it (it keeps the parts' files).
struct SnapshotHandle(TierSnapshot);

impl std::fmt::Debug for SnapshotHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TierSnapshot({}, {} parts)",
            self.0.group,
            self.0.parts.len()
        )
    }
}

impl GroupTable {
    /// The table of `shape` over `snapshot`.
    pub fn new(
        snapshot: TierSnapshot,
        lake: LakeIdentity,
        shape: TableShape,
    ) -> Result<GroupTable> {
        let layout = table_layout(&snapshot)?;
        let file_schema = layout.schema();
        let partition_fields = shape.fields(&layout);
        let fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .chain(partition_fields.iter().cloned())
            .collect();
        Ok(GroupTable {
            snapshot: Arc::new(SnapshotHandle(snapshot)),
            layout,
            shape,
            file_schema,
            partition_fields,
            schema: Arc::new(Schema::new(fields)),
            lake,
        })
    }

    /// The table's layout.
    pub fn layout(&self) -> &PartLayout {
        &self.layout
    }

    /// Bytes the table's parts and tail hold.
    pub fn stored_bytes(&self) -> u64 {
        self.snapshot.0.parts.iter().map(|p| p.bytes).sum::<u64>() + self.snapshot.0.tail_bytes()
    }

    /// A part's partition values: its folder's, and its hour's.
    fn part_values(&self, part: &nettrail_store::PartFile) -> Vec<ScalarValue> {
        let folder_value = |key: &str| {
            part.partition_values
                .iter()
                .find(|(k, _)| k == key)
                .map_or_else(String::new, |(_, v)| v.clone())
        };
        let folder = Folder {
            account_id: folder_value("aws-account-id"),
            service: folder_value("aws-service"),
            region: folder_value("aws-region"),
        };
        let hour = UtcDateTime::from_unix(part.min_ts.div_euclid(1000));
        self.shape.values(&self.layout, &folder, &hour)
    }
}

/// What reading the row tail needs, owned, so it can move to a blocking thread.
struct Tail {
    snapshot: Arc<SnapshotHandle>,
    layout: PartLayout,
    shape: TableShape,
    partition_fields: Vec<Field>,
    schema: SchemaRef,
    lake: LakeIdentity,
}

/// The row tail's events with timestamps in `range`, as batches of `tail.schema`.
fn tail_batches(tail: &Tail, range: TimeRange) -> Result<Vec<RecordBatch>> {
    let events = tail
        .snapshot
        .0
        .tail_events(range.start, range.end)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let folder = Folder {
        account_id: tail.lake.account_id.clone(),
        service: tail.layout.aws_service().to_owned(),
        region: tail.lake.region.clone(),
    };
    let mut batches = Vec::new();
    for chunk in events.chunks(65_536) {
        let rows: Vec<PartEvent> = chunk
            .iter()
            .map(|e| PartEvent {
                timestamp: e.key.timestamp,
                seq: e.key.seq,
                ingestion_time: e.ingestion_time,
                stream: Arc::clone(&e.stream),
                message: e.message.clone(),
            })
            .collect();
        let batch = record_batch(&rows, &tail.layout)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        // Neighbouring events are mostly of one hour: its values serve the run.
        let mut values: Vec<Vec<ScalarValue>> = Vec::with_capacity(rows.len());
        let mut last: Option<(i64, usize)> = None;
        for row in &rows {
            let hour = row.timestamp.div_euclid(3_600_000);
            match last {
                Some((h, i)) if h == hour => values.push(values[i].clone()),
                _ => {
                    last = Some((hour, values.len()));
                    let time = UtcDateTime::from_unix(hour * 3600);
                    values.push(tail.shape.values(&tail.layout, &folder, &time));
                }
            }
        }
        columns.extend(
            partition_batch(&tail.partition_fields, &values)?
                .columns()
                .iter()
                .cloned(),
        );
        batches.push(RecordBatch::try_new(Arc::clone(&tail.schema), columns)?);
    }
    Ok(batches)
}

/// The layout of a group's table: its parts' flow layout with the most rows, else one
/// recognised from its tail (in the format its writers declared or a default one),
/// else messages.
fn table_layout(snapshot: &TierSnapshot) -> Result<PartLayout> {
    let mut rows_by_layout: HashMap<&str, u64> = HashMap::new();
    for part in &snapshot.parts {
        if part.layout != "messages" {
            *rows_by_layout.entry(part.layout.as_str()).or_default() += part.rows;
        }
    }
    if let Some((layout, _)) = rows_by_layout
        .into_iter()
        .max_by_key(|(l, rows)| (*rows, *l))
    {
        return PartLayout::from_metadata(layout)
            .map_err(|e| DataFusionError::External(Box::new(e)));
    }
    // No flow parts: look at a sample of the newest events of the tail.
    let sample = snapshot
        .tail_sample(1000)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let known = snapshot
        .flow_log_format
        .as_deref()
        .and_then(|f| nettrail_formats::flow::LogFormat::parse(f).ok());
    Ok(detect_layout(
        sample.iter().map(|e| e.message.as_str()),
        known.as_ref(),
    ))
}

#[async_trait]
impl TableProvider for GroupTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        let snapshot = &self.snapshot.0;
        // Parts and tail events outside the query's `timestamp` range are not read (the
        // filters are applied again above the scan, so this only has to keep every
        // row that may match).
        let range = TimeRange::of(filters);
        let parts: Vec<_> = snapshot
            .parts
            .iter()
            .filter(|p| range.overlaps(p.min_ts, p.max_ts))
            .map(|p| (p, self.part_values(p)))
            .collect();
        // So do parts whose partition values a filter refuses.
        let values: Vec<Vec<ScalarValue>> = parts.iter().map(|(_, v)| v.clone()).collect();
        let keep = may_match(state, filters, &self.partition_fields, &values);
        let parts: Vec<_> = parts
            .into_iter()
            .zip(keep)
            .filter_map(|(part, keep)| keep.then_some(part))
            .collect();
        if !parts.is_empty() {
            let partition_fields: Vec<Arc<Field>> = self
                .partition_fields
                .iter()
                .map(|f| Arc::new(f.clone()))
                .collect();
            let table_schema = datafusion::datasource::table_schema::TableSchema::builder(
                Arc::clone(&self.file_schema),
            )
            .with_table_partition_cols(partition_fields)
            .build();
            let source = Arc::new(ParquetSource::new(table_schema));
            let files: Vec<PartitionedFile> = parts
                .into_iter()
                .map(|(part, values)| {
                    PartitionedFile::new(part.location.clone(), part.bytes)
                        .with_partition_values(values)
                })
                .collect();
            let groups = split_files(files, state.config().target_partitions());
            let store_url = match &snapshot.lake_store {
                None => ObjectStoreUrl::local_filesystem(),
                Some(lake) => {
                    // The parts are in a bucket: DataFusion reads them with the store's
                    // own client (registering again replaces the same store).
                    let url = ObjectStoreUrl::parse(&lake.url)?;
                    state
                        .runtime_env()
                        .register_object_store(url.as_ref(), Arc::clone(&lake.store));
                    url
                }
            };
            let config = FileScanConfigBuilder::new(store_url, source)
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            let format =
                ParquetFormat::default().with_options(state.table_options().parquet.clone());
            inputs.push(format.create_physical_plan(state, config).await?);
        }
        let reader = Tail {
            snapshot: Arc::clone(&self.snapshot),
            layout: self.layout.clone(),
            shape: self.shape,
            partition_fields: self.partition_fields.clone(),
            schema: Arc::clone(&self.schema),
            lake: self.lake.clone(),
        };
        // Reading the tail decompresses blocks: not on the runtime's threads.
        let tail = tokio::task::spawn_blocking(move || tail_batches(&reader, range))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
        if !tail.is_empty() || inputs.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[tail],
                Arc::clone(&self.schema),
                projection.cloned(),
            )?);
        }
        UnionExec::try_new(inputs)
    }
}

/// The range of `timestamp` a query's filters allow: `[start, end)`, open where they
/// say nothing (only comparisons of the column with integer literals are understood).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub start: Option<i64>,
    /// Exclusive upper bound.
    pub end: Option<i64>,
}

impl TimeRange {
    /// The range every one of `filters` (a conjunction) allows.
    pub fn of(filters: &[Expr]) -> TimeRange {
        let mut range = TimeRange::default();
        for filter in filters {
            range.narrow(filter);
        }
        range
    }

    fn at_least(&mut self, v: i64) {
        self.start = Some(self.start.map_or(v, |s| s.max(v)));
    }

    fn below(&mut self, v: i64) {
        self.end = Some(self.end.map_or(v, |e| e.min(v)));
    }

    fn narrow(&mut self, filter: &Expr) {
        use datafusion::logical_expr::{BinaryExpr, Operator};
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.narrow(left);
                self.narrow(right);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, value) = match (
                    timestamp_column(left),
                    literal(right),
                    timestamp_column(right),
                    literal(left),
                ) {
                    (true, Some(v), _, _) => (*op, v),
                    (_, _, true, Some(v)) => match op.swap() {
                        Some(op) => (op, v),
                        None => return,
                    },
                    _ => return,
                };
                match op {
                    Operator::Eq => {
                        self.at_least(value);
                        self.below(value.saturating_add(1));
                    }
                    Operator::Gt => self.at_least(value.saturating_add(1)),
                    Operator::GtEq => self.at_least(value),
                    Operator::Lt => self.below(value),
                    Operator::LtEq => self.below(value.saturating_add(1)),
                    _ => {}
                }
            }
            Expr::Between(between) if !between.negated && timestamp_column(&between.expr) => {
                if let (Some(lo), Some(hi)) = (literal(&between.low), literal(&between.high)) {
                    self.at_least(lo);
                    self.below(hi.saturating_add(1));
                }
            }
            _ => {}
        }
    }

    /// Whether `[min, max]` may hold a timestamp of the range.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        self.start.is_none_or(|s| max >= s) && self.end.is_none_or(|e| min < e)
    }
}

fn timestamp_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(c) if c.name == "timestamp")
}

fn literal(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => match value {
            ScalarValue::Int64(v) => *v,
            ScalarValue::Int32(v) => v.map(i64::from),
            ScalarValue::UInt32(v) => v.map(i64::from),
            ScalarValue::UInt64(v) => v.and_then(|v| i64::try_from(v).ok()),
            _ => None,
        },
        Expr::Cast(cast) => literal(&cast.expr),
        Expr::TryCast(cast) => literal(&cast.expr),
        _ => None,
    }
}

/// Spreads files over `partitions` groups, largest first onto the lightest group.
fn split_files(mut files: Vec<PartitionedFile>, partitions: usize) -> Vec<FileGroup> {
    let partitions = partitions.max(1).min(files.len().max(1));
    files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); partitions];
    for file in files {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one group");
        lightest.0 += file.object_meta.size;
        lightest.1.push(file);
    }
    groups
        .into_iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn time_ranges_come_from_comparisons_of_timestamp_with_numbers() {
        let r = TimeRange::of(&[
            col("timestamp").gt_eq(lit(100i64)),
            lit(200i64).gt(col("timestamp")),
        ]);
        assert_eq!(
            r,
            TimeRange {
                start: Some(100),
                end: Some(200)
            }
        );
        let r = TimeRange::of(&[col("timestamp")
            .eq(lit(5i64))
            .and(col("bytes").gt(lit(1i64)))]);
        assert_eq!(
            r,
            TimeRange {
                start: Some(5),
                end: Some(6)
            }
        );
        let r = TimeRange::of(&[col("timestamp").between(lit(1i64), lit(9i64))]);
        assert_eq!(
            r,
            TimeRange {
                start: Some(1),
                end: Some(10)
            }
        );
        // What is not understood leaves the range open.
        let r = TimeRange::of(&[col("timestamp")
            .gt(lit(1i64))
            .or(col("timestamp").lt(lit(0i64)))]);
        assert_eq!(r, TimeRange::default());
        assert!(r.overlaps(i64::MIN, i64::MIN));
        let r = TimeRange {
            start: Some(10),
            end: Some(20),
        };
        assert!(
            r.overlaps(19, 30) && r.overlaps(0, 10) && !r.overlaps(20, 30) && !r.overlaps(0, 9)
        );
    }
}
