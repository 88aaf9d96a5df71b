"""The namespace lab: a sender and a receiver namespace joined by one veth.

    tb-snd [tb-s 10.77.0.1] <--veth--> [tb-r 10.77.0.2] tb-rcv

Monitors attach to tb-r, the receiver's end. The lab is IPv4 only, with
IPv6 disabled and permanent neighbour entries, so that the load is the only
traffic on the veth: the interface counters of tb-r are then the reference
the monitors' totals are checked against.
"""

import json
import os
import subprocess
import time

SND, RCV = "tb-snd", "tb-rcv"
SND_IF, RCV_IF = "tb-s", "tb-r"
SND_ADDR, RCV_ADDR = "10.77.0.1", "10.77.0.2"
SND_MAC, RCV_MAC = "02:74:62:00:00:01", "02:74:62:00:00:02"
ETH_HLEN = 14


def sh(*argv, check=True, capture=True):
    """Runs a command; returns its stdout. Raises with its stderr on failure."""
    done = subprocess.run(argv, text=True, capture_output=capture)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {(done.stderr or '').strip()}")
    return done.stdout if capture else ""


# Measured processes (load, servers, monitors alike) run at this niceness so
# that other work on the machine disturbs them less.
NICE = -15


def ns_argv(ns, argv, cpu=None):
    """argv run inside namespace ns; a measured process (cpu given) pinned and niced."""
    pin = ["nice", "-n", str(NICE), "taskset", "-c", str(cpu)] if cpu is not None else []
    return ["ip", "netns", "exec", ns, *pin, *argv]


def netns_exists(ns):
    return os.path.exists(f"/run/netns/{ns}")


class Lab:
    """Creates the lab on enter and removes it on exit, even after a failure."""

    def __init__(self, offloads=False):
        self.offloads = offloads

    def __enter__(self):
        self.destroy()  # leftovers of an interrupted run are ours (tb prefix)
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc):
        self.destroy()

    def _create(self):
        sh("ip", "netns", "add", SND)
        sh("ip", "netns", "add", RCV)
        sh("ip", "link", "add", SND_IF, "netns", SND, "address", SND_MAC, "type", "veth",
           "peer", "name", RCV_IF, "netns", RCV, "address", RCV_MAC)
        for ns, dev, addr, peer_addr, peer_mac in ((SND, SND_IF, SND_ADDR, RCV_ADDR, RCV_MAC),
                                                    (RCV, RCV_IF, RCV_ADDR, SND_ADDR, SND_MAC)):
            self._sysctls(ns, dev)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "neigh", "replace", peer_addr, "lladdr", peer_mac, "dev", dev,
               "nud", "permanent")
        self.set_offloads(self.offloads)

    @staticmethod
    def _sysctls(ns, dev):
        values = {
            f"net.ipv6.conf.{dev}.disable_ipv6": 1,  # no ND/MLD traffic on the veth
            "net.ipv4.ip_local_port_range": "1024 65535",  # room for short connections
            "net.core.somaxconn": 4096,
            "net.ipv4.tcp_max_syn_backlog": 4096,
        }
        for key, value in values.items():
            sh(*ns_argv(ns, ["sysctl", "-q", "-w", f"{key}={value}"]))

    def set_offloads(self, on):
        """Offloads off: every skb on the veth is one wire packet (exact reference)."""
        state = "on" if on else "off"
        for ns, dev in ((SND, SND_IF), (RCV, RCV_IF)):
            sh(*ns_argv(ns, ["ethtool", "-K", dev, "tso", state, "gso", state, "gro", state]))
        self.offloads = on

    @staticmethod
    def destroy():
        for ns in (SND, RCV):
            if netns_exists(ns):
                sh("ip", "netns", "del", ns, check=False)

    @staticmethod
    def link_counters():
        """Packets and IP bytes that crossed the monitored end, both directions.

        veth counts an skb when it is handed to the peer, with skb->len = the
        Ethernet header plus the IP packet (no padding, no FCS). Frames the
        egress hook saw but veth dropped are in tx dropped; their bytes are
        not known, which the caller reports.
        """
        out = sh("ip", "-n", RCV, "-s", "-j", "link", "show", RCV_IF)
        stats = json.loads(out)[0]["stats64"]
        rx, tx = stats["rx"], stats["tx"]
        packets = rx["packets"] + tx["packets"]
        return {
            "packets": packets,
            "ip_bytes": rx["bytes"] + tx["bytes"] - ETH_HLEN * packets,
            "dropped": tx["dropped"],
            "rx_packets": rx["packets"],
            "tx_packets": tx["packets"],
        }


def counter_delta(before, after):
    return {key: after[key] - before[key] for key in before}


def wait_for(predicate, timeout, what):
    """Polls predicate until it is true; raises after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def tcp_listening(ns, port):
    out = sh("ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}", check=False)
    return bool(out.strip())
