"""Subscription delivery throughput to NATS JetStream (driver of bench/jetstream-throughput).

A backlog of N matching events is put while the JetStream stream is missing (every
publish fails and is retried), then the stream is created and the catch-up is timed from
the first delivered batch to the last: events/s and MB/s of messages delivered.
"""

import argparse
import asyncio
import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import nats
from botocore.config import Config

KEY, SECRET = "AKIANETTRAILBENCH001", "nettrail/bench/secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


async def stream(url, create):
    nc = await nats.connect(url)
    js = nc.jetstream()
    if create:
        await js.add_stream(name="CWL", subjects=["cwl.>"])
    else:
        await js.delete_stream("CWL")
    await nc.close()


async def catch_up(url, expected):
    """Times the delivery of `expected` events from the first message to the last."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    seen, events, payload_bytes, first, seq = 0, 0, 0, None, 1
    deadline = time.monotonic() + 600
    while events < expected and time.monotonic() < deadline:
        info = await js.stream_info("CWL")
        while seq <= info.state.last_seq:
            msg = await js.get_msg("CWL", seq)
            doc = json.loads(gzip.decompress(msg.data))
            if doc["messageType"] == "DATA_MESSAGE":
                if first is None:
                    first = time.monotonic()
                events += len(doc["logEvents"])
                payload_bytes += sum(len(e["message"]) for e in doc["logEvents"])
            seen += 1
            seq += 1
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - first if first else float("nan")
    await nc.close()
    return seen, events, payload_bytes, elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nettrail-js-"))
    nats_port, port = free_port(), free_port()
    nats_bin = shutil.which("nats-server") or "/usr/sbin/nats-server"
    js_proc = subprocess.Popen([nats_bin, "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", str(work / "js")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, NETTRAIL_ACCESS_KEY_ID=KEY, NETTRAIL_SECRET_ACCESS_KEY=SECRET, NETTRAIL_LOG="error")
    server = subprocess.Popen([os.environ["NETTRAIL_BIN"], "serve", "--listen", f"127.0.0.1:{port}",
                               "--data-dir", str(work / "data")], env=env)
    url = f"nats://127.0.0.1:{nats_port}"
    try:
        wait_port(nats_port)
        wait_port(port)
        time.sleep(0.5)
        asyncio.run(stream(url, create=True))
        logs = boto3.client("logs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                            aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                            config=Config(retries={"max_attempts": 1}))
        logs.create_log_group(logGroupName="/bench/js")
        logs.create_log_stream(logGroupName="/bench/js", logStreamName="eni-0a1b2c3d4e5f60718-all")
        logs.put_subscription_filter(logGroupName="/bench/js", filterName="rejects", filterPattern="REJECT",
                                     destinationArn=f"{url}/cwl.flows")
        asyncio.run(stream(url, create=False))  # the destination goes away
        line = "2 123456789010 eni-0a1b2c3d4e5f60718 172.31.9.69 172.31.9.{} {} 3389 6 20 4249 1418530010 1418530070 REJECT OK"
        put, n = 0, 0
        while put < args.events:
            count = min(5000, args.events - put)
            ts = int(time.time() * 1000)
            logs.put_log_events(logGroupName="/bench/js", logStreamName="eni-0a1b2c3d4e5f60718-all",
                                logEvents=[{"timestamp": ts, "message": line.format(i % 250, 1024 + i)}
                                           for i in range(put, put + count)])
            put += count
            n += 1
        asyncio.run(stream(url, create=True))  # back: the backlog is delivered
        batches, events, payload_bytes, elapsed = asyncio.run(catch_up(url, args.events))
        print(f"backlog {args.events:,} events; delivered {events:,} in {batches:,} JetStream messages")
        print(f"catch-up: {elapsed:.2f} s, {events / elapsed:,.0f} events/s, {payload_bytes / 1e6 / elapsed:.1f} MB/s of messages")
    finally:
        server.terminate()
        server.wait(timeout=30)
        js_proc.terminate()
        js_proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
