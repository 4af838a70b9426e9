//! The operation table: every operation name the API answers, bound to its domain's
//! handler, in one place. CloudWatch Logs operations come as `X-Amz-Target:
//! Logs_20140328.<Operation>` (the front strips the prefix), nettrail's own as
//! `Nettrail_20261123.<Operation>`, Athena's as `AmazonAthena.<Operation>`; an operation of AWS's model that is not built here
//! yet gets its own answer, distinct from an unknown name.
//!
//! A new operation is a handler in its domain's module and a line here.

use std::sync::Arc;

use nettrail_store::LogStore;
use serde_json::Value;

use crate::common::now_ms;
use crate::config::ServerConfig;
use crate::engines::Engines;
use crate::error::{ApiError, ApiResult};

use super::athena::{self, ATHENA_TARGET_PREFIX};
use super::context::{parse, ApiContext};
use super::nettrail::{imports, lake, metrics, status};
use super::{events, groups, insights, metric_filters, policies, subscription_filters};

/// The `X-Amz-Target` prefix of nettrail's own operations.
pub const NETTRAIL_TARGET_PREFIX: &str = "Nettrail_20261123.";

/// Answers one operation: parses the JSON body into the handler's request shape and
/// returns the JSON response.
type Handler = fn(&ApiContext, &[u8]) -> ApiResult<Value>;

/// Athena's operations (by the name after `AmazonAthena.`), over the SQL engine.
const ATHENA: &[(&str, Handler)] = &[
    ("StartQueryExecution", |api, body| {
        athena::start_query_execution(api, parse(body)?)
    }),
    ("GetQueryExecution", |api, body| {
        athena::get_query_execution(api, parse(body)?)
    }),
    ("BatchGetQueryExecution", |api, body| {
        athena::batch_get_query_execution(api, parse(body)?)
    }),
    ("GetQueryResults", |api, body| {
        athena::get_query_results(api, parse(body)?)
    }),
    ("StopQueryExecution", |api, body| {
        athena::stop_query_execution(api, parse(body)?)
    }),
    ("ListQueryExecutions", |api, body| {
        athena::list_query_executions(api, parse(body)?)
    }),
];

/// The CloudWatch Logs operations this server answers.
const CLOUDWATCH: &[(&str, Handler)] = &[
    ("CreateLogGroup", |api, body| {
        groups::create_log_group(api, parse(body)?)
    }),
    ("DeleteLogGroup", |api, body| {
        groups::delete_log_group(api, parse(body)?)
    }),
    ("DescribeLogGroups", |api, body| {
        groups::describe_log_groups(api, parse(body)?)
    }),
    ("CreateLogStream", |api, body| {
        groups::create_log_stream(api, parse(body)?)
    }),
    ("DeleteLogStream", |api, body| {
        groups::delete_log_stream(api, parse(body)?)
    }),
    ("DescribeLogStreams", |api, body| {
        groups::describe_log_streams(api, parse(body)?)
    }),
    ("PutLogEvents", |api, body| {
        events::put_log_events(api, parse(body)?)
    }),
    ("GetLogEvents", |api, body| {
        events::get_log_events(api, parse(body)?)
    }),
    ("FilterLogEvents", |api, body| {
        events::filter_log_events(api, parse(body)?)
    }),
    ("PutRetentionPolicy", |api, body| {
        policies::put_retention_policy(api, parse(body)?)
    }),
    ("DeleteRetentionPolicy", |api, body| {
        policies::delete_retention_policy(api, parse(body)?)
    }),
    ("TagResource", |api, body| {
        policies::tag_resource(api, parse(body)?)
    }),
    ("UntagResource", |api, body| {
        policies::untag_resource(api, parse(body)?)
    }),
    ("ListTagsForResource", |api, body| {
        policies::list_tags_for_resource(api, parse(body)?)
    }),
    ("TagLogGroup", |api, body| {
        policies::tag_log_group(api, parse(body)?)
    }),
    ("UntagLogGroup", |api, body| {
        policies::untag_log_group(api, parse(body)?)
    }),
    ("ListTagsLogGroup", |api, body| {
        policies::list_tags_log_group(api, parse(body)?)
    }),
    ("PutResourcePolicy", |api, body| {
        policies::put_resource_policy(api, parse(body)?)
    }),
    ("DescribeResourcePolicies", |api, body| {
        policies::describe_resource_policies(api, parse(body)?)
    }),
    ("DeleteResourcePolicy", |api, body| {
        policies::delete_resource_policy(api, parse(body)?)
    }),
    ("PutSubscriptionFilter", |api, body| {
        subscription_filters::put_subscription_filter(api, parse(body)?)
    }),
    ("DescribeSubscriptionFilters", |api, body| {
        subscription_filters::describe_subscription_filters(api, parse(body)?)
    }),
    ("DeleteSubscriptionFilter", |api, body| {
        subscription_filters::delete_subscription_filter(api, parse(body)?)
    }),
    ("TestMetricFilter", |_, body| {
        metric_filters::test_metric_filter(parse(body)?)
    }),
    ("PutMetricFilter", |api, body| {
        metric_filters::put_metric_filter(
            api.store.as_ref(),
            &api.config,
            &api.engines.metric_filters,
            parse(body)?,
            now_ms(),
        )
    }),
    ("DescribeMetricFilters", |api, body| {
        metric_filters::describe_metric_filters(api.store.as_ref(), parse(body)?)
    }),
    ("DeleteMetricFilter", |api, body| {
        metric_filters::delete_metric_filter(api.store.as_ref(), parse(body)?)
    }),
    ("StartQuery", |api, body| {
        insights::start_query(api, parse(body)?)
    }),
    ("GetQueryResults", |api, body| {
        insights::get_query_results(api, parse(body)?)
    }),
    ("StopQuery", |api, body| {
        insights::stop_query(api, parse(body)?)
    }),
    ("DescribeQueries", |api, body| {
        insights::describe_queries(api, parse(body)?)
    }),
    ("GetLogRecord", |api, body| {
        insights::get_log_record(api, parse(body)?)
    }),
    ("GetLogGroupFields", |api, body| {
        insights::get_log_group_fields(api, parse(body)?)
    }),
    ("ListLogGroupsForQuery", |api, body| {
        insights::list_log_groups_for_query(api, parse(body)?)
    }),
];

