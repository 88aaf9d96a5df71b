"""tshark, the reference reader of captures: every frame keyed as tcflows
keys flows (wire packets, IP-level bytes; frame bytes for link-layer flows),
and the capture's connections with their counts each way, originator, Zeek
history and handshake RTT.
"""

import ipaddress
import subprocess
from collections import namedtuple

from .proc import LabError, run

Key = namedtuple("Key", "proto src sport dst dport")
Counts = namedtuple("Counts", "packets bytes")

# Names as tcflows prints them (src/track/flow.cpp).
IP_PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6", 132: "SCTP", 33: "DCCP",
                136: "UDPLite"}
ETHERTYPES = {0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x8863: "PPPoE-D",
              0x8864: "PPPoE", 0x8847: "MPLS", 0x8848: "MPLS", 0x888E: "EAPOL",
              0x88F7: "PTP", 0x8809: "LACP", 0x9000: "LOOP", 0x0800: "IPv4", 0x86DD: "IPv6"}
ECHO_TYPES = {"icmp": (0, 8), "icmpv6": (128, 129)}


def norm_addr(text):
    """RFC 5952 text of an IP address; MAC addresses in lower case."""
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text.lower()


# ---------------------------------------------------------------- the capture

FIELDS = ["frame.number", "frame.time_epoch", "frame.len", "frame.protocols",
          "eth.src", "eth.dst", "eth.type", "vlan.etype",
          "ip.src", "ip.dst", "ip.len", "ip.proto", "ipv6.src", "ipv6.dst", "ipv6.plen",
          "tcp.srcport", "tcp.dstport", "tcp.hdr_len", "tcp.len", "tcp.flags.syn", "tcp.seq",
          "tcp.flags",
          "tcp.options.mss_val", "tcp.stream",
          "udp.srcport", "udp.dstport", "udp.stream", "sctp.srcport", "sctp.dstport",
          "icmp.type", "icmp.code", "icmp.ident",
          "icmpv6.type", "icmpv6.code", "icmpv6.echo.identifier"]

# tcp_seq is tshark's relative sequence number, mss the SYN's MSS option,
# stream tshark's tcp.stream or udp.stream (None for other protocols),
# tcp_flags the TCP header's flags (TCP_FIN ... below; None if not TCP).
Frame = namedtuple("Frame", "number time_ns key bytes ip_version l4 tcp_hdr_len tcp_len syn "
                   "tcp_seq mss stream tcp_flags")
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


def _epoch_ns(text):
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def _int(text):
    if text in ("", None):
        return None
    if text in ("True", "False"):
        return int(text == "True")
    return int(text, 0)


def _l4_name(protocols):
    """The transport of the OUTER IP header, from tshark's frame.protocols."""
    layers = protocols.split(":")
    for i, layer in enumerate(layers):
        if layer in ("ip", "ipv6"):
            for inner in layers[i + 1:]:
                if not inner.startswith("ipv6."):
                    return inner
            return ""
    return None


def _frame_key(f):
    """(key, IP-level bytes, IP version, transport) of one frame, as tcflows keys it."""
    l4 = _l4_name(f["frame.protocols"])
    if l4 is None:  # not IP: a link-layer flow, frame bytes
        ethertype = _int(f["vlan.etype"] or f["eth.type"])
        name = ETHERTYPES.get(ethertype, f"0x{ethertype:04x}" if ethertype else "?")
        return Key(name, norm_addr(f["eth.src"]), 0, norm_addr(f["eth.dst"]), 0), \
            int(f["frame.len"]), 0, None
    if f["ip.src"]:
        version, src, dst = 4, f["ip.src"], f["ip.dst"]
        nbytes, proto = int(f["ip.len"]), int(f["ip.proto"])
    else:
        version, src, dst = 6, f["ipv6.src"], f["ipv6.dst"]
        nbytes, proto = int(f["ipv6.plen"]) + 40, None
    sport = dport = 0
    if l4 in ("tcp", "udp", "sctp"):
        sport, dport = int(f[f"{l4}.srcport"]), int(f[f"{l4}.dstport"])
        proto = {"tcp": 6, "udp": 17, "sctp": 132}[l4]
    elif l4 in ("icmp", "icmpv6"):
        proto = 1 if l4 == "icmp" else 58
        itype, code = int(f[f"{l4}.type"]), int(f[f"{l4}.code"])
        if itype in ECHO_TYPES[l4]:
            ident = f["icmp.ident"] if l4 == "icmp" else f["icmpv6.echo.identifier"]
            sport = dport = _int(ident)
        else:
            sport = itype << 8 | code
    name = IP_PROTOCOLS.get(proto, str(proto) if proto is not None else f"?{l4}")
    return Key(name, norm_addr(src), sport, norm_addr(dst), dport), nbytes, version, l4


