"""A capture's super-frames as the wire packets they stand for.

With offloads on, tcpdump sees the same GSO/GRO super-packets tcflows counts.
The reference then counts each captured TCP frame as ceil(TCP payload / MSS)
segments, the MSS being what the SYNs announce (TCP timestamps off, so that
every segment but the last carries exactly that), each segment carrying the
frame's headers: its IP-level bytes less the TCP payload, which for a tunnel's
frame are the outer headers, the tunnel's and the inner packet's.
"""

from .proc import LabError
from .tshark import Counts, capture_connections, is_orig_frame


def syn_mss(frames):
    """The one MSS the capture's SYNs announce; raises when they differ."""
    values = {fr.mss for fr in frames if fr.syn and fr.mss}
    if len(values) != 1:
        raise LabError(f"the SYNs announce MSS {sorted(values)}: no one segment size")
    return values.pop()


def wire(fr, mss):
    """(wire packets, IP-level wire bytes) of one captured frame."""
    if not fr.tcp_len or fr.tcp_len <= mss:
        return 1, fr.bytes
    segs = -(-fr.tcp_len // mss)
    headers = fr.bytes - fr.tcp_len
    return segs, fr.bytes + (segs - 1) * headers


def super_frames(frames, mss):
    """How many captured frames stand for more than one wire packet."""
    return sum(wire(fr, mss)[0] > 1 for fr in frames)


def wire_connections(frames, mss):
    """capture_connections with every frame counted as its wire packets."""
    out = []
    for c in capture_connections(frames):
        counts = {True: [0, 0], False: [0, 0]}
        for fr in c.frames:
            segs, nbytes = wire(fr, mss)
            side = counts[is_orig_frame(c, fr)]
            side[0] += segs
            side[1] += nbytes
        out.append(c._replace(orig=Counts(*counts[True]), resp=Counts(*counts[False])))
    return out
