//! Why a query cannot run.

/// A query that does not compile: AWS's `MalformedQueryException` with its
/// `queryCompileError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// What is wrong, in AWS's words where AWS has some
    /// (`unexpected symbol found X at line L and position P`).
    pub message: String,
    /// Where, as character offsets into the query text (end exclusive).
    pub start: usize,
    /// End of the offending text.
    pub end: usize,
}

impl QueryError {
    /// An error about `text[start..end]`.
    pub fn at(message: impl Into<String>, start: usize, end: usize) -> QueryError {
        QueryError {
            message: message.into(),
            start,
            end,
        }
    }
}
