//! Records and the evaluation of expressions over them, with the scalar functions of
//! `shared/specs/logs-insights.md` §5. A missing field is null, and an operation on
//! null gives null, so a projection of a field an event lacks is left out of its row.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;
use std::sync::Arc;

use crate::ast::{BinaryOp, Expr, Key, LikePattern, Period, PeriodUnit};
use crate::discover::{discover, flow_spans, Discovered, FLOW_FIELDS};
use nettrail_formats::time::UtcDateTime;

use crate::value::{compare, equals, parse_number, Value};

/// An event as a query reads it.
#[derive(Debug, Clone)]
pub struct InputEvent {
    /// Event time, Unix ms.
    pub timestamp: i64,
    /// Ingestion time, Unix ms.
    pub ingestion_time: i64,
    /// Its stream.
    pub stream: Arc<str>,
    /// `account-id:log-group-name`.
    pub log: Arc<str>,
    /// Its text.
    pub message: String,
    /// Where it is, for `@ptr` (opaque to the language).
    pub ptr: String,
}

/// A record flowing through the pipeline: an event's fields, or a row made by
/// `stats`, plus what commands set on it.
#[derive(Debug, Clone)]
pub struct Record {
    pub(crate) event: Option<Arc<InputEvent>>,
    discovered: OnceCell<Fields>,
    pub(crate) set: Vec<(String, Value)>,
}

/// An event's discovered fields, found on first use.
#[derive(Debug, Clone)]
enum Fields {
    /// A default-format flow record: where each field is in the message (most
    /// queries read one or two of the fourteen).
    Flow([(u32, u32); 14]),
    /// Any other event's fields.
    Pairs(Vec<Discovered>),
}

impl Record {
    /// The record of an event.
    pub fn of_event(event: Arc<InputEvent>) -> Record {
        Record {
            event: Some(event),
            discovered: OnceCell::new(),
            set: Vec::new(),
        }
    }

    /// A record of the given fields only.
    pub(crate) fn of_fields(set: Vec<(String, Value)>) -> Record {
        Record {
            event: None,
            discovered: OnceCell::new(),
            set,
        }
    }

    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Value {
        if let Some((_, v)) = self.set.iter().rev().find(|(n, _)| n == name) {
            return v.clone();
        }
        let Some(event) = &self.event else {
            return Value::Null;
        };
        match name {
            "@timestamp" => return Value::Time(event.timestamp),
            "@ingestionTime" => return Value::Time(event.ingestion_time),
            "@message" => return Value::text(&event.message),
            "@logStream" => return Value::Str(Arc::clone(&event.stream)),
            "@log" => return Value::Str(Arc::clone(&event.log)),
            "@ptr" => return Value::text(&event.ptr),
            _ => {}
        }
        match self.fields() {
            Fields::Flow(spans) => {
                FLOW_FIELDS
                    .iter()
                    .position(|f| *f == name)
                    .map_or(Value::Null, |i| {
                        let (a, b) = spans[i];
                        Value::text(&event.message[a as usize..b as usize])
                    })
            }
            Fields::Pairs(pairs) => pairs
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Value::Null, |(_, v)| v.clone()),
        }
    }

    /// Sets field `name`.
    pub fn set(&mut self, name: &str, value: Value) {
        if let Some(slot) = self.set.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value;
        } else {
            self.set.push((name.to_owned(), value));
        }
    }

    fn fields(&self) -> &Fields {
        self.discovered.get_or_init(|| match &self.event {
            Some(e) => match flow_spans(&e.message) {
                Some(spans) => Fields::Flow(spans),
                None => Fields::Pairs(discover(&e.message)),
            },
            None => Fields::Pairs(Vec::new()),
        })
    }

    /// Every field name the record has, with the system fields: for
    /// GetLogGroupFields and GetLogRecord.
    pub fn field_names(&self) -> Vec<Cow<'static, str>> {
        let mut names: Vec<Cow<'static, str>> = Vec::new();
        if self.event.is_some() {
            for n in [
                "@timestamp",
                "@message",
                "@logStream",
                "@log",
                "@ingestionTime",
            ] {
                names.push(Cow::Borrowed(n));
            }
            match self.fields() {
                Fields::Flow(_) => names.extend(FLOW_FIELDS.iter().map(|n| Cow::Borrowed(*n))),
                Fields::Pairs(pairs) => names.extend(pairs.iter().map(|(n, _)| n.clone())),
            }
        }
        names.extend(self.set.iter().map(|(n, _)| Cow::Owned(n.clone())));
        names
    }
}

