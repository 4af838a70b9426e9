//! Running a compiled query over events: the commands as stages a record flows
//! through, `stats` and `sort` holding records until the input ends, `limit` ending
//! the read early when nothing before it waits for the whole input.
//!
//! Events are fed newest first, which is the order AWS returns events in when a query
//! does not sort.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::ast::{Command, Expr, Projection};
use crate::eval::{eval, Context, InputEvent, Record};
use crate::value::{natural_order, Value};

/// The result of a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOutput {
    /// Rows in order: each `(field, value)` as GetQueryResults gives them, `@ptr` last
    /// for rows that are events.
    pub rows: Vec<Vec<(String, String)>>,
    /// Events read.
    pub records_scanned: u64,
    /// Events that passed the filters before the first `stats`, `sort`, `limit` or
    /// `dedup` (all filters when there is none).
    pub records_matched: u64,
    /// Bytes of the events read.
    pub bytes_scanned: u64,
}

/// One aggregate of a `stats` item.
#[derive(Debug, Clone)]
pub(crate) struct AggregateSpec {
    pub(crate) function: String,
    pub(crate) args: Vec<Expr>,
}

/// A `stats` command, with each item's aggregates pulled out into slots.
#[derive(Debug, Clone)]
pub(crate) struct StatsPlan {
    pub(crate) items: Vec<Projection>,
    pub(crate) by: Vec<Projection>,
    pub(crate) aggregates: Vec<AggregateSpec>,
}

impl StatsPlan {
    /// Pulls the aggregate calls out of `items` (numbering them in order).
    pub(crate) fn new(items: &[Projection], by: &[Projection]) -> StatsPlan {
        let mut aggregates = Vec::new();
        let items = items
            .iter()
            .map(|p| Projection {
                expr: extract(&p.expr, &mut aggregates),
                name: p.name.clone(),
            })
            .collect();
        StatsPlan {
            items,
            by: by.to_vec(),
            aggregates,
        }
    }
}

fn extract(expr: &Expr, out: &mut Vec<AggregateSpec>) -> Expr {
    match expr {
        Expr::Call { name, args } if crate::parse::AGGREGATES.contains(&name.as_str()) => {
            out.push(AggregateSpec {
                function: name.clone(),
                args: args.clone(),
            });
            Expr::Aggregate(out.len() - 1)
        }
        Expr::Call { name, args } => Expr::Call {
            name: name.clone(),
            args: args.iter().map(|a| extract(a, out)).collect(),
        },
        Expr::Binary(op, a, b) => {
            Expr::Binary(*op, Box::new(extract(a, out)), Box::new(extract(b, out)))
        }
        Expr::Negate(a) => Expr::Negate(Box::new(extract(a, out))),
        Expr::Not(a) => Expr::Not(Box::new(extract(a, out))),
        other => other.clone(),
    }
}

/// One stage of the pipeline.
enum Stage<'q> {
    Command(&'q Command),
    Stats {
        plan: &'q StatsPlan,
        groups: HashMap<Vec<Option<String>>, Group>,
    },
    Sort {
        keys: &'q [(String, bool)],
        held: Vec<Record>,
    },
    Limit {
        left: usize,
    },
    Dedup {
        fields: &'q [String],
        seen: HashSet<Vec<String>>,
    },
}

struct Group {
    by: Vec<Value>,
    states: Vec<AggregateState>,
}

/// Feeds events through a query, then gives its rows.
pub struct Run<'q> {
    /// The output columns, in order.
    columns: &'q [String],
    /// Rows at most.
    limit: usize,
    /// Whether the query aggregates (its rows carry no `@ptr`).
    aggregated: bool,
    stages: Vec<Stage<'q>>,
    /// Index of the first stage that is not a plain command (`stats`, `sort`, `limit`,
    /// `dedup`): records reaching it, or the end before it, are "matched".
    matched_at: usize,
    cx: (i64, i64),
    out: Vec<Record>,
    output: QueryOutput,
    done: bool,
    /// The first `stats`'s rows came from [`Run::push_aggregated`].
    aggregated_elsewhere: bool,
}

