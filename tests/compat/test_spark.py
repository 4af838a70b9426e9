"""Apache Spark reads the parts a running server wrote, as plain Parquet in AWS's Hive
layout, and gets the same aggregates as `nettrail sql` over the same log group.

Uses pyspark (pip) on Debian's Java 17; the session is local, one core, no UI, and is
stopped when the module ends.
"""

import csv
import io

import pytest

from conftest import now_ms
from test_sql import GROUP, HOUR, flow_group_server, flow_records, nettrail_sql

AGGREGATES = [
    "SELECT action, count(*) AS flows, sum(bytes) AS bytes FROM {t} GROUP BY action ORDER BY action",
    "SELECT hour, count(*) AS flows FROM {t} WHERE action = 'REJECT' GROUP BY hour ORDER BY hour",
    "SELECT dstport, sum(packets) AS packets FROM {t} WHERE protocol = 6 GROUP BY dstport ORDER BY dstport",
    "SELECT count(DISTINCT srcaddr) AS sources FROM {t}",
    "SELECT srcaddr, sum(bytes) AS b FROM {t} GROUP BY srcaddr ORDER BY b DESC, srcaddr LIMIT 10",
    "SELECT `aws-service`, `aws-region`, count(*) AS n FROM {t} GROUP BY 1, 2 ORDER BY 1, 2",
]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("nettrail-parts")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        # Hive folder values stay strings, as in AWS's DDL.
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def compacted(tmp_path_factory):
    data = tmp_path_factory.mktemp("spark") / "data"
    records = flow_records(2500, (now_ms() - 5 * HOUR) // HOUR * HOUR, seed=21)
    srv = flow_group_server(data, GROUP, records)
    yield srv, data, records
    srv.stop()


def test_spark_reads_the_parts_and_agrees_with_nettrail_sql(spark, compacted):
    srv, data, records = compacted
    [folder] = list((data / "lake").glob("vpc_flows-*"))
    frame = spark.read.option("basePath", str(folder)).parquet(str(folder))
    assert frame.count() == len(records)
    frame.createOrReplaceTempView("flows")
    for query in AGGREGATES:
        expected = [["" if v is None else str(v) for v in row] for row in spark.sql(query.format(t="flows")).collect()]
        out = nettrail_sql(srv, query.format(t="vpc_flows").replace("`", '"'), "--csv")
        got = list(csv.reader(io.StringIO(out)))[1:]
        assert got == expected, query
    # The typed columns keep AWS's types.
    types = dict(frame.dtypes)
    assert types["srcport"] == "int" and types["bytes"] == "bigint" and types["srcaddr"] == "string"
    assert types["year"] == "string"
