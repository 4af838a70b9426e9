//! Why a query failed.

/// Why a query failed: the user's query, or the engine.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text is not valid SQL, or names what does not exist.
    #[error("{0}")]
    Invalid(String),
    /// The query was valid but could not be run (out of memory, a corrupt part).
    #[error("{0}")]
    Failed(String),
    /// The query was cancelled.
    #[error("the query was cancelled")]
    Cancelled,
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as E;
        match e.find_root() {
            E::SQL(..) | E::Plan(..) | E::SchemaError(..) | E::NotImplemented(..) => {
                QueryError::Invalid(e.strip_backtrace())
            }
            _ => QueryError::Failed(e.strip_backtrace()),
        }
    }
}
