//! JSON patterns (spec §5): `{ $.a.b[0] = "x" && ($.n > 5 || $.c NOT EXISTS) }`.

use serde_json::Value;

use crate::error::PatternError;
use crate::value::{compare_text, parse_literal, Cursor, Literal, Op};

/// Wildcard selectors allowed in one selector, and in one pattern.
const MAX_WILDCARDS_PER_SELECTOR: usize = 1;
const MAX_WILDCARDS_PER_PATTERN: usize = 3;

/// A boolean expression over conditions.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Any holds.
    Or(Vec<Expr>),
    /// All hold.
    And(Vec<Expr>),
    /// One condition.
    Cond(Condition),
}

/// `selector test`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub(crate) steps: Vec<Step>,
    pub(crate) test: Test,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
    AnyIndex,
    AnyKey,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Cmp(Op, Literal),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Compound children are always parenthesized, so the printed form parses back
        // to the same tree.
        let join =
            |f: &mut std::fmt::Formatter<'_>, parts: &[Expr], sep: &str| -> std::fmt::Result {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    match part {
                        Expr::Cond(_) => write!(f, "{part}")?,
                        _ => write!(f, "({part})")?,
                    }
                }
                Ok(())
            };
        match self {
            Expr::Or(parts) => join(f, parts, " || "),
            Expr::And(parts) => join(f, parts, " && "),
            Expr::Cond(c) => write!(f, "{c}"),
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("$")?;
        for step in &self.steps {
            match step {
                Step::Key(k)
                    if !k.is_empty()
                        && k.chars().all(|c| c.is_alphanumeric() || "_-@".contains(c)) =>
                {
                    write!(f, ".{k}")?
                }
                Step::Key(k) => write!(f, ".['{k}']")?,
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::AnyIndex => f.write_str("[*]")?,
                Step::AnyKey => f.write_str(".*")?,
            }
        }
        match &self.test {
            Test::Cmp(op, literal) => write!(f, " {} {literal}", op.as_str()),
            Test::IsNull => f.write_str(" IS NULL"),
            Test::IsTrue => f.write_str(" IS TRUE"),
            Test::IsFalse => f.write_str(" IS FALSE"),
            Test::NotExists => f.write_str(" NOT EXISTS"),
        }
    }
}

/// Counts kept while parsing, for the quotas.
#[derive(Default)]
pub(crate) struct Quotas {
    pub(crate) wildcards: usize,
    pub(crate) regexes: usize,
}

pub(crate) fn parse(text: &str, quotas: &mut Quotas) -> Result<Expr, PatternError> {
    let mut c = Cursor::new(text);
    c.skip_blanks();
    if !c.eat("{") {
        return Err(c.error("a JSON pattern starts with '{'"));
    }
    if !text.trim_end().ends_with('}') {
        return Err(c.error_at(
            text.trim_end().len(),
            "If a filter pattern starts with '{' it must end with '}'",
        ));
    }
    let expr = parse_or(&mut c, quotas)?;
    c.skip_blanks();
    if !c.eat("}") {
        return Err(c.error("expected '&&', '||' or '}'"));
    }
    c.skip_blanks();
    if !c.at_end() {
        return Err(c.error("unexpected text after the closing '}'"));
    }
    Ok(expr)
}

fn parse_or(c: &mut Cursor<'_>, q: &mut Quotas) -> Result<Expr, PatternError> {
    let mut parts = vec![parse_and(c, q)?];
    loop {
        c.skip_blanks();
        if !c.eat("||") {
            break;
        }
        parts.push(parse_and(c, q)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        Expr::Or(parts)
    })
}

fn parse_and(c: &mut Cursor<'_>, q: &mut Quotas) -> Result<Expr, PatternError> {
    let mut parts = vec![parse_primary(c, q)?];
    loop {
        c.skip_blanks();
        if !c.eat("&&") {
            break;
        }
        parts.push(parse_primary(c, q)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        Expr::And(parts)
    })
}

