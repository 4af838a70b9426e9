"""The measuring half of bench/filter-e2e (see there): six FilterLogEvents over the
group /bench/flows, with the server's own scan statistics (from its debug log).

    filter_e2e.py ENDPOINT SERVER_LOG PID rows ROWS_JSON
    filter_e2e.py ENDPOINT SERVER_LOG PID parts ROWS_JSON PART_BYTES
"""

import json
import re
import sys
import time

import boto3
from botocore.config import Config

endpoint, log, pid, tier, rows_json = sys.argv[1:6]
part_bytes = int(sys.argv[6]) if tier == "parts" else 0

QUERIES = [
    ("selective (absent) term, whole group", "eni-00000000000000dead"),
    # Digits only, longer than any number column's values: over parts, only the text
    # columns are looked at.
    ("absent number, whole group", "98765432101"),
    # A regular expression says nothing a row group can be left out by: every row group
    # is decoded and every message built.
    ("absent regex, whole group", "%eni-0{12}dead%"),
    # In every row group's dictionary but in few rows (loadgen draws 65,536 sources):
    # over parts, the rows are decoded but only the matches' messages built.
    ("rare address, whole group", "172.31.7.9"),
    ("non-selective term, first page", "ACCEPT"),
    ("VPC SSH reject pattern, first page",
     '[version, account, eni, source, destination, srcport, destport="22", protocol="6", packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]'),
]


def peak_rss_mib():
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def scan_stats(lines):
    """The key=value numbers of the last `filter log events scanned` line."""
    line = [l for l in lines if "filter log events scanned" in l][-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)\b", line)}


logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1",
                    config=Config(read_timeout=600, retries={"max_attempts": 1}))
print(f"\n{tier} tier; server peak RSS so far: {peak_rss_mib():.0f} MiB")
if tier == "rows":
    print(f"{'query':40}{'elapsed s':>10}{'events':>8}{'blocks read':>14}{'skipped':>9}{'GB decompressed':>17}{'peak RSS MiB':>14}")
else:
    print(f"{'query':40}{'elapsed s':>10}{'events':>8}{'row groups read/skipped':>25}{'part bytes read':>17}{'vs rows':>9}{'peak RSS MiB':>14}")
    before_rows = json.load(open(rows_json))
results = {}
for label, pattern in QUERIES:
    before = len(open(log).read().splitlines())
    started = time.perf_counter()
    page = logs.filter_log_events(logGroupName="/bench/flows", filterPattern=pattern)
    elapsed = time.perf_counter() - started
    time.sleep(0.2)
    stats = scan_stats(open(log).read().splitlines()[before:])
    results[label] = elapsed
    if tier == "rows":
        total, read = stats["blocks_total"], stats["blocks_read"]
        print(f"{label:40}{elapsed:10.2f}{len(page['events']):8}{read:>8}/{total:<6}{1 - read / max(total, 1):8.1%}"
              f"{stats['bytes_decompressed'] / 1e9:17.2f}{peak_rss_mib():14.0f}")
    else:
        rg = f"{stats['row_groups_read']}/{stats['row_groups_skipped']}"
        share = stats["part_bytes_read"] / max(part_bytes, 1)
        print(f"{label:40}{elapsed:10.2f}{len(page['events']):8}{rg:>25}{share:17.1%}"
              f"{before_rows[label] / elapsed:8.1f}x{peak_rss_mib():14.0f}")
if tier == "rows":
    json.dump(results, open(rows_json, "w"))
