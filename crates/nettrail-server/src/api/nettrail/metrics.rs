//! nettrail's own operations that read what metric filters publish and alarms decide:
//! `GetMetricStatistics` and `ListMetrics` (CloudWatch's shapes, so scripts written for
//! `aws cloudwatch` read them) and `DescribeAlarms`.

use std::collections::BTreeMap;

use nettrail_store::{LogStore, MetricId, Millis};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::ServerConfig;
use crate::engines::alarms::{evaluation_window, metric_of, Alarms};
use crate::engines::metric_filters::{datapoints, statistic, MINUTE_MS, STATISTICS};
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

/// Datapoints one GetMetricStatistics answer holds at most (CloudWatch's limit).
const MAX_DATAPOINTS: i64 = 1440;

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
