#!/usr/bin/env python3
"""Lab (connection records): a burst of 2000 short TCP connections from four parallel
connload clients, each closing another way (server first, client first, RST
by the client, IPv6), against a capture of the same interface and conntrack:
every connection exactly once as a final record, with the capture's counts.

History and RTT are exact too, also with a tiny ring buffer and the agent
stopped during the burst's start: the connections live in the program's
table, the ring buffer only wakes the agent.

Usage: test_burst.py TCFLOWS connload=CONNLOAD [TEST...]"""

import contextlib
import json
import os
import signal
import subprocess
import time

import tcflows_lab as L
from tcflows_lab import Expect

PER_CLIENT = 500
CONCURRENCY = 32
SERVER = L.ADDR4["b"]
# Client name: (its own source address, server address, server port, how
# connections end, Zeek state, close reason, history letters).
CLIENTS = {
    "server-closes": ("10.199.0.11", SERVER, 6001, "server", "SF", "fin", "ShADdFf"),
    "client-closes": ("10.199.0.12", SERVER, 6002, "client", "SF", "fin", "ShADdFf"),
    "client-resets": ("10.199.0.13", SERVER, 6002, "rst", "RSTO", "rst", "ShADdR"),
    "ipv6": ("fd00:199::11", L.ADDR6["b"], 6003, "server", "SF", "fin", "ShADdFf"),
}
# Servers: (address, port, close mode); port 6002 waits for the client's end.
SERVERS = [(SERVER, 6001, "server"), (SERVER, 6002, "client"), (L.ADDR6["b"], 6003, "server")]


def add_client_addresses(lab):
    for addr, *_ in CLIENTS.values():
        plen = 64 if ":" in addr else 24
        extra = ["nodad"] if ":" in addr else []
        lab.ip("a", "addr", "add", f"{addr}/{plen}", "dev", lab.dev["a"], *extra)


def json_line(process, role):
    line = process.out.lines[-1] if process.out.lines else ""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise L.LabError(f"connload {role} printed no totals: {L.tail(process.err.text())}")


def wait_client(client, name, count):
    try:
        client.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise L.LabError(f"connload client {name} still runs after 120 s")
    rc = client.stop()
    totals = json_line(client, name)
    if rc != 0 or totals["completed"] != count:
        raise L.LabError(f"connload client {name} exited {rc}: {json.dumps(totals)}")
    print(f"  connload {name}: {totals['completed']} completed, "
          f"{totals['completed_per_s']:.0f}/s")


@contextlib.contextmanager
def agent_paused(lab, binary, seconds):
    """Stops the tcflows agent (SIGSTOP) for the first `seconds` of the block
    (binary None: not at all): its ring buffer surely overflows meanwhile."""
    if binary is None:
        yield
        return
    target = os.path.realpath(binary)
    pids = [int(p) for p in L.run(["ip", "netns", "pids", lab.ns["a"]]).stdout.split()
            if os.path.realpath(f"/proc/{p}/exe") == target]
    if len(pids) != 1:
        raise L.LabError(f"expected one tcflows process in {lab.ns['a']}, found {pids}")
    os.kill(pids[0], signal.SIGSTOP)
    try:
        start = time.monotonic()
        yield
    finally:
        time.sleep(max(0.0, seconds - (time.monotonic() - start)))
        os.kill(pids[0], signal.SIGCONT)


def burst(lab, pause=None):
    """The four clients at once. Raises LabError unless every connection
    completed. With pause=binary, the agent is stopped for
    the burst's first 0.3 s."""
    tool = L.connload_path()
    servers = []
    for addr, port, close in SERVERS:
        servers.append(L.Process([tool, "server", "--listen", addr, "--port", port,
                                  "--close", close], ns=lab.ns["b"]))
        L.wait_listening(lab.ns["b"], port)
    with agent_paused(lab, pause, 0.3):
        clients = {name: L.Process([tool, "client", "--connect", server, "--port", port,
                                    "--bind", addr, "--count", PER_CLIENT, "--concurrency",
                                    CONCURRENCY, "--close", close], ns=lab.ns["a"])
                   for name, (addr, server, port, close, *_) in CLIENTS.items()}
    for name, client in clients.items():
        wait_client(client, name, PER_CLIENT)
    for server in servers:
        server.stop()


