"""Real VPN peers for the VPN agent tests: two strongSwan charons (the AWS side and a
customer gateway) and an OpenVPN server with its clients, each pair in network
namespaces made here and joined by veth (10.200.0.0/24 and 10.210.0.0/24, private
ranges that exist only inside them). The kernels these tests run on may lack ESP, so
charon uses userspace ESP (kernel-libipsec, which needs /dev/net/tun).

Every process is started with Popen and stopped by its PID; every namespace is
deleted at the end, which takes its veth and addresses with it.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CHARON = "/usr/lib/ipsec/charon"
LIBIPSEC = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"
EASYRSA = "/usr/share/easy-rsa/easyrsa"

AWS_IKE = "aes128-sha256-modp2048,aes256-sha256-modp2048"
AWS_ESP = "aes128-sha256-modp2048,aes256-sha256-modp2048"


def missing_vpn_tools():
    """What the VPN tests need and this machine lacks ("" when nothing)."""
    if os.geteuid() != 0:
        return "root (network namespaces)"
    for tool in ("ip", "swanctl", "openvpn"):
        if not shutil.which(tool):
            return tool
    for path in (CHARON, LIBIPSEC, EASYRSA, "/dev/net/tun"):
        if not os.path.exists(path):
            return path
    return ""


def sh(*args, check=True, env=None, timeout=60):
    return subprocess.run(args, check=check, capture_output=True, text=True, env=env, timeout=timeout)


def stop_pid(proc, sig=signal.SIGTERM, timeout=10):
    """Stops a process we started, by its PID: `sig`, then SIGKILL after `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def wait_for(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Namespaces:
    """Two namespaces joined by a veth pair."""

    def __init__(self, left, right, left_addrs, right_addrs, prefix=24):
        tag = str(os.getpid())[-4:]
        self.left, self.right = f"{left}{tag}", f"{right}{tag}"
        self.vleft, self.vright = f"v{left}{tag}", f"v{right}{tag}"
        self.left_addrs, self.right_addrs, self.prefix = left_addrs, right_addrs, prefix

    def __enter__(self):
        sh("ip", "netns", "add", self.left)
        sh("ip", "netns", "add", self.right)
        try:
            sh("ip", "link", "add", self.vleft, "type", "veth", "peer", "name", self.vright)
            sh("ip", "link", "set", self.vleft, "netns", self.left)
            sh("ip", "link", "set", self.vright, "netns", self.right)
            for ns, dev, addrs in ((self.left, self.vleft, self.left_addrs), (self.right, self.vright, self.right_addrs)):
                for addr in addrs:
                    sh("ip", "-n", ns, "addr", "add", f"{addr}/{self.prefix}", "dev", dev)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        sh("ip", "netns", "del", self.left, check=False)
        sh("ip", "netns", "del", self.right, check=False)

    def run(self, ns, *args, check=False, timeout=60):
        return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)


# ------------------------------------------------------------------ strongSwan

# Tunnel name: n, giving outside IPs 10.200.0.n (AWS side) and 10.200.0.(100+n) (cgw)
# and inside networks 10.(200+2n-1).0.0/24 and 10.(200+2n).0.0/24.
TUNNELS = {
    "ok": 1,
    "pskbad": 2,
    "ikeprop": 3,
    "espprop": 4,
    "tsbad": 5,
    "dpd": 6,
    "again": 7,
    "halfopen": 8,
}


def vpn_id(name):
    return f"vpn-0{TUNNELS[name]:016x}"


def outside_ip(name):
    return f"10.200.0.{TUNNELS[name]}"


def cgw_ip(name):
    return f"10.200.0.{100 + TUNNELS[name]}"


def strongswan_conf(side_dir: Path) -> str:
    return f"""charon {{
  # kernel-libipsec (userspace ESP over a TUN device) before kernel-netlink.
  load = kernel-libipsec random nonce openssl pem pkcs1 x509 revocation constraints pubkey aes sha1 sha2 hmac kdf gmp kernel-netlink socket-default vici updown
  # Short retransmits: a DPD gives up 1 + 1.5 + 2.25 + 3.4 s after it starts.
  retransmit_tries = 3
  retransmit_timeout = 1.0
  retransmit_base = 1.5
  install_virtual_ip = no
  half_open_timeout = 5
  plugins {{ vici {{ socket = unix://{side_dir}/charon.vici }} }}
  filelog {{ test {{ path = {side_dir}/charon.log
    time_format = %Y-%m-%dT%H:%M:%S
    time_add_ms = yes
    ike_name = yes
    flush_line = yes
    default = 1
    ike = 2
    chd = 2
    job = 1 }} }}
  syslog {{ daemon {{ default = -1 }} auth {{ default = -1 }} }}
}}
swanctl {{ load = pem pkcs1 x509 revocation constraints pubkey openssl random }}
"""


def _conn(name, local, remote, local_ts, remote_ts, proposals, esp, dpd, dpd_action, extra=""):
    return f"""  {name} {{
    version = 2
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = {proposals}
    dpd_delay = {dpd}
    mobike = no
    keyingtries = 1
    {extra}
    local {{ auth = psk
            id = {local} }}
    remote {{ auth = psk
             id = {remote} }}
    children {{ {name} {{ local_ts = {local_ts}
      remote_ts = {remote_ts}
      esp_proposals = {esp}
      dpd_action = {dpd_action}
      start_action = none
      close_action = none }} }}
  }}
"""


def _ts(name, side):
    # Each tunnel's inside networks: AWS side 10.(200+2n-1).0.0/24, cgw 10.(200+2n).0.0/24.
    n = TUNNELS[name]
    return f"10.{200 + 2 * n - 1}.0.0/24" if side == "gw" else f"10.{200 + 2 * n}.0.0/24"


def swanctl_conf(side):
    """The connections of one side: the gw is AWS's (right), the cgw has the mistakes."""
    conns, secrets = [], []
    for name in TUNNELS:
        gw, cgw = outside_ip(name), cgw_ip(name)
        dpd = {"ok": "3s", "dpd": "2s"}.get(name, "10s")
        if side == "gw":
            conns.append(_conn(name, gw, cgw, _ts(name, "gw"), _ts(name, "cgw"), AWS_IKE, AWS_ESP, dpd, "clear"))
        else:
            proposals = "aes256-sha384-ecp384" if name == "ikeprop" else AWS_IKE
            esp = "aes256-sha512" if name == "espprop" else AWS_ESP
            remote_ts = "10.227.0.0/24" if name == "tsbad" else _ts(name, "gw")
            conns.append(_conn(name, cgw, gw, _ts(name, "cgw"), remote_ts, proposals, esp, dpd, "clear"))
        secret = f"psk-{name}-0123456789"
        if side == "cgw" and name == "pskbad":
            secret = "psk-customer-side-typo"
        secrets.append(f'  ike-{name} {{ id-1 = {gw}\n    id-2 = {cgw}\n    secret = "{secret}" }}\n')
    return "connections {\n" + "".join(conns) + "}\nsecrets {\n" + "".join(secrets) + "}\n"


class StrongswanLab:
    """Two charons: `gw` (AWS's side, responder) and `cgw` (the customer gateway)."""

    def __init__(self, work: Path):
        self.work = work
        self.ns = Namespaces("nsg", "nsc", [outside_ip(n) for n in TUNNELS], [cgw_ip(n) for n in TUNNELS])
        self.charons = {}

    def side_dir(self, side):
        return self.work / side

    def vici(self, side):
        return f"unix://{self.side_dir(side)}/charon.vici"

    def netns(self, side):
        return self.ns.left if side == "gw" else self.ns.right

    def __enter__(self):
        self.ns.__enter__()
        try:
            # libipsec routes each remote TS through its TUN device from an address of
            # the local TS, so every local TS needs one address.
            for name in TUNNELS:
                for side in ("gw", "cgw"):
                    inner = _ts(name, side).replace(".0/24", ".1/32")
                    sh("ip", "-n", self.netns(side), "addr", "add", inner, "dev", "lo")
            for side in ("gw", "cgw"):
                d = self.side_dir(side)
                for sub in ("run", "x509", "x509ca", "private", "pubkey", "rsa", "ecdsa", "pkcs8", "pkcs12", "x509crl"):
                    (d / sub).mkdir(parents=True, exist_ok=True)
                (d / "strongswan.conf").write_text(strongswan_conf(d))
                (d / "swanctl.conf").write_text(swanctl_conf(side))
                self.start_charon(side)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for proc in self.charons.values():
            stop_pid(proc)
        self.ns.__exit__()

    def start_charon(self, side):
        """Starts one side's charon and loads its connections."""
        d = self.side_dir(side)
        sock = d / "charon.vici"
        sock.unlink(missing_ok=True)
        # The bind mount gives each charon its own /run (charon.pid is fixed); `ip netns
        # exec` makes a private mount namespace and every step exec()s, so the PID is
        # charon's.
        env = dict(os.environ, TZ="UTC", STRONGSWAN_CONF=str(d / "strongswan.conf"))
        self.charons[side] = subprocess.Popen(
            ["ip", "netns", "exec", self.netns(side), "sh", "-c",
             f"mount --bind '{d / 'run'}' /run && exec {CHARON}"],
            env=env, stdout=open(d / "charon.stdout", "ab"), stderr=subprocess.STDOUT)
        wait_for(sock.exists, 10, f"charon {side}'s vici socket")
        self.swanctl(side, "--load-all", "--file", str(d / "swanctl.conf"), check=True)

    def restart_charon(self, side):
        stop_pid(self.charons[side])
        self.start_charon(side)

    def swanctl(self, side, *args, check=False, timeout=60):
        env = dict(os.environ, STRONGSWAN_CONF=str(self.side_dir(side) / "strongswan.conf"))
        return sh("swanctl", *args, "--uri", self.vici(side), check=check, env=env, timeout=timeout)

    def cgw(self, *args, timeout=60):
        return self.swanctl("cgw", *args, timeout=timeout)

    def gw(self, *args, timeout=60):
        return self.swanctl("gw", *args, timeout=timeout)

    def in_cgw(self, *args, timeout=60):
        return self.ns.run(self.ns.right, *args, timeout=timeout)

    def gw_log(self):
        path = self.side_dir("gw") / "charon.log"
        return path.read_text(errors="replace") if path.exists() else ""


