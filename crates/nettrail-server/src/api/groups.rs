//! Log groups and log streams: CreateLogGroup, DeleteLogGroup, DescribeLogGroups,
//! CreateLogStream, DeleteLogStream, DescribeLogStreams.

use std::collections::BTreeMap;

use nettrail_store::{policy_key, GroupInfo, NewGroup, StreamInfo};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::common::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

use super::context::{invalid_token, put_opt, ApiContext, GroupNameRequest};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateLogGroupRequest {
    log_group_name: Option<String>,
    kms_key_id: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    log_group_class: Option<String>,
    deletion_protection_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeLogGroupsRequest {
    account_identifiers: Option<Vec<String>>,
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    log_group_class: Option<String>,
    log_group_identifiers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamRequest {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeLogStreamsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

pub(crate) fn group_json(api: &ApiContext, g: &GroupInfo, metric_filter_count: u64) -> Value {
    let arn = api.group_arn(&g.name);
    let mut m = Map::new();
    m.insert("logGroupName".into(), g.name.clone().into());
    m.insert("creationTime".into(), g.creation_time.into());
    put_opt(&mut m, "retentionInDays", g.retention_days);
    m.insert("metricFilterCount".into(), metric_filter_count.into());
    m.insert("arn".into(), format!("{arn}:*").into());
    m.insert("storedBytes".into(), g.stored_bytes.into());
    put_opt(&mut m, "kmsKeyId", g.kms_key_id.clone());
    m.insert("logGroupClass".into(), g.class.clone().into());
    m.insert("logGroupArn".into(), arn.into());
    m.insert(
        "deletionProtectionEnabled".into(),
        g.deletion_protection.into(),
    );
    Value::Object(m)
}

pub(crate) fn create_log_group(api: &ApiContext, req: CreateLogGroupRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.length("kmsKeyId", req.kms_key_id.as_deref(), 0, 256);
    v.tags("tags", req.tags.as_ref(), true);
    v.one_of(
        "logGroupClass",
        req.log_group_class.as_deref(),
        &["STANDARD", "INFREQUENT_ACCESS", "DELIVERY"],
    );
    v.finish()?;
    let name = req.log_group_name.expect("validated");
    if name
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("aws/"))
    {
        return Err(ApiError::InvalidParameter(
            "Log groups starting with AWS/ are reserved for AWS.".into(),
        ));
    }
    if api.store.group_count() >= api.config.limits.max_log_groups {
        return Err(ApiError::LimitExceeded("Resource limit exceeded.".into()));
    }
    api.store.create_group(
        NewGroup {
            name,
            class: req.log_group_class.unwrap_or_else(|| "STANDARD".into()),
            kms_key_id: req.kms_key_id,
            tags: req.tags.unwrap_or_default(),
            deletion_protection: req.deletion_protection_enabled.unwrap_or(false),
        },
        now_ms(),
    )?;
    Ok(json!({}))
}

pub(crate) fn delete_log_group(api: &ApiContext, req: GroupNameRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.finish()?;
    let name = req.log_group_name.expect("validated");
    if api.store.group(&name)?.deletion_protection {
        return Err(ApiError::Validation(
            "The log group has deletion protection enabled; disable it before deleting the log group.".into(),
        ));
    }
    api.store.delete_group(&name)?;
    api.engines.subscriptions.stop_group(&name);
    api.engines.metric_filters.stop_group(&name);
    // A log-group-level resource policy goes with its log group.
    let key = policy_key(Some(&api.group_arn(&name)), "");
    let _ = api.store.delete_policy(&key);
    Ok(json!({}))
}

pub(crate) fn describe_log_groups(
    api: &ApiContext,
    req: DescribeLogGroupsRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.list_length(
        "accountIdentifiers",
        req.account_identifiers.as_deref(),
        0,
        20,
    );
    v.log_group_name("logGroupNamePrefix", req.log_group_name_prefix.as_deref());
    v.length(
        "logGroupNamePattern",
        req.log_group_name_pattern.as_deref(),
        0,
        512,
    );
    v.pattern(
        "logGroupNamePattern",
        req.log_group_name_pattern.as_deref(),
        r"[\.\-_/#A-Za-z0-9]*",
        crate::validate::is_log_group_name,
    );
    v.next_token("nextToken", req.next_token.as_deref());
    v.range("limit", req.limit, 1, 50);
    v.one_of(
        "logGroupClass",
        req.log_group_class.as_deref(),
        &["STANDARD", "INFREQUENT_ACCESS", "DELIVERY"],
    );
    v.list_length(
        "logGroupIdentifiers",
        req.log_group_identifiers.as_deref(),
        1,
        50,
    );
    for id in req.log_group_identifiers.iter().flatten() {
        v.log_group_identifier("logGroupIdentifiers.member", Some(id));
    }
    v.finish()?;
    if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
        return Err(ApiError::InvalidParameter(
            "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.".into(),
        ));
    }
    let limit = req.limit.unwrap_or(50) as usize;
    let after = match &req.next_token {
        Some(token) => Some(
            token
                .strip_prefix("g/")
                .ok_or_else(invalid_token)?
                .to_owned(),
        ),
        None => None,
    };
    let wanted: Option<Vec<String>> = req.log_group_identifiers.as_ref().map(|ids| {
        ids.iter()
            .map(|id| api.group_name_from_identifier(id))
            .collect()
    });
    let prefix = req.log_group_name_prefix.as_deref().unwrap_or("");
    let pattern = req
        .log_group_name_pattern
        .as_deref()
        .filter(|p| !p.is_empty());
    let mut page: Vec<GroupInfo> = Vec::new();
    let mut more = false;
    api.store.visit_groups(after.as_deref(), &mut |g| {
        if !g.name.starts_with(prefix) {
            // Names are visited in order: once past the prefix range, stop.
            return g.name.as_str() < prefix;
        }
        let selected = pattern.is_none_or(|p| g.name.contains(p))
            && req.log_group_class.as_deref().is_none_or(|c| c == g.class)
            && wanted.as_ref().is_none_or(|w| w.contains(&g.name));
        if !selected {
            return true;
        }
        if page.len() == limit {
            more = true;
            return false;
        }
        page.push(g);
        true
    });
    let groups: Vec<Value> = page
        .iter()
        .map(|g| {
            if pattern.is_some() {
                // With a pattern AWS returns only these members.
                json!({
                    "logGroupName": g.name,
                    "creationTime": g.creation_time,
                    "arn": format!("{}:*", api.group_arn(&g.name)),
                })
            } else {
                let filters = api.store.metric_filters(&g.name).map_or(0, |f| f.len());
                group_json(api, g, filters as u64)
            }
        })
        .collect();
    let mut out = json!({ "logGroups": groups });
    if more {
        out["nextToken"] = format!("g/{}", page.last().expect("a full page").name).into();
    }
    Ok(out)
}

pub(crate) fn stream_names(v: &mut Violations, group: Option<&str>, stream: Option<&str>) {
    v.log_group_name("logGroupName", group);
    v.log_stream_name("logStreamName", stream);
}

/// Validates a request that names one stream and returns (group, stream).
pub(crate) fn required_stream(req: &StreamRequest) -> ApiResult<(&str, &str)> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("logStreamName", &req.log_stream_name);
    stream_names(
        &mut v,
        req.log_group_name.as_deref(),
        req.log_stream_name.as_deref(),
    );
    v.finish()?;
    Ok((
        req.log_group_name.as_deref().expect("validated"),
        req.log_stream_name.as_deref().expect("validated"),
    ))
}

