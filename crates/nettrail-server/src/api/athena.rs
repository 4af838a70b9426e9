//! The Athena-compatible API over the SQL engine, signed for the `athena` service, in
//! both of the protocols AWS's SDKs speak to it: JSON 1.1 (`POST /` with `X-Amz-Target:
//! AmazonAthena.*`, botocore up to 1.44.11 and most SDKs) and REST-JSON (`POST
//! /query-executions`, `GET /query-executions/{id}/results?MaxResults=…`, botocore from
//! 1.44.12 on; [`rest_route`] turns such a request into the operation and the members its
//! path and query carry). StartQueryExecution, GetQueryExecution,
//! BatchGetQueryExecution, GetQueryResults (paged, the first page starting with the
//! header row, column metadata with Athena's type names), StopQueryExecution and
//! ListQueryExecutions, with Athena's states (QUEUED, RUNNING, SUCCEEDED, FAILED,
//! CANCELLED) and errors, so `aws athena …` and PyAthena work unchanged. The engine
//! behind it is [`engines::queries`](crate::engines::queries).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use nettrail_query::result::{rows_as_text, sql_type};

use crate::engines::queries::{Execution, NewExecution, QueryState, StartError};
use crate::error::{ApiError, ApiResult};

use super::context::{put_opt, ApiContext};

/// The `X-Amz-Target` prefix of Athena's operations.
pub const ATHENA_TARGET_PREFIX: &str = "AmazonAthena.";

/// A REST-JSON request to Athena: the operation it calls and the request members its
/// path and query string carry (merged into its JSON body, if any, before the handler
/// parses it).
#[derive(Debug, Clone, PartialEq)]
pub struct RestRoute {
    /// The operation's name (after `AmazonAthena.`).
    pub operation: &'static str,
    /// Members from the path and the query string.
    pub members: Map<String, Value>,
}

/// The Athena operation a REST-JSON request calls (the routes of Athena's REST-JSON
/// model for the operations built here), or None when `method` and `path` are none of
/// them.
pub fn rest_route(method: &http::Method, path: &str, query: Option<&str>) -> Option<RestRoute> {
    use http::Method;
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(nettrail_sigv4::percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut members = Map::new();
    let mut id = |id: &str| {
        members.insert("QueryExecutionId".into(), Value::String(id.to_owned()));
    };
    let operation = match (method, segments.as_slice()) {
        (&Method::POST, ["query-executions"]) => "StartQueryExecution",
        (&Method::GET, ["query-executions"]) => "ListQueryExecutions",
        (&Method::POST, ["batch-get-query-executions"]) => "BatchGetQueryExecution",
        (&Method::GET, ["query-executions", qid]) if !qid.is_empty() => {
            id(qid);
            "GetQueryExecution"
        }
        (&Method::GET, ["query-executions", qid, "results"]) if !qid.is_empty() => {
            id(qid);
            "GetQueryResults"
        }
        (&Method::POST, ["query-executions", qid, "stop"]) if !qid.is_empty() => {
            id(qid);
            "StopQueryExecution"
        }
        _ => return None,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (
            nettrail_sigv4::percent_decode(key),
            nettrail_sigv4::percent_decode(value),
        );
        // The model's integer members; a value that is no integer stays text, and
        // the handler refuses it as a request of the wrong shape.
        let value = match (key.as_str(), value.parse::<i64>()) {
            ("MaxResults", Ok(n)) => Value::from(n),
            _ => Value::String(value),
        };
        members.insert(key, value);
    }
    Some(RestRoute { operation, members })
}

/// `body` (a JSON object, or empty) with `members` added: the request a REST-JSON call
/// makes, as the JSON 1.1 handlers take it.
pub fn merge_rest_members(body: &[u8], members: Map<String, Value>) -> ApiResult<Vec<u8>> {
    let mut object = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(object)) => object,
            _ => {
                return Err(ApiError::Serialization(
                    "the request body is not a JSON object".into(),
                ))
            }
        }
    };
    object.extend(members);
    Ok(serde_json::to_vec(&Value::Object(object)).unwrap_or_default())
}

/// Longest query text Athena accepts.
const MAX_QUERY_CHARS: usize = 262_144;

