//! Athena's (Trino's) date and time functions that flow-log queries use and DataFusion
//! lacks or spells differently, so AWS's sample queries run as written:
//!
//! | function | Athena's meaning |
//! |---|---|
//! | `from_unixtime(x)` | seconds since the epoch (integer or fraction) → `timestamp(3) with time zone`, UTC |
//! | `to_unixtime(t)` | a timestamp → seconds since the epoch, `double` |
//! | `to_iso8601(t)` | `2024-06-11T10:00:00.000Z` for a timestamp with time zone, no `Z` without one; `2024-06-11` for a date |
//! | `day_of_week(d)`, `dow(d)` | ISO day of the week of a date or timestamp, 1 (Monday) to 7 (Sunday) |
//! | `date(x)` | a date from `'YYYY-MM-DD'` or from a timestamp |
//! | `date_format(t, format)` | MySQL-style format: `%Y %m %d %H %i %s %f %j %W %a %b %M %p %T %e %c %k %l %y %%` |
//!
//! They replace DataFusion's functions of the same name (`from_unixtime` there returns
//! whole seconds without a time zone).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, Utc};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers the functions with `ctx`, over DataFusion's of the same names.
pub fn register(ctx: &SessionContext) {
    for function in [
        AthenaFunction::FromUnixtime,
        AthenaFunction::ToUnixtime,
        AthenaFunction::ToIso8601,
        AthenaFunction::DayOfWeek,
        AthenaFunction::Date,
        AthenaFunction::DateFormat,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(AthenaUdf::new(function)));
    }
}

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AthenaFunction {
    FromUnixtime,
    ToUnixtime,
    ToIso8601,
    DayOfWeek,
    Date,
    DateFormat,
}

impl AthenaFunction {
    fn name(self) -> &'static str {
        match self {
            AthenaFunction::FromUnixtime => "from_unixtime",
            AthenaFunction::ToUnixtime => "to_unixtime",
            AthenaFunction::ToIso8601 => "to_iso8601",
            AthenaFunction::DayOfWeek => "day_of_week",
            AthenaFunction::Date => "date",
            AthenaFunction::DateFormat => "date_format",
        }
    }

    fn arity(self) -> usize {
        match self {
            AthenaFunction::DateFormat => 2,
            _ => 1,
        }
    }
}

/// One of the functions as a DataFusion UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AthenaUdf {
    function: AthenaFunction,
    signature: Signature,
    aliases: Vec<String>,
}

impl AthenaUdf {
    fn new(function: AthenaFunction) -> AthenaUdf {
        let aliases = match function {
            AthenaFunction::DayOfWeek => vec!["dow".to_owned()],
            _ => Vec::new(),
        };
        AthenaUdf {
            function,
            signature: Signature::any(function.arity(), Volatility::Immutable),
            aliases,
        }
    }

    fn wrong_type(&self, arg: &DataType) -> DataFusionError {
        DataFusionError::Plan(format!(
            "{}() does not take a value of type {arg}",
            self.function.name()
        ))
    }
}

/// The UTC timestamp type `from_unixtime` returns.
fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn is_number(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Null)
}

