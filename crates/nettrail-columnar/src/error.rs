//! Why a part could not be written or read.

/// Why a part could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The Parquet layer failed (I/O, a corrupt or truncated file).
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An Arrow operation failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The file is Parquet but not a part nettrail wrote.
    #[error("not a nettrail part: {0}")]
    NotAPart(String),
    /// A part with no events was asked for.
    #[error("a part needs at least one event")]
    Empty,
}
