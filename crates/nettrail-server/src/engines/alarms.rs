//! Alarms on the metrics that metric filters publish, evaluated as CloudWatch
//! evaluates metric alarms, with notifications on every state change.
//!
//! Every `alarm_evaluation_interval_secs` each alarm of the configuration looks at its
//! last `evaluation_periods` complete periods: a period's datapoint is the alarm's
//! statistic over the minutes in it ([`datapoints`]); a period
//! without datapoint counts as `treat_missing_data` says. `datapoints_to_alarm`
//! breaching datapoints put the alarm in ALARM, fewer in OK; no datapoint at all means
//! INSUFFICIENT_DATA (`missing`), no change (`ignore`), ALARM (`breaching`) or OK
//! (`notBreaching`). A change of state is kept in `alarms.state.json` in the data
//! directory (so a restart neither forgets an ALARM nor notifies it again) and sent to
//! the topics of the new state's actions: a mail as CloudWatch's reads, the JSON
//! document CloudWatch publishes to SNS for webhooks, a short text for Slack.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nettrail_store::{LogStore, MetricId, Millis};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::common::now_ms;
use crate::config::{AlarmSettings, ServerConfig};
use crate::engines::http_sender::HttpSender;
use crate::engines::metric_filters::{datapoints, statistic, STATISTICS};
use crate::engines::notify::{self, Notification};

/// The state of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AlarmState {
    /// Fewer breaching datapoints than `datapoints_to_alarm`.
    #[serde(rename = "OK")]
    Ok,
    /// Enough breaching datapoints.
    #[serde(rename = "ALARM")]
    Alarm,
    /// No datapoint to judge by (also the state of a new alarm).
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// Where an alarm stands, as `DescribeAlarms` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlarmStatus {
    pub(crate) state: AlarmState,
    pub(crate) reason: String,
    /// The datapoints of the evaluation that set the state, oldest first.
    #[serde(default)]
    pub(crate) datapoints: Vec<(Millis, Option<f64>)>,
    pub(crate) updated: Millis,
}

const COMPARISONS: [&str; 4] = [
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
];
const MISSING_DATA: [&str; 4] = ["missing", "ignore", "breaching", "notBreaching"];

/// Checks every alarm of the configuration; the error names the alarm and the option.
pub(crate) fn validate(config: &ServerConfig) -> Result<(), String> {
    for (name, alarm) in &config.alarms {
        let fail = |what: String| Err(format!("alarms.{name}: {what}"));
        if !STATISTICS.contains(&alarm.statistic.as_str()) {
            return fail(format!(
                "statistic {:?} is not one of {}",
                alarm.statistic,
                STATISTICS.join(", ")
            ));
        }
        if !COMPARISONS.contains(&alarm.comparison_operator.as_str()) {
            return fail(format!(
                "comparison_operator {:?} is not one of {}",
                alarm.comparison_operator,
                COMPARISONS.join(", ")
            ));
        }
        if !MISSING_DATA.contains(&alarm.treat_missing_data.as_str()) {
            return fail(format!(
                "treat_missing_data {:?} is not one of {}",
                alarm.treat_missing_data,
                MISSING_DATA.join(", ")
            ));
        }
        if alarm.period == 0 || alarm.period % 60 != 0 {
            return fail(format!(
                "period {} is not a multiple of 60 seconds (metric filter metrics have one-minute resolution)",
                alarm.period
            ));
        }
        if alarm.evaluation_periods == 0 {
            return fail("evaluation_periods must be at least 1".into());
        }
        let window_days = alarm.period * u64::from(alarm.evaluation_periods) / 86_400;
        if window_days >= u64::from(config.metrics.retention_days) {
            return fail(format!(
                "period × evaluation_periods spans {window_days} days, beyond the {} days metrics are kept",
                config.metrics.retention_days
            ));
        }
        if let Some(m) = alarm.datapoints_to_alarm {
            if m == 0 || m > alarm.evaluation_periods {
                return fail(format!(
                    "datapoints_to_alarm {m} must be between 1 and evaluation_periods ({})",
                    alarm.evaluation_periods
                ));
            }
        }
        if !alarm.threshold.is_finite() {
            return fail("threshold must be a finite number".into());
        }
        for action in alarm
            .alarm_actions
            .iter()
            .chain(&alarm.ok_actions)
            .chain(&alarm.insufficient_data_actions)
        {
            let topic = topic_of_action(action);
            if !config.topics.contains_key(topic) {
                return fail(format!(
                    "action {action:?} names topic {topic:?}, which is not configured ([topics.{topic}])"
                ));
            }
        }
    }
    Ok(())
}

