"""The benchmark's lab: tcflows_lab's namespace lab with fixed names, a
sender and a receiver namespace joined by one veth.

    tb-snd [tb-s 10.199.0.2] <--veth--> [tb-r 10.199.0.1] tb-rcv

Monitors attach to tb-r, the receiver's end (the lab's side a). The lab is
IPv4 only, with IPv6 off and permanent neighbour entries, so that the load
is the only traffic on the veth: the interface counters of tb-r are then
the reference the monitors' totals are checked against.
"""

import os

from tcflows_lab import netns, proc

RCV, SND = "tb-rcv", "tb-snd"
RCV_IF, SND_IF = "tb-r", "tb-s"
RCV_ADDR, SND_ADDR = netns.ADDR4["a"], netns.ADDR4["b"]
SYSCTLS = ["net.ipv4.ip_local_port_range=1024 65535",  # room for short connections
           "net.core.somaxconn=4096", "net.ipv4.tcp_max_syn_backlog=4096"]

# Measured processes (load, servers, monitors alike) run at this niceness so
# that other work on the machine disturbs them less.
NICE = -15


def make_lab():
    """The lab, not set up yet; its names are the benchmark's own, so an
    interrupted run's leftovers are removed when it is set up."""
    return netns.Lab(names={"a": (RCV, RCV_IF), "b": (SND, SND_IF)}, ipv6=False,
                     sysctls=SYSCTLS)


def ns_argv(ns, argv, cpu=None):
    """argv run inside namespace ns; a measured process (cpu given) pinned and niced."""
    pin = ["nice", "-n", str(NICE), "taskset", "-c", str(cpu)] if cpu is not None else []
    return proc.ns_argv(ns, [*pin, *argv])


def python_env():
    """The environment of the bench's own Python helpers run as `python3 -m
    bench.X`: this package and tcflows_lab on the path."""
    here = os.path.dirname(os.path.abspath(__file__))
    lib = os.path.dirname(here)
    lab = os.path.join(os.path.dirname(os.path.dirname(lib)), "tests", "lab")
    return dict(os.environ, PYTHONPATH=f"{lib}:{lab}")


def counter_delta(before, after):
    return {key: after[key] - before[key] for key in before}
