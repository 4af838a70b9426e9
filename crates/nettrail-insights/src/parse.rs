//! From query text to a [`Query`]: a recursive-descent parser of the Logs Insights
//! grammar (`shared/specs/logs-insights.md` §2) over the tokens of [`crate::lex`], with
//! the command order AWS enforces (what may follow `dedup`, no `stats` after `sort` or
//! `limit`, at most ten `stats`) and the checks of [`crate::checks`].

use regex::Regex;

use crate::ast::{
    BinaryOp, Command, Expr, Extraction, Key, LikePattern, Projection, Query, Source,
};
use crate::checks::{contains_aggregate, only_fields, tree_depth, Checks};
use crate::error::QueryError;
use crate::lex::{is_keyword, Lexer, Token};
use crate::value::Value;

pub use crate::checks::AGGREGATES;

/// The most `stats` commands a query may have (Standard log class).
pub const MAX_STATS: usize = 10;

/// How deeply expressions may nest: parsing and evaluating recurse, and a hostile
/// query of ten thousand parentheses must not overflow a thread's stack.
pub const MAX_DEPTH: usize = 64;

/// How deep an expression's tree may be, operators included (`a or b or c …`).
pub const MAX_TREE_DEPTH: usize = 512;

/// Commands of the language that nettrail does not run yet.
const UNSUPPORTED: [&str; 22] = [
    "pattern",
    "diff",
    "anomaly",
    "lookup",
    "join",
    "expand",
    "relevantfields",
    "addtotals",
    "accum",
    "autoregress",
    "filldown",
    "fillmissing",
    "outlier",
    "sessionize",
    "countfrequent",
    "count_frequent",
    "cidrlookup",
    "appendcols",
    "logcompare",
    "estimate",
    "json",
    "tail",
];

/// Parses `text` as a Logs Insights query.
pub fn parse_query(text: &str) -> Result<Query, QueryError> {
    let mut parser = Parser {
        lexer: Lexer::new(text),
        depth: 0,
    };
    parser.query()
}

struct Parser {
    lexer: Lexer,
    /// Expressions being parsed, one inside the other.
    depth: usize,
}

// The parser reads its tokens through its lexer's methods (`self.peek(…)`,
// `self.next(…)`, `self.pos`), which keeps the grammar's functions readable.
impl std::ops::Deref for Parser {
    type Target = Lexer;

    fn deref(&self) -> &Lexer {
        &self.lexer
    }
}

impl std::ops::DerefMut for Parser {
    fn deref_mut(&mut self) -> &mut Lexer {
        &mut self.lexer
    }
}

impl Parser {
    // ---- commands ----

    fn query(&mut self) -> Result<Query, QueryError> {
        let mut commands = Vec::new();
        let mut source = None;
        let mut state = Checks::default();
        if let Token::Ident(word) = self.peek(false)? {
            if word.eq_ignore_ascii_case("source") {
                self.next(false)?;
                source = Some(self.source()?);
                if self.peek(false)? != Token::End {
                    self.expect_op("|", false)?;
                }
            }
        }
        loop {
            if self.peek(false)? == Token::End {
                if commands.is_empty() && source.is_none() {
                    return Err(QueryError::at("the query is empty", 0, 0));
                }
                break;
            }
            let command = self.command(&mut state)?;
            commands.extend(command);
            match self.peek(false)? {
                Token::End => break,
                Token::Op("|") => {
                    self.next(false)?;
                }
                _ => return Err(self.unexpected_next(false)),
            }
        }
        Ok(Query { commands, source })
    }

