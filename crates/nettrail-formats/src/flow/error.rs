//! [`FlowError`]: what is wrong with a flow log format, header or record.

/// What is wrong with a flow log format, header or record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// A format with no field.
    #[error("a log format needs at least one field")]
    EmptyFormat,
    /// A `LogFormat` token that is not `${name}`.
    #[error("`{0}` is not a `${{field}}` token")]
    BadFormatToken(String),
    /// A name that is no flow log field.
    #[error("unknown flow log field `{0}`")]
    UnknownField(String),
    /// A field named twice in one format.
    #[error("field `{0}` appears twice")]
    DuplicateField(String),
    /// A record with more or fewer fields than its format.
    #[error("the record has {found} fields, the format {expected}")]
    FieldCount {
        /// Fields in the format.
        expected: usize,
        /// Fields in the record.
        found: usize,
    },
    /// A value that its field's type does not allow.
    #[error("field {column} ({field}) is `{value}`: {reason}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// Its 1-based column.
        column: usize,
        /// The value (at most 64 characters of it).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}
