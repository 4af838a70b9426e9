"""The VPN agents with real daemons: `nettrail agent strongswan` on the AWS side of
two real charons and `nettrail agent openvpn` on a real OpenVPN server, both
shipping to a real `nettrail serve`; then `nettrail vpn diagnose` on what arrived.

strongSwan scenarios (one tunnel each, all loaded at once, as in
../shared/labs/vpn-labs.md): a good tunnel (established, ping through, CHILD and
IKE rekeys, a CHILD rekey collision, DPD exchanges, deleted by the customer gateway
at the end), PSK mismatch, IKE proposal mismatch, ESP proposal mismatch, traffic
selector mismatch, DPD timeout, half-open timeout; then charon restarts and a last
tunnel comes up through the reconnected agent. OpenVPN: a good client, a client
the policy denies, a client with a certificate from another CA, and a client after the
server restarted.
"""

import json
import subprocess
import time

import pytest

from conftest import NettrailServer, client_env, nettrail_bin
from vpn_lab import (TUNNELS, OpenvpnLab, StrongswanLab, missing_vpn_tools, outside_ip, stop_pid, vpn_id,
                     wait_for)

MISSING = missing_vpn_tools()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {MISSING} for real VPN peers")

TUNNEL_GROUP = "/vpn/tunnels"
CLIENT_GROUP = "/vpn/clients"
ENDPOINT = "cvpn-endpoint-0123456789abcdef0"


