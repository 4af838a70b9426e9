//! Flow log Parquet files as VPC Flow Logs writes them to S3 (`FileFormat=parquet`):
//! one column per field of the log format, named with underscores (`pkt_srcaddr`),
//! typed as AWS's field table says (INT_32, INT_64, STRING; `protocol` is INT_64 in
//! Transit Gateway flow logs), `-` stored as null, Gzip-compressed.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;

use super::fields::{Field, FieldKind};
use super::format::LogFormat;
use super::record::{FieldValue, FlowRecord};

/// Rows per record batch written and read.
const BATCH_ROWS: usize = 65_536;

/// Why a Parquet file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// The Parquet or Arrow layer failed (not Parquet, corrupt, truncated, I/O).
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An Arrow operation failed.
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A column that is no flow log field.
    #[error("column `{0}` is not a flow log field")]
    UnknownColumn(String),
    /// A column whose type cannot hold its field.
    #[error("column `{column}` is {found}, its field needs {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// Its Arrow type.
        found: String,
        /// What the field needs.
        expected: &'static str,
    },
    /// A string column value that is not a valid value of its field.
    #[error("row {row}, column `{column}`: {reason}")]
    BadValue {
        /// 0-based row in the file.
        row: usize,
        /// The column.
        column: String,
        /// Why.
        reason: String,
    },
}

/// The Arrow type of a field in files of `format`.
fn arrow_type(format: &LogFormat, field: Field) -> DataType {
    if field == Field::PROTOCOL && format.is_transit_gateway() {
        return DataType::Int64;
    }
    match field.kind() {
        FieldKind::Int32 => DataType::Int32,
        FieldKind::Int64 => DataType::Int64,
        FieldKind::String => DataType::Utf8,
    }
}

