#!/usr/bin/env python3
"""Lab: tcflows on tun devices, which have no link-layer header.

Two namespaces, each with a tun device; this process is the wire between
them: a thread copies every packet one device sends into the other, as a VPN
daemon does. Real sockets talk across it (TCP both ways, UDP, ping over IPv4
and IPv6); tcflows records on one tun device and a tcpdump capture of the
same device is the reference. The TC program sees these packets from their
IP header on (no Ethernet header): the records must equal the capture.

With offloads on, the devices exchange virtio-net headers and TSO
super-packets: the receiving device hands the program TCP super-packets with
gso_segs 0 (as virtio and tap do), counted from gso_size as the wire
segments they stand for (tcflows_lab/segments.py).
"""

import fcntl
import os
import select
import struct
import threading
import time

import tcflows_lab as L

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR = 0x0001, 0x1000, 0x4000
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 0x01, 0x02, 0x04
SYSCTLS = ["net.ipv4.tcp_timestamps=0"]  # every full segment carries exactly the MSS
LINKTYPE_RAW = 101  # packets from their IP header on


class TunLab:
    """Namespaces a and b, each with tun device dev[side], joined by a relay
    thread of this process. A context manager; up(side) brings a device up
    (nothing is relayed into a device that is down)."""

    def __init__(self, offloads=False):
        self.ns, self.dev = L.lab_names("tu")
        self.addr4 = {"a": "10.78.0.1", "b": "10.78.0.2"}
        self.addr6 = {"a": "fd00:78::1", "b": "fd00:78::2"}
        self.offloads = offloads
        self.fds, self._created = {}, []
        self._stop = threading.Event()
        self._relay = threading.Thread(target=self._copy, daemon=True)
        L.on_cleanup(self.destroy)

    def __enter__(self):
        for side in "ab":
            self._namespace(side)
        self._relay.start()
        return self

    def __exit__(self, *exc):
        self.destroy()

    def peer(self, side):
        return "b" if side == "a" else "a"

    def up(self, side):
        L.run(["ip", "link", "set", self.dev[side], "up"], ns=self.ns[side])

    def _namespace(self, side):
        ns, dev = self.ns[side], self.dev[side]
        L.run(["ip", "netns", "add", ns])
        self._created.append(ns)
        L.prepare_namespace(ns, SYSCTLS)
        with L.in_netns(ns):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
            flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if self.offloads else 0)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), flags))
            if self.offloads:
                fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
        self.fds[side] = fd
        other = self.peer(side)
        L.run(["ip", "addr", "add", self.addr4[side], "peer", self.addr4[other], "dev", dev],
              ns=ns)
        L.run(["ip", "-6", "addr", "add", f"{self.addr6[side]}/64", "dev", dev, "nodad"], ns=ns)

    def _copy(self):
        """The wire: what one device sends, the other receives."""
        while not self._stop.is_set():
            ready, _, _ = select.select(list(self.fds.values()), [], [], 0.1)
            for fd in ready:
                side = "a" if fd == self.fds["a"] else "b"
                try:
                    packet = os.read(fd, 1 << 17)
                    os.write(self.fds[self.peer(side)], packet)
                except OSError:
                    pass  # a device that is down takes nothing, as a cable with no peer

    def destroy(self):
        self._stop.set()
        if self._relay.is_alive():
            self._relay.join(2)
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        for ns in reversed(self._created):
            L.remove_namespace(ns)
        self._created.clear()


def traffic(lab, port):
    """TCP both ways over IPv4 and IPv6, UDP with replies, pings both ways."""
    L.tcp_transfers([(lab, "a", "b", lab.addr4["b"], port, 2_000_000, 300_000),
                     (lab, "b", "a", lab.addr6["a"], port + 1, 1_000_000, 50_000)])
    L.udp_exchange(lab, "a", "b", lab.addr4["b"], port + 2, 20, 600, reply_size=60)
    L.udp_exchange(lab, "b", "a", lab.addr6["a"], port + 3, 10, 300)
    L.ping(lab, "a", lab.addr4["b"], count=3)
    L.ping(lab, "b", lab.addr6["a"], count=2, size=1000)


def record(binary, offloads, side, db_path):
    """A TunLab whose device on `side` is recorded and captured while traffic
    runs; returns (capture frames, final snapshot, the capture's link type)."""
    with TunLab(offloads) as lab:
        ns, dev = lab.ns[side], lab.dev[side]
        lab.up(side)
        time.sleep(0.3)  # the MLD reports of link-up go out before the observers start
        cap = L.Capture(ns, dev)
        agent = L.Agent(binary, ns, [dev], db=db_path)
        lab.up(lab.peer(side))
        traffic(lab, 5801)
        L.settle()
        snapshot = agent.finish()
        frames = cap.finish()
    with open(cap.path, "rb") as f:
        linktype = struct.unpack("=I", f.read(24)[20:24])[0]  # pcap file header
    return frames, snapshot, linktype


def test_tun_exact(binary):
    """A tun device without offloads: every connection's record equals the capture."""
    db = L.Db(os.path.join(L.scratch_dir(), "tun.db"))
    frames, snapshot, linktype = record(binary, False, "a", db.path)
    kinds = {fr.key.proto for fr in frames}
    print(f"  capture: {len(frames)} frames ({', '.join(sorted(kinds))}), link type "
          f"{linktype}\n{L.counters_line(snapshot)}")
    L.check(linktype == LINKTYPE_RAW, f"the capture's link type is {linktype}, not raw IP")
    L.compare_records(L.capture_connections(frames), db.rows(), "tun")
    got, want = L.totals(db.rows()), L.capture_totals(frames)
    print(f"  totals: database {got[0]} packets {got[1]} bytes, capture {want[0]} / {want[1]}")
    L.check(got == want, f"database totals {got} != capture totals {want}")


def test_tun_offloads(binary):
    """Tun devices with TSO and virtio-net headers: the recorded device
    receives TCP super-packets with gso_segs 0 and sends its own; each
    connection's record equals the capture counted in wire segments."""
    db = L.Db(os.path.join(L.scratch_dir(), "tun-gso.db"))
    frames, snapshot, _ = record(binary, True, "b", db.path)
    mss = L.syn_mss([fr for fr in frames if fr.ip_version == 4])
    mss6 = L.syn_mss([fr for fr in frames if fr.ip_version == 6])
    conns = L.wire_connections([fr for fr in frames if fr.ip_version != 6], mss) + \
        L.wire_connections([fr for fr in frames if fr.ip_version == 6], mss6)
    supers = L.super_frames([f for f in frames if f.ip_version == 4], mss) + \
        L.super_frames([f for f in frames if f.ip_version == 6], mss6)
    gso = snapshot["counters"]["gso_frames"]
    print(f"  capture: {len(frames)} frames, {supers} of them super-packets (MSS {mss} and "
          f"{mss6}); tcflows saw {gso} GSO frames")
    L.check(supers > 0 and gso > 0, "no super-packets crossed the device: nothing tested")
    L.compare_records(conns, db.rows(), "tun with offloads")
    got, want = L.totals(db.rows()), L.connection_totals(conns)
    print(f"  totals: database {got[0]} packets {got[1]} bytes, capture in wire segments "
          f"{want[0]} / {want[1]}")
    L.check(got == want, f"database totals {got} != capture totals {want}")


if __name__ == "__main__":
    L.main([test_tun_exact, test_tun_offloads])
