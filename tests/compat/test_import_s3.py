"""`nettrail import s3` end to end: folders in each of the four S3 key layouts, months-old
records, corrupt and truncated files, bad lines, Transit Gateway files, retention, and
re-runs that import nothing twice; and the ImportLogEvents checkpoint rules it relies on.
"""

import gzip
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, REGION, SECRET_KEY, client_env, nettrail_bin

ACCOUNT = "123456789012"
HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
# 2023-03-01T10:00:00Z: far older than PutLogEvents' 14 days.
SLOT = 1677664800

LAYOUTS = {
    "plain-daily": "AWSLogs/{acct}/vpcflowlogs/us-east-1/2023/03/01/{name}",
    "plain-hourly": "AWSLogs/{acct}/vpcflowlogs/us-east-1/2023/03/01/10/{name}",
    "hive-daily": "AWSLogs/aws-account-id={acct}/aws-service=vpcflowlogs/aws-region=us-east-1/year=2023/month=03/day=01/{name}",
    "hive-hourly": "AWSLogs/aws-account-id={acct}/aws-service=vpcflowlogs/aws-region=us-east-1/year=2023/month=03/day=01/hour=10/{name}",
}


def file_name(minute: int, tag: str) -> str:
    return f"{ACCOUNT}_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20230301T10{minute:02d}Z_{tag}.log.gz"


def records(n: int, eni_count: int = 3, start: int = SLOT):
    lines = []
    for i in range(n):
        eni = f"eni-{i % eni_count:017x}"
        t = start + (i % 240)
        action = "REJECT" if i % 5 == 0 else "ACCEPT"
        lines.append(f"2 {ACCOUNT} {eni} 10.0.{i % 250}.1 10.1.0.{i % 200} {1024 + i} 443 6 {1 + i % 9} {100 + i} {t} {t + 30} {action} OK")
    return lines


def write_file(root: Path, key: str, lines, header: str = HEADER) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write(header + "\n")
        for line in lines:
            f.write(line + "\n")
    return path


def run_import(server, source: Path, group: str, *extra, check_exit=None):
    env = client_env()
    proc = subprocess.run(
        [nettrail_bin(), "import", "s3", str(source), "--log-group", group,
         "--endpoint-url", server.endpoint, "--json", *extra],
        env=env, capture_output=True, text=True, timeout=120,
    )
    if check_exit is not None:
        assert proc.returncode == check_exit, proc.stderr
    out = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else proc.stdout
    return proc, out


