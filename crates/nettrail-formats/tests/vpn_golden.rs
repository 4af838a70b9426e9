//! Golden VPN log entries: every verbatim sample in the spec reads and writes back
//! byte for byte (compact JSON, keys in the sample's order).

use nettrail_formats::vpn::client_vpn::{AttemptStatus, ConnectionLogEntry, EntryType};

#[test]
fn every_client_vpn_sample_reads_and_writes_back() {
    let data = include_str!("data/client-vpn-golden.jsonl");
    let mut checked = 0;
    for (number, line) in data.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let entry = ConnectionLogEntry::from_json(line)
            .unwrap_or_else(|e| panic!("line {}: {e}", number + 1));
        assert_eq!(entry.to_json(), line, "line {}", number + 1);
        assert!(entry.entry_type().is_some(), "line {}", number + 1);
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn the_samples_mean_what_they_say() {
    let data = include_str!("data/client-vpn-golden.jsonl");
    let entries: Vec<ConnectionLogEntry> = data
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| ConnectionLogEntry::from_json(l).unwrap())
        .collect();
    // The 2026 denied attempt and the reset after a periodic re-evaluation.
    let denied = entries
        .iter()
        .find(|e| e.get("connection-attempt-failure-reason") == Some("authorization-policy-deny"))
        .unwrap();
    assert_eq!(denied.attempt_status(), Some(AttemptStatus::Failed));
    assert_eq!(denied.get("connection-start-time"), None, "NA");
    assert_eq!(
        denied.authorization_policy_evaluation().unwrap()["result"],
        "error"
    );
    let reset = entries
        .iter()
        .find(|e| e.entry_type() == Some(EntryType::Reset))
        .unwrap();
    assert_eq!(reset.number("ingress-bytes"), Some(21017));
    let duration = reset
        .time("connection-end-time")
        .unwrap()
        .to_unix()
        .unwrap()
        - reset
            .time("connection-start-time")
            .unwrap()
            .to_unix()
            .unwrap();
    assert_eq!(
        reset.number("connection-duration-seconds"),
        Some(duration as u64)
    );
}
