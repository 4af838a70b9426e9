"""A follower that polls FilterLogEvents exactly as aws CLI v2's `aws logs tail --follow`
does (awscli/customizations/logs/tail.py): start at a time, keep the event ids of the
newest timestamp seen, follow nextToken, and when caught up restart from the newest
timestamp. While a writer appends to several streams, the follower must see every event
exactly once, with a filter pattern applied."""

import threading
import time

from conftest import now_ms


def follow(logs, group, start_time, pattern, stop, seen):
    newest, ids_at_newest, token = start_time, set(), None
    while not stop.is_set():
        kwargs = {"logGroupName": group, "startTime": newest, "filterPattern": pattern, "interleaved": True}
        if token:
            kwargs["nextToken"] = token
        page = logs.filter_log_events(**kwargs)
        for event in page["events"]:
            if event["timestamp"] == newest and event["eventId"] in ids_at_newest:
                continue
            seen.append(event["message"])
            if event["timestamp"] > newest:
                newest, ids_at_newest = event["timestamp"], set()
            ids_at_newest.add(event["eventId"])
        token = page.get("nextToken")
        if not token:
            time.sleep(0.05)  # the CLI sleeps 5 s; shortened for the test


def test_tail_follow_sees_every_matching_event_once(server, logs):
    group = "/tail"
    logs.create_log_group(logGroupName=group)
    for s in ("a", "b"):
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    start = now_ms() - 1000
    seen, stop = [], threading.Event()
    follower = threading.Thread(target=follow, args=(server.client(), group, start, "?REJECT ?ERROR", stop, seen))
    follower.start()
    expected = []
    writer = server.client()
    for i in range(60):
        ts = start + 10 + i // 3  # several events share each timestamp
        stream = "ab"[i % 2]
        message = f"{'REJECT' if i % 3 else 'ACCEPT'} event {i}"
        writer.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": ts, "message": message}])
        if "REJECT" in message:
            expected.append(message)
        time.sleep(0.01)
    deadline = time.monotonic() + 20
    while len(seen) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # and nothing more arrives
    stop.set()
    follower.join(timeout=10)
    assert sorted(seen) == sorted(expected), f"missing {set(expected) - set(seen)}, duplicated {len(seen) - len(set(seen))}"