    fn source(&mut self) -> Result<Source, QueryError> {
        let (token, at) = self.next(false)?;
        let Token::Ident(function) = token else {
            return Err(self.unexpected("SOURCE", at));
        };
        if !function.eq_ignore_ascii_case("loggroups") {
            return Err(QueryError::at(
                format!("SOURCE {function}(…) is not supported by nettrail yet; use logGroups(namePrefix: [...])"),
                at,
                self.last_end,
            ));
        }
        self.expect_op("(", false)?;
        let mut source = Source::default();
        while !self.accept_op(")")? {
            let (key, at) = self.next(false)?;
            let Token::Ident(key) = key else {
                return Err(self.unexpected_next(false));
            };
            self.expect_op(":", false)?;
            self.expect_op("[", false)?;
            let mut values = Vec::new();
            while !self.accept_op("]")? {
                match self.next(false)? {
                    (Token::Str(s), _) => values.push(s),
                    (_, at) => return Err(self.unexpected("value", at)),
                }
                self.accept_op(",")?;
            }
            match key.to_ascii_lowercase().as_str() {
                "nameprefix" => source.name_prefixes = values,
                "class" | "loggroupclass" | "accountidentifier" | "accountidentifiers" => {}
                _ => return Err(self.unexpected(&key, at)),
            }
            self.accept_op(",")?;
        }
        Ok(source)
    }

