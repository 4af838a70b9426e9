//! One log group as a table: its parts and its row tail, with the same columns.
//!
//! The table's layout is the flow-log layout its parts were written with (the most
//! rows win when they differ), else one recognised from the tail, else messages. The
//! parts are read by DataFusion's Parquet scan, the partition columns coming from
//! their Hive folders; the tail's events are turned into the same columns in memory.
//! Filters are offered to the Parquet scan (row group statistics, page indexes, bloom
//! filters) and applied again above it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
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

/// The Hive partition columns of a part's folder, in order.
pub const PARTITION_COLUMNS: [&str; 7] = [
    "aws-account-id",
    "aws-service",
    "aws-region",
    "year",
    "month",
    "day",
    "hour",
];

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
    file_schema: SchemaRef,
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
    /// The table over `snapshot`.
    pub fn new(snapshot: TierSnapshot, lake: LakeIdentity) -> Result<GroupTable> {
        let layout = table_layout(&snapshot)?;
        let file_schema = layout.schema();
        let mut fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(
            PARTITION_COLUMNS
                .iter()
                .map(|c| Field::new(*c, DataType::Utf8, true)),
        );
        Ok(GroupTable {
            snapshot: Arc::new(SnapshotHandle(snapshot)),
            layout,
            file_schema,
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

    fn tail_batches(&self) -> Result<Vec<RecordBatch>> {
        let events = self
            .snapshot
            .0
            .tail_events(None, None)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let service = service(&self.layout);
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
            let batch = record_batch(&rows, &self.layout)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            let hours: Vec<UtcDateTime> = rows
                .iter()
                .map(|r| UtcDateTime::from_unix(r.timestamp.div_euclid(1000)))
                .collect();
            let constant =
                |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; rows.len()])) };
            columns.push(constant(&self.lake.account_id));
            columns.push(constant(service));
            columns.push(constant(&self.lake.region));
            let parts: [fn(&UtcDateTime) -> String; 4] = [
                |t| format!("{:04}", t.year),
                |t| format!("{:02}", t.month),
                |t| format!("{:02}", t.day),
                |t| format!("{:02}", t.hour),
            ];
            for part in parts {
                columns.push(Arc::new(StringArray::from(
                    hours.iter().map(part).collect::<Vec<_>>(),
                )));
            }
            batches.push(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        }
        Ok(batches)
    }
}

/// `aws-service=` of parts of `layout`.
fn service(layout: &PartLayout) -> &'static str {
    match layout {
        PartLayout::Flow(_) => "vpcflowlogs",
        PartLayout::Messages => "logs",
    }
}

/// The layout of a group's table: its parts' flow layout with the most rows, else one
/// recognised from its tail, else messages.
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
    // No flow parts: look at a sample of the newest hour of the tail.
    let sample = snapshot
        .tail_events(None, None)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(detect_layout(
        sample.iter().take(1000).map(|e| e.message.as_str()),
        None,
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
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        let snapshot = &self.snapshot.0;
        if !snapshot.parts.is_empty() {
            let partition_fields: Vec<Arc<Field>> = PARTITION_COLUMNS
                .iter()
                .map(|c| Arc::new(Field::new(*c, DataType::Utf8, true)))
                .collect();
            let table_schema = datafusion::datasource::table_schema::TableSchema::builder(
                Arc::clone(&self.file_schema),
            )
            .with_table_partition_cols(partition_fields)
            .build();
            let source = Arc::new(ParquetSource::new(table_schema));
            let files: Vec<PartitionedFile> = snapshot
                .parts
                .iter()
                .map(|part| {
                    let values: HashMap<&str, &str> = part
                        .partition_values
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    PartitionedFile::new(part.path.to_string_lossy().to_string(), part.bytes)
                        .with_partition_values(
                            PARTITION_COLUMNS
                                .iter()
                                .map(|c| ScalarValue::Utf8(values.get(c).map(|v| v.to_string())))
                                .collect(),
                        )
                })
                .collect();
            let groups = split_files(files, state.config().target_partitions());
            let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            let format =
                ParquetFormat::default().with_options(state.table_options().parquet.clone());
            inputs.push(format.create_physical_plan(state, config).await?);
        }
        let tail = self.tail_batches()?;
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
