"""Many live UDP flows through the veth: one datagram per 5-tuple.

    python3 -m bench.udpflows sink ADDR PORT...      # receiver: bound sockets, nothing read
    python3 -m bench.udpflows send SRC DST COUNT     # sender: COUNT flows, then exits

The sender writes the IPv4 and UDP headers itself (a raw socket) so that
one process has COUNT source/destination port pairs without COUNT sockets:
source ports 1024..61023, one destination port per 60000 flows from
FIRST_PORT. The sink's sockets keep the receiver
from answering with ICMP port unreachable; what overflows them is dropped.
"""

import socket
import sys
import time

from tcflows_lab.frames import ipv4_udp

FIRST_PORT = 9000
PER_PORT = 60000
BATCH, PAUSE_S = 1000, 0.005  # paced, so that the ring buffer keeps up


def ports(n):
    return 1024 + n % PER_PORT, FIRST_PORT + n // PER_PORT


def dst_ports(count):
    return sorted({ports(n)[1] for n in range(count)})


def send(src, dst, count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for n in range(count):
        sock.sendto(ipv4_udp(src, dst, *ports(n), b"tcflows"), (dst, 0))
        if n % BATCH == BATCH - 1:
            time.sleep(PAUSE_S)
    print(count, flush=True)


def sink(addr, port_list):
    socks = []
    for port in port_list:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((addr, port))
        socks.append(sock)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sink(sys.argv[2], [int(p) for p in sys.argv[3:]])
