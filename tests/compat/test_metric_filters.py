"""Metric filters and alarms end to end against the real server: values that reach
`nettrail metrics get` and `/metrics`, counts that survive kill -9 without doubling,
AWS's quota of 100 filters per group, an alarm on rejected flows that goes to ALARM
and back to OK with its notifications (mail through a real SMTP server, CloudWatch's
SNS JSON to a webhook), and mail over STARTTLS.
"""

import json
import ssl
import subprocess
import time
import urllib.request

import pytest
from aiosmtpd.controller import Controller
from botocore.exceptions import ClientError

from conftest import NettrailServer, client_env, free_port, make_tls_certificate, nettrail_bin, now_ms
from test_notifications import JsonHook, Mailbox, wait

FLOW_FIELDS = ("version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol, "
               "packets, bytes, start, end, action, log_status")
REJECT_PATTERN = "[" + FLOW_FIELDS.replace("action,", "action = REJECT,") + "]"
ALL_PATTERN = "[" + FLOW_FIELDS + "]"


def flow(action, nbytes=40):
    return f"2 123456789012 eni-0a1b2c3d 10.0.1.5 203.0.113.7 49152 22 6 4 {nbytes} 1795400000 1795400060 {action} OK"


def put_flows(logs, records, timestamp):
    logs.put_log_events(logGroupName="/vpc/flows", logStreamName="eni-0a1b2c3d-all",
                        logEvents=[{"timestamp": timestamp, "message": r} for r in records])


def make_group(logs):
    logs.create_log_group(logGroupName="/vpc/flows")
    logs.create_log_stream(logGroupName="/vpc/flows", logStreamName="eni-0a1b2c3d-all")


def count_rejects(logs):
    logs.put_metric_filter(
        logGroupName="/vpc/flows", filterName="rejects", filterPattern=REJECT_PATTERN,
        metricTransformations=[{"metricName": "RejectedFlows", "metricNamespace": "VPC",
                                "metricValue": "1", "defaultValue": 0, "unit": "Count"}])


def nettrail(server, *args):
    proc = subprocess.run([nettrail_bin(), *args, "--endpoint-url", server.endpoint], env=client_env(),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def totals(server, metric, *extra):
    answer = json.loads(nettrail(server, "metrics", "get", "--namespace", "VPC", "--metric-name", metric,
                                 "--statistics", "Sum", "SampleCount", "Maximum", "--period", "3600",
                                 "--start-time", "3h", "--json", *extra))
    points = answer["Datapoints"]
    return (sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points),
            max((p["Maximum"] for p in points), default=None))


def prometheus(server):
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as response:
        return response.read().decode()


def test_values_reach_metrics_get_and_survive_kill_9_without_doubling(tmp_path):
    server = NettrailServer(tmp_path / "data").start()
    try:
        logs = server.client()
        make_group(logs)
        # Events before a filter exists are not counted (AWS does not look back).
        put_flows(logs, [flow("REJECT")] * 5, now_ms())
        count_rejects(logs)
        logs.put_metric_filter(
            logGroupName="/vpc/flows", filterName="bytes", filterPattern=ALL_PATTERN,
            metricTransformations=[{"metricName": "Bytes", "metricNamespace": "VPC", "metricValue": "$bytes",
                                    "dimensions": {"action": "$action"}, "unit": "Bytes"}])
        put_flows(logs, [flow("REJECT", 40), flow("ACCEPT", 1500), flow("REJECT", 60), flow("ACCEPT", 500)],
                  now_ms())
        wait(lambda: totals(server, "RejectedFlows")[1] >= 2)
        assert totals(server, "RejectedFlows") == (2, 2, 1)
        assert totals(server, "Bytes", "--dimensions", "Name=action,Value=ACCEPT") == (2000, 2, 1500)
        assert totals(server, "Bytes", "--dimensions", "action=REJECT") == (100, 2, 60)
        listed = nettrail(server, "metrics", "list", "--namespace", "VPC")
        assert listed.splitlines() == ["VPC Bytes [action=ACCEPT]", "VPC Bytes [action=REJECT]", "VPC RejectedFlows"]
        table = nettrail(server, "metrics", "get", "--namespace", "VPC", "--metric-name", "RejectedFlows")
        assert table.splitlines()[0].split() == ["TIMESTAMP", "(UTC)", "Sum", "SampleCount", "UNIT"]
        page = prometheus(server)
        assert 'nettrail_metric_filter_count{namespace="VPC",metric_name="RejectedFlows",dimensions=""} 2' in page
        assert 'nettrail_metric_filter_sum{namespace="VPC",metric_name="Bytes",dimensions="action=ACCEPT"} 2000' in page

        # kill -9 with counting in full swing, restart: what was counted stays counted
        # once, and what was put but not yet counted is counted after the restart.
        for _ in range(20):
            put_flows(logs, [flow("REJECT")] * 50 + [flow("ACCEPT")] * 50, now_ms())
        server.kill9()
        server = NettrailServer(tmp_path / "data").start()
        logs = server.client()
        wait(lambda: totals(server, "RejectedFlows")[1] >= 2 + 1000)
        time.sleep(1)
        assert totals(server, "RejectedFlows") == (1002, 1002, 1)
        assert totals(server, "Bytes", "--dimensions", "action=ACCEPT")[1] == 2 + 1000
    finally:
        server.stop()


