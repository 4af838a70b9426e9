"""Driver of bench/subscription-latency (see there)."""

import argparse
import base64
import gzip
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

KEY, SECRET = "AKIANETTRAILBENCH001", "nettrail/bench/secret"
BATCH = 100  # events per PutLogEvents call


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def webhook(port, out_path, ready):
    """Records (message, arrival time) of every delivered event, in its own process."""
    arrivals = open(out_path, "w", buffering=1 << 20)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            now = time.time()
            doc = json.loads(gzip.decompress(base64.b64decode(json.loads(body)["awslogs"]["data"])))
            arrivals.write("".join(f"{e['message']}\t{now}\n" for e in doc["logEvents"]))
            arrivals.flush()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready.set()
    try:
        server.serve_forever()
    finally:
        arrivals.flush()


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def run_rate(logs, hook_file, group, rate, seconds):
    calls_per_second = rate / BATCH
    acks = {}
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / calls_per_second
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ts = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=group, logStreamName="s",
            logEvents=[{"timestamp": ts, "message": f"{rate} {n} {i} match"} for i in range(BATCH)],
        )
        acks[n] = time.time()
        n += 1
    sent = n * BATCH
    achieved = sent / (time.monotonic() - start)
    deadline = time.monotonic() + 60
    latencies = {}
    while time.monotonic() < deadline:
        latencies = {}
        for line in Path(hook_file).read_text().splitlines():
            message, arrival = line.rsplit("\t", 1)
            parts = message.split(" ")
            if len(parts) != 4 or parts[3] != "match":
                continue  # the CONTROL_MESSAGE
            r, batch = parts[0], parts[1]
            if int(r) == rate and message not in latencies:
                latencies[message] = float(arrival) - acks[int(batch)]
        if len(latencies) >= sent:
            break
        time.sleep(0.5)
    values = sorted(latencies.values())
    return sent, achieved, len(values), values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nettrail-latency-"))
    hook_port, port = free_port(), free_port()
    hook_file = work / "arrivals.tsv"
    ready = multiprocessing.Event()
    hook = multiprocessing.Process(target=webhook, args=(hook_port, hook_file, ready), daemon=True)
    hook.start()
    ready.wait(10)
    env = dict(os.environ, NETTRAIL_ACCESS_KEY_ID=KEY, NETTRAIL_SECRET_ACCESS_KEY=SECRET, NETTRAIL_LOG="warn")
    config = work / "config.toml"
    config.write_text(f'[subscriptions.destinations]\n"arn:aws:lambda:us-east-1:123456789012:function:bench" = "http://127.0.0.1:{hook_port}/hook"\n')
    server = subprocess.Popen([os.environ["NETTRAIL_BIN"], "serve", "--listen", f"127.0.0.1:{port}",
                               "--data-dir", str(work / "data"), "--config", str(config)], env=env)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        logs = boto3.client("logs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                            aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                            config=Config(retries={"max_attempts": 1}))
        logs.create_log_group(logGroupName="/bench/latency")
        logs.create_log_stream(logGroupName="/bench/latency", logStreamName="s")
        logs.put_subscription_filter(logGroupName="/bench/latency", filterName="match", filterPattern="match",
                                     destinationArn="arn:aws:lambda:us-east-1:123456789012:function:bench")
        print(f"{'target ev/s':>12}{'achieved':>10}{'events':>9}{'received':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for rate in args.rates:
            sent, achieved, received, values = run_rate(logs, hook_file, "/bench/latency", rate, args.seconds)
            p50, p99, worst = (percentile(values, 50), percentile(values, 99), values[-1]) if values else (0, 0, 0)
            print(f"{rate:>12,}{achieved:>10,.0f}{sent:>9,}{received:>10,}{p50 * 1000:>9.1f}{p99 * 1000:>9.1f}{worst * 1000:>9.1f}")
            sys.stdout.flush()
    finally:
        server.terminate()
        server.wait(timeout=30)
        hook.terminate()


if __name__ == "__main__":
    main()
