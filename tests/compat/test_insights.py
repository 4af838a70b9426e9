"""Logs Insights through the real aws CLI and boto3: the VPC console's sample queries over
a flow-log group held in columnar parts, answers checked against the same records
computed here; `@ptr` and GetLogRecord; errors as AWS gives them; paging, DescribeQueries,
several groups and SOURCE."""

import collections
import json
import re
import subprocess
import time

import pytest

from conftest import NettrailServer, client_env, nettrail_bin, now_ms
from test_sql import CONFIG, GROUP, HOUR, flow_records, put, wait_until_compacted

APP_GROUP = "/app/api"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data = tmp_path_factory.mktemp("insights") / "data"
    base = (now_ms() - 5 * HOUR) // HOUR * HOUR
    records = flow_records(3000, base)
    srv = NettrailServer(data, config=CONFIG).start()
    logs = srv.client()
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="eni-all")
    put(logs, records)
    logs.create_log_group(logGroupName=APP_GROUP)
    for stream in ("web-1", "web-2"):
        logs.create_log_stream(logGroupName=APP_GROUP, logStreamName=stream)
    app_events = {
        "web-1": [{"timestamp": base + i * 60_000, "message": json.dumps({"status": 200 + (i % 3) * 100, "path": f"/p/{i % 4}", "ms": i})} for i in range(40)],
        "web-2": [{"timestamp": base + i * 60_000 + 1, "message": json.dumps({"status": 500, "path": "/p/9", "ms": 1000 + i})} for i in range(10)],
    }
    for stream, events in app_events.items():
        logs.put_log_events(logGroupName=APP_GROUP, logStreamName=stream, logEvents=events)
    wait_until_compacted(data, len(records) + 50)
    yield srv, records, base
    srv.stop()


def natural(text):
    """The order of Insights' `sort` for text that is not a number: chunk by chunk,
    digit runs by length then value, other chunks by code points."""
    key = []
    for chunk in re.findall(r"\d+|[^\W\d_]+|.", text):
        key.append((0x30, len(chunk), int(chunk)) if chunk.isdigit() else (ord(chunk[0]), 0, chunk))
    return key


