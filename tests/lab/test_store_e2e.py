#!/usr/bin/env python3
"""Lab (the store end to end): the SQLite records of `tcflows record` equal a
capture of the same interface for a mixed workload; `tcflows report` runs in
a loop while record writes under load, without an error, and the database
ends up equal to the capture; a report window that starts inside a pause of
a connection counts only what came after it.
"""

import datetime
import json
import socket
import threading
import time

import tcflows_lab as L


def recorded(binary, traffic, interval="500ms"):
    """traffic(lab, db) recorded; returns (Db, frames, traffic's result)."""
    with L.Recorded(binary, interval=interval) as r:
        result = traffic(r.lab, r.db)
        r.finish()
    return r.db, r.frames, result


def mixed(lab, _db):
    a4, a6 = lab.addr4, lab.addr6
    L.tcp_transfers([(lab, "a", "b", a4["b"], 5801, 2_000_000, 300_000),
                     (lab, "b", "a", a4["a"], 5802, 500_000, 1_000_000),
                     (lab, "a", "b", a6["b"], 5803, 800_000, 100_000),
                     (lab, "b", "a", a6["a"], 5804, 100_000, 700_000)])
    for addrs in (a4, a6):
        L.udp_exchange(lab, "a", "b", addrs["b"], 5811, 40, 900, reply_size=100)
        L.udp_exchange(lab, "b", "a", addrs["a"], 5812, 20, 1300, reply_size=10)
        L.ping(lab, "a", addrs["b"], count=3)
        L.ping(lab, "b", addrs["a"], count=2, size=1200)


def test_mixed_workload(binary):
    """TCP both ways, UDP, ICMP, IPv4 and IPv6: every record equals the capture."""
    db, frames, _ = recorded(binary, mixed)
    protos = {f.key.proto for f in frames}
    L.check({"TCP", "UDP", "ICMP", "ICMPv6"} <= protos, f"the capture has only {protos}")
    rows = db.rows()
    L.compare_records(L.capture_connections(frames), rows, "mixed workload")
    db.check_traffic_sums()
    open_rows = [r for r in rows if r["close_reason"] is None]
    L.check(not open_rows, f"{len(open_rows)} records still open after the stop")


def report(binary, db, *args):
    """`tcflows report` as the test runs it: (exit, stdout, stderr, seconds)."""
    start = time.monotonic()
    p = L.run([binary, "report", "--db", db.path, *args], check=False, timeout=60)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - start


REPORTS = [["--by", "flow", "--format", "json"], ["--by", "conn", "--top", "50"],
           ["--by", "host", "--format", "csv"], ["--by", "proto", "--format", "json"]]


class ReportLoop(threading.Thread):
    """Runs the REPORTS in turn until stopped; keeps every failure."""

    def __init__(self, binary, db):
        super().__init__(daemon=True)
        self.binary, self.db = binary, db
        self.runs, self.failures, self.latencies = 0, [], []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            args = REPORTS[self.runs % len(REPORTS)]
            rc, _, err, seconds = report(self.binary, self.db, *args)
            self.runs += 1
            self.latencies.append(seconds)
            if rc != 0 or err:
                self.failures.append(f"report {' '.join(args)}: exit {rc}: {L.tail(err, 2)}")

    def stop(self):
        self.done.set()
        self.join(60)


def test_report_while_writing(binary):
    """`report` in a loop while record writes 6000 connections: every run
    exit 0 without error output; afterwards the database and a report of it
    equal the capture."""
    loop = {}

    def traffic(lab, db):
        loop["reports"] = ReportLoop(binary, db)
        loop["reports"].start()
        made = [L.connload_burst(binary, lab, 1500, 32, port=5820 + i)["completed"]
                for i in range(4)]
        time.sleep(1)
        loop["reports"].stop()
        return sum(made)

    db, frames, made = recorded(binary, traffic)
    reports = loop["reports"]
    lat = sorted(reports.latencies)
    print(f"  {made} connections; {reports.runs} reports, latency median "
          f"{lat[len(lat) // 2] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
    for f in reports.failures[:L.SHOW]:
        print(f"    {f}")
    L.check(reports.runs >= len(REPORTS), f"only {reports.runs} reports ran")
    L.check(not reports.failures, f"{len(reports.failures)} of {reports.runs} reports failed")
    rows = db.rows()
    L.compare_records(L.capture_connections(frames), rows, "under load")
    rc, out, err, _ = report(binary, db, "--by", "proto", "--format", "json", "--since", "1d")
    L.check(rc == 0 and not err, f"the final report: exit {rc}: {err}")
    got = (sum(r["packets"] for r in json.loads(out)), sum(r["bytes"] for r in json.loads(out)))
    want = L.capture_totals(frames)
    print(f"  report --by proto totals {got}, capture {want}")
    L.check(got == want, f"report totals {got} != capture {want}")


def iso_utc(ns):
    t = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


PAUSE_S = 5


def burst_pause_burst(lab, _db):
    """One connection: 3 MB, a pause of PAUSE_S seconds, then 40 kB."""
    sock, peer = L.tcp_pair(lab, "a", "b", lab.addr4["b"], 5830)
    with sock, peer:
        reader = L.Worker(L.recv_all, peer)
        reader.start()
        sock.sendall(bytes(3_000_000))
        time.sleep(PAUSE_S)
        sock.sendall(bytes(40_000))
        sock.shutdown(socket.SHUT_WR)
        L.check(reader.result() == 3_040_000, "the burst did not arrive whole")


def test_window_accuracy(binary):
    """A large burst, a pause of several intervals, a small burst: `report
    --since` a time inside the pause counts only the second burst."""
    db, frames, _ = recorded(binary, burst_pause_burst, interval="1s")
    conn = [f for f in frames if f.key.proto == "TCP" and 5830 in (f.key.sport, f.key.dport)]
    gaps = [(b.time_ns - a.time_ns, a.time_ns, b.time_ns) for a, b in zip(conn, conn[1:])]
    gap, before, after = max(gaps)
    L.check(gap > (PAUSE_S - 1) * 1e9, f"the longest quiet time is only {gap / 1e9:.1f} s")
    since = iso_utc((before + after) // 2)
    want = L.capture_flows([f for f in conn if f.time_ns > (before + after) // 2])
    want_all = L.capture_flows(conn)
    rc, out, err, _ = report(binary, db, "--since", since, "--port", "5830", "--format", "json")
    L.check(rc == 0 and not err, f"report --since {since}: exit {rc}: {err}")
    got = {L.Key(r["proto"], r["src_addr"], r["src_port"], r["dst_addr"], r["dst_port"]):
           L.Counts(r["packets"], r["bytes"]) for r in json.loads(out)}
    print(f"  pause {gap / 1e9:.1f} s; report --since {since} (inside it):")
    L.compare_flows(want, got, ref_name="capture after the pause", name="report")
    print(f"  (the whole connection: {sum(c.bytes for c in want_all.values())} bytes)")


if __name__ == "__main__":
    L.main([test_mixed_workload, test_report_while_writing, test_window_accuracy])
