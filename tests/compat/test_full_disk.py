"""A full disk: writes are refused with a clear error, nothing acknowledged is lost,
reads keep working, and writes succeed again once space is freed.

The data directory lives on a 2 MiB tmpfs that the test mounts (root only; skipped
otherwise) and unmounts.
"""

import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import NettrailServer, now_ms


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_refuses_writes_clearly_and_loses_nothing(small_disk):
    # Uncompressed blocks so the disk fills predictably.
    srv = NettrailServer(small_disk / "data", config="[store]\nzstd_level = 0\n").start()
    try:
        logs = srv.client()
        logs.create_log_group(logGroupName="/g")
        logs.create_log_stream(logGroupName="/g", logStreamName="s")
        acked, error = [], None
        for i in range(200):
            message = f"event {i:04d} " + "x" * 20_000
            try:
                logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": message}])
                acked.append(message)
            except ClientError as e:
                error = e
                break
        assert error is not None, "the disk never filled"
        assert acked, "nothing was written before the disk filled"
        err = error.response["Error"]
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert err["Code"] == "ServiceUnavailableException"
        assert "No space left on device" in err["Message"], err["Message"]
        assert srv.proc.poll() is None, "the server survived"

        def stored():
            messages, token = [], None
            while True:  # pages are capped at 1 MB, so follow the forward token
                kwargs = {"nextToken": token} if token else {}
                page = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True, **kwargs)
                messages += [e["message"] for e in page["events"]]
                if page["nextForwardToken"] == token:
                    return messages
                token = page["nextForwardToken"]

        assert stored() == acked, "every acknowledged event is there, nothing else"
        # Metadata writes fail clearly too (or succeed if the journal still fits).
        try:
            logs.create_log_group(logGroupName="/h" + "x" * 400)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ServiceUnavailableException"
        # Free space: writes work again, and a restart recovers everything.
        logs.delete_log_stream(logGroupName="/g", logStreamName="s")  # journaled; data reclaimed later
        srv.stop()
        srv = NettrailServer(small_disk / "data", config="[store]\nzstd_level = 0\nretention_sweep_interval_secs = 1\n").start()
        logs = srv.client()
        logs.create_log_stream(logGroupName="/g", logStreamName="s2")
        deadline = time.monotonic() + 20
        while True:
            try:
                logs.put_log_events(logGroupName="/g", logStreamName="s2", logEvents=[{"timestamp": now_ms(), "message": "after"}])
                break
            except ClientError:
                assert time.monotonic() < deadline, "space was never reclaimed after the stream was deleted"
                time.sleep(0.5)
        assert [e["message"] for e in logs.get_log_events(logGroupName="/g", logStreamName="s2")["events"]] == ["after"]
    finally:
        srv.stop()
