"""Parquet flow log files both ways with pyarrow: what nettrail writes pyarrow reads with
AWS's column names and types (`-` as null), and files pyarrow writes with AWS's schema
nettrail converts and imports.
"""

import gzip
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import nettrail_bin
from test_import_s3 import ACCOUNT, LAYOUTS, all_events, run_import

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status tcp-flags pkt-src-aws-service"
LINES = [
    "5 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK 2 -",
    "5 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA - -",
    "5 123456789010 eni-0aaaaaaaaaaaaaaaa 52.95.128.179 10.0.0.71 443 34210 6 14 15044 1616729292 1616729349 ACCEPT OK 19 S3",
]
AWS_SCHEMA = pa.schema([
    ("version", pa.int32()), ("account_id", pa.string()), ("interface_id", pa.string()),
    ("srcaddr", pa.string()), ("dstaddr", pa.string()), ("srcport", pa.int32()), ("dstport", pa.int32()),
    ("protocol", pa.int32()), ("packets", pa.int64()), ("bytes", pa.int64()), ("start", pa.int64()),
    ("end", pa.int64()), ("action", pa.string()), ("log_status", pa.string()), ("tcp_flags", pa.int32()),
    ("pkt_src_aws_service", pa.string()),
])


def as_python(line):
    values = []
    for field, token in zip(AWS_SCHEMA, line.split(" ")):
        if token == "-":
            values.append(None)
        elif pa.types.is_integer(field.type):
            values.append(int(token))
        else:
            values.append(token)
    return values


def convert(src, dst):
    proc = subprocess.run([nettrail_bin(), "flows", "convert", str(src), str(dst)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_nettrail_parquet_reads_in_pyarrow_with_aws_names_and_types(tmp_path):
    text = tmp_path / "flows.log.gz"
    text.write_bytes(gzip.compress((HEADER + "\n" + "\n".join(LINES) + "\n").encode()))
    out = tmp_path / "flows.log.parquet"
    convert(text, out)
    table = pq.read_table(out)
    assert table.schema.names == AWS_SCHEMA.names
    assert [f.type for f in table.schema] == [f.type for f in AWS_SCHEMA]
    rows = [list(r.values()) for r in table.to_pylist()]
    assert rows == [as_python(l) for l in LINES]
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "GZIP"
    # and back to text, byte for byte
    back = tmp_path / "back.log"
    convert(out, back)
    assert back.read_text() == HEADER + "\n" + "\n".join(LINES) + "\n"


def test_pyarrow_parquet_with_aws_schema_converts_and_imports(server, logs, tmp_path):
    table = pa.Table.from_pylist([dict(zip(AWS_SCHEMA.names, as_python(l))) for l in LINES], schema=AWS_SCHEMA)
    source = tmp_path / "bucket"
    name = f"{ACCOUNT}_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20230301T1000Z_pq000001.log.parquet"
    path = source / LAYOUTS["hive-hourly"].format(acct=ACCOUNT, name=name)
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)  # pyarrow's default codec (snappy)
    gz = tmp_path / "gz.parquet"
    pq.write_table(table, gz, compression="gzip")
    for parquet in (path, gz):
        back = tmp_path / "back.log"
        convert(parquet, back)
        assert back.read_text().splitlines() == [HEADER] + LINES

    _, out = run_import(server, source, "/flows/parquet", check_exit=0)
    assert out["summary"]["records"] == 3
    got = sorted((e["logStreamName"], e["timestamp"], e["message"]) for e in all_events(logs, "/flows/parquet"))
    assert got == sorted((l.split()[2] + "-all", int(l.split()[10]) * 1000, l) for l in LINES)


def test_a_parquet_file_that_is_not_a_flow_log_is_refused(tmp_path):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"colour": ["red"]}), bad)
    proc = subprocess.run([nettrail_bin(), "flows", "convert", str(bad), str(tmp_path / "x.log")], capture_output=True, text=True)
    assert proc.returncode != 0 and "column `colour` is not a flow log field" in proc.stderr
