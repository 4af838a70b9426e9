//! Logs Insights operations: StartQuery, GetQueryResults, StopQuery, DescribeQueries,
//! GetLogRecord, GetLogGroupFields and ListLogGroupsForQuery
//! (`shared/specs/logs-insights.md` §1). The language is `nettrail-insights`; the
//! running queries are `engines/insights.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use nettrail_insights::eval::Record;
use nettrail_insights::{Compiled, InputEvent};
use nettrail_store::{Direction, PageLimit, ScanRequest, StreamSelector};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::context::{invalid_token, put_opt, ApiContext};
use crate::engines::insights::{decode_ptr, encode_ptr, NewQuery, QueryStatus, TooManyQueries};
use crate::error::{ApiError, ApiResult};

/// The longest query text (AWS's).
const MAX_QUERY_CHARS: usize = 10_000;
/// Rows one GetQueryResults answer holds at most.
const MAX_PAGE_ROWS: usize = 10_000;
/// Rows a query may return (StartQuery's `limit` at most).
const MAX_LIMIT: i64 = 100_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartQueryRequest {
    query_string: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    log_group_name: Option<String>,
    log_group_names: Option<Vec<String>>,
    log_group_identifiers: Option<Vec<String>>,
    limit: Option<i64>,
    query_language: Option<String>,
}

fn missing(member: &str) -> ApiError {
    ApiError::InvalidParameter(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

pub(crate) fn start_query(api: &ApiContext, req: StartQueryRequest) -> ApiResult<Value> {
    let query_string = req
        .query_string
        .clone()
        .ok_or_else(|| missing("queryString"))?;
    let start_time = req.start_time.ok_or_else(|| missing("startTime"))?;
    let end_time = req.end_time.ok_or_else(|| missing("endTime"))?;
    if query_string.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::InvalidParameter(format!(
            "1 validation error detected: Value at 'queryString' failed to satisfy constraint: Member must have length less than or equal to {MAX_QUERY_CHARS}"
        )));
    }
    if start_time < 0 || end_time < 0 {
        return Err(ApiError::InvalidParameter(
            "startTime and endTime must be greater than or equal to 0.".into(),
        ));
    }
    if end_time < start_time {
        return Err(ApiError::InvalidParameter(
            "endTime must be greater than or equal to startTime.".into(),
        ));
    }
    match req.query_language.as_deref() {
        None | Some("CWLI") => {}
        Some(other @ ("SQL" | "PPL")) => {
            return Err(ApiError::InvalidParameter(format!(
                "queryLanguage {other} is not supported by nettrail yet; use CWLI (Logs Insights QL), or SQL through the Athena API."
            )))
        }
        Some(other) => {
            return Err(ApiError::InvalidParameter(format!(
                "1 validation error detected: Value '{other}' at 'queryLanguage' failed to satisfy constraint: Member must satisfy enum value set: [SQL, PPL, CWLI]"
            )))
        }
    }
    let limit = match req.limit {
        None => None,
        Some(l) if (1..=MAX_LIMIT).contains(&l) => Some(l as usize),
        Some(l) => {
            return Err(ApiError::InvalidParameter(format!(
                "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {MAX_LIMIT}"
            )))
        }
    };
    let compiled = Compiled::new(&query_string, limit).map_err(ApiError::from)?;
    let groups = query_groups(api, &req, &compiled)?;
    let max_groups = api.engines.insights.settings().max_log_groups.max(1);
    if groups.len() > max_groups {
        return Err(ApiError::InvalidParameter(format!(
            "A query may read at most {max_groups} log groups; this one names {}.",
            groups.len()
        )));
    }
    for group in &groups {
        api.store.group(group)?;
    }
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| ApiError::Internal("no runtime to run the query on".into()))?;
    let new = NewQuery {
        query_string,
        compiled,
        groups,
        start_ms: start_time.saturating_mul(1000),
        // The whole end second.
        end_ms: end_time.saturating_mul(1000).saturating_add(999),
    };
    match api.engines.insights.start(new, &runtime) {
        Ok(query) => Ok(json!({ "queryId": query.id })),
        Err(TooManyQueries(n)) => Err(ApiError::LimitExceeded(format!(
            "Account maximum query concurrency limit of [{n}] reached."
        ))),
    }
}

