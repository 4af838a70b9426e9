//! `nettrail sql`: SQL over the server's log groups, through its Athena-compatible API
//! (StartQueryExecution, then GetQueryExecution until the query ends, then
//! GetQueryResults page by page). Progress goes to stderr while the query runs; Ctrl-C
//! stops the query on the server (StopQueryExecution) before exiting. The result is
//! printed as an aligned table, as JSON lines (`--json`, numbers as numbers) or as CSV
//! (`--csv`).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nettrail_client::Client;
use serde_json::{json, Value};

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
    Csv,
}

/// A finished query's result: column names and types, rows of optional text.
pub(crate) struct ResultTable {
    pub(crate) names: Vec<String>,
    pub(crate) types: Vec<String>,
    pub(crate) rows: Vec<Vec<Option<String>>>,
}

impl ResultTable {
    /// Prints the table in `format`.
    pub(crate) fn write(&self, out: &mut impl Write, format: OutputFormat) -> Result<()> {
        match format {
            OutputFormat::Table => write_table(out, self),
            OutputFormat::Json => write_json(out, self),
            OutputFormat::Csv => write_csv(out, self),
        }
    }
}

/// A spinner on stderr while a query runs, when stderr is a terminal.
pub(crate) fn spinner() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    })
}

/// Runs `query` and prints its result.
pub(crate) async fn run(client: &Client, query: &str, format: OutputFormat) -> Result<()> {
    let started = client
        .athena(
            "StartQueryExecution",
            &json!({ "QueryString": query, "QueryExecutionContext": { "Database": "default" } }),
        )
        .await?;
    let id = started["QueryExecutionId"]
        .as_str()
        .context("the server's answer has no QueryExecutionId")?
        .to_owned();
    let progress = spinner();
    let since = Instant::now();
    let mut wait = Duration::from_millis(20);
    let get = json!({ "QueryExecutionId": id });
    let execution = loop {
        let answer = tokio::select! {
            answer = client.athena("GetQueryExecution", &get) => answer?,
            _ = tokio::signal::ctrl_c() => {
                let _ = client.athena("StopQueryExecution", &json!({ "QueryExecutionId": id })).await;
                if let Some(bar) = &progress {
                    bar.finish_and_clear();
                }
                bail!("query {id} cancelled");
            }
        };
        let execution = answer["QueryExecution"].clone();
        let state = execution["Status"]["State"].as_str().unwrap_or("UNKNOWN");
        if matches!(state, "SUCCEEDED" | "FAILED" | "CANCELLED") {
            break execution;
        }
        if let Some(bar) = &progress {
            bar.set_message(format!(
                "{state} {:.1} s  (Ctrl-C stops the query)",
                since.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(500));
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    match execution["Status"]["State"].as_str() {
        Some("SUCCEEDED") => {}
        Some("CANCELLED") => bail!("query {id} was cancelled"),
        _ => bail!(
            "query failed: {}",
            execution["Status"]["StateChangeReason"]
                .as_str()
                .unwrap_or("no reason given")
        ),
    }
    let table = results(client, &id).await?;
    let mut out = std::io::stdout().lock();
    table.write(&mut out, format)?;
    if progress.is_some() {
        let stats = &execution["Statistics"];
        eprintln!(
            "{} rows in {:.2} s, {} scanned",
            table.rows.len(),
            stats["EngineExecutionTimeInMillis"].as_f64().unwrap_or(0.0) / 1000.0,
            human_bytes(stats["DataScannedInBytes"].as_u64().unwrap_or(0))
        );
    }
    Ok(())
}

/// Every page of the result.
async fn results(client: &Client, id: &str) -> Result<ResultTable> {
    let mut table = ResultTable {
        names: Vec::new(),
        types: Vec::new(),
        rows: Vec::new(),
    };
    let mut token: Option<String> = None;
    let mut first = true;
    loop {
        let mut request = json!({ "QueryExecutionId": id, "MaxResults": 1000 });
        if let Some(t) = &token {
            request["NextToken"] = t.as_str().into();
        }
        let page = client.athena("GetQueryResults", &request).await?;
        if first {
            for column in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
                .as_array()
                .into_iter()
                .flatten()
            {
                table
                    .names
                    .push(column["Name"].as_str().unwrap_or("").to_owned());
                table
                    .types
                    .push(column["Type"].as_str().unwrap_or("varchar").to_owned());
            }
        }
        let rows = page["ResultSet"]["Rows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, row) in rows.iter().enumerate() {
            if first && i == 0 {
                continue; // the header row
            }
            table.rows.push(
                row["Data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| d["VarCharValue"].as_str().map(str::to_owned))
                    .collect(),
            );
        }
        first = false;
        match page["NextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(table),
        }
    }
}

fn write_table(out: &mut impl Write, table: &ResultTable) -> Result<()> {
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    let mut widths: Vec<usize> = table.names.iter().map(|n| n.chars().count()).collect();
    for row in &table.rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(shown(v).chars().count().min(120));
        }
    }
    let numeric: Vec<bool> = table.types.iter().map(|t| is_numeric(t)).collect();
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c: String = c.chars().take(120).collect();
                if numeric[i] {
                    format!("{c:>width$}", width = widths[i])
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(table.names.clone()))?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    )?;
    for row in &table.rows {
        writeln!(out, "{}", line(row.iter().map(shown).collect()))?;
    }
    Ok(())
}

fn is_numeric(sql_type: &str) -> bool {
    matches!(
        sql_type,
        "tinyint" | "smallint" | "integer" | "bigint" | "float" | "real" | "double" | "decimal"
    )
}

fn write_json(out: &mut impl Write, table: &ResultTable) -> Result<()> {
    for row in &table.rows {
        let mut object = serde_json::Map::new();
        for ((name, sql_type), value) in table.names.iter().zip(&table.types).zip(row) {
            let value = match value {
                None => Value::Null,
                Some(v) if is_numeric(sql_type) => v
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| v.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| Value::from(v.as_str())),
                Some(v) if sql_type == "boolean" => Value::Bool(v == "true"),
                Some(v) => Value::from(v.as_str()),
            };
            object.insert(name.clone(), value);
        }
        writeln!(out, "{}", Value::Object(object))?;
    }
    Ok(())
}

