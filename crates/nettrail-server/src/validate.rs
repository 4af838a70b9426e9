//! Request validation with the messages AWS's front end (Coral) gives, e.g.
//! `1 validation error detected: Value 'x:y' at 'logGroupName' failed to satisfy
//! constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+`.
//!
//! The constraints come from the service model (`shared/specs/cwl-ops.json`).

use std::collections::BTreeMap;

use crate::error::ApiError;

/// `[\.\-_/#A-Za-z0-9]+`
pub const LOG_GROUP_NAME_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";
/// `[^:*]*`
pub const LOG_STREAM_NAME_PATTERN: &str = "[^:*]*";
/// `[\w#+=/:,.@-]*`
pub const LOG_GROUP_IDENTIFIER_PATTERN: &str = r"[\w#+=/:,.@-]*";
/// `[\w+=/:,.@-]*`
pub const ARN_PATTERN: &str = r"[\w+=/:,.@-]*";
/// Tag key pattern.
pub const TAG_KEY_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$";
/// Tag value pattern.
pub const TAG_VALUE_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";

/// The retention values CloudWatch Logs allows, in days.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

pub fn is_log_group_name(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'))
}

pub fn is_log_stream_name(s: &str) -> bool {
    !s.contains([':', '*'])
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub fn is_log_group_identifier(s: &str) -> bool {
    s.chars().all(|c| is_word(c) || "#+=/:,.@-".contains(c))
}

pub fn is_arn(s: &str) -> bool {
    s.chars().all(|c| is_word(c) || "+=/:,.@-".contains(c))
}

fn is_tag_char(c: char) -> bool {
    // \p{L} \p{Z} \p{N}: letters, separators (spaces), numbers.
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

/// Collects constraint violations of one request.
#[derive(Default)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn new() -> Self {
        Violations::default()
    }

    fn push(&mut self, value: impl std::fmt::Display, field: &str, constraint: String) {
        self.0.push(format!(
            "Value {value} at '{field}' failed to satisfy constraint: Member must {constraint}"
        ));
    }

    /// A required member is present.
    pub fn required<T>(&mut self, field: &str, value: &Option<T>) {
        if value.is_none() {
            self.push("null", field, "not be null".into());
        }
    }

    /// A string's length (in characters) is within bounds.
    pub fn length(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) {
        let Some(value) = value else { return };
        let len = value.chars().count();
        if len < min {
            self.push(
                quote(value),
                field,
                format!("have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.push(
                quote(value),
                field,
                format!("have length less than or equal to {max}"),
            );
        }
    }

    /// A string matches a pattern (checked by `accepts`, described by `pattern`).
    pub fn pattern(
        &mut self,
        field: &str,
        value: Option<&str>,
        pattern: &str,
        accepts: fn(&str) -> bool,
    ) {
        let Some(value) = value else { return };
        if !accepts(value) {
            self.push(
                quote(value),
                field,
                format!("satisfy regular expression pattern: {pattern}"),
            );
        }
    }

    /// A number is within bounds.
    pub fn range(&mut self, field: &str, value: Option<i64>, min: i64, max: i64) {
        let Some(value) = value else { return };
        if value < min {
            self.push(
                format!("'{value}'"),
                field,
                format!("have value greater than or equal to {min}"),
            );
        } else if value > max {
            self.push(
                format!("'{value}'"),
                field,
                format!("have value less than or equal to {max}"),
            );
        }
    }

    /// A list's length is within bounds.
    pub fn list_length<T>(&mut self, field: &str, value: Option<&[T]>, min: usize, max: usize) {
        let Some(value) = value else { return };
        if value.len() < min {
            self.push(
                "'[...]'",
                field,
                format!("have length greater than or equal to {min}"),
            );
        } else if value.len() > max {
            self.push(
                "'[...]'",
                field,
                format!("have length less than or equal to {max}"),
            );
        }
    }

    /// A string is one of an enumeration.
    pub fn one_of(&mut self, field: &str, value: Option<&str>, allowed: &[&str]) {
        let Some(value) = value else { return };
        if !allowed.contains(&value) {
            self.push(
                quote(value),
                field,
                format!("satisfy enum value set: [{}]", allowed.join(", ")),
            );
        }
    }

    /// A log group name: 1..512 characters of `[\.\-_/#A-Za-z0-9]`.
    pub fn log_group_name(&mut self, field: &str, value: Option<&str>) {
        self.length(field, value, 1, 512);
        self.pattern(field, value, LOG_GROUP_NAME_PATTERN, is_log_group_name);
    }

    /// A metric or subscription filter name: 1..512 characters, no `:` or `*`.
    pub fn filter_name(&mut self, field: &str, value: Option<&str>) {
        self.length(field, value, 1, 512);
        self.pattern(field, value, "[^:*]*", |name| !name.contains([':', '*']));
    }

    /// The members every filter definition has (PutSubscriptionFilter,
    /// PutMetricFilter): the group, the filter's name and its pattern.
    pub fn filter_definition(
        &mut self,
        group: &Option<String>,
        name: &Option<String>,
        pattern: &Option<String>,
    ) {
        self.required("logGroupName", group);
        self.required("filterName", name);
        self.required("filterPattern", pattern);
        self.log_group_name("logGroupName", group.as_deref());
        self.filter_name("filterName", name.as_deref());
        self.length("filterPattern", pattern.as_deref(), 0, 1024);
    }

    /// A metric name or namespace: at most 255 characters, no `:`, `*` or `$`.
    pub fn metric_name(&mut self, field: &str, value: Option<&str>) {
        self.length(field, value, 0, 255);
        self.pattern(field, value, "[^:*$]*", |name| {
            !name.contains([':', '*', '$'])
        });
    }

    /// A log stream name: 1..512 characters, no `:` or `*`.
    pub fn log_stream_name(&mut self, field: &str, value: Option<&str>) {
        self.length(field, value, 1, 512);
        self.pattern(field, value, LOG_STREAM_NAME_PATTERN, is_log_stream_name);
    }

    /// A log group identifier: a name or an ARN, 1..2048 characters.
    pub fn log_group_identifier(&mut self, field: &str, value: Option<&str>) {
        self.length(field, value, 1, 2048);
        self.pattern(
            field,
            value,
            LOG_GROUP_IDENTIFIER_PATTERN,
            is_log_group_identifier,
        );
    }

    /// A resource ARN of the tagging APIs: 1..1011 characters.
    pub fn resource_arn(&mut self, field: &str, value: Option<&str>) {
        self.length(field, value, 1, 1011);
        self.pattern(field, value, ARN_PATTERN, is_arn);
    }

    /// A pagination token: at least one character.
    pub fn next_token(&mut self, field: &str, value: Option<&str>) {
        self.length(field, value, 1, usize::MAX);
    }

    /// A tag map: 1..50 entries (when `min_one`), keys and values by the tag patterns.
    pub fn tags(&mut self, field: &str, tags: Option<&BTreeMap<String, String>>, min_one: bool) {
        let Some(tags) = tags else { return };
        if min_one && tags.is_empty() {
            self.push(
                "'{}'",
                field,
                "have length greater than or equal to 1".into(),
            );
        }
        if tags.len() > 50 {
            self.push(
                "'{...}'",
                field,
                "have length less than or equal to 50".into(),
            );
        }
        for (key, value) in tags {
            self.tag_key(&format!("{field}.{key}.member.key"), key);
            self.length(&format!("{field}.{key}.member.value"), Some(value), 0, 256);
            self.pattern(
                &format!("{field}.{key}.member.value"),
                Some(value),
                TAG_VALUE_PATTERN,
                |v| v.chars().all(is_tag_char),
            );
        }
    }

    /// One tag key.
    pub fn tag_key(&mut self, field: &str, key: &str) {
        self.length(field, Some(key), 1, 128);
        self.pattern(field, Some(key), TAG_KEY_PATTERN, |k| {
            k.chars().all(is_tag_char)
        });
    }

    /// Ends validation: the violations as one InvalidParameterException, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::InvalidParameter(format!(
                "1 validation error detected: {}",
                self.0[0]
            ))),
            n => Err(ApiError::InvalidParameter(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

fn quote(value: &str) -> String {
    format!("'{value}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_coral_wording() {
        let mut v = Violations::new();
        v.log_group_name("logGroupName", Some("x:y"));
        assert_eq!(
            v.finish().unwrap_err().to_string(),
            r"1 validation error detected: Value 'x:y' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+"
        );
        let mut v = Violations::new();
        v.range("limit", Some(100), 1, 50);
        v.required::<String>("logStreamName", &None);
        assert_eq!(
            v.finish().unwrap_err().to_string(),
            "2 validation errors detected: Value '100' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 50; Value null at 'logStreamName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn name_patterns() {
        assert!(is_log_group_name("/aws-vpc/flow_logs.1#x"));
        assert!(!is_log_group_name("a b"));
        assert!(is_log_stream_name("eni-0a1b2c3d-all 2026/11/23 [x]"));
        assert!(!is_log_stream_name("a:b") && !is_log_stream_name("a*"));
        assert!(is_log_group_identifier(
            "arn:aws:logs:us-east-1:123456789012:log-group:/x"
        ));
        assert!(!is_log_group_identifier("arn:*"));
    }
}