/// The Arrow schema of Parquet files of `format`.
pub fn schema(format: &LogFormat) -> SchemaRef {
    let fields: Vec<ArrowField> = format
        .fields()
        .iter()
        .map(|&f| ArrowField::new(f.column(), arrow_type(format, f), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Writes records of `format` as a Parquet file (Gzip-compressed, as AWS writes them).
pub fn write_parquet<W: Write + Send>(
    format: &LogFormat,
    records: &[FlowRecord],
    out: W,
) -> Result<W, ParquetError> {
    let schema = schema(format);
    let properties = WriterProperties::builder()
        .set_compression(Compression::GZIP(GzipLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(out, Arc::clone(&schema), Some(properties))?;
    for chunk in records.chunks(BATCH_ROWS) {
        let columns: Vec<ArrayRef> = format
            .fields()
            .iter()
            .enumerate()
            .map(|(i, &field)| column(format, field, i, chunk))
            .collect();
        writer.write(&RecordBatch::try_new(Arc::clone(&schema), columns)?)?;
    }
    Ok(writer.into_inner()?)
}

fn column(format: &LogFormat, field: Field, index: usize, rows: &[FlowRecord]) -> ArrayRef {
    fn value(row: &FlowRecord, index: usize) -> &FieldValue {
        &row.values[index]
    }
    match arrow_type(format, field) {
        DataType::Int32 => {
            let mut b = Int32Builder::with_capacity(rows.len());
            for row in rows {
                b.append_option(value(row, index).as_int().map(|v| v as i32));
            }
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for row in rows {
                b.append_option(value(row, index).as_int());
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 12);
            for row in rows {
                b.append_option(value(row, index).as_text());
            }
            Arc::new(b.finish())
        }
    }
}

/// A Parquet flow log file being read.
pub struct ParquetFlowReader {
    format: LogFormat,
    batches: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    rows_read: usize,
}

impl ParquetFlowReader {
    /// Opens a file: its columns decide the format (column names with underscores or
    /// hyphens, in file order).
    pub fn new<R: ChunkReader + 'static>(input: R) -> Result<ParquetFlowReader, ParquetError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(input)?;
        let mut fields = Vec::new();
        for column in builder.schema().fields() {
            let name = column.name();
            let field = Field::by_column(name)
                .or_else(|| Field::by_name(name))
                .ok_or_else(|| ParquetError::UnknownColumn(name.clone()))?;
            let fits = match (field.kind(), column.data_type()) {
                (FieldKind::String, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                    true
                }
                (
                    FieldKind::Int32 | FieldKind::Int64,
                    DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64,
                ) => true,
                // Some writers keep every field as a string.
                (
                    FieldKind::Int32 | FieldKind::Int64,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View,
                ) => true,
                _ => false,
            };
            if !fits {
                return Err(ParquetError::ColumnType {
                    column: name.clone(),
                    found: column.data_type().to_string(),
                    expected: match field.kind() {
                        FieldKind::String => "a string",
                        _ => "an integer",
                    },
                });
            }
            fields.push(field);
        }
        let format =
            LogFormat::new(fields).map_err(|e| ParquetError::UnknownColumn(e.to_string()))?;
        let batches = builder.with_batch_size(BATCH_ROWS).build()?;
        Ok(ParquetFlowReader {
            format,
            batches,
            rows_read: 0,
        })
    }

    /// The file's format.
    pub fn format(&self) -> &LogFormat {
        &self.format
    }

    /// The next batch of records; `None` at the end. An error ends the file.
    pub fn next_batch(&mut self) -> Option<Result<Vec<FlowRecord>, ParquetError>> {
        let batch = match self.batches.next()? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(e.into())),
        };
        let first_row = self.rows_read;
        self.rows_read += batch.num_rows();
        Some(records_of(&self.format, &batch, first_row))
    }
}

fn records_of(
    format: &LogFormat,
    batch: &RecordBatch,
    first_row: usize,
) -> Result<Vec<FlowRecord>, ParquetError> {
    let rows = batch.num_rows();
    let mut records: Vec<FlowRecord> = (0..rows)
        .map(|_| FlowRecord {
            values: Vec::with_capacity(format.len()),
        })
        .collect();
    for (i, &field) in format.fields().iter().enumerate() {
        let array = batch.column(i);
        let bad = |row: usize, reason: String| ParquetError::BadValue {
            row: first_row + row,
            column: field.column(),
            reason,
        };
        for (row, record) in records.iter_mut().enumerate() {
            if array.is_null(row) {
                record.values.push(FieldValue::Missing);
                continue;
            }
            let value = match array.data_type() {
                DataType::Int8 => FieldValue::Int(i64::from(
                    array
                        .as_primitive::<arrow_array::types::Int8Type>()
                        .value(row),
                )),
                DataType::Int16 => FieldValue::Int(i64::from(
                    array
                        .as_primitive::<arrow_array::types::Int16Type>()
                        .value(row),
                )),
                DataType::Int32 => {
                    FieldValue::Int(i64::from(array.as_primitive::<Int32Type>().value(row)))
                }
                DataType::Int64 => FieldValue::Int(array.as_primitive::<Int64Type>().value(row)),
                DataType::Utf8 => text_value(field, array.as_string::<i32>().value(row))
                    .map_err(|e| bad(row, e))?,
                DataType::LargeUtf8 => text_value(field, array.as_string::<i64>().value(row))
                    .map_err(|e| bad(row, e))?,
                DataType::Utf8View => {
                    text_value(field, array.as_string_view().value(row)).map_err(|e| bad(row, e))?
                }
                other => return Err(bad(row, format!("unexpected type {other}"))),
            };
            if field.kind() == FieldKind::Int32 {
                if let FieldValue::Int(v) = value {
                    if i32::try_from(v).is_err() {
                        return Err(bad(row, format!("{v} does not fit a 32-bit field")));
                    }
                }
            }
            record.values.push(value);
        }
    }
    Ok(records)
}

/// A string cell: `-` or empty is missing; integer fields are parsed as in text files.
fn text_value(field: Field, text: &str) -> Result<FieldValue, String> {
    if text.is_empty() || text == "-" {
        return Ok(FieldValue::Missing);
    }
    let format = LogFormat::new(vec![field]).expect("one field");
    format
        .parse_record(text)
        .map(|mut r| r.values.pop().expect("one value"))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (LogFormat, Vec<FlowRecord>) {
        let format = LogFormat::default_vpc();
        let lines = [
            "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
        ];
        let records = lines
            .iter()
            .map(|l| format.parse_record(l).unwrap())
            .collect();
        (format, records)
    }

    #[test]
    fn files_read_back_equal_with_aws_column_names_and_types() {
        let (format, records) = sample();
        let bytes = write_parquet(&format, &records, Vec::new()).unwrap();
        let mut reader = ParquetFlowReader::new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.format(), &format);
        let back = reader.next_batch().unwrap().unwrap();
        assert_eq!(back, records);
        assert!(reader.next_batch().is_none());
        let schema = schema(&format);
        assert_eq!(schema.field(1).name(), "account_id");
        assert_eq!(schema.field(0).data_type(), &DataType::Int32);
        assert_eq!(schema.field(8).data_type(), &DataType::Int64);
        assert_eq!(schema.field(13).name(), "log_status");
    }

    #[test]
    fn transit_gateway_protocol_is_int64() {
        let format = LogFormat::default_transit_gateway();
        let schema = schema(&format);
        let protocol = schema.field_with_name("protocol").unwrap();
        assert_eq!(protocol.data_type(), &DataType::Int64);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ParquetFlowReader::new(bytes::Bytes::from_static(b"PAR1 not really")).is_err());
    }
}
