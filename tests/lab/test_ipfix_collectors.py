#!/usr/bin/env python3
"""Real IPFIX collectors receive tcflows' export of hand-made connection updates.

Runs without root and without the kernel: tests/tools/ipfix_feed drives the
real exporter (sockets, queues, active timeout, TCP reconnect) with updates
whose totals this script knows. The references are independent decoders:
nfcapd/nfdump (nfdump), nfacctd (pmacct) and tshark (for the TCP stream).

usage: test_ipfix_collectors.py PATH/TO/ipfix_feed
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from flow_collectors import nfacctd_config, nfdump_flows, pmacct_flows, stop, summed

FEED = sys.argv[1] if len(sys.argv) > 1 else "build/tests/ipfix_feed"
S = 1_000_000_000


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool, package):
    if not shutil.which(tool):
        sys.exit(f"{tool} is missing: apt-get install {package}")


# TCP flags each side sent in a connection like "ShADadFf": SYN, ACK, PSH, FIN.
ORIG_FLAGS, RESP_FLAGS = 0x1b, 0x1b


def record(uid, proto, src, sport, dst, dport, start, pkts, close="fin", history="", **delta):
    """A connection update; pkts = (orig_pkts, orig_bytes, resp_pkts, resp_bytes)."""
    r = {"uid": uid, "iface": "lo", "proto": proto, "src_addr": src, "src_port": sport,
         "dst_addr": dst, "dst_port": dport, "start_ns": start, "end_ns": start + S,
         "orig_pkts": pkts[0], "orig_bytes": pkts[1], "resp_pkts": pkts[2],
         "resp_bytes": pkts[3], "state": "SF", "history": history, "close_reason": close}
    if proto == "TCP":
        r["orig_tcp_flags"], r["resp_tcp_flags"] = ORIG_FLAGS, RESP_FLAGS
    if delta:
        r["delta"] = delta
    return r


def make_batches(t0):
    """The input, and what each collector must show: {5-tuple: [records]}."""
    expect = {}

    def final(r):
        key = (r["src_addr"], r["dst_addr"], r["src_port"], r["dst_port"], r["proto"])
        expect.setdefault(key, []).append((r["orig_pkts"], r["orig_bytes"], r["resp_pkts"],
                                           r["resp_bytes"]))
        return r

    first = [
        final(record("C1", "TCP", "10.200.0.1", 40001, "10.200.0.2", 80, t0, (11, 1234, 9, 56789),
                     history="ShADadFf")),
        final(record("C2", "UDP", "2001:db8::1", 5353, "2001:db8::2", 53, t0, (1, 80, 1, 120),
                     close="idle")),
        final(record("C3", "ICMP", "10.200.0.1", 8, "10.200.0.2", 0, t0, (3, 252, 3, 252),
                     close="idle")),
        final(record("C5", "ICMPv6", "2001:db8::1", 128, "2001:db8::2", 0, t0, (2, 208, 2, 208),
                     close="idle")),
        record("C4", "ARP", "02:00:00:00:00:01", 0, "ff:ff:ff:ff:ff:ff", 0, t0, (1, 42, 0, 0),
               close="idle"),  # link layer: no template, counted as skipped
    ]
    # 300 short connections: several messages per export.
    for i in range(300):
        first.append(final(record(f"B{i}", "TCP", "10.200.1.1", 20000 + i, "10.200.1.2", 443,
                                  t0, (5 + i % 7, 400 + i, 4, 3000 + i), history="ShADadFf")))
    # A long connection: checkpoints, one active-timeout record, then the final.
    long_open = record("L1", "TCP", "10.200.0.1", 50000, "10.200.0.2", 22, t0, (0, 0, 0, 0),
                       close=None, history="ShAD")
    deltas = [(10, 1000, 20, 20000), (5, 500, 6, 6000), (7, 700, 8, 8000), (1, 52, 1, 52)]

    def checkpoint(i, at, close=None):
        r = dict(long_open, end_ns=at, close_reason=close)
        r["orig_pkts"], r["orig_bytes"], r["resp_pkts"], r["resp_bytes"] = (
            sum(d[k] for d in deltas[:i + 1]) for k in range(4))
        r["delta"] = dict(zip(["orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes"], deltas[i]),
                          from_ns=at - 10 * S, to_ns=at)
        return r

    first.append(checkpoint(0, t0 + 10 * S))
    key = ("10.200.0.1", "10.200.0.2", 50000, 22, "TCP")
    # Active timeout 60 s: due at t0 + 60 s with deltas 0..2; the final carries delta 3.
    expect[key] = [tuple(sum(d[k] for d in deltas[:3]) for k in range(4)), deltas[3]]
    batches = [
        {"now_ns": t0 + 10 * S, "sleep_ms": 5000, "updates": first},
        {"now_ns": t0 + 30 * S, "updates": [checkpoint(1, t0 + 30 * S)]},
        {"now_ns": t0 + 61 * S, "updates": [checkpoint(2, t0 + 50 * S)]},
        {"now_ns": t0 + 70 * S, "sleep_ms": 300,
         "updates": [checkpoint(3, t0 + 70 * S, close="fin")]},
    ]
    return batches, expect


class TcpCollector:
    """Accepts one IPFIX-over-TCP stream (started late) and keeps its bytes."""

    def __init__(self, port, delay):
        self.port, self.data, self.connections = port, b"", 0
        self.thread = threading.Thread(target=self.run, args=(delay,), daemon=True)
        self.thread.start()

    def run(self, delay):
        time.sleep(delay)
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", self.port))
            server.listen()
            server.settimeout(20)
            conn, _ = server.accept()
            self.connections += 1
            with conn:
                conn.settimeout(20)
                while chunk := conn.recv(65536):
                    self.data += chunk

    def messages(self):
        out, at = [], 0
        while at + 4 <= len(self.data):
            length = struct.unpack("!H", self.data[at + 2:at + 4])[0]
            assert length >= 16, f"bad message length {length} at {at}"
            out.append(self.data[at:at + length])
            at += length
        assert at == len(self.data), "the TCP stream does not end on a message boundary"
        return out


def tshark_decode(messages, workdir):
    """Each message as a UDP datagram in a pcap, decoded by tshark."""
    path = os.path.join(workdir, "tcp-stream.pcap")
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101))
        for m in messages:
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(m), 1, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
            udp = struct.pack("!HHHH", 40000, 4739, 8 + len(m), 0)
            packet = ip + udp + m
            f.write(struct.pack("<IIII", int(time.time()), 0, len(packet), len(packet)) + packet)
    out = subprocess.run(["tshark", "-r", path, "-d", "udp.port==4739,cflow", "-T", "ek"],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line)["layers"]["cflow"] for line in out.splitlines()
            if '"layers"' in line]


def as_list(value):
    return value if isinstance(value, list) else [value]


def check_nfdump(directory, expect):
    flows = {}
    for key, counts in nfdump_flows(directory):
        flows.setdefault(key, []).append(counts)
    problems = [f"{key}: nfdump {sorted(flows.get(key, []))} expected {sorted(want)}"
                for key, want in expect.items() if sorted(flows.get(key, [])) != sorted(want)]
    problems += [f"{key}: unexpected in nfdump" for key in flows if key not in expect]
    return problems


def check_pmacct(path, expect):
    got = summed(pmacct_flows(path), 2)
    want = {k: [sum(r[0] for r in v), sum(r[1] for r in v)] for k, v in expect.items()}
    problems = [f"{k}: pmacct {got.get(k)} expected {w}" for k, w in want.items() if got.get(k) != w]
    if {flags for key, _, flags in pmacct_flows(path) if key[4] == "TCP"} == {"0"}:
        problems.append("pmacct sees no TCP flags")
    return problems


def main():
    for tool, package in [("nfcapd", "nfdump"), ("nfdump", "nfdump"), ("nfacctd", "pmacct"),
                          ("tshark", "tshark")]:
        need(tool, package)
    work = tempfile.mkdtemp(prefix="tcflows-ipfix-")
    processes = []
    try:
        nf_port, pm_port, dead_port = (free_port(socket.SOCK_DGRAM) for _ in range(3))
        tcp_port = free_port(socket.SOCK_STREAM)
        nf_dir = os.path.join(work, "nfcapd")
        os.mkdir(nf_dir)
        processes.append(subprocess.Popen(
            ["nfcapd", "-b", "127.0.0.1", "-p", str(nf_port), "-w", nf_dir, "-t", "3600",
             "-B", "8000000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        pm_out = os.path.join(work, "pmacct.json")
        with open(os.path.join(work, "nfacctd.conf"), "w") as conf:
            conf.write(nfacctd_config(pm_port, pm_out))
        processes.append(subprocess.Popen(
            ["nfacctd", "-f", os.path.join(work, "nfacctd.conf")], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))
        time.sleep(1.5)  # both collectors listening

        t0 = (time.time_ns() // S - 120) * S
        batches, expect = make_batches(t0)
        batch_file = os.path.join(work, "batches.jsonl")
        with open(batch_file, "w") as f:
            for b in batches:
                f.write(json.dumps(b) + "\n")
        tcp = TcpCollector(tcp_port, delay=1.5)  # down at the first export, then up
        urls = [f"udp://127.0.0.1:{nf_port}", f"udp://127.0.0.1:{pm_port}",
                f"tcp://127.0.0.1:{tcp_port}", f"udp://127.0.0.1:{dead_port}"]
        feed = subprocess.run([FEED, "--active", "60s"] + sum((["--ipfix", u] for u in urls), [])
                              + [batch_file], capture_output=True, text=True, timeout=60)
        assert feed.returncode == 0, feed.stderr
        stats = {c["url"]: c["counters"] for c in json.loads(feed.stdout)["collectors"]}
        tcp.thread.join(timeout=10)

        problems = []
        exported = sum(len(v) for v in expect.values())  # IP records the exporter sends
        first = sum(1 for u in batches[0]["updates"] if u["proto"] != "ARP" and u["close_reason"])
        if json.loads(feed.stdout)["skipped"] != 1:
            problems.append(f"skipped {json.loads(feed.stdout)['skipped']}, expected 1 (ARP)")
        for url in urls[:2]:
            if stats[url]["records_sent"] != exported or stats[url]["records_failed"]:
                problems.append(f"{url}: {stats[url]}, expected {exported} sent")
        tcp_stats = stats[urls[2]]
        if (tcp_stats["records_failed"], tcp_stats["records_sent"], tcp_stats["connects"]) != (
                first, exported - first, 1):
            problems.append(f"tcp: {tcp_stats}, expected {first} failed (collector down), "
                            f"{exported - first} sent after 1 connect")
        dead = stats[urls[3]]
        if dead["records_failed"] == 0 or dead["records_sent"] + dead["records_failed"] != exported:
            problems.append(f"unreachable udp collector: {dead}: failures must be counted")

        # The TCP stream, decoded by tshark: templates at connect, then the records.
        layers = tshark_decode(tcp.messages(), work)
        if not layers or as_list(layers[0].get("cflow_cflow_flowset_id")) != ["2"]:
            problems.append("the TCP session does not start with a template-only message")
        sequence = 0
        for layer in layers:
            if int(layer["cflow_cflow_sequence"]) != sequence:
                problems.append(f"TCP sequence {layer['cflow_cflow_sequence']} != {sequence}")
            sequence += len(as_list(layer.get("cflow_cflow_packets", []))) // 2
        if sequence != exported - first:
            problems.append(f"tshark decoded {sequence} records in the TCP stream, "
                            f"expected {exported - first}")

        deadline = time.time() + 15
        while time.time() < deadline:
            if not check_pmacct(pm_out, expect):
                break
            time.sleep(0.5)
        for p in processes:
            stop(p)
        processes = []
        problems += check_nfdump(nf_dir, expect)
        problems += check_pmacct(pm_out, expect)
        if not pmacct_flows(pm_out):
            problems.append("pmacct wrote nothing")
        for p in problems:
            print("FAIL:", p)
        print(f"{len(expect)} connections, {exported} records: nfdump, pmacct, tshark "
              f"{'disagree' if problems else 'agree'}")
        return 1 if problems else 0
    finally:
        for p in processes:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