/// Rows per GetQueryResults page at most (Athena's limit).
const MAX_RESULTS: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueryExecutionContext {
    database: Option<String>,
    catalog: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ResultConfiguration {
    output_location: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StartQueryExecutionRequest {
    query_string: Option<String>,
    client_request_token: Option<String>,
    query_execution_context: Option<QueryExecutionContext>,
    result_configuration: Option<ResultConfiguration>,
    work_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueryExecutionIdRequest {
    query_execution_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchGetQueryExecutionRequest {
    #[serde(default)]
    query_execution_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetQueryResultsRequest {
    query_execution_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListQueryExecutionsRequest {
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::InvalidRequest(message.into())
}

fn execution(api: &ApiContext, id: Option<String>) -> ApiResult<std::sync::Arc<Execution>> {
    let id = id.ok_or_else(|| invalid("QueryExecutionId is required."))?;
    api.engines
        .queries
        .get(&id)
        .ok_or_else(|| invalid(format!("QueryExecution {id} was not found")))
}

pub(crate) fn start_query_execution(
    api: &ApiContext,
    req: StartQueryExecutionRequest,
) -> ApiResult<Value> {
    let query = req
        .query_string
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| invalid("QueryString is required and must not be empty."))?;
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!(
            "QueryString is longer than {MAX_QUERY_CHARS} characters."
        )));
    }
    if let Some(token) = &req.client_request_token {
        if !(32..=128).contains(&token.len()) {
            return Err(invalid(
                "ClientRequestToken must be between 32 and 128 characters long.",
            ));
        }
    }
    let context = req.query_execution_context;
    let new = NewExecution {
        query,
        database: context
            .as_ref()
            .and_then(|c| c.database.clone())
            .unwrap_or_else(|| "default".into()),
        catalog: context
            .and_then(|c| c.catalog)
            .unwrap_or_else(|| "AwsDataCatalog".into()),
        work_group: req.work_group.unwrap_or_else(|| "primary".into()),
        output_location: req.result_configuration.and_then(|r| r.output_location),
        client_request_token: req.client_request_token,
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| ApiError::Internal("no runtime to run the query on".into()))?;
    match api.engines.queries.start(new, &runtime) {
        Ok(execution) => Ok(json!({ "QueryExecutionId": execution.id })),
        Err(StartError::TooMany(n)) => Err(ApiError::TooManyRequests(format!(
            "You have exceeded the limit for the number of queries you can run concurrently ({n}). Reduce the number of concurrent queries submitted by this account. Contact customer support to request a concurrent query limit increase."
        ))),
    }
}

/// The `QueryExecution` structure of an execution.
fn describe(e: &Execution) -> Value {
    let progress = e.progress();
    let mut status = Map::new();
    status.insert("State".into(), progress.state.as_str().into());
    status.insert("SubmissionDateTime".into(), json!(e.submitted));
    put_opt(
        &mut status,
        "CompletionDateTime",
        progress.completed.map(|t| json!(t)),
    );
    if let Some(failure) = &progress.failure {
        status.insert("StateChangeReason".into(), failure.message.clone().into());
        status.insert(
            "AthenaError".into(),
            json!({
                "ErrorCategory": failure.category,
                "ErrorType": if failure.category == 2 { 1006 } else { 401 },
                "Retryable": false,
                "ErrorMessage": failure.message,
            }),
        );
    }
    if progress.state == QueryState::Cancelled {
        status.insert(
            "StateChangeReason".into(),
            "Query was cancelled by user".into(),
        );
    }
    let total_ms = progress
        .completed
        .map_or(0, |done| ((done - e.submitted) * 1000.0).max(0.0) as u64);
    let bytes = progress.output.as_ref().map_or(0, |o| o.bytes_scanned);
    let mut result_configuration = Map::new();
    put_opt(
        &mut result_configuration,
        "OutputLocation",
        e.output_location
            .as_ref()
            .map(|l| format!("{}/{}.csv", l.trim_end_matches('/'), e.id)),
    );
    json!({
        "QueryExecutionId": e.id,
        "Query": e.query,
        "StatementType": "DML",
        "ResultConfiguration": result_configuration,
        "QueryExecutionContext": { "Database": e.database, "Catalog": e.catalog },
        "Status": status,
        "Statistics": {
            "EngineExecutionTimeInMillis": progress.engine_ms,
            "DataScannedInBytes": bytes,
            "TotalExecutionTimeInMillis": total_ms,
            "QueryQueueTimeInMillis": 0,
            "ServicePreProcessingTimeInMillis": 0,
            "QueryPlanningTimeInMillis": 0,
            "ServiceProcessingTimeInMillis": 0,
        },
        "WorkGroup": e.work_group,
        "EngineVersion": {
            "SelectedEngineVersion": "AUTO",
            "EffectiveEngineVersion": "Athena engine version 3",
        },
    })
}

pub(crate) fn get_query_execution(
    api: &ApiContext,
    req: QueryExecutionIdRequest,
) -> ApiResult<Value> {
    let e = execution(api, req.query_execution_id)?;
    Ok(json!({ "QueryExecution": describe(&e) }))
}

pub(crate) fn batch_get_query_execution(
    api: &ApiContext,
    req: BatchGetQueryExecutionRequest,
) -> ApiResult<Value> {
    if req.query_execution_ids.is_empty() || req.query_execution_ids.len() > 50 {
        return Err(invalid("QueryExecutionIds must hold 1 to 50 ids."));
    }
    let mut found = Vec::new();
    let mut unprocessed = Vec::new();
    for id in req.query_execution_ids {
        match api.engines.queries.get(&id) {
            Some(e) => found.push(describe(&e)),
            None => unprocessed.push(json!({
                "QueryExecutionId": id,
                "ErrorCode": "INVALID_INPUT",
                "ErrorMessage": "QueryExecution was not found",
            })),
        }
    }
    Ok(json!({ "QueryExecutions": found, "UnprocessedQueryExecutionIds": unprocessed }))
}

pub(crate) fn get_query_results(api: &ApiContext, req: GetQueryResultsRequest) -> ApiResult<Value> {
    let e = execution(api, req.query_execution_id)?;
    let progress = e.progress();
    let output = match (progress.state, progress.output) {
        (QueryState::Succeeded, Some(output)) => output,
        (QueryState::Failed, _) => {
            let reason = progress.failure.map(|f| f.message).unwrap_or_default();
            return Err(invalid(format!("Query has failed: {reason}")));
        }
        (state, _) => {
            return Err(invalid(format!(
                "Query has not yet finished. Current state: {}",
                state.as_str()
            )))
        }
    };
    let page_size = match req.max_results {
        None => MAX_RESULTS,
        Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {MAX_RESULTS}"
            )))
        }
    };
    // Positions count the header row as row 0, as Athena's pages do.
    let start = match &req.next_token {
        None => 0usize,
        Some(token) => token
            .strip_prefix("nt-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid("The NextToken is not valid."))?,
    };
    let total = output.rows() + 1;
    let end = (start + page_size).min(total);
    let header: Vec<Value> = output
        .schema
        .fields()
        .iter()
        .map(|f| json!({ "VarCharValue": f.name() }))
        .collect();
    let mut rows = Vec::with_capacity(end.saturating_sub(start));
    if start == 0 && end > 0 {
        rows.push(json!({ "Data": header }));
    }
    // Data rows [max(start,1) - 1, end - 1) of the result.
    let (first, last) = (start.max(1) - 1, end.saturating_sub(1));
    let mut offset = 0usize;
    for batch in &output.batches {
        let n = batch.num_rows();
        if offset + n <= first || offset >= last {
            offset += n;
            continue;
        }
        let lo = first.saturating_sub(offset);
        let hi = (last - offset).min(n);
        let slice = batch.slice(lo, hi - lo);
        let text = rows_as_text(&slice)
            .map_err(|e| ApiError::Internal(format!("formatting the result: {e}")))?;
        for row in text {
            let data: Vec<Value> = row
                .into_iter()
                .map(|v| v.map_or_else(|| json!({}), |v| json!({ "VarCharValue": v })))
                .collect();
            rows.push(json!({ "Data": data }));
        }
        offset += n;
    }
    let columns: Vec<Value> = output
        .schema
        .fields()
        .iter()
        .map(|f| {
            let t = sql_type(f.data_type());
            json!({
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": f.name(),
                "Label": f.name(),
                "Type": t.name,
                "Precision": t.precision,
                "Scale": t.scale,
                "Nullable": "UNKNOWN",
                "CaseSensitive": t.name == "varchar",
            })
        })
        .collect();
    let mut answer = json!({
        "UpdateCount": 0,
        "ResultSet": { "Rows": rows, "ResultSetMetadata": { "ColumnInfo": columns } },
    });
    if end < total {
        answer["NextToken"] = format!("nt-{end}").into();
    }
    Ok(answer)
}

