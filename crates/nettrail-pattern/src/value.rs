//! Pieces shared by the parsers: a cursor that knows its position, the value literals
//! of conditions (strings with `*` wildcards, numbers, `%regex%`), and the translation of
//! AWS's regex subset.

use regex::bytes::Regex;

use crate::error::PatternError;

/// A position-aware reader over the pattern text.
pub(crate) struct Cursor<'a> {
    pub(crate) text: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(crate) fn skip_blanks(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    pub(crate) fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// An error at the current position.
    pub(crate) fn error(&self, message: impl Into<String>) -> PatternError {
        self.error_at(self.pos, message)
    }

    pub(crate) fn error_at(&self, byte: usize, message: impl Into<String>) -> PatternError {
        PatternError {
            position: self.text[..byte.min(self.text.len())].chars().count() + 1,
            message: message.into(),
        }
    }

    /// Reads a `"…"` string (the cursor is on the opening quote); `\"` and `\\` escape.
    pub(crate) fn quoted(&mut self) -> Result<String, PatternError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error_at(start, "unterminated quoted string")),
                Some('"') => return Ok(out),
                Some('\\') if matches!(self.peek(), Some('"' | '\\')) => {
                    out.push(self.bump().expect("peeked"))
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Reads a `%…%` regex (the cursor is on the opening `%`) and compiles it.
    pub(crate) fn regex(&mut self) -> Result<Regex, PatternError> {
        let start = self.pos;
        self.bump();
        let body_start = self.pos;
        loop {
            match self.bump() {
                None => {
                    return Err(self.error_at(
                        start,
                        "unterminated regular expression: missing closing '%'",
                    ))
                }
                Some('\\') => {
                    self.bump();
                }
                Some('%') => break,
                Some(_) => {}
            }
        }
        let body = &self.text[body_start..self.pos - 1];
        compile_regex(body).map_err(|m| self.error_at(start, m))
    }
}

/// Compiles a regex written in AWS's subset: letters, digits, `: _ # = @ / ; , -`, space,
/// the operators `^ $ ? [ ] { } | * + .` and backslash escapes; no parentheses, no
/// multi-byte characters.
pub(crate) fn compile_regex(body: &str) -> Result<Regex, String> {
    if body.is_empty() {
        return Err("empty regular expression".into());
    }
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if !c.is_ascii() {
            return Err(format!(
                "multi-byte character {c:?} is not supported in a regular expression"
            ));
        }
        if c == '\\' {
            if chars.next().is_none() {
                return Err("a regular expression cannot end with '\\'".into());
            }
            continue;
        }
        let allowed = c.is_ascii_alphanumeric() || ":_#=@/;,- ^$?[]{}|*+.".contains(c);
        if !allowed {
            let why = if c == '(' || c == ')' {
                " (parentheses are not supported)"
            } else {
                ""
            };
            return Err(format!(
                "character {c:?} is not allowed in a regular expression{why}"
            ));
        }
    }
    regex::bytes::RegexBuilder::new(body)
        .unicode(false)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression: {}", first_line(&e.to_string())))
}

fn first_line(s: &str) -> &str {
    s.lines()
        .rfind(|l| l.starts_with("error:"))
        .unwrap_or_else(|| s.lines().next().unwrap_or(s))
}

/// How a string value matches: `*` at either end is a wildcard, elsewhere literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrMatch {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl StrMatch {
    pub(crate) fn from_text(text: &str) -> StrMatch {
        if text == "*" {
            return StrMatch::Any;
        }
        let (lead, trail) = (text.starts_with('*'), text.len() > 1 && text.ends_with('*'));
        match (lead, trail) {
            (true, true) => StrMatch::Contains(text[1..text.len() - 1].to_owned()),
            (true, false) => StrMatch::Suffix(text[1..].to_owned()),
            (false, true) => StrMatch::Prefix(text[..text.len() - 1].to_owned()),
            (false, false) => StrMatch::Exact(text.to_owned()),
        }
    }

    /// Text every matching value contains, if any.
    pub(crate) fn required_text(&self) -> Option<&str> {
        match self {
            StrMatch::Any => None,
            StrMatch::Exact(t)
            | StrMatch::Prefix(t)
            | StrMatch::Suffix(t)
            | StrMatch::Contains(t) => (!t.is_empty()).then_some(t.as_str()),
        }
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            StrMatch::Any => true,
            StrMatch::Exact(t) => s == t,
            StrMatch::Prefix(t) => s.starts_with(t.as_str()),
            StrMatch::Suffix(t) => s.ends_with(t.as_str()),
            StrMatch::Contains(t) => s.contains(t.as_str()),
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub(crate) enum Literal {
    /// A string, possibly with wildcards. Quoting does not disable the wildcard.
    Str(StrMatch),
    /// A bare number; `text` is kept for comparisons against strings.
    Num { value: f64, text: String },
    /// `%regex%`: an unanchored search in the value.
    Regex(Regex),
}

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Literal::Str(a), Literal::Str(b)) => a == b,
            (Literal::Num { value: a, .. }, Literal::Num { value: b, .. }) => a == b,
            (Literal::Regex(a), Literal::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// Writes `text` as a `"…"` string with `\"` and `\\` escaped.
pub(crate) fn write_quoted(f: &mut std::fmt::Formatter<'_>, text: &str) -> std::fmt::Result {
    f.write_str("\"")?;
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{ch}")?;
    }
    f.write_str("\"")
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Num { text, .. } => f.write_str(text),
            Literal::Regex(re) => write!(f, "%{}%", re.as_str()),
            Literal::Str(m) => match m {
                StrMatch::Any => write_quoted(f, "*"),
                StrMatch::Exact(t) => write_quoted(f, t),
                StrMatch::Prefix(t) => write_quoted(f, &format!("{t}*")),
                StrMatch::Suffix(t) => write_quoted(f, &format!("*{t}")),
                StrMatch::Contains(t) => write_quoted(f, &format!("*{t}*")),
            },
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub(crate) fn parse(c: &mut Cursor<'_>) -> Option<Op> {
        for (s, op) in [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if c.eat(s) {
                return Some(op);
            }
        }
        None
    }

    pub(crate) fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::Ne)
    }

    pub(crate) fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Lt => ordering == Less,
            Op::Le => ordering != Greater,
            Op::Gt => ordering == Greater,
            Op::Ge => ordering != Less,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// Parses AWS's NUMBER: optional sign, digits with an optional fraction (or a fraction