def test_one_hundred_filters_per_group_and_paginated_listing(server, logs):
    make_group(logs)
    for i in range(100):
        logs.put_metric_filter(logGroupName="/vpc/flows", filterName=f"f{i:03}", filterPattern="REJECT",
                               metricTransformations=[{"metricName": f"M{i}", "metricNamespace": "NS",
                                                       "metricValue": "1"}])
    with pytest.raises(ClientError) as e:
        logs.put_metric_filter(logGroupName="/vpc/flows", filterName="one-too-many", filterPattern="x",
                               metricTransformations=[{"metricName": "M", "metricNamespace": "NS",
                                                       "metricValue": "1"}])
    assert e.value.response["Error"]["Code"] == "LimitExceededException"
    # Replacing an existing one is not a new one.
    logs.put_metric_filter(logGroupName="/vpc/flows", filterName="f000", filterPattern="ACCEPT",
                           metricTransformations=[{"metricName": "M0", "metricNamespace": "NS", "metricValue": "1"}])
    names = [f["filterName"]
             for page in logs.get_paginator("describe_metric_filters").paginate(
                 logGroupName="/vpc/flows", PaginationConfig={"PageSize": 7})
             for f in page["metricFilters"]]
    assert names == [f"f{i:03}" for i in range(100)]
    assert logs.describe_log_groups()["logGroups"][0]["metricFilterCount"] == 100
    # Deleting the group deletes its filters.
    logs.delete_log_group(logGroupName="/vpc/flows")
    assert logs.describe_metric_filters()["metricFilters"] == []


