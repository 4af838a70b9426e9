"""The measuring half of bench/insights (see there): Logs Insights queries through
nettrail's API against DuckDB running the same aggregate on the same Parquet parts."""

import glob
import os
import statistics
import sys
import time

import boto3
import duckdb
from botocore.config import Config

endpoint, data = sys.argv[1:3]
server_pid = int(sys.argv[9])
DAY = 1_718_064_000  # 2024-06-11, the generated day

logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
[folder] = glob.glob(os.path.join(data, "lake", "bench_flows-*"))
duck = duckdb.connect()
duck.execute("SET threads = 2")
duck.execute(f"CREATE VIEW flows AS SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = false)")

QUERIES = [
    ("top talkers (packets)",
     "stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15",
     "SELECT srcaddr, dstaddr, sum(packets) AS p FROM flows GROUP BY 1, 2 ORDER BY p DESC LIMIT 15"),
    ("rejects by source",
     'filter action = "REJECT" | stats count(*) as numRejections by srcAddr | sort numRejections desc | limit 20',
     "SELECT srcaddr, count(*) AS n FROM flows WHERE action = 'REJECT' GROUP BY 1 ORDER BY n DESC LIMIT 20"),
    ("subnet top destinations",
     "filter isIpv4InSubnet(srcAddr, '10.0.64.0/20') | stats sum(bytes) as bytesTransferred by dstAddr | sort bytesTransferred desc | limit 15",
     "SELECT dstaddr, sum(bytes) AS b FROM flows WHERE srcaddr LIKE '10.0.%' AND TRY_CAST(split_part(srcaddr, '.', 3) AS INT) BETWEEN 64 AND 79 GROUP BY 1 ORDER BY b DESC LIMIT 15"),
    ("UDP sources",
     "filter protocol = 17 | stats count(*) as flows by srcAddr",
     "SELECT srcaddr, count(*) FROM flows WHERE protocol = 17 GROUP BY 1"),
    ("HTTPS by 5 minutes",
     "filter dstPort = 443 | stats count(*) as n by bin(5m)",
     "SELECT timestamp - timestamp % 300000, count(*) FROM flows WHERE dstport = 443 GROUP BY 1"),
]


def insights(query):
    """(seconds to the first result rows, seconds to completion, rows)."""
    started = time.perf_counter()
    qid = logs.start_query(logGroupName="/bench/flows", startTime=DAY - 86400, endTime=DAY + 2 * 86400, queryString=query)["queryId"]
    first = None
    while True:
        answer = logs.get_query_results(queryId=qid, maxItems=1)
        if first is None and answer["results"]:
            first = time.perf_counter() - started
        if answer["status"] not in ("Scheduled", "Running"):
            break
        time.sleep(0.005)
    done = time.perf_counter() - started
    assert answer["status"] == "Complete", answer["status"]
    return first or done, done, len(logs.get_query_results(queryId=qid)["results"])


def duck_ms(sql):
    duck.sql(sql).fetchall()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        duck.sql(sql).fetchall()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


print("\nLogs Insights (StartQuery until Complete, polled every 5 ms) vs DuckDB (same aggregate as SQL, median of 5), 2 threads each")
print(f"{'query':28}{'rows':>7}{'first rows s':>14}{'complete s':>12}{'DuckDB s':>10}{'ratio':>8}")
for name, query, sql in QUERIES:
    runs = [insights(query) for _ in range(3)]
    first = statistics.median(r[0] for r in runs)
    done = statistics.median(r[1] for r in runs)
    theirs = duck_ms(sql)
    print(f"{name:28}{runs[0][2]:7,}{first:14.2f}{done:12.2f}{theirs:10.2f}{done / theirs:8.1f}")
status = open(f"/proc/{server_pid}/status").read()
peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
print(f"server peak RSS: {int(peak) / 1024:.0f} MiB   (goal: <= 1.2x DuckDB and <= 2 s each)")
