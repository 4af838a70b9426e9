"""`nettrail agent flows --interface` on a live interface: two network namespaces made
here and joined by a veth pair (198.18.0.0/30 and fd00:f10::/64, benchmark and
unique-local ranges, nothing outside), known traffic (ICMP, ICMPv6, UDP, a TCP
connection opened and closed), an nftables drop rule with `log group` whose packets
must come out as REJECT, and a silent window that must come out as NODATA. A reference
capture of the same interface (dumpcap, through tshark) goes through the independent
oracle, and the agent's records must agree with it flow for flow. Everything is removed
at the end: the namespaces (with their veth and nftables tables) and every process
started, by PID.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

import flow_oracle
from conftest import nettrail_bin

WINDOW = 10
FORMAT = ("${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} "
          "${tcp-flags} ${action} ${log-status} ${flow-direction} ${interface-id}")
# What both the agent and the reference capture see: IPv4 and unicast IPv6, but no
# IPv6 neighbour or router discovery or multicast listener reports (which the kernel
# sends on its own, at times the two captures may not both be running), so that a
# window without the test's traffic is truly silent.
BPF = "ip or (ip6 and not ip6 multicast and (not icmp6 or ip6[40] == 128 or ip6[40] == 129))"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"),
                                reason="needs root, iproute2 and nftables to build network namespaces")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=60)


@pytest.fixture
def namespaces():
    tag = str(os.getpid())[-5:]
    a, b = f"ntA{tag}", f"ntB{tag}"
    va, vb = f"va{tag}", f"vb{tag}"
    sh("ip", "netns", "add", a)
    sh("ip", "netns", "add", b)
    try:
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", a)
        sh("ip", "link", "set", vb, "netns", b)
        sh("ip", "-n", a, "addr", "add", "198.18.0.1/30", "dev", va)
        sh("ip", "-n", b, "addr", "add", "198.18.0.2/30", "dev", vb)
        sh("ip", "-n", a, "-6", "addr", "add", "fd00:f10::1/64", "dev", va, "nodad")
        sh("ip", "-n", b, "-6", "addr", "add", "fd00:f10::2/64", "dev", vb, "nodad")
        for ns, dev in ((a, va), (b, vb)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        rules = ("table inet nettrail_test {\n chain input {\n"
                 "  type filter hook input priority 0; policy accept;\n"
                 "  udp dport 9999 log group 5 drop\n }\n}\n")
        subprocess.run(["ip", "netns", "exec", b, "nft", "-f", "-"], input=rules, text=True, check=True,
                       timeout=30)
        yield a, b, vb
    finally:
        sh("ip", "netns", "del", a, check=False)
        sh("ip", "netns", "del", b, check=False)


def in_ns(ns, *args, **kwargs):
    return subprocess.Popen(["ip", "netns", "exec", ns, *args], **kwargs)


def stop(proc, sig=signal.SIGINT, timeout=30):
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_live_records_match_what_was_sent_with_reject_and_nodata(namespaces, tmp_path):
    a, b, vb = namespaces
    reference = tmp_path / "reference.pcapng"
    records = tmp_path / "records.txt"
    tshark = in_ns(b, "tshark", "-q", "-i", vb, "-f", BPF, "-w", str(reference),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(records, "w") as out:
        agent = in_ns(b, nettrail_bin(), "agent", "flows", "--interface", vb, "--filter", BPF,
                      "--max-aggregation-interval", str(WINDOW), "--reject-nflog-group", "5",
                      "--interface-address", "198.18.0.2", "fd00:f10::2", "--interface-id",
                      "eni-0a1b2c3d4e5f60718", "--log-format", FORMAT, stdout=out,
                      stderr=open(tmp_path / "agent.log", "w"))
    server = None
    try:
        time.sleep(3)
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()
        # A TCP server in B: accepts one connection, reads until the client closes.
        server = in_ns(b, "python3", "-c",
                       "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                       "s.bind(('198.18.0.2',8080));s.listen();c,_=s.accept();\n"
                       "while c.recv(65536): pass\nc.close()")
        time.sleep(0.5)
        sh("ip", "netns", "exec", a, "ping", "-c", "3", "-i", "0.2", "198.18.0.2")
        sh("ip", "netns", "exec", a, "ping", "-6", "-c", "3", "-i", "0.2", "fd00:f10::2")
        sh("ip", "netns", "exec", a, "python3", "-c",
           "import socket\n"
           "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
           "for i in range(10): u.sendto(b'q'*50,('198.18.0.2',5353))\n"
           "for i in range(5): u.sendto(b'x'*100,('198.18.0.2',9999))\n"
           "t=socket.create_connection(('198.18.0.2',8080))\n"
           "t.sendall(b'y'*5000)\n"
           "t.close()\n")
        server.wait(timeout=10)
        # Two whole windows with nothing: the second of them at least is NODATA.
        time.sleep(2 * WINDOW + 3)
    finally:
        stop(agent)
        stop(tshark)
        if server is not None:
            stop(server, signal.SIGKILL)
    assert agent.returncode == 0, (tmp_path / "agent.log").read_text()
    lines = records.read_text().splitlines()
    assert lines[0] == FORMAT.replace("${", "").replace("}", "")
    rows = [line.split(" ") for line in lines[1:]]
    ok = [r for r in rows if r[11] == "OK"]
    nodata = [r for r in rows if r[11] == "NODATA"]
    assert nodata, "a silent window is NODATA"
    for r in nodata:
        assert r[:7] == ["-"] * 7 and r[13] == "eni-0a1b2c3d4e5f60718" and int(r[8]) - int(r[7]) == WINDOW

    # A flow may straddle a window boundary: add its records up over windows.
    def totals(rows, *key_columns):
        out = {}
        for r in rows:
            key = tuple(r[c] for c in key_columns)
            packets, nbytes, flags = out.get(key, (0, 0, 0))
            out[key] = (packets + int(r[5]), nbytes + int(r[6]), flags | int(r[9]))
        return out

    # The REJECT: five UDP datagrams to 9999, and no ACCEPT for them.
    rejected = totals([r for r in ok if r[3] == "9999"], 10)
    assert rejected == {("REJECT",): (5, 640, 0)}, rejected
    # The TCP connection: the client's flow SYN + FIN (3), the server's SYN-ACK + FIN (19).
    tcp = totals([r for r in ok if r[4] == "6"], 0, 1)
    assert tcp[("198.18.0.1", "198.18.0.2")][2] == 3 and tcp[("198.18.0.2", "198.18.0.1")][2] == 19, tcp
    # Three echo requests of 84 bytes (the replies share their flow with the port
    # unreachables B sends for the UDP datagrams nobody listens to).
    icmp = totals([r for r in ok if r[4] == "1"], 0, 1)
    assert icmp[("198.18.0.1", "198.18.0.2")][:2] == (3, 252), icmp
    assert {r[12] for r in ok if r[1] == "198.18.0.2"} == {"ingress"}

    # Flow for flow, the same as the oracle over the reference capture (the oracle
    # cannot tell a dropped packet from an accepted one: actions are merged here).
    oracle = flow_oracle.flows(str(reference), WINDOW)
    agent_flows = {}
    for r in ok:
        key = (int(r[7]) // WINDOW * WINDOW, flow_oracle.normal(r[0]), flow_oracle.normal(r[1]),
               int(r[2]), int(r[3]), int(r[4]))
        assert key not in agent_flows, f"one record per flow and window: {r}"
        agent_flows[key] = [int(r[5]), int(r[6]), int(r[7]), int(r[8]), int(r[9])]
    assert agent_flows == oracle


def test_a_config_file_runs_several_flow_logs(namespaces, tmp_path):
    import gzip

    import pyarrow.parquet as pq

    a, b, vb = namespaces
    config = tmp_path / "flowlogs.toml"
    config.write_text(f"""
