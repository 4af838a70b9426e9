//! A result as text, the way Athena and the CLI show it: each value a string (null
//! stays null), each column typed with Athena's (Trino's) type names.

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// A column's type as Athena names it, with its precision and scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlType {
    /// `varchar`, `bigint`, `integer`, `double`, `boolean`, `timestamp`, …
    pub name: String,
    /// Digits (or characters) the type holds.
    pub precision: u32,
    /// Digits after the point.
    pub scale: u32,
}

/// Athena's name of `data_type`.
pub fn sql_type(data_type: &DataType) -> SqlType {
    let t = |name: &str, precision: u32, scale: u32| SqlType {
        name: name.to_owned(),
        precision,
        scale,
    };
    match data_type {
        DataType::Boolean => t("boolean", 0, 0),
        DataType::Int8 => t("tinyint", 3, 0),
        DataType::Int16 | DataType::UInt8 => t("smallint", 5, 0),
        DataType::Int32 | DataType::UInt16 => t("integer", 10, 0),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => t("bigint", 19, 0),
        DataType::Float16 | DataType::Float32 => t("float", 17, 0),
        DataType::Float64 => t("double", 17, 0),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            t("decimal", u32::from(*p), (*s).max(0) as u32)
        }
        DataType::Date32 | DataType::Date64 => t("date", 0, 0),
        DataType::Timestamp(unit, zone) => t(
            if zone.is_some() {
                "timestamp with time zone"
            } else {
                "timestamp"
            },
            3,
            match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            },
        ),
        DataType::Time32(_) | DataType::Time64(_) => t("time", 0, 0),
        DataType::Interval(_) | DataType::Duration(_) => t("interval day to second", 0, 0),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            t("array", 0, 0)
        }
        DataType::Struct(_) => t("row", 0, 0),
        DataType::Map(..) => t("map", 0, 0),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            t("varbinary", 1_073_741_824, 0)
        }
        _ => t("varchar", 2_147_483_647, 0),
    }
}

/// The values of `batch`, row by row, as text.
pub fn rows_as_text(
    batch: &RecordBatch,
) -> Result<Vec<Vec<Option<String>>>, arrow_schema::ArrowError> {
    let options = FormatOptions::default()
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.3f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.3f"));
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    // Athena writes a timestamp with time zone with its zone after it.
    let zones: Vec<Option<String>> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Timestamp(_, Some(zone)) => Some(format!(" {zone}")),
            _ => None,
        })
        .collect();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        rows.push(
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .zip(&zones)
                .map(|((column, f), zone)| {
                    column.is_valid(row).then(|| {
                        let mut text = f.value(row).to_string();
                        text.push_str(zone.as_deref().unwrap_or(""));
                        text
                    })
                })
                .collect(),
        );
    }
    Ok(rows)
}
