"""The shared filter-pattern conformance cases, end to end through the server: events
are put into a log group, then FilterLogEvents and TestMetricFilter through boto3 must
return exactly the expected matches (and extracted values)."""

import json
from collections import defaultdict
from pathlib import Path

from conftest import now_ms

REPO = Path(__file__).resolve().parents[2]
CASES = REPO.parent / "shared" / "cases" / "filter-patterns.public.jsonl"
DEVIATIONS = REPO / "crates" / "nettrail-pattern" / "tests" / "low-confidence-deviations.txt"


def load_cases():
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    skipped = {
        line.split()[0]
        for line in DEVIATIONS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    return [c for c in cases if c["id"] not in skipped]


def test_filter_log_events_agrees_with_every_case(logs):
    cases = load_cases()
    assert len(cases) > 200
    logs.create_log_group(logGroupName="/patterns")
    now = now_ms()
    for case in cases:
        logs.create_log_stream(logGroupName="/patterns", logStreamName=case["id"])
        logs.put_log_events(
            logGroupName="/patterns", logStreamName=case["id"], logEvents=[{"timestamp": now, "message": case["event"]}]
        )
    by_pattern = defaultdict(list)
    for case in cases:
        by_pattern[case["pattern"]].append(case)
    wrong = []
    for pattern, group in by_pattern.items():
        matched = set()
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName="/patterns", filterPattern=pattern):
            matched.update(e["logStreamName"] for e in page["events"])
        for case in group:
            if (case["id"] in matched) != case["match"]:
                wrong.append(f"{case['id']}: {pattern!r} on {case['event']!r}: expected match={case['match']}")
    assert not wrong, "\n".join(wrong)


def test_test_metric_filter_agrees_with_every_case(logs):
    wrong = []
    for case in load_cases():
        result = logs.test_metric_filter(filterPattern=case["pattern"], logEventMessages=["unrelated first message", case["event"]])
        mine = [m for m in result["matches"] if m["eventNumber"] == 2]
        if bool(mine) != case["match"]:
            wrong.append(f"{case['id']}: expected match={case['match']}")
            continue
        if mine:
            assert mine[0]["eventMessage"] == case["event"]
        if "expected_extracted_values" in case and mine:
            if mine[0]["extractedValues"] != case["expected_extracted_values"]:
                wrong.append(f"{case['id']}: extracted {mine[0]['extractedValues']}, expected {case['expected_extracted_values']}")
    assert not wrong, "\n".join(wrong)
