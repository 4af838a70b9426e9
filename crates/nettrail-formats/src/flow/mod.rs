//! Amazon VPC (and Transit Gateway) flow logs: fields, formats, records, S3 text files
//! and object keys.

pub mod cloudwatch;
mod error;
mod fields;
mod format;
pub mod parquet;
mod record;
pub mod s3;
mod text_file;

pub use error::FlowError;
pub use fields::{Field, FieldKind, FieldSpec, FIELDS};
pub use format::LogFormat;
pub use record::{FieldValue, FlowRecord};
pub use text_file::{FlowTextReader, TextFileError, TextLine};
