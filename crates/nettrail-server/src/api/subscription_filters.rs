//! Subscription filters as operations: PutSubscriptionFilter (the destination resolved
//! and checked, then the delivery task started), DescribeSubscriptionFilters and
//! DeleteSubscriptionFilter. Delivery itself is the subscriptions engine
//! (`engines/subscriptions/`).

use nettrail_store::SubscriptionFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::{compile_pattern, now_ms};
use crate::engines::subscriptions::destination::Destination;
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

use super::context::{invalid_token, ApiContext};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutSubscriptionFilterRequest {
    log_group_name: Option<String>,
    filter_name: Option<String>,
    filter_pattern: Option<String>,
    destination_arn: Option<String>,
    role_arn: Option<String>,
    distribution: Option<String>,
    apply_on_transformed_logs: Option<bool>,
    field_selection_criteria: Option<String>,
    emit_system_fields: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeSubscriptionFiltersRequest {
    log_group_name: Option<String>,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteSubscriptionFilterRequest {
    log_group_name: Option<String>,
    filter_name: Option<String>,
}

pub(crate) fn put_subscription_filter(
    api: &ApiContext,
    req: PutSubscriptionFilterRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.filter_definition(&req.log_group_name, &req.filter_name, &req.filter_pattern);
    v.required("destinationArn", &req.destination_arn);
    v.length(
        "destinationArn",
        req.destination_arn.as_deref(),
        1,
        usize::MAX,
    );
    v.length("roleArn", req.role_arn.as_deref(), 1, usize::MAX);
    v.one_of(
        "distribution",
        req.distribution.as_deref(),
        &["Random", "ByLogStream"],
    );
    v.length(
        "fieldSelectionCriteria",
        req.field_selection_criteria.as_deref(),
        0,
        2000,
    );
    v.finish()?;
    let group = req.log_group_name.expect("validated");
    let name = req.filter_name.expect("validated");
    let pattern = req.filter_pattern.expect("validated");
    let destination_arn = req.destination_arn.expect("validated");
    api.store.group(&group)?;
    compile_pattern(&pattern)?;
    let existing = api.store.subscription_filters(&group)?;
    let previous = existing.iter().find(|f| f.filter_name == name);
    if previous.is_none() && existing.len() >= api.config.subscriptions.max_filters_per_group {
        return Err(ApiError::LimitExceeded("Resource limit exceeded.".into()));
    }
    let destination =
        Destination::resolve(&destination_arn, &api.config).map_err(ApiError::InvalidParameter)?;
    // As AWS does, the destination must take a CONTROL_MESSAGE before the filter
    // exists.
    api.engines
        .subscriptions
        .check_destination(&destination)
        .map_err(|e| {
            ApiError::InvalidParameter(format!(
                "Could not deliver test message to specified destination: {e}"
            ))
        })?;
    let filter = SubscriptionFilter {
        filter_name: name.clone(),
        filter_pattern: pattern,
        destination_arn,
        role_arn: req.role_arn,
        distribution: req.distribution.unwrap_or_else(|| "ByLogStream".into()),
        apply_on_transformed_logs: req.apply_on_transformed_logs.unwrap_or(false),
        field_selection_criteria: req.field_selection_criteria,
        emit_system_fields: req.emit_system_fields.unwrap_or_default(),
        creation_time: previous.map_or_else(now_ms, |p| p.creation_time),
        // An update keeps delivering from where it was; a new filter sees the
        // events ingested from now on.
        start_after: previous.map_or_else(|| api.store.committed_seq(), |p| p.start_after),
    };
    if previous.is_none() {
        api.store
            .set_cursor(&group, &name, Some(filter.start_after))?;
    }
    api.store.put_subscription_filter(&group, filter.clone())?;
    api.engines.subscriptions.run(group, filter);
    Ok(json!({}))
}

pub(crate) fn describe_subscription_filters(
    api: &ApiContext,
    req: DescribeSubscriptionFiltersRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.filter_name("filterNamePrefix", req.filter_name_prefix.as_deref());
    v.next_token("nextToken", req.next_token.as_deref());
    v.range("limit", req.limit, 1, 50);
    v.finish()?;
    let group = req.log_group_name.expect("validated");
    let after = match &req.next_token {
        Some(token) => Some(
            token
                .strip_prefix("s/")
                .ok_or_else(invalid_token)?
                .to_owned(),
        ),
        None => None,
    };
    let limit = req.limit.unwrap_or(50) as usize;
    let prefix = req.filter_name_prefix.unwrap_or_default();
    // Names in ASCII order, as AWS lists them.
    let selected: Vec<SubscriptionFilter> = api
        .store
        .subscription_filters(&group)?
        .into_iter()
        .filter(|f| f.filter_name.starts_with(&prefix))
        .filter(|f| after.as_deref().is_none_or(|a| f.filter_name.as_str() > a))
        .collect();
    let page = &selected[..selected.len().min(limit)];
    let filters: Vec<Value> = page
        .iter()
        .map(|f| {
            let mut out = json!({
                "filterName": f.filter_name,
                "logGroupName": group,
                "filterPattern": f.filter_pattern,
                "destinationArn": f.destination_arn,
                "distribution": f.distribution,
                "applyOnTransformedLogs": f.apply_on_transformed_logs,
                "creationTime": f.creation_time,
            });
            if let Some(role) = &f.role_arn {
                out["roleArn"] = json!(role);
            }
            if let Some(criteria) = &f.field_selection_criteria {
                out["fieldSelectionCriteria"] = json!(criteria);
            }
            if !f.emit_system_fields.is_empty() {
                out["emitSystemFields"] = json!(f.emit_system_fields);
            }
            out
        })
        .collect();
    let mut out = json!({ "subscriptionFilters": filters });
    if selected.len() > page.len() {
        out["nextToken"] = format!("s/{}", page.last().expect("a full page").filter_name).into();
    }
    Ok(out)
}

pub(crate) fn delete_subscription_filter(
    api: &ApiContext,
    req: DeleteSubscriptionFilterRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("filterName", &req.filter_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.filter_name("filterName", req.filter_name.as_deref());
    v.finish()?;
    let group = req.log_group_name.expect("validated");
    let name = req.filter_name.expect("validated");
    if !api.store.delete_subscription_filter(&group, &name)? {
        return Err(ApiError::ResourceNotFound(
            "The specified subscription filter does not exist.".into(),
        ));
    }
    api.engines.subscriptions.stop(&group, &name);
    api.store.set_cursor(&group, &name, None)?;
    Ok(json!({}))
}