/// What an expression may read besides the record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The query's time range, Unix ms.
    pub start_ms: i64,
    /// End of the time range.
    pub end_ms: i64,
    /// The results of the enclosing `stats` item's aggregates.
    pub aggregates: &'a [Value],
}

/// The functions [`eval`] knows (lowercased), aggregates aside.
pub const SCALAR_FUNCTIONS: [&str; 58] = [
    "abs",
    "ceil",
    "floor",
    "greatest",
    "least",
    "log",
    "sqrt",
    "round",
    "tonumber",
    "todouble",
    "toint",
    "tolong",
    "ispresent",
    "coalesce",
    "if",
    "case",
    "isnumeric",
    "messagesize",
    "isempty",
    "isblank",
    "concat",
    "ltrim",
    "rtrim",
    "trim",
    "strlen",
    "toupper",
    "tolower",
    "substr",
    "replace",
    "strcontains",
    "regexreplace",
    "regex_replace",
    "startswith",
    "endswith",
    "split",
    "bin",
    "datefloor",
    "dateceil",
    "frommillis",
    "tomillis",
    "now",
    "querystarttime",
    "queryendtime",
    "querytimerange",
    "isvalidip",
    "isvalidipv4",
    "isvalidipv6",
    "isipinsubnet",
    "isipv4insubnet",
    "isipv6insubnet",
    "ipv4tonumber",
    "isprivateip",
    "ispublicip",
    "jsonparse",
    "jsonstringify",
    "jsonarraysize",
    "jsonarraycontains",
    "unmask",
];

/// Evaluates `expr` on `record`.
pub fn eval(expr: &Expr, record: &Record, cx: &Context<'_>) -> Value {
    match expr {
        Expr::Literal(v) => v.clone(),
        Expr::Period(p) => p
            .fixed_millis()
            .map_or(Value::Null, |ms| Value::Num(ms as f64)),
        Expr::Field(name) => field(record, name),
        Expr::Access(inner, key) => access(&eval(inner, record, cx), key),
        Expr::Aggregate(i) => cx.aggregates.get(*i).cloned().unwrap_or(Value::Null),
        Expr::Not(inner) => match eval(inner, record, cx) {
            Value::Null => Value::Bool(true),
            v => Value::Bool(!v.is_truthy()),
        },
        Expr::Negate(inner) => eval(inner, record, cx)
            .as_number()
            .map_or(Value::Null, |n| Value::Num(-n)),
        Expr::Binary(op, a, b) => binary(*op, a, b, record, cx),
        Expr::Like(inner, pattern, negated) => {
            let Some(text) = eval(inner, record, cx).as_text() else {
                return Value::Bool(false);
            };
            let found = match pattern {
                LikePattern::Text(t) => text.contains(t.as_str()),
                LikePattern::Regex(r) => r.is_match(&text),
            };
            Value::Bool(found != *negated)
        }
        Expr::In(inner, list, negated) => {
            let v = eval(inner, record, cx);
            if v.is_null() {
                return Value::Bool(false);
            }
            let found = list.iter().any(|item| equals(&v, &eval(item, record, cx)));
            Value::Bool(found != *negated)
        }
        Expr::List(items) => Value::Json(Arc::new(serde_json::Value::Array(
            items
                .iter()
                .map(|i| to_json(&eval(i, record, cx)))
                .collect(),
        ))),
        Expr::Call { name, args } => call(name, args, record, cx),
    }
}

