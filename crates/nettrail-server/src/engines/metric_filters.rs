//! Metric filters: events of a log group turned into per-minute metric aggregates, as
//! CloudWatch Logs publishes them to CloudWatch metrics.
//!
//! Each log group with metric filters has a task. It reads the group in commit order
//! from the group's metric cursor ([`LogStore::read_committed`]), runs every filter of
//! the group over each event (a filter counts only events committed after it was
//! created), aggregates the values per series and per minute of the event's
//! timestamp, and commits the aggregates together with the new cursor in one durable
//! record ([`LogStore::commit_metrics`]), so a crash neither loses nor doubles a count.
//! A filter's `defaultValue` is the datapoint of a minute in which the filter saw
//! events but none matched (see [`MinuteStats::datapoint`]).
//!
//! Reading the aggregates back ([`datapoints`]) sums minutes into periods; alarms
//! (`alarms.rs`), `nettrail metrics get` and `/metrics` use it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nettrail_pattern::FilterPattern;
use nettrail_pattern::MetricTransformation;
use nettrail_store::{
    LogStore, MetricFilter, MetricId, MetricPoint, Millis, MinuteStats, PageLimit, ScannedEvent,
    StoreError,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::EVENT_OVERHEAD_BYTES;

/// Milliseconds in a minute, the resolution of metric filter aggregates.
pub(crate) const MINUTE_MS: i64 = 60_000;

/// How long a pass that counted nothing may leave the durable cursor behind.
const IDLE_PERSIST: Duration = Duration::from_secs(5);

/// Events read per pass at most.
const PAGE: PageLimit = PageLimit {
    max_events: 50_000,
    max_bytes: 16 << 20,
    overhead_per_event: EVENT_OVERHEAD_BYTES,
};

/// A filter compiled for counting.
struct CompiledFilter {
    pattern: FilterPattern,
    transformations: Vec<(
        MetricTransformation,
        nettrail_store::MetricTransformationDef,
    )>,
    start_after: u64,
}

impl CompiledFilter {
    fn new(filter: &MetricFilter) -> Result<CompiledFilter, String> {
        let pattern = FilterPattern::parse(&filter.filter_pattern).map_err(|e| e.to_string())?;
        let transformations = filter
            .metric_transformations
            .iter()
            .map(|t| {
                (
                    MetricTransformation {
                        metric_value: t.metric_value.clone(),
                        default_value: t.default_value,
                        dimensions: t.dimensions.clone(),
                    },
                    t.clone(),
                )
            })
            .collect();
        Ok(CompiledFilter {
            pattern,
            transformations,
            start_after: filter.start_after,
        })
    }
}

/// The aggregates that a page of events adds, for every filter of a group.
#[cfg(test)]
fn points_for(filters: &[MetricFilter], events: &[ScannedEvent]) -> Vec<MetricPoint> {
    let compiled: Vec<Arc<CompiledFilter>> = filters
        .iter()
        .filter_map(|f| CompiledFilter::new(f).ok().map(Arc::new))
        .collect();
    points_for_compiled(&compiled, events)
}

fn points_for_compiled(
    filters: &[Arc<CompiledFilter>],
    events: &[ScannedEvent],
) -> Vec<MetricPoint> {
    let mut points: HashMap<(MetricId, Millis), (Option<String>, MinuteStats)> = HashMap::new();
    let mut add = |id: MetricId, minute: Millis, unit: &Option<String>, stats: MinuteStats| {
        let entry = points
            .entry((id, minute))
            .or_insert_with(|| (unit.clone(), MinuteStats::default()));
        entry.1.merge(&stats);
    };
    for event in events {
        let minute = event.key.timestamp.div_euclid(MINUTE_MS) * MINUTE_MS;
        for filter in filters.iter().filter(|f| event.key.seq > f.start_after) {
            for (transformation, def) in &filter.transformations {
                let id = |dimensions| MetricId {
                    namespace: def.metric_namespace.clone(),
                    name: def.metric_name.clone(),
                    dimensions,
                };
                match transformation.sample(&filter.pattern, &event.message) {
                    Some(sample) if sample.value.is_finite() => add(
                        id(sample.dimensions),
                        minute,
                        &def.unit,
                        MinuteStats {
                            seen: 1,
                            default_value: def.default_value,
                            ..MinuteStats::sample(sample.value)
                        },
                    ),
                    // No match (or no numeric value): only a default value has
                    // something to say about the minute.
                    _ if def.default_value.is_some() => add(
                        id(BTreeMap::new()),
                        minute,
                        &def.unit,
                        MinuteStats {
                            seen: 1,
                            default_value: def.default_value,
                            ..MinuteStats::default()
                        },
                    ),
                    _ => {}
                }
            }
        }
    }
    points
        .into_iter()
        .map(|((metric, minute), (unit, stats))| MetricPoint {
            metric,
            unit,
            minute,
            stats,
        })
        .collect()
}

/// The datapoints of `metric` in `[start, end)`, one per `period_ms` (aligned to
/// multiples of the period since the epoch) that has one, in order.
pub(crate) fn datapoints(
    store: &dyn LogStore,
    metric: &MetricId,
    start: Millis,
    end: Millis,
    period_ms: i64,
) -> Vec<(Millis, MinuteStats)> {
    let period_ms = period_ms.max(MINUTE_MS);
    let mut periods: BTreeMap<Millis, MinuteStats> = BTreeMap::new();
    for (minute, stats) in store.metric_minutes(metric, start, end) {
        periods
            .entry(minute.div_euclid(period_ms) * period_ms)
            .or_default()
            .merge(&stats);
    }
    periods
        .into_iter()
        .filter_map(|(period, stats)| Some((period, stats.datapoint()?)))
        .collect()
}

/// The CloudWatch statistics of a datapoint.
pub(crate) const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// The value of statistic `name` (one of [`STATISTICS`]) of a datapoint.
pub(crate) fn statistic(stats: &MinuteStats, name: &str) -> f64 {
    match name {
        "SampleCount" => stats.samples as f64,
        "Average" => stats.sum / stats.samples.max(1) as f64,
        "Sum" => stats.sum,
        "Minimum" => stats.min,
        _ => stats.max,
    }
}

/// Totals since the server started, per series, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeriesTotals {
    pub(crate) samples: u64,
    pub(crate) sum: f64,
}