def expects():
    return [Expect("TCP", addr, server, port, count=PER_CLIENT, state=state, close=close,
                   letters=letters, ct="ASSURED", ct_counts=True)
            for addr, server, port, _, state, close, letters in CLIENTS.values()]


def run_burst(binary, extra=(), pause=False):
    def traffic(lab):
        return burst(lab, pause=binary if pause else None)
    return L.observe_records(binary, traffic, extra=extra, prepare=add_client_addresses)


def test_burst(binary):
    """2000 short connections from 4 parallel clients (concurrency 32 each):
    every one exactly once, exact counts, state, history and RTT; no loss."""
    run = run_burst(binary)
    L.verify(run, expects(), "burst")


def test_burst_tiny_ringbuf(binary):
    """The same burst with --ringbuf-size 4096 and the agent stopped for the
    burst's first 0.3 s: the connections live in the program's table, not in
    events, so still every one is there once, exact, with its state."""
    run = run_burst(binary, extra=["--ringbuf-size", "4096"], pause=True)
    L.verify(run, expects(), "burst, tiny ring buffer")


# ---------------------------------------------------------------- reused 5-tuples

REUSE_PORTS = (40000, 40049)  # the client namespace's ephemeral ports
REUSE_SERVER_PORTS = (6011, 6012, 6013, 6014)
REUSE_PER_CLIENT = 250


def reuse_burst(lab, pause=None):
    """Four clients at once, each to its own server port, all from only 50
    client ports, the server closing first (the client's port is free again
    at once): each 5-tuple carries about 10 consecutive connections, which
    the program splits at each SYN. pause: as for burst()."""
    lab.sysctl("a", "net.ipv4.ip_local_port_range=%d %d" % REUSE_PORTS)
    tool = L.connload_path()
    servers = []
    for port in REUSE_SERVER_PORTS:
        servers.append(L.Process([tool, "server", "--listen", SERVER, "--port", port],
                                 ns=lab.ns["b"]))
        L.wait_listening(lab.ns["b"], port)
    with agent_paused(lab, pause, 0.3):
        clients = {port: L.Process([tool, "client", "--connect", SERVER, "--port", port,
                                    "--count", REUSE_PER_CLIENT, "--concurrency", 12],
                                   ns=lab.ns["a"]) for port in REUSE_SERVER_PORTS}
    for port, client in clients.items():
        wait_client(client, f"to port {port}", REUSE_PER_CLIENT)
    for server in servers:
        server.stop()


def reuse_expects():
    return [Expect("TCP", L.ADDR4["a"], SERVER, port, count=REUSE_PER_CLIENT, state="SF",
                   close="fin", letters="ShADdFf", ct="ASSURED", ct_counts=True)
            for port in REUSE_SERVER_PORTS]


def check_reuse(run):
    """The traffic did reuse 5-tuples: far fewer of them than connections."""
    tuples = {c.key for c in run.conns if c.key.dport in REUSE_SERVER_PORTS}
    conns = sum(1 for c in run.conns if c.key.dport in REUSE_SERVER_PORTS)
    if len(tuples) * 5 > conns:
        raise L.LabError(f"{conns} connections on {len(tuples)} 5-tuples: hardly any reuse")
    print(f"  {conns} connections on {len(tuples)} 5-tuples")


def test_reuse_burst(binary):
    """1000 short connections on at most 100 5-tuples: each exactly once, exact."""
    run = L.observe_records(binary, reuse_burst)
    check_reuse(run)
    L.verify(run, reuse_expects(), "reuse burst")


def test_reuse_burst_tiny_ringbuf(binary):
    """The same with --ringbuf-size 4096 and the agent stopped for the first
    0.3 s: the program starts each next connection on a 5-tuple in a slot of
    its own, and the sweeps find every one."""
    run = L.observe_records(binary, lambda lab: reuse_burst(lab, pause=binary),
                            extra=["--ringbuf-size", "4096"])
    check_reuse(run)
    L.verify(run, reuse_expects(), "reuse burst, tiny ring buffer")


if __name__ == "__main__":
    L.main([test_burst, test_burst_tiny_ringbuf, test_reuse_burst,
            test_reuse_burst_tiny_ringbuf])
