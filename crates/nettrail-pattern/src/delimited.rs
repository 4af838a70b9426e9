//! Space-delimited patterns (spec §6): `[ip, user, ..., status_code = 4*, bytes > 1000]`.

use crate::error::PatternError;
use crate::value::{compare_text, parse_literal, Cursor, Literal, Op};

/// One slot of the pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Slot {
    /// `...`: any number of fields, possibly none.
    Ellipsis,
    /// A named field, with its conditions if any.
    Field {
        name: String,
        cond: Option<FieldExpr>,
    },
}

/// Conditions within one slot; `&&` binds tighter than `||`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldExpr {
    Or(Vec<FieldExpr>),
    And(Vec<FieldExpr>),
    Cmp(Op, Literal),
}

impl FieldExpr {
    fn holds(&self, value: &str) -> bool {
        match self {
            FieldExpr::Or(parts) => parts.iter().any(|p| p.holds(value)),
            FieldExpr::And(parts) => parts.iter().all(|p| p.holds(value)),
            FieldExpr::Cmp(op, literal) => compare_text(*op, literal, value),
        }
    }
}

/// A condition every event a space-delimited pattern matches holds on one of its
/// fields (see [`FilterPattern::field_tests`](crate::FilterPattern::field_tests)).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldTest {
    /// The field, counted from 0 among the event's space-separated fields.
    pub field: usize,
    expr: FieldExpr,
}

impl FieldTest {
    /// Whether `value`, the field's text as the pattern sees it (without enclosing
    /// `""` or `[]`), passes.
    pub fn holds(&self, value: &str) -> bool {
        self.expr.holds(value)
    }
}

/// A compiled space-delimited pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct DelimitedPattern {
    pub(crate) slots: Vec<Slot>,
    /// How many slots are named fields (derived from `slots` once, at parse time).
    named: usize,
    /// Index of the `...` slot, if any.
    ellipsis: Option<usize>,
}

impl FieldExpr {
    fn write(&self, f: &mut std::fmt::Formatter<'_>, name: &str) -> std::fmt::Result {
        let join =
            |f: &mut std::fmt::Formatter<'_>, parts: &[FieldExpr], sep: &str| -> std::fmt::Result {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    part.write(f, name)?;
                }
                Ok(())
            };
        match self {
            FieldExpr::Or(parts) => join(f, parts, " || "),
            FieldExpr::And(parts) => join(f, parts, " && "),
            FieldExpr::Cmp(op, literal) => write!(f, "{name} {} {literal}", op.as_str()),
        }
    }
}

impl std::fmt::Display for DelimitedPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[")?;
        for (i, slot) in self.slots.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match slot {
                Slot::Ellipsis => f.write_str("...")?,
                Slot::Field { name, cond: None } => f.write_str(name)?,
                Slot::Field {
                    name,
                    cond: Some(cond),
                } => cond.write(f, name)?,
            }
        }
        f.write_str("]")
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

impl DelimitedPattern {
    pub(crate) fn parse(text: &str, regexes: &mut usize) -> Result<DelimitedPattern, PatternError> {
        let mut c = Cursor::new(text);
        c.skip_blanks();
        if !c.eat("[") {
            return Err(c.error("a space-delimited pattern starts with '['"));
        }
        let mut slots = Vec::new();
        loop {
            c.skip_blanks();
            if c.eat("]") {
                break;
            }
            if c.at_end() {
                return Err(c.error("expected ']' to close the pattern"));
            }
            let slot_start = c.pos;
            if c.eat("...") {
                if slots.iter().any(|s| matches!(s, Slot::Ellipsis)) {
                    return Err(c.error_at(
                        slot_start,
                        "Duplicate field '...': a pattern can hold one ellipsis",
                    ));
                }
                slots.push(Slot::Ellipsis);
            } else {
                let name = read_name(&mut c)?;
                c.skip_blanks();
                let cond = if matches!(c.peek(), Some('=' | '!' | '<' | '>')) {
                    Some(parse_or(&mut c, &name, regexes)?)
                } else {
                    None
                };
                slots.push(Slot::Field { name, cond });
            }
            c.skip_blanks();
            if c.eat(",") {
                continue;
            }
            if c.eat("]") {
                break;
            }
            return Err(c.error("expected ',' or ']'"));
        }
        c.skip_blanks();
        if !c.at_end() {
            return Err(c.error("unexpected text after the closing ']'"));
        }
        if slots.is_empty() {
            return Err(c.error_at(0, "a space-delimited pattern needs at least one field"));
        }
        let named = slots
            .iter()
            .filter(|s| matches!(s, Slot::Field { .. }))
            .count();
        let ellipsis = slots.iter().position(|s| matches!(s, Slot::Ellipsis));
        Ok(DelimitedPattern {
            slots,
            named,
            ellipsis,
        })
    }

