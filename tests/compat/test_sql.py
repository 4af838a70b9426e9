"""SQL over log groups: the Athena-compatible API driven by the real aws CLI and boto3,
`nettrail sql`, and the same aggregates from DuckDB reading the server's Parquet parts.

The server compacts constantly here (segments sealed every 0.3 s, compacted every 0.2 s),
so the flow-log group ends up in columnar parts while later events are still rows;
every query must count each event once, whichever tier holds it.
"""

import json
import random
import subprocess
import time

import boto3
import duckdb
import pytest
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY, NettrailServer, client_env, nettrail_bin, now_ms

CONFIG = "[store]\nsegment_max_age_secs = 0.3\nretention_sweep_interval_secs = 0.2\n"
GROUP = "/vpc/flows"
HOUR = 3_600_000


def flow_records(n, base_ms, seed=7):
    """`n` default-format flow records over three hours, with their fields."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        start = (base_ms + rng.randrange(3 * HOUR)) // 1000
        action = "REJECT" if rng.random() < 0.15 else "ACCEPT"
        dstport = rng.choice([443, 443, 80, 22, 3389, 5432, 53])
        proto = 17 if dstport == 53 else 6
        r = {
            "interface_id": f"eni-{rng.randrange(8):017x}",
            "srcaddr": f"10.0.{rng.randrange(4)}.{rng.randrange(1, 60)}",
            "dstaddr": rng.choice(["172.31.16.21", "172.31.16.22", "198.51.100.23", "10.1.0.9"]),
            "srcport": rng.randrange(32768, 61000),
            "dstport": dstport,
            "protocol": proto,
            "packets": rng.randrange(1, 40),
            "bytes": rng.randrange(40, 90000),
            "start": start,
            "end": start + 60,
            "action": action,
        }
        r["message"] = (
            f"2 123456789010 {r['interface_id']} {r['srcaddr']} {r['dstaddr']} {r['srcport']} {r['dstport']} "
            f"{r['protocol']} {r['packets']} {r['bytes']} {r['start']} {r['end']} {action} OK"
        )
        records.append(r)
    return records


def put(client, records):
    events = sorted(({"timestamp": r["start"] * 1000, "message": r["message"]} for r in records), key=lambda e: e["timestamp"])
    for i in range(0, len(events), 500):
        client.put_log_events(logGroupName=GROUP, logStreamName="eni-all", logEvents=events[i : i + 500])


def athena_client(srv):
    return boto3.client(
        "athena",
        endpoint_url=srv.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def run_boto3(athena, sql, timeout=30):
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "default"})["QueryExecutionId"]
    deadline = time.monotonic() + timeout
    while True:
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if state["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        assert time.monotonic() < deadline, f"query did not finish: {sql}"
        time.sleep(0.05)
    assert state["State"] == "SUCCEEDED", state
    rows = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid, PaginationConfig={"PageSize": 7}):
        rows += [[d.get("VarCharValue") for d in row["Data"]] for row in page["ResultSet"]["Rows"]]
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data = tmp_path_factory.mktemp("sql") / "data"
    srv = NettrailServer(data, config=CONFIG).start()
    logs = srv.client()
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="eni-all")
    base = (now_ms() - 5 * HOUR) // HOUR * HOUR
    records = flow_records(3000, base)
    put(logs, records)
    # Wait until the compactor has moved everything into parts.
    deadline = time.monotonic() + 60
    while True:
        parts = sorted((data / "lake").rglob("*.parquet"))
        in_parts = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet({[str(p) for p in parts]})").fetchone()[0] if parts else 0
        if in_parts == len(records):
            break
        assert time.monotonic() < deadline, f"only {in_parts} of {len(records)} events compacted"
        time.sleep(0.2)
    yield srv, data, records
    srv.stop()


def test_aws_cli_runs_athena_queries(loaded):
    srv, _, records = loaded
    _, started, _ = srv.aws(
        "athena", "start-query-execution",
        "--query-string", "SELECT action, count(*) AS flows, sum(bytes) AS bytes FROM vpc_flows GROUP BY action ORDER BY action",
        "--query-execution-context", "Database=default",
        "--result-configuration", "OutputLocation=s3://results/",
    )
    qid = started["QueryExecutionId"]
    for _ in range(200):
        _, execution, _ = srv.aws("athena", "get-query-execution", "--query-execution-id", qid)
        status = execution["QueryExecution"]["Status"]["State"]
        if status not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.05)
    assert status == "SUCCEEDED", execution
    assert execution["QueryExecution"]["Statistics"]["DataScannedInBytes"] > 0
    _, results, _ = srv.aws("athena", "get-query-results", "--query-execution-id", qid)
    rows = [[d.get("VarCharValue") for d in r["Data"]] for r in results["ResultSet"]["Rows"]]
    assert rows[0] == ["action", "flows", "bytes"]
    expected = {}
    for r in records:
        n, b = expected.get(r["action"], (0, 0))
        expected[r["action"]] = (n + 1, b + r["bytes"])
    assert rows[1:] == [[a, str(n), str(b)] for a, (n, b) in sorted(expected.items())]
    types = [c["Type"] for c in results["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["varchar", "bigint", "bigint"]
    _, listed, _ = srv.aws("athena", "list-query-executions")
    assert qid in listed["QueryExecutionIds"]


def test_boto3_pages_and_errors(loaded):
    srv, _, records = loaded
    athena = athena_client(srv)
    header, rows = run_boto3(athena, 'SELECT srcaddr, dstport, bytes FROM "/vpc/flows" ORDER BY event_seq LIMIT 25')
    assert header == ["srcaddr", "dstport", "bytes"]
    assert len(rows) == 25
    bad = athena.start_query_execution(QueryString="SELECT nope FROM vpc_flows")["QueryExecutionId"]
    for _ in range(100):
        status = athena.get_query_execution(QueryExecutionId=bad)["QueryExecution"]["Status"]
        if status["State"] == "FAILED":
            break
        time.sleep(0.05)
    assert status["State"] == "FAILED" and "nope" in status["StateChangeReason"]
    assert status["AthenaError"]["ErrorCategory"] == 2
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_results(QueryExecutionId=bad)
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_execution(QueryExecutionId="no-such-id")
    for statement in ("DROP TABLE vpc_flows", "CREATE TABLE x AS SELECT 1"):
        qid = athena.start_query_execution(QueryString=statement)["QueryExecutionId"]
        for _ in range(100):
            status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
            if status["State"] != "RUNNING" and status["State"] != "QUEUED":
                break
            time.sleep(0.05)
        assert status["State"] == "FAILED", statement


# Athena-style flow-log questions: nettrail's SQL (over parts and tail) against DuckDB
# reading the parts the server wrote. {t} is the table.
QUERIES = [
    "SELECT count(*) FROM {t}",
    "SELECT srcaddr, dstaddr, sum(bytes) AS b FROM {t} GROUP BY srcaddr, dstaddr ORDER BY b DESC, srcaddr, dstaddr LIMIT 10",
    "SELECT interface_id, count(*) AS n FROM {t} WHERE action = 'REJECT' AND protocol = 6 GROUP BY interface_id ORDER BY n DESC, interface_id",
    "SELECT dstport, sum(packets) AS p FROM {t} WHERE dstport IN (22, 3389) GROUP BY dstport ORDER BY dstport",
    "SELECT hour, count(*) AS n FROM {t} WHERE action = 'REJECT' GROUP BY hour ORDER BY hour",
    "SELECT count(*) FROM {t} WHERE srcaddr = '198.51.100.23' OR dstaddr = '198.51.100.23'",
    "SELECT (start - start % 3600) AS h, sum(bytes) AS b FROM {t} GROUP BY h ORDER BY h",
    "SELECT count(DISTINCT srcaddr) FROM {t} WHERE starts_with(srcaddr, '10.0.')",
]


def nettrail_sql(srv, sql, *flags):
    proc = subprocess.run(
        [nettrail_bin(), "sql", sql, "--endpoint-url", srv.endpoint, *flags],
        env=client_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_nettrail_sql_agrees_with_duckdb_on_the_parts(loaded):
    srv, data, _ = loaded
    parts = [str(p) for p in sorted((data / "lake").rglob("*.parquet"))]
    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW flows AS SELECT * FROM read_parquet({parts}, hive_partitioning=true, hive_types_autocast=false)")
    for query in QUERIES:
        expected = [list(map(str, row)) for row in duck.execute(query.format(t="flows")).fetchall()]
        out = nettrail_sql(srv, query.format(t="vpc_flows"), "--csv").splitlines()
        got = [line.split(",") for line in out[1:]]
        assert got == expected, query


def test_tail_and_parts_together_and_json_output(loaded):
    srv, data, records = loaded
    logs = srv.client()
    # Write more and query at once: some of it is still rows, the rest in parts.
    more = flow_records(500, (now_ms() - 5 * HOUR) // HOUR * HOUR, seed=8)
    put(logs, more)
    out = nettrail_sql(srv, "SELECT count(*) AS n, sum(bytes) AS b FROM vpc_flows", "--json")
    assert json.loads(out) == {"n": len(records) + len(more), "b": sum(r["bytes"] for r in records + more)}


def test_sql_ddl_and_table_output(loaded):
    srv, data, _ = loaded
    proc = subprocess.run(
        [nettrail_bin(), "sql", "ddl", "--log-group", GROUP, "--endpoint-url", srv.endpoint],
        env=client_env(), capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `vpc_flows`" in proc.stdout
    assert "`protocol` int" in proc.stdout and "`aws-region` string" in proc.stdout
    assert "/lake/vpc_flows-" in proc.stdout
    table = nettrail_sql(srv, "SELECT action, count(*) AS n FROM vpc_flows GROUP BY action ORDER BY action")
    lines = table.splitlines()
    assert lines[0].split("|")[0].strip() == "action" and lines[1].startswith("-")
    bad = subprocess.run([nettrail_bin(), "sql", "SELECT * FROM nowhere", "--endpoint-url", srv.endpoint],
                         env=client_env(), capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "nowhere" in bad.stderr