def read_capture(path):
    """Every frame of a capture file, keyed as tcflows keys flows."""
    argv = ["tshark", "-n", "-r", path, "-o", "ip.defragment:FALSE",
            "-o", "ipv6.defragment:FALSE", "-o", "tcp.desegment_tcp_streams:FALSE",
            "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for field in FIELDS:
        argv += ["-e", field]
    out = run(argv, timeout=300).stdout
    frames = []
    for line in out.splitlines():
        f = dict(zip(FIELDS, line.split("\t")))
        key, nbytes, version, l4 = _frame_key(f)
        stream = _int(f[f"{l4}.stream"]) if l4 in ("tcp", "udp") else None
        frames.append(Frame(int(f["frame.number"]), _epoch_ns(f["frame.time_epoch"]), key,
                            nbytes, version, l4, _int(f["tcp.hdr_len"]), _int(f["tcp.len"]),
                            _int(f["tcp.flags.syn"]) or 0, _int(f["tcp.seq"]),
                            _int(f["tcp.options.mss_val"]), stream, _int(f["tcp.flags"])))
    return frames


def capture_flows(frames):
    """Per-direction wire packets and IP bytes (frame bytes for non-IP) of a capture."""
    flows = {}
    for fr in frames:
        packets, nbytes = flows.get(fr.key, (0, 0))
        flows[fr.key] = Counts(packets + 1, nbytes + fr.bytes)
    return flows


# key: the originator's frame key (src = originator); orig/resp: Counts each
# way; frames: the connection's frames in capture order (None when read
# by stream_tcp_connections).
Connection = namedtuple("Connection", "key orig resp first_ns last_ns frames")


def _split_idle(group, idle_ns):
    """A frame list cut where the gap between two frames exceeds idle_ns."""
    if not idle_ns:
        return [group]
    parts = [[group[0]]]
    for prev, fr in zip(group, group[1:]):
        if fr.time_ns - prev.time_ns > idle_ns:
            parts.append([])
        parts[-1].append(fr)
    return parts


def _originator(group):
    """The originator's frame key: the first SYN's sender, else the first frame's."""
    for fr in group:
        if fr.tcp_flags is not None and fr.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN:
            return fr.key
    return group[0].key


def capture_connections(frames, idle_ns=None):
    """The capture's connections, for the checks of connection records.

    TCP and UDP split by tshark's stream number (reused 5-tuples apart),
    others by their bidirectional key; each also where it was quiet for more
    than idle_ns(proto) nanoseconds (an idle timeout the test configured;
    None or 0: never). The originator is the sender of the first SYN, or of
    the first frame."""
    groups = {}
    for fr in frames:
        k = fr.key
        ends = frozenset({(k.src, k.sport), (k.dst, k.dport)})
        groups.setdefault((k.proto, fr.stream, ends), []).append(fr)
    conns = []
    for (proto, _, _), whole in groups.items():
        for group in _split_idle(whole, idle_ns(proto) if idle_ns else None):
            key = _originator(group)
            orig = [f for f in group if (f.key.src, f.key.sport) == (key.src, key.sport)]
            resp = [f for f in group if (f.key.src, f.key.sport) != (key.src, key.sport)]
            conns.append(Connection(key, Counts(len(orig), sum(f.bytes for f in orig)),
                                    Counts(len(resp), sum(f.bytes for f in resp)),
                                    group[0].time_ns, group[-1].time_ns, group))
    return sorted(conns, key=lambda c: c.first_ns)


def is_orig_frame(conn, fr):
    return (fr.key.src, fr.key.sport) == (conn.key.src, conn.key.sport)


def _tcp_letter(fr):
    """Zeek's history letter of one TCP packet (update_history in its
    TCPSessionAdapter.cc) and the class it counts once in per direction."""
    flags = fr.tcp_flags
    ends = [bit for bit in (TCP_SYN, TCP_FIN, TCP_RST) if flags & bit]
    if len(ends) > 1:
        return ("I", "I") if flags & TCP_FIN and flags & TCP_RST else ("Q", "Q")
    if flags & TCP_SYN:
        return ("H" if flags & TCP_ACK else "S"), "syn"
    if flags & TCP_FIN:
        return "F", "F"
    if flags & TCP_RST:
        return "R", "R"
    if fr.tcp_len:
        return "D", "D"
    return ("A", "A") if flags & TCP_ACK else (None, None)


def capture_history(conn):
    """Zeek's history of a capture connection: for TCP each letter's first
    occurrence per direction (s h a d f r, q i), upper case the originator;
    for other protocols 'd' for a direction's first packet."""
    return "".join(letter for letter, _ in capture_history_times(conn))


def capture_history_times(conn):
    """capture_history as (letter, capture time of its frame) pairs."""
    history, done = [], set()
    for fr in conn.frames:
        orig = is_orig_frame(conn, fr)
        letter, kind = _tcp_letter(fr) if fr.tcp_flags is not None else ("D", "D")
        if letter and (orig, kind) not in done:
            done.add((orig, kind))
            history.append((letter if orig else letter.lower(), fr.time_ns))
    return history


# Packets that cross the interface at about the same time on two CPUs can
# pass the TC hook in one order and the capture's tap in the other: a
# device's taps run before TC ingress and after TC egress, and either CPU can
# be interrupted between the two.
CONCURRENT_NS = 200_000


def same_history(recorded, capture):
    """Whether a recorded history is the capture's (capture_history_times),
    allowing two adjacent letters whose frames were captured within
    CONCURRENT_NS of each other to be swapped."""
    letters = [letter for letter, _ in capture]
    if recorded == "".join(letters):
        return True
    if len(recorded) != len(letters):
        return False
    times = [t for _, t in capture]
    i = 0
    while i < len(letters):
        if recorded[i] == letters[i]:
            i += 1
            continue
        j = i + 1
        if (j < len(letters) and recorded[i] == letters[j] and recorded[j] == letters[i]
                and abs(times[j] - times[i]) <= CONCURRENT_NS):
            i += 2
            continue
        return False
    return True


def capture_rtt(conn):
    """The handshake RTT at the capture point: the originator's first SYN to
    its first ACK after the responder's SYN/ACK; None without a handshake."""
    syn = synack = None
    for fr in conn.frames:
        if fr.tcp_flags is None:
            return None
        orig = is_orig_frame(conn, fr)
        flags = fr.tcp_flags & (TCP_SYN | TCP_ACK)
        if syn is None and orig and flags == TCP_SYN:
            syn = fr.time_ns
        elif syn is not None and synack is None and not orig and flags == TCP_SYN | TCP_ACK:
            synack = fr.time_ns
        elif synack is not None and orig and flags == TCP_ACK:
            return fr.time_ns - syn
    return None


def capture_totals(frames):
    """(packets, bytes) of a capture."""
    return len(frames), sum(f.bytes for f in frames)


def connection_totals(conns):
    """(packets, bytes) of connections, both ways."""
    return (sum(c.orig.packets + c.resp.packets for c in conns),
            sum(c.orig.bytes + c.resp.bytes for c in conns))


STREAM_FIELDS = ("tcp.stream", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst",
                 "tcp.dstport", "ip.len", "tcp.flags")


def stream_tcp_connections(path, port):
    """The IPv4 TCP connections to or from `port` in a capture, one per
    tcp.stream, read as tshark goes (a capture of millions of frames needs
    no frame list in memory): Connections without frames."""
    argv = ["tshark", "-n", "-r", str(path), "-o", "tcp.desegment_tcp_streams:FALSE",
            "-Y", f"tcp.port == {port}", "-T", "fields", "-E", "separator=/t"]
    for field in STREAM_FIELDS:
        argv += ["-e", field]
    streams = {}  # stream -> {"ends": {(addr, port): [packets, bytes]}, "orig", "first", "last"}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as tshark:
        for line in tshark.stdout:
            stream, when, src, sport, _, _, iplen, flags = line.rstrip("\n").split("\t")
            time_ns = _epoch_ns(when)
            s = streams.setdefault(int(stream), {"ends": {}, "orig": None, "first": time_ns})
            s["last"] = time_ns
            end = (norm_addr(src), int(sport))
            counts = s["ends"].setdefault(end, [0, 0])
            counts[0] += 1
            counts[1] += int(iplen)
            if s["orig"] is None and int(flags, 0) & (TCP_SYN | TCP_ACK) == TCP_SYN:
                s["orig"] = end
        err = tshark.stderr.read()
    if tshark.returncode != 0:
        raise LabError(f"tshark failed (exit {tshark.returncode}): {err.strip()[:200]}")
    return [_stream_connection(s) for _, s in sorted(streams.items())]


def _stream_connection(stream):
    ends = list(stream["ends"])
    orig = stream["orig"] or ends[0]
    # A stream with one end only: its responder is not known from the capture.
    resp = next((e for e in ends if e != orig), (None, None))
    o, r = stream["ends"][orig], stream["ends"].get(resp, [0, 0])
    return Connection(Key("TCP", *orig, *resp), Counts(*o), Counts(*r), stream["first"],
                      stream["last"], None)
