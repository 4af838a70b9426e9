"""The Firehose HTTP endpoint receiver with recorded-shape deliveries (the request of
the Firehose HTTP endpoint delivery specification): CloudWatch Logs subscription
records unpacked into their own group and stream, other records one event per line,
gzip and plain bodies, retries stored once (also across a restart), wrong keys and bad
bodies refused with the protocol's answers.
"""

import base64
import gzip
import json
import time
import urllib.request

import pytest

from conftest import NettrailServer

KEY = "firehose-test-key-0123456789"


def subscription_record(group, stream, events, message_type="DATA_MESSAGE"):
    doc = {
        "messageType": message_type,
        "owner": "111111111111",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["to-firehose"],
        "logEvents": [{"id": str(10**55 + i), "timestamp": t, "message": m} for i, (t, m) in enumerate(events)],
    }
    return gzip.compress(json.dumps(doc).encode(), compresslevel=6)


CONTROL = gzip.compress(json.dumps({
    "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
    "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1498519943285,
    "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}).encode())


def deliver(server, request_id, records, key=KEY, gzip_body=False, raw_body=None, path="/firehose", claim_gzip=False):
    body = raw_body if raw_body is not None else json.dumps({
        "requestId": request_id,
        "timestamp": int(time.time() * 1000),
        "records": [{"data": base64.b64encode(r).decode()} for r in records],
    }).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:123456789:deliverystream/testStream",
        "X-Amz-Firehose-Common-Attributes": '{"commonAttributes":{}}',
    }
    if key is not None:
        headers["X-Amz-Firehose-Access-Key"] = key
    if gzip_body:
        body = gzip.compress(body)
    if gzip_body or claim_gzip:
        headers["Content-Encoding"] = "gzip"
    req = urllib.request.Request(server.endpoint + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


@pytest.fixture
def firehose_server(tmp_path):
    srv = NettrailServer(tmp_path / "data", config=f'[firehose]\naccess_keys = ["{KEY}"]\nmax_body_bytes = 200000\n').start()
    yield srv
    srv.stop()


def events(logs, group, stream=None):
    kwargs = {"logGroupName": group}
    if stream:
        kwargs["logStreamNames"] = [stream]
    return [(e["timestamp"], e["message"]) for e in logs.filter_log_events(**kwargs)["events"]]


def test_records_are_unpacked_and_retries_are_stored_once(firehose_server, tmp_path):
    logs = firehose_server.client()
    old = int(time.time() * 1000) - 30 * 86_400_000  # a month old: no 14-day limit here
    records = [
        subscription_record("/aws/vpn/tunnels", "vpn-0abc_203.0.113.10", [(old, "tunnel up"), (old + 5, "tunnel rekey")]),
        CONTROL,
        b"2 123 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1 2 ACCEPT OK\n2 123 eni-1 10.0.0.2 10.0.0.1 2 1 6 1 40 1 2 ACCEPT OK\n",
    ]
    status, headers, answer = deliver(firehose_server, "req-1", records)
    assert status == 200, answer
    assert headers["Content-Type"] == "application/json"
    assert set(answer) == {"requestId", "timestamp"} and answer["requestId"] == "req-1"
    assert events(logs, "/aws/vpn/tunnels", "vpn-0abc_203.0.113.10") == [(old, "tunnel up"), (old + 5, "tunnel rekey")]
    assert len(events(logs, "/firehose/records", "firehose")) == 2

    # Firehose retries with the same request id: stored once, also after a restart.
    assert deliver(firehose_server, "req-1", records)[0] == 200
    firehose_server.stop()
    firehose_server.start()
    logs = firehose_server.client()
    assert deliver(firehose_server, "req-1", records)[0] == 200
    assert len(events(logs, "/aws/vpn/tunnels")) == 2
    assert len(events(logs, "/firehose/records")) == 2

    # A gzip body with a new id is a new delivery.
    status, _, answer = deliver(firehose_server, "req-2", [subscription_record("/aws/vpn/tunnels", "vpn-0abc_203.0.113.10", [(old + 9, "dpd")])], gzip_body=True)
    assert status == 200, answer
    assert len(events(logs, "/aws/vpn/tunnels")) == 3


def test_wrong_keys_and_bad_bodies_get_the_protocol_answers(firehose_server):
    status, _, answer = deliver(firehose_server, "r-wrong", [b"x"], key="not-the-key")
    assert status == 401 and answer["requestId"] == "r-wrong" and "Access-Key" in answer["errorMessage"]
    status, _, answer = deliver(firehose_server, "r-none", [b"x"], key=None)
    assert status == 401
    status, _, answer = deliver(firehose_server, "r-bad", [], raw_body=b'{"requestId": 1}')
    assert status == 400 and "not a Firehose delivery request" in answer["errorMessage"]
    status, _, answer = deliver(firehose_server, "r-gz", [b"x"], claim_gzip=True, raw_body=b"\x1f\x8b not really gzip")
    assert status == 400 and "gzip" in answer["errorMessage"]
    big = [b"y" * 150_000, b"z" * 150_000]
    status, _, answer = deliver(firehose_server, "r-big", big)
    assert status == 413 and answer["requestId"] == "r-big"
    logs = firehose_server.client()
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="/firehose/records")


def test_without_a_configured_key_every_delivery_is_refused(server):
    status, _, answer = deliver(server, "r-1", [b"x"])
    assert status == 401 and "no firehose access key" in answer["errorMessage"]
