"""`nettrail logs tail` against the real server: the line formats of `aws logs tail`
(computed here as the AWS CLI computes them, with Python's datetime), the filters, and
--follow printing events put after it started.
"""

import json
import queue
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone

from conftest import client_env, nettrail_bin, now_ms


def tail(server, *args):
    proc = subprocess.run(
        [nettrail_bin(), "logs", "tail", *args, "--endpoint-url", server.endpoint],
        env=client_env(), capture_output=True, text=True, timeout=60,
    )
    return proc


def put(logs, group, stream, events):
    logs.put_log_events(
        logGroupName=group, logStreamName=stream,
        logEvents=[{"timestamp": t, "message": m} for t, m in events],
    )


def as_utc(ms):
    return datetime.fromtimestamp(ms / 1000.0, timezone.utc)


def test_tail_prints_events_in_the_aws_cli_formats(server, logs):
    logs.create_log_group(logGroupName="/t")
    for s in ("a", "b"):
        logs.create_log_stream(logGroupName="/t", logStreamName=s)
    base = now_ms() - 60_000
    put(logs, "/t", "a", [(base, "first"), (base + 2_000, '{"k": [1, "x"]}')])
    put(logs, "/t", "b", [(base - 3_600_000 * 3, "too old"), (base + 1_123, "second  ")])
    shown = [("a", base, "first"), ("b", base + 1_123, "second  "), ("a", base + 2_000, '{"k": [1, "x"]}')]

    detailed = tail(server, "/t", "--since", "1h")
    assert detailed.returncode == 0, detailed.stderr
    assert detailed.stdout.splitlines() == [
        f"{as_utc(t).isoformat(timespec='microseconds')} {s} {m}".rstrip() for s, t, m in shown
    ]

    short = tail(server, "/t", "--since", "1h", "--format", "short")
    assert short.stdout.splitlines() == [
        f"{as_utc(t).strftime('%Y-%m-%dT%H:%M:%S')} {m}".rstrip() for _, t, m in shown
    ]

    pretty = tail(server, "/t", "--since", "1h", "--format", "json", "--log-stream-names", "a")
    expected = ""
    for s, t, m in shown:
        if s != "a":
            continue
        try:
            body = "\n" + json.dumps(json.loads(m), indent=4)
        except json.JSONDecodeError:
            body = m
        expected += f"{as_utc(t).isoformat()} {s} {body}".rstrip() + "\n"
    assert pretty.stdout == expected

    as_json = tail(server, "/t", "--since", "1h", "--json", "--filter-pattern", "second")
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(e["logStreamName"], e["timestamp"], e["message"]) for e in events] == [shown[1]]
    assert set(events[0]) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}

    older = tail(server, "/t", "--since", as_utc(base - 3_600_000 * 3).isoformat(), "--log-stream-name-prefix", "b")
    assert [line.split(" ", 2)[2] for line in older.stdout.splitlines()] == ["too old", "second"]


def test_tail_refuses_what_aws_refuses(server, logs):
    missing = tail(server, "/nope")
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr
    bad_since = tail(server, "/nope", "--since", "5h30m")
    assert bad_since.returncode != 0 and "--since" in bad_since.stderr
    logs.create_log_group(logGroupName="/t")
    both = tail(server, "/t", "--log-stream-names", "a", "--log-stream-name-prefix", "a")
    assert both.returncode != 0 and "cannot be used together" in both.stderr


def test_tail_follow_prints_events_put_after_it_started(server, logs):
    logs.create_log_group(logGroupName="/f")
    logs.create_log_stream(logGroupName="/f", logStreamName="s")
    put(logs, "/f", "s", [(now_ms() - 1_000, "before")])
    proc = subprocess.Popen(
        [nettrail_bin(), "logs", "tail", "/f", "--follow", "--since", "1m", "--format", "short",
         "--endpoint-url", server.endpoint],
        env=client_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout], daemon=True).start()

    def next_message(timeout=10):
        return lines.get(timeout=timeout).split(" ", 1)[1]

    try:
        assert next_message() == "before"
        for i in range(3):
            put(logs, "/f", "s", [(now_ms(), f"after {i}")])
            assert next_message() == f"after {i}"
        # An event a little older than the newest (out of order) still shows, once.
        put(logs, "/f", "s", [(now_ms() - 2_000, "late")])
        assert next_message() == "late"
        time.sleep(2.5)  # two more polls: nothing is printed twice
        assert lines.empty()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
