"""A NetFlow v5 collector that only sums: python3 -m bench.nfsink ADDR PORT OUT.json

Runs in the receiver namespace next to softflowd. On SIGTERM it writes its
totals (flows, packets, octets, the exporter's sampling interval, and flows
missing according to the export sequence numbers) to OUT.json.
"""

import json
import signal
import socket
import struct
import sys

HEADER = struct.Struct("!HHIIIIBBH")  # version count uptime secs nsecs sequence engine sampling
RECORD = struct.Struct("!4s4s4sHHII")  # src dst nexthop in out dPkts dOctets (first 24 bytes)
RECORD_LEN = 48
SO_RCVBUFFORCE = 33  # Linux; the socket module does not name it


class Totals:
    def __init__(self):
        self.datagrams = self.flows = self.packets = self.octets = 0
        self.bad_datagrams = self.missing_flows = 0
        self.sampling = set()
        self.next_sequence = None

    def add(self, data):
        if len(data) < HEADER.size:
            self.bad_datagrams += 1
            return
        version, count, _, _, _, sequence, _, _, sampling = HEADER.unpack_from(data)
        if version != 5 or len(data) < HEADER.size + count * RECORD_LEN:
            self.bad_datagrams += 1
            return
        if self.next_sequence is not None and sequence != self.next_sequence:
            self.missing_flows += (sequence - self.next_sequence) % 2**32
        self.next_sequence = (sequence + count) % 2**32
        self.datagrams += 1
        self.sampling.add(sampling)
        for i in range(count):
            _, _, _, _, _, packets, octets = RECORD.unpack_from(data, HEADER.size + i * RECORD_LEN)
            self.flows += 1
            self.packets += packets
            self.octets += octets

    def json(self):
        return {"datagrams": self.datagrams, "flows": self.flows, "packets": self.packets,
                "bytes": self.octets, "bad_datagrams": self.bad_datagrams,
                "missing_flows": self.missing_flows, "sampling_intervals": sorted(self.sampling)}


def main():
    addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    sock.bind((addr, port))
    sock.settimeout(0.2)
    totals, stop = Totals(), []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print("nfsink: ready", file=sys.stderr, flush=True)
    while True:
        try:
            totals.add(sock.recv(65535))
        except socket.timeout:
            if stop:
                break
    with open(out, "w") as f:
        json.dump(totals.json(), f)


if __name__ == "__main__":
    main()