pub(crate) fn create_log_stream(api: &ApiContext, req: StreamRequest) -> ApiResult<Value> {
    let (group, stream) = required_stream(&req)?;
    api.store.create_stream(group, stream, now_ms())?;
    Ok(json!({}))
}

pub(crate) fn delete_log_stream(api: &ApiContext, req: StreamRequest) -> ApiResult<Value> {
    let (group, stream) = required_stream(&req)?;
    api.store.delete_stream(group, stream)?;
    Ok(json!({}))
}

pub(crate) fn describe_log_streams(
    api: &ApiContext,
    req: DescribeLogStreamsRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.log_group_identifier("logGroupIdentifier", req.log_group_identifier.as_deref());
    v.log_stream_name("logStreamNamePrefix", req.log_stream_name_prefix.as_deref());
    v.one_of(
        "orderBy",
        req.order_by.as_deref(),
        &["LogStreamName", "LastEventTime"],
    );
    v.next_token("nextToken", req.next_token.as_deref());
    v.range("limit", req.limit, 1, 50);
    v.finish()?;
    let group = api.resolve_group(req.log_group_name, req.log_group_identifier)?;
    let by_time = req.order_by.as_deref() == Some("LastEventTime");
    if by_time && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::InvalidParameter(
            "Cannot order by LastEventTime with a logStreamNamePrefix.".into(),
        ));
    }
    let descending = req.descending.unwrap_or(false);
    let limit = req.limit.unwrap_or(50) as usize;
    // The sort key of a stream: (last event time or 0 when ordering by time, name).
    let sort_key = |s: &StreamInfo| -> (i64, String) {
        let time = if by_time {
            s.last_event_timestamp.unwrap_or(0)
        } else {
            0
        };
        (time, s.name.clone())
    };
    let after: Option<(i64, String)> = match &req.next_token {
        Some(token) => {
            let rest = token.strip_prefix("s/").ok_or_else(invalid_token)?;
            let (time, name) = rest.split_once('/').ok_or_else(invalid_token)?;
            Some((time.parse().map_err(|_| invalid_token())?, name.to_owned()))
        }
        None => None,
    };
    let prefix = req.log_stream_name_prefix.as_deref().unwrap_or("");
    let mut streams: Vec<((i64, String), StreamInfo)> = api
        .store
        .streams(&group)?
        .into_iter()
        .filter(|s| s.name.starts_with(prefix))
        .map(|s| (sort_key(&s), s))
        .collect();
    streams.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        streams.reverse();
    }
    let start = match &after {
        None => 0,
        Some(after) => {
            streams.partition_point(|(k, _)| if descending { k >= after } else { k <= after })
        }
    };
    let page: Vec<&((i64, String), StreamInfo)> = streams[start..].iter().take(limit).collect();
    let more = streams.len() > start + page.len();
    let list: Vec<Value> = page
        .iter()
        .map(|(_, s)| {
            let mut m = Map::new();
            m.insert("logStreamName".into(), s.name.clone().into());
            m.insert("creationTime".into(), s.creation_time.into());
            put_opt(&mut m, "firstEventTimestamp", s.first_event_timestamp);
            put_opt(&mut m, "lastEventTimestamp", s.last_event_timestamp);
            put_opt(&mut m, "lastIngestionTime", s.last_ingestion_time);
            m.insert(
                "arn".into(),
                format!("{}:log-stream:{}", api.group_arn(&group), s.name).into(),
            );
            // Deprecated by AWS: always 0 since 2019.
            m.insert("storedBytes".into(), 0.into());
            Value::Object(m)
        })
        .collect();
    let mut out = json!({ "logStreams": list });
    if more {
        let ((time, name), _) = page.last().expect("a full page");
        out["nextToken"] = format!("s/{time}/{name}").into();
    }
    Ok(out)
}
