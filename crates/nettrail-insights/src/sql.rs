//! Queries that SQL answers from columns: a flow-log group's `filter … | stats … by …`
//! prefix compiled into one aggregate statement over a table with the columns of
//! Athena's `vpc_flow_logs` DDL (`srcaddr`, `dstport`, …, `timestamp` in Unix ms,
//! `message` null where a record is held only as its columns). The rest of the query
//! (`sort`, `limit`, a second `stats`, …) runs on the statement's rows as usual.
//!
//! Every translation keeps the language's semantics on typed records: a null column is
//! the record's `-` (a present text value), comparisons are numeric only when both
//! sides are numbers, and predicates never yield SQL null (`not` of a false comparison
//! is true). A query with anything else is not compiled (`Compiled::flow_sql` gives
//! `None`) and is read event by event instead.

use std::fmt::Write as _;

use crate::ast::{BinaryOp, Command, Expr, LikePattern, Period, PeriodUnit, Projection, Query};
use crate::run::StatsPlan;
use crate::value::{compare, equals, parse_number, Value};

/// The default VPC flow-log fields: Insights name, column, whether the column is an
/// integer.
const FLOW_COLUMNS: [(&str, &str, bool); 14] = [
    ("version", "version", true),
    ("accountId", "account_id", false),
    ("interfaceId", "interface_id", false),
    ("srcAddr", "srcaddr", false),
    ("dstAddr", "dstaddr", false),
    ("srcPort", "srcport", true),
    ("dstPort", "dstport", true),
    ("protocol", "protocol", true),
    ("packets", "packets", true),
    ("bytes", "bytes", true),
    ("startTime", "start", true),
    ("endTime", "end", true),
    ("action", "action", false),
    ("logStatus", "log_status", false),
];

/// A compiled prefix: its statement and how to read its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlPlan {
    /// The statement: the `by` values (text, or Unix ms for bins), then the items
    /// (numbers as doubles, `min`/`max` as text), then the group's matched events (a
    /// double), in that order (a rank may follow).
    pub sql: String,
    /// The statement's first columns: each `by` value's name and kind.
    pub keys: Vec<(String, SqlValue)>,
    /// Then each item's name and kind.
    pub items: Vec<(String, SqlValue)>,
    /// Where the matched events of all groups are, when the statement keeps only some
    /// groups (the same in every row); else each row's own count is summed.
    pub total_matched_column: Option<usize>,
}

/// How a statement's column becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlValue {
    /// Text (`VARCHAR`).
    Text,
    /// A number (`DOUBLE`).
    Number,
    /// A time, Unix ms (`BIGINT`).
    Time,
}