    /// Which event field the `j`-th named slot takes, given `fields` event fields (at
    /// least as many as named slots). Fields before `...` bind from the left, fields after
    /// it from the right end (S3); without `...`, the last slot takes the rest of the line
    /// when the event has more fields than the pattern (S4).
    fn binding(&self, j: usize, fields: usize) -> Binding {
        let named = self.named;
        match self.ellipsis {
            Some(at) if j >= at => Binding::Field(fields - (named - j)),
            Some(_) => Binding::Field(j),
            None if j + 1 == named && fields > named => Binding::RestFrom(j),
            None => Binding::Field(j),
        }
    }

    /// The values bound to each named slot, in order, or `None` when the event does not
    /// have the fields the pattern needs.
    pub(crate) fn bind<'e>(
        &self,
        event: &'e str,
        fields: &[EventField<'e>],
    ) -> Option<Vec<&'e str>> {
        if fields.len() < self.named {
            return None;
        }
        let values = (0..self.named)
            .map(|j| match self.binding(j, fields.len()) {
                Binding::Field(i) => fields[i].value,
                Binding::RestFrom(i) => event[fields[i].start..].trim_end(),
            })
            .collect();
        Some(values)
    }

    pub(crate) fn matches(&self, event: &str) -> bool {
        // The hot path: field offsets go into a per-thread buffer that is reused, so
        // matching allocates nothing once the buffer has grown to the widest event.
        thread_local! {
            static SPANS: std::cell::RefCell<Vec<Span>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SPANS.with(|cell| {
            let mut spans = cell.borrow_mut();
            spans.clear();
            for_each_field(event, |value_start, value_end, start| {
                spans.push(Span {
                    value_start,
                    value_end,
                    start,
                })
            });
            if spans.len() < self.named {
                return false;
            }
            self.named().enumerate().all(|(j, (_, cond))| {
                let Some(cond) = cond else { return true };
                let value = match self.binding(j, spans.len()) {
                    Binding::Field(i) => spans[i].value(event),
                    Binding::RestFrom(i) => event[spans[i].start..].trim_end(),
                };
                cond.holds(value)
            })
        })
    }

    /// Literals every matching event contains: the strings that `=` conditions (not
    /// under `||`) require of a field. Field values are slices of the event, so these
    /// hold for the raw text.
    pub(crate) fn required_literals(&self, out: &mut Vec<String>) {
        fn walk(expr: &FieldExpr, out: &mut Vec<String>) {
            match expr {
                FieldExpr::Or(_) => {}
                FieldExpr::And(parts) => parts.iter().for_each(|p| walk(p, out)),
                FieldExpr::Cmp(Op::Eq, Literal::Str(m)) => {
                    out.extend(m.required_text().map(str::to_owned))
                }
                FieldExpr::Cmp(..) => {}
            }
        }
        for (_, cond) in self.named() {
            if let Some(cond) = cond {
                walk(cond, out);
            }
        }
    }

    /// What every matching event of exactly `width` fields holds field by field: the
    /// conditions of the named slots bound to one field each (a last slot that takes
    /// the rest of the line says nothing). Empty when no event of that width matches
    /// at all, as when it says nothing.
    pub(crate) fn field_tests(&self, width: usize) -> Vec<FieldTest> {
        if width < self.named {
            return Vec::new();
        }
        self.named()
            .enumerate()
            .filter_map(|(j, (_, cond))| match (cond, self.binding(j, width)) {
                (Some(cond), Binding::Field(field)) => Some(FieldTest {
                    field,
                    expr: cond.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn named(&self) -> impl Iterator<Item = (&str, Option<&FieldExpr>)> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Field { name, cond } => Some((name.as_str(), cond.as_ref())),
            Slot::Ellipsis => None,
        })
    }
}

fn read_name(c: &mut Cursor<'_>) -> Result<String, PatternError> {
    let start = c.pos;
    while c.peek().is_some_and(is_name_char) {
        c.bump();
    }
    if c.pos == start {
        return Err(c.error("expected a field name or '...'"));
    }
    Ok(c.text[start..c.pos].to_owned())
}

fn parse_or(
    c: &mut Cursor<'_>,
    name: &str,
    regexes: &mut usize,
) -> Result<FieldExpr, PatternError> {
    let mut parts = vec![parse_and(c, name, regexes, true)?];
    loop {
        c.skip_blanks();
        if !c.eat("||") {
            break;
        }
        parts.push(parse_and(c, name, regexes, false)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        FieldExpr::Or(parts)
    })
}

fn parse_and(
    c: &mut Cursor<'_>,
    name: &str,
    regexes: &mut usize,
    first: bool,
) -> Result<FieldExpr, PatternError> {
    let mut parts = vec![parse_cmp(c, name, regexes, first)?];
    loop {
        c.skip_blanks();
        if !c.eat("&&") {
            break;
        }
        parts.push(parse_cmp(c, name, regexes, false)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        FieldExpr::And(parts)
    })
}

/// `[name] OP value`; the slot's name is already read for the first condition.
fn parse_cmp(
    c: &mut Cursor<'_>,
    name: &str,
    regexes: &mut usize,
    first: bool,
) -> Result<FieldExpr, PatternError> {
    c.skip_blanks();
    if !first {
        let at = c.pos;
        let other = read_name(c)?;
        if other != name {
            return Err(c.error_at(
                at,
                format!("a condition in the field '{name}' can only test '{name}', not '{other}'"),
            ));
        }
        c.skip_blanks();
    }
    let Some(op) = Op::parse(c) else {
        return Err(c.error("expected an operator (=, !=, <, <=, >, >=)"));
    };
    c.skip_blanks();
    let (literal, is_regex) = parse_literal(c, op, &[",", "]", "&&", "||"])?;
    if is_regex {
        *regexes += 1;
    }
    Ok(FieldExpr::Cmp(op, literal))
}

/// One field of an event: its value (without enclosing `""` or `[]`) and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventField<'e> {
    pub(crate) value: &'e str,
    pub(crate) start: usize,
}

/// Which part of the event a named slot takes.
enum Binding {
    /// The value of the i-th field.
    Field(usize),
    /// The raw text from the start of the i-th field to the end of the line.
    RestFrom(usize),
}

/// Where one field of an event lies: its value (inside any `""`/`[]`) and its start.
#[derive(Debug, Clone, Copy)]
struct Span {
    value_start: usize,
    value_end: usize,
    start: usize,
}

impl Span {
    fn value<'e>(&self, event: &'e str) -> &'e str {
        &event[self.value_start..self.value_end]
    }
}

