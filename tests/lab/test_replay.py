#!/usr/bin/env python3
"""Lab: every Ethernet capture in tests/pcaps replayed with tcpreplay onto a veth.

Namespaces tf-a and tf-b joined by a veth pair with the largest MTU a veth
takes, IPv6 off and no addresses, so that nothing but the replayed frames
crosses it. tcpreplay writes a capture's frames on end a; tcflows records
with --format json and --db on both ends (TC egress of a, ingress of b: the
receiving kernel moves the outer VLAN tag into metadata) while tcpdump
captures both. Frames longer than the veth carries (a jumbogram, a BIG TCP
frame) are cut to its MTU by tcpreplay-edit --mtu-trunc.

For each capture and each end: tcflows exits 0 at SIGTERM with no verifier
or load problem; its frames counter equals the frames tcpdump captured on
that interface; no flow in its snapshot or database has an address, VLAN id
or port that tshark does not list for the replayed capture (tshark decodes
tunnels and ICMP-quoted headers too: a superset, which is fine); the packets
of the database's connections plus the malformed and untracked frames are
all the frames; and for the deliberately malformed captures the malformed
counter moves.
"""

import ipaddress
import json
import os
import re
import socket
import struct
import sys
from collections import namedtuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

PCAPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pcaps")
VETH_MTU = 65535
# The longest frame a packet socket sends on it: MTU + Ethernet header + one tag.
MAX_FRAME = VETH_MTU + 14 + 4
# Captures made of malformed frames: each end must count them as malformed.
MALFORMED = {"ipv4_invalid_hdr_length.pcap", "ipv6_invalid_length.pcap",
             "tcp_header_heapoverflow.pcap", "udp-length-heapoverflow.pcap",
             "icmp-length-zero.pcapng"}
TIMED_MAX_S = 6  # replayed with the original timing too when shorter than this
SIDES = {"a": "egress", "b": "ingress"}


# ---------------------------------------------------------------- the lab


class ReplayLab:
    """Namespaces tf-a/tf-b and a silent veth pair tf<pid><n>a/b."""

    _count = 0

    def __init__(self):
        n, pid = ReplayLab._count, os.getpid()
        ReplayLab._count += 1
        self.ns = {s: f"tf-{s}-{pid}-{n}" for s in "ab"}
        self.dev = {s: f"tf{pid}r{n}{s}" for s in "ab"}
        assert all(len(d) <= 15 for d in self.dev.values())
        self._created = []
        L.on_cleanup(self.destroy)

    def setup(self):
        for s in "ab":
            L.run(["ip", "netns", "add", self.ns[s]])
            self._created.append(self.ns[s])
            L.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                   "net.ipv6.conf.default.disable_ipv6=1"], ns=self.ns[s])
        L.run(["ip", "-n", self.ns["a"], "link", "add", self.dev["a"], "mtu", VETH_MTU, "type",
               "veth", "peer", "name", self.dev["b"], "mtu", VETH_MTU, "netns", self.ns["b"]])
        for s in "ab":
            L.run(["ethtool", "-K", self.dev[s], "tso", "off", "gso", "off", "gro", "off"],
                  ns=self.ns[s])
            L.run(["ip", "link", "set", self.dev[s], "up"], ns=self.ns[s])
        return self

    def destroy(self):
        for ns in reversed(self._created):
            L.kill_namespace_processes(ns)
            L.run(["ip", "netns", "del", ns], check=False)
        self._created.clear()


# ---------------------------------------------------------------- the reference

Reference = namedtuple("Reference", "frames addrs vlans ports icmp longest duration")

