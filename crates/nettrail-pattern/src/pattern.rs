//! [`FilterPattern`]: a pattern parsed by its kind (terms, `%regex%`, JSON,
//! space-delimited), its literal prefilter, matching, and what a match extracts.

use regex::bytes::Regex;

use crate::error::PatternError;
use crate::{delimited, json, lazy, terms, value};

/// Longest pattern accepted (G4).
pub const MAX_PATTERN_CHARS: usize = 1024;
/// Regular expressions allowed in one pattern (R5).
pub const MAX_REGEXES: usize = 2;

/// The kind of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    /// The empty pattern: every event.
    All,
    /// Unstructured terms.
    Terms,
    /// A standalone `%regex%`.
    Regex,
    /// `{ … }`.
    Json,
    /// `[ … ]`.
    Delimited,
}

#[derive(Debug, Clone)]
enum Compiled {
    All,
    Terms(terms::TermPattern),
    Regex(Regex),
    Json(json::Expr),
    Delimited(delimited::DelimitedPattern),
}

impl PartialEq for Compiled {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Compiled::All, Compiled::All) => true,
            (Compiled::Terms(a), Compiled::Terms(b)) => a == b,
            (Compiled::Regex(a), Compiled::Regex(b)) => a.as_str() == b.as_str(),
            (Compiled::Json(a), Compiled::Json(b)) => a == b,
            (Compiled::Delimited(a), Compiled::Delimited(b)) => a == b,
            _ => false,
        }
    }
}

/// A parsed, compiled filter pattern. Two patterns are equal when they parse to the same
/// syntax tree, however they were written; `Display` prints the canonical form, which
/// parses back to an equal pattern.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    source: String,
    compiled: Compiled,
    prefilter: Prefilter,
    /// A JSON pattern without wildcard selectors is decided by the lazy scanner.
    lazy_json: bool,
}

/// A cheap test that rules out most non-matching events before the full match: literals
/// every matching event must contain, found with memchr's SIMD substring search.
#[derive(Debug, Clone, Default)]
struct Prefilter {
    finders: Vec<memchr::memmem::Finder<'static>>,
    /// JSON literals are only trusted in text without backslashes, since an escape
    /// (`\u0041`) can spell the same string differently.
    unless_escaped: bool,
}

impl Prefilter {
    fn new(mut literals: Vec<String>, unless_escaped: bool) -> Prefilter {
        // Longest first: the rarest literal usually rejects soonest.
        literals.sort_by_key(|l| std::cmp::Reverse(l.len()));
        literals.dedup();
        Prefilter {
            finders: literals
                .iter()
                .map(|l| memchr::memmem::Finder::new(l.as_bytes()).into_owned())
                .collect(),
            unless_escaped,
        }
    }

    /// True when the event certainly does not match.
    fn rejects(&self, event: &str) -> bool {
        if self.finders.is_empty()
            || (self.unless_escaped && memchr::memchr(b'\\', event.as_bytes()).is_some())
        {
            return false;
        }
        self.finders
            .iter()
            .any(|f| f.find(event.as_bytes()).is_none())
    }
}

/// A value extracted for a metric or a dimension.
#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    /// A number (a numeric literal, a JSON number, or text that reads as a number).
    Number(f64),
    /// Any other text.
    Text(String),
}

impl Extracted {
    fn from_text(text: &str) -> Extracted {
        match value::parse_number(text.trim()) {
            Some(n) => Extracted::Number(n),
            None => Extracted::Text(text.to_owned()),
        }
    }
}

impl PartialEq for FilterPattern {
    fn eq(&self, other: &Self) -> bool {
        self.compiled == other.compiled
    }
}

impl std::fmt::Display for FilterPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.compiled {
            Compiled::All => Ok(()),
            Compiled::Terms(t) => write!(f, "{t}"),
            Compiled::Regex(re) => write!(f, "%{}%", re.as_str()),
            Compiled::Json(expr) => write!(f, "{{ {expr} }}"),
            Compiled::Delimited(d) => write!(f, "{d}"),
        }
    }
}

