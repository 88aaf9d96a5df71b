"""Load scenarios: a server in the receiver namespace, a client in the sender's.

A scenario starts its server once, then per measurement launches its client
for a given time and turns the client's own report into one throughput
figure (higher is better). To add one: subclass Scenario, fill in name,
title, unit and the three methods, and list it in all_scenarios().
"""

import json
import shutil
import subprocess

from tcflows_lab.netns import wait_listening
from tcflows_lab.proc import stop_process

from .lab import RCV, RCV_ADDR, SND, ns_argv


class Scenario:
    name = ""
    title = ""
    unit = ""
    offloads = False  # the lab's veth offloads during this scenario
    steady = True  # long-lived flows: per-packet cost here is the known-flow cost

    def unavailable(self):
        return None

    def start_server(self, workdir, cpu):
        pass

    def stop_server(self):
        if getattr(self, "server", None) is not None:
            stop_process(self.server, 5)
            self.server = None

    def launch(self, seconds, workdir, cpu):
        """Starts the client; returns its Popen (stdout captured)."""
        raise NotImplementedError

    def result(self, stdout):
        """{"value": throughput in self.unit, plus whatever the tool reported}."""
        raise NotImplementedError


class Iperf3(Scenario):
    port = 5201

    def __init__(self, name, title, extra, omit):
        self.name, self.title, self.extra, self.omit = name, title, extra, omit

    def unavailable(self):
        return None if shutil.which("iperf3") else "iperf3 is not installed"

    def start_server(self, workdir, cpu):
        argv = ["iperf3", "-s", "-B", RCV_ADDR, "-p", str(self.port)]
        self.server = subprocess.Popen(ns_argv(RCV, argv, cpu), stdout=subprocess.DEVNULL,
                                       stderr=open(workdir / f"{self.name}-server.err", "w"))
        wait_listening(RCV, self.port, timeout=5)

    def launch(self, seconds, workdir, cpu):
        argv = ["iperf3", "-c", RCV_ADDR, "-p", str(self.port), "-t", str(seconds),
                "-O", str(self.omit), "-J", *self.extra]
        return subprocess.Popen(ns_argv(SND, argv, cpu), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


class Iperf3Tcp(Iperf3):
    unit = "Gbit/s"

    def __init__(self, streams, omit, offloads=False):
        suffix = "-gso" if offloads else ""
        super().__init__(f"tcp{streams}{suffix}",
                         f"iperf3 TCP, {streams} stream{'s' if streams > 1 else ''}"
                         f"{', offloads on' if offloads else ''}", ["-P", str(streams)], omit)
        self.offloads = offloads

    def result(self, stdout):
        end = json.loads(stdout)["end"]
        received = end["sum_received"]
        return {"value": received["bits_per_second"] / 1e9, "load_bytes": received["bytes"],
                "retransmits": end["sum_sent"].get("retransmits")}


class Iperf3Udp64(Iperf3):
    """The figure is the rate the sender got through the veth.

    veth hands each packet to the receiver's stack on the sender's CPU, so a
    monitor's per-packet cost slows the sender. What the iperf3 server
    receives is no measure of it: the receiving socket is the bottleneck and
    drops less when the sender is slowed (measured: "delivered" rose with
    pmacctd attached while the sent rate fell by a third).
    """

    unit = "kpps"

    def __init__(self, omit):
        super().__init__("udp64", "iperf3 UDP, 64-byte datagrams, full rate (sent pps)",
                         ["-u", "-b", "0", "-l", "64"], omit)

    def result(self, stdout):
        end = json.loads(stdout)["end"]
        sent, received = end["sum_sent"], end["sum_received"]
        delivered = received["packets"] - received["lost_packets"]
        return {"value": sent["packets"] / sent["seconds"] / 1e3, "load_sent": sent["packets"],
                "load_delivered_kpps": delivered / received["seconds"] / 1e3}


class ShortTcp(Scenario):
    """connload: connect, 16 bytes each way, the server closes; as many as possible."""

    name = "shorttcp"
    title = "short TCP connections (connload)"
    unit = "conn/s"
    steady = False  # every connection creates (or reuses) a flow entry
    port = 5301

    def __init__(self, binary, concurrency):
        self.binary, self.concurrency = binary, concurrency

    def unavailable(self):
        return None if shutil.which(self.binary) else f"{self.binary} is not built"

    def start_server(self, workdir, cpu):
        argv = [self.binary, "server", "--listen", RCV_ADDR, "--port", str(self.port)]
        self.server_out = workdir / "connload-server.json"
        self.server = subprocess.Popen(ns_argv(RCV, argv, cpu), stdout=open(self.server_out, "w"),
                                       stderr=subprocess.DEVNULL)
        wait_listening(RCV, self.port, timeout=5)

    def launch(self, seconds, workdir, cpu):
        argv = [self.binary, "client", "--connect", RCV_ADDR, "--port", str(self.port),
                "--duration", f"{seconds}s", "--concurrency", str(self.concurrency)]
        return subprocess.Popen(ns_argv(SND, argv, cpu), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def result(self, stdout):
        totals = json.loads(stdout)
        return {"value": totals["completed_per_s"], "load_connections": totals["completed"],
                "load_failed": totals["failed"]}


def all_scenarios(connload, quick):
    omit = 0 if quick else 1  # iperf3 -O: leave slow start out of the figure
    return [Iperf3Tcp(1, omit), Iperf3Tcp(4, omit), Iperf3Udp64(omit),
            ShortTcp(connload, concurrency=64), Iperf3Tcp(1, omit, offloads=True)]