pub(crate) fn stop_query_execution(
    api: &ApiContext,
    req: QueryExecutionIdRequest,
) -> ApiResult<Value> {
    let e = execution(api, req.query_execution_id)?;
    api.engines.queries.stop(&e);
    Ok(json!({}))
}

pub(crate) fn list_query_executions(
    api: &ApiContext,
    req: ListQueryExecutionsRequest,
) -> ApiResult<Value> {
    let page_size = match req.max_results {
        None => 50,
        Some(n) if (0..=50).contains(&n) => n.max(1) as usize,
        Some(n) => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"
            )))
        }
    };
    let ids = api.engines.queries.ids();
    let start = match &req.next_token {
        None => 0,
        Some(token) => {
            // The token is the id the next page starts at.
            ids.iter()
                .position(|id| id == token)
                .ok_or_else(|| invalid("The NextToken is not valid."))?
        }
    };
    let end = (start + page_size).min(ids.len());
    let mut answer = json!({ "QueryExecutionIds": ids[start..end] });
    if end < ids.len() {
        answer["NextToken"] = ids[end].clone().into();
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;

    #[test]
    fn rest_json_requests_name_their_operation_by_method_and_path() {
        let cases = [
            (
                Method::POST,
                "/query-executions",
                None,
                "StartQueryExecution",
                json!({}),
            ),
            (
                Method::GET,
                "/query-executions",
                Some("MaxResults=5&NextToken=a%2Bb&WorkGroup=primary"),
                "ListQueryExecutions",
                json!({"MaxResults": 5, "NextToken": "a+b", "WorkGroup": "primary"}),
            ),
            (
                Method::GET,
                "/query-executions/4f1c-9a",
                None,
                "GetQueryExecution",
                json!({"QueryExecutionId": "4f1c-9a"}),
            ),
            (
                Method::GET,
                "/query-executions/4f1c-9a/results",
                Some("MaxResults=7"),
                "GetQueryResults",
                json!({"QueryExecutionId": "4f1c-9a", "MaxResults": 7}),
            ),
            (
                Method::POST,
                "/query-executions/4f1c-9a/stop",
                None,
                "StopQueryExecution",
                json!({"QueryExecutionId": "4f1c-9a"}),
            ),
            (
                Method::POST,
                "/batch-get-query-executions",
                None,
                "BatchGetQueryExecution",
                json!({}),
            ),
        ];
        for (method, path, query, operation, members) in cases {
            let route = rest_route(&method, path, query).unwrap();
            assert_eq!(route.operation, operation, "{method} {path}");
            assert_eq!(Value::Object(route.members), members, "{method} {path}");
        }
        for (method, path) in [
            (Method::POST, "/"),
            (Method::DELETE, "/query-executions/x"),
            (Method::GET, "/query-executions//results"),
            (Method::GET, "/workgroups"),
        ] {
            assert_eq!(rest_route(&method, path, None), None, "{method} {path}");
        }
    }

    #[test]
    fn path_members_join_the_body() {
        let merged = merge_rest_members(
            br#"{"QueryString": "SELECT 1"}"#,
            Map::from_iter([("QueryExecutionId".to_owned(), json!("q"))]),
        )
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&merged).unwrap(),
            json!({"QueryString": "SELECT 1", "QueryExecutionId": "q"})
        );
        assert_eq!(merge_rest_members(b"", Map::new()).unwrap(), b"{}");
        assert!(merge_rest_members(b"[1]", Map::new()).is_err());
    }
}
