"""Frames written raw on a lab interface (AF_PACKET, through TC egress):
Ethernet with VLAN tags, IPv4 and IPv6 UDP, ARP."""

import socket
import struct

from .netns import make_socket


def _checksum(data):
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src_mac, dst_mac, tags, ethertype, payload):
    """An Ethernet frame with VLAN tags [(tpid, vid), ...], outermost first."""
    head = dst_mac + src_mac
    for tpid, vid in tags:
        head += tpid.to_bytes(2, "big") + vid.to_bytes(2, "big")
    return head + ethertype.to_bytes(2, "big") + payload


def ipv4_udp(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + _checksum(ip).to_bytes(2, "big") + ip[12:]
    return ip + udp


def ipv6_udp(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0xFFFF) + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + udp


def arp_request(src_mac, src_ip, dst_ip):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src_mac, socket.inet_aton(src_ip),
                       bytes(6), socket.inet_aton(dst_ip))


def send_frames(lab, side, frames):
    """Writes raw frames on dev[side] (AF_PACKET: through TC egress)."""
    sock = make_socket(lab.ns[side], socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((lab.dev[side], 0))
        for f in frames:
            sock.send(f)
