//! Evaluating JSON conditions without building a DOM.
//!
//! The event is first validated with serde's allocation-free `IgnoredAny` (an invalid
//! event never matches, J1). Each condition then walks only its own path: at every level
//! the scanner reads keys, skips the values it does not want, and descends into the one
//! it does. Strings are borrowed unless they hold escapes. Selectors with wildcards go to
//! the DOM evaluator instead.

use std::borrow::Cow;

use serde::de::IgnoredAny;

use crate::json::{Condition, Expr, Step, Test};
use crate::value::compare_text;

/// A value found at the end of a path.
#[derive(Debug)]
enum Node<'a> {
    Missing,
    Str(Cow<'a, str>),
    /// The number's raw text.
    Num(&'a str),
    Bool(bool),
    Null,
    /// An object or an array: never a value node.
    Container,
}

/// Whether every condition of `expr` can be decided lazily (no wildcard selectors).
pub(crate) fn supported(expr: &Expr) -> bool {
    match expr {
        Expr::Or(parts) | Expr::And(parts) => parts.iter().all(supported),
        Expr::Cond(c) => c
            .steps
            .iter()
            .all(|s| matches!(s, Step::Key(_) | Step::Index(_))),
    }
}

/// Whether a JSON event matches, for an expression where [`supported`] holds.
pub(crate) fn matches(expr: &Expr, event: &str) -> bool {
    if !event.trim_start().starts_with('{') || serde_json::from_str::<IgnoredAny>(event).is_err() {
        return false;
    }
    eval(expr, event)
}

fn eval(expr: &Expr, event: &str) -> bool {
    match expr {
        Expr::Or(parts) => parts.iter().any(|e| eval(e, event)),
        Expr::And(parts) => parts.iter().all(|e| eval(e, event)),
        Expr::Cond(cond) => holds(cond, &find(event, &cond.steps)),
    }
}

fn holds(cond: &Condition, node: &Node<'_>) -> bool {
    match (&cond.test, node) {
        (Test::NotExists, Node::Missing) => true,
        (Test::NotExists, _) => false,
        (Test::IsNull, Node::Null) => true,
        (Test::IsTrue, Node::Bool(true)) => true,
        (Test::IsFalse, Node::Bool(false)) => true,
        (Test::Cmp(op, literal), Node::Str(s)) => compare_text(*op, literal, s),
        (Test::Cmp(op, literal), Node::Num(raw)) => {
            match serde_json::from_str::<serde_json::Number>(raw) {
                Ok(num) => crate::json::compare_number(*op, literal, &num),
                Err(_) => false,
            }
        }
        _ => false,
    }
}

/// Follows `steps` from the top of a valid JSON document.
fn find<'a>(json: &'a str, steps: &[Step]) -> Node<'a> {
    let mut s = Scanner {
        b: json.as_bytes(),
        text: json,
        i: 0,
    };
    for step in steps {
        s.ws();
        let found = match (step, s.peek()) {
            (Step::Key(key), Some(b'{')) => s.enter_key(key),
            (Step::Index(index), Some(b'[')) => s.enter_index(*index),
            _ => false,
        };
        if !found {
            return Node::Missing;
        }
    }
    s.ws();
    s.value()
}

