//! [`PatternError`]: why a pattern was rejected.

/// Why a pattern was rejected: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter pattern at character {position}: {message}")]
pub struct PatternError {
    /// 1-based character position in the pattern.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}
