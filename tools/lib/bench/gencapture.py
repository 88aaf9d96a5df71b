"""A large generated capture for the `read` hook: millions of Ethernet frames,
thousands of TCP connections and UDP flows, IPv4 and IPv6, written as a
classic pcap (microsecond times) without any packet library.

    python3 -m bench.gencapture FILE [PACKETS]

Connections run side by side: ACTIVE of them at once, frames taken from
each in turn, one every STEP_US of capture time; a connection that ends
makes room for the next. Each 5-tuple is used once (the client's address
is the connection's number), so a connection is one tshark conversation.
A TCP connection is a handshake, request/response/ACK rounds and a FIN
exchange; a UDP flow is request/response rounds. Checksums are zero (no
reader here checks them).
"""

import struct
import sys

ACTIVE = 1000    # connections at once
STEP_US = 25     # capture time between frames
UDP_EVERY = 5    # every 5th connection is a UDP flow
IPV6_EVERY = 8   # every 8th connection is IPv6
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
CLIENT_MAC, SERVER_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def rounds(n):
    """Request/response rounds of connection n: 20 to 399."""
    return 20 + (n * 7919) % 380


def script(n):
    """Connection n's frames: (from the client, TCP flags, payload bytes)."""
    req = lambda r: 40 + (n * 31 + r * 17) % 300
    resp = lambda r: (n * 13 + r * 911) % 1200
    if n % UDP_EVERY == 0:
        for r in range(rounds(n)):
            yield True, 0, req(r)
            yield False, 0, resp(r)
        return
    yield from ((True, SYN, 0), (False, SYN | ACK, 0), (True, ACK, 0))
    for r in range(rounds(n)):
        yield True, PSH | ACK, req(r)
        yield False, PSH | ACK, resp(r)
        yield True, ACK, 0
    yield from ((True, FIN | ACK, 0), (False, FIN | ACK, 0), (True, ACK, 0))


def addresses(n):
    """(client, server, IPv6?) of connection n: one client address each."""
    if n % IPV6_EVERY == 0:
        return (bytes.fromhex("fd000000000000010000") + n.to_bytes(6, "big"),
                bytes.fromhex("fd000000000000020000000000000000")[:15] + bytes([n % 7 + 1]), True)
    return (bytes([10, 1 + (n >> 16), (n >> 8) & 255, n & 255]), bytes([10, 200, 0, n % 7 + 1]),
            False)


class Connection:
    """One connection's frames as bytes, built from per-direction prefixes."""

    def __init__(self, n):
        self.frames = script(n)
        self.udp = n % UDP_EVERY == 0
        client, server, v6 = addresses(n)
        cport, sport = 1024 + n % 60000, 53 if self.udp else (80, 443, 8080)[n % 3]
        self.seq = {True: n * 1000003 % 2**32, False: n * 7777777 % 2**32}
        self.sides = {True: self._side(client, server, v6, CLIENT_MAC, SERVER_MAC, cport, sport),
                      False: self._side(server, client, v6, SERVER_MAC, CLIENT_MAC, sport, cport)}

    def _side(self, src, dst, v6, smac, dmac, sport, dport):
        proto = 17 if self.udp else 6
        eth = dmac + smac + (b"\x86\xdd" if v6 else b"\x08\x00")
        return eth, src + dst, proto, v6, struct.pack("!HH", sport, dport)

    def next_frame(self):
        """The next frame's bytes, or None once the connection is over."""
        step = next(self.frames, None)
        if step is None:
            return None
        client, flags, size = step
        eth, addrs, proto, v6, ports = self.sides[client]
        if self.udp:
            l4 = ports + struct.pack("!HH", 8 + size, 0)
        else:
            l4 = ports + struct.pack("!IIBBHHH", self.seq[client], self.seq[not client], 0x50,
                                     flags, 65535, 0, 0)
            self.seq[client] = (self.seq[client] + size + bool(flags & (SYN | FIN))) % 2**32
        ip_payload = len(l4) + size
        if v6:
            ip = struct.pack("!IHBB", 6 << 28, ip_payload, proto, 64) + addrs
        else:
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + ip_payload, 0, 0x4000, 64, proto, 0) + addrs
        return eth + ip + l4 + bytes(size)


def generate(path, packets):
    """Writes `packets` frames to `path`; returns (frames, connections started)."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        active, started, written, chunk = [], 0, 0, []
        ts_us = 1_700_000_000 * 1_000_000
        while written < packets:
            while len(active) < ACTIVE:
                active.append(Connection(started))
                started += 1
            slot = written % ACTIVE
            frame = active[slot].next_frame()
            if frame is None:
                active[slot] = Connection(started)
                started += 1
                continue
            chunk.append(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame),
                                     len(frame)) + frame)
            written += 1
            ts_us += STEP_US
            if len(chunk) == 10000:
                out.write(b"".join(chunk))
                chunk = []
        out.write(b"".join(chunk))
    return written, started


if __name__ == "__main__":
    frames, conns = generate(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000)
    print(f"{frames} frames, {conns} connections")