/// A field of a typed flow record: its column and whether it is an integer.
fn column(field: &str) -> Option<(&'static str, bool)> {
    if field == "@logStream" {
        return Some(("log_stream", false));
    }
    FLOW_COLUMNS
        .iter()
        .find(|(name, _, _)| *name == field)
        .map(|(_, column, int)| (*column, *int))
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A column as the record's text: `-` where it is null.
fn as_text(column: &str) -> String {
    format!("COALESCE(CAST(\"{column}\" AS VARCHAR), '-')")
}

/// The statement answering `query`'s `filter … | stats` prefix (`plans` its stats'
/// plans) over `table` for events in `[start_ms, end_ms]`, if it compiles.
pub(crate) fn compile(
    query: &Query,
    plans: &[StatsPlan],
    table: &str,
    start_ms: i64,
    end_ms: i64,
) -> Option<SqlPlan> {
    {
        if query.source.is_some() {
            return None;
        }
        let mut predicates = Vec::new();
        let mut stats = None;
        for command in &query.commands {
            match command {
                Command::Filter(e) => predicates.push(predicate(e)?),
                Command::Stats { .. } => {
                    stats = plans.first();
                    break;
                }
                _ => return None,
            }
        }
        let plan: &StatsPlan = stats?;
        let mut select = Vec::new();
        let mut keys = Vec::new();
        // Grouped by the columns as they are (dictionary-friendly), each column's
        // nulls then printed as the records' `-` (one to one: `-` is stored as null).
        let mut outer = Vec::new();
        for (i, by) in plan.by.iter().enumerate() {
            let (sql, kind) = key(by)?;
            select.push(sql);
            outer.push(match kind {
                SqlValue::Text => format!("COALESCE(CAST(c{i} AS VARCHAR), '-') AS c{i}"),
                _ => format!("c{i}"),
            });
            keys.push((by.name.clone(), kind));
        }
        let mut items = Vec::new();
        for item in &plan.items {
            let Expr::Aggregate(slot) = item.expr else {
                return None;
            };
            let spec = &plan.aggregates[slot];
            let (sql, kind) = aggregate(&spec.function, &spec.args)?;
            select.push(sql);
            items.push((item.name.clone(), kind));
        }
        select.push("CAST(count(*) AS DOUBLE)".to_owned());
        // Named by position: two items may compute the same thing.
        let select: Vec<String> = select
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS c{i}"))
            .collect();
        let mut sql = String::new();
        let _ = write!(
            sql,
            "SELECT {} FROM {table} WHERE \"timestamp\" >= {start_ms} AND \"timestamp\" <= {end_ms} AND message IS NULL",
            select.join(", ")
        );
        for p in predicates {
            let _ = write!(sql, " AND {p}");
        }
        if !keys.is_empty() {
            let positions: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
            let _ = write!(sql, " GROUP BY {}", positions.join(", "));
            let rest = (keys.len()..select.len()).map(|i| format!("c{i}"));
            outer.extend(rest);
            sql = format!("SELECT {} FROM ({sql})", outer.join(", "));
        }
        let mut total_matched_column = None;
        if let Some(top) = top_rows(query, &keys, &items) {
            // Only the groups a `sort` by a number then `limit N` can keep: those
            // ranked N or better by that number, ties included; the query's own sort
            // and limit then pick exactly as they would among all groups.
            let matched = keys.len() + items.len();
            sql = top.wrap(&sql, matched);
            total_matched_column = Some(matched + 2);
        }
        Some(SqlPlan {
            sql,
            keys,
            items,
            total_matched_column,
        })
    }
}

/// A cut the statement may make: keep the groups ranked `limit` or better by column
/// `column` (numbers), in `descending` order.
struct TopRows {
    column: usize,
    descending: bool,
    limit: usize,
}

impl TopRows {
    /// `sql` cut to the kept groups, with two more columns: the rank, and the sum of
    /// column `matched` over all the groups.
    fn wrap(&self, sql: &str, matched: usize) -> String {
        let order = if self.descending { "DESC" } else { "ASC" };
        format!(
            "SELECT * FROM (SELECT *, rank() OVER (ORDER BY c{} {order} NULLS LAST) AS nettrail_rank, sum(c{matched}) OVER () AS nettrail_matched FROM ({sql})) WHERE nettrail_rank <= {}",
            self.column, self.limit
        )
    }
}

/// The cut, when the first `stats` is followed by `sort` whose first key is one of its
/// number items, then `limit`.
fn top_rows(
    query: &Query,
    keys: &[(String, SqlValue)],
    items: &[(String, SqlValue)],
) -> Option<TopRows> {
    let mut after = query
        .commands
        .iter()
        .skip_while(|c| !matches!(c, Command::Stats { .. }))
        .skip(1);
    let (Some(Command::Sort(sort)), Some(Command::Limit(limit))) = (after.next(), after.next())
    else {
        return None;
    };
    let (field, descending) = sort.first()?;
    let item = items
        .iter()
        .position(|(name, kind)| name == field && *kind == SqlValue::Number)?;
    // A key of the same name would be what the sort reads.
    if keys.iter().any(|(name, _)| name == field) {
        return None;
    }
    Some(TopRows {
        column: keys.len() + item,
        descending: *descending,
        limit: *limit,
    })
}

fn key(by: &Projection) -> Option<(String, SqlValue)> {
    match &by.expr {
        Expr::Field(name) => Some((format!("\"{}\"", column(name)?.0), SqlValue::Text)),
        Expr::Call { name, args } if name == "bin" => {
            let [Expr::Period(p)] = args.as_slice() else {
                return None;
            };
            let p: Period = p.capped();
            // Weeks start on Monday and months follow the calendar: not a modulo.
            if matches!(
                p.unit,
                PeriodUnit::Week | PeriodUnit::Month | PeriodUnit::Quarter | PeriodUnit::Year
            ) {
                return None;
            }
            let ms = p.fixed_millis()?;
            Some((
                format!("\"timestamp\" - (\"timestamp\" % {ms} + {ms}) % {ms}"),
                SqlValue::Time,
            ))
        }
        _ => None,
    }
}

fn aggregate(function: &str, args: &[Expr]) -> Option<(String, SqlValue)> {
    let field = || match args.first() {
        Some(Expr::Field(name)) => column(name),
        _ => None,
    };
    let number = |sql: String| Some((format!("CAST({sql} AS DOUBLE)"), SqlValue::Number));
    match function {
        // Every field of a typed record is present (`-` at worst).
        "count" if args.is_empty() || field().is_some() => number("count(*)".to_owned()),
        "count_distinct" | "countdistinct" => {
            let (c, _) = field()?;
            number(format!("count(DISTINCT {})", as_text(c)))
        }
        "sum" | "avg" => {
            let (c, int) = field()?;
            let value = if int {
                format!("\"{c}\"")
            } else {
                format!("TRY_CAST(\"{c}\" AS DOUBLE)")
            };
            number(format!("{function}({value})"))
        }
        "min" | "max" => {
            // Numbers if any, else the text `-`; natural order of text is not SQL's.
            let (c, true) = field()? else {
                return None;
            };
            Some((
                format!(
                    "CASE WHEN count(*) = 0 THEN NULL ELSE COALESCE(CAST({function}(\"{c}\") AS VARCHAR), '-') END"
                ),
                SqlValue::Text,
            ))
        }
        _ => None,
    }
}

/// A filter as a SQL condition that is never null.
fn predicate(e: &Expr) -> Option<String> {
    match e {
        Expr::Binary(BinaryOp::And, a, b) => {
            Some(format!("({} AND {})", predicate(a)?, predicate(b)?))
        }
        Expr::Binary(BinaryOp::Or, a, b) => {
            Some(format!("({} OR {})", predicate(a)?, predicate(b)?))
        }
        Expr::Not(inner) => Some(format!("(NOT {})", predicate(inner)?)),
        Expr::Binary(op, a, b) => match (a.as_ref(), b.as_ref()) {
            (Expr::Field(f), Expr::Literal(v)) => comparison(f, *op, v),
            (Expr::Literal(v), Expr::Field(f)) => comparison(f, flip(*op)?, v),
            _ => None,
        },
        Expr::Like(inner, pattern, negated) => {
            let Expr::Field(f) = inner.as_ref() else {
                return None;
            };
            let text = as_text(column(f)?.0);
            let test = match pattern {
                LikePattern::Text(t) => format!("strpos({text}, {}) > 0", quote(t)),
                LikePattern::Regex(r) => format!("regexp_like({text}, {})", quote(r.as_str())),
            };
            Some(if *negated {
                format!("(NOT {test})")
            } else {
                format!("({test})")
            })
        }
        Expr::In(inner, list, negated) => {
            let Expr::Field(f) = inner.as_ref() else {
                return None;
            };
            let tests: Option<Vec<String>> = list
                .iter()
                .map(|item| match item {
                    Expr::Literal(v) => comparison(f, BinaryOp::Eq, v),
                    _ => None,
                })
                .collect();
            let any = format!("({})", tests?.join(" OR "));
            Some(if *negated {
                format!("(NOT {any})")
            } else {
                any
            })
        }
        _ => None,
    }
}

fn flip(op: BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        BinaryOp::Eq => BinaryOp::Eq,
        BinaryOp::Ne => BinaryOp::Ne,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        _ => return None,
    })
}

