#!/usr/bin/env python3
"""Lab (issue 3): a burst of 2000 short TCP connections from four parallel
connload clients, each closing another way (server first, client first, RST
by the client, IPv6), against a capture of the same interface and conntrack:
every connection exactly once as a final record, with the capture's counts.

With the default ring buffer no event is lost (ringbuf_full 0) and history
and RTT are exact too; with --ringbuf-size 4096 the overflow is counted
(ringbuf_full > 0) and still every connection is there with exact counts and
the right state; history may lose its order (its letters must stay) and RTT
may be missing.

Usage: test_burst.py TCFLOWS connload=CONNLOAD [TEST...]"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import records as R  # noqa: E402
from records import Expect  # noqa: E402

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


def connload():
    path = L.OPTIONS.get("connload")
    if not path or not os.access(path, os.X_OK):
        raise L.LabError("give the connload binary as connload=PATH (build/tools/connload)")
    return path


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


def burst(lab):
    """The four clients at once; returns their totals. Raises LabError unless
    every connection completed."""
    tool = connload()
    servers = []
    for addr, port, close in SERVERS:
        servers.append(L.Process([tool, "server", "--listen", addr, "--port", port,
                                  "--close", close], ns=lab.ns["b"]))
        L.wait_listening(lab.ns["b"], port)
    clients = {name: L.Process([tool, "client", "--connect", server, "--port", port,
                                "--bind", addr, "--count", PER_CLIENT, "--concurrency",
                                CONCURRENCY, "--close", close], ns=lab.ns["a"])
               for name, (addr, server, port, close, *_) in CLIENTS.items()}
    totals = {}
    for name, client in clients.items():
        try:
            client.proc.wait(timeout=120)
        except L.subprocess.TimeoutExpired:
            raise L.LabError(f"connload client {name} still runs after 120 s")
        rc = client.stop()
        totals[name] = json_line(client, name)
        if rc != 0 or totals[name]["completed"] != PER_CLIENT:
            raise L.LabError(f"connload client {name} exited {rc}: {json.dumps(totals[name])}")
    for server in servers:
        server.stop()
    for name, t in totals.items():
        print(f"  connload {name}: {t['completed']} completed, {t['completed_per_s']:.0f}/s")
    return totals


def expects():
    return [Expect("TCP", addr, server, port, count=PER_CLIENT, state=state, close=close,
                   letters=letters, ct="ASSURED", ct_counts=True)
            for addr, server, port, _, state, close, letters in CLIENTS.values()]


def run_burst(binary, extra=()):
    return R.observe_records(binary, burst, extra=extra, prepare=add_client_addresses)


def test_burst(binary):
    """2000 short connections from 4 parallel clients (concurrency 32 each):
    every one exactly once, exact counts, state, history and RTT; no loss."""
    run = run_burst(binary)
    R.verify(run, expects(), "burst")


def test_burst_tiny_ringbuf(binary):
    """The same burst with --ringbuf-size 4096: the overflow is counted, and
    still every connection is there once with exact counts and state."""
    run = run_burst(binary, extra=["--ringbuf-size", "4096"])
    R.verify(run, expects(), "burst, tiny ring buffer", degraded=True, allow=("ringbuf_full",))
    lost = run.obs.snapshot["counters"]["ringbuf_full"]
    L.check(lost > 0, "ringbuf_full is 0 with a 4 KiB ring buffer: the overflow is not counted "
            "(or did not happen)")
    print(f"  ring buffer overflow counted: ringbuf_full={lost}")


if __name__ == "__main__":
    L.main([test_burst, test_burst_tiny_ringbuf])