impl FilterPattern {
    /// Parses and compiles a pattern, or says where and why it is invalid.
    pub fn parse(source: &str) -> Result<FilterPattern, PatternError> {
        if source.chars().count() > MAX_PATTERN_CHARS {
            return Err(PatternError {
                position: MAX_PATTERN_CHARS + 1,
                message: format!(
                    "a filter pattern can be at most {MAX_PATTERN_CHARS} characters long"
                ),
            });
        }
        let trimmed = source.trim();
        let compiled = if trimmed.is_empty() {
            Compiled::All
        } else if trimmed.starts_with('{') {
            let mut quotas = json::Quotas::default();
            let expr = json::parse(source, &mut quotas)?;
            check_regexes(quotas.regexes)?;
            Compiled::Json(expr)
        } else if trimmed.starts_with('[') {
            let mut regexes = 0;
            let pattern = delimited::DelimitedPattern::parse(source, &mut regexes)?;
            check_regexes(regexes)?;
            Compiled::Delimited(pattern)
        } else if trimmed.starts_with('%') {
            let mut c = value::Cursor::new(source);
            c.skip_blanks();
            let re = c.regex()?;
            c.skip_blanks();
            if !c.at_end() {
                return Err(c.error("unexpected text after the regular expression"));
            }
            Compiled::Regex(re)
        } else {
            Compiled::Terms(terms::TermPattern::parse(source)?)
        };
        let prefilter = match &compiled {
            Compiled::Json(expr) => {
                let mut literals = Vec::new();
                json::required_literals(expr, &mut literals);
                Prefilter::new(literals, true)
            }
            Compiled::Delimited(d) => {
                let mut literals = Vec::new();
                d.required_literals(&mut literals);
                Prefilter::new(literals, false)
            }
            // Terms are substring tests already; a regex engine has its own prefilter.
            _ => Prefilter::default(),
        };
        let lazy_json = matches!(&compiled, Compiled::Json(expr) if lazy::supported(expr));
        Ok(FilterPattern {
            source: source.to_owned(),
            compiled,
            prefilter,
            lazy_json,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Its kind.
    pub fn kind(&self) -> PatternKind {
        match self.compiled {
            Compiled::All => PatternKind::All,
            Compiled::Terms(_) => PatternKind::Terms,
            Compiled::Regex(_) => PatternKind::Regex,
            Compiled::Json(_) => PatternKind::Json,
            Compiled::Delimited(_) => PatternKind::Delimited,
        }
    }

    /// Substrings that every event the pattern matches contains (case-sensitive): a
    /// hint that lets a store skip data holding none of one of them. Empty when the
    /// pattern promises none (JSON patterns are left out: an escape such as `\u0041`
    /// spells a string differently in the text).
    pub fn required_substrings(&self) -> Vec<String> {
        match &self.compiled {
            Compiled::Terms(t) => t.required_texts(),
            Compiled::Delimited(d) => {
                let mut literals = Vec::new();
                d.required_literals(&mut literals);
                literals
            }
            _ => Vec::new(),
        }
    }

    /// For an event of exactly `width` space-separated fields: conditions each of
    /// its fields must pass for the event to match (empty when the pattern says
    /// nothing field by field: it is not space-delimited, or no such event matches).
    /// They are necessary, not sufficient: a reader may skip an event that fails one
    /// before building its text, and must still match the rest. A field's value is as
    /// the pattern splits it: a plain run of non-blank characters is itself.
    pub fn field_tests(&self, width: usize) -> Vec<delimited::FieldTest> {
        match &self.compiled {
            Compiled::Delimited(d) => d.field_tests(width),
            _ => Vec::new(),
        }
    }

    /// Whether an event message matches.
    pub fn matches(&self, event: &str) -> bool {
        if self.prefilter.rejects(event) {
            return false;
        }
        match &self.compiled {
            Compiled::All => true,
            Compiled::Terms(t) => t.matches(event),
            Compiled::Regex(re) => re.is_match(event.as_bytes()),
            Compiled::Json(expr) if self.lazy_json => lazy::matches(expr, event),
            Compiled::Json(expr) => json::matches(expr, event),
            Compiled::Delimited(d) => d.matches(event),
        }
    }

    /// For a matching event, the named fields of a space-delimited pattern as
    /// TestMetricFilter reports them (`$name` → value); empty for other kinds (M3).
    /// `None` when the event does not match.
    pub fn extracted_values(&self, event: &str) -> Option<Vec<(String, String)>> {
        if !self.matches(event) {
            return None;
        }
        let Compiled::Delimited(d) = &self.compiled else {
            return Some(Vec::new());
        };
        let fields = delimited::split_fields(event);
        let values = d.bind(event, &fields)?;
        Some(
            d.named()
                .zip(values)
                .map(|((name, _), v)| (format!("${name}"), v.to_owned()))
                .collect(),
        )
    }

    /// The value a metric transformation's `metricValue` (or a dimension value) takes
    /// for a matching event: a number literal, `$.path` for JSON patterns, `$name` or
    /// `$N` (the N-th field, from 1) for space-delimited ones (M1, M2, S7). `None` when
    /// the event does not match or the selector finds nothing.
    pub fn metric_value(&self, selector: &str, event: &str) -> Option<Extracted> {
        if !self.matches(event) {
            return None;
        }
        let selector = selector.trim();
        if let Some(n) = value::parse_number(selector) {
            return Some(Extracted::Number(n));
        }
        match &self.compiled {
            Compiled::Json(_) => {
                let root = json::parse_event(event)?;
                let expr = json::parse(
                    &format!("{{ {selector} NOT EXISTS }}"),
                    &mut json::Quotas::default(),
                )
                .ok()?;
                let json::Expr::Cond(cond) = expr else {
                    return None;
                };
                let mut nodes = Vec::new();
                json::resolve(&cond.steps, &root, &mut nodes);
                match nodes.first()? {
                    serde_json::Value::Number(n) => n.as_f64().map(Extracted::Number),
                    serde_json::Value::String(s) => Some(Extracted::from_text(s)),
                    _ => None,
                }
            }
            Compiled::Delimited(d) => {
                let name = selector.strip_prefix('$')?;
                let fields = delimited::split_fields(event);
                if let Ok(n) = name.parse::<usize>() {
                    return fields
                        .get(n.checked_sub(1)?)
                        .map(|f| Extracted::from_text(f.value));
                }
                let values = d.bind(event, &fields)?;
                let at = d.named().position(|(field, _)| field == name)?;
                Some(Extracted::from_text(values[at]))
            }
            _ => None,
        }
    }

    /// The field names of a space-delimited pattern, in order (empty for other kinds).
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        let named: Vec<&str> = match &self.compiled {
            Compiled::Delimited(d) => d.named().map(|(name, _)| name).collect(),
            _ => Vec::new(),
        };
        named.into_iter()
    }

    /// Whether metric dimensions may be used with this pattern (M2: JSON and
    /// space-delimited only).
    pub fn supports_dimensions(&self) -> bool {
        matches!(self.compiled, Compiled::Json(_) | Compiled::Delimited(_))
    }
}

fn check_regexes(count: usize) -> Result<(), PatternError> {
    if count > MAX_REGEXES {
        return Err(PatternError {
            position: 1,
            message: format!("a filter pattern can hold at most {MAX_REGEXES} regular expressions, this one has {count}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_substrings_are_what_every_match_contains() {
        let cases: [(&str, &[&str]); 7] = [
            ("ERROR \"disk full\" -debug", &["ERROR", "disk full"]),
            ("?a ?b", &[]),
            ("", &[]),
            ("%fail[a-z]*%", &[]),
            ("{ $.user = \"alice\" }", &[]),
            (
                "[v, a, e, s, d, sp, dp=\"22\", p=6, pk, b, st, en, action=REJECT, ls]",
                &["22", "REJECT"],
            ),
            ("[a=x || a=y, b]", &[]),
        ];
        for (source, expected) in cases {
            let pattern = FilterPattern::parse(source).unwrap();
            let mut found = pattern.required_substrings();
            found.sort();
            let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            expected.sort();
            assert_eq!(found, expected, "{source}");
        }
    }

    #[test]
    fn field_tests_are_the_conditions_of_slots_bound_to_one_field() {
        let ssh = FilterPattern::parse(
            "[version, account, eni, source, destination, srcport, destport=\"22\", protocol=\"6\", packets, bytes, windowstart, windowend, action=\"REJECT\", flowlogstatus]",
        )
        .unwrap();
        let fields = |p: &FilterPattern, width| -> Vec<usize> {
            p.field_tests(width).iter().map(|t| t.field).collect()
        };
        assert_eq!(fields(&ssh, 14), [6, 7, 12]);
        // A wider event: the last slot takes the rest of the line, the others stay.
        assert_eq!(fields(&ssh, 20), [6, 7, 12]);
        assert!(fields(&ssh, 13).is_empty(), "no 13-field event matches");
        let tests = ssh.field_tests(14);
        assert!(tests[0].holds("22") && !tests[0].holds("220"));
        // After `...`, slots bind from the right end.
        let tail = FilterPattern::parse("[first, ..., action = REJECT, status]").unwrap();
        assert_eq!(fields(&tail, 14), [12]);
        assert_eq!(fields(&tail, 3), [1]);
        // The last slot of a pattern without `...` may take several fields.
        let last = FilterPattern::parse("[a, b = x]").unwrap();
        assert_eq!(fields(&last, 2), [1]);
        assert!(fields(&last, 3).is_empty());
        assert!(FilterPattern::parse("REJECT")
            .unwrap()
            .field_tests(14)
            .is_empty());
    }

    #[test]
    fn the_prefilter_never_hides_a_match_spelled_with_escapes() {
        let p = FilterPattern::parse(r#"{ $.name = "José" && $.city = "a/b" }"#).unwrap();
        assert!(p.matches(r#"{"name": "José", "city": "a/b"}"#));
        assert!(p.matches(r#"{"n\u0061me": "Jos\u00e9", "city": "a\/b"}"#));
        assert!(!p.matches(r#"{"name": "Jose", "city": "a/b"}"#));
    }

    #[test]
    fn the_prefilter_only_uses_literals_every_match_needs() {
        let p = FilterPattern::parse(r#"{ $.a = "x" || $.b = "y" }"#).unwrap();
        assert!(p.matches(r#"{"b": "y"}"#));
        let p = FilterPattern::parse("[w1 = ERROR || w1 = WARN, w2]").unwrap();
        assert!(p.matches("WARN message"));
        let p = FilterPattern::parse("[a, b = *html*, c]").unwrap();
        assert!(p.matches("x index.html y") && !p.matches("x index.htm y"));
    }
}
