//! `nettrail metrics get|list` and `nettrail alarms describe`: what metric filters have
//! published and where alarms stand, read from a server (nettrail's
//! GetMetricStatistics, ListMetrics and DescribeAlarms operations, whose answers have
//! CloudWatch's shapes).

use anyhow::{bail, Result};
use nettrail_formats::time::UtcDateTime;
use serde_json::{json, Value};

/// The statistics CloudWatch computes per datapoint.
pub const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// A `--dimensions` entry: `Name=N,Value=V` (the aws CLI's shorthand) or `N=V`.
pub fn parse_dimension(value: &str) -> Result<(String, String), String> {
    let mut name = None;
    let mut val = None;
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("Name", n)) => name = Some(n.to_owned()),
            Some(("Value", v)) => val = Some(v.to_owned()),
            Some((n, v)) if !value.contains(',') => {
                name = Some(n.to_owned());
                val = Some(v.to_owned());
            }
            _ => {}
        }
    }
    match (name, val) {
        (Some(n), Some(v)) if !n.is_empty() => Ok((n, v)),
        _ => Err(format!(
            "{value:?} is not a dimension: Name=NAME,Value=VALUE or NAME=VALUE"
        )),
    }
}

/// The GetMetricStatistics request of `nettrail metrics get`.
pub fn statistics_request(
    namespace: &str,
    metric_name: &str,
    dimensions: &[(String, String)],
    statistics: &[String],
    period: i64,
    start_ms: i64,
    end_ms: i64,
) -> Result<Value> {
    for s in statistics {
        if !STATISTICS.contains(&s.as_str()) {
            bail!(
                "--statistics: {s:?} is not one of {}",
                STATISTICS.join(", ")
            );
        }
    }
    Ok(json!({
        "Namespace": namespace,
        "MetricName": metric_name,
        "Dimensions": dimensions.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect::<Vec<_>>(),
        "StartTime": start_ms as f64 / 1000.0,
        "EndTime": end_ms as f64 / 1000.0,
        "Period": period,
        "Statistics": statistics,
    }))
}

/// A GetMetricStatistics answer as a table, one row per datapoint.
pub fn format_statistics(answer: &Value, statistics: &[String]) -> String {
    let points = answer["Datapoints"].as_array().cloned().unwrap_or_default();
    if points.is_empty() {
        return "no datapoints\n".into();
    }
    let mut out = format!("{:<20}", "TIMESTAMP (UTC)");
    for s in statistics {
        out.push_str(&format!(" {s:>14}"));
    }
    out.push_str("  UNIT\n");
    for point in points {
        let t = point["Timestamp"].as_i64().unwrap_or(0);
        out.push_str(&format!("{:<20}", utc(t)));
        for s in statistics {
            out.push_str(&format!(
                " {:>14}",
                number(point[s].as_f64().unwrap_or(0.0))
            ));
        }
        out.push_str(&format!("  {}\n", point["Unit"].as_str().unwrap_or("None")));
    }
    out
}

/// A ListMetrics answer, one series per line.
pub fn format_metrics(answer: &Value) -> String {
    let metrics = answer["Metrics"].as_array().cloned().unwrap_or_default();
    if metrics.is_empty() {
        return "no metrics\n".into();
    }
    let mut out = String::new();
    for m in metrics {
        let dimensions: Vec<String> = m["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                format!(
                    "{}={}",
                    d["Name"].as_str().unwrap_or_default(),
                    d["Value"].as_str().unwrap_or_default()
                )
            })
            .collect();
        out.push_str(&format!(
            "{} {}{}\n",
            m["Namespace"].as_str().unwrap_or_default(),
            m["MetricName"].as_str().unwrap_or_default(),
            if dimensions.is_empty() {
                String::new()
            } else {
                format!(" [{}]", dimensions.join(", "))
            }
        ));
    }
    out
}

/// A DescribeAlarms answer as a table.
pub fn format_alarms(answer: &Value) -> String {
    let alarms = answer["MetricAlarms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if alarms.is_empty() {
        return "no alarms configured\n".into();
    }
    let mut out = format!(
        "{:<24} {:<17} {:<20} {}\n",
        "ALARM", "STATE", "SINCE (UTC)", "REASON"
    );
    for a in alarms {
        let since = a["StateUpdatedTimestamp"]
            .as_f64()
            .map_or_else(|| "-".into(), |t| utc(t as i64));
        out.push_str(&format!(
            "{:<24} {:<17} {:<20} {}\n",
            a["AlarmName"].as_str().unwrap_or_default(),
            a["StateValue"].as_str().unwrap_or_default(),
            since,
            a["StateReason"].as_str().unwrap_or("-"),
        ));
    }
    out
}

fn utc(seconds: i64) -> String {
    let t = UtcDateTime::from_unix(seconds);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_take_the_aws_shorthand_and_a_short_form() {
        assert_eq!(
            parse_dimension("Name=action,Value=REJECT"),
            Ok(("action".into(), "REJECT".into()))
        );
        assert_eq!(
            parse_dimension("action=REJECT"),
            Ok(("action".into(), "REJECT".into()))
        );
        assert!(parse_dimension("action").is_err());
        assert!(parse_dimension("Name=a").is_err());
    }

    #[test]
    fn datapoints_print_as_a_table() {
        let answer = json!({"Label": "M", "Datapoints": [
            {"Timestamp": 1_795_098_600, "Sum": 12.0, "Average": 0.25, "Unit": "Count"}
        ]});
        assert_eq!(
            format_statistics(&answer, &["Sum".into(), "Average".into()]),
            "TIMESTAMP (UTC)                 Sum        Average  UNIT\n2026-11-19 14:30:00              12         0.2500  Count\n"
        );
    }
}