_ADDR_FIELDS = ["eth.src", "eth.dst", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst"]
_OTHER_FIELDS = ["vlan.id", "ieee8021ad.id", "tcp.port", "udp.port", "sctp.port", "dccp.port",
                 "icmp.ident", "icmpv6.echo.identifier", "icmp.type", "icmp.code",
                 "icmpv6.type", "icmpv6.code", "frame.cap_len", "frame.time_relative"]


def _values(text):
    return [v for v in text.split(",") if v]


def norm(addr):
    try:
        return ipaddress.ip_address(addr).compressed
    except ValueError:
        return addr.lower()


def reference(path):
    """What tshark lists in the capture, tunnels and ICMP-quoted headers included."""
    fields = _ADDR_FIELDS + _OTHER_FIELDS
    argv = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=,", "-E", "separator=/t"]
    for f in fields:
        argv += ["-e", f]
    frames, addrs, vlans, ports, icmp, longest, duration = 0, set(), set(), set(), set(), 0, 0.0
    for line in L.run(argv, timeout=120).stdout.splitlines():
        row = dict(zip(fields, line.split("\t")))
        frames += 1
        addrs |= {norm(a) for f in _ADDR_FIELDS for a in _values(row.get(f, ""))}
        vlans |= {int(v) for f in ("vlan.id", "ieee8021ad.id") for v in _values(row.get(f, ""))}
        ports |= {int(p) for f in _OTHER_FIELDS[2:6] for p in _values(row.get(f, ""))}
        icmp |= {int(i, 0) for f in _OTHER_FIELDS[6:8] for i in _values(row.get(f, ""))}
        for t, c in (("icmp.type", "icmp.code"), ("icmpv6.type", "icmpv6.code")):
            icmp |= {int(a) << 8 | int(b) for a, b in zip(_values(row[t]), _values(row[c]))}
        longest = max(longest, int(row["frame.cap_len"]))
        duration = max(duration, float(row["frame.time_relative"] or 0))
    return Reference(frames, addrs, vlans, ports, icmp, longest, duration)


# ---------------------------------------------------------------- one replay

Side = namedtuple("Side", "snapshot captured connections")


def tcpreplay(lab, path, ref, timed):
    """Sends the capture on end a; returns (successful, failed) frames."""
    tool = ["tcpreplay"]
    if ref.longest > MAX_FRAME:
        tool = ["tcpreplay-edit", f"--mtu={VETH_MTU}", "--mtu-trunc"]
    argv = tool + ["-i", lab.dev["a"]] + ([] if timed else ["--topspeed"]) + [path]
    out = L.run(argv, ns=lab.ns["a"], timeout=120).stdout
    sent = re.search(r"Successful packets:\s+(\d+)", out)
    failed = re.search(r"Failed packets:\s+(\d+)", out)
    if not sent or not failed:
        raise L.LabError(f"tcpreplay printed no packet counts: {L.tail(out)}")
    return int(sent.group(1)), int(failed.group(1))


def connections(binary, db):
    """Connections tcflows stored, read back with tcflows report."""
    p = L.run([binary, "report", "--db", db, "--by", "conn", "--format", "json",
               "--since", "1d"], check=False)
    if p.returncode != 0:
        raise L.Failure(f"tcflows report on {db} exited {p.returncode}: {L.tail(p.stderr)}")
    return json.loads(p.stdout)


def start_observers(binary, lab, tmp):
    """tcpdump, then tcflows (JSON snapshots, a database) on both ends."""
    dumps = {s: L.Tcpdump(lab.ns[s], lab.dev[s], os.path.join(tmp, f"{s}.pcap")) for s in "ab"}
    flows = {s: L.Tcflows(binary, lab.ns[s], [lab.dev[s]], interval="200ms",
                          extra=["--top", "1000000", "--db", os.path.join(tmp, f"{s}.db")])
             for s in "ab"}
    return dumps, flows


def stop_observers(binary, dumps, flows, tmp):
    """tcflows first (it must exit 0), then tcpdump; the stored connections."""
    snapshots = {s: flows[s].finish() for s in "ab"}
    for s in "ab":
        for line in flows[s].err.lines:
            if "verifier" in line.lower() or "libbpf" in line.lower():
                raise L.Failure(f"tcflows on end {s} reported: {line}")
    return {s: Side(snapshots[s], dumps[s].finish(),
                    connections(binary, os.path.join(tmp, f"{s}.db"))) for s in "ab"}


def replay(binary, lab, path, ref, timed):
    """One capture replayed at top speed, then with its own timing when timed."""
    tmp = L.scratch_dir()
    dumps, flows = start_observers(binary, lab, tmp)
    sends = [tcpreplay(lab, path, ref, False)]
    if timed:
        sends.append(tcpreplay(lab, path, ref, True))
    L.settle(0.5)
    return stop_observers(binary, dumps, flows, tmp), sends


# ---------------------------------------------------------------- checks

PORT_PROTOS = {"TCP", "UDP", "SCTP", "DCCP", "UDPLite"}


def check_rows(where, rows, ref, bad, icmp_ports=True):
    """Addresses, outer VLAN ids and ports of snapshot flows or connections."""
    for r in rows:
        for a in (r["src_addr"], r["dst_addr"]):
            if norm(a) not in ref.addrs:
                bad.append(f"{where}: {r['proto']} address {a} is not in the capture")
        if r.get("vlan") and r["vlan"] not in ref.vlans:
            bad.append(f"{where}: VLAN {r['vlan']} is not in the capture")
        allowed = ref.ports if r["proto"] in PORT_PROTOS else \
            ref.icmp if icmp_ports and r["proto"] in ("ICMP", "ICMPv6") else None
        for p in (r["src_port"], r["dst_port"]) if allowed is not None else ():
            if p and p not in allowed:
                bad.append(f"{where}: {r['proto']} port {p} is not in the capture")


def check_side(name, side, s, bad):
    """One end: frames against tcpdump, accounting, addresses, malformed."""
    where = f"{name} {SIDES[side]}"
    c = s.snapshot["counters"]
    stored = sum(r["orig_pkts"] + r["resp_pkts"] for r in s.connections)
    if c["frames"] != s.captured:
        bad.append(f"{where}: tcflows saw {c['frames']} frames, tcpdump captured {s.captured}")
    if stored + c["malformed"] + c["untracked_packets"] != s.captured:
        bad.append(f"{where}: stored connections hold {stored} packets + {c['malformed']} "
                   f"malformed + {c['untracked_packets']} untracked, captured {s.captured}")
    if c["untracked_packets"] or c["flow_full"] or c["flow_error"]:
        bad.append(f"{where}: flows lost, map of 65536: {L.counters_line(s.snapshot)}")
    if name in MALFORMED and s.captured and not c["malformed"]:
        bad.append(f"{where}: {s.captured} malformed frames, malformed counter 0")
    return where


def flow_rows(snapshot):
    """Snapshot rows without the interface, as a sorted list."""
    keys = ("proto", "src_addr", "src_port", "dst_addr", "dst_port", "vlan", "packets", "bytes")
    return sorted(tuple(f[k] for k in keys) for f in snapshot["flows"])


def check_ends_agree(name, sides, bad):
    """The frames that crossed read the same on ingress (outer VLAN tag in
    metadata) as on egress (every tag in the frame)."""
    if sides["a"].captured != sides["b"].captured:
        return  # not the same frames: nothing to compare
    a, b = flow_rows(sides["a"].snapshot), flow_rows(sides["b"].snapshot)
    for row in sorted(set(a) ^ set(b))[:4]:
        end = "egress" if row in a else "ingress"
        bad.append(f"{name}: only on {end}: {row}")


def summary(s):
    c = s.snapshot["counters"]
    return (f"frames {c['frames']:>3} flows {len(s.snapshot['flows']):>2} "
            f"conns {len(s.connections):>2} malformed {c['malformed']}")


def replay_one(binary, lab, path):
    """One capture: replayed at top speed (and with its timing when short); problems."""
    name, ref = os.path.basename(path), reference(path)
    timed = ref.duration < TIMED_MAX_S
    sides, sends = replay(binary, lab, path, ref, timed)
    sent = sum(ok for ok, _ in sends)
    if sides["a"].captured != sent:
        raise L.LabError(f"{name}: tcpreplay sent {sent} frames, tcpdump on the sender saw "
                         f"{sides['a'].captured}")
    bad = []
    for side, s in sides.items():
        where = check_side(name, side, s, bad)
        check_rows(where + " snapshot", s.snapshot["flows"], ref, bad)
        check_rows(where + " database", s.connections, ref, bad, icmp_ports=False)
    check_ends_agree(name, sides, bad)
    if sides["b"].captured != sides["a"].captured:
        print(f"  {name}: {sides['a'].captured} frames sent, {sides['b'].captured} crossed")
    mode = "topspeed+timed" if timed else "topspeed"
    print(f"  {name:33} {ref.frames:>3} frames x{len(sends)} ({mode:14}) failed "
          f"{sum(f for _, f in sends)} | egress {summary(sides['a'])} | "
          f"ingress {summary(sides['b'])}", flush=True)
    return bad


def captures():
    names = sorted(n for n in os.listdir(PCAPS) if n.endswith((".pcap", ".pcapng")))
    if not names:
        raise L.LabError(f"no captures in {PCAPS}")
    return [os.path.join(PCAPS, n) for n in names]


# ---------------------------------------------------------------- crafted VLAN stacks


def _udp4(src, dst):
    udp = struct.pack("!HHHH", 1111, 2222, 8 + 10, 0) + b"x" * 10
    return 0x0800, struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                               socket.inet_aton(src), socket.inet_aton(dst)) + udp