fn parse_primary(c: &mut Cursor<'_>, q: &mut Quotas) -> Result<Expr, PatternError> {
    c.skip_blanks();
    if c.eat("(") {
        let inner = parse_or(c, q)?;
        c.skip_blanks();
        if !c.eat(")") {
            return Err(c.error("expected ')'"));
        }
        return Ok(inner);
    }
    parse_condition(c, q).map(Expr::Cond)
}

fn parse_condition(c: &mut Cursor<'_>, q: &mut Quotas) -> Result<Condition, PatternError> {
    let start = c.pos;
    if !c.eat("$") {
        return Err(c.error("a property selector starts with '$.' (for example $.eventType)"));
    }
    let mut steps = Vec::new();
    loop {
        if c.eat(".") {
            if c.eat("*") {
                steps.push(Step::AnyKey);
            } else if c.peek() == Some('[') {
                steps.push(parse_bracket(c)?);
            } else {
                let name_start = c.pos;
                while c
                    .peek()
                    .is_some_and(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '@')
                {
                    c.bump();
                }
                if c.pos == name_start {
                    return Err(c.error("expected a property name after '.'"));
                }
                steps.push(Step::Key(c.text[name_start..c.pos].to_owned()));
            }
        } else if c.peek() == Some('[') {
            if steps.is_empty() {
                return Err(c.error("array elements must follow a property"));
            }
            steps.push(parse_bracket(c)?);
        } else {
            break;
        }
    }
    if steps.is_empty() {
        return Err(c.error("expected '.' after '$'"));
    }
    let wildcards = steps
        .iter()
        .filter(|s| matches!(s, Step::AnyIndex | Step::AnyKey))
        .count();
    if wildcards > MAX_WILDCARDS_PER_SELECTOR {
        return Err(c.error_at(start, "a property selector can hold at most one wildcard"));
    }
    q.wildcards += wildcards;
    if q.wildcards > MAX_WILDCARDS_PER_PATTERN {
        return Err(c.error_at(
            start,
            "a filter pattern can hold at most three wildcard selectors",
        ));
    }
    c.skip_blanks();
    let test = if c.eat("IS") {
        c.skip_blanks();
        if c.eat("NULL") {
            Test::IsNull
        } else if c.eat("TRUE") {
            Test::IsTrue
        } else if c.eat("FALSE") {
            Test::IsFalse
        } else if c.rest().starts_with("NOT") {
            return Err(c.error("IS NOT is not supported; use != or NOT EXISTS"));
        } else {
            return Err(c.error("expected NULL, TRUE or FALSE after IS"));
        }
    } else if c.eat("NOT") {
        c.skip_blanks();
        if !c.eat("EXISTS") {
            return Err(c.error("expected EXISTS after NOT"));
        }
        Test::NotExists
    } else if c.rest().starts_with("EXISTS") {
        return Err(c.error("EXISTS is not supported; use = * to test that a value is present"));
    } else {
        let Some(op) = Op::parse(c) else {
            return Err(c.error("expected an operator (=, !=, <, <=, >, >=), IS or NOT EXISTS"));
        };
        c.skip_blanks();
        let (literal, is_regex) = parse_literal(c, op, &[")", "&&", "||", "}"])?;
        if is_regex {
            q.regexes += 1;
        }
        Test::Cmp(op, literal)
    };
    Ok(Condition { steps, test })
}

