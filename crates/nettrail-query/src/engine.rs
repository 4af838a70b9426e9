//! [`QueryEngine`]: a SQL query over the store, from text to Arrow batches.
//!
//! Each query gets its own DataFusion session: the catalog `awsdatacatalog` with the
//! schema `default` holding the log groups (see [`catalog`](crate::catalog)), read-only
//! (no DDL, no DML, no `SET`), a memory limit (a query that needs more fails with a
//! clear error instead of taking the server's memory), Parquet filter pushdown on (so
//! bloom filters and page indexes serve needle and time-range queries). A running
//! query stops when its future is dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use nettrail_store::LogStore;

use crate::catalog::LogGroupSchema;
use crate::error::QueryError;
use crate::table::LakeIdentity;

/// The catalog name queries see (Athena's).
pub const CATALOG: &str = "awsdatacatalog";
/// The schema (Athena's database) holding the log groups.
pub const SCHEMA: &str = "default";

/// How queries run.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// The account id of the parts' Hive folders (and of the tail's partition values).
    pub account_id: String,
    /// The region of the parts' Hive folders.
    pub region: String,
    /// Threads a query uses at most.
    pub target_partitions: usize,
    /// Memory one query may hold, in bytes.
    pub memory_limit: usize,
    /// Rows a result may have at most; a query producing more fails.
    pub max_result_rows: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            memory_limit: 2 << 30,
            max_result_rows: 1_000_000,
        }
    }
}

/// A query's answer.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The result's columns.
    pub schema: SchemaRef,
    /// The result's rows.
    pub batches: Vec<RecordBatch>,
    /// Bytes held by the tables the query read (parts and tail, compressed).
    pub bytes_scanned: u64,
}

impl QueryOutput {
    /// Rows in the result.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// Runs SQL over a store's log groups.
#[derive(Clone)]
pub struct QueryEngine {
    store: Arc<dyn LogStore>,
    options: QueryOptions,
}

impl QueryEngine {
    /// An engine over `store`.
    pub fn new(store: Arc<dyn LogStore>, options: QueryOptions) -> QueryEngine {
        QueryEngine { store, options }
    }

    /// The engine's options.
    pub fn options(&self) -> &QueryOptions {
        &self.options
    }

    fn session(&self) -> Result<(SessionContext, Arc<LogGroupSchema>), QueryError> {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            .with_target_partitions(self.options.target_partitions.max(1));
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(self.options.memory_limit)))
            .build_arc()
            .map_err(QueryError::from)?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let schema = Arc::new(LogGroupSchema::new(
            Arc::clone(&self.store),
            LakeIdentity {
                account_id: self.options.account_id.clone(),
                region: self.options.region.clone(),
            },
        ));
        let catalog = MemoryCatalogProvider::new();
        catalog
            .register_schema(SCHEMA, Arc::clone(&schema) as _)
            .map_err(QueryError::from)?;
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        crate::functions::register(&ctx);
        Ok((ctx, schema))
    }

    /// Runs `sql` (one read-only statement) and collects its result.
    pub async fn run(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        let (ctx, schema) = self.session()?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = ctx.sql_with_options(sql, options).await?;
        let result_schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let mut stream = frame.execute_stream().await?;
        let mut batches = Vec::new();
        let mut rows = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows += batch.num_rows();
            if rows > self.options.max_result_rows {
                return Err(QueryError::Failed(format!(
                    "the result has more than {} rows, the most a query may return; aggregate or add a LIMIT",
                    self.options.max_result_rows
                )));
            }
            batches.push(batch);
        }
        Ok(QueryOutput {
            schema: result_schema,
            batches,
            bytes_scanned: schema.bytes.load(Ordering::Relaxed),
        })
    }
}
