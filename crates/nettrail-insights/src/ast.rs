//! A parsed query.

use regex::Regex;

use crate::value::Value;

/// A whole query: its commands in order, and the groups a `SOURCE` command names.
#[derive(Debug, Clone)]
pub struct Query {
    /// The commands after `SOURCE`, in order.
    pub commands: Vec<Command>,
    /// `SOURCE logGroups(namePrefix: [...])`, when given.
    pub source: Option<Source>,
}

/// The log groups a `SOURCE` command selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// Groups whose names start with one of these (every group when empty).
    pub name_prefixes: Vec<String>,
}

/// A value with the name it gets in the results.
#[derive(Debug, Clone)]
pub struct Projection {
    /// What is computed.
    pub expr: Expr,
    /// Its alias, else its source text.
    pub name: String,
}

/// How `parse` extracts fields.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// The compiled pattern (a glob turned into a regex, or the regex given).
    pub regex: Regex,
    /// Each capture group's field name: by position for a glob, by name for a regex.
    pub names: Vec<String>,
}

/// One command of the pipeline.
#[derive(Debug, Clone)]
pub enum Command {
    /// `fields`: computes values and adds them to the output columns.
    Fields(Vec<Projection>),
    /// `display`: sets the output columns.
    Display(Vec<Projection>),
    /// `filter`, `where`, `filterIndex`: keeps records for which the expression holds.
    Filter(Expr),
    /// `stats`: aggregates, grouped by the `by` values.
    Stats {
        /// Aggregate items, in order.
        items: Vec<Projection>,
        /// Grouping values, in order.
        by: Vec<Projection>,
    },
    /// `sort`: by fields, each ascending or descending.
    Sort(Vec<(String, bool)>),
    /// `limit`, `head`: the first N records.
    Limit(usize),
    /// `parse`: extracts fields from a value.
    Parse {
        /// The value parsed (`@message` unless given).
        source: Expr,
        /// How.
        extraction: Extraction,
    },
    /// `dedup`: the first record of each distinct combination of the fields.
    Dedup(Vec<String>),
    /// `unnest L into f`: one record per element of a list.
    Unnest {
        /// The list.
        list: Expr,
        /// The field each element goes into.
        into: String,
    },
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `^`
    Pow,
}

/// What `like` looks for.
#[derive(Debug, Clone)]
pub enum LikePattern {
    /// A substring, case-sensitive.
    Text(String),
    /// A regular expression, searched.
    Regex(Regex),
}

/// An expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A literal.
    Literal(Value),
    /// A time period (`5m`), in milliseconds, with its unit for calendar periods.
    Period(Period),
    /// A field (`srcAddr`, `@timestamp`, `` `foo-bar` ``).
    Field(String),
    /// A key or index into a map or list (`js.users[1]`, ``js.`user.id` ``).
    Access(Box<Expr>, Key),
    /// A function call; `args` is empty for `count(*)`.
    Call {
        /// Lowercased name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// The result of aggregate `n` of the enclosing `stats` item.
    Aggregate(usize),
    /// `not e`
    Not(Box<Expr>),
    /// `-e`
    Negate(Box<Expr>),
    /// `a op b`
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `e [not] like p`, `e =~ p`
    Like(Box<Expr>, LikePattern, bool),
    /// `e [not] in [..]`
    In(Box<Expr>, Vec<Expr>, bool),
    /// `[a, b]`
    List(Vec<Expr>),
}

/// A key into a map or list.
#[derive(Debug, Clone)]
pub enum Key {
    /// `.name`
    Name(String),
    /// `[n]`
    Index(usize),
}

/// A time period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// How many units.
    pub count: i64,
    /// Which.
    pub unit: PeriodUnit,
}

/// The unit of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    /// Milliseconds.
    Millisecond,
    /// Seconds.
    Second,
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days.
    Day,
    /// Weeks (from Monday).
    Week,
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
}

impl Period {
    /// The period as `bin()` uses it: AWS caps the count per unit (`bin(300s)` is a
    /// minute's bins).
    pub fn capped(self) -> Period {
        let cap = match self.unit {
            PeriodUnit::Millisecond => 1000,
            PeriodUnit::Second | PeriodUnit::Minute => 60,
            PeriodUnit::Hour => 24,
            _ => i64::MAX,
        };
        Period {
            count: self.count.clamp(1, cap),
            unit: self.unit,
        }
    }

    /// Its length in milliseconds, for the fixed units.
    pub fn fixed_millis(self) -> Option<i64> {
        let unit = match self.unit {
            PeriodUnit::Millisecond => 1,
            PeriodUnit::Second => 1000,
            PeriodUnit::Minute => 60_000,
            PeriodUnit::Hour => 3_600_000,
            PeriodUnit::Day => 86_400_000,
            PeriodUnit::Week => 7 * 86_400_000,
            _ => return None,
        };
        self.count.checked_mul(unit)
    }
}

/// Calls `f` on `expr` and every expression inside it.
pub(crate) fn walk(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Access(inner, _) | Expr::Not(inner) | Expr::Negate(inner) | Expr::Like(inner, ..) => {
            walk(inner, f)
        }
        Expr::Call { args, .. } | Expr::List(args) => args.iter().for_each(|a| walk(a, f)),
        Expr::Binary(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        Expr::In(inner, list, _) => {
            walk(inner, f);
            list.iter().for_each(|a| walk(a, f));
        }
        Expr::Literal(_) | Expr::Period(_) | Expr::Field(_) | Expr::Aggregate(_) => {}
    }
}