    fn command(&mut self, checks: &mut Checks) -> Result<Option<Command>, QueryError> {
        let (token, at) = self.next(false)?;
        let word = match &token {
            Token::Ident(w) => w.to_ascii_lowercase(),
            Token::End => return Err(self.unexpected("<EOF>", at)),
            _ => {
                let text = self.text(at, self.last_end);
                return Err(self.unexpected(&text, at));
            }
        };
        let original = self.text(at, self.last_end);
        if checks.after_dedup && word != "limit" && word != "head" {
            return Err(self.unexpected(&original, at));
        }
        let command = match word.as_str() {
            "fields" => {
                let list = self.projections(checks)?;
                checks.define(list.iter().map(|p| p.name.clone()));
                Command::Fields(list)
            }
            "display" => {
                let list = self.projections(checks)?;
                checks.define(list.iter().map(|p| p.name.clone()));
                Command::Display(list)
            }
            "filter" | "where" | "filterindex" => {
                let e = self.expr()?;
                checks.check(&e, &self.lexer, at, false)?;
                Command::Filter(e)
            }
            "stats" => self.stats(checks, at)?,
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let (t, key_at) = self.next(false)?;
                    let name = match t {
                        Token::Ident(n) | Token::Backtick(n) => n,
                        _ => return Err(self.unexpected(&self.text(key_at, self.last_end), key_at)),
                    };
                    if self.peek(false)? == Token::Op("(") {
                        return Err(self.unexpected_next(false));
                    }
                    checks.check(&Expr::Field(name.clone()), &self.lexer, key_at, false)?;
                    let descending = if self.accept_keyword("asc")? {
                        false
                    } else {
                        // Descending unless `asc` is given, as AWS sorts.
                        self.accept_keyword("desc")?;
                        true
                    };
                    keys.push((name, descending));
                    if !self.accept_op(",")? {
                        break;
                    }
                }
                checks.ordered_before_stats = true;
                Command::Sort(keys)
            }
            "limit" | "head" => {
                self.accept_keyword("any")?;
                match self.next(false)? {
                    (Token::Num(n), _) if n >= 1.0 && n.fract() == 0.0 => {
                        checks.ordered_before_stats = true;
                        Command::Limit(n as usize)
                    }
                    (_, at) => return Err(self.unexpected(&self.text(at, self.last_end), at)),
                }
            }
            "parse" => self.parse_command(checks, at)?,
            "dedup" => {
                let mut fields = Vec::new();
                loop {
                    match self.next(false)? {
                        (Token::Ident(n) | Token::Backtick(n), _) => fields.push(n),
                        (_, at) => return Err(self.unexpected(&self.text(at, self.last_end), at)),
                    }
                    if !self.accept_op(",")? {
                        break;
                    }
                }
                checks.after_dedup = true;
                Command::Dedup(fields)
            }
            "unnest" => {
                let list = self.expr()?;
                checks.check(&list, &self.lexer, at, false)?;
                if !self.accept_keyword("into")? {
                    return Err(self.unexpected_next(false));
                }
                let into = self.field_name()?;
                checks.define([into.clone()]);
                Command::Unnest { list, into }
            }
            // No data protection masks here: what is stored is what is shown.
            "unmask" => {
                if !matches!(self.peek(false)?, Token::Op("|") | Token::End) {
                    self.expr()?;
                }
                return Ok(None);
            }
            w if UNSUPPORTED.contains(&w) => {
                return Err(QueryError::at(
                    format!("the `{original}` command is not supported by nettrail yet"),
                    at,
                    self.last_end,
                ))
            }
            _ => return Err(self.unexpected(&original, at)),
        };
        Ok(Some(command))
    }

    fn field_name(&mut self) -> Result<String, QueryError> {
        match self.next(false)? {
            (Token::Ident(n) | Token::Backtick(n), _) => Ok(n),
            (_, at) => Err(self.unexpected(&self.text(at, self.last_end), at)),
        }
    }

    fn projections(&mut self, checks: &Checks) -> Result<Vec<Projection>, QueryError> {
        let mut list = Vec::new();
        loop {
            let start = {
                self.skip_space();
                self.pos
            };
            let expr = self.expr()?;
            checks.check(&expr, &self.lexer, start, false)?;
            let name = self.alias(start, &expr)?;
            list.push(Projection { expr, name });
            if !self.accept_op(",")? {
                return Ok(list);
            }
        }
    }

    /// `as NAME` if given, else the expression's name: a field's own name, or the
    /// source text.
    fn alias(&mut self, start: usize, expr: &Expr) -> Result<String, QueryError> {
        let end = self.last_end;
        if self.accept_keyword("as")? {
            return self.field_name();
        }
        Ok(match expr {
            Expr::Field(name) => name.clone(),
            _ => self.text(start, end),
        })
    }

    fn stats(&mut self, checks: &mut Checks, at: usize) -> Result<Command, QueryError> {
        checks.stats += 1;
        if checks.stats > MAX_STATS {
            return Err(QueryError::at(
                format!("a query may have at most {MAX_STATS} stats commands"),
                at,
                self.last_end,
            ));
        }
        if checks.ordered_before_stats {
            // sort and limit may only follow the last stats.
            return Err(self.unexpected("stats", at));
        }
        let mut items = Vec::new();
        let mut defined: Vec<String> = Vec::new();
        loop {
            self.skip_space();
            let start = self.pos;
            let expr = self.expr()?;
            let mut inner = checks.clone();
            inner.define(defined.iter().cloned());
            inner.check(&expr, &self.lexer, start, true)?;
            if !contains_aggregate(&expr) && !only_fields(&expr, &defined) {
                return Err(QueryError::at(
                    format!(
                        "stats needs an aggregate function in `{}`",
                        self.text(start, self.last_end)
                    ),
                    start,
                    self.last_end,
                ));
            }
            let name = self.alias(start, &expr)?;
            defined.push(name.clone());
            items.push(Projection { expr, name });
            if !self.accept_op(",")? {
                break;
            }
        }
        let mut by = Vec::new();
        if self.accept_keyword("by")? {
            loop {
                self.skip_space();
                let start = self.pos;
                let expr = self.expr()?;
                checks.check(&expr, &self.lexer, start, false)?;
                let name = self.alias(start, &expr)?;
                by.push(Projection { expr, name });
                if !self.accept_op(",")? {
                    break;
                }
            }
        }
        checks.known = Some(by.iter().map(|p| p.name.clone()).chain(defined).collect());
        Ok(Command::Stats { items, by })
    }

    fn parse_command(&mut self, checks: &mut Checks, at: usize) -> Result<Command, QueryError> {
        let source = match self.peek(true)? {
            Token::Str(_) | Token::Regex(_) => Expr::Field("@message".to_owned()),
            _ => {
                let e = self.postfix()?;
                checks.check(&e, &self.lexer, at, false)?;
                e
            }
        };
        let (token, pattern_at) = self.next(true)?;
        let extraction = match token {
            Token::Str(glob) => {
                if !self.accept_keyword("as")? {
                    return Err(self.unexpected_next(false));
                }
                let mut names = vec![self.field_name()?];
                while self.accept_op(",")? {
                    names.push(self.field_name()?);
                }
                let stars = glob.matches('*').count();
                if stars != names.len() {
                    return Err(QueryError::at(
                        format!(
                            "the pattern has {stars} `*` but {} names follow `as`",
                            names.len()
                        ),
                        pattern_at,
                        self.last_end,
                    ));
                }
                Extraction {
                    regex: glob_regex(&glob)
                        .map_err(|e| QueryError::at(e.to_string(), pattern_at, self.last_end))?,
                    names,
                }
            }
            Token::Regex(body) => {
                let regex = compile_regex(&body)
                    .map_err(|e| QueryError::at(e, pattern_at, self.last_end))?;
                let names: Vec<String> =
                    regex.capture_names().flatten().map(str::to_owned).collect();
                if names.is_empty() {
                    return Err(QueryError::at(
                        "a parse regular expression needs named groups: (?<name>...)",
                        pattern_at,
                        self.last_end,
                    ));
                }
                Extraction { regex, names }
            }
            _ => return Err(self.unexpected(&self.text(pattern_at, self.last_end), pattern_at)),
        };
        checks.define(extraction.names.iter().cloned());
        Ok(Command::Parse { source, extraction })
    }

    // ---- expressions ----

    fn expr(&mut self) -> Result<Expr, QueryError> {
        self.depth += 1;
        let result = if self.depth > MAX_DEPTH {
            Err(QueryError::at(
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
                self.pos,
                self.pos + 1,
            ))
        } else {
            self.or_expr()
        };
        self.depth -= 1;
        // `1+1+…+1` nests by operators, not parentheses: a tree as deep as the query
        // is long would overflow evaluation instead.
        if let Ok(e) = &result {
            if self.depth == 0 && tree_depth(e) > MAX_TREE_DEPTH {
                return Err(QueryError::at(
                    format!("the expression nests more than {MAX_TREE_DEPTH} operations deep"),
                    self.pos,
                    self.pos + 1,
                ));
            }
        }
        result
    }

    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and_expr()?;
        while self.accept_keyword("or")? {
            let right = self.and_expr()?;
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.not_expr()?;
        while self.accept_keyword("and")? {
            let right = self.not_expr()?;
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, QueryError> {
        if self.accept_keyword("not")? || self.accept_op("!")? {
            return Ok(Expr::Not(Box::new(self.nested(Self::not_expr)?)));
        }
        self.rel_expr()
    }

    fn rel_expr(&mut self) -> Result<Expr, QueryError> {
        let left = self.add_expr()?;
        let op = match self.peek(false)? {
            Token::Op("=") => Some(BinaryOp::Eq),
            Token::Op("!=") => Some(BinaryOp::Ne),
            Token::Op("<") => Some(BinaryOp::Lt),
            Token::Op("<=") => Some(BinaryOp::Le),
            Token::Op(">") => Some(BinaryOp::Gt),
            Token::Op(">=") => Some(BinaryOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.next(false)?;
            let right = self.add_expr()?;
            return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
        }
        if self.accept_op("=~")? {
            let pattern = self.like_pattern()?;
            return Ok(Expr::Like(Box::new(left), pattern, false));
        }
        let saved = self.pos;
        let negated = self.accept_keyword("not")?;
        if self.accept_keyword("like")? {
            let pattern = self.like_pattern()?;
            return Ok(Expr::Like(Box::new(left), pattern, negated));
        }
        if self.accept_keyword("in")? {
            self.expect_op("[", true)?;
            let list = self.list_items()?;
            return Ok(Expr::In(Box::new(left), list, negated));
        }
        if negated {
            self.pos = saved;
            return Err(self.unexpected_next(false));
        }
        Ok(left)
    }

    fn like_pattern(&mut self) -> Result<LikePattern, QueryError> {
        match self.next(true)? {
            (Token::Str(s), _) => Ok(LikePattern::Text(s)),
            (Token::Regex(body), at) => Ok(LikePattern::Regex(
                compile_regex(&body).map_err(|e| QueryError::at(e, at, self.last_end))?,
            )),
            (Token::End, at) => Err(self.unexpected("<EOF>", at)),
            (_, at) => Err(self.unexpected(&self.text(at, self.last_end), at)),
        }
    }

    /// Items up to the closing `]` (the `[` is read).
    fn list_items(&mut self) -> Result<Vec<Expr>, QueryError> {
        let mut items = Vec::new();
        if self.accept_op("]")? {
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            if self.accept_op("]")? {
                return Ok(items);
            }
            self.expect_op(",", false)?;
        }
    }

    fn add_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.mul_expr()?;
        loop {
            let op = match self.peek(false)? {
                Token::Op("+") => BinaryOp::Add,
                Token::Op("-") => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.next(false)?;
            let right = self.mul_expr()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn mul_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.pow_expr()?;
        loop {
            let op = match self.peek(false)? {
                Token::Op("*") => BinaryOp::Mul,
                Token::Op("/") => BinaryOp::Div,
                Token::Op("%") => BinaryOp::Rem,
                _ => return Ok(left),
            };
            self.next(false)?;
            let right = self.pow_expr()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn pow_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.accept_op("^")? {
            let right = self.unary()?;
            left = Expr::Binary(BinaryOp::Pow, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.peek(true)? == Token::Op("-") {
            self.next(true)?;
            return Ok(Expr::Negate(Box::new(self.nested(Self::unary)?)));
        }
        self.postfix()
    }

    /// `parse` one level deeper, within [`MAX_DEPTH`].
    fn nested(
        &mut self,
        parse: fn(&mut Parser) -> Result<Expr, QueryError>,
    ) -> Result<Expr, QueryError> {
        self.depth += 1;
        let result = if self.depth > MAX_DEPTH {
            Err(QueryError::at(
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
                self.pos,
                self.pos + 1,
            ))
        } else {
            parse(self)
        };
        self.depth -= 1;
        result
    }

    fn postfix(&mut self) -> Result<Expr, QueryError> {
        let mut expr = self.primary()?;
        loop {
            // Only directly after the value: `js.users[1]`, not `x [1]`.
            let adjacent = self.chars.get(self.pos).copied();
            match adjacent {
                Some('[') if matches!(expr, Expr::Field(_) | Expr::Access(..)) => {
                    self.next(false)?;
                    let index = match self.next(false)? {
                        (Token::Num(n), _) if n >= 0.0 && n.fract() == 0.0 => n as usize,
                        (_, at) => return Err(self.unexpected(&self.text(at, self.last_end), at)),
                    };
                    self.expect_op("]", false)?;
                    expr = Expr::Access(Box::new(expr), Key::Index(index));
                }
                Some('.') if matches!(expr, Expr::Field(_) | Expr::Access(..)) => {
                    self.pos += 1;
                    let key = match self.next(false)? {
                        (Token::Ident(n) | Token::Backtick(n), _) => n,
                        (_, at) => return Err(self.unexpected(&self.text(at, self.last_end), at)),
                    };
                    // `a.b.c` after an index is one name per dot.
                    for part in key.split('.').filter(|p| !p.is_empty()) {
                        expr = Expr::Access(Box::new(expr), Key::Name(part.to_owned()));
                    }
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let (token, at) = self.next(true)?;
        match token {
            Token::Num(n) => Ok(Expr::Literal(Value::Num(n))),
            Token::Str(s) => Ok(Expr::Literal(Value::text(&s))),
            Token::Period(p) => Ok(Expr::Period(p)),
            Token::Regex(body) => Ok(Expr::Literal(Value::text(&body))),
            Token::Backtick(name) => Ok(Expr::Field(name)),
            Token::Ident(word) => {
                if self.chars.get(self.pos) == Some(&'(') {
                    return self.call(word);
                }
                if word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false") {
                    return Ok(Expr::Literal(Value::Bool(
                        word.eq_ignore_ascii_case("true"),
                    )));
                }
                if is_keyword(&word) {
                    return Err(self.unexpected(&word, at));
                }
                // `js.` followed by a backticked key.
                if let Some(base) = word.strip_suffix('.') {
                    if self.chars.get(self.pos) == Some(&'`') {
                        let (key, _) = self.next(false)?;
                        if let Token::Backtick(key) = key {
                            return Ok(Expr::Access(
                                Box::new(Expr::Field(base.to_owned())),
                                Key::Name(key),
                            ));
                        }
                    }
                }
                Ok(Expr::Field(word))
            }
            Token::Op("(") => {
                let e = self.expr()?;
                self.expect_op(")", false)?;
                Ok(e)
            }
            Token::Op("[") => Ok(Expr::List(self.list_items()?)),
            Token::End => Err(self.unexpected("<EOF>", at)),
            _ => Err(self.unexpected(&self.text(at, self.last_end), at)),
        }
    }

    fn call(&mut self, name: String) -> Result<Expr, QueryError> {
        self.expect_op("(", false)?;
        let mut args = Vec::new();
        if self.peek(true)? == Token::Op("*") {
            self.next(true)?;
            self.expect_op(")", false)?;
            return Ok(Expr::Call {
                name: name.to_ascii_lowercase(),
                args,
            });
        }
        if !self.accept_op(")")? {
            loop {
                args.push(self.expr()?);
                if self.accept_op(")")? {
                    break;
                }
                self.expect_op(",", false)?;
            }
        }
        Ok(Expr::Call {
            name: name.to_ascii_lowercase(),
            args,
        })
    }
}

/// Compiles a query regex; its error as text.
pub(crate) fn compile_regex(body: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(body)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression /{body}/: {e}"))
}

/// A `parse` glob as a regex: each `*` a lazy group, the last one greedy if it ends
/// the glob; searched, not anchored.
fn glob_regex(glob: &str) -> Result<Regex, regex::Error> {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut pattern = String::from("(?s)");
    for (i, part) in parts.iter().enumerate() {
        pattern.push_str(&regex::escape(part));
        if i + 1 < parts.len() {
            let last = i + 2 == parts.len() && parts[i + 1].is_empty();
            pattern.push_str(if last { "(.*)" } else { "(.*?)" });
        }
    }
    Regex::new(&pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaliased_expressions_are_named_by_their_text() {
        let q = parse_query("stats count(*), avg(bytes) by bin(5m)").unwrap();
        let Command::Stats { items, by } = &q.commands[0] else {
            panic!()
        };
        assert_eq!(items[0].name, "count(*)");
        assert_eq!(items[1].name, "avg(bytes)");
        assert_eq!(by[0].name, "bin(5m)");
    }

    #[test]
    fn errors_name_the_symbol_and_its_place() {
        let e = parse_query("fields @message\n| frobnicate x").unwrap_err();
        assert_eq!(
            e.message,
            "unexpected symbol found frobnicate at line 2 and position 3"
        );
        assert_eq!((e.start, e.end), (18, 28));
    }

    #[test]
    fn a_slash_divides_after_an_operand_and_opens_a_regex_before_one() {
        assert!(parse_query("fields bytes / packets as bpp").is_ok());
        assert!(parse_query("filter @message like /a|b/ | fields @message").is_ok());
        assert!(parse_query("filter @message like /abc").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("fields {}1{} as x", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_query(&deep).unwrap_err().message.contains("nests"));
        assert!(parse_query(&format!("filter {}x", "not ".repeat(5000))).is_err());
        assert!(parse_query(&format!("fields {}1 as x", "-".repeat(5000))).is_err());
        assert!(parse_query(&format!("fields {}1 as x", "(".repeat(30))).is_err());
        assert!(parse_query(&format!("fields 1{} as x", "+1".repeat(4000))).is_err());
        assert!(parse_query(&format!("fields 1{} as x", "+1".repeat(400))).is_ok());
    }
}