def test_a_reject_count_alarm_goes_to_alarm_and_back_to_ok(tmp_path):
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hooks = JsonHook()
    config = f"""
[smtp]
host = "127.0.0.1"
port = {smtp_port}

[topics.netops]
email = ["netops@example.test"]
webhook = ["{hooks.url}/alarms"]

[metrics]
alarm_evaluation_interval_secs = 1

[alarms.vpc-rejects]
namespace = "VPC"
metric_name = "RejectedFlows"
statistic = "Sum"
period = 60
evaluation_periods = 1
comparison_operator = "GreaterThanThreshold"
threshold = 5
treat_missing_data = "notBreaching"
alarm_description = "More than 5 rejected flows in a minute"
alarm_actions = ["arn:aws:sns:us-east-1:123456789012:netops"]
ok_actions = ["netops"]
"""
    server = NettrailServer(tmp_path / "data", config=config).start()
    try:
        logs = server.client()
        make_group(logs)
        count_rejects(logs)

        def state():
            return json.loads(nettrail(server, "alarms", "describe", "--json"))["MetricAlarms"][0]["StateValue"]

        # No data yet, treated as not breaching: OK, and the OK action tells so.
        wait(lambda: state() == "OK")
        wait(lambda: len(hooks.bodies) == 1)
        assert hooks.bodies[0][1]["OldStateValue"] == "INSUFFICIENT_DATA"
        # The alarm looks at the last complete minute: put 12 rejected flows into it,
        # not too close to the minute's end so that it is still the last one when read.
        if time.time() % 60 > 55:
            time.sleep(60 - time.time() % 60 + 0.5)
        minute_start = int(time.time() // 60 * 60 * 1000)
        put_flows(logs, [flow("REJECT")] * 12 + [flow("ACCEPT")] * 30, minute_start - 30_000)
        # This minute: accepted flows only, a Sum of 0 (the default value) when it ends.
        put_flows(logs, [flow("ACCEPT")] * 30, now_ms())
        wait(lambda: state() == "ALARM", timeout=15)
        wait(lambda: len(mailbox.messages) == 2 and len(hooks.bodies) == 2)
        recipients, mail = mailbox.messages[1]
        assert recipients == ["netops@example.test"]
        assert mail["Subject"] == 'ALARM: "vpc-rejects" in us-east-1'
        body = mail.get_content()
        assert "- State Change:               OK -> ALARM" in body
        assert "Threshold Crossed: 1 out of the last 1 datapoints [12.0 (" in body
        assert "was greater than the threshold (5.0)" in body
        assert "- MetricName:                 RejectedFlows" in body
        alarm = hooks.bodies[1][1]
        assert alarm["AlarmName"] == "vpc-rejects" and alarm["NewStateValue"] == "ALARM"
        assert alarm["OldStateValue"] == "OK" and alarm["Trigger"]["MetricName"] == "RejectedFlows"
        assert alarm["Trigger"]["Namespace"] == "VPC" and alarm["Trigger"]["Threshold"] == 5
        assert 'nettrail_alarm_state{alarm="vpc-rejects",state="ALARM"} 1' in prometheus(server)
        # When the minute of accepted flows is the last complete one, back to OK.
        wait(lambda: state() == "OK", timeout=75)
        wait(lambda: len(mailbox.messages) == 3 and len(hooks.bodies) == 3)
        ok_mail = mailbox.messages[2][1]
        assert ok_mail["Subject"] == 'OK: "vpc-rejects" in us-east-1'
        assert "ALARM -> OK" in ok_mail.get_content()
        assert "[0.0 (" in ok_mail.get_content(), "the default value is the minute's datapoint"
        assert hooks.bodies[2][1]["NewStateValue"] == "OK"
        table = nettrail(server, "alarms", "describe")
        assert table.splitlines()[1].split()[:2] == ["vpc-rejects", "OK"]
    finally:
        server.stop()
        smtp.stop()
        hooks.httpd.shutdown()


def test_alarm_configuration_mistakes_stop_the_server_at_start(tmp_path):
    config = """
[alarms.bad]
namespace = "VPC"
metric_name = "RejectedFlows"
statistic = "Sum"
comparison_operator = "GreaterThanThreshold"
threshold = 5
alarm_actions = ["nowhere"]
"""
    server = NettrailServer(tmp_path / "data", config=config)
    with pytest.raises(RuntimeError) as e:
        server.start()
    assert "alarms.bad" in str(e.value) and "nowhere" in str(e.value)


def test_mail_over_starttls_with_a_private_ca(tmp_path):
    ca, cert, key = make_tls_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port, tls_context=context,
                      require_starttls=True)
    smtp.start()

    def config(tls, ca_file):
        return f"""
[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "{tls}"
{f'ca_file = "{ca_file}"' if ca_file else ""}

[topics.mail]
email = ["ops@example.test"]
"""

    servers = []
    try:
        for name, tls, ca_file in (("trusting", "starttls", ca), ("untrusting", "starttls", None),
                                   ("plain", "none", None)):
            server = NettrailServer(tmp_path / name, config=config(tls, ca_file)).start()
            servers.append(server)
            logs = server.client()
            logs.create_log_group(logGroupName="/g")
            logs.create_log_stream(logGroupName="/g", logStreamName="s")
            logs.put_subscription_filter(logGroupName="/g", filterName="mail", filterPattern="",
                                         destinationArn="topic:mail")
            logs.put_log_events(logGroupName="/g", logStreamName="s",
                                logEvents=[{"timestamp": now_ms(), "message": f"hello from {name}"}])
        wait(lambda: len(mailbox.messages) == 1)
        assert mailbox.messages[0][1]["Subject"] == "[nettrail] hello from trusting"

        def last_error(server):
            out = json.loads(nettrail(server, "subscriptions", "status", "--json"))
            return out["subscriptions"][0]["lastError"] or ""

        # Without the CA the certificate is refused; without TLS the server refuses
        # to take mail before STARTTLS. Both keep retrying, and say why.
        wait(lambda: "certificate" in last_error(servers[1]).lower())
        wait(lambda: last_error(servers[2]) != "")
        assert "STARTTLS" in last_error(servers[2]) or "530" in last_error(servers[2])
        assert len(mailbox.messages) == 1
    finally:
        for server in servers:
            server.stop()
        smtp.stop()