/// The groups a query reads: exactly one of the three selectors, or the groups its
/// `SOURCE` command selects.
fn query_groups(
    api: &ApiContext,
    req: &StartQueryRequest,
    compiled: &Compiled,
) -> ApiResult<Vec<String>> {
    let given = [
        req.log_group_name.is_some(),
        req.log_group_names.is_some(),
        req.log_group_identifiers.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if let Some(source) = compiled.source() {
        if given > 0 {
            return Err(ApiError::InvalidParameter(
                "A query with SOURCE must not also name log groups in the request.".into(),
            ));
        }
        let mut groups = Vec::new();
        api.store.visit_groups(None, &mut |g| {
            if source.name_prefixes.is_empty()
                || source
                    .name_prefixes
                    .iter()
                    .any(|p| g.name.starts_with(p.as_str()))
            {
                groups.push(g.name);
            }
            true
        });
        return Ok(groups);
    }
    if given != 1 {
        return Err(ApiError::InvalidParameter(
            "Exactly one of logGroupName, logGroupNames or logGroupIdentifiers must be given."
                .into(),
        ));
    }
    let mut groups: Vec<String> = if let Some(name) = &req.log_group_name {
        vec![name.clone()]
    } else if let Some(names) = &req.log_group_names {
        names.clone()
    } else {
        req.log_group_identifiers
            .iter()
            .flatten()
            .map(|i| api.group_name_from_identifier(i))
            .collect()
    };
    if groups.is_empty() {
        return Err(ApiError::InvalidParameter(
            "At least one log group must be given.".into(),
        ));
    }
    groups.dedup();
    Ok(groups)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryIdRequest {
    query_id: Option<String>,
    next_token: Option<String>,
    max_items: Option<i64>,
}

fn query(
    api: &ApiContext,
    id: Option<String>,
) -> ApiResult<Arc<crate::engines::insights::InsightsQuery>> {
    let id = id.ok_or_else(|| missing("queryId"))?;
    api.engines
        .insights
        .get(&id)
        .ok_or_else(|| ApiError::ResourceNotFound(format!("Query {id} does not exist.")))
}

pub(crate) fn get_query_results(api: &ApiContext, req: QueryIdRequest) -> ApiResult<Value> {
    let query = query(api, req.query_id)?;
    let progress = query.progress();
    let offset = match &req.next_token {
        None => 0,
        Some(token) => token.parse::<usize>().map_err(|_| invalid_token())?,
    };
    let page_rows = match req.max_items {
        None => MAX_PAGE_ROWS,
        Some(n) if (0..=MAX_PAGE_ROWS as i64).contains(&n) => (n as usize).max(1),
        Some(n) => {
            return Err(ApiError::InvalidParameter(format!(
                "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to {MAX_PAGE_ROWS}"
            )))
        }
    };
    let rows: Vec<Value> = progress
        .rows
        .iter()
        .skip(offset)
        .take(page_rows)
        .map(|row| {
            Value::Array(
                row.iter()
                    .map(|(field, value)| json!({ "field": field, "value": value }))
                    .collect(),
            )
        })
        .collect();
    let mut out = Map::new();
    out.insert("queryLanguage".into(), "CWLI".into());
    out.insert("status".into(), progress.status.as_str().into());
    out.insert(
        "statistics".into(),
        json!({
            "recordsMatched": progress.records_matched as f64,
            "recordsScanned": progress.records_scanned as f64,
            "bytesScanned": progress.bytes_scanned as f64,
            "estimatedRecordsSkipped": 0.0,
            "estimatedBytesSkipped": 0.0,
            "logGroupsScanned": query.groups.len() as f64,
        }),
    );
    let next = offset + rows.len();
    out.insert("results".into(), Value::Array(rows));
    put_opt(
        &mut out,
        "nextToken",
        (next < progress.rows.len()).then(|| next.to_string()),
    );
    Ok(Value::Object(out))
}

pub(crate) fn stop_query(api: &ApiContext, req: QueryIdRequest) -> ApiResult<Value> {
    let query = query(api, req.query_id)?;
    api.engines
        .insights
        .stop(&query)
        .map_err(|_| ApiError::InvalidParameter(format!("Query {} is not running.", query.id)))?;
    Ok(json!({ "success": true }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeQueriesRequest {
    log_group_name: Option<String>,
    status: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub(crate) fn describe_queries(api: &ApiContext, req: DescribeQueriesRequest) -> ApiResult<Value> {
    let status = match &req.status {
        None => None,
        Some(s) => Some(QueryStatus::parse(s).ok_or_else(|| {
            ApiError::InvalidParameter(format!(
                "1 validation error detected: Value '{s}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Scheduled, Running, Complete, Failed, Cancelled, Timeout, Unknown]"
            ))
        })?),
    };
    let max = match req.max_results {
        None => 1000,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::InvalidParameter(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000"
            )))
        }
    };
    let offset = match &req.next_token {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| invalid_token())?,
    };
    let matching: Vec<_> = api
        .engines
        .insights
        .list()
        .into_iter()
        .filter(|q| {
            req.log_group_name
                .as_ref()
                .is_none_or(|g| q.groups.contains(g))
        })
        .filter(|q| status.is_none_or(|s| q.progress().status == s))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max)
        .map(|q| {
            let progress = q.progress();
            let mut info = Map::new();
            info.insert("queryLanguage".into(), "CWLI".into());
            info.insert("queryId".into(), q.id.clone().into());
            info.insert("queryString".into(), q.query_string.clone().into());
            info.insert("status".into(), progress.status.as_str().into());
            info.insert("createTime".into(), q.created_ms.into());
            put_opt(&mut info, "logGroupName", q.groups.first().cloned());
            put_opt(
                &mut info,
                "queryDuration",
                progress.finished_ms.map(|f| (f - q.created_ms).max(0)),
            );
            info.insert("bytesScanned".into(), json!(progress.bytes_scanned as f64));
            Value::Object(info)
        })
        .collect();
    let next = offset + page.len();
    let mut out = Map::new();
    out.insert("queries".into(), Value::Array(page));
    put_opt(
        &mut out,
        "nextToken",
        (next < matching.len()).then(|| next.to_string()),
    );
    Ok(Value::Object(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListLogGroupsForQueryRequest {
    query_id: Option<String>,
}

pub(crate) fn list_log_groups_for_query(
    api: &ApiContext,
    req: ListLogGroupsForQueryRequest,
) -> ApiResult<Value> {
    let query = query(api, req.query_id)?;
    let arns: Vec<Value> = query
        .groups
        .iter()
        .map(|g| api.group_arn(g).into())
        .collect();
    Ok(json!({ "logGroupIdentifiers": arns }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetLogRecordRequest {
    log_record_pointer: Option<String>,
}

pub(crate) fn get_log_record(api: &ApiContext, req: GetLogRecordRequest) -> ApiResult<Value> {
    let ptr = req
        .log_record_pointer
        .ok_or_else(|| missing("logRecordPointer"))?;
    let (group, key) = decode_ptr(&ptr).ok_or_else(|| {
        ApiError::InvalidParameter("The specified logRecordPointer is invalid.".into())
    })?;
    let request = ScanRequest {
        group: group.clone(),
        streams: StreamSelector::All,
        start_time: Some(key.timestamp),
        end_time: Some(key.timestamp.saturating_add(1)),
        from: None,
        direction: Direction::Forward,
    };
    let page = api.store.scan(&request, &|_| true, PageLimit::UNLIMITED)?;
    let event = page
        .events
        .into_iter()
        .find(|e| e.key == key)
        .ok_or_else(|| {
            ApiError::ResourceNotFound("The specified log record does not exist.".into())
        })?;
    let record = Record::of_event(Arc::new(InputEvent {
        timestamp: event.key.timestamp,
        ingestion_time: event.ingestion_time,
        stream: event.stream,
        log: Arc::from(format!("{}:{group}", api.config.account_id)),
        message: event.message,
        ptr: encode_ptr(&group, key),
    }));
    let mut fields = Map::new();
    for name in record.field_names() {
        let value = record.get(&name);
        // Times as Unix milliseconds, as AWS gives them here.
        let text = match value {
            nettrail_insights::value::Value::Time(t) => Some(t.to_string()),
            other => other.render(),
        };
        put_opt(&mut fields, &name, text);
    }
    Ok(json!({ "logRecord": Value::Object(fields) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetLogGroupFieldsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    time: Option<i64>,
}

/// Events sampled for GetLogGroupFields at most.
const FIELD_SAMPLE: usize = 10_000;

pub(crate) fn get_log_group_fields(
    api: &ApiContext,
    req: GetLogGroupFieldsRequest,
) -> ApiResult<Value> {
    let group = api.resolve_group(req.log_group_name, req.log_group_identifier)?;
    api.store.group(&group)?;
    // AWS's window: `time` ± 8 minutes, else the last 15 minutes.
    let (start, end) = match req.time {
        Some(t) => (t * 1000 - 8 * 60_000, t * 1000 + 8 * 60_000),
        None => {
            let now = crate::common::now_ms();
            (now - 15 * 60_000, now + 1)
        }
    };
    let request = ScanRequest {
        group: group.clone(),
        streams: StreamSelector::All,
        start_time: Some(start),
        end_time: Some(end),
        from: None,
        direction: Direction::Backward,
    };
    let limit = PageLimit {
        max_events: FIELD_SAMPLE,
        max_bytes: 32 << 20,
        overhead_per_event: 0,
    };
    let page = api.store.scan(&request, &|_| true, limit)?;
    let sampled = page.events.len();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let log: Arc<str> = Arc::from(format!("{}:{group}", api.config.account_id));
    for event in page.events {
        let record = Record::of_event(Arc::new(InputEvent {
            timestamp: event.key.timestamp,
            ingestion_time: event.ingestion_time,
            stream: event.stream,
            log: Arc::clone(&log),
            message: event.message,
            ptr: String::new(),
        }));
        for name in record.field_names() {
            *counts.entry(name.into_owned()).or_default() += 1;
        }
    }
    let mut fields: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(name, n)| {
            (
                name,
                ((n * 100) as f64 / sampled.max(1) as f64).round() as u64,
            )
        })
        .collect();
    fields.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    fields.truncate(1000);
    let list: Vec<Value> = fields
        .into_iter()
        .map(|(name, percent)| json!({ "name": name, "percent": percent }))
        .collect();
    Ok(json!({ "logGroupFields": list }))
}
