//! Table-driven conformance over `shared/cases/logs-insights.public.jsonl`: every case
//! must pass unless it is listed, with the reason, in `tests/deviations.txt`; a listed
//! case that passes is an error too, so the list stays true.
//!
//! Each case's events are fed newest first (the store's order for a query), within
//! the case's time range (its `startTime` second through the whole `endTime` second),
//! as events of group `nettrail-test` in account `123456789012` unless it says
//! otherwise. `@ptr` is left out of the comparison (it is nettrail's own).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use nettrail_insights::{Compiled, InputEvent};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/cases/logs-insights.public.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} (shared/ must sit beside the repository): {e}",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn deviations() -> BTreeMap<String, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/deviations.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, why) = l.split_once(' ').unwrap_or((l, ""));
            (id.to_owned(), why.trim().to_owned())
        })
        .collect()
}

type Rows = Vec<Vec<(String, String)>>;

fn run(case: &Value) -> Result<Rows, String> {
    let api = &case["api"];
    let limit = api["limit"].as_u64().map(|l| l as usize);
    let compiled = Compiled::new(case["query"].as_str().unwrap(), limit)
        .map_err(|e| format!("MalformedQueryException: {e}"))?;
    let group = api["groupName"].as_str().unwrap_or("nettrail-test");
    let account = api["accountId"].as_str().unwrap_or("123456789012");
    if let Some(source) = compiled.source() {
        if !source.name_prefixes.is_empty()
            && !source
                .name_prefixes
                .iter()
                .any(|p| group.starts_with(p.as_str()))
        {
            return Ok(Vec::new());
        }
    }
    let start_ms = api["startTime"].as_i64().map_or(i64::MIN, |s| s * 1000);
    let end_ms = api["endTime"].as_i64().map_or(i64::MAX, |s| s * 1000 + 999);
    let mut events: Vec<(usize, &Value)> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .collect();
    // Newest first; of equal timestamps, the later one first.
    events.sort_by_key(|(i, e)| std::cmp::Reverse((e["timestamp"].as_i64().unwrap(), *i)));
    let log: Arc<str> = Arc::from(format!("{account}:{group}"));
    let mut run = compiled.run(start_ms, end_ms);
    for (i, e) in events {
        let ts = e["timestamp"].as_i64().unwrap();
        if ts < start_ms || ts > end_ms {
            continue;
        }
        let more = run.push(InputEvent {
            timestamp: ts,
            ingestion_time: ts,
            stream: Arc::from(e["stream"].as_str().unwrap_or("s")),
            log: Arc::clone(&log),
            message: e["message"].as_str().unwrap().to_owned(),
            ptr: format!("ptr-{i}"),
        });
        if !more {
            break;
        }
    }
    Ok(run
        .finish()
        .rows
        .into_iter()
        .map(|row| row.into_iter().filter(|(f, _)| f != "@ptr").collect())
        .collect())
}

fn expected_rows(expected: &Value) -> Rows {
    expected
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|cell| {
                    (
                        cell["field"].as_str().unwrap().to_owned(),
                        cell["value"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect()
}

fn check(case: &Value) -> Result<(), String> {
    let got = run(case);
    let expected = &case["expected"];
    if let Some(error) = expected.get("error").and_then(Value::as_str) {
        return match got {
            Err(e) if e.starts_with(error) => Ok(()),
            Err(e) => Err(format!("expected {error}, got {e}")),
            Ok(rows) => Err(format!("expected {error}, got rows {rows:?}")),
        };
    }
    let mut got = got?;
    let mut want = expected_rows(expected);
    if !case["ordered"].as_bool().unwrap_or(true) {
        got.sort();
        want.sort();
    }
    if got != want {
        return Err(format!("got {got:?}\n    expected {want:?}"));
    }
    Ok(())
}

#[test]
fn every_case_holds_or_is_a_listed_deviation() {
    let deviations = deviations();
    let mut failures = Vec::new();
    let mut passed = 0;
    let cases = cases();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        match (check(case), deviations.get(id)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => failures.push(format!("{id}: listed as a deviation but passes")),
            (Err(_), Some(_)) => {}
            (Err(e), None) => failures.push(format!("{id} ({}): {e}", case["query"])),
        }
    }
    eprintln!(
        "{passed} of {} cases pass, {} listed deviations",
        cases.len(),
        deviations.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
