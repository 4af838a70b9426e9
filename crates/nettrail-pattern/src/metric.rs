//! Metric transformations (spec §7): what a metric filter publishes for an event.

use std::collections::BTreeMap;

use crate::pattern::{Extracted, FilterPattern, PatternKind};

/// Dimensions allowed per metric transformation (M2).
pub const MAX_DIMENSIONS: usize = 3;
/// Longest `metricValue` (M1).
pub const MAX_METRIC_VALUE_CHARS: usize = 100;
/// Longest dimension key or value (M2).
pub const MAX_DIMENSION_CHARS: usize = 255;

/// The parts of a `MetricTransformation` that depend on the filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTransformation {
    /// `metricValue`: a number, or a selector (`$.path`, `$name`, `$N`).
    pub metric_value: String,
    /// `defaultValue`: published when the pattern does not match.
    pub default_value: Option<f64>,
    /// `dimensions`: name → selector.
    pub dimensions: BTreeMap<String, String>,
}

/// What one event contributes to a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// The value.
    pub value: f64,
    /// Dimension name → value, for the dimensions whose selector found a value.
    pub dimensions: BTreeMap<String, String>,
}

impl MetricTransformation {
    /// Checks the transformation against the pattern with AWS's rules; the error text
    /// is what InvalidParameterException says.
    pub fn validate(&self, pattern: &FilterPattern) -> Result<(), String> {
        let value = self.metric_value.trim();
        if value.is_empty() || value.chars().count() > MAX_METRIC_VALUE_CHARS {
            return Err(format!(
                "metricValue must be 1 to {MAX_METRIC_VALUE_CHARS} characters"
            ));
        }
        if crate::value::parse_number(value).is_none() {
            check_selector(pattern, value, "metricValue")?;
        }
        if self.dimensions.is_empty() {
            return Ok(());
        }
        if !pattern.supports_dimensions() {
            return Err("The specified filter pattern does not support dimensions".into());
        }
        if self.dimensions.len() > MAX_DIMENSIONS {
            return Err(format!(
                "A metric transformation can have at most {MAX_DIMENSIONS} dimensions"
            ));
        }
        if self.default_value.is_some() {
            return Err(
                "A metric transformation with dimensions cannot have a default value".into(),
            );
        }
        for (name, selector) in &self.dimensions {
            if name.is_empty()
                || name.chars().count() > MAX_DIMENSION_CHARS
                || selector.chars().count() > MAX_DIMENSION_CHARS
            {
                return Err(format!(
                    "Dimension names and values must be 1 to {MAX_DIMENSION_CHARS} characters"
                ));
            }
            check_selector(pattern, selector.trim(), &format!("dimension {name}"))?;
        }
        Ok(())
    }

    /// The sample an event contributes: `None` when the pattern does not match (the
    /// caller publishes `default_value` for the period instead) or when the metric value
    /// is not a number for this event.
    pub fn sample(&self, pattern: &FilterPattern, event: &str) -> Option<MetricSample> {
        let value = match pattern.metric_value(&self.metric_value, event)? {
            Extracted::Number(n) => n,
            Extracted::Text(_) => return None,
        };
        let dimensions = self
            .dimensions
            .iter()
            .filter_map(|(name, selector)| {
                let text = match pattern.metric_value(selector, event)? {
                    Extracted::Number(n) => format_number(n),
                    Extracted::Text(t) => t,
                };
                Some((name.clone(), text))
            })
            .collect();
        Some(MetricSample { value, dimensions })
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// A selector must fit the pattern: `$.path` for JSON, `$name` of a pattern field or
/// `$N` for space-delimited; term and regex patterns have no selectors.
fn check_selector(pattern: &FilterPattern, selector: &str, what: &str) -> Result<(), String> {
    let invalid = || format!("Invalid {what} '{selector}' for this filter pattern");
    match pattern.kind() {
        PatternKind::Json => {
            if !selector.starts_with("$.") && !selector.starts_with("$[") {
                return Err(invalid());
            }
            FilterPattern::parse(&format!("{{ {selector} NOT EXISTS }}"))
                .map(|_| ())
                .map_err(|_| invalid())
        }
        PatternKind::Delimited => {
            let name = selector.strip_prefix('$').ok_or_else(invalid)?;
            let positional = name.parse::<usize>().is_ok_and(|n| n > 0);
            if positional || pattern.field_names().any(|f| f == name) {
                Ok(())
            } else {
                Err(invalid())
            }
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transformation(
        value: &str,
        default: Option<f64>,
        dims: &[(&str, &str)],
    ) -> MetricTransformation {
        MetricTransformation {
            metric_value: value.into(),
            default_value: default,
            dimensions: dims
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn aws_rules_for_values_and_dimensions() {
        let json = FilterPattern::parse(r#"{ $.eventType = "*" }"#).unwrap();
        let delimited =
            FilterPattern::parse("[ip, server, user, ts, request, status, bytes > 1000]").unwrap();
        let terms = FilterPattern::parse("ERROR").unwrap();
        assert!(transformation("1", Some(0.0), &[]).validate(&terms).is_ok());
        assert!(
            transformation("$.latency", None, &[("eventType", "$.eventType")])
                .validate(&json)
                .is_ok()
        );
        assert!(transformation("$bytes", None, &[("server", "$server")])
            .validate(&delimited)
            .is_ok());
        assert!(transformation("$7", None, &[]).validate(&delimited).is_ok());
        assert!(
            transformation("$size", None, &[])
                .validate(&delimited)
                .is_err(),
            "no field named size"
        );
        assert_eq!(
            transformation("1", None, &[("a", "$.a")]).validate(&terms),
            Err("The specified filter pattern does not support dimensions".into())
        );
        assert!(transformation("1", Some(0.0), &[("a", "$.a")])
            .validate(&json)
            .is_err());
        let four = [("a", "$.a"), ("b", "$.b"), ("c", "$.c"), ("d", "$.d")];
        assert!(transformation("1", None, &four).validate(&json).is_err());
        assert!(transformation("$latency", None, &[])
            .validate(&json)
            .is_err());
    }

    #[test]
    fn samples_carry_values_and_dimensions() {
        let p =
            FilterPattern::parse("[ip, server, user, ts, request, status, bytes > 1000]").unwrap();
        let t = transformation(
            "$bytes",
            None,
            &[("server", "$server"), ("status", "$status")],
        );
        let event = r#"127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
        let sample = t.sample(&p, event).unwrap();
        assert_eq!(sample.value, 1534.0);
        assert_eq!(
            sample.dimensions.get("server").map(String::as_str),
            Some("Prod")
        );
        assert_eq!(
            sample.dimensions.get("status").map(String::as_str),
            Some("404")
        );
        assert_eq!(
            t.sample(&p, event.replace("1534", "10").as_str()),
            None,
            "no match, no sample"
        );
    }
}
