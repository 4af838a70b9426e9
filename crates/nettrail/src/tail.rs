//! `nettrail logs tail`: a log group's events, and with `--follow` the events that
//! arrive after, printed in the formats of `aws logs tail`.
//!
//! Like the AWS CLI it reads with FilterLogEvents (interleaved, from `--since`), and when
//! following it polls again from the newest timestamp seen, skipping the events it has
//! printed by `eventId`. It polls every second rather than every five, and re-reads a
//! few seconds before the newest timestamp, so an event that arrives slightly out of
//! order is still shown.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nettrail_client::Client;
use nettrail_formats::time::UtcDateTime;
use serde_json::{json, Value};

/// How long a follow waits between polls once it has read everything.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A follow re-reads from this long before the newest timestamp it has seen.
const LATE_EVENT_SLACK_MS: i64 = 5_000;

/// How events are printed, as `aws logs tail --format` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TailFormat {
    /// Timestamp with microseconds and time zone, stream name, message.
    Detailed,
    /// Timestamp to the second, message.
    Short,
    /// As detailed, with messages that are entirely JSON pretty-printed.
    Json,
    /// Each event as one line of JSON, as FilterLogEvents returns it.
    None,
}

/// What to tail.
pub struct TailOptions {
    pub group: String,
    /// Unix ms of the first event to show.
    pub since_ms: i64,
    pub follow: bool,
    pub filter_pattern: Option<String>,
    pub log_stream_names: Option<Vec<String>>,
    pub log_stream_name_prefix: Option<String>,
    pub format: TailFormat,
}