/// The metric filter tasks of a server.
pub(crate) struct MetricEngine {
    store: Arc<dyn LogStore>,
    commits: watch::Sender<u64>,
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
    totals: Mutex<BTreeMap<MetricId, SeriesTotals>>,
    errors: Mutex<HashMap<String, String>>,
    runtime: tokio::runtime::Handle,
}

impl MetricEngine {
    /// Starts a task for every log group with metric filters. Must be called from
    /// within the server's runtime.
    pub(crate) fn start(store: Arc<dyn LogStore>) -> Arc<MetricEngine> {
        let (commits, _) = watch::channel(0u64);
        let engine = Arc::new(MetricEngine {
            store: Arc::clone(&store),
            commits,
            tasks: Mutex::new(HashMap::new()),
            totals: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
        });
        let notify = engine.commits.clone();
        store.on_commit(Arc::new(move || {
            notify.send_modify(|n| *n = n.wrapping_add(1));
        }));
        let mut groups: Vec<String> = store
            .all_metric_filters()
            .into_iter()
            .map(|(group, _)| group)
            .collect();
        groups.dedup();
        for group in groups {
            engine.ensure(&group);
        }
        engine
    }

    /// Makes sure the task of `group` runs (after a metric filter was put).
    pub(crate) fn ensure(self: &Arc<Self>, group: &str) {
        let mut tasks = self.tasks.lock().expect("tasks lock");
        if tasks.get(group).is_some_and(|t| !t.is_finished()) {
            return;
        }
        let engine = Arc::clone(self);
        let name = group.to_owned();
        let task = self
            .runtime
            .spawn(async move { engine.count_forever(name).await });
        tasks.insert(group.to_owned(), task);
    }

    /// Stops the task of a deleted group.
    pub(crate) fn stop_group(&self, group: &str) {
        if let Some(task) = self.tasks.lock().expect("tasks lock").remove(group) {
            task.abort();
        }
    }

    /// Stops every task (server shutdown); what was committed stays.
    pub(crate) fn shutdown(&self) {
        for (_, task) in self.tasks.lock().expect("tasks lock").drain() {
            task.abort();
        }
    }

    /// Samples and value sums per series since the server started.
    pub(crate) fn totals(&self) -> BTreeMap<MetricId, SeriesTotals> {
        self.totals.lock().expect("totals lock").clone()
    }

