//! Flow log records: parsing a text line of a known format, and writing it back.

use super::error::FlowError;
use super::fields::{Field, FieldKind};
use super::format::LogFormat;

/// One field's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldValue {
    /// `-`: not applicable, or could not be computed.
    Missing,
    /// An integer field's value.
    Int(i64),
    /// A string field's value (never empty, never `-`, no spaces).
    Text(String),
}

impl FieldValue {
    /// The integer, if there is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            FieldValue::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The string, if there is one.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(v) => Some(v),
            _ => None,
        }
    }
}

/// A flow log record: one value per field of its format, in the format's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowRecord {
    /// The values.
    pub values: Vec<FieldValue>,
}

impl FlowRecord {
    /// The value of `field` in a record of `format`, if the format has it.
    pub fn get(&self, format: &LogFormat, field: Field) -> Option<&FieldValue> {
        format.position(field).and_then(|i| self.values.get(i))
    }

    /// An integer field's value (None when the format lacks it or it is `-`).
    pub fn int(&self, format: &LogFormat, field: Field) -> Option<i64> {
        self.get(format, field).and_then(FieldValue::as_int)
    }

    /// A string field's value (None when the format lacks it or it is `-`).
    pub fn text<'r>(&'r self, format: &LogFormat, field: Field) -> Option<&'r str> {
        self.get(format, field).and_then(FieldValue::as_text)
    }

    /// The `start` field in Unix seconds. Some flow logs carry milliseconds there
    /// (13-digit values); those are converted.
    pub fn start_seconds(&self, format: &LogFormat) -> Option<i64> {
        self.int(format, Field::START).map(seconds)
    }

    /// The `end` field in Unix seconds (milliseconds converted, as for `start`).
    pub fn end_seconds(&self, format: &LogFormat) -> Option<i64> {
        self.int(format, Field::END).map(seconds)
    }
}

/// A Unix time that is larger than any 32-bit second count is taken as milliseconds.
fn seconds(value: i64) -> i64 {
    if value > i64::from(i32::MAX) {
        value / 1000
    } else {
        value
    }
}

impl LogFormat {
    /// Parses one record line. Fields are separated by spaces; a run of spaces counts as
    /// one separator (AWS's own documentation has a line with a double space) and a
    /// trailing `\r` is ignored. Writing always uses single spaces.
    pub fn parse_record(&self, line: &str) -> Result<FlowRecord, FlowError> {
        let mut tokens = Vec::with_capacity(self.len());
        self.split_record(line, &mut tokens)?;
        let values = self
            .fields()
            .iter()
            .zip(tokens)
            .map(|(&field, token)| match token {
                "-" => FieldValue::Missing,
                _ if field.kind().is_integer() => {
                    FieldValue::Int(token.parse().expect("checked by split_record"))
                }
                _ => FieldValue::Text(token.to_owned()),
            })
            .collect();
        Ok(FlowRecord { values })
    }

    /// Checks one record line and puts its fields into `tokens` (cleared first),
    /// without allocating a record: the fast path for readers that only need a few
    /// fields. The same rules as [`LogFormat::parse_record`].
    pub fn split_record<'l>(
        &self,
        line: &'l str,
        tokens: &mut Vec<&'l str>,
    ) -> Result<(), FlowError> {
        tokens.clear();
        let line = line.strip_suffix('\r').unwrap_or(line);
        // A byte loop rather than `str::split`: this runs for every record of an import,
        // and tokens are short, so searching for the next space with memchr costs more
        // than it saves.
        let bytes = line.as_bytes();
        let mut pos = 0;
        let mut next_token = || -> Option<&'l str> {
            while pos < bytes.len() && bytes[pos] == b' ' {
                pos += 1;
            }
            if pos == bytes.len() {
                return None;
            }
            let start = pos;
            while pos < bytes.len() && bytes[pos] != b' ' {
                pos += 1;
            }
            // Cut at ASCII spaces, so always on character boundaries.
            Some(&line[start..pos])
        };
        for (column, &field) in self.fields().iter().enumerate() {
            let Some(token) = next_token() else {
                return Err(FlowError::FieldCount {
                    expected: self.len(),
                    found: column,
                });
            };
            check_value(field, token, column)?;
            tokens.push(token);
        }
        let mut extra = 0;
        while next_token().is_some() {
            extra += 1;
        }
        if extra > 0 {
            return Err(FlowError::FieldCount {
                expected: self.len(),
                found: self.len() + extra,
            });
        }
        Ok(())
    }

    /// Appends `record` as a text line (single spaces, no newline) to `out`.
    pub fn write_record(&self, record: &FlowRecord, out: &mut String) {
        debug_assert_eq!(record.values.len(), self.len());
        for (i, value) in record.values.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match value {
                FieldValue::Missing => out.push('-'),
                FieldValue::Int(v) => {
                    use std::fmt::Write;
                    let _ = write!(out, "{v}");
                }
                FieldValue::Text(v) => out.push_str(v),
            }
        }
    }

    /// `record` as a text line.
    pub fn record_line(&self, record: &FlowRecord) -> String {
        let mut out = String::with_capacity(16 * self.len());
        self.write_record(record, &mut out);
        out
    }
}

