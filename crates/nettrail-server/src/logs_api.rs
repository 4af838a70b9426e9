//! The CloudWatch Logs operations: request shapes, validation, and the calls into the
//! store. Every handler is synchronous and runs on a blocking thread.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use nettrail_pattern::FilterPattern;
use nettrail_store::{
    policy_key, Direction, EventKey, GroupInfo, LogStore, Millis, NewEvent, NewGroup, PageLimit,
    ResourcePolicy, ScanRequest, ScannedEvent, StreamInfo, StreamSelector, SubscriptionFilter,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::ServerConfig;
use crate::error::{ApiError, ApiResult};
use crate::import_api::{self, NETTRAIL_TARGET_PREFIX};
use crate::live_tail::LiveTailPlan;
use crate::metric_api;
use crate::subscriptions::Destination;
use crate::validate::{Violations, RETENTION_DAYS};
use crate::Background;

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;
/// PutLogEvents: bytes per batch, counting each message's UTF-8 length plus 26.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// PutLogEvents: the overhead counted per event.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// A page of events is at most this many bytes, counted as for PutLogEvents.
const MAX_PAGE_BYTES: usize = 1_048_576;

/// What the store may hold for one response page of at most `limit` events.
fn response_page_limit(limit: usize) -> PageLimit {
    PageLimit {
        max_events: limit,
        max_bytes: MAX_PAGE_BYTES,
        overhead_per_event: EVENT_OVERHEAD_BYTES,
    }
}

/// Cuts a page (ascending) to what fits in [`MAX_PAGE_BYTES`], keeping the events
/// nearest where the read started (the oldest forward, the newest backward) and always
/// at least one. The store fills a page until it reaches the byte limit, so it may hold
/// one event more than fits. Returns whether anything was cut.
fn trim_to_response_bytes(
    mut events: Vec<ScannedEvent>,
    direction: Direction,
) -> (Vec<ScannedEvent>, bool) {
    let cost = |e: &ScannedEvent| e.message.len() + EVENT_OVERHEAD_BYTES;
    let mut total = 0usize;
    let mut keep = 0usize;
    let in_read_order: Box<dyn Iterator<Item = &ScannedEvent>> = match direction {
        Direction::Forward => Box::new(events.iter()),
        Direction::Backward => Box::new(events.iter().rev()),
    };
    for event in in_read_order {
        total += cost(event);
        if keep > 0 && total > MAX_PAGE_BYTES {
            break;
        }
        keep += 1;
    }
    let trimmed = keep < events.len();
    match direction {
        Direction::Forward => events.truncate(keep),
        Direction::Backward => {
            events.drain(..events.len() - keep);
        }
    }
    (events, trimmed)
}
/// Account-level resource policies allowed per region.
const MAX_ACCOUNT_POLICIES: usize = 10;
/// Characters allowed in an account-level policy document.
const MAX_ACCOUNT_POLICY_CHARS: usize = 5120;
/// Characters allowed in a log-group-level policy document.
const MAX_RESOURCE_POLICY_CHARS: usize = 51_200;

/// Every operation in the CloudWatch Logs model, so that one this server does not
/// implement yet is told apart from a misspelt one.
const KNOWN_OPERATIONS: &[&str] = &[
    "AssociateKmsKey",
    "AssociateSourceToS3TableIntegration",
    "CancelExportTask",
    "CancelImportTask",
    "CreateDelivery",
    "CreateExportTask",
    "CreateImportTask",
    "CreateLogAnomalyDetector",
    "CreateLookupTable",
    "CreateScheduledQuery",
    "DeleteAccountPolicy",
    "DeleteDataProtectionPolicy",
    "DeleteDelivery",
    "DeleteDeliveryDestination",
    "DeleteDeliveryDestinationPolicy",
    "DeleteDeliverySource",
    "DeleteDestination",
    "DeleteIndexPolicy",
    "DeleteIntegration",
    "DeleteLogAnomalyDetector",
    "DeleteLookupTable",
    "DeleteMetricFilter",
    "DeleteQueryDefinition",
    "DeleteScheduledQuery",
    "DeleteSubscriptionFilter",
    "DeleteTransformer",
    "DescribeAccountPolicies",
    "DescribeConfigurationTemplates",
    "DescribeDeliveries",
    "DescribeDeliveryDestinations",
    "DescribeDeliverySources",
    "DescribeDestinations",
    "DescribeExportTasks",
    "DescribeFieldIndexes",
    "DescribeImportTaskBatches",
    "DescribeImportTasks",
    "DescribeIndexPolicies",
    "DescribeLookupTables",
    "DescribeMetricFilters",
    "DescribeQueries",
    "DescribeQueryDefinitions",
    "DescribeSubscriptionFilters",
    "DisassociateKmsKey",
    "DisassociateSourceFromS3TableIntegration",
    "GetDataProtectionPolicy",
    "GetDelivery",
    "GetDeliveryDestination",
    "GetDeliveryDestinationPolicy",
    "GetDeliverySource",
    "GetIntegration",
    "GetLogAnomalyDetector",
    "GetLogFields",
    "GetLogGroupFields",
    "GetLogObject",
    "GetLogRecord",
    "GetLookupTable",
    "GetQueryResults",
    "GetScheduledQuery",
    "GetScheduledQueryHistory",
    "GetTransformer",
    "ListAggregateLogGroupSummaries",
    "ListAnomalies",
    "ListIntegrations",
    "ListLogAnomalyDetectors",
    "ListLogGroups",
    "ListLogGroupsForQuery",
    "ListScheduledQueries",
    "ListSourcesForS3TableIntegration",
    "PutAccountPolicy",
    "PutBearerTokenAuthentication",
    "PutDataProtectionPolicy",
    "PutDeliveryDestination",
    "PutDeliveryDestinationPolicy",
    "PutDeliverySource",
    "PutDestination",
    "PutDestinationPolicy",
    "PutIndexPolicy",
    "PutIntegration",
    "PutLogGroupDeletionProtection",
    "PutMetricFilter",
    "PutQueryDefinition",
    "PutScheduledQuery",
    "PutSubscriptionFilter",
    "PutTransformer",
    "StartLiveTail",
    "StartQuery",
    "StopQuery",
    "TestTransformer",
    "UpdateAnomaly",
    "UpdateDeliveryConfiguration",
    "UpdateLogAnomalyDetector",
    "UpdateLookupTable",
    "UpdateScheduledQuery",
];

/// Compiles a filter pattern; an invalid one is an InvalidParameterException that says
/// where and what is wrong.
pub(crate) fn compile_pattern(pattern: &str) -> ApiResult<FilterPattern> {
    FilterPattern::parse(pattern).map_err(|e| ApiError::InvalidParameter(e.to_string()))
}

/// TestMetricFilter: which messages match, numbered from 1 in the order given, with the
/// values a space-delimited pattern extracts.
fn test_metric_filter(req: TestMetricFilterRequest) -> ApiResult<Value> {
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

/// The operations, bound to a store and the server's identity (region, account).
pub struct LogsApi {
    store: Arc<dyn LogStore>,
    config: Arc<ServerConfig>,
    background: Background,
}

/// Parses a request body. Members a request shape does not list (newer SDK members, and
/// ones accepted but without effect here such as `unmask`, `interleaved` and
/// `includeLinkedAccounts`) are ignored, and JSON `null` reads as absent.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> ApiResult<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::Serialization(format!("Could not parse the request body: {e}")))
}

pub(crate) fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Inserts `value` under `key` only when it is present, so absent members are omitted.
fn put_opt<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.into());
    }
}

