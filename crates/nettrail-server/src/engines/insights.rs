//! Logs Insights queries, as CloudWatch runs them: StartQuery schedules a query, a
//! blocking task reads its groups' events (both tiers from one snapshot each: parts
//! through their columns, each read once, and the row tail) and feeds them to the
//! query's pipeline, newest first where the order matters, and GetQueryResults sees the
//! status, the statistics and, for queries whose rows come as events are read, the
//! rows so far. A query ends `Complete`, `Failed`, `Cancelled` (StopQuery) or
//! `Timeout`; ended queries are remembered, with their rows, up to
//! `[insights] retained_queries`.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array, Int64Array};
use base64::Engine;
use nettrail_formats::flow::LogFormat;
use nettrail_insights::sql::SqlValue;
use nettrail_insights::value::Value;
use nettrail_insights::{Compiled, InputEvent, Run};
use nettrail_query::QueryEngine;
use nettrail_store::{EventKey, LogStore, ScannedEvent, TierSnapshot};

use crate::config::InsightsSettings;

/// A query's status, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryStatus {
    Scheduled,
    Running,
    Complete,
    Failed,
    Cancelled,
    Timeout,
}

impl QueryStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            QueryStatus::Scheduled => "Scheduled",
            QueryStatus::Running => "Running",
            QueryStatus::Complete => "Complete",
            QueryStatus::Failed => "Failed",
            QueryStatus::Cancelled => "Cancelled",
            QueryStatus::Timeout => "Timeout",
        }
    }

    /// The status of that name.
    pub(crate) fn parse(name: &str) -> Option<QueryStatus> {
        [
            QueryStatus::Scheduled,
            QueryStatus::Running,
            QueryStatus::Complete,
            QueryStatus::Failed,
            QueryStatus::Cancelled,
            QueryStatus::Timeout,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    pub(crate) fn is_done(self) -> bool {
        !matches!(self, QueryStatus::Scheduled | QueryStatus::Running)
    }
}

/// One result row: `(field, value)` pairs.
pub(crate) type Row = Vec<(String, String)>;

/// What changes as a query runs.
#[derive(Debug, Clone)]
pub(crate) struct QueryProgress {
    pub(crate) status: QueryStatus,
    pub(crate) rows: Arc<Vec<Row>>,
    pub(crate) records_scanned: u64,
    pub(crate) records_matched: u64,
    pub(crate) bytes_scanned: u64,
    /// Unix ms.
    pub(crate) finished_ms: Option<i64>,
    pub(crate) failure: Option<String>,
}

/// One query.
pub(crate) struct InsightsQuery {
    pub(crate) id: String,
    pub(crate) query_string: String,
    pub(crate) groups: Vec<String>,
    /// Unix ms.
    pub(crate) created_ms: i64,
    progress: Mutex<QueryProgress>,
    stop: AtomicBool,
}

impl InsightsQuery {
    pub(crate) fn progress(&self) -> QueryProgress {
        self.progress.lock().expect("progress lock").clone()
    }

    fn update(&self, f: impl FnOnce(&mut QueryProgress)) {
        f(&mut self.progress.lock().expect("progress lock"));
    }
}

/// A query to start.
pub(crate) struct NewQuery {
    pub(crate) query_string: String,
    pub(crate) compiled: Compiled,
    pub(crate) groups: Vec<String>,
    /// Inclusive, Unix ms.
    pub(crate) start_ms: i64,
    /// Inclusive, Unix ms.
    pub(crate) end_ms: i64,
}

/// Why a query could not start: this many run already.
pub(crate) struct TooManyQueries(pub(crate) usize);

/// Why StopQuery refused: the query has ended.
pub(crate) struct NotRunning;

#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Arc<InsightsQuery>>,
    /// Ids, oldest first.
    order: VecDeque<String>,
}

/// The Logs Insights queries of a server.
pub(crate) struct Insights {
    store: Arc<dyn LogStore>,
    settings: InsightsSettings,
    account_id: String,
    /// The SQL engine, when flow-log queries may be answered from columns.
    sql: Option<QueryEngine>,
    registry: Mutex<Registry>,
}

fn now_ms() -> i64 {
    crate::common::now_ms()
}

