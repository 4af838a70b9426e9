//! The fields Logs Insights finds in an event by itself (`shared/specs/logs-insights.md`
//! §7): a VPC flow record in the default format gets its fourteen fields by the names
//! AWS gives them (`srcAddr`, `startTime`); a JSON object gets its leaves by their dot
//! paths (`a.b.0.c`; a key starting with `@` as `@@key`), at most
//! [`MAX_JSON_FIELDS`]; a Lambda `REPORT` line gets `@type`, `@requestId`,
//! `@duration` and the rest. Other text gets none: `parse` is how users name its parts.

use std::borrow::Cow;

use crate::value::Value;

/// The most fields taken from one JSON event (AWS's quota).
pub const MAX_JSON_FIELDS: usize = 200;

/// The default VPC flow-log format's fields, by the names Insights gives them.
pub const FLOW_FIELDS: [&str; 14] = [
    "version",
    "accountId",
    "interfaceId",
    "srcAddr",
    "dstAddr",
    "srcPort",
    "dstPort",
    "protocol",
    "packets",
    "bytes",
    "startTime",
    "endTime",
    "action",
    "logStatus",
];

/// A discovered field.
pub type Discovered = (Cow<'static, str>, Value);

/// The fields discovered in `message`.
pub fn discover(message: &str) -> Vec<Discovered> {
    let trimmed = message.trim_start();
    if trimmed.starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(trimmed) {
            let mut out = Vec::new();
            for (key, value) in &map {
                let name = if key.starts_with('@') {
                    format!("@{key}")
                } else {
                    key.clone()
                };
                flatten(&name, value, &mut out);
            }
            return out;
        }
        return Vec::new();
    }
    if let Some(fields) = flow_record(message) {
        return fields;
    }
    if message.starts_with("REPORT RequestId:") {
        return lambda_report(message);
    }
    Vec::new()
}

fn flatten(path: &str, value: &serde_json::Value, out: &mut Vec<Discovered>) {
    if out.len() >= MAX_JSON_FIELDS {
        return;
    }
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                flatten(&format!("{path}.{key}"), inner, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                flatten(&format!("{path}.{i}"), inner, out);
            }
        }
        scalar => out.push((Cow::Owned(path.to_owned()), Value::from_json(scalar))),
    }
}

/// Where each of a default-format flow record's fields is in `message` (byte ranges),
/// if it is one: fourteen tokens, a numeric version, a 12-digit account (or
/// `unknown`), an interface (or `-`).
pub fn flow_spans(message: &str) -> Option<[(u32, u32); 14]> {
    let mut spans = [(0u32, 0u32); 14];
    let mut n = 0;
    let mut start = None;
    for (i, b) in message
        .bytes()
        .enumerate()
        .chain(std::iter::once((message.len(), b' ')))
    {
        match (b == b' ', start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                if n == spans.len() {
                    return None;
                }
                spans[n] = (s as u32, i as u32);
                n += 1;
                start = None;
            }
            _ => {}
        }
    }
    if n != spans.len() {
        return None;
    }
    let token = |k: usize| &message[spans[k].0 as usize..spans[k].1 as usize];
    let numeric = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let account = token(1) == "unknown" || (token(1).len() == 12 && numeric(token(1)));
    let interface = token(2) == "-" || token(2).starts_with("eni-");
    (numeric(token(0)) && account && interface).then_some(spans)
}

fn flow_record(message: &str) -> Option<Vec<Discovered>> {
    let spans = flow_spans(message)?;
    Some(
        FLOW_FIELDS
            .iter()
            .zip(spans)
            .map(|(name, (a, b))| {
                (
                    Cow::Borrowed(*name),
                    Value::text(&message[a as usize..b as usize]),
                )
            })
            .collect(),
    )
}

/// `REPORT RequestId: ID Duration: 102.25 ms Billed Duration: 103 ms Memory Size: 128
/// MB Max Memory Used: 70 MB`.
fn lambda_report(message: &str) -> Vec<Discovered> {
    let mut out: Vec<Discovered> = vec![(Cow::Borrowed("@type"), Value::text("REPORT"))];
    let fields = [
        ("RequestId:", "@requestId"),
        ("Billed Duration:", "@billedDuration"),
        ("Init Duration:", "@initDuration"),
        ("Max Memory Used:", "@maxMemoryUsed"),
        ("Memory Size:", "@memorySize"),
        ("Duration:", "@duration"),
    ];
    for (label, name) in fields {
        let mut search = message;
        // `Duration:` is also the end of `Billed Duration:` and `Init Duration:`.
        while let Some(at) = search.find(label) {
            let before = &search[..at];
            let after = &search[at + label.len()..];
            search = after;
            if label == "Duration:" && (before.ends_with("Billed ") || before.ends_with("Init ")) {
                continue;
            }
            if let Some(value) = after.split_whitespace().next() {
                let value = match name {
                    // AWS keeps memory in bytes (its own queries divide by 1000 twice).
                    "@memorySize" | "@maxMemoryUsed" => value
                        .parse::<f64>()
                        .map(|mb| Value::Num(mb * 1_000_000.0))
                        .unwrap_or(Value::text(value)),
                    _ => Value::text(value),
                };
                out.push((Cow::Borrowed(name), value));
            }
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(message: &str) -> Vec<String> {
        discover(message)
            .into_iter()
            .map(|(n, _)| n.into_owned())
            .collect()
    }

    #[test]
    fn default_flow_records_get_awss_names_and_custom_ones_none() {
        let fields =
            discover("2 123456789012 eni-0a1 10.0.1.15 10.0.2.20 49152 443 6 10 5000 1714557600 1714557660 ACCEPT OK");
        assert_eq!(
            fields[3],
            (Cow::Borrowed("srcAddr"), Value::text("10.0.1.15"))
        );
        assert_eq!(fields.len(), 14);
        assert!(names("5 123456789012 vpc-1 eni-0a1 10.0.1.15").is_empty());
    }

    #[test]
    fn json_leaves_are_named_by_their_paths() {
        assert_eq!(
            names(r#"{"a": {"b": [1, {"c": 2}]}, "@x": 3}"#),
            ["a.b.0", "a.b.1.c", "@@x"]
        );
    }

    #[test]
    fn lambda_reports_keep_each_duration_apart() {
        let fields = discover("REPORT RequestId: abc Duration: 102.25 ms Billed Duration: 103 ms Memory Size: 128 MB Max Memory Used: 70 MB");
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("@duration"), Some(Value::text("102.25")));
        assert_eq!(get("@billedDuration"), Some(Value::text("103")));
        assert_eq!(get("@memorySize"), Some(Value::Num(128_000_000.0)));
    }
}
