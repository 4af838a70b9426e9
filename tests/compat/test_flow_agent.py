"""`nettrail agent flows` on real captures, checked against an independent oracle
(`flow_oracle.py`: tshark's dissection, aggregated here) for every capture in
`../shared/data/pcaps/`, and its destinations: stdout, a folder in each S3 layout
(read back by the formats crate through `nettrail flows convert`, and by pyarrow), an
S3 bucket (moto's server), a nettrail log group (also when the server comes up only
after the agent started).
"""

import gzip
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import flow_oracle
from conftest import REPO, NettrailServer, client_env, free_port, nettrail_bin

PCAPS = sorted((REPO.parent / "shared" / "data" / "pcaps").glob("*.pcap*"))
COMPARED = "${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${tcp-flags}"
WINDOW = 60

# Captures whose frames the agent does not decode, and why; everything else must agree
# with the oracle exactly.
NOT_DECODED = {
    # 802.11 captures (radiotap / 802.11 link types): a host's interface hands the
    # agent Ethernet frames, never raw Wi-Fi; the oracle dissects the 802.11 data frames.
    "3e80211_wepauth.pcapng", "3e80211_wepauthfail.pcapng", "3e80211_wpaauth.pcapng",
    "3e80211_wpaauthfail.pcapng", "80211beacon.pcapng",
}


def agent_flows(path: Path, window: int = WINDOW, extra=()):
    proc = subprocess.run([nettrail_bin(), "agent", "flows", "--pcap", str(path), "--destination", "-",
                           "--max-aggregation-interval", str(window), "--log-format", COMPARED, "--json",
                           *extra],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == COMPARED.replace("${", "").replace("}", "")
    table, duplicates = {}, 0
    for line in lines[1:]:
        src, dst, sport, dport, proto, packets, nbytes, start, end, flags = line.split(" ")
        key = (int(start) // window * window, flow_oracle.normal(src), flow_oracle.normal(dst),
               int(sport), int(dport), int(proto))
        value = [int(packets), int(nbytes), int(start), int(end), int(flags)]
        if key in table:
            # The same flow in a window twice: packets that came after the window had
            # been written (out-of-order captures), or on two interfaces of one file.
            duplicates += 1
            old = table[key]
            table[key] = [old[0] + value[0], old[1] + value[1], min(old[2], value[2]),
                          max(old[3], value[3]), old[4] | value[4]]
        else:
            table[key] = value
    summary = json.loads(proc.stderr.strip().splitlines()[-1]) if proc.stderr.strip() else {}
    return table, duplicates, summary


def compare(path: Path):
    oracle = flow_oracle.flows(str(path), WINDOW)
    agent, duplicates, summary = agent_flows(path)
    differences = []
    for key in sorted(set(oracle) | set(agent), key=str):
        if oracle.get(key) != agent.get(key):
            differences.append((key, oracle.get(key), agent.get(key)))
    return path.name, len(oracle), differences, duplicates, summary


@pytest.fixture(scope="module")
def comparisons():
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(compare, PCAPS))


def test_every_shared_capture_agrees_with_the_oracle(comparisons):
    assert len(comparisons) >= 100, "the shared captures are there"
    total_flows = 0
    failures = []
    for name, oracle_flows, differences, duplicates, summary in comparisons:
        total_flows += oracle_flows
        if name in NOT_DECODED:
            continue
        if differences:
            failures.append(f"{name}: {len(differences)} flows differ, e.g. {differences[:3]}")
    assert not failures, "\n".join(failures)
    assert total_flows > 1000


def test_captures_not_decoded_are_the_listed_ones_and_nothing_else(comparisons):
    for name, oracle_flows, differences, duplicates, summary in comparisons:
        if name in NOT_DECODED:
            # No IP packet comes out of them; the oracle does see some.
            assert summary.get("unknownLinkType", 0) == summary.get("frames"), name


def test_tcp_flags_and_window_boundaries(tmp_path):
    # A TCP handshake and teardown: the client flow has SYN and FIN, the server's the
    # SYN-ACK (18) and FIN.
    agent, _, _ = agent_flows(REPO.parent / "shared/data/pcaps/tcp_handshake.pcapng")
    flags = sorted(v[4] for v in agent.values() if v)
    assert 18 in flags or 19 in flags, flags
    # 60-second windows split what 600-second windows keep together.
    long_capture = REPO.parent / "shared/data/pcaps/dns.pcap"
    short, _, _ = agent_flows(long_capture, window=60)
    long, _, _ = agent_flows(long_capture, window=600)
    assert sum(v[0] for v in short.values()) == sum(v[0] for v in long.values())


def test_traffic_type_reject_keeps_nothing_from_a_capture_file():
    agent, _, summary = agent_flows(REPO.parent / "shared/data/pcaps/http_google.pcapng",
                                    extra=("--traffic-type", "REJECT"))
    assert agent == {} and summary["flows"] > 0


