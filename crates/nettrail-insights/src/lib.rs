//! CloudWatch Logs Insights for nettrail: the query language (`fields`, `filter`,
//! `stats … by bin()`, `parse`, `sort`, `limit`, `dedup`, `display`, `unnest`,
//! `SOURCE`, the functions of `shared/specs/logs-insights.md` §5), the fields Insights
//! discovers in an event, and a pipeline that runs a query over events and prints its
//! rows as GetQueryResults does (every value a string, timestamps as
//! `YYYY-MM-DD HH:MM:SS.mmm`).
//!
//! The crate knows nothing of the store or the API: the server feeds it events (newest
//! first) and serves what it gives back.
//!
//! - [`parse`]: text to [`ast::Query`], with AWS's compile errors (its tokens from
//!   `lex.rs`, AWS's other compile-time checks in `checks.rs`);
//! - [`eval`]: records, expressions and the scalar functions;
//! - [`discover`]: the fields of flow records, JSON events and Lambda reports;
//! - [`run`]: the pipeline;
//! - [`sql`]: a flow-log query's `filter … | stats` prefix as one SQL statement;
//! - [`value`]: values, their comparison, order and printing.

pub mod ast;
mod checks;
pub mod discover;
mod error;
pub mod eval;
mod lex;
pub mod parse;
pub mod run;
pub mod sql;
pub mod value;

use ast::{Command, Expr, Query, Source};
pub use error::QueryError;
pub use eval::InputEvent;
pub use run::{QueryOutput, Run};

/// Rows a query returns when neither it nor the request says otherwise (AWS's).
pub const DEFAULT_LIMIT: usize = 10_000;

/// A query ready to run.
#[derive(Debug, Clone)]
pub struct Compiled {
    query: Query,
    stats_plans: Vec<run::StatsPlan>,
    columns: Vec<String>,
    limit: usize,
}

impl Compiled {
    /// Compiles `text`; `limit` is StartQuery's `limit` (rows at most).
    pub fn new(text: &str, limit: Option<usize>) -> Result<Compiled, QueryError> {
        let query = parse::parse_query(text)?;
        check_functions(text, &query)?;
        let mut stats_plans = Vec::new();
        let mut columns: Option<Vec<String>> = None;
        let mut command_limit = None;
        for command in &query.commands {
            match command {
                Command::Fields(list) => {
                    let cols = columns.get_or_insert_with(Vec::new);
                    for p in list {
                        if !cols.contains(&p.name) {
                            cols.push(p.name.clone());
                        }
                    }
                }
                Command::Display(list) => {
                    columns = Some(list.iter().map(|p| p.name.clone()).collect());
                }
                Command::Stats { items, by } => {
                    stats_plans.push(run::StatsPlan::new(items, by));
                    columns = Some(by.iter().chain(items).map(|p| p.name.clone()).collect());
                }
                Command::Limit(n) => command_limit = Some(*n),
                _ => {}
            }
        }
        let columns =
            columns.unwrap_or_else(|| vec!["@timestamp".to_owned(), "@message".to_owned()]);
        let limit = limit
            .unwrap_or(DEFAULT_LIMIT)
            .min(command_limit.unwrap_or(usize::MAX));
        Ok(Compiled {
            query,
            stats_plans,
            columns,
            limit,
        })
    }

    /// The groups a `SOURCE` command names, if the query has one.
    pub fn source(&self) -> Option<&Source> {
        self.query.source.as_ref()
    }

    /// Whether the query aggregates (its rows are not events and carry no `@ptr`).
    pub fn aggregates(&self) -> bool {
        !self.stats_plans.is_empty()
    }

    /// Whether the events must come newest first for the answer to be AWS's: true
    /// unless a `stats` or `sort` comes before any `limit` or `dedup` (then each event
    /// counts the same whenever it comes).
    pub fn needs_order(&self) -> bool {
        for command in &self.query.commands {
            match command {
                Command::Stats { .. } | Command::Sort(_) => return false,
                Command::Limit(_) | Command::Dedup(_) => return true,
                _ => {}
            }
        }
        true
    }

    /// The SQL statement answering this query's `filter … | stats` prefix over a
    /// flow-log table (a quoted SQL name) for events in `[start_ms, end_ms]`, if the
    /// prefix compiles (see [`sql`]); its rows go to [`Run::push_aggregated`].
    pub fn flow_sql(&self, table: &str, start_ms: i64, end_ms: i64) -> Option<sql::SqlPlan> {
        sql::compile(&self.query, &self.stats_plans, table, start_ms, end_ms)
    }

    /// The columns of its rows, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Starts a run over the time range `[start_ms, end_ms]`.
    pub fn run(&self, start_ms: i64, end_ms: i64) -> Run<'_> {
        Run::new(
            &self.query.commands,
            &self.stats_plans,
            &self.columns,
            self.limit,
            (start_ms, end_ms),
        )
    }
}

/// Every function the query calls exists, with AWS's error for one that does not.
fn check_functions(text: &str, query: &Query) -> Result<(), QueryError> {
    let mut unknown = None;
    let mut visit = |e: &Expr| {
        ast::walk(e, &mut |x| {
            if let Expr::Call { name, .. } = x {
                let known = parse::AGGREGATES.contains(&name.as_str())
                    || eval::SCALAR_FUNCTIONS.contains(&name.as_str());
                if !known && unknown.is_none() {
                    unknown = Some(name.clone());
                }
            }
        })
    };
    for command in &query.commands {
        match command {
            Command::Fields(list) | Command::Display(list) => {
                list.iter().for_each(|p| visit(&p.expr))
            }
            Command::Filter(e) => visit(e),
            Command::Stats { items, by } => items.iter().chain(by).for_each(|p| visit(&p.expr)),
            Command::Parse { source, .. } => visit(source),
            Command::Unnest { list, .. } => visit(list),
            Command::Sort(_) | Command::Limit(_) | Command::Dedup(_) => {}
        }
    }
    match unknown {
        None => Ok(()),
        Some(name) => {
            let at = text
                .to_ascii_lowercase()
                .find(&format!("{name}("))
                .unwrap_or(0);
            let at = text[..at].chars().count();
            Err(QueryError::at(
                format!("unknown function {name}"),
                at,
                at + name.chars().count(),
            ))
        }
    }
}