# ------------------------------------------------------------------ OpenVPN

class OpenvpnLab:
    """An OpenVPN server (its management interface on a UNIX socket, clients answered
    by whoever connects there) and clients, with certificates from easy-rsa: one CA
    for the server and its clients, another for a client the server must refuse."""

    def __init__(self, work: Path):
        self.work = work
        self.ns = Namespaces("nos", "noc", ["10.210.0.1"], ["10.210.0.2"])
        self.server = None
        self.clients = []
        self.mgmt = work / "mgmt.sock"

    def pki(self):
        env = dict(os.environ, EASYRSA_BATCH="1", EASYRSA_ALGO="ec", EASYRSA_CURVE="prime256v1",
                   EASYRSA_CERT_EXPIRE="30", EASYRSA_CRL_DAYS="30")
        main = dict(env, EASYRSA_PKI=str(self.work / "pki"))
        sh(EASYRSA, "init-pki", env=main)
        sh(EASYRSA, "build-ca", "nopass", env=dict(main, EASYRSA_REQ_CN="nettrail test CA"))
        sh(EASYRSA, "build-server-full", "server", "nopass", env=main)
        for client in ("client1.test", "denied.test"):
            sh(EASYRSA, "build-client-full", client, "nopass", env=main)
        other = dict(env, EASYRSA_PKI=str(self.work / "pki-other"))
        sh(EASYRSA, "init-pki", env=other)
        sh(EASYRSA, "build-ca", "nopass", env=dict(other, EASYRSA_REQ_CN="some other CA"))
        sh(EASYRSA, "build-client-full", "rogue.test", "nopass", env=other)

    def __enter__(self):
        self.work.mkdir(parents=True, exist_ok=True)
        self.pki()
        self.ns.__enter__()
        try:
            sh("ip", "-n", self.ns.left, "addr", "add", "10.230.0.1/32", "dev", "lo")
            k = self.work / "pki"
            (self.work / "server.conf").write_text(f"""local 10.210.0.1
port 1194
proto udp
dev tun
topology subnet
server 10.250.0.0 255.255.255.0
push "route 10.230.0.0 255.255.255.0"
ca {k}/ca.crt
cert {k}/issued/server.crt
key {k}/private/server.key
dh none
keepalive 2 10
disable-dco
verb 3
log-append {self.work}/server.log
management {self.mgmt} unix
management-client-auth
auth-user-pass-optional
management-hold
""")
            self.start_server()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for client in self.clients:
            stop_pid(client)
        stop_pid(self.server)
        self.ns.__exit__()

    def start_server(self):
        self.mgmt.unlink(missing_ok=True)
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.ns.left, "openvpn", "--config", str(self.work / "server.conf")],
            stdout=open(self.work / "server.stdout", "ab"), stderr=subprocess.STDOUT)
        wait_for(self.mgmt.exists, 10, "the OpenVPN management socket")

    def restart_server(self):
        stop_pid(self.server)
        self.start_server()

    def client(self, name):
        """Starts a client; returns (process, log path)."""
        pki = self.work / ("pki-other" if name == "rogue.test" else "pki")
        ca = self.work / "pki" / "ca.crt"
        log = self.work / f"{name}.log"
        conf = self.work / f"{name}.conf"
        conf.write_text(f"""client
remote 10.210.0.1 1194
proto udp
dev tun
nobind
ca {ca}
cert {pki}/issued/{name}.crt
key {pki}/private/{name}.key
remote-cert-tls server
explicit-exit-notify 1
connect-retry-max 1
hand-window 10
disable-dco
verb 3
log-append {log}
push-peer-info
""")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns.right, "openvpn", "--config", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.clients.append(proc)
        return proc, log

    def server_log(self):
        path = self.work / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""
