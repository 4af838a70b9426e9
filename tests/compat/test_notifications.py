"""Notification topics end to end: the seed scenario's mail. A subscription filter
`{ $.connection-attempt-status = "successful" }` whose destination is an SNS topic ARN
bound to a nettrail topic sends a readable mail through a real SMTP server (aiosmtpd)
started here, and the same text to a generic JSON webhook and a Slack-compatible one;
failed attempts send nothing.
"""

import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from conftest import NettrailServer, free_port, now_ms
from test_subscriptions import SUCCESSFUL, client_vpn_samples


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


class JsonHook:
    def __init__(self):
        self.bodies = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hook.bodies.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def wait(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_topic_mails_readable_connection_notifications(tmp_path):
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hooks = JsonHook()
    config = f"""
[smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "nettrail <nettrail@example.test>"

[topics.vpn-alerts]
email = ["ops@example.test", "oncall@example.test"]
webhook = ["{hooks.url}/generic"]
slack = ["{hooks.url}/slack"]
"""
    server = NettrailServer(tmp_path / "data", config=config).start()
    try:
        samples = client_vpn_samples()
        successful = [json.loads(s) for s in samples if json.loads(s)["connection-attempt-status"] == "successful"]
        logs = server.client()
        logs.create_log_group(logGroupName="/vpn/clients")
        for i, sample in enumerate(samples):
            stream = f"cvpn-endpoint-0f2d58d4869ece501-us-east-1-2026/09/24-{i}"
            logs.create_log_stream(logGroupName="/vpn/clients", logStreamName=stream)
        server.aws("logs", "put-subscription-filter", "--log-group-name", "/vpn/clients",
                   "--filter-name", "vpn-connected", "--filter-pattern", SUCCESSFUL,
                   "--destination-arn", "arn:aws:sns:us-east-1:123456789012:vpn-alerts")
        assert mailbox.messages == [], "no mail for the reachability check"
        # One entry per stream, so each successful connection is its own notification.
        for i, sample in enumerate(samples):
            logs.put_log_events(logGroupName="/vpn/clients",
                                logStreamName=f"cvpn-endpoint-0f2d58d4869ece501-us-east-1-2026/09/24-{i}",
                                logEvents=[{"timestamp": now_ms(), "message": sample}])
        wait(lambda: len(mailbox.messages) >= len(successful) and len(hooks.bodies) >= 2 * len(successful))
        time.sleep(0.5)
        assert len(mailbox.messages) == len(successful), "failed attempts send nothing"
        for (recipients, mail), entry in zip(mailbox.messages, successful):
            assert recipients == ["ops@example.test", "oncall@example.test"]
            assert mail["From"] == "nettrail <nettrail@example.test>"
            subject = mail["Subject"]
            assert subject.startswith("[nettrail] Client VPN connection attempt successful: ")
            for key in ("common-name", "client-ip", "device-ip", "client-vpn-endpoint-id"):
                assert entry[key] in subject, (key, subject)
            body = mail.get_content()
            for key, value in entry.items():
                shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
                assert f"  {key}: {shown}" in body, (key, body)
            assert "H4sI" not in body and "awslogs" not in body
        generic = [b for p, b in hooks.bodies if p == "/generic"]
        slack = [b for p, b in hooks.bodies if p == "/slack"]
        assert len(generic) == len(slack) == len(successful)
        assert generic[0]["topic"] == "vpn-alerts" and generic[0]["subject"].startswith("[nettrail] Client VPN")
        assert generic[0]["logGroup"] == "/vpn/clients" and generic[0]["subscriptionFilters"] == ["vpn-connected"]
        assert json.loads(generic[0]["logEvents"][0]["message"])["connection-attempt-status"] == "successful"
        assert slack[0]["text"].startswith("*[nettrail] Client VPN connection attempt successful")
    finally:
        server.stop()
        smtp.stop()
        hooks.httpd.shutdown()


def test_an_unknown_topic_is_refused(server, logs):
    logs.create_log_group(logGroupName="/g")
    code, _, err = server.aws("logs", "put-subscription-filter", "--log-group-name", "/g", "--filter-name", "x",
                              "--filter-pattern", "", "--destination-arn", "arn:aws:sns:us-east-1:123456789012:nope",
                              check=False)
    assert code != 0 and "InvalidParameterException" in err and "nope" in err