def run_agent(*args, env=None):
    proc = subprocess.run([nettrail_bin(), "agent", "flows", *args], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_stdout_is_an_s3_file_body_with_identity_from_the_command_line():
    proc = run_agent("--pcap", str(REPO.parent / "shared/data/pcaps/http_ip4and6.pcapng"),
                     "--account-id", "123456789012", "--interface-id", "eni-0a1b2c3d4e5f60718",
                     "--log-format", "${version} ${account-id} ${interface-id} ${type} ${flow-direction} ${srcaddr} ${log-status}",
                     "--interface-address", "172.16.16.139", "2001:db8:1:2::1000")
    lines = proc.stdout.splitlines()
    assert lines[0] == "version account-id interface-id type flow-direction srcaddr log-status"
    assert "5 123456789012 eni-0a1b2c3d4e5f60718 IPv4 ingress 172.16.16.140 OK" in lines
    assert "5 123456789012 eni-0a1b2c3d4e5f60718 IPv4 egress 172.16.16.139 OK" in lines
    assert "5 123456789012 eni-0a1b2c3d4e5f60718 IPv6 ingress 2001:db8:1:2::1002 OK" in lines


@pytest.mark.parametrize("layout", [(), ("--per-hour-partition",), ("--hive-compatible-partitions",),
                                    ("--hive-compatible-partitions", "--per-hour-partition")])
@pytest.mark.parametrize("file_format", ["plain-text", "parquet"])
def test_a_folder_in_each_s3_layout(tmp_path, layout, file_format):
    capture = REPO.parent / "shared/data/pcaps/http_espn.pcapng"
    out = tmp_path / "bucket"
    run_agent("--pcap", str(capture), "--destination", f"dir:{out}", "--file-format", file_format,
              "--account-id", "123456789012", "--region", "eu-west-1", *layout)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files, "files were written"
    assert not [p for p in files if p.suffix == ".partial"]
    key = str(files[0].relative_to(out))
    hive = "--hive-compatible-partitions" in layout
    assert key.startswith("AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=eu-west-1/year="
                          if hive else "AWSLogs/123456789012/vpcflowlogs/eu-west-1/")
    assert ("/hour=" in key or len(key.split("/")) == 9) if "--per-hour-partition" in layout else True
    suffix = ".log.parquet" if file_format == "parquet" else ".log.gz"
    assert all(p.name.endswith(suffix) and p.name.startswith("123456789012_vpcflowlogs_eu-west-1_fl-") for p in files)
    stdout = run_agent("--pcap", str(capture), "--account-id", "123456789012").stdout.splitlines()
    if file_format == "parquet":
        rows = sum(pq.read_table(p).num_rows for p in files)
        columns = pq.read_table(files[0]).column_names
        assert columns[:4] == ["version", "account_id", "interface_id", "srcaddr"]
    else:
        bodies = [gzip.decompress(p.read_bytes()).decode().splitlines() for p in files]
        assert all(b[0] == stdout[0] for b in bodies), "every file starts with the header"
        rows = sum(len(b) - 1 for b in bodies)
        assert sorted(line for b in bodies for line in b[1:]) == sorted(stdout[1:])
    assert rows == len(stdout) - 1
    # The formats crate reads every file back.
    for p in files:
        converted = tmp_path / (p.name + ".txt")
        subprocess.run([nettrail_bin(), "flows", "convert", str(p), str(converted)], check=True, timeout=60)
        assert len(converted.read_text().splitlines()) >= 2


def test_a_log_group_destination_survives_a_late_server(tmp_path):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    capture = REPO.parent / "shared/data/pcaps/http_espn.pcapng"
    expected = run_agent("--pcap", str(capture), "--interface-id", "eni-0123456789abcdef0").stdout.splitlines()[1:]
    # The agent starts while no server listens: its batches wait in the spool until
    # the server is up, then all of them arrive.
    agent = subprocess.Popen([nettrail_bin(), "agent", "flows", "--pcap", str(capture),
                              "--interface-id", "eni-0123456789abcdef0",
                              "--destination", "logs:/vpc/flows", "--endpoint-url", endpoint,
                              "--spool-dir", str(tmp_path / "spool"), "--drain-timeout", "60"],
                             env=client_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert agent.poll() is None, agent.communicate()
    assert list((tmp_path / "spool").glob("*.json")), "batches wait in the spool"
    server = NettrailServer(tmp_path / "data")
    server.port, server.endpoint = port, endpoint
    server.start()
    try:
        _, err = agent.communicate(timeout=90)
        assert agent.returncode == 0, err
        assert not list((tmp_path / "spool").glob("*.json"))
        logs = server.client()
        streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/vpc/flows")["logStreams"]]
        assert streams == ["eni-0123456789abcdef0-all"]
        events = logs.filter_log_events(logGroupName="/vpc/flows", startTime=0)["events"]
        assert sorted(e["message"] for e in events) == sorted(expected)
        # Event time is the record's start.
        assert all(e["timestamp"] == int(e["message"].split()[10]) * 1000 for e in events)
    finally:
        if agent.poll() is None:
            agent.kill()
        server.stop()


def test_records_are_uploaded_to_a_bucket_in_aws_layout(moto, tmp_path):
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="flow-bucket")
    capture = REPO.parent / "shared/data/pcaps/http_espn.pcapng"
    env = client_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    run_agent("--pcap", str(capture), "--destination", "s3://flow-bucket/edge", "--s3-endpoint-url", moto,
              "--account-id", "123456789012", "--spool-dir", str(tmp_path / "spool"),
              "--hive-compatible-partitions", env=env)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="flow-bucket")["Contents"]]
    assert keys and all(k.startswith("edge/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/")
                        and k.endswith(".log.gz") for k in keys), keys
    uploaded = sorted(line for k in keys for line in gzip.decompress(
        s3.get_object(Bucket="flow-bucket", Key=k)["Body"].read()).decode().splitlines()[1:])
    local = run_agent("--pcap", str(capture), "--account-id", "123456789012").stdout.splitlines()[1:]
    assert uploaded == sorted(local)
    assert not list((tmp_path / "spool").rglob("*.gz")), "staged files are removed once uploaded"
    # A bucket that does not exist: a clear error, the files kept for a later upload.
    proc = subprocess.run([nettrail_bin(), "agent", "flows", "--pcap", str(capture), "--destination",
                           "s3://no-such-bucket/x", "--s3-endpoint-url", moto, "--spool-dir",
                           str(tmp_path / "spool2")], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0 and "uploading" in proc.stderr and "s3-staging" in proc.stderr, proc.stderr
