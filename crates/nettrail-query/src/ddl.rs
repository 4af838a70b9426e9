//! `CREATE EXTERNAL TABLE` for a group's parts, for Athena, Trino and Spark (Hive
//! DDL over Parquet with AWS's Hive partitions). `protocol` is declared `int`, as the
//! data is (AWS's documentation says `bigint`, and engines that check then refuse
//! AWS's own files).

use arrow_schema::DataType;
use nettrail_columnar::PartLayout;

use crate::catalog::table_alias;
use crate::partitions::PARTITION_COLUMNS;

/// The DDL of a table named after `group` whose parts are under `location`.
pub fn create_external_table(group: &str, layout: &PartLayout, location: &str) -> String {
    let schema = layout.schema();
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = match f.data_type() {
                DataType::Int32 => "int",
                DataType::Int64 => "bigint",
                DataType::Boolean => "boolean",
                DataType::Timestamp(..) => "timestamp",
                _ => "string",
            };
            format!("  `{}` {ty}", f.name())
        })
        .collect();
    let partitions: Vec<String> = PARTITION_COLUMNS
        .iter()
        .map(|c| format!("  `{c}` string"))
        .collect();
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS `{}` (\n{}\n)\nPARTITIONED BY (\n{}\n)\nSTORED AS PARQUET\nLOCATION '{}'\nTBLPROPERTIES ('parquet.compression'='ZSTD');\n\nMSCK REPAIR TABLE `{}`;\n",
        table_alias(group),
        columns.join(",\n"),
        partitions.join(",\n"),
        location,
        table_alias(group),
    )
}
