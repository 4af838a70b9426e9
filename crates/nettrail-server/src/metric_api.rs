//! Metric filter operations (PutMetricFilter, DescribeMetricFilters,
//! DeleteMetricFilter) with AWS's validation, and nettrail's own operations that read
//! what they publish: `GetMetricStatistics` and `ListMetrics` (CloudWatch's shapes, so
//! scripts written for `aws cloudwatch` read them) and `DescribeAlarms`.

use std::collections::BTreeMap;
use std::sync::Arc;

use nettrail_pattern::MetricTransformation;
use nettrail_store::{LogStore, MetricFilter, MetricId, MetricTransformationDef, Millis};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::alarms::{evaluation_window, metric_of, Alarms};
use crate::config::ServerConfig;
use crate::error::{ApiError, ApiResult};
use crate::metric_filters::{datapoints, statistic, MetricEngine, MINUTE_MS, STATISTICS};
use crate::validate::Violations;

/// CloudWatch's `StandardUnit` values.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Datapoints one GetMetricStatistics answer holds at most (CloudWatch's limit).
const MAX_DATAPOINTS: i64 = 1440;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutMetricFilterRequest {
    log_group_name: Option<String>,
    filter_name: Option<String>,
    filter_pattern: Option<String>,
    metric_transformations: Option<Vec<TransformationRequest>>,
    apply_on_transformed_logs: Option<bool>,
    field_selection_criteria: Option<String>,
    emit_system_field_dimensions: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransformationRequest {
    metric_name: Option<String>,
    metric_namespace: Option<String>,
    metric_value: Option<String>,
    default_value: Option<f64>,
    dimensions: Option<BTreeMap<String, String>>,
    unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeMetricFiltersRequest {
    log_group_name: Option<String>,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    metric_name: Option<String>,
    metric_namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteMetricFilterRequest {
    log_group_name: Option<String>,
    filter_name: Option<String>,
}

/// PutMetricFilter: creates or replaces a metric filter; it counts the events ingested
/// from now on.
pub(crate) fn put_metric_filter(
    store: &dyn LogStore,
    config: &ServerConfig,
    engine: &Arc<MetricEngine>,
    req: PutMetricFilterRequest,
    now: Millis,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.filter_definition(&req.log_group_name, &req.filter_name, &req.filter_pattern);
    v.required("metricTransformations", &req.metric_transformations);
    v.list_length(
        "metricTransformations",
        req.metric_transformations.as_deref(),
        1,
        1,
    );
    for (i, t) in req.metric_transformations.iter().flatten().enumerate() {
        let field = |name: &str| format!("metricTransformations.{}.member.{name}", i + 1);
        v.required(&field("metricName"), &t.metric_name);
        v.required(&field("metricNamespace"), &t.metric_namespace);
        v.required(&field("metricValue"), &t.metric_value);
        v.metric_name(&field("metricName"), t.metric_name.as_deref());
        v.metric_name(&field("metricNamespace"), t.metric_namespace.as_deref());
        v.length(&field("metricValue"), t.metric_value.as_deref(), 0, 100);
        v.one_of(&field("unit"), t.unit.as_deref(), &UNITS);
        for (key, value) in t.dimensions.iter().flatten() {
            v.length(&field("dimensions.key"), Some(key), 0, 255);
            v.length(&field("dimensions.value"), Some(value), 0, 255);
        }
    }
    v.length(
        "fieldSelectionCriteria",
        req.field_selection_criteria.as_deref(),
        0,
        2000,
    );
    v.finish()?;
    let group = req.log_group_name.expect("validated");
    let name = req.filter_name.expect("validated");
    let pattern_text = req.filter_pattern.expect("validated");
    store.group(&group)?;
    let pattern = crate::logs_api::compile_pattern(&pattern_text)?;
    let mut transformations = Vec::new();
    for t in req.metric_transformations.expect("validated") {
        if t.default_value.is_some_and(|d| !d.is_finite()) {
            return Err(ApiError::InvalidParameter(
                "defaultValue must be a finite number".into(),
            ));
        }
        let def = MetricTransformationDef {
            metric_name: t.metric_name.expect("validated"),
            metric_namespace: t.metric_namespace.expect("validated"),
            metric_value: t.metric_value.expect("validated"),
            default_value: t.default_value,
            dimensions: t.dimensions.unwrap_or_default(),
            unit: t.unit,
        };
        MetricTransformation {
            metric_value: def.metric_value.clone(),
            default_value: def.default_value,
            dimensions: def.dimensions.clone(),
        }
        .validate(&pattern)
        .map_err(ApiError::InvalidParameter)?;
        transformations.push(def);
    }
    let existing = store.metric_filters(&group)?;
    let previous = existing.iter().find(|f| f.filter_name == name);
    if previous.is_none() && existing.len() >= config.metrics.max_filters_per_group {
        return Err(ApiError::LimitExceeded("Resource limit exceeded.".into()));
    }
    let filter = MetricFilter {
        filter_name: name,
        filter_pattern: pattern_text,
        metric_transformations: transformations,
        apply_on_transformed_logs: req.apply_on_transformed_logs.unwrap_or(false),
        field_selection_criteria: req.field_selection_criteria,
        emit_system_field_dimensions: req.emit_system_field_dimensions.unwrap_or_default(),
        creation_time: previous.map_or(now, |p| p.creation_time),
        // An update goes on from where the filter was; a new filter counts the events
        // ingested from now on.
        start_after: previous.map_or_else(|| store.committed_seq(), |p| p.start_after),
    };
    store.put_metric_filter(&group, filter)?;
    engine.ensure(&group);
    Ok(json!({}))
}

/// A metric filter as DescribeMetricFilters lists it.
fn filter_json(group: &str, f: &MetricFilter) -> Value {
    let transformations: Vec<Value> = f
        .metric_transformations
        .iter()
        .map(|t| {
            let mut out = json!({
                "metricName": t.metric_name,
                "metricNamespace": t.metric_namespace,
                "metricValue": t.metric_value,
            });
            if let Some(d) = t.default_value {
                out["defaultValue"] = json!(d);
            }
            if !t.dimensions.is_empty() {
                out["dimensions"] = json!(t.dimensions);
            }
            if let Some(unit) = &t.unit {
                out["unit"] = json!(unit);
            }
            out
        })
        .collect();
    let mut out = json!({
        "filterName": f.filter_name,
        "filterPattern": f.filter_pattern,
        "metricTransformations": transformations,
        "creationTime": f.creation_time,
        "logGroupName": group,
        "applyOnTransformedLogs": f.apply_on_transformed_logs,
    });
    if let Some(criteria) = &f.field_selection_criteria {
        out["fieldSelectionCriteria"] = json!(criteria);
    }
    if !f.emit_system_field_dimensions.is_empty() {
        out["emitSystemFieldDimensions"] = json!(f.emit_system_field_dimensions);
    }
    out
}

/// The position after `(group, filter)` in a listing, as a token.
fn token(group: &str, filter: &str) -> String {
    format!("m/{}:{group}{filter}", group.len())
}

fn parse_token(token: &str) -> Option<(String, String)> {
    let rest = token.strip_prefix("m/")?;
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    if !rest.is_char_boundary(len) {
        return None;
    }
    let (group, filter) = rest.split_at(len);
    Some((group.to_owned(), filter.to_owned()))
}

/// DescribeMetricFilters: of one group, or of every group; by name prefix, or by the
/// metric they publish.
pub(crate) fn describe_metric_filters(
    store: &dyn LogStore,
    req: DescribeMetricFiltersRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.filter_name("filterNamePrefix", req.filter_name_prefix.as_deref());
    v.next_token("nextToken", req.next_token.as_deref());
    v.range("limit", req.limit, 1, 50);
    v.metric_name("metricName", req.metric_name.as_deref());
    v.metric_name("metricNamespace", req.metric_namespace.as_deref());
    v.finish()?;
    if req.filter_name_prefix.is_some() && req.log_group_name.is_none() {
        return Err(ApiError::InvalidParameter(
            "If you specify filterNamePrefix, you must also specify logGroupName.".into(),
        ));
    }
    if req.metric_name.is_some() != req.metric_namespace.is_some() {
        return Err(ApiError::InvalidParameter(
            "If you specify metricName you must also specify metricNamespace, and the other way around.".into(),
        ));
    }
    let after = match &req.next_token {
        Some(t) => Some(parse_token(t).ok_or_else(|| {
            ApiError::InvalidParameter("The specified nextToken is invalid.".into())
        })?),
        None => None,
    };
    let mut all: Vec<(String, MetricFilter)> = match &req.log_group_name {
        Some(group) => store
            .metric_filters(group)?
            .into_iter()
            .map(|f| (group.clone(), f))
            .collect(),
        None => store.all_metric_filters(),
    };
    all.sort_by(|a, b| (&a.0, &a.1.filter_name).cmp(&(&b.0, &b.1.filter_name)));
    let prefix = req.filter_name_prefix.unwrap_or_default();
    let selected: Vec<&(String, MetricFilter)> = all
        .iter()
        .filter(|(_, f)| f.filter_name.starts_with(&prefix))
        .filter(|(_, f)| match (&req.metric_name, &req.metric_namespace) {
            (Some(name), Some(namespace)) => f
                .metric_transformations
                .iter()
                .any(|t| &t.metric_name == name && &t.metric_namespace == namespace),
            _ => true,
        })
        .filter(|(g, f)| {
            after
                .as_ref()
                .is_none_or(|(ag, af)| (g, &f.filter_name) > (ag, af))
        })
        .collect();
    let limit = req.limit.unwrap_or(50) as usize;
    let page = &selected[..selected.len().min(limit)];
    let mut out = json!({
        "metricFilters": page.iter().map(|(g, f)| filter_json(g, f)).collect::<Vec<_>>(),
    });
    if selected.len() > page.len() {
        let (g, f) = page.last().expect("a full page");
        out["nextToken"] = json!(token(g, &f.filter_name));
    }
    Ok(out)
}

/// DeleteMetricFilter. The aggregates it published stay until they expire, as
/// CloudWatch metrics do.
pub(crate) fn delete_metric_filter(
    store: &dyn LogStore,
    req: DeleteMetricFilterRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("filterName", &req.filter_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.filter_name("filterName", req.filter_name.as_deref());
    v.finish()?;
    let group = req.log_group_name.expect("validated");
    let name = req.filter_name.expect("validated");
    if !store.delete_metric_filter(&group, &name)? {
        return Err(ApiError::ResourceNotFound(
            "The specified metric filter does not exist.".into(),
        ));
    }
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DimensionRequest {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetMetricStatisticsRequest {
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: Option<Vec<DimensionRequest>>,
    /// Unix seconds (what the AWS JSON protocols send for timestamps).
    start_time: Option<f64>,
    end_time: Option<f64>,
    period: Option<i64>,
    statistics: Option<Vec<String>>,
}

/// GetMetricStatistics, as CloudWatch answers it: one datapoint per period that has
/// one, with the statistics asked for.
pub(crate) fn get_metric_statistics(
    store: &dyn LogStore,
    req: GetMetricStatisticsRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("Namespace", &req.namespace);
    v.required("MetricName", &req.metric_name);
    v.required("StartTime", &req.start_time);
    v.required("EndTime", &req.end_time);
    v.required("Period", &req.period);
    v.required("Statistics", &req.statistics);
    v.metric_name("Namespace", req.namespace.as_deref());
    v.metric_name("MetricName", req.metric_name.as_deref());
    v.range("Period", req.period, 60, 86_400 * 15);
    v.list_length("Statistics", req.statistics.as_deref(), 1, 5);
    for s in req.statistics.iter().flatten() {
        v.one_of("Statistics.member", Some(s), &STATISTICS);
    }
    v.finish()?;
    let period = req.period.expect("validated");
    if period % 60 != 0 {
        return Err(ApiError::InvalidParameter(
            "The parameter Period must be a multiple of 60 (metric filter metrics have one-minute resolution).".into(),
        ));
    }
    let start = (req.start_time.expect("validated") * 1000.0) as Millis;
    let end = (req.end_time.expect("validated") * 1000.0) as Millis;
    if start >= end {
        return Err(ApiError::InvalidParameter(
            "The parameter StartTime must be less than the parameter EndTime.".into(),
        ));
    }
    let period_ms = period * 1000;
    if (end - start) / period_ms > MAX_DATAPOINTS {
        return Err(ApiError::InvalidParameter(format!(
            "You have requested up to {} datapoints, which exceeds the limit of {MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
            (end - start) / period_ms
        )));
    }
    let mut dimensions = BTreeMap::new();
    for d in req.dimensions.unwrap_or_default() {
        match (d.name, d.value) {
            (Some(name), Some(value)) => {
                dimensions.insert(name, value);
            }
            _ => {
                return Err(ApiError::InvalidParameter(
                    "Every dimension needs a Name and a Value.".into(),
                ))
            }
        }
    }
    let metric = MetricId {
        namespace: req.namespace.expect("validated"),
        name: req.metric_name.expect("validated"),
        dimensions,
    };
    let unit = store
        .metric_series()
        .into_iter()
        .find(|(id, _)| *id == metric)
        .and_then(|(_, unit)| unit);
    let wanted = req.statistics.expect("validated");
    // Minutes are whole; a start inside a minute starts at that minute.
    let first_minute = start.div_euclid(MINUTE_MS) * MINUTE_MS;
    let points: Vec<Value> = datapoints(store, &metric, first_minute, end, period_ms)
        .into_iter()
        .map(|(t, stats)| {
            let mut point = Map::new();
            point.insert("Timestamp".into(), json!(t / 1000));
            for s in &wanted {
                point.insert(s.clone(), json!(statistic(&stats, s)));
            }
            point.insert("Unit".into(), json!(unit.as_deref().unwrap_or("None")));
            Value::Object(point)
        })
        .collect();
    Ok(json!({ "Label": metric.name, "Datapoints": points }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListMetricsRequest {
    namespace: Option<String>,
    metric_name: Option<String>,
}

/// ListMetrics: the series metric filters have published (within the retention).
pub(crate) fn list_metrics(store: &dyn LogStore, req: ListMetricsRequest) -> ApiResult<Value> {
    let metrics: Vec<Value> = store
        .metric_series()
        .into_iter()
        .filter(|(id, _)| req.namespace.as_ref().is_none_or(|n| *n == id.namespace))
        .filter(|(id, _)| req.metric_name.as_ref().is_none_or(|n| *n == id.name))
        .map(|(id, _)| {
            json!({
                "Namespace": id.namespace,
                "MetricName": id.name,
                "Dimensions": id.dimensions.iter().map(|(k, v)| json!({"Name": k, "Value": v})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({ "Metrics": metrics }))
}

/// DescribeAlarms: every alarm of the configuration with its state, CloudWatch's
/// `MetricAlarms` shape.
pub(crate) fn describe_alarms(
    store: &dyn LogStore,
    config: &ServerConfig,
    alarms: &Alarms,
    now: Millis,
) -> ApiResult<Value> {
    let statuses = alarms.statuses();
    let list: Vec<Value> = config
        .alarms
        .iter()
        .map(|(name, alarm)| {
            let status = statuses.get(name);
            let metric = metric_of(alarm);
            let current: Vec<Value> = evaluation_window(store, alarm, now)
                .into_iter()
                .map(|(t, v)| json!({ "Timestamp": t / 1000, "Value": v }))
                .collect();
            json!({
                "AlarmName": name,
                "AlarmArn": format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", config.region, config.account_id),
                "AlarmDescription": alarm.alarm_description,
                "StateValue": status.map_or("INSUFFICIENT_DATA", |s| s.state.as_str()),
                "StateReason": status.map(|s| s.reason.clone()),
                "StateUpdatedTimestamp": status.map(|s| s.updated as f64 / 1000.0),
                "Namespace": metric.namespace,
                "MetricName": metric.name,
                "Dimensions": metric.dimensions.iter().map(|(k, v)| json!({"Name": k, "Value": v})).collect::<Vec<_>>(),
                "Statistic": alarm.statistic,
                "Period": alarm.period,
                "EvaluationPeriods": alarm.evaluation_periods,
                "DatapointsToAlarm": alarm.datapoints_to_alarm.unwrap_or(alarm.evaluation_periods),
                "ComparisonOperator": alarm.comparison_operator,
                "Threshold": alarm.threshold,
                "TreatMissingData": alarm.treat_missing_data,
                "AlarmActions": alarm.alarm_actions,
                "OKActions": alarm.ok_actions,
                "InsufficientDataActions": alarm.insufficient_data_actions,
                "EvaluationWindow": current,
            })
        })
        .collect();
    Ok(json!({ "MetricAlarms": list }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_names_with_any_characters() {
        for (g, f) in [("/a/b", "x"), ("g", "a:b/c"), ("#", "ß")] {
            assert_eq!(parse_token(&token(g, f)), Some((g.into(), f.into())));
        }
        for bad in ["", "m/", "m/9:ab", "x/1:ab", "m/1:ß"] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }
}
