//! Metric filters as operations: PutMetricFilter, DescribeMetricFilters and
//! DeleteMetricFilter with AWS's validation, and TestMetricFilter. Counting is the
//! metric filter engine (`engines/metric_filters.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use nettrail_pattern::MetricTransformation;
use nettrail_store::{LogStore, MetricFilter, MetricTransformationDef, Millis};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::common::compile_pattern;
use crate::config::ServerConfig;
use crate::engines::metric_filters::MetricEngine;
use crate::error::{ApiError, ApiResult};
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
    let pattern = compile_pattern(&pattern_text)?;
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
#[serde(rename_all = "camelCase")]
pub(crate) struct TestMetricFilterRequest {
    filter_pattern: Option<String>,
    log_event_messages: Option<Vec<String>>,
}

/// TestMetricFilter: which messages match, numbered from 1 in the order given, with the
/// values a space-delimited pattern extracts.
pub(crate) fn test_metric_filter(req: TestMetricFilterRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("filterPattern", &req.filter_pattern);
    v.required("logEventMessages", &req.log_event_messages);
    v.length("filterPattern", req.filter_pattern.as_deref(), 0, 1024);
    v.list_length("logEventMessages", req.log_event_messages.as_deref(), 1, 50);
    for message in req.log_event_messages.iter().flatten() {
        v.length("logEventMessages.member", Some(message), 1, usize::MAX);
    }
    v.finish()?;
    let pattern = compile_pattern(req.filter_pattern.as_deref().expect("validated"))?;
    let matches: Vec<Value> = req
        .log_event_messages
        .expect("validated")
        .into_iter()
        .enumerate()
        .filter_map(|(i, message)| {
            let extracted: Map<String, Value> = pattern
                .extracted_values(&message)?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Some(json!({ "eventNumber": i + 1, "eventMessage": message, "extractedValues": extracted }))
        })
        .collect();
    Ok(json!({ "matches": matches }))
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