fn write_csv(out: &mut impl Write, table: &ResultTable) -> Result<()> {
    let field = |v: &str| -> String {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_owned()
        }
    };
    writeln!(
        out,
        "{}",
        table
            .names
            .iter()
            .map(|n| field(n))
            .collect::<Vec<_>>()
            .join(",")
    )?;
    for row in &table.rows {
        writeln!(
            out,
            "{}",
            row.iter()
                .map(|v| v.as_deref().map(field).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        )?;
    }
    Ok(())
}

pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResultTable {
        ResultTable {
            names: vec!["action".into(), "n".into()],
            types: vec!["varchar".into(), "bigint".into()],
            rows: vec![
                vec![Some("ACCEPT".into()), Some("12".into())],
                vec![Some("a,\"b\"".into()), None],
            ],
        }
    }

    #[test]
    fn tables_align_numbers_right_and_show_null() {
        let mut out = Vec::new();
        write_table(&mut out, &sample()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "action |    n\n-------+-----\nACCEPT |   12\na,\"b\"  | NULL\n"
        );
    }

    #[test]
    fn json_lines_type_numbers_and_csv_quotes() {
        let mut out = Vec::new();
        write_json(&mut out, &sample()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"action\":\"ACCEPT\",\"n\":12}\n{\"action\":\"a,\\\"b\\\"\",\"n\":null}\n"
        );
        let mut out = Vec::new();
        write_csv(&mut out, &sample()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "action,n\nACCEPT,12\n\"a,\"\"b\"\"\",\n"
        );
    }
}
