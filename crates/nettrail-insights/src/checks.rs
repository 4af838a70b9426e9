//! What AWS checks when it compiles a query, beyond its grammar: the fields that exist
//! after a `stats`, aggregates only in `stats`, and how deep an expression may nest.

use std::collections::HashSet;

use crate::ast::{walk, Expr};
use crate::error::QueryError;
use crate::lex::Lexer;

/// Functions that aggregate (only in `stats`).
pub const AGGREGATES: [&str; 17] = [
    "count",
    "count_distinct",
    "countdistinct",
    "sum",
    "avg",
    "min",
    "max",
    "pct",
    "percentile",
    "stddev",
    "variance",
    "earliest",
    "latest",
    "sortsfirst",
    "sortslast",
    "values",
    "collect_values",
];

/// What the parser checks across commands.
#[derive(Debug, Clone, Default)]
pub(crate) struct Checks {
    /// The fields that exist after a `stats` (any field before the first).
    pub(crate) known: Option<HashSet<String>>,
    pub(crate) stats: usize,
    /// A `sort` or `limit` was seen: no `stats` may follow.
    pub(crate) ordered_before_stats: bool,
    pub(crate) after_dedup: bool,
}

impl Checks {
    pub(crate) fn define(&mut self, names: impl IntoIterator<Item = String>) {
        if let Some(known) = &mut self.known {
            known.extend(names);
        }
    }

    /// Every field `expr` reads exists, and it aggregates only where allowed.
    pub(crate) fn check(
        &self,
        expr: &Expr,
        lexer: &Lexer,
        at: usize,
        aggregates_allowed: bool,
    ) -> Result<(), QueryError> {
        let mut problem = None;
        walk(expr, &mut |e| {
            if problem.is_some() {
                return;
            }
            match e {
                Expr::Field(name) if self.known.as_ref().is_some_and(|k| !k.contains(name)) => {
                    problem = Some(lexer.unexpected(name, at));
                }
                Expr::Call { name, .. }
                    if !aggregates_allowed && AGGREGATES.contains(&name.as_str()) =>
                {
                    problem = Some(QueryError::at(
                        format!("the aggregate function {name}() can only be used in stats"),
                        at,
                        lexer.last_end,
                    ));
                }
                _ => {}
            }
        });
        problem.map_or(Ok(()), Err)
    }
}

/// How deep an expression tree is (without recursion: it is checked before anything
/// recurses over it).
pub(crate) fn tree_depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Expr, usize)> = vec![(expr, 1)];
    while let Some((e, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        let children: Vec<&Expr> = match e {
            Expr::Access(inner, _)
            | Expr::Not(inner)
            | Expr::Negate(inner)
            | Expr::Like(inner, ..) => vec![inner],
            Expr::Call { args, .. } | Expr::List(args) => args.iter().collect(),
            Expr::Binary(_, a, b) => vec![a, b],
            Expr::In(inner, list, _) => std::iter::once(&**inner).chain(list).collect(),
            Expr::Literal(_) | Expr::Period(_) | Expr::Field(_) | Expr::Aggregate(_) => Vec::new(),
        };
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    deepest
}

pub(crate) fn contains_aggregate(expr: &Expr) -> bool {
    let mut found = false;
    walk(expr, &mut |e| {
        if let Expr::Call { name, .. } = e {
            found |= AGGREGATES.contains(&name.as_str());
        }
    });
    found
}

/// Whether `expr` reads only fields defined earlier in the same `stats`.
pub(crate) fn only_fields(expr: &Expr, defined: &[String]) -> bool {
    let mut reads_any = false;
    let mut ok = true;
    walk(expr, &mut |e| {
        if let Expr::Field(name) = e {
            reads_any = true;
            ok &= defined.contains(name);
        }
    });
    reads_any && ok
}