impl<'q> Run<'q> {
    /// A run of `commands` (with a plan per `stats`), giving rows of `columns`, at
    /// most `limit`, over the time range `[start_ms, end_ms]`.
    pub(crate) fn new(
        commands: &'q [Command],
        plans: &'q [StatsPlan],
        columns: &'q [String],
        limit: usize,
        (start_ms, end_ms): (i64, i64),
    ) -> Run<'q> {
        let aggregated = !plans.is_empty();
        let mut plans = plans.iter();
        let stages: Vec<Stage<'q>> = commands
            .iter()
            .map(|c| match c {
                Command::Stats { .. } => Stage::Stats {
                    plan: plans.next().expect("a plan per stats"),
                    groups: HashMap::new(),
                },
                Command::Sort(keys) => Stage::Sort {
                    keys,
                    held: Vec::new(),
                },
                Command::Limit(n) => Stage::Limit { left: *n },
                Command::Dedup(fields) => Stage::Dedup {
                    fields,
                    seen: HashSet::new(),
                },
                other => Stage::Command(other),
            })
            .collect();
        let matched_at = stages
            .iter()
            .position(|s| !matches!(s, Stage::Command(_)))
            .unwrap_or(stages.len());
        Run {
            columns,
            limit,
            aggregated,
            stages,
            matched_at,
            cx: (start_ms, end_ms),
            out: Vec::new(),
            output: QueryOutput::default(),
            done: false,
            aggregated_elsewhere: false,
        }
    }

    /// Feeds one event; false once no further event can change the result.
    pub fn push(&mut self, event: InputEvent) -> bool {
        if self.done {
            return false;
        }
        self.output.records_scanned += 1;
        self.output.bytes_scanned += event.message.len() as u64;
        self.feed(0, Record::of_event(Arc::new(event)));
        !self.done
    }

    /// Feeds one row of the first `stats`, computed elsewhere (SQL over columns: see
    /// [`crate::sql`]) from `matched` events: the rest of the query runs on it, and
    /// that `stats` itself takes no events.
    pub fn push_aggregated(&mut self, row: Vec<(String, Value)>, matched: u64) {
        let Some(stats) = self
            .stages
            .iter()
            .position(|s| matches!(s, Stage::Stats { .. }))
        else {
            return;
        };
        self.aggregated_elsewhere = true;
        self.output.records_matched += matched;
        self.feed(stats + 1, Record::of_fields(row));
    }

    /// Counts events read and bytes scanned where the events were not fed one by one.
    pub fn count_scanned(&mut self, records: u64, bytes: u64) {
        self.output.records_scanned += records;
        self.output.bytes_scanned += bytes;
    }

    fn context(&self) -> Context<'static> {
        Context {
            start_ms: self.cx.0,
            end_ms: self.cx.1,
            aggregates: &[],
        }
    }

    /// Runs `record` through the stages from `from`.
    fn feed(&mut self, from: usize, mut record: Record) {
        let cx = self.context();
        for index in from..self.stages.len() {
            if index == self.matched_at {
                self.output.records_matched += 1;
            }
            match &mut self.stages[index] {
                Stage::Command(command) => match command {
                    Command::Fields(list) | Command::Display(list) => {
                        let values: Vec<Value> =
                            list.iter().map(|p| eval(&p.expr, &record, &cx)).collect();
                        for (p, v) in list.iter().zip(values) {
                            record.set(&p.name, v);
                        }
                    }
                    Command::Filter(e) => {
                        if !eval(e, &record, &cx).is_truthy() {
                            return;
                        }
                    }
                    Command::Parse { source, extraction } => {
                        if let Some(text) = eval(source, &record, &cx).as_text() {
                            if let Some(caps) = extraction.regex.captures(&text) {
                                let named =
                                    extraction.regex.capture_names().flatten().next().is_some();
                                for (i, name) in extraction.names.iter().enumerate() {
                                    let group = if named {
                                        caps.name(name)
                                    } else {
                                        caps.get(i + 1)
                                    };
                                    if let Some(m) = group {
                                        record.set(name, Value::text(m.as_str()));
                                    }
                                }
                            }
                        }
                    }
                    Command::Unnest { list, into } => {
                        let items = match eval(list, &record, &cx) {
                            Value::Json(j) => match j.as_ref() {
                                serde_json::Value::Array(items) => {
                                    items.iter().map(Value::from_json).collect()
                                }
                                _ => vec![Value::Json(j.clone())],
                            },
                            Value::Null => return,
                            other => vec![other],
                        };
                        let into = into.clone();
                        for item in items {
                            let mut copy = record.clone();
                            copy.set(
                                &into,
                                match item {
                                    Value::Json(j) => Value::Json(j),
                                    v => v,
                                },
                            );
                            self.feed(index + 1, copy);
                        }
                        return;
                    }
                    Command::Stats { .. }
                    | Command::Sort(_)
                    | Command::Limit(_)
                    | Command::Dedup(_) => {
                        unreachable!("stages of their own")
                    }
                },
                Stage::Stats { plan, groups } => {
                    let by: Vec<Value> = plan
                        .by
                        .iter()
                        .map(|p| eval(&p.expr, &record, &cx))
                        .collect();
                    let key: Vec<Option<String>> = by.iter().map(Value::render).collect();
                    let group = groups.entry(key).or_insert_with(|| Group {
                        by,
                        states: plan.aggregates.iter().map(AggregateState::new).collect(),
                    });
                    for (state, spec) in group.states.iter_mut().zip(&plan.aggregates) {
                        state.add(spec, &record, &cx);
                    }
                    return;
                }
                Stage::Sort { held, .. } => {
                    held.push(record);
                    return;
                }
                Stage::Limit { left } => {
                    if *left == 0 {
                        return;
                    }
                    *left -= 1;
                    if *left == 0
                        && !self.stages[..index]
                            .iter()
                            .any(|s| matches!(s, Stage::Stats { .. } | Stage::Sort { .. }))
                    {
                        // Everything before the limit streams: no later event gets through.
                        self.done = true;
                    }
                }
                Stage::Dedup { fields, seen } => {
                    let values: Vec<Value> = fields.iter().map(|f| record.get(f)).collect();
                    // Records lacking a dedup field are always kept.
                    if values.iter().all(|v| !v.is_null()) {
                        let key: Vec<String> = values.iter().filter_map(Value::render).collect();
                        if !seen.insert(key) {
                            return;
                        }
                    }
                }
            }
        }
        if from <= self.matched_at && self.matched_at == self.stages.len() {
            self.output.records_matched += 1;
        }
        self.out.push(record);
        if self.out.len() >= self.limit && self.streams() {
            // Rows past the limit are never shown.
            self.done = true;
        }
    }

    /// Whether every record reaches the end as it comes (no `stats`, no `sort`).
    fn streams(&self) -> bool {
        self.stages
            .iter()
            .all(|s| !matches!(s, Stage::Stats { .. } | Stage::Sort { .. }))
    }

    /// Ends the input and gives the rows.
    pub fn finish(mut self) -> QueryOutput {
        let cx = self.context();
        let first_stats = self
            .stages
            .iter()
            .position(|s| matches!(s, Stage::Stats { .. }));
        for index in 0..self.stages.len() {
            if self.aggregated_elsewhere && Some(index) == first_stats {
                continue;
            }
            let flushed: Vec<Record> = match &mut self.stages[index] {
                Stage::Stats { plan, groups } => {
                    let mut groups: Vec<Group> = std::mem::take(groups).into_values().collect();
                    if groups.is_empty() && plan.by.is_empty() {
                        groups.push(Group {
                            by: Vec::new(),
                            states: plan.aggregates.iter().map(AggregateState::new).collect(),
                        });
                    }
                    groups.sort_by(|a, b| {
                        a.by.iter()
                            .zip(&b.by)
                            .map(|(x, y)| natural_order(x, y))
                            .find(|o| o.is_ne())
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                    groups
                        .into_iter()
                        .map(|g| group_record(plan, g, &cx))
                        .collect()
                }
                Stage::Sort { keys, held } => {
                    let mut held = std::mem::take(held);
                    let keys: &[(String, bool)] = keys;
                    held.sort_by(|a, b| {
                        for (key, descending) in keys {
                            let order = natural_order(&a.get(key), &b.get(key));
                            let order = if *descending {
                                // Reversed, with nulls still last.
                                match (a.get(key).is_null(), b.get(key).is_null()) {
                                    (false, false) => order.reverse(),
                                    _ => order,
                                }
                            } else {
                                order
                            };
                            if order.is_ne() {
                                return order;
                            }
                        }
                        std::cmp::Ordering::Equal
                    });
                    held
                }
                _ => continue,
            };
            for record in flushed {
                self.feed(index + 1, record);
            }
        }
        let mut output = std::mem::take(&mut self.output);
        output.rows = self.render(&self.out);
        output
    }

    /// The rows so far, while events are still coming, for a query whose records
    /// reach the end as they come (no `stats` or `sort`); `None` for others.
    pub fn partial_rows(&self) -> Option<Vec<Vec<(String, String)>>> {
        self.streams().then(|| self.render(&self.out))
    }

    /// What has been counted so far (rows aside).
    pub fn progress(&self) -> QueryOutput {
        QueryOutput {
            rows: Vec::new(),
            ..self.output.clone()
        }
    }

    /// The query's rows of `records`: its columns, values printed, null ones left
    /// out, `@ptr` last on rows that are events.
    fn render(&self, records: &[Record]) -> Vec<Vec<(String, String)>> {
        let aggregated = self.aggregated;
        let columns = self.columns;
        let mut rows = Vec::new();
        for record in records.iter().take(self.limit) {
            let mut row: Vec<(String, String)> = columns
                .iter()
                .filter_map(|c| record.get(c).render().map(|v| (c.clone(), v)))
                .collect();
            if !aggregated {
                if let Some(event) = &record.event {
                    row.push(("@ptr".to_owned(), event.ptr.clone()));
                }
            }
            if !row.is_empty() {
                rows.push(row);
            }
        }
        rows
    }
}

fn group_record(plan: &StatsPlan, group: Group, cx: &Context<'_>) -> Record {
    let results: Vec<Value> = group
        .states
        .into_iter()
        .zip(&plan.aggregates)
        .map(|(state, spec)| state.finish(spec, cx))
        .collect();
    let mut fields: Vec<(String, Value)> = plan
        .by
        .iter()
        .zip(group.by)
        .map(|(p, v)| (p.name.clone(), v))
        .collect();
    let item_cx = Context {
        aggregates: &results,
        ..*cx
    };
    for item in &plan.items {
        let value = eval(&item.expr, &Record::of_fields(fields.clone()), &item_cx);
        fields.push((item.name.clone(), value));
    }
    Record::of_fields(fields)
}

/// Times out of aggregates print as Unix milliseconds.
fn plain(v: Value) -> Value {
    match v {
        Value::Time(t) => Value::Num(t as f64),
        other => other,
    }
}

enum AggregateState {
    Count(u64),
    Distinct(HashSet<String>),
    Sum(Option<f64>),
    Mean {
        sum: f64,
        n: u64,
    },
    Extreme {
        best: Option<Value>,
        numeric: bool,
        max: bool,
    },
    Values(Vec<f64>),
    Moments {
        n: u64,
        mean: f64,
        m2: f64,
    },
    ByTime {
        best: Option<(i64, Value)>,
        latest: bool,
    },
    Natural {
        best: Option<Value>,
        last: bool,
    },
    Collect(BTreeMap<String, ()>),
}

impl AggregateState {
    fn new(spec: &AggregateSpec) -> AggregateState {
        match spec.function.as_str() {
            "count" => AggregateState::Count(0),
            "count_distinct" | "countdistinct" => AggregateState::Distinct(HashSet::new()),
            "sum" => AggregateState::Sum(None),
            "avg" => AggregateState::Mean { sum: 0.0, n: 0 },
            "min" | "max" => AggregateState::Extreme {
                best: None,
                numeric: false,
                max: spec.function == "max",
            },
            "pct" | "percentile" => AggregateState::Values(Vec::new()),
            "stddev" | "variance" => AggregateState::Moments {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            "earliest" | "latest" => AggregateState::ByTime {
                best: None,
                latest: spec.function == "latest",
            },
            "sortsfirst" | "sortslast" => AggregateState::Natural {
                best: None,
                last: spec.function == "sortslast",
            },
            _ => AggregateState::Collect(BTreeMap::new()),
        }
    }

    fn add(&mut self, spec: &AggregateSpec, record: &Record, cx: &Context<'_>) {
        let value = || {
            spec.args
                .first()
                .map_or(Value::Null, |a| eval(a, record, cx))
        };
        match self {
            AggregateState::Count(n) => {
                if spec.args.is_empty() || !value().is_null() {
                    *n += 1;
                }
            }
            AggregateState::Distinct(set) => {
                if let Some(v) = value().render() {
                    set.insert(v);
                }
            }
            AggregateState::Sum(sum) => {
                if let Some(x) = value().as_number() {
                    *sum = Some(sum.unwrap_or(0.0) + x);
                }
            }
            AggregateState::Mean { sum, n } => {
                if let Some(x) = value().as_number() {
                    *sum += x;
                    *n += 1;
                }
            }
            AggregateState::Extreme { best, numeric, max } => {
                let v = value();
                if v.is_null() {
                    return;
                }
                let is_number = v.as_number().is_some();
                if *numeric && !is_number {
                    return;
                }
                let better = match best {
                    None => true,
                    Some(_) if is_number && !*numeric => true,
                    Some(b) => {
                        let order = if is_number {
                            v.as_number()
                                .partial_cmp(&b.as_number())
                                .unwrap_or(std::cmp::Ordering::Equal)
                        } else {
                            natural_order(&v, b)
                        };
                        if *max {
                            order.is_gt()
                        } else {
                            order.is_lt()
                        }
                    }
                };
                if better {
                    *numeric |= is_number;
                    *best = Some(v);
                }
            }
            AggregateState::Values(values) => {
                if let Some(x) = value().as_number() {
                    values.push(x);
                }
            }
            AggregateState::Moments { n, mean, m2 } => {
                if let Some(x) = value().as_number() {
                    *n += 1;
                    let delta = x - *mean;
                    *mean += delta / *n as f64;
                    *m2 += delta * (x - *mean);
                }
            }
            AggregateState::ByTime { best, latest } => {
                let v = value();
                if v.is_null() {
                    return;
                }
                let t = match record.get("@timestamp") {
                    Value::Time(t) => t,
                    other => other.as_number().map_or(0, |n| n as i64),
                };
                let better = best
                    .as_ref()
                    .is_none_or(|(bt, _)| if *latest { t >= *bt } else { t < *bt });
                if better {
                    *best = Some((t, v));
                }
            }
            AggregateState::Natural { best, last } => {
                let v = value();
                if v.is_null() {
                    return;
                }
                let better = best.as_ref().is_none_or(|b| {
                    let order = natural_order(&v, b);
                    if *last {
                        order.is_gt()
                    } else {
                        order.is_lt()
                    }
                });
                if better {
                    *best = Some(v);
                }
            }
            AggregateState::Collect(set) => {
                if let Some(v) = value().render() {
                    set.insert(v, ());
                }
            }
        }
    }

    fn finish(self, spec: &AggregateSpec, cx: &Context<'_>) -> Value {
        match self {
            AggregateState::Count(n) => Value::Num(n as f64),
            AggregateState::Distinct(set) => Value::Num(set.len() as f64),
            AggregateState::Sum(sum) => sum.map_or(Value::Null, Value::Num),
            AggregateState::Mean { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    Value::Num(sum / n as f64)
                }
            }
            AggregateState::Extreme { best, .. } => best.map_or(Value::Null, plain),
            AggregateState::Values(mut values) => {
                if values.is_empty() {
                    return Value::Null;
                }
                // Nearest rank: the smallest value with at least p % at or below it.
                values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                let record = Record::of_fields(Vec::new());
                let p = spec
                    .args
                    .get(1)
                    .and_then(|a| eval(a, &record, cx).as_number())
                    .unwrap_or(50.0)
                    .clamp(0.0, 100.0);
                let rank = (p / 100.0 * values.len() as f64).ceil() as usize;
                Value::Num(values[rank.clamp(1, values.len()) - 1])
            }
            AggregateState::Moments { n, m2, .. } => {
                if n == 0 {
                    return Value::Null;
                }
                // Population variance, as AWS's documentation says.
                let variance = m2 / n as f64;
                Value::Num(if spec.function == "stddev" {
                    variance.sqrt()
                } else {
                    variance
                })
            }
            AggregateState::ByTime { best, .. } => best.map_or(Value::Null, |(_, v)| plain(v)),
            AggregateState::Natural { best, .. } => best.map_or(Value::Null, plain),
            AggregateState::Collect(set) => Value::Json(Arc::new(serde_json::Value::Array(
                set.into_keys().map(serde_json::Value::String).collect(),
            ))),
        }
    }
}