/// Prints the group's events to `out` until they are all read (or, with `follow`,
/// until Ctrl-C).
pub async fn run(client: &Client, options: &TailOptions, out: &mut impl Write) -> Result<()> {
    if options.log_stream_names.is_some() && options.log_stream_name_prefix.is_some() {
        bail!("--log-stream-names and --log-stream-name-prefix cannot be used together");
    }
    let mut request = json!({
        "logGroupName": options.group,
        "interleaved": true,
        "startTime": options.since_ms,
    });
    if let Some(pattern) = &options.filter_pattern {
        request["filterPattern"] = json!(pattern);
    }
    if let Some(names) = &options.log_stream_names {
        request["logStreamNames"] = json!(names);
    }
    if let Some(prefix) = &options.log_stream_name_prefix {
        request["logStreamNamePrefix"] = json!(prefix);
    }
    // Event ids already printed, by timestamp; only the recent ones are kept.
    let mut seen: BTreeMap<i64, HashSet<String>> = BTreeMap::new();
    loop {
        let page = tokio::select! {
            page = client.logs("FilterLogEvents", &request) => page?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        for event in page["events"].as_array().into_iter().flatten() {
            let timestamp = event["timestamp"].as_i64().unwrap_or(0);
            let id = event["eventId"].as_str().unwrap_or_default();
            if seen.entry(timestamp).or_default().insert(id.to_owned()) {
                print_event(out, event, options.format)?;
            }
        }
        out.flush().context("writing events")?;
        if let Some(newest) = seen.keys().next_back().copied() {
            seen = seen.split_off(&(newest - LATE_EVENT_SLACK_MS));
        }
        if let Some(token) = page["nextToken"].as_str() {
            request["nextToken"] = json!(token);
            continue;
        }
        if !options.follow {
            return Ok(());
        }
        if let Some(obj) = request.as_object_mut() {
            obj.remove("nextToken");
        }
        if let Some(newest) = seen.keys().next_back() {
            request["startTime"] = json!((newest - LATE_EVENT_SLACK_MS).max(options.since_ms));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Writes one event as `aws logs tail` does: the formatted line with trailing
/// whitespace trimmed, and one newline.
fn print_event(out: &mut impl Write, event: &Value, format: TailFormat) -> Result<()> {
    let line = format_event(event, format);
    writeln!(out, "{}", line.trim_end()).context("writing events")
}

/// One event as a line of `aws logs tail --format FORMAT`.
pub fn format_event(event: &Value, format: TailFormat) -> String {
    let timestamp = event["timestamp"].as_i64().unwrap_or(0);
    let stream = event["logStreamName"].as_str().unwrap_or_default();
    let message = event["message"].as_str().unwrap_or_default();
    match format {
        TailFormat::Detailed => format!("{} {stream} {message}", iso_micros(timestamp)),
        TailFormat::Short => format!("{} {message}", seconds(timestamp)),
        TailFormat::Json => {
            // Python's isoformat(): microseconds only when there are any.
            let time = if timestamp.rem_euclid(1000) == 0 {
                format!("{}+00:00", seconds(timestamp))
            } else {
                iso_micros(timestamp)
            };
            format!("{time} {stream} {}", pretty_json(message))
        }
        TailFormat::None => event.to_string(),
    }
}

/// `2023-11-14T22:10:00`.
fn seconds(ms: i64) -> String {
    let t = UtcDateTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `2023-11-14T22:10:00.123000+00:00`.
fn iso_micros(ms: i64) -> String {
    format!("{}.{:06}+00:00", seconds(ms), ms.rem_euclid(1000) * 1000)
}

/// A message that is entirely JSON, on the lines after the header and indented by four
/// spaces; any other message as it is.
fn pretty_json(message: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(message) else {
        return message.to_owned();
    };
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buf, formatter);
    if serde::Serialize::serialize(&value, &mut serializer).is_err() {
        return message.to_owned();
    }
    format!("\n{}", String::from_utf8_lossy(&buf))
}

/// `--since`: a relative time (`30s`, `10m`, `2h`, `1d`, `1w`) before `now_ms`, or an
/// ISO 8601 date or time (`2023-11-14`, `2023-11-14T22:10:00Z`, with an optional
/// fraction and `+HH:MM` offset; UTC when no zone is given).
pub fn parse_since(value: &str, now_ms: i64) -> Result<i64, String> {
    let value = value.trim();
    if let Some(unit) = value.chars().last().filter(|c| "smhdw".contains(*c)) {
        if let Ok(amount) = value[..value.len() - 1].parse::<i64>() {
            let unit_ms = match unit {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => 7 * 86_400_000,
            };
            return amount
                .checked_mul(unit_ms)
                .map(|back| now_ms - back)
                .ok_or_else(|| format!("{value:?} is too far back"));
        }
    }
    parse_iso8601(value).ok_or_else(|| {
        format!("{value:?} is neither a relative time (10m, 2h, 1d…) nor an ISO 8601 time")
    })
}

fn parse_iso8601(value: &str) -> Option<i64> {
    let (date, time) = match value.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (value, None),
    };
    let mut date_parts = date.splitn(3, '-');
    let year: i32 = date_parts.next()?.parse().ok()?;
    let month: u8 = date_parts.next()?.parse().ok()?;
    let day: u8 = date_parts.next()?.parse().ok()?;
    let (mut hour, mut minute, mut second, mut millis, mut offset_s) = (0u8, 0u8, 0u8, 0i64, 0i64);
    if let Some(time) = time {
        let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
            Some(i) => time.split_at(i),
            None => (time, ""),
        };
        let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
        let mut clock_parts = clock.split(':');
        hour = clock_parts.next()?.parse().ok()?;
        minute = clock_parts.next().map_or(Some(0), |m| m.parse().ok())?;
        second = clock_parts.next().map_or(Some(0), |s| s.parse().ok())?;
        if clock_parts.next().is_some() {
            return None;
        }
        if !fraction.is_empty() {
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
            millis = digits.parse().ok()?;
        }
        offset_s = match zone {
            "" | "Z" | "z" => 0,
            _ => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
                let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
                sign * (h * 3600 + m * 60)
            }
        };
    }
    let unix = UtcDateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    }
    .to_unix()?;
    Some((unix - offset_s) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn since_takes_relative_and_absolute_times() {
        assert_eq!(parse_since("10m", NOW), Ok(NOW - 600_000));
        assert_eq!(parse_since("2w", NOW), Ok(NOW - 14 * 86_400_000));
        assert_eq!(parse_since("0s", NOW), Ok(NOW));
        assert_eq!(parse_since("2023-11-14T22:13:20Z", NOW), Ok(NOW));
        assert_eq!(parse_since("2023-11-14T22:13:20.5", NOW), Ok(NOW + 500));
        assert_eq!(parse_since("2023-11-14T23:13:20+01:00", NOW), Ok(NOW));
        assert_eq!(parse_since("2023-11-14", NOW), Ok(1_699_920_000_000));
        for bad in [
            "",
            "10",
            "5h30m",
            "m",
            "2023-13-01",
            "2023-11-14T25:00",
            "yesterday",
        ] {
            assert!(parse_since(bad, NOW).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_print_as_the_aws_cli_prints_them() {
        let event = json!({
            "logStreamName": "eni-1-all",
            "timestamp": 1_700_000_000_123_i64,
            "message": "{\"a\":1,\"b\":[true]}",
            "ingestionTime": 1_700_000_000_200_i64,
            "eventId": "1",
        });
        assert_eq!(
            format_event(&event, TailFormat::Detailed),
            "2023-11-14T22:13:20.123000+00:00 eni-1-all {\"a\":1,\"b\":[true]}"
        );
        assert_eq!(
            format_event(&event, TailFormat::Short),
            "2023-11-14T22:13:20 {\"a\":1,\"b\":[true]}"
        );
        assert_eq!(
            format_event(&event, TailFormat::Json),
            "2023-11-14T22:13:20.123000+00:00 eni-1-all \n{\n    \"a\": 1,\n    \"b\": [\n        true\n    ]\n}"
        );
        let mut whole_second = event.clone();
        whole_second["timestamp"] = json!(1_700_000_000_000_i64);
        whole_second["message"] = json!("not json");
        assert_eq!(
            format_event(&whole_second, TailFormat::Json),
            "2023-11-14T22:13:20+00:00 eni-1-all not json"
        );
        let line: Value = serde_json::from_str(&format_event(&event, TailFormat::None)).unwrap();
        assert_eq!(line, event);
    }
}
