//! A table's partition columns: values every row of one part shares, so the part's
//! folder (or, for the row tail, each event's hour) gives them and a filter on them
//! decides whole parts.
//!
//! AWS's documentation shows flow-log tables in two shapes, and a group is a table
//! of each:
//! - [`TableShape::Hive`] (the group's name): the Hive folders of the parts,
//!   `aws-account-id`, `aws-service`, `aws-region`, `year`, `month`, `day`, `hour`
//!   (strings, as in AWS's Parquet DDL), and `date`, the day as a `date` (the
//!   partition column of AWS's text DDL: `WHERE date > current_date - interval '7'
//!   day`, `day_of_week(date)`).
//! - [`TableShape::ByDay`] (the name with `_by_day`): the shape of AWS's
//!   partition-projection DDL, `region` (unless the flow format has its own) and
//!   `day` as `'YYYY/MM/DD'` (`WHERE day >= '2021/02/01'`).

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::Expr;
use datafusion::scalar::ScalarValue;
use nettrail_columnar::PartLayout;
use nettrail_formats::time::UtcDateTime;

/// The Hive partition columns of a part's folder, in order.
pub const PARTITION_COLUMNS: [&str; 7] = [
    "aws-account-id",
    "aws-service",
    "aws-region",
    "year",
    "month",
    "day",
    "hour",
];

/// Which of AWS's documented table shapes a table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableShape {
    /// The parts' Hive folders, plus `date`.
    Hive,
    /// Partition projection's `region` and `day` (`'YYYY/MM/DD'`).
    ByDay,
}

/// The suffix of a group's [`TableShape::ByDay`] table.
pub const BY_DAY_SUFFIX: &str = "_by_day";

/// Where rows of a part live: what its folder says, or what a part of the tail's
/// events would say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// `aws-account-id=`.
    pub account_id: String,
    /// `aws-service=`.
    pub service: String,
    /// `aws-region=`.
    pub region: String,
}

impl TableShape {
    /// The partition columns of a table of this shape over `layout`.
    pub fn fields(self, layout: &PartLayout) -> Vec<Field> {
        match self {
            TableShape::Hive => PARTITION_COLUMNS
                .iter()
                .map(|c| Field::new(*c, DataType::Utf8, true))
                .chain([Field::new("date", DataType::Date32, true)])
                .collect(),
            TableShape::ByDay => {
                let mut fields = Vec::new();
                if !has_region(layout) {
                    fields.push(Field::new("region", DataType::Utf8, true));
                }
                fields.push(Field::new("day", DataType::Utf8, true));
                fields
            }
        }
    }

    /// The partition values of rows in `folder` whose events fall in `hour` (any time
    /// in it), in the order of [`fields`](Self::fields).
    pub fn values(
        self,
        layout: &PartLayout,
        folder: &Folder,
        hour: &UtcDateTime,
    ) -> Vec<ScalarValue> {
        let text = |s: String| ScalarValue::Utf8(Some(s));
        match self {
            TableShape::Hive => {
                let days = UtcDateTime {
                    hour: 0,
                    minute: 0,
                    second: 0,
                    ..*hour
                }
                .to_unix()
                .map(|s| s.div_euclid(86_400) as i32);
                vec![
                    text(folder.account_id.clone()),
                    text(folder.service.clone()),
                    text(folder.region.clone()),
                    text(format!("{:04}", hour.year)),
                    text(format!("{:02}", hour.month)),
                    text(format!("{:02}", hour.day)),
                    text(format!("{:02}", hour.hour)),
                    ScalarValue::Date32(days),
                ]
            }
            TableShape::ByDay => {
                let mut values = Vec::new();
                if !has_region(layout) {
                    values.push(text(folder.region.clone()));
                }
                values.push(text(format!(
                    "{:04}/{:02}/{:02}",
                    hour.year, hour.month, hour.day
                )));
                values
            }
        }
    }
}

fn has_region(layout: &PartLayout) -> bool {
    layout.schema().field_with_name("region").is_ok()
}

/// Which of `rows` (the partition values of parts, in the order of `fields`) may hold
/// a row every one of `filters` keeps. Only filters on partition columns alone are
/// looked at; a filter that cannot be evaluated keeps every part.
pub fn may_match(
    state: &dyn Session,
    filters: &[Expr],
    fields: &[Field],
    rows: &[Vec<ScalarValue>],
) -> Vec<bool> {
    let mut keep = vec![true; rows.len()];
    if rows.is_empty() {
        return keep;
    }
    let names: HashSet<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let on_partitions: Vec<Expr> = filters
        .iter()
        .filter(|f| {
            let columns = f.column_refs();
            !columns.is_empty() && columns.iter().all(|c| names.contains(c.name.as_str()))
        })
        .map(|f| unnormalize_col(f.clone()))
        .collect();
    if on_partitions.is_empty() {
        return keep;
    }
    let Ok(batch) = partition_batch(fields, rows) else {
        return keep;
    };
    let Ok(df_schema) = DFSchema::try_from(batch.schema().as_ref().clone()) else {
        return keep;
    };
    for filter in on_partitions {
        let verdicts = state
            .create_physical_expr(filter, &df_schema)
            .and_then(|e| e.evaluate(&batch))
            .and_then(|v| v.into_array(batch.num_rows()));
        let Ok(verdicts) = verdicts else { continue };
        let Some(verdicts) = verdicts.as_any().downcast_ref::<BooleanArray>() else {
            continue;
        };
        for (keep, verdict) in keep.iter_mut().zip(verdicts.iter()) {
            // Null or false: no row of the part passes the filter.
            *keep &= verdict == Some(true);
        }
    }
    keep
}

/// `rows` of partition values as columns of `fields`.
pub fn partition_batch(fields: &[Field], rows: &[Vec<ScalarValue>]) -> Result<RecordBatch> {
    let columns = (0..fields.len())
        .map(|i| ScalarValue::iter_to_array(rows.iter().map(|r| r[i].clone())))
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields.to_vec())),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nettrail_formats::flow::LogFormat;

    fn folder() -> Folder {
        Folder {
            account_id: "123456789012".into(),
            service: "vpcflowlogs".into(),
            region: "eu-west-1".into(),
        }
    }

    #[test]
    fn hive_values_carry_the_day_as_a_date() {
        let hour = UtcDateTime::from_unix(1_718_100_245);
        let layout = PartLayout::Flow(LogFormat::default_vpc());
        let values = TableShape::Hive.values(&layout, &folder(), &hour);
        assert_eq!(values.len(), TableShape::Hive.fields(&layout).len());
        assert_eq!(values[3], ScalarValue::Utf8(Some("2024".into())));
        assert_eq!(values[6], ScalarValue::Utf8(Some("10".into())));
        assert_eq!(values[7], ScalarValue::Date32(Some(19_885)));
    }

    #[test]
    fn by_day_has_region_only_when_the_format_lacks_it() {
        let hour = UtcDateTime::from_unix(1_718_100_245);
        let default = PartLayout::Flow(LogFormat::default_vpc());
        assert_eq!(
            TableShape::ByDay.values(&default, &folder(), &hour),
            vec![
                ScalarValue::Utf8(Some("eu-west-1".into())),
                ScalarValue::Utf8(Some("2024/06/11".into()))
            ]
        );
        let with_region = PartLayout::Flow(LogFormat::parse("${srcaddr} ${region}").unwrap());
        assert_eq!(TableShape::ByDay.fields(&with_region).len(), 1);
    }
}