/// The topic an action names: `NAME`, `topic:NAME` or `arn:aws:sns:REGION:ACCOUNT:NAME`.
fn topic_of_action(action: &str) -> &str {
    if let Some(name) = action.strip_prefix("topic:") {
        return name;
    }
    if action.starts_with("arn:aws:sns:") {
        return action.rsplit(':').next().unwrap_or_default();
    }
    action
}

/// Whether `value` breaches the alarm's threshold.
fn breaches(alarm: &AlarmSettings, value: f64) -> bool {
    match alarm.comparison_operator.as_str() {
        "GreaterThanThreshold" => value > alarm.threshold,
        "GreaterThanOrEqualToThreshold" => value >= alarm.threshold,
        "LessThanThreshold" => value < alarm.threshold,
        _ => value <= alarm.threshold,
    }
}

/// How the comparison reads in a reason ("greater than", …).
fn comparison_words(alarm: &AlarmSettings) -> &'static str {
    match alarm.comparison_operator.as_str() {
        "GreaterThanThreshold" => "greater than",
        "GreaterThanOrEqualToThreshold" => "greater than or equal to",
        "LessThanThreshold" => "less than",
        _ => "less than or equal to",
    }
}

/// The state the alarm's datapoints (one per period, oldest first, `None` = no datapoint)
/// call for, and why; `None` to stay as it is.
pub(crate) fn evaluate(
    alarm: &AlarmSettings,
    points: &[(Millis, Option<f64>)],
) -> Option<(AlarmState, String)> {
    let needed = alarm
        .datapoints_to_alarm
        .unwrap_or(alarm.evaluation_periods) as usize;
    let present: Vec<(Millis, f64)> = points
        .iter()
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect();
    let missing = points.len() - present.len();
    let breaching_present: Vec<&(Millis, f64)> = present
        .iter()
        .filter(|(_, v)| breaches(alarm, *v))
        .collect();
    let missing_breach = match alarm.treat_missing_data.as_str() {
        "breaching" => missing,
        _ => 0,
    };
    let shown = |list: &[(Millis, f64)]| -> String {
        list.iter()
            .map(|(t, v)| format!("{} ({})", number(*v), short_time(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if present.is_empty() {
        return match alarm.treat_missing_data.as_str() {
            "ignore" => None,
            "breaching" => Some((
                AlarmState::Alarm,
                format!(
                    "Threshold Crossed: no datapoints were received for {missing} period(s) and {missing} missing datapoint(s) were treated as [Breaching]."
                ),
            )),
            "notBreaching" => Some((
                AlarmState::Ok,
                format!(
                    "Threshold Crossed: no datapoints were received for {missing} period(s) and {missing} missing datapoint(s) were treated as [NonBreaching]."
                ),
            )),
            _ => Some((
                AlarmState::InsufficientData,
                format!(
                    "Insufficient Data: {missing} datapoint(s) were unknown."
                ),
            )),
        };
    }
    let breaching = breaching_present.len() + missing_breach;
    let words = comparison_words(alarm);
    let threshold = number(alarm.threshold);
    if breaching >= needed {
        let listed: Vec<(Millis, f64)> = breaching_present.iter().map(|p| **p).collect();
        return Some((
            AlarmState::Alarm,
            format!(
                "Threshold Crossed: {breaching} out of the last {} datapoints [{}] {} {words} the threshold ({threshold}) (minimum {needed} datapoint{} for OK -> ALARM transition).",
                points.len(),
                shown(&listed),
                if breaching == 1 { "was" } else { "were" },
                if needed == 1 { "" } else { "s" },
            ),
        ));
    }
    let calm: Vec<(Millis, f64)> = present
        .iter()
        .filter(|(_, v)| !breaches(alarm, *v))
        .copied()
        .collect();
    let listed = if calm.is_empty() { &present } else { &calm };
    Some((
        AlarmState::Ok,
        format!(
            "Threshold Crossed: {} datapoint{} [{}] {} not {words} the threshold ({threshold}).",
            listed.len(),
            if listed.len() == 1 { "" } else { "s" },
            shown(listed),
            if listed.len() == 1 { "was" } else { "were" },
        ),
    ))
}

/// A value as CloudWatch prints it in reasons (`15.0`, `0.25`).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// `23/11/26 14:31:00`, the datapoint time format of CloudWatch's reasons.
fn short_time(ms: Millis) -> String {
    let t = nettrail_formats::time::UtcDateTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:02}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.day,
        t.month,
        t.year % 100,
        t.hour,
        t.minute,
        t.second
    )
}

/// ISO 8601 with milliseconds, as CloudWatch's StateChangeTime.
fn iso_time(ms: Millis) -> String {
    let t = nettrail_formats::time::UtcDateTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        ms.rem_euclid(1000)
    )
}

/// The series an alarm watches.
pub(crate) fn metric_of(alarm: &AlarmSettings) -> MetricId {
    MetricId {
        namespace: alarm.namespace.clone(),
        name: alarm.metric_name.clone(),
        dimensions: alarm.dimensions.clone(),
    }
}

/// The datapoints an evaluation at `now` looks at: the last `evaluation_periods`
/// complete periods, oldest first.
pub(crate) fn evaluation_window(
    store: &dyn LogStore,
    alarm: &AlarmSettings,
    now: Millis,
) -> Vec<(Millis, Option<f64>)> {
    let period = i64::try_from(alarm.period).unwrap_or(60) * 1000;
    let end = now.div_euclid(period) * period;
    let start = end - period * i64::from(alarm.evaluation_periods);
    let found: BTreeMap<Millis, f64> = datapoints(store, &metric_of(alarm), start, end, period)
        .into_iter()
        .map(|(t, stats)| (t, statistic(&stats, &alarm.statistic)))
        .collect();
    (0..i64::from(alarm.evaluation_periods))
        .map(|i| {
            let t = start + i * period;
            (t, found.get(&t).copied())
        })
        .collect()
}

/// The alarms of a server and their evaluation.
pub(crate) struct Alarms {
    store: Arc<dyn LogStore>,
    config: Arc<ServerConfig>,
    http: HttpSender,
    states: Mutex<BTreeMap<String, AlarmStatus>>,
    path: PathBuf,
}

impl Alarms {
    /// Loads the alarms' states and starts evaluating. Must be called from within the
    /// server's runtime.
    pub(crate) fn start(
        store: Arc<dyn LogStore>,
        config: Arc<ServerConfig>,
        http: HttpSender,
    ) -> Arc<Alarms> {
        let path = config.data_dir.join("alarms.state.json");
        let mut states: BTreeMap<String, AlarmStatus> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "alarm states unreadable; alarms start as INSUFFICIENT_DATA");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        states.retain(|name, _| config.alarms.contains_key(name));
        for name in config.alarms.keys() {
            states.entry(name.clone()).or_insert_with(|| AlarmStatus {
                state: AlarmState::InsufficientData,
                reason: "Unchecked: Initial alarm creation".into(),
                datapoints: Vec::new(),
                updated: now_ms(),
            });
        }
        let alarms = Arc::new(Alarms {
            store,
            config: Arc::clone(&config),
            http,
            states: Mutex::new(states),
            path,
        });
        if !config.alarms.is_empty() {
            let runner = Arc::clone(&alarms);
            tokio::spawn(async move { runner.evaluate_forever().await });
        }
        alarms
    }

    /// Every alarm's status, by name.
    pub(crate) fn statuses(&self) -> BTreeMap<String, AlarmStatus> {
        self.states.lock().expect("alarm states lock").clone()
    }

    async fn evaluate_forever(self: Arc<Self>) {
        let interval =
            Duration::from_secs(self.config.metrics.alarm_evaluation_interval_secs.max(1));
        loop {
            let runner = Arc::clone(&self);
            let changes = tokio::task::spawn_blocking(move || runner.evaluate_all())
                .await
                .unwrap_or_default();
            for (name, old, new) in changes {
                let runner = Arc::clone(&self);
                tokio::spawn(async move { runner.notify(&name, old, &new).await });
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Evaluates every alarm now; returns the changes of state (name, old state, new
    /// status), already recorded.
    fn evaluate_all(&self) -> Vec<(String, AlarmState, AlarmStatus)> {
        let now = now_ms();
        let mut changes = Vec::new();
        for (name, alarm) in &self.config.alarms {
            let points = evaluation_window(self.store.as_ref(), alarm, now);
            let Some((state, reason)) = evaluate(alarm, &points) else {
                continue;
            };
            let mut states = self.states.lock().expect("alarm states lock");
            let status = states.get_mut(name).expect("every alarm has a state");
            if status.state == state {
                continue;
            }
            let old = status.state;
            *status = AlarmStatus {
                state,
                reason,
                datapoints: points,
                updated: now,
            };
            tracing::info!(
                alarm = name,
                from = old.as_str(),
                to = state.as_str(),
                reason = status.reason,
                "alarm state changed"
            );
            changes.push((name.clone(), old, status.clone()));
        }
        if !changes.is_empty() {
            if let Err(e) = self.save() {
                tracing::error!(path = %self.path.display(), error = %e, "cannot save alarm states");
            }
        }
        changes
    }

    /// Writes the states (tmp file, fsync, rename).
    fn save(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.statuses()).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        std::fs::File::open(&self.config.data_dir)?.sync_all()
    }

    /// Tells the topics of the new state's actions, retrying a failing endpoint a few
    /// times.
    async fn notify(&self, name: &str, old: AlarmState, status: &AlarmStatus) {
        let Some(alarm) = self.config.alarms.get(name) else {
            return;
        };
        let actions = match status.state {
            AlarmState::Alarm => &alarm.alarm_actions,
            AlarmState::Ok => &alarm.ok_actions,
            AlarmState::InsufficientData => &alarm.insufficient_data_actions,
        };
        let (note, document) = self.render(name, alarm, old, status);
        for action in actions {
            let topic_name = topic_of_action(action);
            let Some(topic) = self.config.topics.get(topic_name) else {
                continue;
            };
            let mut backoff = Duration::from_secs(1);
            for attempt in 1..=5 {
                match notify::deliver(topic, &self.config.smtp, &note, &document, &self.http).await
                {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(alarm = name, topic = topic_name, attempt, error = %e, "alarm notification failed");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
    }

    /// The mail and the SNS-style JSON document of a state change.
    fn render(
        &self,
        name: &str,
        alarm: &AlarmSettings,
        old: AlarmState,
        status: &AlarmStatus,
    ) -> (Notification, Value) {
        let region = &self.config.region;
        let new = status.state.as_str();
        let dimensions: Vec<Value> = alarm
            .dimensions
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        let needed = alarm
            .datapoints_to_alarm
            .unwrap_or(alarm.evaluation_periods);
        let document = json!({
            "AlarmName": name,
            "AlarmDescription": alarm.alarm_description,
            "AWSAccountId": self.config.account_id,
            "AlarmConfigurationUpdatedTimestamp": iso_time(status.updated),
            "NewStateValue": new,
            "NewStateReason": status.reason,
            "StateChangeTime": iso_time(status.updated),
            "Region": region,
            "AlarmArn": format!("arn:aws:cloudwatch:{region}:{}:alarm:{name}", self.config.account_id),
            "OldStateValue": old.as_str(),
            "OKActions": alarm.ok_actions,
            "AlarmActions": alarm.alarm_actions,
            "InsufficientDataActions": alarm.insufficient_data_actions,
            "Trigger": {
                "MetricName": alarm.metric_name,
                "Namespace": alarm.namespace,
                "StatisticType": "Statistic",
                "Statistic": alarm.statistic.to_uppercase(),
                "Unit": Value::Null,
                "Dimensions": dimensions,
                "Period": alarm.period,
                "EvaluationPeriods": alarm.evaluation_periods,
                "DatapointsToAlarm": needed,
                "ComparisonOperator": alarm.comparison_operator,
                "Threshold": alarm.threshold,
                "TreatMissingData": alarm.treat_missing_data,
                "EvaluateLowSampleCountPercentile": "",
            },
        });
        let dimension_text = if alarm.dimensions.is_empty() {
            "(none)".to_owned()
        } else {
            alarm
                .dimensions
                .iter()
                .map(|(k, v)| format!("[{k} = {v}]"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let subject = format!("{new}: \"{name}\" in {region}");
        let body = format!(
            "You are receiving this message because your nettrail alarm \"{name}\" in {region} has entered the {new} state, because \"{reason}\" at \"{time}\".\n\
             \n\
             Alarm Details:\n\
             - Name:                       {name}\n\
             - Description:                {description}\n\
             - State Change:               {old} -> {new}\n\
             - Reason for State Change:    {reason}\n\
             - Timestamp:                  {time}\n\
             \n\
             Threshold:\n\
             - The alarm is in the ALARM state when the metric is {comparison} {threshold} for at least {needed} of the last {periods} period(s) of {period} seconds.\n\
             \n\
             Monitored Metric:\n\
             - MetricNamespace:            {namespace}\n\
             - MetricName:                 {metric}\n\
             - Dimensions:                 {dimension_text}\n\
             - Period:                     {period} seconds\n\
             - Statistic:                  {statistic}\n\
             - TreatMissingData:           {missing}\n",
            reason = status.reason,
            time = iso_time(status.updated),
            description = alarm.alarm_description.as_deref().unwrap_or(""),
            old = old.as_str(),
            comparison = alarm.comparison_operator,
            threshold = number(alarm.threshold),
            periods = alarm.evaluation_periods,
            period = alarm.period,
            namespace = alarm.namespace,
            metric = alarm.metric_name,
            statistic = alarm.statistic,
            missing = alarm.treat_missing_data,
        );
        (Notification { subject, body }, document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(
        comparison: &str,
        threshold: f64,
        n: u32,
        m: Option<u32>,
        missing: &str,
    ) -> AlarmSettings {
        AlarmSettings {
            namespace: "VPC".into(),
            metric_name: "RejectedFlows".into(),
            dimensions: BTreeMap::new(),
            statistic: "Sum".into(),
            period: 60,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            comparison_operator: comparison.into(),
            threshold,
            treat_missing_data: missing.into(),
            alarm_description: None,
            alarm_actions: Vec::new(),
            ok_actions: Vec::new(),
            insufficient_data_actions: Vec::new(),
        }
    }

    const T0: Millis = 1_795_098_600_000; // 2026-11-19 14:30:00 UTC

    fn points(values: &[Option<f64>]) -> Vec<(Millis, Option<f64>)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (T0 + i as i64 * 60_000, *v))
            .collect()
    }

    /// The cases of `testdata/alarm-evaluation.cases` (format described there).
    #[test]
    fn evaluation_follows_cloudwatch_rules() {
        let cases = include_str!("../../testdata/alarm-evaluation.cases");
        let mut count = 0;
        for line in cases.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (case, expected) = line.split_once("=>").expect("a case has =>");
            let fields: Vec<&str> = case.split_whitespace().collect();
            let [comparison, threshold, periods, missing, values] = fields[..] else {
                panic!("malformed case: {line}");
            };
            let (n, m) = periods.split_once('/').expect("N/M");
            let a = alarm(
                comparison,
                threshold.parse().expect("threshold"),
                n.parse().expect("N"),
                m.parse().ok(),
                missing,
            );
            let values: Vec<Option<f64>> = values.split(',').map(|v| v.parse().ok()).collect();
            let got = evaluate(&a, &points(&values)).map_or("unchanged", |(s, _)| s.as_str());
            assert_eq!(got, expected.trim(), "{line}");
            count += 1;
        }
        assert!(count >= 18, "every case ran");
    }

    #[test]
    fn reasons_read_like_cloudwatch() {
        let a = alarm("GreaterThanThreshold", 10.0, 1, None, "notBreaching");
        let (_, reason) = evaluate(&a, &points(&[Some(15.0)])).unwrap();
        assert_eq!(
            reason,
            "Threshold Crossed: 1 out of the last 1 datapoints [15.0 (19/11/26 14:30:00)] was greater than the threshold (10.0) (minimum 1 datapoint for OK -> ALARM transition)."
        );
        let (_, reason) = evaluate(&a, &points(&[Some(0.0)])).unwrap();
        assert_eq!(
            reason,
            "Threshold Crossed: 1 datapoint [0.0 (19/11/26 14:30:00)] was not greater than the threshold (10.0)."
        );
    }

    #[test]
    fn configuration_mistakes_are_named() {
        let mut config = ServerConfig::default();
        config.alarms.insert(
            "a".into(),
            alarm("GreaterThanThreshold", 1.0, 1, None, "missing"),
        );
        assert!(validate(&config).is_ok());
        type Spoil = fn(&mut AlarmSettings);
        let bad: Vec<(Spoil, &str)> = vec![
            (|a| a.statistic = "p99".into(), "statistic"),
            (
                |a| a.comparison_operator = "Above".into(),
                "comparison_operator",
            ),
            (
                |a| a.treat_missing_data = "zero".into(),
                "treat_missing_data",
            ),
            (|a| a.period = 90, "period"),
            (|a| a.evaluation_periods = 0, "evaluation_periods"),
            (|a| a.datapoints_to_alarm = Some(2), "datapoints_to_alarm"),
            (
                |a| a.alarm_actions = vec!["arn:aws:sns:us-east-1:1:nowhere".into()],
                "nowhere",
            ),
        ];
        for (spoil, word) in bad {
            let mut config = config.clone();
            spoil(config.alarms.get_mut("a").unwrap());
            let error = validate(&config).unwrap_err();
            assert!(
                error.starts_with("alarms.a: ") && error.contains(word),
                "{error}"
            );
        }
    }
}
