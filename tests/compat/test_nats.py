"""Subscription delivery to a real nats-server with JetStream (started here): each
batch is a JetStream publish of the gzip document, as a Kinesis record carries it,
acknowledged by the stream; a destination whose subject no stream captures is refused
at creation, as AWS refuses a missing Kinesis stream.
"""

import asyncio
import gzip
import json
import os
import shutil
import signal
import subprocess
import time

import nats
import pytest
from botocore.exceptions import ClientError

from conftest import free_port, now_ms


def nats_server_bin():
    found = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if not found:
        raise RuntimeError("nats-server is not installed (dev/test installs it with apt-get)")
    return found


@pytest.fixture
def jetstream(tmp_path):
    port = free_port()
    store = tmp_path / "jetstream"
    proc = subprocess.Popen([nats_server_bin(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"

    async def ready():
        deadline = time.monotonic() + 15
        while True:
            try:
                nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False)
                js = nc.jetstream()
                await js.add_stream(name="CWL", subjects=["cwl.>"])
                await nc.close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    try:
        asyncio.run(ready())
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stream_documents(url):
    async def read():
        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info("CWL")
        documents = []
        for seq in range(1, info.state.last_seq + 1):
            msg = await js.get_msg("CWL", seq)
            documents.append((msg.subject, json.loads(gzip.decompress(msg.data))))
        await nc.close()
        return documents
    return asyncio.run(read())


def test_batches_are_published_to_jetstream(server, logs, jetstream):
    logs.create_log_group(logGroupName="/vpc/flows")
    for s in ("eni-1-all", "eni-2-all"):
        logs.create_log_stream(logGroupName="/vpc/flows", logStreamName=s)
    logs.put_subscription_filter(logGroupName="/vpc/flows", filterName="rejects", filterPattern="REJECT",
                                 destinationArn=f"{jetstream}/cwl.flows")
    t = now_ms()
    logs.put_log_events(logGroupName="/vpc/flows", logStreamName="eni-1-all", logEvents=[
        {"timestamp": t, "message": "2 123 eni-1 10.0.0.1 10.0.0.2 1 22 6 1 40 1 2 REJECT OK"},
        {"timestamp": t + 1, "message": "2 123 eni-1 10.0.0.1 10.0.0.2 1 443 6 1 40 1 2 ACCEPT OK"}])
    logs.put_log_events(logGroupName="/vpc/flows", logStreamName="eni-2-all", logEvents=[
        {"timestamp": t, "message": "2 123 eni-2 10.0.0.3 10.0.0.4 1 3389 6 1 40 1 2 REJECT OK"}])
    deadline = time.monotonic() + 20
    while True:
        documents = stream_documents(jetstream)
        data = [d for _, d in documents if d["messageType"] == "DATA_MESSAGE"]
        if sum(len(d["logEvents"]) for d in data) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert documents[0][1]["messageType"] == "CONTROL_MESSAGE"
    assert all(subject == "cwl.flows" for subject, _ in documents)
    assert [(d["logStream"], [e["message"].split()[6] for e in d["logEvents"]]) for d in data] == [
        ("eni-1-all", ["22"]), ("eni-2-all", ["3389"])]
    assert all(d["subscriptionFilters"] == ["rejects"] and d["logGroup"] == "/vpc/flows" for d in data)


def test_a_subject_no_stream_captures_is_refused(server, logs, jetstream):
    logs.create_log_group(logGroupName="/g")
    with pytest.raises(ClientError) as e:
        logs.put_subscription_filter(logGroupName="/g", filterName="x", filterPattern="",
                                     destinationArn=f"{jetstream}/nobody.listens")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "Could not deliver test message" in e.value.response["Error"]["Message"]