def all_events(logs, group):
    events, kwargs = [], {"logGroupName": group}
    while True:
        page = logs.filter_log_events(**kwargs)
        events += page["events"]
        if "nextToken" not in page:
            return events
        kwargs["nextToken"] = page["nextToken"]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_imports_with_original_timestamps_and_a_rerun_imports_nothing(server, logs, tmp_path, layout):
    source = tmp_path / "bucket"
    lines_a, lines_b = records(500), records(300, start=SLOT + 300)
    write_file(source, "prefix/" + LAYOUTS[layout].format(acct=ACCOUNT, name=file_name(0, "aaaa1111")), lines_a)
    write_file(source, "prefix/" + LAYOUTS[layout].format(acct=ACCOUNT, name=file_name(5, "bbbb2222")), lines_b)
    (source / "prefix" / "README.txt").write_text("not a flow log file")

    proc, out = run_import(server, source, "/flows/imported", check_exit=0)
    summary = out["summary"]
    assert summary["filesFound"] == 2 and summary["filesImported"] == 2 and summary["filesSkipped"] == 1
    assert summary["records"] == 800 and summary["recordsFailed"] == 0

    streams = sorted(s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/flows/imported")["logStreams"])
    assert streams == [f"eni-{i:017x}-all" for i in range(3)]
    events = all_events(logs, "/flows/imported")
    assert len(events) == 800
    expected = sorted((int(l.split()[10]) * 1000, l) for l in lines_a + lines_b)
    assert sorted((e["timestamp"], e["message"]) for e in events) == expected
    for e in events:
        assert e["logStreamName"] == e["message"].split()[2] + "-all"

    proc, out = run_import(server, source, "/flows/imported", check_exit=0)
    assert out["summary"]["filesAlreadyImported"] == 2
    assert out["summary"]["records"] == 0
    assert len(all_events(logs, "/flows/imported")) == 800


def test_corrupt_and_truncated_files_and_bad_lines_are_reported_and_the_rest_goes_on(server, logs, tmp_path):
    source = tmp_path / "bucket"
    layout = LAYOUTS["plain-daily"]
    write_file(source, layout.format(acct=ACCOUNT, name=file_name(0, "good0001")), records(200))
    bad_lines = records(10)
    bad_lines[3] = bad_lines[3].replace(" 443 ", " https ")
    write_file(source, layout.format(acct=ACCOUNT, name=file_name(5, "badline1")), bad_lines)
    corrupt = source / layout.format(acct=ACCOUNT, name=file_name(10, "corrupt1"))
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate" * 10)
    whole = write_file(tmp_path / "tmp", layout.format(acct=ACCOUNT, name=file_name(15, "trunc001")), records(5000))
    truncated = source / layout.format(acct=ACCOUNT, name=file_name(15, "trunc001"))
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    proc, out = run_import(server, source, "/flows/damaged")
    assert proc.returncode != 0
    summary, problems = out["summary"], out["problems"]
    assert summary["filesFound"] == 4
    assert summary["filesFailed"] == 2
    assert summary["recordsFailed"] == 1
    by_key = {(Path(p["key"]).name, p["line"]): p["error"] for p in problems}
    assert (file_name(5, "badline1"), 5) in by_key, by_key  # header is line 1
    assert "https" in by_key[(file_name(5, "badline1"), 5)]
    assert any(name == file_name(10, "corrupt1") for name, _ in by_key), by_key
    assert any(name == file_name(15, "trunc001") for name, _ in by_key), by_key
    # The good file and the good lines are in; of a truncated file nothing (its only part
    # was never complete).
    assert summary["records"] == 209
    stored = len(all_events(logs, "/flows/damaged"))
    assert stored == 209

    # A re-run retries only the failed files and stores nothing twice.
    proc, out = run_import(server, source, "/flows/damaged")
    assert proc.returncode != 0
    assert out["summary"]["filesAlreadyImported"] == 2
    assert len(all_events(logs, "/flows/damaged")) == stored


def test_transit_gateway_files_go_to_their_own_streams(server, logs, tmp_path):
    source = tmp_path / "bucket"
    header = "version resource-type account-id tgw-id tgw-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status"
    lines = [f"6 TransitGatewayAttachment {ACCOUNT} tgw-0aa tgw-attach-0b{i % 2} 10.0.0.{i} 10.1.0.1 999 443 6 1 60 {SLOT + i} {SLOT + 60} OK" for i in range(20)]
    write_file(source, LAYOUTS["plain-daily"].format(acct=ACCOUNT, name=file_name(0, "tgw00001")), lines, header=header)
    write_file(source, LAYOUTS["plain-daily"].format(acct=ACCOUNT, name=file_name(5, "vpc00001")), records(10))
    _, out = run_import(server, source, "/flows/mixed", check_exit=0)
    assert out["summary"]["transitGatewayRecords"] == 20
    streams = sorted(s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/flows/mixed")["logStreams"])
    assert "tgw-attach-0b0-all" in streams and "tgw-attach-0b1-all" in streams
    tgw = all_events(logs, "/flows/mixed")
    assert sum(1 for e in tgw if e["logStreamName"].startswith("tgw-")) == 20


def test_retention_still_applies_and_dry_run_imports_nothing(server, logs, tmp_path):
    source = tmp_path / "bucket"
    write_file(source, LAYOUTS["hive-hourly"].format(acct=ACCOUNT, name=file_name(0, "old00001")), records(50))
    proc, out = run_import(server, source, "/flows/dry", "--dry-run", check_exit=0)
    assert file_name(0, "old00001") in proc.stdout
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="/flows/dry")

    logs.create_log_group(logGroupName="/flows/short")
    logs.put_retention_policy(logGroupName="/flows/short", retentionInDays=30)
    _, out = run_import(server, source, "/flows/short", check_exit=0)
    assert out["summary"]["records"] == 0 and out["summary"]["recordsExpired"] == 50
    assert all_events(logs, "/flows/short") == []


def nettrail_call(server, operation, body):
    """A signed call of one of nettrail's own operations; returns (status, JSON)."""
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"Nettrail_20261123.{operation}",
    })
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "logs", REGION).add_auth(request)
    req = urllib.request.Request(server.endpoint + "/", data=data, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_import_parts_are_stored_once_and_in_order(server, logs):
    logs.create_log_group(logGroupName="/imp")

    def part(n, last=False, version="100"):
        return {
            "logGroupName": "/imp",
            "streams": [{"logStreamName": "eni-1-all", "logEvents": [{"timestamp": 1000 + n, "message": f"part {n}"}]}],
            "checkpoint": {"source": "test", "object": "k", "version": version, "part": n, "last": last},
        }

    assert nettrail_call(server, "ImportLogEvents", part(0))[1]["storedEvents"] == 1
    # A retried part is acknowledged without storing it again.
    assert nettrail_call(server, "ImportLogEvents", part(0))[1] == {"storedEvents": 0, "expiredEvents": 0, "alreadyStored": True}
    status, err = nettrail_call(server, "ImportLogEvents", part(2))
    assert status == 400 and err["__type"] == "InvalidParameterException" and "in order" in err["message"]
    assert nettrail_call(server, "ImportLogEvents", part(1, last=True))[1]["storedEvents"] == 1
    status, got = nettrail_call(server, "GetImportCheckpoints", {"logGroupName": "/imp", "source": "test"})
    assert got == {"checkpoints": {"k": {"version": "100", "parts": 2, "complete": True}}}
    # A new version of the object starts again from part 0.
    assert nettrail_call(server, "ImportLogEvents", part(0, version="200"))[1]["storedEvents"] == 1
    messages = sorted(e["message"] for e in all_events(logs, "/imp"))
    assert messages == ["part 0", "part 0", "part 1"]
    # Malformed requests name what is wrong.
    status, err = nettrail_call(server, "ImportLogEvents", {"logGroupName": "/imp", "streams": [{"logStreamName": "s", "logEvents": [{"timestamp": -1, "message": ""}]}]})
    assert status == 400 and "streams.1.member.logEvents.1.member.timestamp" in err["message"]
    status, err = nettrail_call(server, "ImportLogEvents", {"logGroupName": "/none", "streams": []})
    assert status == 400 and err["__type"] == "ResourceNotFoundException"
