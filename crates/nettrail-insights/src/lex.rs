//! The lexer of the query language: tokens read on demand from the query's characters,
//! because `/` opens a regular expression only where an operand is expected and is a
//! division elsewhere; and AWS's error text for a token it does not expect
//! (`unexpected symbol found X at line L and position P`).

use crate::ast::{Period, PeriodUnit};
use crate::error::QueryError;

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A name or keyword (`fields`, `srcAddr`, `@timestamp`).
    Ident(String),
    /// A backticked name.
    Backtick(String),
    /// A quoted string, unescaped.
    Str(String),
    /// A number.
    Num(f64),
    /// A time period (`5m`).
    Period(Period),
    /// A `/regex/`'s body.
    Regex(String),
    /// An operator or punctuation.
    Op(&'static str),
    /// The end of the query.
    End,
}

/// The query's characters and where reading is.
pub(crate) struct Lexer {
    pub(crate) chars: Vec<char>,
    pub(crate) pos: usize,
    /// Where the last token read ends.
    pub(crate) last_end: usize,
}

impl Lexer {
    pub(crate) fn new(text: &str) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            last_end: 0,
        }
    }

    pub(crate) fn skip_space(&mut self) {
        while let Some(&c) = self.chars.get(self.pos) {
            if c.is_whitespace() {
                self.pos += 1;
            } else if c == '#' {
                while self.chars.get(self.pos).is_some_and(|&c| c != '\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The next token and where it ends, without consuming it. `operand`: a `/` here
    /// opens a regular expression.
    pub(crate) fn lex(&mut self, operand: bool) -> Result<(Token, usize, usize), QueryError> {
        self.skip_space();
        let start = self.pos;
        let Some(&c) = self.chars.get(start) else {
            return Ok((Token::End, start, start));
        };
        let at = |i: usize| self.chars.get(i).copied();
        let ident_start = |c: char| c.is_alphabetic() || c == '_' || c == '@';
        let ident_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '@');
        if c == '@' && at(start + 1) == Some('`') {
            let (name, end) = self.quoted(start + 1, '`')?;
            return Ok((Token::Backtick(format!("@{name}")), start, end));
        }
        if ident_start(c) {
            let mut end = start + 1;
            while at(end).is_some_and(ident_char) {
                end += 1;
            }
            let word: String = self.chars[start..end].iter().collect();
            return Ok((Token::Ident(word), start, end));
        }
        if c == '`' {
            let (name, end) = self.quoted(start, '`')?;
            return Ok((Token::Backtick(name), start, end));
        }
        if c == '"' || c == '\'' {
            let (s, end) = self.quoted(start, c)?;
            return Ok((Token::Str(s), start, end));
        }
        if c.is_ascii_digit() {
            let mut end = start;
            while at(end).is_some_and(|c| c.is_ascii_digit()) {
                end += 1;
            }
            if at(end) == Some('.') && at(end + 1).is_some_and(|c| c.is_ascii_digit()) {
                end += 1;
                while at(end).is_some_and(|c| c.is_ascii_digit()) {
                    end += 1;
                }
            }
            let number: String = self.chars[start..end].iter().collect();
            if at(end).is_some_and(|c| c.is_alphabetic()) {
                let mut unit_end = end;
                while at(unit_end).is_some_and(|c| c.is_alphabetic()) {
                    unit_end += 1;
                }
                let unit: String = self.chars[end..unit_end].iter().collect();
                let Some(unit) = period_unit(&unit) else {
                    return Err(self.unexpected(&unit, end));
                };
                let count = number
                    .parse::<i64>()
                    .map_err(|_| self.unexpected(&number, start))?;
                return Ok((Token::Period(Period { count, unit }), start, unit_end));
            }
            let value = number
                .parse()
                .map_err(|_| self.unexpected(&number, start))?;
            return Ok((Token::Num(value), start, end));
        }
        if c == '/' && operand {
            let mut end = start + 1;
            let mut body = String::new();
            loop {
                match at(end) {
                    None => {
                        return Err(QueryError::at(
                            format!(
                                "unterminated regular expression at line {} and position {}",
                                self.line(start),
                                self.column(start)
                            ),
                            start,
                            end,
                        ))
                    }
                    Some('\\') if at(end + 1) == Some('/') => {
                        body.push('/');
                        end += 2;
                    }
                    Some('\\') => {
                        body.push('\\');
                        if let Some(n) = at(end + 1) {
                            body.push(n);
                        }
                        end += 2;
                    }
                    Some('/') => break,
                    Some(other) => {
                        body.push(other);
                        end += 1;
                    }
                }
            }
            return Ok((Token::Regex(body), start, end + 1));
        }
        const OPS: [&str; 20] = [
            "!=", "<=", ">=", "=~", "=", "<", ">", "+", "-", "*", "/", "%", "^", "!", "|", ",",
            "(", ")", "[", "]",
        ];
        const MORE: [&str; 3] = [".", ":", "$"];
        for op in OPS.iter().chain(&MORE) {
            let len = op.chars().count();
            if self.chars[start..].iter().take(len).copied().eq(op.chars()) {
                return Ok((Token::Op(op), start, start + len));
            }
        }
        Err(self.unexpected(&c.to_string(), start))
    }

    /// A string or backticked name starting at `start`: its text and where it ends.
    pub(crate) fn quoted(&self, start: usize, quote: char) -> Result<(String, usize), QueryError> {
        let mut out = String::new();
        let mut i = start + 1;
        loop {
            match self.chars.get(i) {
                None => {
                    return Err(QueryError::at(
                        format!(
                            "unterminated {} at line {} and position {}",
                            if quote == '`' { "name" } else { "string" },
                            self.line(start),
                            self.column(start)
                        ),
                        start,
                        i,
                    ))
                }
                Some('\\') if quote != '`' => {
                    if let Some(&n) = self.chars.get(i + 1) {
                        out.push(n);
                    }
                    i += 2;
                }
                Some(&c) if c == quote => return Ok((out, i + 1)),
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
    }

    pub(crate) fn peek(&mut self, operand: bool) -> Result<Token, QueryError> {
        let saved = self.pos;
        let token = self.lex(operand).map(|(t, _, _)| t);
        self.pos = saved;
        token
    }

    pub(crate) fn next(&mut self, operand: bool) -> Result<(Token, usize), QueryError> {
        let (token, start, end) = self.lex(operand)?;
        self.pos = end;
        self.last_end = end;
        Ok((token, start))
    }

    pub(crate) fn line(&self, at: usize) -> usize {
        1 + self.chars[..at.min(self.chars.len())]
            .iter()
            .filter(|&&c| c == '\n')
            .count()
    }

    pub(crate) fn column(&self, at: usize) -> usize {
        let at = at.min(self.chars.len());
        let line_start = self.chars[..at]
            .iter()
            .rposition(|&c| c == '\n')
            .map_or(0, |i| i + 1);
        at - line_start + 1
    }

    pub(crate) fn unexpected(&self, symbol: &str, at: usize) -> QueryError {
        QueryError::at(
            format!(
                "unexpected symbol found {symbol} at line {} and position {}",
                self.line(at),
                self.column(at)
            ),
            at,
            at + symbol.chars().count().max(1),
        )
    }

    /// An error about the next token.
    pub(crate) fn unexpected_next(&mut self, operand: bool) -> QueryError {
        match self.lex(operand) {
            Ok((token, start, end)) => {
                let text: String = self.chars[start..end].iter().collect();
                let text = if token == Token::End {
                    "<EOF>".to_owned()
                } else {
                    text
                };
                self.unexpected(&text, start)
            }
            Err(e) => e,
        }
    }

    pub(crate) fn accept_op(&mut self, op: &str) -> Result<bool, QueryError> {
        if self.peek(false)? == Token::Op(leak(op)) {
            self.next(false)?;
            return Ok(true);
        }
        Ok(false)
    }

    pub(crate) fn expect_op(&mut self, op: &str, operand: bool) -> Result<(), QueryError> {
        if self.peek(operand)? == Token::Op(leak(op)) {
            self.next(operand)?;
            return Ok(());
        }
        Err(self.unexpected_next(operand))
    }

    pub(crate) fn accept_keyword(&mut self, word: &str) -> Result<bool, QueryError> {
        if let Token::Ident(w) = self.peek(false)? {
            if w.eq_ignore_ascii_case(word) {
                self.next(false)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) fn text(&self, start: usize, end: usize) -> String {
        self.chars[start..end]
            .iter()
            .collect::<String>()
            .trim()
            .to_owned()
    }
}

pub(crate) fn is_keyword(word: &str) -> bool {
    ["and", "or", "not", "like", "in", "as", "by"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
}

fn period_unit(unit: &str) -> Option<PeriodUnit> {
    let unit = unit.to_ascii_lowercase();
    let singular = |long: &str| unit == long || unit.strip_suffix('s') == Some(long);
    Some(match unit.as_str() {
        "ms" | "msec" => PeriodUnit::Millisecond,
        "s" | "sec" => PeriodUnit::Second,
        "m" | "min" => PeriodUnit::Minute,
        "h" | "hr" => PeriodUnit::Hour,
        "d" => PeriodUnit::Day,
        "w" => PeriodUnit::Week,
        "mo" | "mon" => PeriodUnit::Month,
        "q" | "qtr" => PeriodUnit::Quarter,
        "y" | "yr" => PeriodUnit::Year,
        _ if singular("millisecond") || singular("msec") => PeriodUnit::Millisecond,
        _ if singular("second") || singular("sec") => PeriodUnit::Second,
        _ if singular("minute") || singular("min") => PeriodUnit::Minute,
        _ if singular("hour") || singular("hr") => PeriodUnit::Hour,
        _ if singular("day") => PeriodUnit::Day,
        _ if singular("week") => PeriodUnit::Week,
        _ if singular("month") || singular("mon") => PeriodUnit::Month,
        _ if singular("quarter") || singular("qtr") => PeriodUnit::Quarter,
        _ if singular("year") || singular("yr") => PeriodUnit::Year,
        _ => return None,
    })
}

/// The `&'static str` of an operator, to compare tokens.
fn leak(op: &str) -> &'static str {
    const ALL: [&str; 23] = [
        "!=", "<=", ">=", "=~", "=", "<", ">", "+", "-", "*", "/", "%", "^", "!", "|", ",", "(",
        ")", "[", "]", ".", ":", "$",
    ];
    ALL.iter().find(|o| **o == op).copied().unwrap_or("")
}
