#!/usr/bin/env python3
"""Lab: tcflows on a VXLAN device and on its underlay, offloads on.

Namespaces a and b joined by a veth with TSO, GSO and GRO on; over it a
VXLAN device in each (VNI 42, UDP port 4789) with addresses of its own.
TCP both ways, UDP and pings cross the overlay. One agent records the VXLAN
device and the veth beneath it; tcpdump captures both.

Super-packets cross both devices: on the VXLAN device TCP's own, on the
veth the same encapsulated, where each wire segment repeats the outer IP,
UDP and VXLAN headers and the inner Ethernet, IP and TCP headers. The
reference counts each captured frame as its wire segments
(tcflows_lab/segments.py); every connection's record on each device must
equal its capture.
"""

import os
import time

import tcflows_lab as L

SYSCTLS = ["net.ipv4.tcp_timestamps=0"]  # every full segment carries exactly the MSS
OVERLAY4 = {"a": "10.79.0.1", "b": "10.79.0.2"}
OVERLAY6 = {"a": "fd00:79::1", "b": "fd00:79::2"}


def add_vxlan(lab, side):
    """The VXLAN device of `side` over its veth, addressed, down; returns its name."""
    vx = lab.dev[side][:-1] + "v" + side
    under, peer = lab.dev[side], lab.addr4[lab.peer(side)]
    lab.ip(side, "link", "add", vx, "type", "vxlan", "id", "42", "dstport", "4789",
           "local", lab.addr4[side], "remote", peer, "dev", under)
    lab.quiet_link(side, vx)
    lab.ip(side, "addr", "add", f"{OVERLAY4[side]}/24", "dev", vx)
    lab.ip(side, "-6", "addr", "add", f"{OVERLAY6[side]}/64", "dev", vx, "nodad")
    return vx


class Overlay:
    """The lab's sides with the overlay's addresses, for the traffic helpers."""

    def __init__(self, lab):
        self.ns, self.addr4, self.addr6 = lab.ns, OVERLAY4, OVERLAY6

    def peer(self, side):
        return "b" if side == "a" else "a"


def traffic(lab, port):
    over = Overlay(lab)
    L.tcp_transfers([(over, "a", "b", OVERLAY4["b"], port, 3_000_000, 500_000),
                     (over, "b", "a", OVERLAY4["a"], port + 1, 2_000_000, 100_000)])
    L.udp_exchange(over, "a", "b", OVERLAY6["b"], port + 2, 20, 700, reply_size=70)
    L.ping(over, "a", OVERLAY4["b"], count=3)
    L.ping(over, "b", OVERLAY6["a"], count=2, size=1000)


def check_device(name, frames, rows):
    """The device's records against its capture counted in wire segments."""
    mss = L.syn_mss(frames)
    conns = L.wire_connections(frames, mss)
    supers = L.super_frames(frames, mss)
    print(f"  {name}: {len(frames)} frames captured, {supers} of them super-packets (MSS {mss})")
    L.check(supers > 0, f"{name}: no super-packet crossed it: nothing tested")
    L.compare_records(conns, rows, name)
    got, want = L.totals(rows), L.connection_totals(conns)
    print(f"  {name} totals: records {got[0]} packets {got[1]} bytes, capture in wire "
          f"segments {want[0]} / {want[1]}")
    L.check(got == want, f"{name}: record totals {got} != capture totals {want}")


def test_vxlan_offloads(binary):
    """VXLAN and its underlay with offloads on: each device's records equal its
    capture, super-packets counted as their wire segments with all their headers."""
    db = L.Db(os.path.join(L.scratch_dir(), "vxlan.db"))
    with L.Lab(offloads=True, sysctls=SYSCTLS, prefix="tv") as lab:
        vx = {side: add_vxlan(lab, side) for side in "ab"}
        ns, under = lab.ns["a"], lab.dev["a"]
        # All up before the observers start: a frame sent while the veth has
        # no carrier passes TC egress but never the wire (a limit of TC).
        lab.link_up()
        for side in "ab":
            lab.ip(side, "link", "set", vx[side], "up")
        time.sleep(0.5)  # link-up's MLD reports and the underlay's ARP are done
        caps = {dev: L.Capture(ns, dev) for dev in (under, vx["a"])}
        agent = L.Agent(binary, ns, [under, vx["a"]], db=db.path)
        traffic(lab, 5901)
        L.settle()
        snapshot = agent.finish()
        frames = {dev: cap.finish() for dev, cap in caps.items()}
    print(L.counters_line(snapshot))
    rows = db.rows()
    for dev, name in ((vx["a"], "VXLAN device"), (under, "underlay veth")):
        check_device(name, frames[dev], [r for r in rows if r["iface"] == dev])
    others = {r["iface"] for r in rows} - {under, vx["a"]}
    L.check(not others, f"records of interfaces {others}")


if __name__ == "__main__":
    L.main([test_vxlan_offloads])
