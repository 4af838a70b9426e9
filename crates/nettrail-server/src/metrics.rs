//! `GET /metrics`: nettrail's own counters and every subscription's delivery status in
//! the Prometheus text exposition format.

use std::fmt::Write;

use nettrail_store::LogStore;
use serde_json::{json, Value};

use crate::subscriptions::{DeliveryStatus, Hub};

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
fn lag(store: &dyn LogStore, group: &str, status: &DeliveryStatus, now: i64) -> (u64, f64) {
    let backlog = store.backlog(group, status.cursor).unwrap_or_default();
    let seconds = backlog
        .oldest_ingestion_time
        .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    (backlog.events, seconds)
}

/// One per-subscription metric family: name, type, help, and its value from a status
/// and its lag.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&DeliveryStatus, (u64, f64)) -> String,
);

/// The whole `/metrics` page.
pub(crate) fn render(store: &dyn LogStore, hub: &Hub, now: i64) -> String {
    let counters = store.counters();
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "nettrail_ingested_events_total",
        "counter",
        "Events committed to the store since the server started.",
    );
    let _ = writeln!(
        out,
        "nettrail_ingested_events_total {}",
        counters.ingested_events
    );
    family(
        &mut out,
        "nettrail_ingested_bytes_total",
        "counter",
        "Uncompressed bytes of the events committed since the server started.",
    );
    let _ = writeln!(
        out,
        "nettrail_ingested_bytes_total {}",
        counters.ingested_bytes
    );

    let statuses = hub.statuses(None);
    let rows: Vec<(String, &DeliveryStatus, (u64, f64))> = statuses
        .iter()
        .map(|((group, name), status)| {
            let labels = format!(
                "log_group=\"{}\",filter=\"{}\"",
                escape(group),
                escape(name)
            );
            (labels, status, lag(store, group, status, now))
        })
        .collect();
    let series: [Series; 5] = [
        (
            "nettrail_subscription_delivered_events_total",
            "counter",
            "Events a subscription's destination acknowledged.",
            |s, _| s.delivered_events.to_string(),
        ),
        (
            "nettrail_subscription_delivered_batches_total",
            "counter",
            "Batches a subscription's destination acknowledged.",
            |s, _| s.delivered_batches.to_string(),
        ),
        (
            "nettrail_subscription_failed_deliveries_total",
            "counter",
            "Delivery attempts that failed (each is retried).",
            |s, _| s.failed_attempts.to_string(),
        ),
        (
            "nettrail_subscription_lag_events",
            "gauge",
            "Events of the log group not yet delivered.",
            |_, l| l.0.to_string(),
        ),
        (
            "nettrail_subscription_lag_seconds",
            "gauge",
            "How long the oldest undelivered event has waited.",
            |_, l| format!("{:.3}", l.1),
        ),
    ];
    for (name, kind, help, value) in series {
        family(&mut out, name, kind, help);
        for (labels, status, lag) in &rows {
            let _ = writeln!(out, "{name}{{{labels}}} {}", value(status, *lag));
        }
    }
    out
}

/// A label value as the exposition format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