def run(logs, query, groups=(GROUP,), start=0, end=None, **extra):
    """Starts `query`, waits for it to end and returns (status, rows as dicts, the raw
    answer)."""
    kwargs = dict(queryString=query, startTime=start, endTime=end or now_ms() // 1000 + 60, **extra)
    if groups is not None:
        kwargs["logGroupNames"] = list(groups)
    qid = logs.start_query(**kwargs)["queryId"]
    deadline = time.monotonic() + 60
    while True:
        answer = logs.get_query_results(queryId=qid)
        if answer["status"] not in ("Scheduled", "Running"):
            break
        assert time.monotonic() < deadline, f"query did not end: {query}"
        time.sleep(0.05)
    rows = [{c["field"]: c["value"] for c in row} for row in answer["results"]]
    return answer["status"], rows, answer | {"queryId": qid}


def test_vpc_console_sample_queries_answer_like_the_records(loaded):
    srv, records, _ = loaded
    logs = srv.client()

    status, rows, answer = run(logs, "stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15")
    assert status == "Complete"
    packets = collections.Counter()
    for r in records:
        packets[(r["srcaddr"], r["dstaddr"])] += r["packets"]
    assert len(rows) == 15
    for row in rows:
        assert int(row["packetsTransferred"]) == packets[(row["srcAddr"], row["dstAddr"])]
    assert [int(r["packetsTransferred"]) for r in rows] == sorted(packets.values(), reverse=True)[:15]
    assert answer["statistics"]["recordsScanned"] == len(records)
    assert all("@ptr" not in row for row in rows)

    _, rows, _ = run(logs, 'filter action="REJECT" | stats count(*) as numRejections by srcAddr | sort numRejections desc, srcAddr asc | limit 20')
    rejects = collections.Counter(r["srcaddr"] for r in records if r["action"] == "REJECT")
    expected = sorted(rejects.items(), key=lambda kv: (-kv[1], natural(kv[0])))[:20]
    assert [(r["srcAddr"], int(r["numRejections"])) for r in rows] == [(a, n) for a, n in expected]

    _, rows, _ = run(logs, "filter isIpv4InSubnet(srcAddr, '10.0.1.0/24') and dstPort = 443 | stats count(*) as n, avg(bytes) as meanBytes by bin(1h) as hour | sort hour asc")
    by_hour = collections.defaultdict(list)
    for r in records:
        if r["srcaddr"].startswith("10.0.1.") and r["dstport"] == 443:
            by_hour[r["start"] // 3600 * 3600].append(r["bytes"])
    assert [int(r["n"]) for r in rows] == [len(by_hour[h]) for h in sorted(by_hour)]
    assert [r["hour"] for r in rows] == [time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(h)) for h in sorted(by_hour)]
    for row, h in zip(rows, sorted(by_hour)):
        assert float(row["meanBytes"]) == pytest.approx(sum(by_hour[h]) / len(by_hour[h]))


def test_aws_cli_query_pointer_and_log_record(loaded):
    srv, records, _ = loaded
    _, started, _ = srv.aws(
        "logs", "start-query", "--log-group-name", GROUP,
        "--start-time", "0", "--end-time", str(now_ms() // 1000 + 60),
        "--query-string", "filter dstPort = 22 | fields @timestamp, srcAddr, @message | sort @timestamp asc | limit 5",
    )
    qid = started["queryId"]
    for _ in range(600):
        _, answer, _ = srv.aws("logs", "get-query-results", "--query-id", qid)
        if answer["status"] == "Complete":
            break
        time.sleep(0.05)
    assert answer["status"] == "Complete"
    ssh = sorted((r for r in records if r["dstport"] == 22), key=lambda r: r["start"])
    rows = [{c["field"]: c["value"] for c in row} for row in answer["results"]]
    assert len(rows) == 5
    assert [r["@timestamp"] for r in rows] == [time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(r["start"])) for r in ssh[:5]]
    assert {r["@message"] for r in rows} <= {r["message"] for r in ssh}
    assert [list(r)[-1] for r in rows] == ["@ptr"] * 5
    _, record, _ = srv.aws("logs", "get-log-record", "--log-record-pointer", rows[0]["@ptr"])
    fields = record["logRecord"]
    assert fields["@message"] == rows[0]["@message"]
    assert fields["@logStream"] == "eni-all"
    assert fields["dstPort"] == "22" and fields["srcAddr"] == rows[0]["srcAddr"]


def test_errors_are_awss(loaded):
    srv, _, _ = loaded
    logs = srv.client()
    with pytest.raises(logs.exceptions.MalformedQueryException) as bad:
        logs.start_query(logGroupName=GROUP, startTime=0, endTime=10, queryString="fields @message\n| sort bin(1d) desc")
    error = bad.value.response
    # AWS names the parenthesis: a sort key is a field name.
    assert error["Error"]["Message"] == "unexpected symbol found ( at line 2 and position 11"
    assert error["queryCompileError"]["location"] == {"startCharOffset": 26, "endCharOffset": 27}
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.start_query(logGroupName="/no/such/group", startTime=0, endTime=10, queryString="fields @message")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.start_query(logGroupName=GROUP, logGroupNames=[GROUP], startTime=0, endTime=10, queryString="fields @message")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.start_query(logGroupName=GROUP, startTime=0, endTime=10, queryString="SELECT 1", queryLanguage="SQL")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_query_results(queryId="00000000-0000-0000-0000-000000000000")
    status, _, answer = run(logs, "stats count(*)")
    assert status == "Complete"
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.stop_query(queryId=answer["queryId"])


def test_limits_paging_and_describe_queries(loaded):
    srv, records, _ = loaded
    logs = srv.client()
    status, rows, answer = run(logs, "fields @timestamp, @message", limit=50)
    assert status == "Complete" and len(rows) == 50
    newest = sorted((r["start"] for r in records), reverse=True)[:50]
    assert [r["@timestamp"] for r in rows] == [time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(s)) for s in newest]
    pages, token = [], None
    while True:
        page = logs.get_query_results(queryId=answer["queryId"], maxItems=20, **({"nextToken": token} if token else {}))
        pages.append(page["results"])
        token = page.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [20, 20, 10]
    assert sum(pages, []) == answer["results"]
    listed = logs.describe_queries(logGroupName=GROUP, status="Complete")["queries"]
    assert answer["queryId"] in [q["queryId"] for q in listed]
    info = next(q for q in listed if q["queryId"] == answer["queryId"])
    assert info["queryString"] == "fields @timestamp, @message" and info["logGroupName"] == GROUP
    assert logs.describe_queries(logGroupName="/no/such", status="Complete")["queries"] == []


