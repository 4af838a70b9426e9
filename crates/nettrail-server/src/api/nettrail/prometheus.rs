//! `GET /metrics`: nettrail's own counters, every subscription's delivery status, what
//! metric filters have published and every alarm's state, in the Prometheus text
//! exposition format.

use std::fmt::Write;

use nettrail_store::LogStore;

use crate::engines::alarms::AlarmState;
use crate::engines::subscriptions::DeliveryStatus;
use crate::engines::Engines;

use super::status::lag;

/// One per-subscription metric family: name, type, help, and its value from a status
/// and its lag.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&DeliveryStatus, (u64, f64)) -> String,
);

/// The whole `/metrics` page.
pub(crate) fn render(store: &dyn LogStore, engines: &Engines, now: i64) -> String {
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

    let statuses = engines.subscriptions.statuses(None);
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

    // Metric filter series: a summary without quantiles (count and sum of the values
    // published since the server started), so rate() works on both.
    let totals = engines.metric_filters.totals();
    family(
        &mut out,
        "nettrail_metric_filter",
        "summary",
        "Values metric filters published since the server started, per metric (count and sum).",
    );
    for (id, total) in &totals {
        let dimensions: Vec<String> = id
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let labels = format!(
            "namespace=\"{}\",metric_name=\"{}\",dimensions=\"{}\"",
            escape(&id.namespace),
            escape(&id.name),
            escape(&dimensions.join(","))
        );
        let _ = writeln!(out, "nettrail_metric_filter_sum{{{labels}}} {}", total.sum);
        let _ = writeln!(
            out,
            "nettrail_metric_filter_count{{{labels}}} {}",
            total.samples
        );
    }
    family(
        &mut out,
        "nettrail_metric_filter_lag_events",
        "gauge",
        "Events of a log group its metric filters have not counted yet.",
    );
    for (group, _) in engines.metric_filters.groups() {
        let cursor = store.metric_cursor(&group).ok().flatten().unwrap_or(0);
        let backlog = store.backlog(&group, cursor).unwrap_or_default();
        let _ = writeln!(
            out,
            "nettrail_metric_filter_lag_events{{log_group=\"{}\"}} {}",
            escape(&group),
            backlog.events
        );
    }
    family(
        &mut out,
        "nettrail_alarm_state",
        "gauge",
        "1 for the state each alarm is in, 0 for the others.",
    );
    for (name, status) in engines.alarms.statuses() {
        for state in [
            AlarmState::Ok,
            AlarmState::Alarm,
            AlarmState::InsufficientData,
        ] {
            let _ = writeln!(
                out,
                "nettrail_alarm_state{{alarm=\"{}\",state=\"{}\"}} {}",
                escape(&name),
                state.as_str(),
                u8::from(status.state == state)
            );
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
