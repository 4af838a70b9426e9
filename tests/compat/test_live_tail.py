"""StartLiveTail with the real clients: boto3 parses nettrail's event stream
(initial-response, sessionStart, sessionUpdate), and the aws CLI's start-live-tail prints
the events put after it started. Errors before the stream are ordinary JSON errors.
"""

import queue
import signal
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import client_env, now_ms


def put(logs, group, stream, messages):
    t = now_ms()
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(messages)])


def test_boto3_reads_a_live_tail_session(server, logs):
    logs.create_log_group(logGroupName="/lt")
    for s in ("app-1", "app-2", "other"):
        logs.create_log_stream(logGroupName="/lt", logStreamName=s)
    put(logs, "/lt", "app-1", ["ERROR before the session"])
    response = logs.start_live_tail(logGroupIdentifiers=["/lt"], logStreamNamePrefixes=["app-"],
                                    logEventFilterPattern="ERROR")
    stream = response["responseStream"]
    events = iter(stream)
    start = next(events)["sessionStart"]
    assert start["logGroupIdentifiers"] == ["/lt"]
    assert start["logStreamNamePrefixes"] == ["app-"]
    assert start["logEventFilterPattern"] == "ERROR"
    assert start["sessionId"] and start["requestId"]

    def producer():
        time.sleep(0.3)
        put(logs, "/lt", "app-1", ["ERROR one", "INFO skipped"])
        put(logs, "/lt", "other", ["ERROR other stream"])
        put(logs, "/lt", "app-2", ["ERROR two"])

    threading.Thread(target=producer).start()
    seen = []
    deadline = time.monotonic() + 15
    for event in events:
        update = event["sessionUpdate"]
        assert update["sessionMetadata"] == {"sampled": False}
        for result in update["sessionResults"]:
            assert result["logGroupIdentifier"] == "/lt"
            assert result["ingestionTime"] >= result["timestamp"] - 10_000
            seen.append((result["logStreamName"], result["message"]))
        if len(seen) >= 2 or time.monotonic() > deadline:
            break
    stream.close()
    assert seen == [("app-1", "ERROR one"), ("app-2", "ERROR two")]


def test_live_tail_refuses_bad_requests_before_streaming(server, logs):
    def code(**kwargs):
        with pytest.raises(ClientError) as e:
            logs.start_live_tail(**kwargs)
        return e.value.response["Error"]["Code"]

    assert code(logGroupIdentifiers=["/missing"]) == "ResourceNotFoundException"
    logs.create_log_group(logGroupName="/a")
    logs.create_log_group(logGroupName="/b")
    assert code(logGroupIdentifiers=["/a"], logEventFilterPattern="{ $.x = ") == "InvalidParameterException"
    assert code(logGroupIdentifiers=["/a", "/b"], logStreamNames=["s"]) == "InvalidParameterException"
    assert code(logGroupIdentifiers=["/a"], logStreamNames=["s"], logStreamNamePrefixes=["s"]) == "InvalidParameterException"
    assert code(logGroupIdentifiers=[f"/g{i}" for i in range(11)]) == "InvalidParameterException"


def test_the_aws_cli_start_live_tail_prints_new_events(server, logs):
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/cli"
    logs.create_log_group(logGroupName="/cli")
    logs.create_log_stream(logGroupName="/cli", logStreamName="s")
    env = client_env(AWS_DISABLE_HOST_PREFIX_INJECTION="true", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(["aws", "--endpoint-url", server.endpoint, "logs", "start-live-tail",
                             "--log-group-identifiers", arn],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout], daemon=True).start()
    try:
        time.sleep(1.5)  # the session starts
        put(logs, "/cli", "s", ["hello from the cli", "second line"])
        got = [lines.get(timeout=15), lines.get(timeout=15)]
        assert got == ["hello from the cli", "second line"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_session_ends_cleanly_when_the_server_stops(server, logs):
    from botocore.exceptions import EventStreamError

    logs.create_log_group(logGroupName="/stop")
    events = iter(logs.start_live_tail(logGroupIdentifiers=["/stop"])["responseStream"])
    assert "sessionStart" in next(events)
    started = time.monotonic()
    assert server.stop() == 0
    # Not held until the 10 s drain period ends: the session is told and closed.
    assert time.monotonic() - started < 9, "a live session held the shutdown"
    with pytest.raises(EventStreamError) as e:
        for _ in events:
            pass
    assert e.value.response["Error"]["Code"] == "SessionStreamingException"