/// nettrail's own operations, by the name after [`NETTRAIL_TARGET_PREFIX`].
const NETTRAIL: &[(&str, Handler)] = &[
    ("ImportLogEvents", |api, body| {
        imports::import_log_events(api.store.as_ref(), parse(body)?, now_ms())
    }),
    ("GetImportCheckpoints", |api, body| {
        imports::get_import_checkpoints(api.store.as_ref(), parse(body)?)
    }),
    ("GetSubscriptionStatus", |api, body| {
        status::get_subscription_status(api, parse(body)?)
    }),
    ("GetMetricStatistics", |api, body| {
        metrics::get_metric_statistics(api.store.as_ref(), parse(body)?)
    }),
    ("ListMetrics", |api, body| {
        metrics::list_metrics(api.store.as_ref(), parse(body)?)
    }),
    ("GetLakeTable", |api, body| {
        lake::get_lake_table(api, parse(body)?)
    }),
    ("SetFlowLogFormat", |api, body| {
        lake::set_flow_log_format(api, parse(body)?)
    }),
    ("DescribeAlarms", |api, _| {
        metrics::describe_alarms(
            api.store.as_ref(),
            &api.config,
            &api.engines.alarms,
            now_ms(),
        )
    }),
];

/// The rest of the CloudWatch Logs model: operations this server does not build yet,
/// answered as such rather than as a misspelt name. (StartLiveTail is built but streams
/// its answer, so the front routes it to `live_tail.rs` before this table.)
const NOT_BUILT: &[&str] = &[
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
    "DeleteQueryDefinition",
    "DeleteScheduledQuery",
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
    "DescribeQueryDefinitions",
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
    "GetLogObject",
    "GetLookupTable",
    "GetScheduledQuery",
    "GetScheduledQueryHistory",
    "GetTransformer",
    "ListAggregateLogGroupSummaries",
    "ListAnomalies",
    "ListIntegrations",
    "ListLogAnomalyDetectors",
    "ListLogGroups",
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
    "PutQueryDefinition",
    "PutScheduledQuery",
    "PutTransformer",
    "TestTransformer",
    "UpdateAnomaly",
    "UpdateDeliveryConfiguration",
    "UpdateLogAnomalyDetector",
    "UpdateLookupTable",
    "UpdateScheduledQuery",
];

/// The operations, bound to a store, the server's configuration and its engines.
pub struct LogsApi {
    context: ApiContext,
}

impl LogsApi {
    /// Binds the operations to a store.
    pub(crate) fn new(
        store: Arc<dyn LogStore>,
        config: Arc<ServerConfig>,
        engines: Engines,
    ) -> Self {
        LogsApi {
            context: ApiContext {
                store,
                config,
                engines,
            },
        }
    }

    /// What the handlers work with (live tail and `/metrics` are served beside the
    /// table).
    pub(crate) fn context(&self) -> &ApiContext {
        &self.context
    }

    /// Runs one operation on a JSON body and returns the JSON response.
    pub fn call(&self, operation: &str, body: &[u8]) -> ApiResult<Value> {
        let (table, name) = if let Some(name) = operation.strip_prefix(NETTRAIL_TARGET_PREFIX) {
            (NETTRAIL, name)
        } else if let Some(name) = operation.strip_prefix(ATHENA_TARGET_PREFIX) {
            (ATHENA, name)
        } else {
            (CLOUDWATCH, operation)
        };
        if let Some((_, handler)) = table.iter().find(|(known, _)| *known == name) {
            return handler(&self.context, body);
        }
        if NOT_BUILT.contains(&operation) {
            return Err(ApiError::UnknownOperation(format!(
                "Operation {operation} is not implemented by this nettrail server yet."
            )));
        }
        Err(ApiError::UnknownOperation(format!(
            "Unknown operation {operation}."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_operation_is_listed_twice_or_both_built_and_not_built() {
        let mut names: Vec<&str> = CLOUDWATCH.iter().map(|(name, _)| *name).collect();
        names.extend(NOT_BUILT);
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "an operation is listed twice");
        for table in [NETTRAIL, ATHENA] {
            let mut own: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
            own.sort_unstable();
            own.dedup();
            assert_eq!(own.len(), table.len(), "an operation is listed twice");
        }
    }
}