def test_several_groups_source_and_json_fields(loaded):
    srv, records, base = loaded
    logs = srv.client()
    _, rows, _ = run(logs, "stats count(*) as n by @log | sort @log asc", groups=(GROUP, APP_GROUP))
    assert rows == [
        {"@log": f"123456789012:{APP_GROUP}", "n": "50"},
        {"@log": f"123456789012:{GROUP}", "n": str(len(records))},
    ]
    _, rows, _ = run(logs, "SOURCE logGroups(namePrefix: ['/app']) | filter status >= 400 | stats count(*) as errors, pct(ms, 50) as p50 by @logStream | sort @logStream asc", groups=None)
    web1 = sorted(i for i in range(40) if i % 3 == 2)
    assert rows == [
        {"@logStream": "web-1", "errors": str(len(web1)), "p50": str(web1[(len(web1) + 1) // 2 - 1])},
        {"@logStream": "web-2", "errors": "10", "p50": "1004"},
    ]
    fields = logs.get_log_group_fields(logGroupName=APP_GROUP, time=(base + 20 * 60_000) // 1000)["logGroupFields"]
    names = {f["name"]: f["percent"] for f in fields}
    assert names["@message"] == 100 and names["status"] == 100 and names["path"] == 100


def test_nettrail_logs_query_prints_rows(loaded):
    srv, records, _ = loaded
    cli = lambda *args: subprocess.run(
        [nettrail_bin(), "logs", "query", "--endpoint-url", srv.endpoint, "--start-time", "2020-01-01", *args],
        env=client_env(), capture_output=True, text=True, timeout=60,
    )
    done = cli("--log-group-name", GROUP, "--output", "csv", "stats count(*) as n by action | sort action asc")
    assert done.returncode == 0, done.stderr
    actions = collections.Counter(r["action"] for r in records)
    assert done.stdout.splitlines() == ["action,n"] + [f"{a},{actions[a]}" for a in sorted(actions)]
    done = cli("--log-group", GROUP, "--json", "--limit", "3", "filter dstPort = 22 | fields srcAddr, dstPort")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3 and all(set(line) == {"srcAddr", "dstPort", "@ptr"} for line in lines)
    done = cli("--log-group-name", GROUP, "stats count(*) by bin(5x)")
    assert done.returncode != 0 and "unexpected symbol found x at line 1 and position 24" in done.stderr


def test_results_page_past_ten_thousand_rows(loaded):
    srv, _, _ = loaded
    logs = srv.client()
    logs.create_log_group(logGroupName="/many")
    logs.create_log_stream(logGroupName="/many", logStreamName="s")
    now = now_ms()
    for start in range(0, 12_000, 6_000):
        logs.put_log_events(logGroupName="/many", logStreamName="s", logEvents=[
            {"timestamp": now - 60_000 + i // 100, "message": f"event {i}"} for i in range(start, start + 6_000)
        ])
    status, _, answer = run(logs, "fields @message", groups=("/many",), limit=12_000)
    assert status == "Complete" and len(answer["results"]) == 10_000 and "nextToken" in answer
    rest = logs.get_query_results(queryId=answer["queryId"], nextToken=answer["nextToken"])
    assert len(rest["results"]) == 2_000 and "nextToken" not in rest
    messages = [c["value"] for row in answer["results"] + rest["results"] for c in row if c["field"] == "@message"]
    assert sorted(messages) == sorted(f"event {i}" for i in range(12_000))


SQL_QUERIES = [
    "stats count(*) as n by action",
    "filter action = 'REJECT' | stats count(*) as n, sum(bytes) as b by srcAddr | sort n desc, srcAddr asc | limit 10",
    "filter dstPort in [22, 3389] and not srcAddr like '10.0.' | stats count(*) as n by dstPort, bin(1h) as h | sort h asc, dstPort asc",
    "filter bytes > 40000 or protocol = 17 | stats avg(bytes) as mean, min(packets) as lo, max(packets) as hi, count_distinct(dstAddr) as dsts",
    "filter srcAddr =~ /^10\\.0\\.[12]\\./ and action != 'ACCEPT' | stats count(*) as n by interfaceId | sort interfaceId asc",
    "filter dstPort >= '443' | stats count(*) as n by bin(30m) | stats max(n) as peak, sum(n) as total",
    "filter logStatus = '-' | stats count(*) as n",
]


@pytest.mark.parametrize("query", SQL_QUERIES)
def test_sql_answers_what_reading_every_event_answers(loaded, query):
    """The flow group's `filter … | stats` prefix is answered by the SQL engine from the
    columns (it reads the compressed parts, far fewer bytes than the messages), and the
    rows are those of reading every event (forced here by a filter that does not
    compile and keeps every event)."""
    srv, _, _ = loaded
    logs = srv.client()
    status, by_sql, answer_sql = run(logs, query)
    status_events, by_events, answer_events = run(logs, "filter 1 = 1 | " + query)
    assert status == status_events == "Complete"
    assert by_sql == by_events
    assert answer_sql["statistics"]["recordsScanned"] == answer_events["statistics"]["recordsScanned"]
    assert answer_sql["statistics"]["recordsMatched"] == answer_events["statistics"]["recordsMatched"]
    assert answer_sql["statistics"]["bytesScanned"] < answer_events["statistics"]["bytesScanned"] / 2
