"""The measuring half of bench/sql-vs-duckdb (see there): bytes per record, compaction
rate, and the spec's 16 queries through nettrail's Athena API and through DuckDB over
the same Parquet parts."""

import glob
import gzip
import math
import os
import statistics
import sys
import tempfile
import time

import boto3
import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from botocore.config import Config

endpoint, data, default_dir, v5_dir = sys.argv[1:5]
records_default, records_v5 = int(sys.argv[5]), int(sys.argv[6])
compact_s, compact_cpu, server_pid = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])

INT32 = {"version", "srcport", "dstport", "protocol", "tcp-flags", "traffic-path"}
INT64 = {"packets", "bytes", "start", "end"}


def files(folder, pattern):
    return sorted(glob.glob(os.path.join(folder, "**", pattern), recursive=True))


def aws_style_parquet_bytes(folder):
    """The same records as AWS's Parquet delivery would hold them: one file per gzip
    object (subscription and 5 minutes), Athena's column names and types, gzip."""
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "part.parquet")
        for path in files(folder, "*.log.gz"):
            with gzip.open(path, "rt") as g:
                names = g.readline().split()
            types = {n: (pa.int32() if n in INT32 else pa.int64() if n in INT64 else pa.string()) for n in names}
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
                parse_options=pacsv.ParseOptions(delimiter=" "),
                convert_options=pacsv.ConvertOptions(column_types=types, null_values=["-"], strings_can_be_null=True),
            )
            table = table.rename_columns([n.replace("-", "_") for n in names])
            pq.write_table(table, out, compression="gzip")
            total += os.path.getsize(out)
    return total


def group_folder(name):
    [folder] = glob.glob(os.path.join(data, "lake", name + "-*"))
    return folder


def size(paths):
    return sum(os.path.getsize(p) for p in paths)


logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
print("\nbytes per record (all tiers; parts + any rows left)")
print(f"{'':24}{'records':>12}{'nettrail':>10}{'gzip text':>11}{'AWS-style Parquet':>19}")
for group, folder, alias, expected in (
    ("/bench/flows", default_dir, "bench_flows", records_default),
    ("/bench/flows-v5", v5_dir, "bench_flows_v5", records_v5),
):
    stored = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    stored = next(g for g in stored if g["logGroupName"] == group)["storedBytes"]
    rows = duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{group_folder(alias)}/**/*.parquet')"
    ).fetchone()[0]
    gz = size(files(folder, "*.log.gz"))
    aws = aws_style_parquet_bytes(folder)
    label = "default format" if alias == "bench_flows" else "v5 (29 fields)"
    print(f"{label:24}{rows:12,}{stored / rows:10.2f}{gz / rows:11.2f}{aws / rows:19.2f}")
total_rows = records_default + records_v5
print(
    f"\ncompaction: {total_rows / compact_s:,.0f} records/s ({compact_s:.1f} s wall, "
    f"{compact_cpu:.1f} s server CPU, {compact_cpu / total_rows * 1e6:.2f} CPU-s per million records)"
)

# The spec's 16 queries (flow-analytics.md §3), over the default-format group. {t} is
# the table; an ENI of middling activity and an hour of the day are filled in below.
QUERIES = {
    "insights_top15_packets": "SELECT srcaddr, dstaddr, sum(packets) AS packets_transferred FROM {t} GROUP BY srcaddr, dstaddr ORDER BY packets_transferred DESC LIMIT 15",
    "insights_subnet_top15_bytes": "SELECT dstaddr, sum(bytes) AS bytes_transferred FROM {t} WHERE srcaddr LIKE '10.0.%' AND TRY_CAST(split_part(srcaddr, '.', 3) AS INT) BETWEEN 64 AND 79 GROUP BY dstaddr ORDER BY bytes_transferred DESC LIMIT 15",
    "insights_udp_sources": "SELECT srcaddr, count(*) AS flows FROM {t} WHERE protocol = 17 GROUP BY srcaddr",
    "insights_skipdata_per_hour": "SELECT start - start % 3600 AS h, count(*) AS n FROM {t} WHERE log_status = 'SKIPDATA' GROUP BY 1 ORDER BY 1",
    "insights_rejects_top20": "SELECT srcaddr, count(*) AS rejections FROM {t} WHERE action = 'REJECT' GROUP BY srcaddr ORDER BY rejections DESC LIMIT 20",
    "athena_select_limit100": "SELECT * FROM {t} LIMIT 100",
    "athena_reject_tcp_limit100": "SELECT interface_id, srcaddr, action, protocol FROM {t} WHERE action = 'REJECT' AND protocol = 6 LIMIT 100",
    "athena_https_top10_dst": "SELECT sum(packets) AS packetcount, dstaddr FROM {t} WHERE dstport = 443 GROUP BY dstaddr ORDER BY packetcount DESC LIMIT 10",
    "athena_top50_talkers": "SELECT srcaddr, sum(bytes) AS total_bytes FROM {t} GROUP BY srcaddr ORDER BY total_bytes DESC LIMIT 50",
    "athena_rejects_by_hour": "SELECT hour, count(*) AS n FROM {t} WHERE action = 'REJECT' GROUP BY hour ORDER BY hour",
    "athena_ssh_rdp": "SELECT dstaddr, dstport, count(*) AS n FROM {t} WHERE dstport IN (22, 3389) GROUP BY dstaddr, dstport ORDER BY n DESC, dstaddr LIMIT 25",
    "needle_ip_24h": "SELECT * FROM {t} WHERE srcaddr = '198.51.100.23' OR dstaddr = '198.51.100.23'",
    "one_eni_24h": "SELECT * FROM {t} WHERE interface_id = '{eni}' ORDER BY start",
    "hour_partition_top_ports": "SELECT dstport, count(*) AS n FROM {t} WHERE hour = '13' GROUP BY dstport ORDER BY n DESC, dstport LIMIT 10",
    "hour_by_start_top_ports": "SELECT dstport, count(*) AS n FROM {t} WHERE start >= {h13} AND start < {h13} + 3600 GROUP BY dstport ORDER BY n DESC, dstport LIMIT 10",
    "count_all": "SELECT count(*) FROM {t}",
}

