//! The CloudWatch Logs filter pattern language.
//!
//! This crate owns parsing a filter pattern (with errors that name the position and what
//! is wrong), matching events against it, and extracting metric values and dimensions.
//! One syntax serves FilterLogEvents, metric filters, subscription filters and live tail.
//! The rules it implements, with their sources and confidence, are in
//! `shared/specs/filter-patterns.md`; the rule ids (T1, J5, S4, …) are cited in the code.
//!
//! A pattern's first non-blank character decides its kind (G3): `{` JSON, `[`
//! space-delimited, `%…%` a regular expression, anything else terms.
//!
//! ```
//! use nettrail_pattern::FilterPattern;
//! let p = FilterPattern::parse(r#"{ $.connection-attempt-status = "successful" }"#).unwrap();
//! assert!(p.matches(r#"{"connection-attempt-status": "successful"}"#));
//! assert!(!p.matches("not json"));
//! ```

#![warn(missing_docs)]

#[doc(hidden)]
pub mod corpus;
mod delimited;
mod error;
mod json;
mod lazy;
mod metric;
mod pattern;
mod terms;
mod value;

pub use delimited::FieldTest;
pub use error::PatternError;
pub use metric::{MetricSample, MetricTransformation, MAX_DIMENSIONS};
pub use pattern::{Extracted, FilterPattern, PatternKind, MAX_PATTERN_CHARS, MAX_REGEXES};
