//! Unstructured term patterns (spec §3): `ERROR`, `"exact phrase"`, `?a ?b`, `-term`.

use memchr::memmem::Finder;

use crate::error::PatternError;
use crate::value::Cursor;

/// One term as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    kind: TermKind,
    /// The text to find (quotes removed, escapes resolved).
    text: String,
}

/// How a term takes part in the match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermKind {
    /// Must occur.
    Required,
    /// `?term`: one of these must occur (when every term is optional).
    Optional,
    /// `-term`: must not occur.
    Excluded,
}

/// A compiled term pattern.
#[derive(Debug, Clone)]
pub struct TermPattern {
    terms: Vec<Term>,
    required: Vec<Finder<'static>>,
    excluded: Vec<Finder<'static>>,
    /// Non-empty only when every term is optional (T5); otherwise `?` terms are ignored (T6).
    any_of: Vec<Finder<'static>>,
}

impl PartialEq for TermPattern {
    fn eq(&self, other: &Self) -> bool {
        self.terms == other.terms
    }
}

impl std::fmt::Display for TermPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match term.kind {
                TermKind::Required => {}
                TermKind::Optional => f.write_str("?")?,
                TermKind::Excluded => f.write_str("-")?,
            }
            crate::value::write_quoted(f, &term.text)?;
        }
        Ok(())
    }
}

fn finder(text: &str) -> Finder<'static> {
    Finder::new(text.as_bytes()).into_owned()
}

impl TermPattern {
    pub(crate) fn parse(text: &str) -> Result<TermPattern, PatternError> {
        let mut c = Cursor::new(text);
        let mut terms = Vec::new();
        loop {
            c.skip_blanks();
            if c.at_end() {
                break;
            }
            let kind = if c.eat("?") {
                TermKind::Optional
            } else if c.eat("-") {
                // `- "Exiting"`: a detached minus binds to the next term.
                c.skip_blanks();
                if c.at_end() {
                    return Err(c.error("'-' must be followed by a term to exclude"));
                }
                TermKind::Excluded
            } else {
                TermKind::Required
            };
            let text = if c.peek() == Some('"') {
                c.quoted()?
            } else {
                let start = c.pos;
                while c.peek().is_some_and(|ch| !ch.is_whitespace()) {
                    c.bump();
                }
                if c.pos == start {
                    return Err(c.error("expected a term"));
                }
                c.text[start..c.pos].to_owned()
            };
            terms.push(Term { kind, text });
        }
        Ok(TermPattern::compile(terms))
    }

    fn compile(terms: Vec<Term>) -> TermPattern {
        // A phrase that is blank once trimmed (`" "`, `""`) matches every event (T7).
        let meaningful = |t: &&Term| !t.text.trim().is_empty();
        let all_optional = terms.iter().all(|t| t.kind == TermKind::Optional);
        let of = |kind| -> Vec<Finder<'static>> {
            terms
                .iter()
                .filter(|t| t.kind == kind)
                .filter(meaningful)
                .map(|t| finder(&t.text))
                .collect()
        };
        let any_of = if all_optional && !terms.iter().any(|t| t.text.trim().is_empty()) {
            of(TermKind::Optional)
        } else {
            Vec::new()
        };
        TermPattern {
            required: of(TermKind::Required),
            excluded: of(TermKind::Excluded),
            any_of,
            terms,
        }
    }

    /// The terms every matching event contains (the required ones that are not blank).
    pub(crate) fn required_texts(&self) -> Vec<String> {
        self.terms
            .iter()
            .filter(|t| t.kind == TermKind::Required && !t.text.trim().is_empty())
            .map(|t| t.text.clone())
            .collect()
    }

    /// Whether the event matches: substring tests, case-sensitive.
    pub fn matches(&self, event: &str) -> bool {
        let hay = event.as_bytes();
        self.required.iter().all(|f| f.find(hay).is_some())
            && !self.excluded.iter().any(|f| f.find(hay).is_some())
            && (self.any_of.is_empty() || self.any_of.iter().any(|f| f.find(hay).is_some()))
    }
}