/// The event id clients see: a 56-digit decimal like AWS's, unique and stable per event
/// and ordered like the events (timestamp, ingestion time, sequence).
pub fn event_id(key: EventKey, ingestion_time: Millis) -> String {
    format!(
        "{:019}{:019}{:018}",
        key.timestamp.max(0),
        ingestion_time.max(0),
        key.seq % 1_000_000_000_000_000_000
    )
}

fn encode_key(prefix: &str, key: EventKey) -> String {
    format!("{prefix}/{:019}/{:020}", key.timestamp, key.seq)
}

fn decode_key(token: &str, prefix: &str) -> Option<EventKey> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('/')?;
    let (ts, seq) = rest.split_once('/')?;
    Some(EventKey {
        timestamp: ts.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

fn invalid_token() -> ApiError {
    ApiError::InvalidParameter("The specified nextToken is invalid.".into())
}

/// The key just before `key` in event order.
fn pred(key: EventKey) -> EventKey {
    match key.seq {
        0 => EventKey {
            timestamp: key.timestamp.saturating_sub(1),
            seq: u64::MAX,
        },
        seq => EventKey {
            timestamp: key.timestamp,
            seq: seq - 1,
        },
    }
}

/// The key just after `key` in event order.
fn succ(key: EventKey) -> EventKey {
    match key.seq {
        u64::MAX => EventKey {
            timestamp: key.timestamp.saturating_add(1),
            seq: 0,
        },
        seq => EventKey {
            timestamp: key.timestamp,
            seq: seq + 1,
        },
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GroupNameRequest {
    log_group_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateLogGroupRequest {
    log_group_name: Option<String>,
    kms_key_id: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    log_group_class: Option<String>,
    deletion_protection_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogGroupsRequest {
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
struct StreamRequest {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogStreamsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputLogEvent<'a> {
    timestamp: Option<i64>,
    /// Borrowed from the request body unless it holds JSON escapes.
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutLogEventsRequest<'a> {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
    #[serde(borrow)]
    log_events: Option<Vec<InputLogEvent<'a>>>,
    sequence_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEventsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterLogEventsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestMetricFilterRequest {
    filter_pattern: Option<String>,
    log_event_messages: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutRetentionPolicyRequest {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceRequest {
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResourceRequest {
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceArnRequest {
    resource_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagLogGroupRequest {
    log_group_name: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagLogGroupRequest {
    log_group_name: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutResourcePolicyRequest {
    policy_name: Option<String>,
    policy_document: Option<String>,
    resource_arn: Option<String>,
    expected_revision_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutSubscriptionFilterRequest {
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
struct DescribeSubscriptionFiltersRequest {
    log_group_name: Option<String>,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartLiveTailRequest {
    log_group_identifiers: Option<Vec<String>>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefixes: Option<Vec<String>>,
    log_event_filter_pattern: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionStatusRequest {
    log_group_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteSubscriptionFilterRequest {
    log_group_name: Option<String>,
    filter_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeResourcePoliciesRequest {
    next_token: Option<String>,
    limit: Option<i64>,
    resource_arn: Option<String>,
    policy_scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteResourcePolicyRequest {
    policy_name: Option<String>,
    resource_arn: Option<String>,
    expected_revision_id: Option<String>,
}

impl LogsApi {
    /// Binds the operations to a store.
    pub(crate) fn new(
        store: Arc<dyn LogStore>,
        config: Arc<ServerConfig>,
        background: Background,
    ) -> Self {
        LogsApi {
            store,
            config,
            background,
        }
    }

    /// Runs one operation on a JSON body and returns the JSON response.
    pub fn call(&self, operation: &str, body: &[u8]) -> ApiResult<Value> {
        match operation {
            "CreateLogGroup" => self.create_log_group(parse(body)?),
            "DeleteLogGroup" => self.delete_log_group(parse(body)?),
            "DescribeLogGroups" => self.describe_log_groups(parse(body)?),
            "CreateLogStream" => self.create_log_stream(parse(body)?),
            "DeleteLogStream" => self.delete_log_stream(parse(body)?),
            "DescribeLogStreams" => self.describe_log_streams(parse(body)?),
            "PutLogEvents" => self.put_log_events(parse(body)?),
            "GetLogEvents" => self.get_log_events(parse(body)?),
            "FilterLogEvents" => self.filter_log_events(parse(body)?),
            "PutRetentionPolicy" => self.put_retention_policy(parse(body)?),
            "DeleteRetentionPolicy" => self.delete_retention_policy(parse(body)?),
            "TagResource" => self.tag_resource(parse(body)?),
            "UntagResource" => self.untag_resource(parse(body)?),
            "ListTagsForResource" => self.list_tags_for_resource(parse(body)?),
            "TagLogGroup" => self.tag_log_group(parse(body)?),
            "UntagLogGroup" => self.untag_log_group(parse(body)?),
            "ListTagsLogGroup" => self.list_tags_log_group(parse(body)?),
            "PutResourcePolicy" => self.put_resource_policy(parse(body)?),
            "DescribeResourcePolicies" => self.describe_resource_policies(parse(body)?),
            "DeleteResourcePolicy" => self.delete_resource_policy(parse(body)?),
            "PutSubscriptionFilter" => self.put_subscription_filter(parse(body)?),
            "DescribeSubscriptionFilters" => self.describe_subscription_filters(parse(body)?),
            "DeleteSubscriptionFilter" => self.delete_subscription_filter(parse(body)?),
            "TestMetricFilter" => test_metric_filter(parse(body)?),
            "PutMetricFilter" => metric_api::put_metric_filter(
                self.store.as_ref(),
                &self.config,
                &self.background.metric_filters,
                parse(body)?,
                now_ms(),
            ),
            "DescribeMetricFilters" => {
                metric_api::describe_metric_filters(self.store.as_ref(), parse(body)?)
            }
            "DeleteMetricFilter" => {
                metric_api::delete_metric_filter(self.store.as_ref(), parse(body)?)
            }
            op if op.strip_prefix(NETTRAIL_TARGET_PREFIX) == Some("ImportLogEvents") => {
                import_api::import_log_events(self.store.as_ref(), parse(body)?, now_ms())
            }
            op if op.strip_prefix(NETTRAIL_TARGET_PREFIX) == Some("GetSubscriptionStatus") => {
                self.get_subscription_status(parse(body)?)
            }
            op if op.strip_prefix(NETTRAIL_TARGET_PREFIX) == Some("GetMetricStatistics") => {
                metric_api::get_metric_statistics(self.store.as_ref(), parse(body)?)
            }
            op if op.strip_prefix(NETTRAIL_TARGET_PREFIX) == Some("ListMetrics") => {
                metric_api::list_metrics(self.store.as_ref(), parse(body)?)
            }
            op if op.strip_prefix(NETTRAIL_TARGET_PREFIX) == Some("DescribeAlarms") => {
                metric_api::describe_alarms(
                    self.store.as_ref(),
                    &self.config,
                    &self.background.alarms,
                    now_ms(),
                )
            }
            op if op.strip_prefix(NETTRAIL_TARGET_PREFIX) == Some("GetImportCheckpoints") => {
                import_api::get_import_checkpoints(self.store.as_ref(), parse(body)?)
            }
            op if KNOWN_OPERATIONS.contains(&op) => Err(ApiError::UnknownOperation(format!(
                "Operation {op} is not implemented by this nettrail server yet."
            ))),
            op => Err(ApiError::UnknownOperation(format!(
                "Unknown operation {op}."
            ))),
        }
    }

    fn group_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{name}",
            self.config.region, self.config.account_id
        )
    }

    /// Resolves `logGroupName` / `logGroupIdentifier` (exactly one must be given) to a
    /// log group name.
    fn resolve_group(&self, name: Option<String>, identifier: Option<String>) -> ApiResult<String> {
        match (name, identifier) {
            (Some(name), None) => Ok(name),
            (None, Some(identifier)) => Ok(self.group_name_from_identifier(&identifier)),
            _ => Err(ApiError::InvalidParameter(
                "You must include either logGroupIdentifier or logGroupName, but not both.".into(),
            )),
        }
    }

    /// A log group name from a name or a log group ARN (with or without `:*`).
    fn group_name_from_identifier(&self, identifier: &str) -> String {
        if !identifier.starts_with("arn:") {
            return identifier.to_owned();
        }
        match identifier.split_once(":log-group:") {
            Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest).to_owned(),
            None => identifier.to_owned(),
        }
    }

    fn group_json(&self, g: &GroupInfo, metric_filter_count: u64) -> Value {
        let arn = self.group_arn(&g.name);
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

    fn create_log_group(&self, req: CreateLogGroupRequest) -> ApiResult<Value> {
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
        if self.store.group_count() >= self.config.limits.max_log_groups {
            return Err(ApiError::LimitExceeded("Resource limit exceeded.".into()));
        }
        self.store.create_group(
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

    fn delete_log_group(&self, req: GroupNameRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.finish()?;
        let name = req.log_group_name.expect("validated");
        if self.store.group(&name)?.deletion_protection {
            return Err(ApiError::Validation(
                "The log group has deletion protection enabled; disable it before deleting the log group.".into(),
            ));
        }
        self.store.delete_group(&name)?;
        self.background.subscriptions.stop_group(&name);
        self.background.metric_filters.stop_group(&name);
        // A log-group-level resource policy goes with its log group.
        let key = policy_key(Some(&self.group_arn(&name)), "");
        let _ = self.store.delete_policy(&key);
        Ok(json!({}))
    }

    fn describe_log_groups(&self, req: DescribeLogGroupsRequest) -> ApiResult<Value> {
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
                "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters."
                    .into(),
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
                .map(|id| self.group_name_from_identifier(id))
                .collect()
        });
        let prefix = req.log_group_name_prefix.as_deref().unwrap_or("");
        let pattern = req
            .log_group_name_pattern
            .as_deref()
            .filter(|p| !p.is_empty());
        let mut page: Vec<GroupInfo> = Vec::new();
        let mut more = false;
        self.store.visit_groups(after.as_deref(), &mut |g| {
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
                        "arn": format!("{}:*", self.group_arn(&g.name)),
                    })
                } else {
                    let filters = self.store.metric_filters(&g.name).map_or(0, |f| f.len());
                    self.group_json(g, filters as u64)
                }
            })
            .collect();
        let mut out = json!({ "logGroups": groups });
        if more {
            out["nextToken"] = format!("g/{}", page.last().expect("a full page").name).into();
        }
        Ok(out)
    }

    fn stream_names(v: &mut Violations, group: Option<&str>, stream: Option<&str>) {
        v.log_group_name("logGroupName", group);
        v.log_stream_name("logStreamName", stream);
    }

    /// Validates a request that names one stream and returns (group, stream).
    fn required_stream(req: &StreamRequest) -> ApiResult<(&str, &str)> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.required("logStreamName", &req.log_stream_name);
        Self::stream_names(
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

    fn create_log_stream(&self, req: StreamRequest) -> ApiResult<Value> {
        let (group, stream) = Self::required_stream(&req)?;
        self.store.create_stream(group, stream, now_ms())?;
        Ok(json!({}))
    }

    fn delete_log_stream(&self, req: StreamRequest) -> ApiResult<Value> {
        let (group, stream) = Self::required_stream(&req)?;
        self.store.delete_stream(group, stream)?;
        Ok(json!({}))
    }

    fn describe_log_streams(&self, req: DescribeLogStreamsRequest) -> ApiResult<Value> {
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
        let group = self.resolve_group(req.log_group_name, req.log_group_identifier)?;
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
        let mut streams: Vec<((i64, String), StreamInfo)> = self
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
                    format!("{}:log-stream:{}", self.group_arn(&group), s.name).into(),
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

    fn put_log_events(&self, req: PutLogEventsRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.required("logStreamName", &req.log_stream_name);
        v.required("logEvents", &req.log_events);
        Self::stream_names(
            &mut v,
            req.log_group_name.as_deref(),
            req.log_stream_name.as_deref(),
        );
        v.list_length("logEvents", req.log_events.as_deref(), 1, 10_000);
        v.length(
            "sequenceToken",
            req.sequence_token.as_deref(),
            1,
            usize::MAX,
        );
        for (i, event) in req.log_events.iter().flatten().enumerate() {
            // Field names are only formatted for a violation: this loop runs for every
            // event of every batch.
            let valid_timestamp = event.timestamp.is_some_and(|t| t >= 0);
            let valid_message = event.message.as_deref().is_some_and(|m| !m.is_empty());
            if valid_timestamp && valid_message {
                continue;
            }
            let field = |name: &str| format!("logEvents.{}.member.{name}", i + 1);
            v.required(&field("timestamp"), &event.timestamp);
            v.required(&field("message"), &event.message);
            v.range(&field("timestamp"), event.timestamp, 0, i64::MAX);
            if event.message.as_deref() == Some("") {
                v.length(&field("message"), Some(""), 1, usize::MAX);
            }
        }
        v.finish()?;
        let group = req.log_group_name.expect("validated");
        let stream = req.log_stream_name.expect("validated");
        let events = req.log_events.expect("validated");
        let info = self.store.group(&group)?;
        self.store.stream(&group, &stream)?;
        let stamps: Vec<i64> = events
            .iter()
            .map(|e| e.timestamp.expect("validated"))
            .collect();
        if stamps.windows(2).any(|w| w[1] < w[0]) {
            return Err(ApiError::InvalidParameter(
                "Log events in a single PutLogEvents request must be in chronological order."
                    .into(),
            ));
        }
        let sizes: Vec<usize> = events
            .iter()
            .map(|e| e.message.as_deref().map_or(0, str::len) + EVENT_OVERHEAD_BYTES)
            .collect();
        let total: usize = sizes.iter().sum();
        if total > MAX_BATCH_BYTES {
            return Err(ApiError::InvalidParameter(format!(
                "Upload too large: {total} bytes exceeds limit of {MAX_BATCH_BYTES}"
            )));
        }
        let now = now_ms();
        let too_old_end = stamps.partition_point(|&t| t < now - 14 * MS_PER_DAY);
        let expired_end = info.retention_days.map_or(0, |days| {
            stamps.partition_point(|&t| t < now - i64::from(days) * MS_PER_DAY)
        });
        let too_new_start = stamps.partition_point(|&t| t <= now + 2 * MS_PER_HOUR);
        let valid_start = too_old_end.max(expired_end).min(too_new_start);
        let valid = &stamps[valid_start..too_new_start];
        if let (Some(first), Some(last)) = (valid.first(), valid.last()) {
            if last - first > 24 * MS_PER_HOUR {
                return Err(ApiError::InvalidParameter(
                    "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into(),
                ));
            }
        }
        let to_store: Vec<NewEvent> = events
            .into_iter()
            .skip(valid_start)
            .take(too_new_start - valid_start)
            .map(|e| NewEvent {
                timestamp: e.timestamp.expect("validated"),
                message: e.message.expect("validated"),
            })
            .collect();
        let first_seq = if to_store.is_empty() {
            0
        } else {
            self.store.append(&group, &stream, &to_store)?.first_seq
        };
        let mut out = json!({ "nextSequenceToken": format!("{first_seq:056}") });
        let mut rejected = Map::new();
        if too_new_start < stamps.len() {
            rejected.insert("tooNewLogEventStartIndex".into(), too_new_start.into());
        }
        if too_old_end > 0 {
            rejected.insert("tooOldLogEventEndIndex".into(), too_old_end.into());
        }
        if expired_end > 0 {
            rejected.insert("expiredLogEventEndIndex".into(), expired_end.into());
        }
        if !rejected.is_empty() {
            out["rejectedLogEventsInfo"] = Value::Object(rejected);
        }
        Ok(out)
    }

    fn get_log_events(&self, req: GetLogEventsRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logStreamName", &req.log_stream_name);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.log_group_identifier("logGroupIdentifier", req.log_group_identifier.as_deref());
        v.log_stream_name("logStreamName", req.log_stream_name.as_deref());
        v.range("startTime", req.start_time, 0, i64::MAX);
        v.range("endTime", req.end_time, 0, i64::MAX);
        v.next_token("nextToken", req.next_token.as_deref());
        v.range("limit", req.limit, 1, 10_000);
        v.finish()?;
        let group = self.resolve_group(req.log_group_name, req.log_group_identifier)?;
        let stream = req.log_stream_name.expect("validated");
        self.store.stream(&group, &stream)?;
        // f/K: the events after K, ascending. b/K: the events just before K. No token:
        // the first events (startFromHead) or the last ones.
        let (direction, from) = match req.next_token.as_deref() {
            Some(token) if token.starts_with("f/") => (
                Direction::Forward,
                Some(decode_key(token, "f").ok_or_else(invalid_token)?),
            ),
            Some(token) if token.starts_with("b/") => (
                Direction::Backward,
                Some(decode_key(token, "b").ok_or_else(invalid_token)?),
            ),
            Some(_) => return Err(invalid_token()),
            None if req.start_from_head.unwrap_or(false) => (Direction::Forward, None),
            None => (Direction::Backward, None),
        };
        let limit = req.limit.unwrap_or(10_000) as usize;
        let scan = ScanRequest {
            group,
            streams: StreamSelector::Names(vec![stream]),
            start_time: req.start_time,
            end_time: req.end_time,
            from,
            direction,
        };
        let page = self
            .store
            .scan(&scan, &|_| true, response_page_limit(limit))?;
        let (events, _) = trim_to_response_bytes(page.events, direction);
        let lower = EventKey {
            timestamp: req.start_time.unwrap_or(0),
            seq: 0,
        };
        let (forward, backward) = match (events.first(), events.last()) {
            (Some(first), Some(last)) => (last.key, first.key),
            _ => match (direction, from) {
                (Direction::Forward, Some(k)) => (k, succ(k)),
                (Direction::Backward, Some(k)) => (pred(k), k),
                (Direction::Forward, None) => (pred(lower), lower),
                (Direction::Backward, None) => {
                    let upper = EventKey {
                        timestamp: req.end_time.unwrap_or(i64::MAX),
                        seq: 0,
                    };
                    (pred(upper), upper)
                }
            },
        };
        let events: Vec<Value> = events
            .into_iter()
            .map(|e| json!({ "timestamp": e.key.timestamp, "message": e.message, "ingestionTime": e.ingestion_time }))
            .collect();
        Ok(json!({
            "events": events,
            "nextForwardToken": encode_key("f", forward),
            "nextBackwardToken": encode_key("b", backward),
        }))
    }

    fn filter_log_events(&self, req: FilterLogEventsRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.log_group_identifier("logGroupIdentifier", req.log_group_identifier.as_deref());
        v.list_length("logStreamNames", req.log_stream_names.as_deref(), 1, 100);
        for name in req.log_stream_names.iter().flatten() {
            v.log_stream_name("logStreamNames.member", Some(name));
        }
        v.log_stream_name("logStreamNamePrefix", req.log_stream_name_prefix.as_deref());
        v.range("startTime", req.start_time, 0, i64::MAX);
        v.range("endTime", req.end_time, 0, i64::MAX);
        v.length("filterPattern", req.filter_pattern.as_deref(), 0, 1024);
        v.next_token("nextToken", req.next_token.as_deref());
        v.range("limit", req.limit, 1, 10_000);
        v.finish()?;
        let group = self.resolve_group(req.log_group_name, req.log_group_identifier)?;
        let streams = match (req.log_stream_names, req.log_stream_name_prefix) {
            (Some(_), Some(_)) => {
                return Err(ApiError::InvalidParameter(
                    "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
                        .into(),
                ))
            }
            (Some(names), None) => StreamSelector::Names(names),
            (None, Some(prefix)) => StreamSelector::Prefix(prefix),
            (None, None) => StreamSelector::All,
        };
        let pattern = compile_pattern(req.filter_pattern.as_deref().unwrap_or(""))?;
        let from = match &req.next_token {
            Some(token) => Some(decode_key(token, "e").ok_or_else(invalid_token)?),
            None => None,
        };
        let limit = req.limit.unwrap_or(10_000) as usize;
        // Existence check first, so that a missing group is an error, not an empty page.
        self.store.group(&group)?;
        let scan = ScanRequest {
            group,
            streams,
            start_time: req.start_time,
            end_time: req.end_time,
            from,
            direction: Direction::Forward,
        };
        let page = self.store.scan(
            &scan,
            &|message| pattern.matches(message),
            response_page_limit(limit),
        )?;
        let stats = page.stats;
        let (events, trimmed) = trim_to_response_bytes(page.events, Direction::Forward);
        let next_token = match events.last() {
            Some(last) if page.more || trimmed => Some(encode_key("e", last.key)),
            _ => None,
        };
        let events: Vec<Value> = events
            .into_iter()
            .map(|e| {
                json!({
                    "logStreamName": &*e.stream,
                    "timestamp": e.key.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                    "eventId": event_id(e.key, e.ingestion_time),
                })
            })
            .collect();
        tracing::debug!(
            group = %scan.group,
            pattern = pattern.as_str(),
            blocks_total = stats.blocks_total,
            blocks_read = stats.blocks_read,
            bytes_decompressed = stats.bytes_decompressed,
            events = events.len(),
            "filter log events scanned"
        );
        // AWS stopped reporting searched streams in 2020 and returns an empty list.
        let mut out = json!({ "events": events, "searchedLogStreams": [] });
        if let Some(token) = next_token {
            out["nextToken"] = token.into();
        }
        Ok(out)
    }

    fn put_retention_policy(&self, req: PutRetentionPolicyRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.required("retentionInDays", &req.retention_in_days);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        if let Some(days) = req.retention_in_days {
            if !RETENTION_DAYS.iter().any(|&d| i64::from(d) == days) {
                let allowed: Vec<String> = RETENTION_DAYS.iter().map(u32::to_string).collect();
                let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
                v.one_of("retentionInDays", Some(&days.to_string()), &allowed);
            }
        }
        v.finish()?;
        let days = req.retention_in_days.expect("validated") as u32;
        self.store
            .set_retention(&req.log_group_name.expect("validated"), Some(days))?;
        Ok(json!({}))
    }

    fn delete_retention_policy(&self, req: GroupNameRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.finish()?;
        self.store
            .set_retention(&req.log_group_name.expect("validated"), None)?;
        Ok(json!({}))
    }

    /// The log group named by a tagging ARN (`arn:aws:logs:…:log-group:NAME`, `:*`
    /// tolerated).
    fn group_from_resource_arn(&self, arn: &str) -> ApiResult<String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let valid = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "logs"
            && parts[5].starts_with("log-group:");
        if !valid {
            return Err(ApiError::InvalidParameter(format!(
                "Invalid resourceArn: {arn} is not a log group ARN."
            )));
        }
        let name = &parts[5]["log-group:".len()..];
        Ok(name.strip_suffix(":*").unwrap_or(name).to_owned())
    }

    fn add_tags(
        &self,
        group: &str,
        arn: &str,
        new_tags: BTreeMap<String, String>,
    ) -> ApiResult<()> {
        let mut tags = self.store.group(group)?.tags;
        tags.extend(new_tags);
        if tags.len() > 50 {
            return Err(ApiError::TooManyTags {
                message: "A resource can have no more than 50 tags.".into(),
                resource_name: arn.to_owned(),
            });
        }
        self.store.set_tags(group, tags)?;
        Ok(())
    }

    fn remove_tags(&self, group: &str, keys: &[String]) -> ApiResult<()> {
        let mut tags = self.store.group(group)?.tags;
        for key in keys {
            tags.remove(key);
        }
        self.store.set_tags(group, tags)?;
        Ok(())
    }

    fn tag_resource(&self, req: TagResourceRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("resourceArn", &req.resource_arn);
        v.required("tags", &req.tags);
        v.resource_arn("resourceArn", req.resource_arn.as_deref());
        v.tags("tags", req.tags.as_ref(), true);
        v.finish()?;
        let arn = req.resource_arn.expect("validated");
        let group = self.group_from_resource_arn(&arn)?;
        self.add_tags(&group, &arn, req.tags.expect("validated"))?;
        Ok(json!({}))
    }

    fn untag_resource(&self, req: UntagResourceRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("resourceArn", &req.resource_arn);
        v.required("tagKeys", &req.tag_keys);
        v.resource_arn("resourceArn", req.resource_arn.as_deref());
        v.list_length("tagKeys", req.tag_keys.as_deref(), 0, 50);
        for key in req.tag_keys.iter().flatten() {
            v.tag_key("tagKeys.member", key);
        }
        v.finish()?;
        let group =
            self.group_from_resource_arn(req.resource_arn.as_deref().expect("validated"))?;
        self.remove_tags(&group, &req.tag_keys.expect("validated"))?;
        Ok(json!({}))
    }

    fn list_tags_for_resource(&self, req: ResourceArnRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("resourceArn", &req.resource_arn);
        v.resource_arn("resourceArn", req.resource_arn.as_deref());
        v.finish()?;
        let group =
            self.group_from_resource_arn(req.resource_arn.as_deref().expect("validated"))?;
        Ok(json!({ "tags": self.store.group(&group)?.tags }))
    }

    fn tag_log_group(&self, req: TagLogGroupRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.required("tags", &req.tags);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.tags("tags", req.tags.as_ref(), true);
        v.finish()?;
        let group = req.log_group_name.expect("validated");
        let arn = self.group_arn(&group);
        self.add_tags(&group, &arn, req.tags.expect("validated"))?;
        Ok(json!({}))
    }

    fn untag_log_group(&self, req: UntagLogGroupRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.required("tags", &req.tags);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.list_length("tags", req.tags.as_deref(), 1, usize::MAX);
        for key in req.tags.iter().flatten() {
            v.tag_key("tags.member", key);
        }
        v.finish()?;
        self.remove_tags(
            &req.log_group_name.expect("validated"),
            &req.tags.expect("validated"),
        )?;
        Ok(json!({}))
    }

    fn list_tags_log_group(&self, req: GroupNameRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.finish()?;
        Ok(json!({ "tags": self.store.group(&req.log_group_name.expect("validated"))?.tags }))
    }

    fn policy_json(p: &ResourcePolicy) -> Value {
        let mut m = Map::new();
        m.insert("policyName".into(), p.name.clone().into());
        m.insert("policyDocument".into(), p.document.clone().into());
        m.insert("lastUpdatedTime".into(), p.last_updated.into());
        let scope = if p.resource_arn.is_some() {
            "RESOURCE"
        } else {
            "ACCOUNT"
        };
        m.insert("policyScope".into(), scope.into());
        put_opt(&mut m, "resourceArn", p.resource_arn.clone());
        m.insert("revisionId".into(), p.revision_id.clone().into());
        Value::Object(m)
    }

    fn put_resource_policy(&self, req: PutResourcePolicyRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("policyDocument", &req.policy_document);
        v.length(
            "policyDocument",
            req.policy_document.as_deref(),
            1,
            MAX_RESOURCE_POLICY_CHARS,
        );
        v.length(
            "expectedRevisionId",
            req.expected_revision_id.as_deref(),
            1,
            usize::MAX,
        );
        if req.resource_arn.is_none() {
            v.required("policyName", &req.policy_name);
        }
        v.finish()?;
        let document = req.policy_document.expect("validated");
        if !serde_json::from_str::<Value>(&document).is_ok_and(|d| d.is_object()) {
            return Err(ApiError::InvalidParameter(
                "Invalid policy document: the policyDocument must be a JSON object.".into(),
            ));
        }
        let existing_policies = self.store.policies();
        if let Some(arn) = &req.resource_arn {
            let group = self.group_from_resource_arn(arn)?;
            self.store.group(&group)?;
        } else if document.chars().count() > MAX_ACCOUNT_POLICY_CHARS {
            return Err(ApiError::InvalidParameter(format!(
                "The policy document of an account-level resource policy is limited to {MAX_ACCOUNT_POLICY_CHARS} characters."
            )));
        }
        let name = req.policy_name.unwrap_or_default();
        let key = policy_key(req.resource_arn.as_deref(), &name);
        let existing = existing_policies.iter().find(|p| p.key() == key);
        if let (Some(existing), Some(expected)) = (existing, &req.expected_revision_id) {
            if &existing.revision_id != expected {
                return Err(ApiError::OperationAborted(format!(
                    "The expected revision id {expected} does not match the current revision id {}.",
                    existing.revision_id
                )));
            }
        }
        let account_policies = existing_policies
            .iter()
            .filter(|p| p.resource_arn.is_none())
            .count();
        if existing.is_none()
            && req.resource_arn.is_none()
            && account_policies >= MAX_ACCOUNT_POLICIES
        {
            return Err(ApiError::LimitExceeded(format!(
                "Resource limit exceeded: an account can have at most {MAX_ACCOUNT_POLICIES} resource policies."
            )));
        }
        let policy = ResourcePolicy {
            name,
            document,
            last_updated: now_ms(),
            resource_arn: req.resource_arn,
            revision_id: uuid::Uuid::new_v4().simple().to_string(),
        };
        self.store.put_policy(policy.clone())?;
        Ok(
            json!({ "resourcePolicy": Self::policy_json(&policy), "revisionId": policy.revision_id }),
        )
    }

    fn describe_resource_policies(&self, req: DescribeResourcePoliciesRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.next_token("nextToken", req.next_token.as_deref());
        v.range("limit", req.limit, 1, 50);
        v.one_of(
            "policyScope",
            req.policy_scope.as_deref(),
            &["ACCOUNT", "RESOURCE"],
        );
        v.finish()?;
        let limit = req.limit.unwrap_or(50) as usize;
        let after = match &req.next_token {
            Some(token) => Some(
                token
                    .strip_prefix("p/")
                    .ok_or_else(invalid_token)?
                    .to_owned(),
            ),
            None => None,
        };
        let selected: Vec<ResourcePolicy> = self
            .store
            .policies()
            .into_iter()
            .filter(|p| after.as_deref().is_none_or(|a| p.key().as_str() > a))
            .filter(|p| req.resource_arn.is_none() || p.resource_arn == req.resource_arn)
            .filter(|p| match req.policy_scope.as_deref() {
                Some("ACCOUNT") => p.resource_arn.is_none(),
                Some(_) => p.resource_arn.is_some(),
                None => true,
            })
            .collect();
        let page = &selected[..selected.len().min(limit)];
        let mut out =
            json!({ "resourcePolicies": page.iter().map(Self::policy_json).collect::<Vec<_>>() });
        if selected.len() > page.len() {
            out["nextToken"] = format!("p/{}", page.last().expect("a full page").key()).into();
        }
        Ok(out)
    }

    fn put_subscription_filter(&self, req: PutSubscriptionFilterRequest) -> ApiResult<Value> {
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
        self.store.group(&group)?;
        compile_pattern(&pattern)?;
        let existing = self.store.subscription_filters(&group)?;
        let previous = existing.iter().find(|f| f.filter_name == name);
        if previous.is_none() && existing.len() >= self.config.subscriptions.max_filters_per_group {
            return Err(ApiError::LimitExceeded("Resource limit exceeded.".into()));
        }
        let destination = Destination::resolve(&destination_arn, &self.config)
            .map_err(ApiError::InvalidParameter)?;
        // As AWS does, the destination must take a CONTROL_MESSAGE before the filter
        // exists.
        self.background
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
            start_after: previous.map_or_else(|| self.store.committed_seq(), |p| p.start_after),
        };
        if previous.is_none() {
            self.store
                .set_cursor(&group, &name, Some(filter.start_after))?;
        }
        self.store.put_subscription_filter(&group, filter.clone())?;
        self.background.subscriptions.run(group, filter);
        Ok(json!({}))
    }

    /// nettrail's GetSubscriptionStatus: every subscription's deliveries, errors and lag.
    fn get_subscription_status(&self, req: SubscriptionStatusRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.finish()?;
        if let Some(group) = &req.log_group_name {
            self.store.group(group)?;
        }
        let now = now_ms();
        let subscriptions: Vec<Value> = self
            .background
            .subscriptions
            .statuses(req.log_group_name.as_deref())
            .iter()
            .map(|((group, name), status)| {
                crate::metrics::subscription_status_json(
                    self.store.as_ref(),
                    group,
                    name,
                    status,
                    now,
                )
            })
            .collect();
        Ok(json!({ "subscriptions": subscriptions }))
    }

    /// Validates a StartLiveTail request (its groups must exist) into the plan of a
    /// session; errors are answered as JSON before any stream starts.
    pub(crate) fn live_tail_plan(&self, body: &[u8]) -> ApiResult<LiveTailPlan> {
        let req: StartLiveTailRequest = parse(body)?;
        let mut v = Violations::new();
        v.required("logGroupIdentifiers", &req.log_group_identifiers);
        v.list_length(
            "logGroupIdentifiers",
            req.log_group_identifiers.as_deref(),
            1,
            10,
        );
        for id in req.log_group_identifiers.iter().flatten() {
            v.log_group_identifier("logGroupIdentifiers.member", Some(id));
        }
        for (field, list) in [
            ("logStreamNames", &req.log_stream_names),
            ("logStreamNamePrefixes", &req.log_stream_name_prefixes),
        ] {
            v.list_length(field, list.as_deref(), 1, 100);
            for name in list.iter().flatten() {
                v.log_stream_name(&format!("{field}.member"), Some(name));
            }
        }
        v.length(
            "logEventFilterPattern",
            req.log_event_filter_pattern.as_deref(),
            0,
            1024,
        );
        v.finish()?;
        let identifiers = req.log_group_identifiers.expect("validated");
        if req.log_stream_names.is_some() && req.log_stream_name_prefixes.is_some() {
            return Err(ApiError::InvalidParameter(
                "You can specify either logStreamNames or logStreamNamePrefixes, but not both."
                    .into(),
            ));
        }
        if (req.log_stream_names.is_some() || req.log_stream_name_prefixes.is_some())
            && identifiers.len() > 1
        {
            return Err(ApiError::InvalidParameter(
                "logStreamNames and logStreamNamePrefixes can be used with one log group only."
                    .into(),
            ));
        }
        let pattern = compile_pattern(req.log_event_filter_pattern.as_deref().unwrap_or(""))?;
        let mut groups = Vec::new();
        for identifier in identifiers {
            let name = self.group_name_from_identifier(&identifier);
            self.store.group(&name)?;
            groups.push((identifier, name));
        }
        Ok(LiveTailPlan {
            groups,
            stream_names: req.log_stream_names,
            stream_prefixes: req.log_stream_name_prefixes,
            pattern_source: req.log_event_filter_pattern,
            pattern,
        })
    }

    /// The store, for live tail sessions.
    pub(crate) fn store(&self) -> Arc<dyn LogStore> {
        Arc::clone(&self.store)
    }

    /// The `/metrics` page.
    pub(crate) fn prometheus_metrics(&self) -> String {
        crate::metrics::render(self.store.as_ref(), &self.background, now_ms())
    }

    fn describe_subscription_filters(
        &self,
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
        let selected: Vec<SubscriptionFilter> = self
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
            out["nextToken"] =
                format!("s/{}", page.last().expect("a full page").filter_name).into();
        }
        Ok(out)
    }

    fn delete_subscription_filter(&self, req: DeleteSubscriptionFilterRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.required("logGroupName", &req.log_group_name);
        v.required("filterName", &req.filter_name);
        v.log_group_name("logGroupName", req.log_group_name.as_deref());
        v.filter_name("filterName", req.filter_name.as_deref());
        v.finish()?;
        let group = req.log_group_name.expect("validated");
        let name = req.filter_name.expect("validated");
        if !self.store.delete_subscription_filter(&group, &name)? {
            return Err(ApiError::ResourceNotFound(
                "The specified subscription filter does not exist.".into(),
            ));
        }
        self.background.subscriptions.stop(&group, &name);
        self.store.set_cursor(&group, &name, None)?;
        Ok(json!({}))
    }

    fn delete_resource_policy(&self, req: DeleteResourcePolicyRequest) -> ApiResult<Value> {
        let mut v = Violations::new();
        v.length(
            "expectedRevisionId",
            req.expected_revision_id.as_deref(),
            1,
            usize::MAX,
        );
        if req.resource_arn.is_none() {
            v.required("policyName", &req.policy_name);
        }
        v.finish()?;
        let name = req.policy_name.unwrap_or_default();
        let key = policy_key(req.resource_arn.as_deref(), &name);
        let Some(existing) = self.store.policies().into_iter().find(|p| p.key() == key) else {
            let what = req.resource_arn.unwrap_or(name);
            return Err(ApiError::ResourceNotFound(format!(
                "Policy with name [{what}] does not exist"
            )));
        };
        if let Some(expected) = &req.expected_revision_id {
            if &existing.revision_id != expected {
                return Err(ApiError::OperationAborted(format!(
                    "The expected revision id {expected} does not match the current revision id {}.",
                    existing.revision_id
                )));
            }
        }
        self.store.delete_policy(&key)?;
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_56_digits_and_ordered_like_events() {
        let a = event_id(
            EventKey {
                timestamp: 1_432_826_855_000,
                seq: 7,
            },
            1_432_827_365_364,
        );
        let b = event_id(
            EventKey {
                timestamp: 1_432_826_855_000,
                seq: 8,
            },
            1_432_827_365_364,
        );
        let c = event_id(
            EventKey {
                timestamp: 1_432_826_855_001,
                seq: 1,
            },
            1_432_827_365_000,
        );
        assert_eq!(a.len(), 56);
        assert!(a < b && b < c);
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let key = EventKey {
            timestamp: 5,
            seq: 9,
        };
        assert_eq!(decode_key(&encode_key("f", key), "f"), Some(key));
        assert_eq!(decode_key(&encode_key("f", key), "b"), None);
        assert_eq!(decode_key("f/x/y", "f"), None);
        assert!(pred(key) < key && key < succ(key));
        assert!(
            pred(EventKey {
                timestamp: 5,
                seq: 0
            }) < EventKey {
                timestamp: 5,
                seq: 0
            }
        );
    }
}
