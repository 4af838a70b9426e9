//! Table-driven conformance over the shared cases (`shared/cases/`): every high- and
//! medium-confidence case must pass. A low-confidence case may disagree only when it is
//! listed, with the reasoning, in `tests/low-confidence-deviations.txt`; a listed case
//! that passes is an error too, so the list stays true.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nettrail_pattern::{Extracted, FilterPattern};
use serde_json::Value;

fn shared(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/cases")
        .join(file)
}

fn cases(file: &str) -> Vec<Value> {
    let path = shared(file);
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
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/low-confidence-deviations.txt");
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

/// Runs one case; `Err` describes the disagreement.
fn check(case: &Value) -> Result<(), String> {
    let pattern = case["pattern"].as_str().unwrap();
    let event = case["event"].as_str().unwrap();
    let compiled = FilterPattern::parse(pattern).map_err(|e| format!("rejected: {e}"))?;
    let expected = case["match"].as_bool().unwrap();
    let got = compiled.matches(event);
    if got != expected {
        return Err(format!("match = {got}, expected {expected}"));
    }
    if let Some(selector) = case.get("value_selector").and_then(Value::as_str) {
        let value = compiled.metric_value(selector, event);
        let want = &case["expected_value"];
        let ok = match (&value, want) {
            (Some(Extracted::Number(n)), Value::Number(w)) => Some(*n) == w.as_f64(),
            (Some(Extracted::Text(t)), Value::String(w)) => t == w,
            (Some(Extracted::Number(n)), Value::String(w)) => w.parse::<f64>().ok() == Some(*n),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "metric value of {selector} = {value:?}, expected {want}"
            ));
        }
    }
    if let Some(want) = case
        .get("expected_extracted_values")
        .and_then(Value::as_object)
    {
        let got: BTreeMap<String, String> = compiled
            .extracted_values(event)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        if got != want {
            return Err(format!("extracted values {got:?}, expected {want:?}"));
        }
    }
    Ok(())
}

#[test]
fn public_cases() {
    let deviations = deviations();
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in cases("filter-patterns.public.jsonl") {
        let id = case["id"].as_str().unwrap().to_owned();
        let confidence = case["confidence"].as_str().unwrap();
        match (check(&case), deviations.get(&id)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => failures.push(format!(
                "{id}: listed as a deviation but passes; remove it from the list"
            )),
            (Err(e), Some(_)) if confidence == "low" => {
                eprintln!("{id} (low confidence) deviates as recorded: {e}");
            }
            (Err(e), Some(_)) => failures.push(format!(
                "{id} ({confidence}) cannot be a recorded deviation: {e}"
            )),
            (Err(e), None) => failures.push(format!(
                "{id} ({confidence}) {:?} on {:?}: {e} [{}]",
                case["pattern"].as_str().unwrap(),
                case["event"].as_str().unwrap(),
                case["why"].as_str().unwrap()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(passed > 200, "only {passed} cases ran");
}

#[test]
fn validation_cases() {
    let mut failures = Vec::new();
    for case in cases("filter-invalid-patterns.jsonl") {
        let pattern = case["pattern"].as_str().unwrap();
        let valid = case["valid"].as_bool().unwrap();
        let result = FilterPattern::parse(pattern);
        if result.is_ok() != valid {
            failures.push(format!(
                "{pattern:.80?}: valid = {}, expected {valid} ({:?})",
                result.is_ok(),
                result.err()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