def group_events(server, group):
    """Every event of `group` as (stream, parsed message), in time order."""
    logs = server.client()
    out, token = [], None
    while True:
        kwargs = {"logGroupName": group}
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return []
        out += [(e["logStreamName"], json.loads(e["message"])) for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            return out


def diagnose(server, *args):
    proc = subprocess.run([nettrail_bin(), "vpn", "diagnose", "--endpoint-url", server.endpoint, *args],
                          env=client_env(), capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def strongswan_run(tmp_path_factory):
    """Runs every strongSwan scenario once, with the agent shipping to a server;
    yields what the tests look at."""
    work = tmp_path_factory.mktemp("strongswan")
    server = NettrailServer(work / "data").start()
    agent = None
    try:
        with StrongswanLab(work / "lab") as lab:
            # One tunnel named on the command line, the others in a tunnels file.
            config = work / "tunnels.toml"
            config.write_text("".join(
                f'[[tunnels]]\nconnection = "{name}"\nvpn_connection_id = "{vpn_id(name)}"\n\n'
                for name in TUNNELS if name != "ok"))
            agent_log = open(work / "agent.log", "wb")
            agent = subprocess.Popen(
                [nettrail_bin(), "agent", "strongswan", "--vici", lab.vici("gw"),
                 "--tunnel", f"ok={vpn_id('ok')}", "--config", str(config),
                 "--destination", f"logs:{TUNNEL_GROUP}", "--endpoint-url", server.endpoint,
                 "--spool-dir", str(work / "spool")],
                env=client_env(), stdout=agent_log, stderr=subprocess.STDOUT)
            wait_for(lambda: b"following charon" in (work / "agent.log").read_bytes(), 15, "the agent to follow charon")
            run = {"server": server, "lab": lab}

            # ok: up, traffic through, rekeys, a collision, DPD while idle.
            lab.cgw("--initiate", "--child", "ok", "--timeout", "20")
            run["ping"] = lab.in_cgw("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.202.0.1", "10.201.0.1")
            time.sleep(1)
            run["diagnose_up"] = diagnose(server, "--log-group", TUNNEL_GROUP, "--tunnel", outside_ip("ok"), "--json")
            lab.gw("--rekey", "--child", "ok")
            time.sleep(1)
            lab.cgw("--rekey", "--ike", "ok")
            time.sleep(1)
            # A CHILD rekey collision, made certain: the cgw's request is held back
            # until the gw has started its own, then both meet.
            lab.in_cgw("ip", "rule", "add", "to", outside_ip("ok"), "ipproto", "udp", "dport", "4500",
                       "blackhole", "pref", "101")
            lab.cgw("--rekey", "--child", "ok")
            time.sleep(0.3)
            lab.gw("--rekey", "--child", "ok")
            time.sleep(0.4)
            lab.in_cgw("ip", "rule", "del", "to", outside_ip("ok"), "ipproto", "udp", "dport", "4500",
                       "blackhole", "pref", "101")
            time.sleep(3)
            time.sleep(4)  # idle: DPD (dpd_delay 3s)

            # The failures, each on its own tunnel.
            for name in ("pskbad", "ikeprop", "espprop", "tsbad"):
                lab.cgw("--initiate", "--child", name, "--timeout", "10")
            # Half-open: IKE_AUTH (udp/4500) never reaches the gw; meanwhile a DPD
            # timeout: the cgw goes silent on an established tunnel.
            lab.in_cgw("ip", "rule", "add", "to", outside_ip("halfopen"), "ipproto", "udp", "dport", "4500",
                       "blackhole", "pref", "100")
            lab.cgw("--initiate", "--child", "halfopen", "--timeout", "1")
            lab.cgw("--initiate", "--child", "dpd", "--timeout", "20")
            time.sleep(0.5)
            lab.in_cgw("ip", "route", "add", "blackhole", f"{outside_ip('dpd')}/32")
            wait_for(lambda: "<dpd|" in lab.gw_log() and "giving up after" in lab.gw_log(), 40, "the DPD timeout")
            wait_for(lambda: "deleting half open IKE_SA" in lab.gw_log(), 20, "the half-open timeout")

            # ok ends: the cgw deletes its CHILD_SA, then the IKE_SA.
            lab.cgw("--terminate", "--child", "ok", "--timeout", "10")
            time.sleep(0.5)
            lab.cgw("--terminate", "--ike", "ok", "--timeout", "3")
            time.sleep(1)

            # charon restarts: the agent reconnects and goes on with the next tunnel.
            run["restarted_at_ms"] = int(time.time() * 1000)
            lab.restart_charon("gw")
            wait_for(lambda: (work / "agent.log").read_bytes().count(b"following charon") >= 2, 20,
                     "the agent to follow the restarted charon")
            lab.cgw("--initiate", "--child", "again", "--timeout", "20")
            time.sleep(1.5)
            stop_pid(agent)
            run["agent_exit"] = agent.returncode
            run["events"] = group_events(server, TUNNEL_GROUP)
            run["diagnose"] = diagnose(server, "--log-group", TUNNEL_GROUP, "--json")
            run["diagnose_text"] = diagnose(server, "--log-group", TUNNEL_GROUP)
            yield run
    finally:
        stop_pid(agent)
        server.stop()


def tunnel(run, name):
    stream = f"{vpn_id(name)}_{outside_ip(name)}"
    return [m for s, m in run["events"] if s == stream]


def details(run, name):
    return [m["details"] for m in tunnel(run, name)]


def report(run, name):
    reports = json.loads(run["diagnose"][1])
    return next(r for r in reports if r["tunnelOutsideIp"] == outside_ip(name))


def test_the_agent_ships_every_tunnel_and_stops_cleanly(strongswan_run):
    assert strongswan_run["agent_exit"] == 0
    streams = {s for s, _ in strongswan_run["events"]}
    assert streams == {f"{vpn_id(n)}_{outside_ip(n)}" for n in TUNNELS}
    for _, m in strongswan_run["events"]:
        assert list(m) == ["timestamp", "dpd_enabled", "nat_t_detected", "ike_phase1_state",
                           "ike_phase2_state", "event_timestamp", "details"]
        assert m["dpd_enabled"] is True


def test_a_good_tunnel_is_established_carries_traffic_and_exchanges_dpd(strongswan_run):
    assert strongswan_run["ping"].returncode == 0, strongswan_run["ping"].stdout
    ok = tunnel(strongswan_run, "ok")
    up = [m for m in ok if m["details"].startswith("AWS tunnel Phase 2 SA established")]
    assert up and up[0]["ike_phase1_state"] == "established" and up[0]["ike_phase2_state"] == "established"
    assert any("for INFORMATIONAL (DPD)" in d for d in details(strongswan_run, "ok"))
    code, out, err = strongswan_run["diagnose_up"]
    assert code == 0, err
    assert json.loads(out)[0]["status"] == "UP"


def test_rekeys_and_collisions_are_not_reported_as_deletes(strongswan_run):
    d = details(strongswan_run, "ok")
    assert "AWS tunnel Phase 1 IKE_SA rekeyed" in d
    assert any(x.startswith("AWS tunnel is sending request (id=") and x.endswith("for CREATE_CHILD_SA") for x in d)
    assert any(x.startswith("AWS tunnel processed request (id=") and x.endswith("for CREATE_CHILD_SA") for x in d)
    assert any(x.startswith("AWS tunnel detected a (CHILD_REKEY) collision") for x in d), d
    # Only the cgw's own deletes at the end: one CHILD_SA, one IKE_SA.
    assert len([x for x in d if x.startswith("AWS tunnel received DELETE for Phase 2 SA with SPI: ")]) == 1, d
    assert d.count("AWS tunnel received DELETE for IKE_SA from CGW") == 1, d
    last = tunnel(strongswan_run, "ok")[-1]
    assert (last["ike_phase1_state"], last["ike_phase2_state"]) == ("down", "down")


def test_a_psk_mismatch_is_named(strongswan_run):
    d = details(strongswan_run, "pskbad")
    assert "AWS tunnel detected a pre-shared key mismatch with cgw: 10.200.0.102" in d
    assert "AWS tunnel is sending AUTHENTICATION_FAILED as the response" in d
    assert report(strongswan_run, "pskbad")["cause"]["summary"].startswith("the pre-shared keys differ")


def test_an_ike_proposal_mismatch_is_named(strongswan_run):
    d = details(strongswan_run, "ikeprop")
    assert "No Proposal Match Found by AWS" in d
    assert 'No Proposal Match Found. Notifying with "No proposal chosen"' in d
    assert report(strongswan_run, "ikeprop")["cause"]["summary"].startswith(
        "phase 1 proposal not accepted: allowed are IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048")


def test_an_esp_proposal_mismatch_keeps_phase_1(strongswan_run):
    kept = [m for m in tunnel(strongswan_run, "espprop")
            if m["details"] == "AWS tunnel Phase 2 was unable to establish while keeping Phase 1"]
    assert kept and (kept[0]["ike_phase1_state"], kept[0]["ike_phase2_state"]) == ("established", "down")
    cause = report(strongswan_run, "espprop")["cause"]["summary"]
    assert cause.startswith("phase 2 proposal not accepted: allowed are ESP:AES_CBC_128"), cause
    assert "ESP:AES_CBC_256/HMAC_SHA2_512_256" in cause


def test_a_traffic_selector_mismatch_is_named(strongswan_run):
    assert any(x.startswith("AWS: Traffic Selector: TS_UNACCEPTABLE") and "10.227.0.0/24" in x
               for x in details(strongswan_run, "tsbad"))
    assert report(strongswan_run, "tsbad")["cause"]["summary"].startswith("traffic selectors not accepted")


def test_a_dpd_timeout_takes_the_tunnel_down(strongswan_run):
    timeouts = [m for m in tunnel(strongswan_run, "dpd") if m["details"] == "AWS tunnel DPD timed out after 3 retransmits"]
    assert len(timeouts) == 1
    assert (timeouts[0]["ike_phase1_state"], timeouts[0]["ike_phase2_state"]) == ("down", "down")
    r = report(strongswan_run, "dpd")
    assert r["dpdTimeouts"] == 1 and r["flaps"] == 1 and r["status"] == "DOWN"
    assert "dead peer detection" in r["cause"]["summary"]


def test_a_half_open_ike_sa_times_out(strongswan_run):
    assert "AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: 10.200.0.108" in details(
        strongswan_run, "halfopen")
    assert "never completed IKE_AUTH" in report(strongswan_run, "halfopen")["cause"]["summary"]


def test_the_agent_follows_charon_through_a_restart(strongswan_run):
    again = tunnel(strongswan_run, "again")
    up = [m for m in again if m["details"].startswith("AWS tunnel Phase 2 SA established")]
    assert up and up[0]["event_timestamp"] > strongswan_run["restarted_at_ms"]
    assert (up[0]["ike_phase1_state"], up[0]["ike_phase2_state"]) == ("established", "established")
    assert report(strongswan_run, "again")["status"] == "UP"


def test_diagnose_exits_non_zero_and_says_what_to_fix(strongswan_run):
    code, out, err = strongswan_run["diagnose_text"]
    assert code == 3, err
    assert "DOWN" in out and "fix: " in out
    assert f"{vpn_id('pskbad')} tunnel {outside_ip('pskbad')}: DOWN" in out


# ------------------------------------------------------------------ OpenVPN

@pytest.fixture(scope="module")
def openvpn_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("openvpn")
    server = NettrailServer(work / "data").start()
    agent = None
    try:
        with OpenvpnLab(work / "lab") as lab:
            agent_log = open(work / "agent.log", "wb")
            agent = subprocess.Popen(
                [nettrail_bin(), "agent", "openvpn", "--management", f"unix://{lab.mgmt}",
                 "--endpoint-id", ENDPOINT, "--deny-common-name", "denied.test",
                 "--bytecount-interval", "1", "--update-interval", "2", "--log-stream", "clients",
                 "--destination", f"logs:{CLIENT_GROUP}", "--endpoint-url", server.endpoint,
                 "--spool-dir", str(work / "spool")],
                env=client_env(), stdout=agent_log, stderr=subprocess.STDOUT)
            wait_for(lambda: "Initialization Sequence Completed" in lab.server_log(), 15,
                     "the server to start (the agent releases its hold)")
            run = {}
            good, good_log = lab.client("client1.test")
            wait_for(lambda: good_log.exists() and "Initialization Sequence Completed" in good_log.read_text(), 20,
                     "client1 to connect")
            run["ping"] = lab.ns.run(lab.ns.right, "ping", "-c", "3", "-i", "0.3", "-W", "2", "10.230.0.1")
            time.sleep(4)  # byte counts and at least one update
            stop_pid(good)  # SIGTERM: explicit exit notify, the server ends it ~5 s later
            wait_for(lambda: any(m.get("common-name") == "client1.test" and m["connection-end-time"] != "NA"
                                 for _, m in group_events(server, CLIENT_GROUP)), 20, "client1's final entry")

            denied, denied_log = lab.client("denied.test")
            wait_for(lambda: denied_log.exists() and "AUTH_FAILED" in denied_log.read_text(), 20,
                     "the denied client to be refused")
            stop_pid(denied)
            rogue, _ = lab.client("rogue.test")
            wait_for(lambda: "VERIFY ERROR" in lab.server_log() and "CN=rogue.test" in lab.server_log(), 20,
                     "the server to refuse the other CA's client")
            stop_pid(rogue)

            # The server restarts and holds until a management client releases it:
            # the agent reconnects, and the next client is logged.
            lab.restart_server()
            wait_for(lambda: lab.server_log().count("Initialization Sequence Completed") >= 2, 30,
                     "the restarted server to be released by the agent")
            again, again_log = lab.client("client1.test")
            wait_for(lambda: again_log.read_text().count("Initialization Sequence Completed") >= 2, 20,
                     "client1 to connect again")
            time.sleep(1)
            stop_pid(again)
            time.sleep(1)
            stop_pid(agent)
            run["agent_exit"] = agent.returncode
            run["entries"] = [m for s, m in group_events(server, CLIENT_GROUP) if s == "clients"]
            yield run
    finally:
        stop_pid(agent)
        server.stop()


def entries_of(run, cn):
    return [m for m in run["entries"] if m.get("common-name") == cn]


def test_a_good_client_is_logged_with_growing_counts_and_an_end(openvpn_run):
    assert openvpn_run["ping"].returncode == 0
    everything = entries_of(openvpn_run, "client1.test")
    # The first connection's entries (client1 connects again after the restart).
    entries = [e for e in everything if e["connection-id"] == everything[0]["connection-id"]]
    assert len(entries) >= 3, entries
    first, last = entries[0], entries[-1]
    assert first["connection-attempt-status"] == "successful"
    assert first["connection-end-time"] == "NA"
    assert first["client-vpn-endpoint-id"] == ENDPOINT
    assert first["client-ip"] == "10.250.0.2" and first["device-ip"] == "10.210.0.2"
    assert first["transport-protocol"] == "udp" and first["device-type"] == "linux"
    assert first["ingress-packets"] == "NA"
    ingress = [int(e["ingress-bytes"]) for e in entries]
    # Counts only grow, and the updates show them growing.
    assert ingress == sorted(ingress) and ingress[-1] > 0 and len(set(ingress)) >= 2, ingress
    assert last["connection-end-time"] != "NA"
    assert int(last["connection-duration-seconds"]) >= 4
    assert list(first)[:4] == ["connection-log-type", "connection-attempt-status",
                               "connection-attempt-failure-reason", "connection-id"]


def test_a_denied_client_is_one_failed_entry(openvpn_run):
    entries = entries_of(openvpn_run, "denied.test")
    assert len(entries) == 1, entries
    e = entries[0]
    assert e["connection-attempt-status"] == "failed"
    assert e["connection-attempt-failure-reason"] == "client-connect-failed"
    assert e["connection-start-time"] == "NA" and e["client-ip"] == "NA"


def test_the_agent_follows_the_server_through_a_restart(openvpn_run):
    ids = {e["connection-id"] for e in entries_of(openvpn_run, "client1.test")}
    assert len(ids) == 2, "a new connection after the restart, with its own id"


def test_a_client_of_another_ca_makes_no_entry(openvpn_run):
    assert entries_of(openvpn_run, "rogue.test") == []
    assert openvpn_run["agent_exit"] == 0
