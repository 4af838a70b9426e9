"""An independent flow oracle: unidirectional flows of a capture file computed from
tshark's dissection, with VPC Flow Logs' rules.

Per frame tshark gives the outermost IP header (whichever of `ip`/`ipv6` comes first in
`frame.protocols`), its length, the IPv6 extension-header chain, fragment offsets, the
TCP/UDP ports and the TCP flags; this module keys flows on (window start, source,
destination, source port, destination port, protocol) and adds up packets and IP bytes
(IPv4 total length, IPv6 payload length + 40), keeps the first and last packet time and
ORs the TCP flags with VPC semantics (FIN 1, SYN 2, RST 4, ACK only with SYN: SYN-ACK
18). Ports are 0 for anything but TCP and UDP and for non-first fragments. IP
reassembly and TCP desegmentation are off, so every frame is one packet, and only the
dissectors up to the transport layer are enabled (faster, and no upper-layer dissector
can throw).

Usage as a script: `python3 flow_oracle.py [-w 60] FILE` prints CSV rows
`window,src,dst,sport,dport,proto,packets,bytes,first,last,flags`.
"""

import ipaddress
import os
import subprocess
import sys
import tempfile

FIELDS = [
    "frame.time_epoch", "frame.protocols",
    "ip.src", "ip.dst", "ip.proto", "ip.len", "ip.frag_offset",
    "ipv6.src", "ipv6.dst", "ipv6.plen", "ipv6.nxt",
    "ipv6.hopopts.nxt", "ipv6.dstopts.nxt", "ipv6.routing.nxt",
    "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset",
    "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags",
]

# What must stay dissected to reach the outermost IP header and read the transport one.
KEEP = {
    "frame", "eth", "ethertype", "vlan", "ieee8021ad", "ieee8021ah", "vntag", "cfp", "llc",
    "mpls", "pppoes", "ppp", "sll", "null", "loop", "raw", "ip", "ipv6", "ipv6.hopopts",
    "ipv6.routing", "ipv6.fraghdr", "ipv6.dstopts", "tcp", "udp", "icmp", "icmpv6", "data",
}

_config_dir = None


def _tshark_config() -> str:
    """A private Wireshark profile with every other protocol disabled."""
    global _config_dir
    if _config_dir is None:
        _config_dir = tempfile.mkdtemp(prefix="flow-oracle-")
        listing = subprocess.run(["tshark", "-G", "protocols"], capture_output=True, text=True,
                                 timeout=120).stdout
        disabled = [line.split("\t")[2] for line in listing.splitlines()
                    if line.count("\t") >= 2 and line.split("\t")[2] not in KEEP]
        with open(os.path.join(_config_dir, "disabled_protos"), "w") as f:
            f.write("\n".join(disabled) + "\n")
    return _config_dir


def first(value: str) -> str:
    return value.split(",", 1)[0]


def micros(epoch: str) -> int:
    seconds, _, fraction = first(epoch).partition(".")
    negative = seconds.startswith("-")
    value = abs(int(seconds)) * 1_000_000 + int((fraction + "000000")[:6])
    return -value if negative else value


def vpc_flags(raw: int) -> int:
    flags = raw & 0x07
    if raw & 0x02 and raw & 0x10:
        flags |= 0x10
    return flags


def packets(path: str):
    """(ts_us, src, dst, sport, dport, proto, ip_bytes, flags) for every IP frame."""
    command = ["tshark", "-n", "-r", path,
               "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
               "-o", "tcp.desegment_tcp_streams:FALSE",
               "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for field in FIELDS:
        command += ["-e", field]
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=_tshark_config())
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600).stdout
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < len(FIELDS):
            continue
        (t, protocols, src4, dst4, proto4, len4, off4, src6, dst6, plen6, nxt6,
         hop6, dst6o, rt6, frnxt6, froff6, tsp, tdp, usp, udp, tflags) = f[:len(FIELDS)]
        layers = protocols.split(":")
        pos4 = layers.index("ip") if "ip" in layers else 10**6
        pos6 = layers.index("ipv6") if "ipv6" in layers else 10**6
        if pos4 == pos6:
            continue
        try:
            nonfirst = False
            if pos4 < pos6:
                src, dst = first(src4), first(dst4)
                proto, size = int(first(proto4)), int(first(len4))
                nonfirst = first(off4) not in ("", "0")
            else:
                src, dst = first(src6), first(dst6)
                size = int(first(plen6)) + 40
                proto = int(first(nxt6))
                chain = {0: hop6, 60: dst6o, 43: rt6}
                used = set()
                for _ in range(8):
                    if proto in chain and proto not in used and first(chain[proto]) != "":
                        used.add(proto)
                        proto = int(first(chain[proto]))
                    elif proto == 44 and 44 not in used and first(frnxt6) != "":
                        used.add(44)
                        nonfirst = first(froff6) not in ("", "0")
                        proto = int(first(frnxt6))
                    else:
                        break
            if not src or not dst:
                continue
        except ValueError:
            continue
        sport = dport = flags = 0
        if not nonfirst:
            if proto == 6 and tsp:
                sport, dport = int(first(tsp)), int(first(tdp))
                if tflags:
                    flags = vpc_flags(int(first(tflags), 16) & 0xFF)
            elif proto == 17 and usp:
                sport, dport = int(first(usp)), int(first(udp))
        yield micros(t), src, dst, sport, dport, proto, size, flags


def normal(address: str) -> str:
    return str(ipaddress.ip_address(address))


def flows(path: str, window: int):
    """{(window_start, src, dst, sport, dport, proto): [packets, bytes, first_s, last_s, flags]}"""
    table = {}
    for ts, src, dst, sport, dport, proto, size, flags in packets(path):
        seconds = ts // 1_000_000
        key = (seconds // window * window, normal(src), normal(dst), sport, dport, proto)
        entry = table.get(key)
        if entry is None:
            table[key] = [1, size, seconds, seconds, flags]
        else:
            entry[0] += 1
            entry[1] += size
            entry[2] = min(entry[2], seconds)
            entry[3] = max(entry[3], seconds)
            entry[4] |= flags
    return table


if __name__ == "__main__":
    args = sys.argv[1:]
    window = 600
    if args[:1] == ["-w"]:
        window, args = int(args[1]), args[2:]
    for key, value in sorted(flows(args[0], window).items(), key=lambda kv: (kv[1][2], kv[0])):
        print(",".join(map(str, list(key) + value)))
