#!/usr/bin/env python3
"""Lab: super-packet accounting with veth offloads on (tso, gso, gro).

tcflows counts a GSO/GRO super-packet as the wire segments it stands for,
each with its own headers. With TCP timestamps and SACK off, every TCP
segment but SYN and SYN-ACK carries exactly 20 + 20 (IPv4) or 40 + 20 (IPv6)
header bytes, and every UDP segment 20 + 8 or 40 + 8. So for each direction
of each connection:

    tcflows bytes - tcflows packets * headers - SYN option bytes
        == the payload the sockets sent and received
           + TCP payload sent again (retransmissions)

The payload comes from the sockets; SYN option bytes and retransmitted bytes
(sequence ranges the capture shows more than once) from the capture. And the
packets are the wire segments: each captured frame is ceil(payload / segment
size) segments (at least one), the segment size being the MSS the SYNs agree
on for TCP and the UDP_SEGMENT size the sender set for UDP.
Flow directions the capture shows without super-packets (ARP, ND, pure ACKs)
must equal the capture exactly, and tcflows may have no flow the capture lacks.
"""


import tcflows_lab as L

MTU = 1500
SYSCTLS = ["net.ipv4.tcp_timestamps=0", "net.ipv4.tcp_sack=0"]
IP_HDR = {4: 20, 6: 40}
L4_HDR = {"TCP": 20, "UDP": 8}
UDP_GSO_SIZE = 1400


def traffic(lab):
    a4, b4, b6 = lab.addr4["a"], lab.addr4["b"], lab.addr6["b"]
    cpus = L.available_cpus()
    tcp = L.tcp_transfers([(lab, "a", "b", b4, 5101, 24_000_000, 6_000_000, cpus),
                           (lab, "b", "a", a4, 5102, 8_000_000, 16_000_000, cpus),
                           (lab, "a", "b", b6, 5103, 12_000_000, 4_000_000, cpus)])
    # UDP GSO: each send is one super-packet of 40 datagrams of 1400 bytes.
    udp = [L.udp_exchange(lab, "a", "b", b4, 7101, 100, 56_000, gso_size=UDP_GSO_SIZE),
           L.udp_exchange(lab, "b", "a", a4, 7102, 100, 56_000, gso_size=UDP_GSO_SIZE),
           L.udp_exchange(lab, "a", "b", b6, 7103, 60, 56_000, gso_size=UDP_GSO_SIZE)]
    return tcp, udp


def expected_directions(lab, tcp, udp):
    """(proto, src, sport, dst, dport) -> payload bytes, from the sockets."""
    out = {}
    servers = [("b", 5101), ("a", 5102), ("b", 5103)]
    families = [lab.addr4, lab.addr4, lab.addr6]
    for r, (server, port), addrs in zip(tcp, servers, families):
        s, c = L.norm_addr(addrs[server]), L.norm_addr(addrs[lab.peer(server)])
        out[L.Key("TCP", c, r.client_port, s, port)] = r.client_sent
        out[L.Key("TCP", s, port, c, r.client_port)] = r.server_sent
    servers = [("b", 7101), ("a", 7102), ("b", 7103)]
    families = [lab.addr4, lab.addr4, lab.addr6]
    for r, (server, port), addrs in zip(udp, servers, families):
        s, c = L.norm_addr(addrs[server]), L.norm_addr(addrs[lab.peer(server)])
        out[L.Key("UDP", c, r.client_port, s, port)] = r.sent
    return out


def syn_option_bytes(frames, key):
    """Option bytes of SYN segments; every other segment must have a bare header."""
    extra = 0
    for f in frames:
        if f.syn:
            extra += f.tcp_hdr_len - 20
        elif f.tcp_hdr_len != 20:
            raise L.LabError(f"frame {f.number} of {key} has a {f.tcp_hdr_len}-byte TCP "
                             "header: header sizes are not known")
    return extra


def retransmitted(frames):
    """(payload bytes on the wire, distinct sequence-space bytes) of a TCP direction."""
    ranges = sorted((f.tcp_seq, f.tcp_seq + f.tcp_len) for f in frames if f.tcp_len)
    covered, end = 0, None
    for lo, hi in ranges:
        if end is None or lo > end:
            covered += hi - lo
            end = hi
        elif hi > end:
            covered += hi - end
            end = hi
    return sum(hi - lo for lo, hi in ranges), covered


def wire_payload(key, payload, frames):
    """The payload tcflows must imply: the sockets' plus TCP retransmissions."""
    if key.proto != "TCP":
        return payload, 0
    on_wire, distinct = retransmitted(frames)
    if distinct != payload:
        raise L.LabError(f"{key}: the capture covers {distinct} bytes of sequence space, "
                         f"the sockets moved {payload}: the capture is not of this traffic")
    return on_wire, on_wire - payload


