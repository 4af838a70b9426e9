//! nettrail's GetSubscriptionStatus: every subscription's deliveries, errors and lag,
//! the same figures `/metrics` exposes.

use nettrail_store::LogStore;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::now_ms;
use crate::engines::subscriptions::DeliveryStatus;
use crate::error::ApiResult;
use crate::validate::Violations;

use crate::api::context::ApiContext;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionStatusRequest {
    log_group_name: Option<String>,
}

/// nettrail's GetSubscriptionStatus: every subscription's deliveries, errors and lag.
pub(crate) fn get_subscription_status(
    api: &ApiContext,
    req: SubscriptionStatusRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.finish()?;
    if let Some(group) = &req.log_group_name {
        api.store.group(group)?;
    }
    let now = now_ms();
    let subscriptions: Vec<Value> = api
        .engines
        .subscriptions
        .statuses(req.log_group_name.as_deref())
        .iter()
        .map(|((group, name), status)| {
            subscription_status_json(api.store.as_ref(), group, name, status, now)
        })
        .collect();
    Ok(json!({ "subscriptions": subscriptions }))
}

/// A subscription's status with its lag, as GetSubscriptionStatus answers it.
pub(crate) fn subscription_status_json(
    store: &dyn LogStore,
    group: &str,
    name: &str,
    status: &DeliveryStatus,
    now: i64,
) -> Value {
    let (lag_events, lag_seconds) = lag(store, group, status, now);
    json!({
        "logGroupName": group,
        "filterName": name,
        "destination": status.destination,
        "deliveredEvents": status.delivered_events,
        "deliveredBatches": status.delivered_batches,
        "failedAttempts": status.failed_attempts,
        "lastError": status.last_error,
        "lastErrorTime": status.last_error_time,
        "lastDeliveryTime": status.last_delivery_time,
        "lagEvents": lag_events,
        "lagSeconds": lag_seconds,
    })
}

/// Events not yet delivered, and how long the oldest of them has waited (seconds).
pub(crate) fn lag(
    store: &dyn LogStore,
    group: &str,
    status: &DeliveryStatus,
    now: i64,
) -> (u64, f64) {
    let backlog = store.backlog(group, status.cursor).unwrap_or_default();
    let seconds = backlog
        .oldest_ingestion_time
        .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    (backlog.events, seconds)
}
