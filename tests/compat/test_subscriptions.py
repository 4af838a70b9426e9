"""Subscription filters end to end with the real server: the seed scenario (Client VPN
connection logs, `{ $.connection-attempt-status = "successful" }`, a webhook that gets
the Lambda-style payload), a file destination, AWS's validation and limits, a webhook
outage (nothing lost, order kept) and `kill -9` mid-stream (at least once).
"""

import base64
import gzip
import json
import re
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from conftest import REPO, NettrailServer, client_env, make_tls_certificate, nettrail_bin, now_ms

SPEC = REPO.parent / "shared" / "specs" / "network-log-formats.md"
SUCCESSFUL = '{ $.connection-attempt-status = "successful" }'


def client_vpn_samples():
    """Every verbatim Client VPN connection log entry of the spec, as compact JSON."""
    samples = []
    for block in re.findall(r"```\w*\n(.*?)```", SPEC.read_text(), re.S):
        try:
            entry = json.loads(block)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "connection-attempt-status" in entry:
            samples.append(json.dumps(entry, separators=(",", ":")))
    return samples


class Webhook:
    """A local HTTP endpoint that decodes what it receives, and can fail on purpose."""

    def __init__(self):
        self.documents = []
        self.fail_next = 0
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.lock:
                    if hook.fail_next > 0:
                        hook.fail_next -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    data = json.loads(body)["awslogs"]["data"]
                    hook.documents.append(json.loads(gzip.decompress(base64.b64decode(data))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def data(self):
        with self.lock:
            return [d for d in self.documents if d["messageType"] == "DATA_MESSAGE"]

    def events(self):
        return [e for d in self.data() for e in d["logEvents"]]

    def wait_for(self, count, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events()) >= count:
                return self.events()
            time.sleep(0.02)
        raise AssertionError(f"{len(self.events())} of {count} events delivered in {timeout} s")

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def put(logs, group, stream, messages, start=None):
    start = now_ms() if start is None else start
    logs.put_log_events(
        logGroupName=group, logStreamName=stream,
        logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(messages)],
    )


def test_seed_scenario_successful_connections_reach_the_webhook(tmp_path, webhook):
    samples = client_vpn_samples()
    successful = [s for s in samples if json.loads(s)["connection-attempt-status"] == "successful"]
    assert successful and len(successful) < len(samples)
    # The same CLI call as on AWS, with the Lambda's ARN bound to the webhook.
    lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:vpn-notify"
    server = NettrailServer(tmp_path / "data", config=f'[subscriptions.destinations]\n"{lambda_arn}" = "{webhook.url}"\n').start()
    try:
        seed_scenario(server, server.client(), webhook, samples, successful, lambda_arn)
    finally:
        server.stop()


def seed_scenario(server, logs, webhook, samples, successful, lambda_arn):
    logs.create_log_group(logGroupName="/vpn/clients")
    logs.create_log_stream(logGroupName="/vpn/clients", logStreamName="cvpn-endpoint-0f2d58d4869ece501-us-east-1-2026/09/24-abc")
    server.aws("logs", "put-subscription-filter", "--log-group-name", "/vpn/clients",
               "--filter-name", "vpn-connected", "--filter-pattern", SUCCESSFUL,
               "--destination-arn", lambda_arn)
    control = webhook.documents[0]
    assert control["messageType"] == "CONTROL_MESSAGE" and control["owner"] == "CloudwatchLogs"
    assert control["logEvents"][0]["message"].startswith("CWL CONTROL MESSAGE: Checking health of destination")

    put(logs, "/vpn/clients", "cvpn-endpoint-0f2d58d4869ece501-us-east-1-2026/09/24-abc", samples)
    events = webhook.wait_for(len(successful))
    time.sleep(0.3)  # nothing else arrives: the failed attempts produce nothing
    assert [e["message"] for e in webhook.events()] == successful
    for document in webhook.data():
        assert set(document) == {"messageType", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents"}
        assert document["owner"] == "123456789012"
        assert document["logGroup"] == "/vpn/clients"
        assert document["logStream"] == "cvpn-endpoint-0f2d58d4869ece501-us-east-1-2026/09/24-abc"
        assert document["subscriptionFilters"] == ["vpn-connected"]
    assert all(re.fullmatch(r"\d{56}", e["id"]) and isinstance(e["timestamp"], int) for e in events)
    # The ids are the events' ids in FilterLogEvents.
    filtered = logs.filter_log_events(logGroupName="/vpn/clients", filterPattern=SUCCESSFUL)["events"]
    assert [e["eventId"] for e in filtered] == [e["id"] for e in events]

    described = logs.describe_subscription_filters(logGroupName="/vpn/clients")["subscriptionFilters"]
    assert len(described) == 1
    assert described[0]["filterName"] == "vpn-connected"
    assert described[0]["filterPattern"] == SUCCESSFUL
    assert described[0]["destinationArn"] == lambda_arn
    assert described[0]["distribution"] == "ByLogStream"
    assert described[0]["logGroupName"] == "/vpn/clients"


def test_validation_and_limits(server, logs, webhook):
    def code(call, **kwargs):
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    put_filter = logs.put_subscription_filter
    base = {"logGroupName": "/g", "filterPattern": "", "destinationArn": webhook.url}
    assert code(put_filter, filterName="a", **base)[0] == "ResourceNotFoundException"
    logs.create_log_group(logGroupName="/g")
    put_filter(filterName="a", **base)
    put_filter(filterName="b", **base)
    assert code(put_filter, filterName="c", **base) == ("LimitExceededException", "Resource limit exceeded.")
    put_filter(filterName="b", **{**base, "filterPattern": "ERROR"})  # an update is not a third
    assert code(put_filter, filterName="x:y", **base)[0] == "InvalidParameterException"
    logs.delete_subscription_filter(logGroupName="/g", filterName="b")
    assert code(put_filter, filterName="c", **{**base, "filterPattern": "{ $.a = "})[0] == "InvalidParameterException"
    unreachable = code(put_filter, filterName="c", **{**base, "destinationArn": "http://127.0.0.1:9/nothing"})
    assert unreachable[0] == "InvalidParameterException" and "Could not deliver test message" in unreachable[1]
    unbound = code(put_filter, filterName="c", **{**base, "destinationArn": "arn:aws:lambda:us-east-1:123456789012:function:f"})
    assert unbound[0] == "InvalidParameterException"
    assert code(put_filter, filterName="c", **{**base, "distribution": "Sometimes"})[0] == "InvalidParameterException"
    assert code(logs.delete_subscription_filter, logGroupName="/g", filterName="zz")[0] == "ResourceNotFoundException"
    names = [f["filterName"] for f in logs.describe_subscription_filters(logGroupName="/g")["subscriptionFilters"]]
    assert names == ["a"]
    assert logs.describe_subscription_filters(logGroupName="/g", filterNamePrefix="b")["subscriptionFilters"] == []


def test_a_bound_arn_and_a_file_destination(tmp_path, webhook):
    out = tmp_path / "matches.jsonl"
    arn = "arn:aws:lambda:us-east-1:123456789012:function:notify"
    srv = NettrailServer(tmp_path / "data", config=f'[subscriptions.destinations]\n"{arn}" = "{webhook.url}"\n').start()
    try:
        logs = srv.client()
        logs.create_log_group(logGroupName="/g")
        logs.create_log_stream(logGroupName="/g", logStreamName="s")
        logs.put_subscription_filter(logGroupName="/g", filterName="to-lambda", filterPattern="ERROR", destinationArn=arn)
        logs.put_subscription_filter(logGroupName="/g", filterName="to-file", filterPattern="ERROR", destinationArn=f"file://{out}")
        put(logs, "/g", "s", ["INFO fine", "ERROR disk full", "ERROR again"])
        webhook.wait_for(2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(out.read_text().splitlines()) < 2:
            time.sleep(0.02)
        lines = [json.loads(l) for l in out.read_text().splitlines()]
        assert lines[0]["messageType"] == "CONTROL_MESSAGE"
        assert [e["message"] for l in lines[1:] for e in l["logEvents"]] == ["ERROR disk full", "ERROR again"]
        assert [e["message"] for e in webhook.events()] == ["ERROR disk full", "ERROR again"]
    finally:
        srv.stop()


def test_a_webhook_outage_loses_nothing_and_keeps_order(server, logs, webhook):
    logs.create_log_group(logGroupName="/g")
    for s in ("a", "b"):
        logs.create_log_stream(logGroupName="/g", logStreamName=s)
    logs.put_subscription_filter(logGroupName="/g", filterName="all", filterPattern="", destinationArn=webhook.url)
    webhook.fail_next = 6  # a few failed attempts, retried with backoff
    expected = {"a": [], "b": []}
    for round_ in range(5):
        for s in ("a", "b"):
            messages = [f"{s} {round_} {i}" for i in range(40)]
            put(logs, "/g", s, messages)
            expected[s] += messages
    events = webhook.wait_for(400, timeout=60)
    assert webhook.fail_next == 0
    by_stream = {"a": [], "b": []}
    for document in webhook.data():
        by_stream[document["logStream"]] += [e["message"] for e in document["logEvents"]]
    assert by_stream == expected  # each once, in order
    assert len(events) == 400


def test_kill_9_mid_stream_delivers_every_event_at_least_once(tmp_path, webhook):
    srv = NettrailServer(tmp_path / "data").start()
    try:
        logs = srv.client()
        logs.create_log_group(logGroupName="/g")
        logs.create_log_stream(logGroupName="/g", logStreamName="s")
        logs.put_subscription_filter(logGroupName="/g", filterName="all", filterPattern="", destinationArn=webhook.url)
        sent = []
        for round_ in range(10):
            messages = [f"before {round_} {i}" for i in range(50)]
            put(logs, "/g", "s", messages)
            sent += messages
            if round_ == 4:
                webhook.fail_next = 10**9  # the destination goes down mid-stream
        time.sleep(0.5)
        srv.kill9()
        srv.proc.wait()
        srv.log.close()
        with webhook.lock:
            webhook.fail_next = 0
        srv.start()
        logs = srv.client()
        after = [f"after {i}" for i in range(50)]
        put(logs, "/g", "s", after)
        sent += after
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(sent) <= {e["message"] for e in webhook.events()}:
            time.sleep(0.05)
        delivered = [e["message"] for e in webhook.events()]
        assert set(sent) <= set(delivered), "every acknowledged event is delivered"
        # In order, and duplicates only from re-sending what was unacknowledged at the crash.
        first_seen = list(dict.fromkeys(delivered))
        assert first_seen == sent
        assert len(delivered) - len(sent) <= 10_000
    finally:
        srv.stop()


def subscription_status(server, *args):
    proc = subprocess.run([nettrail_bin(), "subscriptions", "status", "--endpoint-url", server.endpoint, *args],
                          env=client_env(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def metrics(server):
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.read().decode()


def test_status_and_metrics_show_an_outage_and_the_catch_up(server, logs, webhook):
    logs.create_log_group(logGroupName="/g")
    logs.create_log_stream(logGroupName="/g", logStreamName="s")
    logs.put_subscription_filter(logGroupName="/g", filterName="all", filterPattern="", destinationArn=webhook.url)
    webhook.fail_next = 10**9
    put(logs, "/g", "s", [f"m {i}" for i in range(25)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = json.loads(subscription_status(server, "--json", "--log-group", "/g"))["subscriptions"]
        if status and status[0]["failedAttempts"] >= 2:
            break
        time.sleep(0.05)
    down = status[0]
    assert (down["logGroupName"], down["filterName"], down["destination"]) == ("/g", "all", webhook.url)
    assert down["lagEvents"] == 25 and down["deliveredEvents"] == 0
    assert "500" in down["lastError"] and down["lagSeconds"] >= 0
    page = metrics(server)
    assert 'nettrail_subscription_lag_events{log_group="/g",filter="all"} 25' in page
    assert "nettrail_ingested_events_total 25" in page
    assert "# TYPE nettrail_subscription_failed_deliveries_total counter" in page

    with webhook.lock:
        webhook.fail_next = 0
    webhook.wait_for(25, timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        up = json.loads(subscription_status(server, "--json"))["subscriptions"][0]
        if up["lagEvents"] == 0:
            break
        time.sleep(0.05)
    assert up["deliveredEvents"] == 25 and up["lagEvents"] == 0 and up["lagSeconds"] == 0
    table = subscription_status(server)
    assert table.splitlines()[0].startswith("LOG GROUP") and "/g" in table.splitlines()[1]
    assert 'nettrail_subscription_delivered_events_total{log_group="/g",filter="all"} 25' in metrics(server)


def test_an_https_destination_with_a_private_ca(tmp_path):
    import ssl

    ca, cert, key = make_tls_certificate(tmp_path)
    hook = Webhook()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    hook.httpd.socket = context.wrap_socket(hook.httpd.socket, server_side=True)
    url = hook.url.replace("http://", "https://")
    trusting = NettrailServer(tmp_path / "trusting", config=f'[subscriptions]\nca_file = "{ca}"\n').start()
    plain = NettrailServer(tmp_path / "plain").start()
    try:
        # Without the CA, the certificate is not trusted: refused at creation.
        logs = plain.client()
        logs.create_log_group(logGroupName="/g")
        with pytest.raises(ClientError) as e:
            logs.put_subscription_filter(logGroupName="/g", filterName="tls", filterPattern="", destinationArn=url)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "certificate" in e.value.response["Error"]["Message"].lower()

        logs = trusting.client()
        logs.create_log_group(logGroupName="/g")
        logs.create_log_stream(logGroupName="/g", logStreamName="s")
        logs.put_subscription_filter(logGroupName="/g", filterName="tls", filterPattern="", destinationArn=url)
        put(logs, "/g", "s", ["over TLS"])
        assert [e["message"] for e in hook.wait_for(1)] == ["over TLS"]
    finally:
        trusting.stop()
        plain.stop()
        hook.close()


def test_a_missing_ca_file_stops_the_server_at_start(tmp_path):
    srv = NettrailServer(tmp_path / "data", config='[subscriptions]\nca_file = "/nonexistent/ca.pem"\n')
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "subscriptions.ca_file" in str(e.value)