/// Splits an event into fields at runs of blanks; `"…"` and `[…]` are single fields.
pub(crate) fn split_fields(event: &str) -> Vec<EventField<'_>> {
    let mut fields = Vec::new();
    for_each_field(event, |value_start, value_end, start| {
        fields.push(EventField {
            value: &event[value_start..value_end],
            start,
        })
    });
    fields
}

/// Calls `f(value_start, value_end, start)` for each field of the event.
fn for_each_field(event: &str, mut f: impl FnMut(usize, usize, usize)) {
    let bytes = event.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let close = match bytes[i] {
            b'"' => Some(b'"'),
            b'[' => Some(b']'),
            _ => None,
        };
        match close.and_then(|close| memchr::memchr(close, &bytes[i + 1..]).map(|off| i + 1 + off))
        {
            Some(end) => {
                f(i + 1, end, start);
                i = end + 1;
            }
            None => {
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                f(start, i, start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_and_bracketed_fields() {
        let e = r#"127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
        let values: Vec<&str> = split_fields(e).iter().map(|f| f.value).collect();
        assert_eq!(
            values,
            [
                "127.0.0.1",
                "Prod",
                "frank",
                "10/Oct/2000:13:25:15 -0700",
                "GET /index.html HTTP/1.0",
                "404",
                "1534"
            ]
        );
        let tabs: Vec<&str> = split_fields("a\tb  c").iter().map(|f| f.value).collect();
        assert_eq!(tabs, ["a", "b", "c"]);
    }
}