fn check_value(field: Field, token: &str, column: usize) -> Result<(), FlowError> {
    if token == "-" {
        return Ok(());
    }
    // The common case in one pass; anything else takes the slow path below, which
    // names what is wrong.
    let fast_ok = match field.kind() {
        FieldKind::String => !token.bytes().any(|b| b < 0x20 || b == 0x7f),
        FieldKind::Int32 => canonical_i64(token).is_some_and(|v| i32::try_from(v).is_ok()),
        FieldKind::Int64 => canonical_i64(token).is_some(),
    };
    if fast_ok {
        return Ok(());
    }
    let bad = |reason: &'static str| FlowError::BadValue {
        field: field.name(),
        column: column + 1,
        value: token.chars().take(64).collect(),
        reason,
    };
    let fits = match field.kind() {
        // Tabs, carriage returns and other control characters are never part of a value
        // AWS writes; accepting them would make a line read back differently.
        FieldKind::String => return Err(bad("contains a control character")),
        FieldKind::Int32 => token.parse::<i32>().is_ok(),
        FieldKind::Int64 => token.parse::<i64>().is_ok(),
    };
    if !fits {
        return Err(bad(match field.kind() {
            FieldKind::Int32 => "not a 32-bit integer",
            _ => "not a 64-bit integer",
        }));
    }
    if !canonical_integer(token) {
        return Err(bad("not written as AWS writes integers"));
    }
    Ok(())
}

/// The value of an integer written as AWS writes it (see [`canonical_integer`]), or
/// `None` for anything else, including values outside `i64`.
fn canonical_i64(token: &str) -> Option<i64> {
    let (negative, digits) = match token.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        digits => (false, digits),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulated as a negative number so that i64::MIN fits.
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// Integers as AWS writes them, so that a parsed line writes back byte for byte: no
/// `+`, no leading zeros, no `-0`.
fn canonical_integer(token: &str) -> bool {
    let digits = token.strip_prefix('-').unwrap_or(token);
    !token.starts_with('+') && (digits == "0" && token == "0" || !digits.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_integer_check_agrees_with_the_slow_one() {
        for token in [
            "0",
            "-0",
            "00",
            "7",
            "-7",
            "+7",
            "0443",
            "",
            "-",
            "1a",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "٣",
            "--1",
        ] {
            let slow = token
                .parse::<i64>()
                .ok()
                .filter(|_| canonical_integer(token));
            assert_eq!(canonical_i64(token), slow, "{token:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_integer_check_agrees_on_any_token(token in "[-+]?[0-9a ]{0,21}") {
            let slow = token.parse::<i64>().ok().filter(|_| canonical_integer(&token));
            proptest::prop_assert_eq!(canonical_i64(&token), slow);
        }
    }

    #[test]
    fn integers_must_be_canonical() {
        assert!(canonical_integer("0"));
        assert!(canonical_integer("443"));
        assert!(canonical_integer("-5"));
        assert!(!canonical_integer("0443"));
        assert!(!canonical_integer("+1"));
        assert!(!canonical_integer("-0"));
    }

    #[test]
    fn bad_records_name_the_field_and_column() {
        let format = LogFormat::default_vpc();
        let err = format
            .parse_record("2 1 eni-1 10.0.0.1 10.0.0.2 http 22 6 1 1 1 1 ACCEPT OK")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 6 (srcport) is `http`: not a 32-bit integer"
        );
        let err = format.parse_record("2 1 eni-1").unwrap_err();
        assert_eq!(err.to_string(), "the record has 3 fields, the format 14");
    }

    #[test]
    fn control_characters_are_not_values() {
        let format = LogFormat::parse("${type}").unwrap();
        // A CRLF line ending is not part of the value; other control characters refuse.
        assert_eq!(
            format.record_line(&format.parse_record("IPv4\r").unwrap()),
            "IPv4"
        );
        let err = format.parse_record("IPv4\r\r").unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 1 (type) is `IPv4\r`: contains a control character"
        );
        assert!(format.parse_record("a\tb").is_err());
    }

    #[test]
    fn millisecond_times_are_read_as_seconds() {
        let format = LogFormat::parse("${start} ${end}").unwrap();
        let record = format.parse_record("1702918083000 1702918083").unwrap();
        assert_eq!(record.start_seconds(&format), Some(1702918083));
        assert_eq!(record.end_seconds(&format), Some(1702918083));
    }
}