/// A field, or, for `a.b` that no field is called, key `b` of a map in field `a`.
fn field(record: &Record, name: &str) -> Value {
    let value = record.get(name);
    if !value.is_null() || !name.contains('.') {
        return value;
    }
    let mut parts = name.rsplitn(2, '.');
    let (Some(key), Some(base)) = (parts.next(), parts.next()) else {
        return Value::Null;
    };
    let key = match key.parse::<usize>() {
        Ok(i) => Key::Index(i),
        Err(_) => Key::Name(key.to_owned()),
    };
    access(&field(record, base), &key)
}

fn access(value: &Value, key: &Key) -> Value {
    let Value::Json(json) = value else {
        return Value::Null;
    };
    let inner = match (json.as_ref(), key) {
        (serde_json::Value::Object(map), Key::Name(k)) => map.get(k),
        (serde_json::Value::Array(items), Key::Index(i)) => items.get(*i),
        (serde_json::Value::Array(items), Key::Name(k)) => {
            k.parse::<usize>().ok().and_then(|i| items.get(i))
        }
        _ => None,
    };
    inner.map_or(Value::Null, Value::from_json)
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Num(n) => {
            serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Json(j) => j.as_ref().clone(),
        other => serde_json::Value::String(other.render().unwrap_or_default()),
    }
}