duck = duckdb.connect()
duck.execute("SET threads = 2")
duck.execute(
    f"CREATE VIEW flows AS SELECT * FROM read_parquet('{group_folder('bench_flows')}/**/*.parquet', "
    "hive_partitioning = true, hive_types_autocast = false)"
)
# An ENI of middling activity: the 200th busiest.
eni = duck.sql("SELECT interface_id FROM flows GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 OFFSET 200").fetchall()[0][0]
h13 = 1_718_064_000 + 13 * 3600
fill = lambda q, t: q.format(t=t, eni=eni, h13=h13)

athena = boto3.client("athena", endpoint_url=endpoint, region_name="us-east-1", config=Config(retries={"max_attempts": 1}))


def nettrail_once(sql):
    started = time.perf_counter()
    qid = athena.start_query_execution(QueryString=sql)["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    assert status["State"] == "SUCCEEDED", (sql, status)
    return elapsed, qid


def duck_once(sql):
    started = time.perf_counter()
    result = duck.sql(sql).to_arrow_table()
    return time.perf_counter() - started, result.num_rows


def median_ms(run, sql):
    run(sql)  # warm-up
    return statistics.median(run(sql)[0] for _ in range(5)) * 1000


def engine_ms(sql):
    """The server's own time for the query (EngineExecutionTimeInMillis, whole ms):
    without the HTTP round trips of starting and polling."""
    times = []
    for _ in range(5):
        _, qid = nettrail_once(sql)
        stats = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Statistics"]
        times.append(stats["EngineExecutionTimeInMillis"])
    return statistics.median(times)


def result_rows(qid):
    rows = 0
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
        rows += len(page["ResultSet"]["Rows"])
    return rows - 1


cpu_before = open(f"/proc/{server_pid}/stat").read().split()
print(f"\n16 queries, median of 5 after a warm-up (ms); nettrail = Athena API on the server, DuckDB in process; 2 threads each")
print(f"{'query':30}{'rows':>8}{'nettrail':>10}{'DuckDB':>9}{'ratio':>8}{'engine ms':>11}{'ratio':>8}")
ratios, engine_ratios = [], []
for name, query in QUERIES.items():
    ours = median_ms(nettrail_once, fill(query, "bench_flows"))
    theirs = median_ms(duck_once, fill(query, "flows"))
    _, qid = nettrail_once(fill(query, "bench_flows"))
    rows = result_rows(qid)
    _, duck_rows = duck_once(fill(query, "flows"))
    assert rows == duck_rows, (name, rows, duck_rows)
    engine = engine_ms(fill(query, "bench_flows"))
    ratios.append(ours / theirs)
    engine_ratios.append(max(engine, 0.5) / theirs)
    print(f"{name:30}{rows:8,}{ours:10.1f}{theirs:9.1f}{ours / theirs:8.2f}{engine:11.0f}{engine_ratios[-1]:8.2f}")
geo = lambda rs: math.exp(sum(math.log(r) for r in rs) / len(rs))
print(f"{'geometric mean nettrail/DuckDB':57}{geo(ratios):8.2f}{'':11}{geo(engine_ratios):8.2f}   (goal <= 1.0)")
print("(ratio: wall time through the API; engine: the server's own time, whole ms, 0 counted as 0.5)")