    /// The groups whose metric filters are counting, with their last error, if any.
    pub(crate) fn groups(&self) -> Vec<(String, Option<String>)> {
        let errors = self.errors.lock().expect("errors lock");
        let mut groups: Vec<_> = self
            .tasks
            .lock()
            .expect("tasks lock")
            .keys()
            .map(|g| (g.clone(), errors.get(g).cloned()))
            .collect();
        groups.sort();
        groups
    }

    async fn count_forever(self: Arc<Self>, group: String) {
        let mut commits = self.commits.subscribe();
        let mut compiled: HashMap<String, (String, Arc<CompiledFilter>)> = HashMap::new();
        // How far counting has come; durable up to the store's metric cursor. A pass
        // that counts nothing moves only this, so that commits to other groups do not
        // each cost a durable write here; the cursor follows at least every
        // IDLE_PERSIST (re-reading an uncounted stretch after a crash counts nothing).
        let mut position: Option<u64> = None;
        let mut persisted_at = std::time::Instant::now();
        loop {
            commits.borrow_and_update();
            let (g, store) = (group.clone(), Arc::clone(&self.store));
            let state = tokio::task::spawn_blocking(move || {
                Ok::<_, StoreError>((store.metric_filters(&g)?, store.metric_cursor(&g)?))
            })
            .await
            .unwrap_or(Err(StoreError::Closed));
            let (filters, cursor) = match state {
                Ok(state) => state,
                Err(StoreError::GroupNotFound(_)) | Err(StoreError::Closed) => return,
                Err(e) => {
                    self.note_error(&group, e.to_string());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if filters.is_empty() {
                // The last filter was deleted; a new one starts a new task.
                self.tasks.lock().expect("tasks lock").remove(&group);
                return;
            }
            let stored =
                cursor.unwrap_or_else(|| filters.iter().map(|f| f.start_after).min().unwrap_or(0));
            let after = position.map_or(stored, |p| p.max(stored));
            // Patterns are compiled once per filter version.
            compiled.retain(|name, _| filters.iter().any(|f| &f.filter_name == name));
            let mut current = Vec::with_capacity(filters.len());
            for filter in &filters {
                let key = serde_json::to_string(filter).unwrap_or_default();
                match compiled.get(&filter.filter_name) {
                    Some((k, c)) if *k == key => current.push(Arc::clone(c)),
                    _ => match CompiledFilter::new(filter) {
                        Ok(c) => {
                            let c = Arc::new(c);
                            compiled.insert(filter.filter_name.clone(), (key, Arc::clone(&c)));
                            current.push(c);
                        }
                        Err(e) => {
                            tracing::error!(group, filter = filter.filter_name, error = %e, "metric filter pattern no longer parses; skipped");
                        }
                    },
                }
            }
            let (g, store) = (group.clone(), Arc::clone(&self.store));
            let outcome = tokio::task::spawn_blocking(move || {
                let page = store.read_committed(&g, after, PAGE)?;
                if page.read_to <= after && page.events.is_empty() {
                    return Ok(None);
                }
                let points = points_for_compiled(&current, &page.events);
                if points.is_empty() && persisted_at.elapsed() < IDLE_PERSIST {
                    return Ok(Some((page.read_to, None)));
                }
                let totals: Vec<(MetricId, MinuteStats)> =
                    points.iter().map(|p| (p.metric.clone(), p.stats)).collect();
                let committed = store.commit_metrics(&g, page.read_to, points)?;
                Ok::<_, StoreError>(Some((page.read_to, Some((totals, committed)))))
            })
            .await
            .unwrap_or(Err(StoreError::Closed));
            match outcome {
                Ok(Some((read_to, None))) => {
                    position = Some(read_to);
                    continue;
                }
                Ok(Some((read_to, Some((totals, committed))))) => {
                    position = Some(read_to);
                    persisted_at = std::time::Instant::now();
                    self.errors.lock().expect("errors lock").remove(&group);
                    if committed.dropped_new_series > 0 {
                        tracing::warn!(
                            group,
                            dropped = committed.dropped_new_series,
                            "metric series limit reached; points of new series dropped"
                        );
                    }
                    let mut all = self.totals.lock().expect("totals lock");
                    for (id, stats) in totals {
                        let t = all.entry(id).or_default();
                        t.samples += stats.samples;
                        t.sum += stats.sum;
                    }
                    // More may be waiting: read again without waiting for a commit.
                    continue;
                }
                Ok(None) => {}
                Err(StoreError::GroupNotFound(_)) | Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::error!(group, error = %e, "metric filters cannot count; retrying");
                    self.note_error(&group, e.to_string());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            if commits.changed().await.is_err() {
                return;
            }
        }
    }

    fn note_error(&self, group: &str, error: String) {
        self.errors
            .lock()
            .expect("errors lock")
            .insert(group.to_owned(), error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nettrail_store::{EventKey, MetricTransformationDef};

    const T: i64 = 1_795_098_600_000; // a minute boundary

    fn event(seq: u64, timestamp: i64, message: &str) -> ScannedEvent {
        ScannedEvent {
            stream: Arc::from("eni-1"),
            key: EventKey { timestamp, seq },
            ingestion_time: timestamp,
            message: message.into(),
        }
    }

    fn filter(
        pattern: &str,
        value: &str,
        default: Option<f64>,
        dims: &[(&str, &str)],
    ) -> MetricFilter {
        MetricFilter {
            filter_name: "f".into(),
            filter_pattern: pattern.into(),
            metric_transformations: vec![MetricTransformationDef {
                metric_name: "M".into(),
                metric_namespace: "NS".into(),
                metric_value: value.into(),
                default_value: default,
                dimensions: dims
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
                unit: Some("Count".into()),
            }],
            apply_on_transformed_logs: false,
            field_selection_criteria: None,
            emit_system_field_dimensions: Vec::new(),
            creation_time: 0,
            start_after: 0,
        }
    }

    /// (samples, sum, seen, datapoint sum) by (dimensions, minute offset).
    type Summary = BTreeMap<(String, i64), (u64, f64, u64, Option<f64>)>;

    fn summary(points: &[MetricPoint]) -> Summary {
        points
            .iter()
            .map(|p| {
                let dims: Vec<String> = p
                    .metric
                    .dimensions
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                (
                    (dims.join(","), (p.minute - T) / MINUTE_MS),
                    (
                        p.stats.samples,
                        p.stats.sum,
                        p.stats.seen,
                        p.stats.datapoint().map(|d| d.sum),
                    ),
                )
            })
            .collect()
    }

    const FLOW: &str = "[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol, packets, bytes, start, end, action, log_status]";

    fn flow(action: &str, bytes: u64) -> String {
        format!("2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 {bytes} 1 2 {action} OK")
    }

    #[test]
    fn a_count_with_a_default_value_reports_zero_for_minutes_without_matches() {
        let rejects = filter(
            &FLOW.replace("action,", "action = REJECT,"),
            "1",
            Some(0.0),
            &[],
        );
        let events = [
            event(1, T + 1_000, &flow("REJECT", 40)),
            event(2, T + 2_000, &flow("ACCEPT", 40)),
            event(3, T + 3_000, &flow("REJECT", 40)),
            event(4, T + MINUTE_MS + 5, &flow("ACCEPT", 40)),
        ];
        let got = summary(&points_for(&[rejects], &events));
        assert_eq!(
            got,
            BTreeMap::from([
                ((String::new(), 0), (2, 2.0, 3, Some(2.0))),
                ((String::new(), 1), (0, 0.0, 1, Some(0.0))),
            ])
        );
    }

    #[test]
    fn values_and_dimensions_come_from_the_event() {
        let bytes = filter(FLOW, "$bytes", None, &[("action", "$action")]);
        let events = [
            event(1, T, &flow("REJECT", 40)),
            event(2, T, &flow("ACCEPT", 1500)),
            event(3, T, &flow("ACCEPT", 500)),
            // A value that is not a number publishes nothing.
            event(4, T, "2 123456789012 eni-1 - - - - - - - 1 2 - NODATA"),
        ];
        let got = summary(&points_for(&[bytes], &events));
        assert_eq!(
            got,
            BTreeMap::from([
                (("action=ACCEPT".into(), 0), (2, 2000.0, 2, Some(2000.0))),
                (("action=REJECT".into(), 0), (1, 40.0, 1, Some(40.0))),
            ])
        );
    }

    #[test]
    fn a_filter_counts_only_events_committed_after_it_was_created() {
        let mut json = filter("{ $.status = \"failed\" }", "1", None, &[]);
        json.start_after = 2;
        let events = [
            event(1, T, r#"{"status":"failed"}"#),
            event(2, T, r#"{"status":"failed"}"#),
            event(3, T, r#"{"status":"failed"}"#),
            event(4, T, r#"{"status":"ok"}"#),
        ];
        let got = summary(&points_for(&[json], &events));
        assert_eq!(
            got,
            BTreeMap::from([((String::new(), 0), (1, 1.0, 1, Some(1.0)))])
        );
    }
}