fn parse_bracket(c: &mut Cursor<'_>) -> Result<Step, PatternError> {
    c.bump(); // '['
    let step = if c.eat("*") {
        Step::AnyIndex
    } else if c.eat("'") {
        let start = c.pos;
        while c.peek().is_some_and(|ch| ch != '\'') {
            c.bump();
        }
        let key = c.text[start..c.pos].to_owned();
        if !c.eat("'") {
            return Err(c.error("unterminated ['key']"));
        }
        Step::Key(key)
    } else {
        let start = c.pos;
        while c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
            c.bump();
        }
        let index = c.text[start..c.pos]
            .parse()
            .map_err(|_| c.error_at(start, "expected an array index, '*' or a quoted key"))?;
        Step::Index(index)
    };
    if !c.eat("]") {
        return Err(c.error("expected ']'"));
    }
    Ok(step)
}

/// Literals every matching event contains, as written in its JSON text when the text
/// has no escapes: the keys a condition walks through and the string a `=` compares
/// with. Only conditions that every match must satisfy (not under `||`) contribute.
pub(crate) fn required_literals(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Or(_) => {}
        Expr::And(parts) => parts.iter().for_each(|p| required_literals(p, out)),
        Expr::Cond(cond) => {
            if matches!(cond.test, Test::NotExists) {
                return;
            }
            for step in &cond.steps {
                if let Step::Key(k) = step {
                    out.push(format!("\"{k}\""));
                }
            }
            if let Test::Cmp(Op::Eq, Literal::Str(m)) = &cond.test {
                if let Some(text) = m.required_text() {
                    out.push(text.to_owned());
                }
            }
        }
    }
}

/// Whether a JSON event matches. Events that are not a JSON object never match.
pub(crate) fn matches(expr: &Expr, event: &str) -> bool {
    match parse_event(event) {
        Some(root) => eval(expr, &root),
        None => false,
    }
}

pub(crate) fn parse_event(event: &str) -> Option<Value> {
    if !event.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Value>(event)
        .ok()
        .filter(Value::is_object)
}

pub(crate) fn eval(expr: &Expr, root: &Value) -> bool {
    match expr {
        Expr::Or(parts) => parts.iter().any(|e| eval(e, root)),
        Expr::And(parts) => parts.iter().all(|e| eval(e, root)),
        Expr::Cond(cond) => {
            let mut nodes = Vec::new();
            resolve(&cond.steps, root, &mut nodes);
            holds(&cond.test, &nodes)
        }
    }
}

pub(crate) fn resolve<'v>(steps: &[Step], node: &'v Value, out: &mut Vec<&'v Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(node);
        return;
    };
    match (step, node) {
        (Step::Key(k), Value::Object(map)) => {
            if let Some(child) = map.get(k) {
                resolve(rest, child, out);
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(child) = items.get(*i) {
                resolve(rest, child, out);
            }
        }
        (Step::AnyIndex, Value::Array(items)) => {
            items.iter().for_each(|child| resolve(rest, child, out))
        }
        (Step::AnyKey, Value::Object(map)) => {
            map.values().for_each(|child| resolve(rest, child, out))
        }
        _ => {}
    }
}

fn holds(test: &Test, nodes: &[&Value]) -> bool {
    match test {
        Test::NotExists => nodes.is_empty(),
        Test::IsNull => nodes.iter().any(|n| n.is_null()),
        Test::IsTrue => nodes.iter().any(|n| n.as_bool() == Some(true)),
        Test::IsFalse => nodes.iter().any(|n| n.as_bool() == Some(false)),
        // Only value nodes (strings, numbers) can satisfy a comparison, `!=` included.
        Test::Cmp(op, literal) => nodes.iter().any(|n| match n {
            Value::String(s) => compare_text(*op, literal, s),
            Value::Number(num) => compare_number(*op, literal, num),
            _ => false,
        }),
    }
}

pub(crate) fn compare_number(op: Op, literal: &Literal, num: &serde_json::Number) -> bool {
    match literal {
        Literal::Num { value, .. } => num
            .as_f64()
            .and_then(|v| v.partial_cmp(value))
            .is_some_and(|o| op.holds(o)),
        // `= 4*` or `= %re%` against a number compare with its text.
        _ => compare_text(op, literal, &num.to_string()),
    }
}