impl Insights {
    pub(crate) fn new(
        store: Arc<dyn LogStore>,
        settings: InsightsSettings,
        account_id: String,
        sql: Option<QueryEngine>,
    ) -> Insights {
        Insights {
            store,
            settings,
            account_id,
            sql,
            registry: Mutex::new(Registry::default()),
        }
    }

    pub(crate) fn settings(&self) -> &InsightsSettings {
        &self.settings
    }

    /// Schedules `new` on `runtime`'s blocking threads.
    pub(crate) fn start(
        self: &Arc<Self>,
        new: NewQuery,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Arc<InsightsQuery>, TooManyQueries> {
        let mut registry = self.registry.lock().expect("registry lock");
        let running = registry
            .by_id
            .values()
            .filter(|q| !q.progress().status.is_done())
            .count();
        let max = self.settings.max_concurrent.max(1);
        if running >= max {
            return Err(TooManyQueries(max));
        }
        let query = Arc::new(InsightsQuery {
            id: uuid::Uuid::new_v4().to_string(),
            query_string: new.query_string.clone(),
            groups: new.groups.clone(),
            created_ms: now_ms(),
            progress: Mutex::new(QueryProgress {
                status: QueryStatus::Scheduled,
                rows: Arc::new(Vec::new()),
                records_scanned: 0,
                records_matched: 0,
                bytes_scanned: 0,
                finished_ms: None,
                failure: None,
            }),
            stop: AtomicBool::new(false),
        });
        registry.by_id.insert(query.id.clone(), Arc::clone(&query));
        registry.order.push_back(query.id.clone());
        self.forget_old(&mut registry);
        drop(registry);
        let this = Arc::clone(self);
        let running = Arc::clone(&query);
        runtime.spawn_blocking(move || this.run(&running, new));
        Ok(query)
    }

    fn run(&self, query: &InsightsQuery, new: NewQuery) {
        query.update(|p| p.status = QueryStatus::Running);
        tracing::debug!(query_id = %query.id, groups = new.groups.len(), "insights query started");
        let deadline =
            Instant::now() + Duration::from_secs_f64(self.settings.timeout_secs.max(0.001));
        let mut run = new.compiled.run(new.start_ms, new.end_ms);
        let answered = match self.answer_with_sql(&new, &mut run) {
            Ok(answered) => answered,
            Err(e) => {
                // The events are read one by one instead; the answer is the same.
                tracing::debug!(query_id = %query.id, error = %e, "insights query not answered by sql");
                run = new.compiled.run(new.start_ms, new.end_ms);
                false
            }
        };
        let mut feed = Feed {
            query,
            run: &mut run,
            deadline,
            ended: None,
            seen: 0,
            last_report: Instant::now(),
        };
        let read = if answered {
            Ok(())
        } else {
            read_groups(
                self.store.as_ref(),
                &self.account_id,
                &new,
                new.compiled.needs_order(),
                &mut feed,
            )
        };
        let ended = match read {
            Err(e) => {
                query.update(|p| p.failure = Some(e));
                QueryStatus::Failed
            }
            Ok(()) => feed.ended.unwrap_or(QueryStatus::Complete),
        };
        // A stopped or timed-out query keeps what it had found.
        let output = match ended {
            QueryStatus::Complete => Some(run.finish()),
            QueryStatus::Cancelled | QueryStatus::Timeout => {
                let partial = run.partial_rows();
                let mut counted = run.progress();
                counted.rows = partial.unwrap_or_default();
                Some(counted)
            }
            _ => None,
        };
        query.update(|p| {
            if p.status == QueryStatus::Running {
                p.status = ended;
            }
            p.finished_ms = Some(now_ms());
            if let Some(output) = output {
                p.records_scanned = output.records_scanned;
                p.records_matched = output.records_matched;
                p.bytes_scanned = output.bytes_scanned;
                p.rows = Arc::new(output.rows);
            }
        });
        tracing::debug!(query_id = %query.id, status = ended.as_str(), "insights query ended");
    }

    /// Answers the query's `filter … | stats` prefix with one SQL statement over the
    /// group's columns (see `nettrail_insights::sql`) and feeds its rows to `run`;
    /// false when it cannot: several groups, a prefix that does not compile, a group
    /// that is not of default-format flow records, events in the range held as text.
    fn answer_with_sql(&self, new: &NewQuery, run: &mut Run<'_>) -> Result<bool, String> {
        let (Some(engine), [group]) = (&self.sql, new.groups.as_slice()) else {
            return Ok(false);
        };
        let table = format!("\"{}\"", group.replace('"', "\"\""));
        // Expired events are never answered, though a part may still hold them until
        // the retention sweep rewrites it (the store's own reads skip them too).
        let info = self.store.group(group).map_err(|e| e.to_string())?;
        let start_ms = match info.retention_days {
            Some(days) => new.start_ms.max(now_ms() - i64::from(days) * 86_400_000),
            None => new.start_ms,
        };
        let Some(plan) = new.compiled.flow_sql(&table, start_ms, new.end_ms) else {
            return Ok(false);
        };
        let runtime = tokio::runtime::Handle::current();
        let sql = |statement: &str| {
            runtime
                .block_on(engine.run(statement))
                .map_err(|e| e.to_string())
        };
        // Default-format flow records only: custom formats are not discovered.
        let shape = sql(&format!("SELECT * FROM {table} LIMIT 0"))?;
        let columns: Vec<String> = shape
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if !default_flow_table(&columns) {
            return Ok(false);
        }
        let counts = sql(&format!(
            "SELECT CAST(count(*) AS DOUBLE), CAST(count(message) AS DOUBLE) FROM {table} WHERE \"timestamp\" >= {start_ms} AND \"timestamp\" <= {}",
            new.end_ms
        ))?;
        let number = |batch: &arrow_array::RecordBatch, column: usize, row: usize| {
            batch
                .column(column)
                .as_any()
                .downcast_ref::<Float64Array>()
                .filter(|a| a.is_valid(row))
                .map(|a| a.value(row))
        };
        let batch = counts.batches.first().ok_or("no counts")?;
        let (scanned, raw) = (
            number(batch, 0, 0).unwrap_or(0.0),
            number(batch, 1, 0).unwrap_or(0.0),
        );
        if raw > 0.0 {
            return Ok(false);
        }
        let answer = sql(&plan.sql)?;
        let matched_column = plan.keys.len() + plan.items.len();
        for (batch_index, batch) in answer.batches.iter().enumerate() {
            let first_batch = batch_index == 0
                || answer.batches[..batch_index]
                    .iter()
                    .all(|b| b.num_rows() == 0);
            for row in 0..batch.num_rows() {
                let mut fields = Vec::with_capacity(matched_column);
                for (i, (name, kind)) in plan.keys.iter().chain(&plan.items).enumerate() {
                    let value = match kind {
                        SqlValue::Text => {
                            text_at(batch.column(i), row).map_or(Value::Null, |t| Value::text(&t))
                        }
                        SqlValue::Number => number(batch, i, row).map_or(Value::Null, Value::Num),
                        SqlValue::Time => batch
                            .column(i)
                            .as_any()
                            .downcast_ref::<Int64Array>()
                            .filter(|a| a.is_valid(row))
                            .map_or(Value::Null, |a| Value::Time(a.value(row))),
                    };
                    fields.push((name.clone(), value));
                }
                // With only some groups kept, the total is the first row's.
                let matched = match plan.total_matched_column {
                    None => number(batch, matched_column, row),
                    Some(_) if row > 0 || !first_batch => Some(0.0),
                    Some(total) => number(batch, total, row),
                };
                run.push_aggregated(fields, matched.unwrap_or(0.0) as u64);
            }
        }
        run.count_scanned(scanned as u64, answer.bytes_scanned);
        Ok(true)
    }

    /// Drops the oldest ended queries beyond the retained number.
    fn forget_old(&self, registry: &mut Registry) {
        crate::common::forget_oldest_done(
            &mut registry.order,
            &mut registry.by_id,
            self.settings.retained_queries.max(1),
            |q| q.progress().status.is_done(),
        );
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<InsightsQuery>> {
        self.registry
            .lock()
            .expect("registry lock")
            .by_id
            .get(id)
            .cloned()
    }

    /// Asks a running query to stop; it ends `Cancelled` with the rows it had.
    pub(crate) fn stop(&self, query: &InsightsQuery) -> Result<(), NotRunning> {
        let mut progress = query.progress.lock().expect("progress lock");
        if progress.status.is_done() {
            return Err(NotRunning);
        }
        progress.status = QueryStatus::Cancelled;
        query.stop.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Stops every running query (the server is shutting down: their blocking tasks
    /// must not hold it up).
    pub(crate) fn stop_all(&self) {
        for query in self.list() {
            let _ = self.stop(&query);
        }
    }

    /// The queries, newest first.
    pub(crate) fn list(&self) -> Vec<Arc<InsightsQuery>> {
        let registry = self.registry.lock().expect("registry lock");
        registry
            .order
            .iter()
            .rev()
            .filter_map(|id| registry.by_id.get(id).cloned())
            .collect()
    }
}

/// Hands events to a query's pipeline, and ends the read when the query is stopped,
/// times out or needs no more; publishes its progress now and then.
struct Feed<'q, 'r> {
    query: &'q InsightsQuery,
    run: &'r mut Run<'q>,
    deadline: Instant,
    /// Why the read ended early, if it did.
    ended: Option<QueryStatus>,
    seen: u64,
    last_report: Instant,
}

impl Feed<'_, '_> {
    /// Feeds one event; false when no more are wanted.
    fn push(&mut self, event: InputEvent) -> bool {
        self.seen += 1;
        if self.seen.is_multiple_of(4096) {
            if self.query.stop.load(Ordering::Relaxed) {
                self.ended = Some(QueryStatus::Cancelled);
                return false;
            }
            if Instant::now() >= self.deadline {
                self.ended = Some(QueryStatus::Timeout);
                return false;
            }
            if self.last_report.elapsed() >= Duration::from_millis(200) {
                self.last_report = Instant::now();
                let counted = self.run.progress();
                let partial = self.run.partial_rows();
                self.query.update(|p| {
                    p.records_scanned = counted.records_scanned;
                    p.records_matched = counted.records_matched;
                    p.bytes_scanned = counted.bytes_scanned;
                    if let Some(rows) = partial {
                        p.rows = Arc::new(rows);
                    }
                });
            }
        }
        if !self.run.push(event) {
            self.ended = Some(QueryStatus::Complete);
            return false;
        }
        true
    }
}

/// Where events come from: one group's part or its row tail.
struct Source {
    group: usize,
    /// A part of the group's snapshot, or its row tail.
    part: Option<usize>,
    /// The newest timestamp it may hold.
    max_ts: i64,
}

/// Reads every group's events in the query's time range from both tiers (parts
/// through their columns, the tail block by block) into `feed`: source by source when
/// the order does not change the answer, else newest first, merged across sources.
fn read_groups(
    store: &dyn LogStore,
    account_id: &str,
    new: &NewQuery,
    ordered: bool,
    feed: &mut Feed<'_, '_>,
) -> Result<(), String> {
    let snapshots = new
        .groups
        .iter()
        .map(|g| {
            store
                .tier_snapshot(g)
                .map_err(|e| format!("reading log group {g}: {e}"))
        })
        .collect::<Result<Vec<TierSnapshot>, String>>()?;
    let logs: Vec<Arc<str>> = new
        .groups
        .iter()
        .map(|g| Arc::from(format!("{account_id}:{g}")))
        .collect();
    let (start, end) = (Some(new.start_ms), Some(new.end_ms.saturating_add(1)));
    let mut sources = Vec::new();
    for (group, snapshot) in snapshots.iter().enumerate() {
        for (part, file) in snapshot.parts.iter().enumerate() {
            if file.max_ts >= new.start_ms && file.min_ts <= new.end_ms {
                sources.push(Source {
                    group,
                    part: Some(part),
                    max_ts: file.max_ts,
                });
            }
        }
        if let Some(max_ts) = snapshot.tail_max_ts() {
            sources.push(Source {
                group,
                part: None,
                max_ts,
            });
        }
    }
    sources.sort_by_key(|s| std::cmp::Reverse(s.max_ts));
    // Rows of an aggregating query are not events: no pointer to make.
    let with_ptr = !new.compiled.aggregates();
    let event = |group: usize, e: ScannedEvent| InputEvent {
        timestamp: e.key.timestamp,
        ingestion_time: e.ingestion_time,
        ptr: if with_ptr {
            encode_ptr(&new.groups[group], e.key)
        } else {
            String::new()
        },
        stream: e.stream,
        log: Arc::clone(&logs[group]),
        message: e.message,
    };
    let visit_source = |source: &Source, visit: &mut dyn FnMut(ScannedEvent) -> bool| {
        let snapshot = &snapshots[source.group];
        let read = match source.part {
            Some(part) => snapshot.visit_part_events(part, start, end, visit),
            None => snapshot.visit_tail_events(start, end, visit),
        };
        read.map_err(|e| format!("reading log group {}: {e}", new.groups[source.group]))
    };
    if !ordered {
        for source in &sources {
            let mut more = true;
            visit_source(source, &mut |e| {
                more = feed.push(event(source.group, e));
                more
            })?;
            if !more {
                break;
            }
        }
        return Ok(());
    }
    // Newest first: a source is read whole once it may hold an event newer than the
    // newest read so far, and events leave the heap only when no unread source can
    // hold a newer one.
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut next = 0;
    loop {
        while next < sources.len()
            && heap
                .peek()
                .is_none_or(|top| sources[next].max_ts >= top.event.key.timestamp)
        {
            let source = &sources[next];
            visit_source(source, &mut |e| {
                heap.push(Pending {
                    group: source.group,
                    event: e,
                });
                true
            })?;
            next += 1;
        }
        let Some(top) = heap.pop() else {
            return Ok(());
        };
        if !feed.push(event(top.group, top.event)) {
            return Ok(());
        }
    }
}

/// An event read and not yet fed, ordered by its key.
struct Pending {
    group: usize,
    event: ScannedEvent,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.event.key == other.event.key && self.group == other.group
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.event.key, self.group).cmp(&(other.event.key, other.group))
    }
}

/// Whether a table's columns are those of default-format VPC flow records: each of
/// the format's fields, and no column of another flow-log field.
fn default_flow_table(columns: &[String]) -> bool {
    let default: Vec<String> = LogFormat::default_vpc()
        .fields()
        .iter()
        .map(|f| f.column())
        .collect();
    let others = LogFormat::all_vpc_fields()
        .fields()
        .iter()
        .chain(LogFormat::default_transit_gateway().fields())
        .map(|f| f.column())
        .filter(|c| !default.contains(c))
        .any(|c| columns.contains(&c));
    default.iter().all(|c| columns.contains(c)) && !others
}

/// Row `row` of a text column (any of Arrow's string layouts).
fn text_at(array: &arrow_array::ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<arrow_array::StringArray>() {
        return Some(a.value(row).to_owned());
    }
    if let Some(a) = any.downcast_ref::<arrow_array::StringViewArray>() {
        return Some(a.value(row).to_owned());
    }
    any.downcast_ref::<arrow_array::LargeStringArray>()
        .map(|a| a.value(row).to_owned())
}

/// `@ptr`: where an event is, opaque to clients (base64url of a versioned text).
pub(crate) fn encode_ptr(group: &str, key: EventKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("1\n{}\n{}\n{group}", key.timestamp, key.seq))
}

/// The group and key of an `@ptr`.
pub(crate) fn decode_ptr(ptr: &str) -> Option<(String, EventKey)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(ptr)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(4, '\n');
    if parts.next()? != "1" {
        return None;
    }
    let timestamp = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let group = parts.next()?.to_owned();
    Some((group, EventKey { timestamp, seq }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip_and_refuse_what_they_did_not_make() {
        let key = EventKey {
            timestamp: 1_700_000_000_123,
            seq: 42,
        };
        let ptr = encode_ptr("/vpc/flow\nlogs", key);
        assert_eq!(decode_ptr(&ptr), Some(("/vpc/flow\nlogs".to_owned(), key)));
        assert_eq!(decode_ptr("not a pointer"), None);
        assert_eq!(decode_ptr(""), None);
    }
}
