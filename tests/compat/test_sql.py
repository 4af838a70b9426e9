"""SQL over log groups: the Athena-compatible API driven by the real aws CLI and boto3,
`nettrail sql`, and the same aggregates from DuckDB reading the server's Parquet parts.

The server compacts constantly here (segments sealed every 0.3 s, compacted every 0.2 s),
so the flow-log group ends up in columnar parts while later events are still rows;
every query must count each event once, whichever tier holds it.
"""

import csv
import datetime
import io
import json
import pathlib
import random
import re
import subprocess
import time

import duckdb
import pytest

from conftest import NettrailServer, client_env, nettrail_bin, now_ms

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
        kind = rng.random()
        if kind < 0.05:  # dual-stack hosts
            srcaddr, dstaddr = f"2001:db8:1::{rng.randrange(1, 9):x}", "2001:db8:2::1"
        elif kind < 0.12:  # the address the documentation's samples look for
            srcaddr, dstaddr = "10.117.1.22", rng.choice(["10.0.1.14", "172.31.16.21"])
        else:
            srcaddr = f"10.0.{rng.randrange(4)}.{rng.randrange(1, 60)}"
            dstaddr = rng.choice(["172.31.16.21", "172.31.16.22", "198.51.100.23", "10.1.0.9", "10.0.1.14"])
        r = {
            "interface_id": f"eni-{rng.randrange(8):017x}",
            "srcaddr": srcaddr,
            "dstaddr": dstaddr,
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


def put(client, records, group=GROUP):
    events = sorted(({"timestamp": r["start"] * 1000, "message": r["message"]} for r in records), key=lambda e: e["timestamp"])
    for i in range(0, len(events), 500):
        client.put_log_events(logGroupName=group, logStreamName="eni-all", logEvents=events[i : i + 500])


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


def wait_until_compacted(data, count, timeout=60):
    """Waits until the server's parts under `data` hold `count` rows."""
    deadline = time.monotonic() + timeout
    while True:
        parts = sorted((data / "lake").rglob("*.parquet"))
        in_parts = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet({[str(p) for p in parts]})").fetchone()[0] if parts else 0
        if in_parts == count:
            return
        assert time.monotonic() < deadline, f"only {in_parts} of {count} events compacted"
        time.sleep(0.2)


def flow_group_server(data, group, records, log_format=None):
    """A server (compacting constantly) with `group` holding `records` (dicts with
    `start` and `message`), all of them compacted into parts; with `log_format` the
    group's flow-log format is declared first, through `nettrail logs set-flow-log-format`."""
    srv = NettrailServer(data, config=CONFIG).start()
    logs = srv.client()
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="eni-all")
    if log_format:
        proc = subprocess.run(
            [nettrail_bin(), "logs", "set-flow-log-format", "--log-group-name", group,
             "--log-format", log_format, "--endpoint-url", srv.endpoint],
            env=client_env(), capture_output=True, text=True, timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
    put(logs, records, group)
    wait_until_compacted(data, len(records))
    return srv


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data = tmp_path_factory.mktemp("sql") / "data"
    records = flow_records(3000, (now_ms() - 5 * HOUR) // HOUR * HOUR)
    srv = flow_group_server(data, GROUP, records)
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
    athena = srv.client(service="athena")
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


def test_pyathena_runs_queries_unchanged(loaded):
    """PyAthena, the DB-API driver most Python users reach Athena with, pointed at the
    server: its cursor starts the query, polls, pages the results and types the values
    from the column metadata."""
    from pyathena import connect
    from pyathena.error import OperationalError

    from conftest import ACCESS_KEY, REGION, SECRET_KEY

    srv, _, records = loaded
    connection = connect(
        s3_staging_dir="s3://results/", region_name=REGION, schema_name="default",
        endpoint_url=srv.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        poll_interval=0.05,
    )
    cursor = connection.cursor(arraysize=50)
    cursor.execute(
        "SELECT action, count(*) AS flows, sum(bytes) AS bytes, max(from_unixtime(start)) AS last_start "
        "FROM vpc_flows WHERE protocol = %(protocol)d GROUP BY action ORDER BY action",
        {"protocol": 6},
    )
    assert [d[0] for d in cursor.description] == ["action", "flows", "bytes", "last_start"]
    rows = cursor.fetchall()
    tcp = [r for r in records if r["protocol"] == 6]
    expected = {}
    for r in tcp:
        flows, total, last = expected.get(r["action"], (0, 0, 0))
        expected[r["action"]] = (flows + 1, total + r["bytes"], max(last, r["start"]))
    assert [(a, n, b) for a, n, b, _ in rows] == [(a, *expected[a][:2]) for a in sorted(expected)]
    # Values typed from the column metadata: integers as int, the timestamp as a datetime.
    assert all(isinstance(n, int) and isinstance(b, int) for _, n, b, _ in rows)
    last = rows[0][3]
    assert isinstance(last, datetime.datetime)
    assert last.replace(tzinfo=datetime.timezone.utc).timestamp() == expected[rows[0][0]][2]
    # More rows than a page: fetched page by page.
    cursor.execute("SELECT srcaddr, bytes FROM vpc_flows ORDER BY event_seq LIMIT 260")
    assert len(cursor.fetchall()) == 260
    # A query that fails is an OperationalError with Athena's reason.
    with pytest.raises(OperationalError, match="nope"):
        cursor.execute("SELECT nope FROM vpc_flows")

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


CASES = pathlib.Path(__file__).parent / "sql" / "athena-samples.cases"


def load_cases(path):
    """The cases of a `.cases` file (its header says the format): name, Athena SQL,
    DuckDB SQL, check."""
    cases = []
    text = "".join(line for line in path.read_text().splitlines(keepends=True) if not line.startswith("#"))
    for block in re.split(r"^== ", text, flags=re.M)[1:]:
        name, _, body = block.partition("\n")
        sections = dict(re.findall(r"^-- (athena|duckdb|check)(?::)?\s*\n?(.*?)(?=^-- |\Z)", body, flags=re.M | re.S))
        athena = sections["athena"].strip().rstrip(";")
        check = sections["check"].strip()
        assert check in ("rows", "set", "subset"), f"{path.name}: {name}: check {check!r}"
        cases.append((name.strip(), athena, sections.get("duckdb", athena).strip().rstrip(";"), check))
    return cases


HIVE = '"aws-account-id", "aws-service", "aws-region", year, month, day, hour'


def duckdb_over_parts(data):
    """DuckDB with the tables' two shapes as views over the server's parts."""
    parts = [str(p) for p in sorted((data / "lake").rglob("*.parquet"))]
    duck = duckdb.connect()
    duck.execute(
        # DuckDB puts the Hive columns in its own order: put them in the folders'.
        f"CREATE VIEW flows AS SELECT * EXCLUDE ({HIVE}), {HIVE}, make_date(year::INT, month::INT, day::INT) AS date "
        f"FROM read_parquet({parts}, hive_partitioning=true, hive_types_autocast=false)"
    )
    duck.execute(
        f'CREATE VIEW flows_by_day AS SELECT * EXCLUDE ({HIVE}, date), '
        '"aws-region" AS region, year || \'/\' || month || \'/\' || day AS day FROM flows'
    )
    return duck


def as_text(value):
    return "" if value is None else str(value)


def day_placeholders(records):
    days = sorted({datetime.datetime.fromtimestamp(r["start"], datetime.timezone.utc).date() for r in records})
    return {
        "{date_lo}": days[0].isoformat(),
        "{day_lo}": days[0].strftime("%Y/%m/%d"),
        "{day_hi}": (days[-1] + datetime.timedelta(days=1)).strftime("%Y/%m/%d"),
    }


def check_cases(srv, duck, path, table, fill):
    """Runs every case of `path` through `nettrail sql` on `table` and compares with
    DuckDB's answer over the views `flows` and `flows_by_day`; returns how many ran."""
    cases = load_cases(path)
    for name, athena, duck_sql, check in cases:
        def sql_for(text, t, t_by_day):
            text = text.replace("{t_by_day}", t_by_day).replace("{t}", t)
            for k, v in fill.items():
                text = text.replace(k, v)
            return text
        expected = [[as_text(v) for v in row] for row in duck.execute(sql_for(duck_sql, "flows", "flows_by_day")).fetchall()]
        out = nettrail_sql(srv, sql_for(athena, table, f"{table}_by_day"), "--csv")
        got = list(csv.reader(io.StringIO(out)))[1:]
        assert expected, f"{name}: the data must give the query something to find"
        if check == "rows":
            assert got == expected, name
        elif check == "set":
            assert sorted(got) == sorted(expected), name
        else:
            limit = int(re.search(r"LIMIT (\d+)\s*$", athena).group(1))
            assert len(got) == min(limit, len(expected)), name
            pool = [tuple(r) for r in expected]
            missing = [r for r in got if tuple(r) not in pool]
            assert not missing, f"{name}: {missing[:1]} is not one of DuckDB's rows, e.g. {pool[:1]}"
    return len(cases)


def test_athena_documentation_queries_agree_with_duckdb(loaded):
    srv, data, records = loaded
    ran = check_cases(srv, duckdb_over_parts(data), CASES, "vpc_flows", day_placeholders(records))
    assert ran >= 20


# Every field of flow logs v2 to v5, in the order of Athena's DDL.
V5_FORMAT = " ".join("${%s}" % f for f in (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type "
    "sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"
).split())
V5_GROUP = "/vpc/all-fields"


def v5_records(n, base_ms, seed=11):
    """`n` records of the 29-field format: instances behind a NAT gateway (packet-level
    addresses differ from the interface's), several subnets, some AWS services."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        start = (base_ms + rng.randrange(2 * HOUR)) // 1000
        instance = rng.randrange(6)
        nat = rng.random() < 0.3
        src = f"10.0.{instance % 3}.{10 + instance}"
        pkt_src = f"100.64.{rng.randrange(3)}.{rng.randrange(1, 20)}" if nat else src
        dst = rng.choice(["52.95.110.1", "10.0.5.9", "172.31.0.7"])
        fields = [
            "5", "123456789010", f"eni-{instance:017x}", src, dst, str(rng.randrange(32768, 61000)),
            str(rng.choice([443, 80, 5432])), "6", str(rng.randrange(1, 50)), str(rng.randrange(40, 100000)),
            str(start), str(start + 60), rng.choice(["ACCEPT"] * 9 + ["REJECT"]), "OK",
            "vpc-0a1b2c3d", f"subnet-{instance % 3:08x}", f"i-{instance:017x}", str(rng.choice([2, 18, 19, 3])),
            "IPv4", pkt_src, dst, "us-east-1", f"use1-az{instance % 3 + 1}", "-", "-",
            "-", "S3" if dst.startswith("52.") else "-", rng.choice(["ingress", "egress"]),
            str(rng.randrange(1, 9)) if dst.startswith("52.") else "-",
        ]
        records.append({"start": start, "message": " ".join(fields)})
    return records


@pytest.fixture(scope="module")
def loaded_v5(tmp_path_factory):
    data = tmp_path_factory.mktemp("sqlv5") / "data"
    records = v5_records(2000, (now_ms() - 4 * HOUR) // HOUR * HOUR)
    srv = flow_group_server(data, V5_GROUP, records, log_format=V5_FORMAT)
    yield srv, data, records
    srv.stop()


def test_a_declared_custom_format_is_stored_as_columns(loaded_v5):
    srv, data, records = loaded_v5
    # The parts hold the 29 fields as typed columns and no text.
    duck = duckdb_over_parts(data)
    row = duck.execute(
        "SELECT count(*), count(message), count(pkt_srcaddr), count(traffic_path), typeof(any_value(tcp_flags)) FROM flows"
    ).fetchone()
    assert row == (len(records), 0, len(records), sum(not r["message"].endswith(" -") for r in records), "INTEGER")
    proc = subprocess.run(
        [nettrail_bin(), "sql", "ddl", "--log-group", V5_GROUP, "--endpoint-url", srv.endpoint],
        env=client_env(), capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "`pkt_dst_aws_service` string" in proc.stdout and "`traffic_path` int" in proc.stdout
    # Events read back byte for byte, from the columns.
    logs = srv.client()
    got = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=V5_GROUP):
        got += [e["message"] for e in page["events"]]
    assert sorted(got) == sorted(r["message"] for r in records)
    # A format that is not one is refused, naming what is wrong.
    bad = subprocess.run(
        [nettrail_bin(), "logs", "set-flow-log-format", "--log-group-name", V5_GROUP,
         "--log-format", "${srcaddr} ${no-such-field}", "--endpoint-url", srv.endpoint],
        env=client_env(), capture_output=True, text=True, timeout=30,
    )
    assert bad.returncode != 0 and "no-such-field" in bad.stderr, bad.stderr


def test_vpc_console_named_queries_for_all_fields_agree_with_duckdb(loaded_v5):
    srv, data, records = loaded_v5
    ran = check_cases(srv, duckdb_over_parts(data), CASES.with_name("athena-samples-v5.cases"), "vpc_all_fields", day_placeholders(records))
    assert ran >= 4


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


def client_vpn_entries(n, base_ms, seed=5):
    """Client VPN connection log entries as AWS writes them: every scalar a string,
    "NA" where not applicable, attempts and resets, some pretty-printed."""
    rnd = random.Random(seed)
    fmt = lambda ms: datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    entries = []
    for i in range(n):
        ts = base_ms + i * 1000
        reset = rnd.random() < 0.4
        failed = not reset and rnd.random() < 0.2
        entry = {
            "connection-log-type": "connection-reset" if reset else "connection-attempt",
            "connection-attempt-status": "NA" if reset else ("failed" if failed else "successful"),
            "connection-attempt-failure-reason": "client-connect-failed" if failed else "NA",
            "connection-id": f"cvpn-connection-{i:017x}",
            "client-vpn-endpoint-id": "cvpn-endpoint-0f2d58d4869ece501",
            "transport-protocol": rnd.choice(["udp", "tcp"]),
            "connection-start-time": "NA" if failed else fmt(ts - 600_000),
            "connection-last-update-time": fmt(ts),
            "client-ip": "NA" if failed else f"172.16.0.{rnd.randrange(2, 250)}",
            "common-name": rnd.choice(["alice.example.com", "bob.example.com", "carol.example.com"]),
            "device-type": rnd.choice(["mac", "win", "linux"]),
            "device-ip": f"198.51.100.{rnd.randrange(1, 250)}",
            "port": str(rnd.randrange(1024, 65535)),
            "ingress-bytes": str(rnd.randrange(0, 10**10)) if reset else "0",
            "egress-bytes": str(rnd.randrange(0, 10**9)) if reset else "0",
            "ingress-packets": str(rnd.randrange(0, 10**6)) if reset else "0",
            "egress-packets": str(rnd.randrange(0, 10**6)) if reset else "0",
            "connection-end-time": fmt(ts) if reset else "NA",
            "username": "NA",
        }
        text = json.dumps(entry, indent=4) if i % 7 == 0 else json.dumps(entry)
        entries.append({"timestamp": ts, "message": text})
    return entries


def tunnel_events(n, base_ms, seed=6):
    """Site-to-Site VPN tunnel activity and BGP events of one tunnel."""
    rnd = random.Random(seed)
    events = []
    for i in range(n):
        ts = base_ms + i * 1000
        if i % 3:
            event = {"event_timestamp": ts // 1000, "details": rnd.choice(["Sending DPD request", "IKE SA established"]),
                     "dpd_enabled": rnd.choice([True, False]), "nat_t_detected": "False",
                     "ike_phase1_state": rnd.choice(["established", "down"]), "ike_phase2_state": "established"}
        else:
            event = {"resource_id": "vpn-1234abcd_192.0.2.1", "event_timestamp": ts,
                     "timestamp": "2025-11-08 05:26:13.243Z", "type": rnd.choice(["BGPStatus", "RouteStatus"]),
                     "status": rnd.choice(["UP", "UPDATED"]),
                     "message": {"prefix": f"10.{i % 7}.0.0/16", "localPref": 100, "details": "route updated"}}
        events.append({"timestamp": ts, "message": json.dumps(event)})
    return events


def test_vpn_log_groups_get_typed_columns(tmp_path):
    data = tmp_path / "data"
    base = (now_ms() - 3 * HOUR) // HOUR * HOUR
    groups = {"/vpn/client-connections": client_vpn_entries(600, base), "/vpn/tunnels": tunnel_events(300, base)}
    srv = NettrailServer(data, config=CONFIG).start()
    try:
        logs = srv.client()
        for group, events in groups.items():
            logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName="s")
            logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
        wait_until_compacted(data, sum(len(e) for e in groups.values()))
        duck = duckdb.connect()
        for group, view in [("/vpn/client-connections", "client"), ("/vpn/tunnels", "tunnels")]:
            parts = [str(p) for p in sorted((data / "lake").rglob("*.parquet")) if f"/{group.strip('/').replace('/', '_').replace('-', '_')}-" in str(p)]
            assert parts, group
            duck.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet({parts})")
        # Other engines see the keys as typed columns: counters are integers, times are
        # UTC timestamps, "NA" is null.
        types = duck.execute(
            "SELECT typeof(any_value(port)), typeof(any_value(ingress_bytes)), typeof(any_value(connection_start_time)), "
            "count(*) FILTER (WHERE connection_end_time IS NULL), count(*) FILTER (WHERE message IS NULL) FROM client"
        ).fetchone()
        entries = [json.loads(e["message"]) for e in groups["/vpn/client-connections"]]
        assert types == ("INTEGER", "BIGINT", "TIMESTAMP WITH TIME ZONE",
                         sum(e["connection-end-time"] == "NA" for e in entries), 0)
        assert duck.execute("SELECT typeof(any_value(dpd_enabled)) FROM tunnels").fetchone() == ("BOOLEAN",)
        # `nettrail sql` answers from the same columns as DuckDB.
        queries = [
            ("client", "vpn_client_connections",
             "SELECT common_name, count(*) AS n, sum(ingress_bytes) AS ingress, count(connection_end_time) AS ended "
             "FROM {t} WHERE connection_log_type = 'connection-reset' GROUP BY common_name ORDER BY common_name"),
            ("client", "vpn_client_connections",
             "SELECT connection_attempt_failure_reason, count(*) AS n FROM {t} "
             "WHERE connection_attempt_status = 'failed' GROUP BY 1 ORDER BY 1"),
            ("tunnels", "vpn_tunnels",
             "SELECT type, status, count(*) AS n, count(prefix) AS routes FROM {t} GROUP BY 1, 2 ORDER BY 1, 2"),
            ("tunnels", "vpn_tunnels",
             "SELECT ike_phase1_state, count(*) AS n FROM {t} WHERE dpd_enabled AND NOT nat_t_detected GROUP BY 1 ORDER BY 1"),
        ]
        for view, table, query in queries:
            expected = [[as_text(v) for v in row] for row in duck.execute(query.format(t=view)).fetchall()]
            assert expected, query
            got = list(csv.reader(io.StringIO(nettrail_sql(srv, query.format(t=table), "--csv"))))[1:]
            assert got == expected, query
        # Timestamps as Athena shows a `timestamp with time zone`.
        first = json.loads(nettrail_sql(
            srv, "SELECT min(connection_last_update_time) AS t FROM vpn_client_connections", "--json"))
        expected_first = datetime.datetime.fromtimestamp(base / 1000, datetime.timezone.utc)
        assert first == {"t": expected_first.strftime("%Y-%m-%d %H:%M:%S.000 UTC")}
        # The events are still their text, byte for byte.
        for group, events in groups.items():
            got = []
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
                got += [e["message"] for e in page["events"]]
            assert got == [e["message"] for e in events], group
    finally:
        srv.stop()