[agent]
reject_nflog_group = 5
filter = "ip"

[[flow_logs]]
resource_id = "{vb}"
traffic_type = "ALL"
log_destination_type = "s3"
log_destination = "dir:{tmp_path / 'all'}"
max_aggregation_interval = {WINDOW}
interface_id = "eni-0a1b2c3d4e5f60718"
account_id = "123456789012"

[[flow_logs]]
resource_id = "{vb}"
traffic_type = "REJECT"
log_destination_type = "s3"
log_destination = "{tmp_path / 'rejects'}"
log_format = "${{interface-id}} ${{srcaddr}} ${{dstport}} ${{packets}} ${{action}}"
max_aggregation_interval = {WINDOW}
interface_id = "eni-0a1b2c3d4e5f60718"
account_id = "123456789012"
[flow_logs.destination_options]
file_format = "parquet"
hive_compatible_partitions = true
""")
    agent = in_ns(b, nettrail_bin(), "agent", "flows", "--config", str(config),
                  stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "w"))
    try:
        time.sleep(3)
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()
        sh("ip", "netns", "exec", a, "ping", "-c", "2", "-i", "0.2", "198.18.0.2")
        sh("ip", "netns", "exec", a, "python3", "-c",
           "import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
           "for i in range(4): u.sendto(b'x',('198.18.0.2',9999))\n")
        time.sleep(WINDOW + 4)
    finally:
        stop(agent)
    assert agent.returncode == 0, (tmp_path / "agent.log").read_text()
    text_files = sorted((tmp_path / "all").rglob("*.log.gz"))
    assert text_files and all("/AWSLogs/123456789012/vpcflowlogs/" in str(p) for p in text_files)
    lines = [line for p in text_files for line in gzip.decompress(p.read_bytes()).decode().splitlines()[1:]]
    ok = [line.split() for line in lines if line.endswith(" OK")]
    assert any(r[7] == "1" and r[12] == "ACCEPT" and r[8] == "2" for r in ok), ok
    assert any(r[6] == "9999" and r[12] == "REJECT" and r[8] == "4" for r in ok), ok
    parquet_files = sorted((tmp_path / "rejects").rglob("*.log.parquet"))
    assert parquet_files and all("aws-account-id=123456789012" in str(p) for p in parquet_files)
    rows = [row for p in parquet_files for row in pq.read_table(p).to_pylist()]
    # NODATA rows (a window without any traffic) have no action; nothing is ACCEPT.
    rows = [r for r in rows if r["action"] is not None]
    assert [(r["interface_id"], r["srcaddr"], r["dstport"], r["packets"], r["action"]) for r in rows] == [
        ("eni-0a1b2c3d4e5f60718", "198.18.0.1", 9999, 4, "REJECT")]


def test_a_log_group_destination_loses_nothing_when_the_server_restarts(namespaces, tmp_path):
    """Two flow logs of one interface: one to a nettrail server (run in the capturing
    namespace, stopped and started again while traffic flows), one to a folder; once
    the agent has stopped, the log group holds exactly the folder's records."""
    import gzip

    from conftest import ACCESS_KEY, SECRET_KEY, NettrailServer, client_env, free_port

    a, b, vb = namespaces
    port = free_port()
    data = tmp_path / "data"
    server_env = dict(os.environ, NETTRAIL_ACCESS_KEY_ID=ACCESS_KEY, NETTRAIL_SECRET_ACCESS_KEY=SECRET_KEY)

    def serve():
        return in_ns(b, nettrail_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
                     env=server_env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "a"))

    config = tmp_path / "flowlogs.toml"
    config.write_text(f"""
[agent]
endpoint_url = "http://127.0.0.1:{port}"
spool_dir = "{tmp_path / 'spool'}"
filter = "ip"

[[flow_logs]]
resource_id = "{vb}"
log_destination_type = "cloud-watch-logs"
log_destination = "/vpc/edge"
max_aggregation_interval = {WINDOW}
interface_id = "eni-0a1b2c3d4e5f60718"

[[flow_logs]]
resource_id = "{vb}"
log_destination_type = "s3"
log_destination = "dir:{tmp_path / 'folder'}"
max_aggregation_interval = {WINDOW}
interface_id = "eni-0a1b2c3d4e5f60718"
""")
    server = serve()
    agent = in_ns(b, nettrail_bin(), "agent", "flows", "--config", str(config), "--drain-timeout", "60",
                  env=client_env(), stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "w"))
    ping = None
    try:
        time.sleep(3)
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()
        ping = in_ns(a, "ping", "-c", "60", "-i", "0.5", "198.18.0.2", stdout=subprocess.DEVNULL)
        time.sleep(8)
        stop(server, signal.SIGTERM)
        # A window closes while the server is down: its records wait in the spool.
        time.sleep(WINDOW + 4)
        assert list((tmp_path / "spool").rglob("*.json")), (tmp_path / "agent.log").read_text()
        server = serve()
        ping.wait(timeout=60)
        time.sleep(WINDOW + 3)
    finally:
        stop(agent)
        stop(server, signal.SIGTERM)
        if ping is not None:
            stop(ping, signal.SIGKILL)
    assert agent.returncode == 0, (tmp_path / "agent.log").read_text()
    assert not list((tmp_path / "spool").rglob("*.json")), "the spool is empty"
    folder = sorted(line for p in (tmp_path / "folder").rglob("*.log.gz")
                    for line in gzip.decompress(p.read_bytes()).decode().splitlines()[1:])
    assert sum(int(r.split()[8]) for r in folder if r.endswith(" OK") and r.split()[7] == "1") >= 100
    check = NettrailServer(data).start()
    try:
        logs = check.client()
        events, token = [], None
        while True:
            page = logs.filter_log_events(logGroupName="/vpc/edge", startTime=0,
                                          **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        assert sorted(e["message"] for e in events) == folder
    finally:
        check.stop()