/// alone), optional exponent. The whole text must be the number.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    text.trim_start_matches('+').parse().ok()
}

/// Reads a condition's value: `"quoted"`, `%regex%`, or a bare run ended by a blank or
/// one of `stop`. Operators other than `=`/`!=` need a number.
pub(crate) fn parse_literal(
    c: &mut Cursor<'_>,
    op: Op,
    stop: &[&str],
) -> Result<(Literal, bool), PatternError> {
    let start = c.pos;
    let (literal, is_regex) = match c.peek() {
        Some('"') => (Literal::Str(StrMatch::from_text(&c.quoted()?)), false),
        Some('%') => (Literal::Regex(c.regex()?), true),
        _ => {
            while let Some(ch) = c.peek() {
                if ch.is_whitespace() || stop.iter().any(|s| c.rest().starts_with(s)) {
                    break;
                }
                c.bump();
            }
            let text = &c.text[start..c.pos];
            if text.is_empty() {
                return Err(c.error_at(start, "expected a value after the operator"));
            }
            match parse_number(text) {
                Some(value) => (
                    Literal::Num {
                        value,
                        text: text.to_owned(),
                    },
                    false,
                ),
                None => (Literal::Str(StrMatch::from_text(text)), false),
            }
        }
    };
    if !op.is_equality() && !matches!(literal, Literal::Num { .. }) {
        return Err(c.error_at(start, format!("operator {} needs a number", op.as_str())));
    }
    Ok((literal, is_regex))
}

/// Compares a textual value (a delimited field, or a JSON string) with a literal.
pub(crate) fn compare_text(op: Op, literal: &Literal, value: &str) -> bool {
    match literal {
        Literal::Str(m) => (op == Op::Eq) == m.matches(value),
        Literal::Regex(re) => (op == Op::Eq) == re.is_match(value.as_bytes()),
        Literal::Num { value: n, text } => match parse_number(value) {
            Some(v) => v.partial_cmp(n).is_some_and(|o| op.holds(o)),
            // A non-numeric value: only equality against the literal's text applies.
            None if op.is_equality() => (op == Op::Eq) == (value == text),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_aws_grammar() {
        for (t, v) in [
            ("1000", 1000.0),
            ("+1000", 1000.0),
            ("-5", -5.0),
            ("55.5", 55.5),
            ("10e3", 10e3),
            ("1e-3", 1e-3),
            ("1e+3", 1e3),
            (".5", 0.5),
        ] {
            assert_eq!(parse_number(t), Some(v), "{t}");
        }
        for t in ["", "-", "1e", "abc", "1.2.3", "123.123.*", "0x10", "1 "] {
            assert_eq!(parse_number(t), None, "{t}");
        }
    }

    #[test]
    fn wildcards_only_at_the_ends() {
        assert!(StrMatch::from_text("*Event").matches("PutEvent"));
        assert!(StrMatch::from_text("Event*").matches("EventId"));
        assert!(!StrMatch::from_text("Ev*ent").matches("Event"));
        assert!(StrMatch::from_text("Ev*ent").matches("Ev*ent"));
        assert!(StrMatch::from_text("*-*").matches("a-b"));
        assert!(StrMatch::from_text("*").matches(""));
    }

    #[test]
    fn regex_subset() {
        assert!(compile_regex(r"\d{1,3}\.\d{1,3}").is_ok());
        assert!(compile_regex("^shutting down").is_ok());
        assert!(compile_regex("something!").is_err());
        assert!(compile_regex("(ERROR|WARN)").is_err());
        assert!(compile_regex("héllo").is_err());
        assert!(compile_regex("[unclosed").is_err());
        assert!(compile_regex(r"\x3A").unwrap().is_match(b"a:b"));
    }
}
