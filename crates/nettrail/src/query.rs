//! `nettrail logs query`: a Logs Insights query over log groups, through StartQuery and
//! GetQueryResults as the aws CLI would run it. While the query runs, stderr shows its
//! status, the records scanned and matched and the rows found so far; Ctrl-C stops it
//! on the server (StopQuery) and prints the rows it had. The rows are printed as an
//! aligned table, JSON lines or CSV, every value as Insights gives it (text), `@ptr`
//! only in JSON. With `--all` every row is fetched however many (GetQueryResults
//! pages), else the first 10,000 as AWS returns them.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nettrail_client::Client;
use serde_json::{json, Value};

use crate::sql::{human_bytes, OutputFormat, ResultTable};

/// What to run.
pub(crate) struct QueryOptions {
    pub(crate) groups: Vec<String>,
    pub(crate) query: String,
    /// Unix seconds, inclusive.
    pub(crate) start: i64,
    /// Unix seconds, inclusive.
    pub(crate) end: i64,
    pub(crate) limit: Option<u32>,
    pub(crate) all: bool,
    pub(crate) format: OutputFormat,
}

/// The query's time range in Unix seconds (StartQuery's): from `--start-time`, else
/// `--since`, to `--end-time`, else now; each a relative time or an ISO 8601 time.
pub(crate) fn time_range(
    since: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<(i64, i64)> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let time = |flag: &str, value: &str| {
        crate::tail::parse_since(value, now_ms).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let start_ms = match start {
        Some(start) => time("--start-time", start)?,
        None => time("--since", since)?,
    };
    let end_ms = match end {
        Some(end) => time("--end-time", end)?,
        None => now_ms,
    };
    if end_ms < start_ms {
        bail!("the time range ends before it starts");
    }
    Ok((start_ms.div_euclid(1000), end_ms.div_euclid(1000)))
}

/// Runs the query and prints its rows.
pub(crate) async fn run(client: &Client, options: &QueryOptions) -> Result<()> {
    let mut request = json!({
        "logGroupNames": options.groups,
        "queryString": options.query,
        "startTime": options.start,
        "endTime": options.end,
    });
    if options.groups.is_empty() {
        // A SOURCE command names the groups.
        request
            .as_object_mut()
            .expect("an object")
            .remove("logGroupNames");
    }
    if let Some(limit) = options.limit {
        request["limit"] = limit.into();
    }
    let started = client.logs("StartQuery", &request).await?;
    let id = started["queryId"]
        .as_str()
        .context("the server's answer has no queryId")?
        .to_owned();
    let progress = crate::sql::spinner();
    let since = Instant::now();
    let mut wait = Duration::from_millis(20);
    let get = json!({ "queryId": id, "maxItems": 1 });
    let (status, mut cancelled) = loop {
        let answer = tokio::select! {
            answer = client.logs("GetQueryResults", &get) => answer?,
            _ = tokio::signal::ctrl_c() => {
                let _ = client.logs("StopQuery", &json!({ "queryId": id })).await;
                break ("Cancelled".to_owned(), true);
            }
        };
        let status = answer["status"].as_str().unwrap_or("Unknown").to_owned();
        if !matches!(status.as_str(), "Scheduled" | "Running") {
            break (status, false);
        }
        if let Some(bar) = &progress {
            let stats = &answer["statistics"];
            bar.set_message(format!(
                "{status} {:.1} s: {:.0} records scanned, {:.0} matched, {} scanned  (Ctrl-C stops the query)",
                since.elapsed().as_secs_f64(),
                stats["recordsScanned"].as_f64().unwrap_or(0.0),
                stats["recordsMatched"].as_f64().unwrap_or(0.0),
                human_bytes(stats["bytesScanned"].as_f64().unwrap_or(0.0) as u64),
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(500));
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    // A stopped query ends Cancelled with the rows it had found.
    let (rows, statistics) = if cancelled {
        wait_for_end(client, &id).await?
    } else {
        results(client, &id, options.all).await?
    };
    match status.as_str() {
        "Complete" | "Cancelled" => {}
        "Timeout" => cancelled = true,
        other => bail!("query {id} ended {other}"),
    }
    let table = table_of(&rows, options.format == OutputFormat::Json);
    let mut out = std::io::stdout().lock();
    table.write(&mut out, options.format)?;
    if progress.is_some() || cancelled {
        eprintln!(
            "{} rows in {:.2} s; {:.0} records scanned, {:.0} matched, {} scanned{}",
            table.rows.len(),
            since.elapsed().as_secs_f64(),
            statistics["recordsScanned"].as_f64().unwrap_or(0.0),
            statistics["recordsMatched"].as_f64().unwrap_or(0.0),
            human_bytes(statistics["bytesScanned"].as_f64().unwrap_or(0.0) as u64),
            if cancelled {
                " (stopped: partial results)"
            } else {
                ""
            },
        );
    }
    Ok(())
}

/// The rows and statistics of a query asked to stop, once it has.
async fn wait_for_end(client: &Client, id: &str) -> Result<(Vec<Value>, Value)> {
    for _ in 0..100 {
        let answer = client
            .logs("GetQueryResults", &json!({ "queryId": id, "maxItems": 1 }))
            .await?;
        if !matches!(answer["status"].as_str(), Some("Scheduled" | "Running")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    results(client, id, true).await
}

/// The rows of an ended query (every page with `all`, else the first) and its
/// statistics.
async fn results(client: &Client, id: &str, all: bool) -> Result<(Vec<Value>, Value)> {
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = json!({ "queryId": id });
        if let Some(t) = &token {
            request["nextToken"] = t.as_str().into();
        }
        let page = client.logs("GetQueryResults", &request).await?;
        rows.extend(page["results"].as_array().cloned().unwrap_or_default());
        match page["nextToken"].as_str() {
            Some(next) if all => token = Some(next.to_owned()),
            _ => return Ok((rows, page["statistics"].clone())),
        }
    }
}

/// The rows as a table: its columns are the fields in the order they first appear,
/// `@ptr` only if `with_ptr`.
fn table_of(rows: &[Value], with_ptr: bool) -> ResultTable {
    let cells = |row: &Value| -> Vec<(String, String)> {
        row.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c["field"].as_str()?.to_owned(),
                    c["value"].as_str().unwrap_or_default().to_owned(),
                ))
            })
            .filter(|(f, _)| with_ptr || f != "@ptr")
            .collect()
    };
    let mut names: Vec<String> = Vec::new();
    let rows: Vec<Vec<(String, String)>> = rows.iter().map(cells).collect();
    for row in &rows {
        for (field, _) in row {
            if !names.contains(field) {
                names.push(field.clone());
            }
        }
    }
    ResultTable {
        types: vec!["varchar".to_owned(); names.len()],
        rows: rows
            .iter()
            .map(|row| {
                names
                    .iter()
                    .map(|n| row.iter().find(|(f, _)| f == n).map(|(_, v)| v.clone()))
                    .collect()
            })
            .collect(),
        names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_first_appearance_and_missing_values_are_null() {
        let rows = vec![
            json!([{"field": "a", "value": "1"}, {"field": "@ptr", "value": "p"}]),
            json!([{"field": "b", "value": "x"}, {"field": "a", "value": "2"}]),
        ];
        let table = table_of(&rows, false);
        assert_eq!(table.names, ["a", "b"]);
        assert_eq!(
            table.rows,
            vec![
                vec![Some("1".to_owned()), None],
                vec![Some("2".to_owned()), Some("x".to_owned())]
            ]
        );
        assert_eq!(table_of(&rows, true).names, ["a", "@ptr", "b"]);
    }
}