def _udp6(src, dst):
    udp = struct.pack("!HHHH", 3333, 4444, 8 + 10, 0) + b"y" * 10
    return 0x86DD, struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64,
                               socket.inet_pton(socket.AF_INET6, src),
                               socket.inet_pton(socket.AF_INET6, dst)) + udp


def vlan_frames():
    """Frames with one to three VLAN tags (outer 802.1ad or 802.1Q) over
    IPv4, IPv6, ARP and 802.2 LLC. A receiving kernel moves the outer tag
    into metadata; a third tag ends the parse (a link-layer flow)."""
    src, dst = bytes.fromhex("020000000a01"), bytes.fromhex("020000000a02")
    arp = (0x0806, L.arp_request(src, "10.9.0.1", "10.9.0.2"))
    stp = (None, b"\x42\x42\x03" + bytes(35))
    stacks = [[(0x88A8, 100), (0x8100, 200), (0x8100, 300)],
              [(0x8100, 101), (0x8100, 201), (0x8100, 301)],
              [(0x88A8, 102), (0x8100, 202)], [(0x8100, 103)], [(0x8100, 0)]]
    frames = []
    for tags in stacks:
        for ethertype, payload in (_udp4("10.9.0.1", "10.9.0.2"),
                                   _udp6("fd00:9::1", "fd00:9::2"), arp, stp):
            frames.append(L.frame(src, dst, tags, ethertype or len(payload), payload))
    return frames


