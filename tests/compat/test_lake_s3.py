"""`[store] lake = "s3://BUCKET/PREFIX"`: the columnar parts in an S3 bucket (a real
S3-compatible server, moto's `moto_server`, started and stopped by PID), in AWS's Hive
layout under PREFIX/lake/. The server serves every read from there (FilterLogEvents,
SQL, after a restart), keeps no part on local disk, prints a DDL whose LOCATION is the
bucket, and deletes a deleted group's objects; DuckDB reads the same objects in the
bucket (through fsspec over pyarrow's S3 client, as DuckDB's own S3 extension is a
download this machine cannot make) and gets the same aggregates as `nettrail sql`.

Spark reads the parts on disk (test_spark.py) but not in the bucket: its S3 connector
(hadoop-aws and the AWS SDK bundle) comes only from Maven Central, which the test
machines cannot reach.
"""

import subprocess
import time

import boto3
import duckdb
import pytest
from fsspec.implementations.arrow import ArrowFSWrapper
from pyarrow import fs as pafs

from conftest import NettrailServer, client_env, nettrail_bin, now_ms
from test_sql import GROUP, HOUR, QUERIES, flow_records, nettrail_sql, put

BUCKET = "flow-lake"
PREFIX = "nettrail/parts"
# Moto accepts any key; the server finds them the way the aws CLI does.
LAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def lake_config(moto, lake=f"s3://{BUCKET}/{PREFIX}"):
    return (
        "[store]\nsegment_max_age_secs = 0.3\nretention_sweep_interval_secs = 0.2\n"
        f'lake = "{lake}"\nlake_endpoint_url = "{moto}"\n'
    )


def part_keys(s3):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))


def duck_over_bucket(moto):
    """DuckDB with the bucket's s3:// URLs served by pyarrow's S3 client."""
    s3fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", endpoint_override=moto,
                             scheme="http", region="us-east-1")
    duck = duckdb.connect()
    duck.register_filesystem(ArrowFSWrapper(s3fs))
    return duck


def wait_until_in_bucket(s3, moto, count, exclude=(), timeout=60):
    """Waits until the bucket's parts (but those in `exclude`) hold `count` rows;
    returns their keys."""
    deadline = time.monotonic() + timeout
    while True:
        keys = [k for k in part_keys(s3) if k not in exclude]
        rows = 0
        if keys:
            duck = duck_over_bucket(moto)
            rows = duck.execute(f"SELECT count(*) FROM read_parquet({[f's3://{BUCKET}/{k}' for k in keys]})").fetchone()[0]
        if rows == count:
            return keys
        assert time.monotonic() < deadline, f"only {rows} of {count} events in the bucket's parts"
        time.sleep(0.2)


@pytest.fixture
def lake_env(monkeypatch):
    for key, value in LAKE_ENV.items():
        monkeypatch.setenv(key, value)


def test_parts_in_a_bucket_serve_every_read_and_duckdb_reads_them_there(moto, lake_env, tmp_path):
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    # AWS's own delivery in the same prefix is left alone.
    foreign = f"{PREFIX}/lake/aws/123456789012_vpcflowlogs_us-east-1_fl-0123_20260101T0000Z_0a1b2c3d.log.parquet"
    s3.put_object(Bucket=BUCKET, Key=foreign, Body=b"not nettrail's")
    data = tmp_path / "data"
    srv = NettrailServer(data, config=lake_config(moto)).start()
    try:
        logs = srv.client()
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName="eni-all")
        records = flow_records(3000, (now_ms() - 5 * HOUR) // HOUR * HOUR, seed=11)
        put(logs, records)
        keys = wait_until_in_bucket(s3, moto, len(records), exclude={foreign})
        assert all(k.startswith(f"{PREFIX}/lake/vpc_flows-") and "/aws-service=vpcflowlogs/" in k for k in keys), keys
        assert not list(data.rglob("*.parquet")), "no part on local disk"

        # DuckDB over the bucket and nettrail's SQL agree.
        duck = duck_over_bucket(moto)
        urls = [f"s3://{BUCKET}/{k}" for k in keys]
        duck.execute(f"CREATE VIEW flows AS SELECT * FROM read_parquet({urls}, hive_partitioning=true, hive_types_autocast=false)")
        for query in QUERIES:
            expected = [list(map(str, row)) for row in duck.execute(query.format(t="flows")).fetchall()]
            got = [line.split(",") for line in nettrail_sql(srv, query.format(t="vpc_flows"), "--csv").splitlines()[1:]]
            assert got == expected, query

        # FilterLogEvents reads the parts from the bucket.
        def all_rejects():
            events, kwargs = [], {}
            while True:
                page = logs.filter_log_events(logGroupName=GROUP, filterPattern="REJECT", **kwargs)
                events += page["events"]
                if "nextToken" not in page:
                    return sorted(e["message"] for e in events)
                kwargs = {"nextToken": page["nextToken"]}

        rejects = sorted(r["message"] for r in records if " REJECT " in r["message"])
        assert all_rejects() == rejects

        # The DDL points engines at the bucket.
        proc = subprocess.run([nettrail_bin(), "sql", "ddl", "--log-group", GROUP, "--endpoint-url", srv.endpoint],
                              env=client_env(), capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert f"LOCATION 's3://{BUCKET}/{PREFIX}/lake/vpc_flows-" in proc.stdout, proc.stdout

        # After a restart, still served from the bucket.
        srv.stop()
        srv = NettrailServer(data, config=lake_config(moto)).start()
        logs = srv.client()
        assert nettrail_sql(srv, "SELECT count(*) AS n FROM vpc_flows", "--csv").splitlines()[1] == str(len(records))
        assert all_rejects() == rejects

        # A deleted group's objects leave the bucket; what nettrail did not write stays.
        logs.delete_log_group(logGroupName=GROUP)
        deadline = time.monotonic() + 30
        while part_keys(s3) != [foreign]:
            assert time.monotonic() < deadline, part_keys(s3)
            time.sleep(0.1)
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "lake, expected",
    [
        ("s3://no-such-bucket/x", "no-such-bucket"),
        ("gs://somewhere", "[store] lake"),
    ],
)
def test_a_lake_the_server_cannot_use_stops_it_with_a_clear_error(moto, lake_env, tmp_path, lake, expected):
    srv = NettrailServer(tmp_path / "data", config=lake_config(moto, lake))
    with pytest.raises(RuntimeError) as failure:
        srv.start()
    assert expected in str(failure.value), str(failure.value)