def segment_size(key, frames, reverse):
    """TCP: the MSS both SYNs allow; UDP: the sender's UDP_SEGMENT size."""
    if key.proto == "UDP":
        return UDP_GSO_SIZE
    mss = [f.mss for f in frames + reverse if f.syn and f.mss]
    if len(mss) != 2:
        raise L.LabError(f"{key}: the capture has {len(mss)} SYNs with an MSS, not 2")
    return min(mss)


def wire_segments(key, frames, size):
    """Wire packets the captured frames stand for: ceil(payload / size), at least 1."""
    hdr = IP_HDR[frames[0].ip_version] + L4_HDR[key.proto]
    payloads = [f.tcp_len if key.proto == "TCP" else f.bytes - hdr for f in frames]
    return sum(max(1, -(-p // size)) for p in payloads)


def check_direction(key, payload, frames, reverse, counts):
    """Prints one direction; returns a problem text or None."""
    hdr = IP_HDR[frames[0].ip_version] + L4_HDR[key.proto]
    syn_extra = syn_option_bytes(frames, key) if key.proto == "TCP" else 0
    supers = sum(1 for f in frames if f.bytes > MTU)
    expected, again = wire_payload(key, payload, frames)
    segments = wire_segments(key, frames, segment_size(key, frames, reverse))
    if counts is None:
        print(f"    {L.describe_key(key):55} absent from tcflows")
        return f"{key} absent"
    derived = counts.bytes - counts.packets * hdr - syn_extra
    verdict = "ok  " if derived == expected and counts.packets == segments else "DIFF"
    print(f"    {verdict} {L.describe_key(key):46} {counts.packets:>6} pkts (wire {segments:>6}) "
          f"{counts.bytes:>9} B - {hdr}*pkts - {syn_extra} = {derived:>9}  "
          f"sockets {payload:>9} + again {again:>5}  ({len(frames)} frames, {supers} super)")
    if counts.packets != segments:
        return (f"{L.describe_key(key)}: tcflows counts {counts.packets} packets, "
                f"the capture's frames are {segments} wire segments")
    if derived != expected:
        return (f"{L.describe_key(key)}: tcflows implies {derived} payload bytes, "
                f"sockets + retransmitted {expected}")
    return None


def test_superpackets(binary):
    """GSO/GRO super-packets: wire segments counted, bytes minus headers = payload."""
    with L.Lab(offloads=True, sysctls=SYSCTLS) as lab:
        obs = L.observe(binary, lab, traffic)
        tcp, udp = obs.traffic
        measured = L.snapshot_flows(obs.snapshot, lab.dev["a"])
        by_key = {}
        for f in obs.frames:
            by_key.setdefault(f.key, []).append(f)
        expected = expected_directions(lab, tcp, udp)

        supers = sum(1 for f in obs.frames if f.bytes > MTU)
        gso = obs.snapshot["counters"]["gso_frames"]
        print(f"  super-packets: tcflows gso_frames={gso}, "
              f"capture frames above the {MTU}-byte MTU={supers}")
        if supers == 0:
            raise L.LabError("no super-packet in the capture: offloads did not take effect")
        L.check(gso > 0, f"the capture has {supers} super-packets, tcflows gso_frames is 0")

        print("  data directions (packets vs wire segments; derived vs socket payload):")
        problems = []
        for key, payload in expected.items():
            if key not in by_key:
                raise L.LabError(f"the capture has no {key}")
            reverse = by_key.get(L.Key(key.proto, key.dst, key.dport, key.src, key.sport), [])
            problems.append(check_direction(key, payload, by_key[key], reverse,
                                            measured.get(key)))
        for key in expected:
            by_key.pop(key)
        problems = [p for p in problems if p]

        # Everything else never was a super-packet: it must equal the capture.
        rest = {k: v for k, v in L.capture_flows(
            [f for fs in by_key.values() for f in fs]).items()}
        if any(f.bytes > MTU for fs in by_key.values() for f in fs):
            raise L.LabError("super-packets outside the data directions")
        print("  other directions (capture vs tcflows, exact):")
        others = {k: v for k, v in measured.items() if k not in expected}
        try:
            L.compare_flows(rest, others, max_rows=12)
        except L.Failure as e:
            problems.append(str(e))
        print(L.counters_line(obs.snapshot))
        L.check(not problems, "; ".join(problems[:4]))


if __name__ == "__main__":
    L.main([test_superpackets])