def write_pcap(path, frames):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for i, f in enumerate(frames):
            out.write(struct.pack("<IIII", 1, i, len(f), len(f)) + f)


# ---------------------------------------------------------------- tests


def test_replay_every_capture(binary):
    """every capture in tests/pcaps replayed onto a veth: counted, never garbage"""
    lab = ReplayLab().setup()
    chosen = L.OPTIONS.get("only")
    bad = []
    for path in captures():
        if not chosen or chosen in os.path.basename(path):
            bad += replay_one(binary, lab, path)
    for line in bad[:30]:
        print(f"    BAD {line}")
    if len(bad) > 30:
        print(f"    ... and {len(bad) - 30} more")
    L.check(not bad, f"{len(bad)} problems in the replays")


def test_replay_vlan_stacks(binary):
    """crafted frames with one to three VLAN tags read the same on both ends"""
    path = os.path.join(L.scratch_dir(), "vlan_stacks.pcap")
    write_pcap(path, vlan_frames())
    bad = replay_one(binary, ReplayLab().setup(), path)
    for line in bad[:30]:
        print(f"    BAD {line}")
    L.check(not bad, f"{len(bad)} problems in the replay")


if __name__ == "__main__":
    L.main([test_replay_every_capture, test_replay_vlan_stacks])
