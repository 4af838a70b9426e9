//! Values of the query language: what a field holds, how values compare, sort and
//! print.
//!
//! Text from events stays text; it acts as a number where a number is wanted if all
//! of it spells one (`filter bytes > 3000` on a flow record's `bytes`). Timestamps are
//! milliseconds since the Unix epoch and print as `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
//! Booleans print as `1` and `0`, as AWS prints them.

use std::cmp::Ordering;
use std::sync::Arc;

use nettrail_formats::time::UtcDateTime;

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent: a field an event lacks, or what an operation on absent values gives.
    Null,
    /// Text.
    Str(Arc<str>),
    /// A number.
    Num(f64),
    /// A point in time, Unix milliseconds.
    Time(i64),
    /// A truth value.
    Bool(bool),
    /// A JSON object or array (from `jsonParse`, or a discovered JSON leaf that is one).
    Json(Arc<serde_json::Value>),
}

impl Value {
    /// Text as a value.
    pub fn text(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// Whether the value is absent.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number, where it is one or spells one wholly.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Time(t) => Some(*t as f64),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Str(s) => parse_number(s),
            Value::Null | Value::Json(_) => None,
        }
    }

    /// The value as text, as it prints (absent for null, maps and lists).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Null | Value::Json(_) => None,
            other => Some(other.render().unwrap_or_default()),
        }
    }

    /// Whether a `filter` keeps a record for which its expression gives this value.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0,
            Value::Null | Value::Str(_) | Value::Time(_) | Value::Json(_) => false,
        }
    }

    /// The value as GetQueryResults prints it; `None` for null (the field is left out
    /// of the row).
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Str(s) => Some(s.to_string()),
            Value::Num(n) => Some(render_number(*n)),
            Value::Time(t) => Some(render_time(*t)),
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
            Value::Json(j) => Some(match j.as_ref() {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }

    /// The value of a JSON scalar as an event's field holds it (JSON `null` is absent).
    pub fn from_json(value: &serde_json::Value) -> Value {
        match value {
            serde_json::Value::Null => Value::Null,
            // Scalars keep their text, as written (`true`, `1.50`).
            serde_json::Value::Bool(b) => Value::text(if *b { "true" } else { "false" }),
            serde_json::Value::Number(n) => Value::text(&n.to_string()),
            serde_json::Value::String(s) => Value::text(s),
            other => Value::Json(Arc::new(other.clone())),
        }
    }
}

/// `text` as a number if all of it spells one (surrounding spaces allowed).
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let first = digits.as_bytes().first()?;
    // Rust's parser also takes `inf`, `nan`, `+1` and `.5`; the language does not.
    if !first.is_ascii_digit() || digits.ends_with('.') {
        return None;
    }
    if !digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    t.parse().ok()
}

/// A number as AWS prints it: integral values without a decimal point, others as the
/// shortest text that reads back as the same double.
pub fn render_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e18 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS.mmm`, UTC.
pub fn render_time(ms: i64) -> String {
    let t = UtcDateTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        ms.rem_euclid(1000)
    )
}

/// `=` of the language: numbers if both sides are, else text; false if either side
/// is absent.
pub fn equals(a: &Value, b: &Value) -> bool {
    if a.is_null() || b.is_null() {
        return false;
    }
    // `filter dpd_enabled = true` on JSON text `true`.
    if let (Value::Bool(x), Value::Str(s)) | (Value::Str(s), Value::Bool(x)) = (a, b) {
        if let Ok(y) = s.parse::<bool>() {
            return *x == y;
        }
    }
    if let (Some(x), Some(y)) = (a.as_number(), b.as_number()) {
        return x == y;
    }
    match (a.as_text(), b.as_text()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `<`, `>` and the like: numbers if both sides are, else text by code points; `None`
/// (the comparison is false) if either side is absent, or one side is a number and the
/// other text that is not one (`lat > 5` on `"n/a"`).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    match (a.as_number(), b.as_number()) {
        (Some(x), Some(y)) => return x.partial_cmp(&y),
        (Some(_), None) if !matches!(a, Value::Str(_)) => return None,
        (None, Some(_)) if !matches!(b, Value::Str(_)) => return None,
        _ => {}
    }
    Some(a.as_text()?.cmp(&b.as_text()?))
}

/// The order of `sort` ("updated natural sort"), ascending: values that are numbers
/// after all others, by value (ties by text); other text chunk by chunk, digit runs by
/// length then value; absent values last.
pub fn natural_order(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let number = |v: &Value| match v {
        Value::Num(n) => Some(*n),
        Value::Time(t) => Some(*t as f64),
        Value::Str(s) if is_sort_number(s) => s.parse().ok(),
        _ => None,
    };
    // Text borrowed where it is text: sorting a million groups compares a lot.
    let (ta, tb) = (sort_text(a), sort_text(b));
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x
            .partial_cmp(&y)
            .unwrap_or(Ordering::Equal)
            .then_with(|| ta.cmp(&tb)),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => natural_text_order(&ta, &tb),
    }
}

fn sort_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::Str(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.as_text().unwrap_or_default()),
    }
}

fn is_sort_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Chunks: runs of digits, runs of letters, single other characters.
fn chunks(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let kind = |c: char| {
        if c.is_ascii_digit() {
            0
        } else if c.is_alphabetic() {
            1
        } else {
            2
        }
    };
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    for (i, &(_, c)) in chars.iter().enumerate() {
        let next = chars.get(i + 1);
        let ends = match next {
            None => true,
            Some(&(_, n)) => kind(c) == 2 || kind(n) != kind(c),
        };
        if ends {
            let end = next.map_or(s.len(), |&(n, _)| n);
            out.push(&s[start..end]);
            start = end;
        }
    }
    out
}

fn natural_text_order(a: &str, b: &str) -> Ordering {
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let order = if digits(x) && digits(y) {
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    ca.len().cmp(&cb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_without_a_needless_decimal_point() {
        assert_eq!(render_number(20.0), "20");
        assert_eq!(render_number(366.666_666_666_666_7), "366.6666666666667");
        assert_eq!(render_number(-3.5), "-3.5");
    }

    #[test]
    fn times_print_in_utc_with_milliseconds() {
        assert_eq!(render_time(1_658_147_670_964), "2022-07-18 12:34:30.964");
        assert_eq!(render_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(render_time(-1), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn text_is_a_number_only_when_all_of_it_spells_one() {
        assert_eq!(parse_number(" 42 "), Some(42.0));
        assert_eq!(parse_number("-1.5e3"), Some(-1500.0));
        for t in ["", "-", "inf", "nan", "+1", ".5", "1.", "10.0.1.1", "0x10"] {
            assert_eq!(parse_number(t), None, "{t}");
        }
    }

    #[test]
    fn natural_order_puts_numbers_last_and_compares_digit_runs_by_length() {
        let mut values: Vec<Value> = ["b10", "1", "a", "b9", "01", "0", "B", "-"]
            .iter()
            .map(|s| Value::text(s))
            .collect();
        values.sort_by(natural_order);
        let got: Vec<String> = values.iter().map(|v| v.render().unwrap()).collect();
        assert_eq!(got, ["-", "B", "a", "b9", "b10", "0", "01", "1"]);
    }
}