/// `field OP literal` on typed records, the language's way: a record's `-` compared
/// as the language compares it (decided here, once), other values numerically when
/// both sides are numbers, else as text.
fn comparison(field: &str, op: BinaryOp, literal: &Value) -> Option<String> {
    let (c, int) = column(field)?;
    let sql_op = match op {
        BinaryOp::Eq => "=",
        BinaryOp::Ne => "<>",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::Ge => ">=",
        _ => return None,
    };
    let holds = |a: &Value, b: &Value| -> bool {
        match op {
            BinaryOp::Eq => equals(a, b),
            BinaryOp::Ne => !equals(a, b),
            _ => compare(a, b).is_some_and(|o| match op {
                BinaryOp::Lt => o.is_lt(),
                BinaryOp::Le => o.is_le(),
                BinaryOp::Gt => o.is_gt(),
                _ => o.is_ge(),
            }),
        }
    };
    let literal_text = match literal {
        Value::Str(_) | Value::Num(_) => literal.as_text()?,
        _ => return None,
    };
    let when_dash = holds(&Value::text("-"), literal);
    let number = literal.as_number();
    let typed = match (int, number) {
        (true, Some(n)) => format!("\"{c}\" {sql_op} {}", sql_number(n)?),
        (true, None) => format!("CAST(\"{c}\" AS VARCHAR) {sql_op} {}", quote(&literal_text)),
        (false, Some(n)) => {
            // Text that spells a number compares as one; other text against a number
            // literal is false for an order and compares as text for (in)equality,
            // while a numeric string literal orders against text as text.
            let as_number = format!("TRY_CAST(\"{c}\" AS DOUBLE)");
            let otherwise = match (op, literal) {
                (BinaryOp::Eq | BinaryOp::Ne, _) | (_, Value::Str(_)) => {
                    format!("\"{c}\" {sql_op} {}", quote(&literal_text))
                }
                _ => "false".to_owned(),
            };
            format!(
                "CASE WHEN {as_number} IS NOT NULL THEN {as_number} {sql_op} {} ELSE {otherwise} END",
                sql_number(n)?
            )
        }
        (false, None) => format!("\"{c}\" {sql_op} {}", quote(&literal_text)),
    };
    // TRY_CAST accepts what the language does not call a number (`+1`, `.5`): only
    // plain decimal literals are compiled.
    if number.is_some() && parse_number(&literal_text).is_none() {
        return None;
    }
    Some(format!(
        "(CASE WHEN \"{c}\" IS NULL THEN {when_dash} ELSE COALESCE({typed}, false) END)"
    ))
}

fn sql_number(n: f64) -> Option<String> {
    n.is_finite().then(|| {
        if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", n as i64)
        } else {
            format!("{n:e}")
        }
    })
}