fn binary(op: BinaryOp, a: &Expr, b: &Expr, record: &Record, cx: &Context<'_>) -> Value {
    match op {
        BinaryOp::And => {
            return Value::Bool(eval(a, record, cx).is_truthy() && eval(b, record, cx).is_truthy())
        }
        BinaryOp::Or => {
            return Value::Bool(eval(a, record, cx).is_truthy() || eval(b, record, cx).is_truthy())
        }
        _ => {}
    }
    let (x, y) = (eval(a, record, cx), eval(b, record, cx));
    use std::cmp::Ordering::*;
    let ordered = |want: &[std::cmp::Ordering]| {
        Value::Bool(compare(&x, &y).is_some_and(|o| want.contains(&o)))
    };
    match op {
        BinaryOp::Eq => Value::Bool(equals(&x, &y)),
        BinaryOp::Ne => Value::Bool(!x.is_null() && !y.is_null() && !equals(&x, &y)),
        BinaryOp::Lt => ordered(&[Less]),
        BinaryOp::Le => ordered(&[Less, Equal]),
        BinaryOp::Gt => ordered(&[Greater]),
        BinaryOp::Ge => ordered(&[Greater, Equal]),
        _ => {
            let (Some(m), Some(n)) = (x.as_number(), y.as_number()) else {
                return Value::Null;
            };
            let result = match op {
                BinaryOp::Add => m + n,
                BinaryOp::Sub => m - n,
                BinaryOp::Mul => m * n,
                BinaryOp::Div if n == 0.0 => return Value::Null,
                BinaryOp::Div => m / n,
                BinaryOp::Rem if n == 0.0 => return Value::Null,
                BinaryOp::Rem => m % n,
                BinaryOp::Pow => m.powf(n),
                _ => unreachable!("comparisons and logic are handled above"),
            };
            if result.is_finite() {
                Value::Num(result)
            } else {
                Value::Null
            }
        }
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_number()
}

fn text(v: &Value) -> Option<String> {
    v.as_text()
}

fn bool_value(b: bool) -> Value {
    Value::Bool(b)
}

fn call(name: &str, args: &[Expr], record: &Record, cx: &Context<'_>) -> Value {
    let arg = |i: usize| args.get(i).map_or(Value::Null, |a| eval(a, record, cx));
    let all = || args.iter().map(|a| eval(a, record, cx)).collect::<Vec<_>>();
    let number = |f: fn(f64) -> f64| {
        num(&arg(0))
            .map(f)
            .filter(|r| r.is_finite())
            .map_or(Value::Null, Value::Num)
    };
    let string =
        |f: &dyn Fn(&str) -> String| text(&arg(0)).map_or(Value::Null, |s| Value::text(&f(&s)));
    match name {
        "abs" => number(f64::abs),
        "ceil" => number(f64::ceil),
        "floor" => number(f64::floor),
        "log" => number(f64::ln),
        "sqrt" => number(f64::sqrt),
        "greatest" | "least" => {
            let values: Vec<f64> = all().iter().filter_map(num).collect();
            let pick = if name == "greatest" {
                f64::max
            } else {
                f64::min
            };
            values
                .into_iter()
                .reduce(pick)
                .map_or(Value::Null, Value::Num)
        }
        "round" => {
            let Some(n) = num(&arg(0)) else {
                return Value::Null;
            };
            let digits = num(&arg(1)).unwrap_or(0.0) as i32;
            let scale = 10f64.powi(digits);
            Value::Num((n * scale).round() / scale)
        }
        "tonumber" | "todouble" => number(|n| n),
        "toint" | "tolong" => number(f64::trunc),
        "ispresent" => bool_value(!arg(0).is_null()),
        "coalesce" => all()
            .into_iter()
            .find(|v| !v.is_null())
            .unwrap_or(Value::Null),
        "if" => {
            if arg(0).is_truthy() {
                arg(1)
            } else {
                arg(2)
            }
        }
        "case" => {
            let mut i = 0;
            while i + 1 < args.len() {
                if arg(i).is_truthy() {
                    return arg(i + 1);
                }
                i += 2;
            }
            if i < args.len() {
                arg(i)
            } else {
                Value::Null
            }
        }
        "isnumeric" => bool_value(text(&arg(0)).and_then(|t| parse_number(&t)).is_some()),
        "messagesize" => text(&arg(0)).map_or(Value::Null, |t| Value::Num(t.len() as f64)),
        "isempty" => bool_value(text(&arg(0)).is_none_or(|t| t.is_empty())),
        "isblank" => bool_value(text(&arg(0)).is_none_or(|t| t.trim().is_empty())),
        "concat" => Value::text(&all().iter().filter_map(text).collect::<String>()),
        "ltrim" | "rtrim" | "trim" => {
            let Some(s) = text(&arg(0)) else {
                return Value::Null;
            };
            let set: Option<Vec<char>> = text(&arg(1)).map(|c| c.chars().collect());
            let strip = |c: char| match &set {
                Some(set) => set.contains(&c),
                None => c.is_whitespace(),
            };
            let out = match name {
                "ltrim" => s.trim_start_matches(strip),
                "rtrim" => s.trim_end_matches(strip),
                _ => s.trim_matches(strip),
            };
            Value::text(out)
        }
        "strlen" => text(&arg(0)).map_or(Value::Null, |t| Value::Num(t.chars().count() as f64)),
        "toupper" => string(&|s| s.to_uppercase()),
        "tolower" => string(&|s| s.to_lowercase()),
        "substr" => {
            let Some(s) = text(&arg(0)) else {
                return Value::Null;
            };
            let chars: Vec<char> = s.chars().collect();
            let start = num(&arg(1)).unwrap_or(0.0).max(0.0) as usize;
            let len = num(&arg(2)).map_or(usize::MAX, |n| n.max(0.0) as usize);
            let start = start.min(chars.len());
            let end = start.saturating_add(len).min(chars.len());
            Value::text(&chars[start..end].iter().collect::<String>())
        }
        "replace" => match (text(&arg(0)), text(&arg(1)), text(&arg(2))) {
            (Some(s), Some(find), Some(with)) if !find.is_empty() => {
                Value::text(&s.replace(&find, &with))
            }
            (Some(s), _, _) => Value::text(&s),
            _ => Value::Null,
        },
        "strcontains" => match (text(&arg(0)), text(&arg(1))) {
            (Some(s), Some(sub)) => bool_value(s.contains(&sub)),
            _ => Value::Null,
        },
        "startswith" | "endswith" => match (text(&arg(0)), text(&arg(1))) {
            (Some(s), Some(p)) => bool_value(if name == "startswith" {
                s.starts_with(&p)
            } else {
                s.ends_with(&p)
            }),
            _ => Value::Null,
        },
        "regexreplace" | "regex_replace" => match (text(&arg(0)), text(&arg(1)), text(&arg(2))) {
            (Some(s), Some(re), Some(with)) => match crate::parse::compile_regex(&re) {
                Ok(re) => Value::text(&re.replace_all(&s, with.as_str())),
                Err(_) => Value::Null,
            },
            _ => Value::Null,
        },
        "split" => match (text(&arg(0)), text(&arg(1))) {
            (Some(s), Some(d)) if !d.is_empty() => Value::Json(Arc::new(serde_json::Value::Array(
                s.split(d.as_str())
                    .map(|p| serde_json::Value::String(p.to_owned()))
                    .collect(),
            ))),
            _ => Value::Null,
        },
        "bin" => match (record.get("@timestamp"), args.first()) {
            (Value::Time(t), Some(Expr::Period(p))) => Value::Time(floor_time(t, p.capped())),
            _ => Value::Null,
        },
        "datefloor" | "dateceil" => {
            let (Some(t), Some(Expr::Period(p))) = (num(&arg(0)), args.get(1)) else {
                return Value::Null;
            };
            let t = t as i64;
            let floor = floor_time(t, *p);
            if name == "datefloor" || floor == t {
                Value::Time(floor)
            } else {
                Value::Time(add_period(floor, *p))
            }
        }
        "frommillis" => num(&arg(0)).map_or(Value::Null, |n| Value::Time(n as i64)),
        "tomillis" => num(&arg(0)).map_or(Value::Null, |n| Value::Num(n.trunc())),
        "now" => Value::Num((cx.start_ms.max(cx.end_ms) / 1000) as f64),
        "querystarttime" => Value::Num(cx.start_ms as f64),
        "queryendtime" => Value::Num(cx.end_ms as f64),
        "querytimerange" => Value::Num((cx.end_ms - cx.start_ms) as f64),
        "isvalidip" => bool_value(ip(&arg(0)).is_some()),
        "isvalidipv4" => bool_value(matches!(ip(&arg(0)), Some(IpAddr::V4(_)))),
        "isvalidipv6" => bool_value(matches!(ip(&arg(0)), Some(IpAddr::V6(_)))),
        "isipinsubnet" | "isipv4insubnet" | "isipv6insubnet" => {
            let (Some(addr), Some(cidr)) = (ip(&arg(0)), text(&arg(1))) else {
                return bool_value(false);
            };
            let family_ok = match name {
                "isipv4insubnet" => addr.is_ipv4(),
                "isipv6insubnet" => addr.is_ipv6(),
                _ => true,
            };
            bool_value(family_ok && in_subnet(addr, &cidr))
        }
        "ipv4tonumber" => match ip(&arg(0)) {
            Some(IpAddr::V4(v4)) => Value::Num(f64::from(u32::from(v4))),
            _ => Value::Null,
        },
        "isprivateip" | "ispublicip" => match ip(&arg(0)) {
            Some(IpAddr::V4(v4)) => bool_value(v4.is_private() != (name == "ispublicip")),
            Some(IpAddr::V6(v6)) => {
                let unique_local = (v6.segments()[0] & 0xfe00) == 0xfc00;
                bool_value(unique_local != (name == "ispublicip"))
            }
            None => bool_value(false),
        },
        "jsonparse" => text(&arg(0))
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map_or(Value::Null, |j| Value::Json(Arc::new(j))),
        "jsonstringify" => match arg(0) {
            Value::Null => Value::Null,
            v => Value::text(&to_json(&v).to_string()),
        },
        "jsonarraysize" => match json_of(&arg(0)) {
            Some(serde_json::Value::Array(items)) => Value::Num(items.len() as f64),
            _ => Value::Null,
        },
        "jsonarraycontains" => match json_of(&arg(0)) {
            Some(serde_json::Value::Array(items)) => {
                let want = to_json(&arg(1));
                bool_value(items.contains(&want))
            }
            _ => bool_value(false),
        },
        "unmask" => arg(0),
        _ => Value::Null,
    }
}

fn json_of(v: &Value) -> Option<serde_json::Value> {
    match v {
        Value::Json(j) => Some(j.as_ref().clone()),
        other => serde_json::from_str(&other.as_text()?).ok(),
    }
}

fn ip(v: &Value) -> Option<IpAddr> {
    text(v)?.trim().parse().ok()
}

fn in_subnet(addr: IpAddr, cidr: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.trim().parse::<IpAddr>() else {
        return false;
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The start of the period holding `t` (UTC; weeks from Monday; months, quarters and
/// years by the calendar).
pub(crate) fn floor_time(t: i64, p: Period) -> i64 {
    if let Some(ms) = p.fixed_millis().filter(|ms| *ms > 0) {
        if p.unit == PeriodUnit::Week {
            // 1970-01-05 was a Monday.
            let monday = 4 * 86_400_000;
            return (t - monday).div_euclid(ms) * ms + monday;
        }
        return t.div_euclid(ms) * ms;
    }
    let months = match p.unit {
        PeriodUnit::Quarter => 3 * p.count.max(1),
        PeriodUnit::Year => 12 * p.count.max(1),
        _ => p.count.max(1),
    };
    first_of_month(month_index(t).div_euclid(months) * months)
}

/// Months since year 0 of the month holding `t` (Unix ms).
fn month_index(t: i64) -> i64 {
    let date = UtcDateTime::from_unix(t.div_euclid(1000));
    i64::from(date.year) * 12 + i64::from(date.month) - 1
}

/// Unix ms of the first instant of month `index` (months since year 0).
fn first_of_month(index: i64) -> i64 {
    let date = UtcDateTime {
        year: index.div_euclid(12) as i32,
        month: (index.rem_euclid(12) + 1) as u8,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    date.to_unix().unwrap_or(0) * 1000
}

fn add_period(t: i64, p: Period) -> i64 {
    if let Some(ms) = p.fixed_millis() {
        return t + ms;
    }
    let months = match p.unit {
        PeriodUnit::Quarter => 3 * p.count,
        PeriodUnit::Year => 12 * p.count,
        _ => p.count,
    };
    first_of_month(month_index(t) + months)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(year: i32, month: u8, day: u8) -> i64 {
        let date = UtcDateTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        };
        date.to_unix().unwrap() * 1000
    }

    #[test]
    fn calendar_periods_follow_the_calendar() {
        let t = day(2024, 5, 17) + 5_000;
        let month = Period {
            count: 1,
            unit: PeriodUnit::Month,
        };
        assert_eq!(floor_time(t, month), day(2024, 5, 1));
        let quarter = Period {
            count: 1,
            unit: PeriodUnit::Quarter,
        };
        assert_eq!(floor_time(t, quarter), day(2024, 4, 1));
        let week = Period {
            count: 1,
            unit: PeriodUnit::Week,
        };
        assert_eq!(floor_time(t, week), day(2024, 5, 13));
    }

    #[test]
    fn subnets_match_by_prefix_in_either_family() {
        let v4: IpAddr = "10.0.64.9".parse().unwrap();
        assert!(in_subnet(v4, "10.0.64.0/20"));
        assert!(!in_subnet(v4, "10.0.80.0/20"));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(in_subnet(v6, "2001:db8::/32"));
        assert!(!in_subnet(v6, "10.0.0.0/8"));
    }
}