/// A cursor over text already known to be valid JSON.
struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// On `{`: moves to the value of `key` and returns true, or returns false. With
    /// duplicate keys the last one wins, as in serde_json's map.
    fn enter_key(&mut self, key: &str) -> bool {
        self.i += 1; // '{'
        let mut found = None;
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                break; // '}'
            }
            let name = self.string();
            self.ws();
            self.i += 1; // ':'
            self.ws();
            if name == key {
                found = Some(self.i);
            }
            self.skip_value();
            self.ws();
            if self.peek() == Some(b',') {
                self.i += 1;
            } else {
                break;
            }
        }
        match found {
            Some(at) => {
                self.i = at;
                true
            }
            None => false,
        }
    }

    /// On `[`: moves to element `index` and returns true, or returns false.
    fn enter_index(&mut self, index: usize) -> bool {
        self.i += 1; // '['
        for n in 0.. {
            self.ws();
            if self.peek() == Some(b']') {
                return false;
            }
            if n == index {
                return true;
            }
            self.skip_value();
            self.ws();
            if self.peek() == Some(b',') {
                self.i += 1;
            } else {
                return false;
            }
        }
        false
    }

    /// Reads the value at the cursor.
    fn value(&mut self) -> Node<'a> {
        match self.peek() {
            Some(b'"') => Node::Str(self.string()),
            Some(b'{' | b'[') => Node::Container,
            Some(b't') => Node::Bool(true),
            Some(b'f') => Node::Bool(false),
            Some(b'n') => Node::Null,
            Some(_) => {
                let start = self.i;
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.i += 1;
                }
                Node::Num(&self.text[start..self.i])
            }
            None => Node::Missing,
        }
    }

    /// Reads a string (cursor on its opening quote), borrowing it unless it has escapes.
    fn string(&mut self) -> Cow<'a, str> {
        let start = self.i;
        self.i += 1;
        let mut escaped = false;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.b[self.i..]) {
                Some(off) if self.b[self.i + off] == b'\\' => {
                    escaped = true;
                    self.i += off + 2;
                }
                Some(off) => {
                    self.i += off + 1;
                    break;
                }
                None => {
                    self.i = self.b.len();
                    break;
                }
            }
        }
        let raw = &self.text[start..self.i];
        if escaped {
            Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
        } else {
            Cow::Borrowed(&raw[1..raw.len() - 1])
        }
    }

    /// Skips the value at the cursor.
    fn skip_value(&mut self) {
        match self.peek() {
            Some(b'"') => {
                self.string();
            }
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    match c {
                        b'"' => {
                            self.string();
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use crate::json::{self, Quotas};

    const PATTERNS: &[&str] = &[
        r#"{ $.a = "x" }"#,
        r#"{ $.a != "x" }"#,
        r#"{ $.a = 1 }"#,
        r#"{ $.a > 0.5 }"#,
        r#"{ $.a = 1* }"#,
        r#"{ $.a = %^[xy]% }"#,
        r#"{ $.b.a = "y" || $.b[1] = 2 }"#,
        r#"{ $.b[0].a IS NULL && $.x NOT EXISTS }"#,
        r#"{ $.b IS TRUE || $.a IS FALSE }"#,
        r#"{ $.['é'] = "q\"z" }"#,
        r#"{ $.b.b.b = * }"#,
        r#"{ $.a NOT EXISTS }"#,
        r#"{ $.a = "q\"z" || $.a = "x\\y" }"#,
        r#"{ $.é = "é" || $.x = "é" }"#,
        r#"{ $.é[0] = "q\"z" || $.b.é = "x" }"#,
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop_oneof![Just("x"), Just("y"), Just("q\"z"), Just("x\\y"), Just("é")]
                .prop_map(|s| json!(s)),
            (-3i64..3).prop_map(|n| json!(n)),
            Just(json!(1.0)),
            Just(json!(0.75)),
            Just(json!(10)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(Value::Null),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![Just("a"), Just("b"), Just("é"), Just("x")],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The lazy scanner decides exactly what the DOM evaluator decides, for every
        /// pattern on every generated event.
        #[test]
        fn lazy_agrees_with_the_dom(
            root in proptest::collection::btree_map(prop_oneof![Just("a"), Just("b"), Just("é"), Just("x")], value(), 0..4),
            pretty in any::<bool>(),
            ascii_escapes in any::<bool>(),
        ) {
            let root = Value::Object(root.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
            let mut text = if pretty { serde_json::to_string_pretty(&root).unwrap() } else { root.to_string() };
            if ascii_escapes {
                text = text.replace('é', "\\u00e9");
            }
            for pattern in PATTERNS {
                let expr = json::parse(pattern, &mut Quotas::default()).unwrap();
                prop_assert!(super::supported(&expr));
                prop_assert_eq!(super::matches(&expr, &text), json::matches(&expr, &text), "{} on {}", pattern, text);
            }
        }

        #[test]
        fn lazy_never_panics_on_garbage(text in "\\{[ -~]{0,40}", which in 0..PATTERNS.len()) {
            let expr = json::parse(PATTERNS[which], &mut Quotas::default()).unwrap();
            prop_assert_eq!(super::matches(&expr, &text), json::matches(&expr, &text));
        }
    }
}