impl ScalarUDFImpl for AthenaUdf {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let arg = &args[0];
        let timelike = matches!(
            arg,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Null
        );
        match self.function {
            AthenaFunction::FromUnixtime if is_number(arg) => Ok(utc_millis()),
            AthenaFunction::ToUnixtime if timelike => Ok(DataType::Float64),
            AthenaFunction::ToIso8601 if timelike => Ok(DataType::Utf8),
            AthenaFunction::DayOfWeek if timelike => Ok(DataType::Int64),
            AthenaFunction::Date if timelike || is_string(arg) => Ok(DataType::Date32),
            AthenaFunction::DateFormat if timelike && is_string(&args[1]) => Ok(DataType::Utf8),
            AthenaFunction::DateFormat if timelike => Err(DataFusionError::Plan(
                "date_format() takes its format as a string".into(),
            )),
            _ => Err(self.wrong_type(arg)),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = &arrays[0];
        let out: ArrayRef = match self.function {
            AthenaFunction::FromUnixtime => {
                let seconds = datafusion::arrow::compute::cast(input, &DataType::Float64)?;
                let millis: TimestampMillisecondArray = seconds
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|s| s.map(|s| (s * 1000.0).round() as i64))
                    .collect();
                Arc::new(millis.with_timezone("UTC"))
            }
            AthenaFunction::ToUnixtime => {
                let values: Float64Array = epoch_millis(input)?
                    .iter()
                    .map(|m| m.map(|m| m as f64 / 1000.0))
                    .collect();
                Arc::new(values)
            }
            AthenaFunction::ToIso8601 => {
                let text: StringArray = match input.data_type() {
                    DataType::Date32 | DataType::Date64 => epoch_millis(input)?
                        .iter()
                        .map(|m| {
                            m.and_then(datetime)
                                .map(|t| t.format("%Y-%m-%d").to_string())
                        })
                        .collect(),
                    other => {
                        let zone = match other {
                            DataType::Timestamp(_, Some(_)) => "Z",
                            _ => "",
                        };
                        epoch_millis(input)?
                            .iter()
                            .map(|m| {
                                m.and_then(datetime)
                                    .map(|t| format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.3f")))
                            })
                            .collect()
                    }
                };
                Arc::new(text)
            }
            AthenaFunction::DayOfWeek => {
                let days: Int64Array = epoch_millis(input)?
                    .iter()
                    .map(|m| {
                        m.map(|m| {
                            // 1970-01-01 was a Thursday, ISO day 4.
                            (m.div_euclid(86_400_000) + 3).rem_euclid(7) + 1
                        })
                    })
                    .collect();
                Arc::new(days)
            }
            AthenaFunction::Date => match input.data_type() {
                DataType::Timestamp(..) => {
                    let days: Date32Array = epoch_millis(input)?
                        .iter()
                        .map(|m| m.map(|m| m.div_euclid(86_400_000) as i32))
                        .collect();
                    Arc::new(days)
                }
                _ => datafusion::arrow::compute::cast(input, &DataType::Date32)?,
            },
            AthenaFunction::DateFormat => {
                let formats = datafusion::arrow::compute::cast(&arrays[1], &DataType::Utf8)?;
                let formats = formats.as_string::<i32>();
                let millis = epoch_millis(input)?;
                let mut out = Vec::with_capacity(millis.len());
                for (m, format) in millis.iter().zip(formats.iter()) {
                    out.push(match (m.and_then(datetime), format) {
                        (Some(t), Some(format)) => Some(mysql_format(&t, format)?),
                        _ => None,
                    });
                }
                Arc::new(StringArray::from(out))
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

/// A date or timestamp array as Unix milliseconds.
fn epoch_millis(array: &ArrayRef) -> Result<Int64Array> {
    let millis = |values: Vec<Option<i64>>| Int64Array::from(values);
    Ok(match array.data_type() {
        DataType::Null => Int64Array::new_null(array.len()),
        DataType::Date32 => millis(
            array
                .as_primitive::<Date32Type>()
                .iter()
                .map(|d| d.map(|d| i64::from(d) * 86_400_000))
                .collect(),
        ),
        DataType::Date64 => datafusion::arrow::compute::cast(array, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone(),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => millis(
                array
                    .as_primitive::<TimestampSecondType>()
                    .iter()
                    .map(|v| v.map(|v| v.saturating_mul(1000)))
                    .collect(),
            ),
            TimeUnit::Millisecond => millis(
                array
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .collect(),
            ),
            TimeUnit::Microsecond => millis(
                array
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .map(|v| v.map(|v| v.div_euclid(1000)))
                    .collect(),
            ),
            TimeUnit::Nanosecond => millis(
                array
                    .as_primitive::<TimestampNanosecondType>()
                    .iter()
                    .map(|v| v.map(|v| v.div_euclid(1_000_000)))
                    .collect(),
            ),
        },
        other => {
            return Err(DataFusionError::Execution(format!(
                "expected a date or a timestamp, got {other}"
            )))
        }
    })
}

fn datetime(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

/// `t` formatted by a MySQL-style `format` (Athena's `date_format`).
fn mysql_format(t: &DateTime<Utc>, format: &str) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        let piece = match spec {
            'Y' => format!("{:04}", t.year()),
            'y' => format!("{:02}", t.year().rem_euclid(100)),
            'm' => format!("{:02}", t.month()),
            'c' => t.month().to_string(),
            'd' => format!("{:02}", t.day()),
            'e' => t.day().to_string(),
            'H' => t.format("%H").to_string(),
            'k' => t.format("%-H").to_string(),
            'h' | 'I' => t.format("%I").to_string(),
            'l' => t.format("%-I").to_string(),
            'i' => t.format("%M").to_string(),
            's' | 'S' => t.format("%S").to_string(),
            'f' => format!("{:06}", t.timestamp_subsec_micros()),
            'p' => t.format("%p").to_string(),
            'T' => t.format("%H:%M:%S").to_string(),
            'r' => t.format("%I:%M:%S %p").to_string(),
            'j' => t.format("%j").to_string(),
            'W' => t.format("%A").to_string(),
            'a' => t.format("%a").to_string(),
            'M' => t.format("%B").to_string(),
            'b' => t.format("%b").to_string(),
            '%' => "%".to_owned(),
            other => {
                return Err(DataFusionError::Execution(format!(
                    "date_format(): %{other} is not a format specifier Athena knows"
                )))
            }
        };
        let _ = write!(out, "{piece}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_formats() {
        let t = DateTime::from_timestamp_millis(1_718_100_245_123).unwrap();
        assert_eq!(
            mysql_format(&t, "%Y-%m-%d %H:%i:%s.%f").unwrap(),
            "2024-06-11 10:04:05.123000"
        );
        assert_eq!(
            mysql_format(&t, "%W %a %M %b %j %T %%").unwrap(),
            "Tuesday Tue June Jun 163 10:04:05 %"
        );
        assert!(mysql_format(&t, "%Q")
            .unwrap_err()
            .to_string()
            .contains("%Q"));
    }
}
