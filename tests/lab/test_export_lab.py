#!/usr/bin/env python3
"""Lab (root): `tcflows record --ipfix ... --metrics ...` on a veth pair in
namespaces, with real traffic (TCP v4/v6, UDP, ICMP echo, a long connection
across the IPFIX active timeout).

References, none of them produced by the code under test:
- nfcapd/nfdump and pmacct's nfacctd receive the IPFIX export; nfdump shows
  the same connections, packets and bytes each way as tcflows' own --jsonl
  records (exactly, every final record); nfacctd the same forward counts.
- tcpdump captures the watched interface; tshark reads it: the per-interface
  packets and IP bytes in/out and the frames counter of the metrics match it.
- promtool checks every scrape.

usage: test_export_lab.py PATH/TO/tcflows   (exit 77 when not root)
"""
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from flow_collectors import nfacctd_config, nfdump_flows, pmacct_flows, stop, summed

HERE = os.path.dirname(os.path.abspath(__file__))
TRAFFIC = os.path.join(HERE, "export_traffic.py")
CLI, SRV = "tx-cli", "tx-srv"
CLI_IF, SRV_IF = "tx-c0", "tx-s0"
CLI4, SRV4 = "10.74.78.1", "10.74.78.2"
CLI6, SRV6 = "fd00:7478::1", "fd00:7478::2"
NFCAPD_PORT, NFACCTD_PORT, METRICS_PORT = 4739, 9995, 9469
MAX_FLOWS = 4096


def sh(*args, ns=None, check=True, **kw):
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run(prefix + list(args), check=check, capture_output=True, text=True, **kw)


def spawn(*args, ns, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns] + list(args), start_new_session=True,
                            **kw)


def make_lab():
    for ns in (CLI, SRV):
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", CLI_IF, "netns", CLI, "type", "veth", "peer", "name", SRV_IF,
       "netns", SRV)
    for ns, dev, a4, a6 in ((CLI, CLI_IF, CLI4, CLI6), (SRV, SRV_IF, SRV4, SRV6)):
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.router_solicitations=0", ns=ns)
        sh("ip", "addr", "add", f"{a4}/24", "dev", dev, ns=ns)
        sh("ip", "addr", "add", f"{a6}/64", "dev", dev, "nodad", ns=ns)
        # Wire packets = captured frames: no segmentation offloads.
        sh("ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "set", dev, "up", ns=ns)
    # tcflows and tcpdump start once the link is quiet, so that both see the
    # same frames: IPv6 start-up (DAD, MLD reports) is over within ~3 s.
    # (MLD reports from :: of both sides share one flow key, whose direction
    # the per-interface metrics cannot tell apart: see metrics.h.)
    time.sleep(4)


def remove_lab():
    for ns in (CLI, SRV):
        sh("ip", "netns", "del", ns, check=False)


class Stderr:
    """Collects a process's stderr lines; waits for one that matches."""

    def __init__(self, process):
        self.lines = []
        threading.Thread(target=self.read, args=(process,), daemon=True).start()

    def read(self, process):
        for line in process.stderr:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if any(re.search(pattern, line) for line in self.lines):
                return
            time.sleep(0.1)
        raise AssertionError(f"no '{pattern}' from tcflows: {self.lines}")


def scrape():
    body = sh("python3", TRAFFIC, "scrape", f"http://127.0.0.1:{METRICS_PORT}/metrics",
              ns=CLI).stdout
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                          text=True)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), \
        f"promtool: {lint.stdout}{lint.stderr}"
    samples = {}
    for line in body.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def metric(samples, name, **labels):
    key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    return samples.get(key, 0.0)


def family_sum(samples, name):
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def capture_reference(pcap):
    """Frames, and packets/IP bytes in and out of tx-c0, in the capture."""
    mac = sh("cat", f"/sys/class/net/{CLI_IF}/address", ns=CLI).stdout.strip()
    out = sh("tshark", "-r", pcap, "-T", "fields", "-E", "separator=,", "-e", "frame.time_epoch",
             "-e", "eth.src", "-e", "ip.len", "-e", "ipv6.plen", "-e", "frame.len").stdout
    ref = {"frames": 0, "pkts": {"in": 0, "out": 0}, "bytes": {"in": 0, "out": 0}}
    for line in out.splitlines():
        t, src, ip_len, ip6_plen, frame_len = line.split(",")
        direction = "out" if src == mac else "in"
        size = int(ip_len) if ip_len else int(ip6_plen) + 40 if ip6_plen else int(frame_len)
        ref["frames"] += 1
        ref["pkts"][direction] += 1
        ref["bytes"][direction] += size
    return ref


def conn_key(r):
    return (r["src_addr"], r["dst_addr"], r["src_port"], r["dst_port"], r["proto"])


def jsonl_finals(path):
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if not r["checkpoint"]]


def expected_per_tuple(finals):
    """Summed orig/resp packets and bytes per 5-tuple, IP records only."""
    out = {}
    for r in finals:
        try:
            ipaddress.ip_address(r["src_addr"])
        except ValueError:
            continue  # a MAC: link-layer records have no IPFIX template
        s = out.setdefault(conn_key(r), [0, 0, 0, 0])
        for i, k in enumerate(("orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes")):
            s[i] += r[k]
    return out


def compare(name, got, want):
    problems = [f"{name} {k}: {got.get(k)} expected {v}" for k, v in want.items()
                if got.get(k) != v]
    problems += [f"{name} {k}: not in tcflows' records" for k in got if k not in want]
    return problems


def start_collectors(work):
    nf_dir = os.path.join(work, "nfcapd")
    os.mkdir(nf_dir)
    nfcapd = spawn("nfcapd", "-b", "127.0.0.1", "-p", str(NFCAPD_PORT), "-w", nf_dir, "-t",
                   "3600", "-B", "8000000", ns=CLI, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    pm_out = os.path.join(work, "pmacct.json")
    conf = os.path.join(work, "nfacctd.conf")
    with open(conf, "w") as f:
        f.write(nfacctd_config(NFACCTD_PORT, pm_out))
    nfacctd = spawn("nfacctd", "-f", conf, ns=CLI, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    return [nfcapd, nfacctd], nf_dir, pm_out


def start_tcflows(tcflows, jsonl):
    process = spawn(
        tcflows, "record", "-i", CLI_IF, "-q", "--interval", "1s", "--jsonl", jsonl,
        "--max-flows", str(MAX_FLOWS), "--udp-timeout", "2s", "--icmp-timeout", "2s",
        "--other-timeout", "2s", "--linger", "1s", "--ipfix-active", "3s",
        "--ipfix", f"udp://127.0.0.1:{NFCAPD_PORT}", "--ipfix", f"udp://127.0.0.1:{NFACCTD_PORT}",
        "--metrics", str(METRICS_PORT), ns=CLI, stderr=subprocess.PIPE, text=True)
    stderr = Stderr(process)
    stderr.wait_for(f"recording on {CLI_IF}")
    stderr.wait_for("metrics on")
    return process, stderr


def run_traffic():
    long_conn = spawn("python3", TRAFFIC, "long", SRV4, "7", ns=CLI)
    sh("python3", TRAFFIC, "client", SRV4, SRV6, ns=CLI)
    sh("ping", "-c", "3", "-i", "0.2", SRV4, ns=CLI)
    sh("ping", "-6", "-c", "3", "-i", "0.2", SRV6, ns=CLI)
    return long_conn


def check_metrics(m0, m1, m2, ref, finals):
    p = []
    lab = {"iface": CLI_IF}
    for d in ("in", "out"):
        for what in ("packets", "bytes"):
            name = f"tcflows_interface_{what}_total"
            got = metric(m2, name, **lab, direction=d)
            want = ref["pkts" if what == "packets" else "bytes"][d]
            if got != want:
                p.append(f"{name} {d}: {got}, capture {want}")
            if not metric(m0, name, **lab, direction=d) <= metric(m1, name, **lab, direction=d) \
                    <= metric(m2, name, **lab, direction=d):
                p.append(f"{name} {d} went backwards")
    # Frames are skbs: a GSO super-packet at TC egress is one frame and
    # several captured wire packets, so frames can only be at most those.
    frames = metric(m2, "tcflows_kernel_frames_total")
    if not metric(m0, "tcflows_kernel_frames_total") < frames <= ref["frames"]:
        p.append(f"frames {frames}, capture {ref['frames']} wire packets")
    closed = family_sum(m2, "tcflows_connections_closed_total")
    if closed != len(finals):
        p.append(f"connections closed {closed}, --jsonl has {len(finals)} final records")
    opened = metric(m2, "tcflows_connections_opened_total")
    if opened != closed + family_sum(m2, "tcflows_connections_open"):
        p.append(f"opened {opened} != closed {closed} + open")
    if not metric(m1, "tcflows_flows") > 0 or metric(m2, "tcflows_flows_max") != MAX_FLOWS:
        p.append("flow map gauges")
    for counter in ("malformed", "ringbuf_full", "flow_full", "untracked_packets"):
        if metric(m2, f"tcflows_kernel_{counter}_total"):
            p.append(f"kernel {counter} is not 0")
    if not metric(m2, "tcflows_ringbuf_events_total") > metric(m0, "tcflows_ringbuf_events_total"):
        p.append("no ring-buffer events consumed during the traffic")
    if not (metric(m2, "process_cpu_seconds_total") > 0
            and metric(m2, "process_resident_memory_bytes") > 1e6):
        p.append("process metrics")
    for port in (NFCAPD_PORT, NFACCTD_PORT):
        c = f"udp://127.0.0.1:{port}"
        if metric(m2, "tcflows_ipfix_records_failed_total", collector=c) or \
                not metric(m2, "tcflows_ipfix_collector_up", collector=c):
            p.append(f"{c}: failures or down")
        if not metric(m2, "tcflows_ipfix_records_sent_total", collector=c) > \
                metric(m0, "tcflows_ipfix_records_sent_total", collector=c):
            p.append(f"{c}: no records sent during the traffic")
    return p


def main():
    if os.geteuid() != 0:
        print("needs root (namespaces, TC, BPF)")
        return 77
    tcflows = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="tcflows-export-lab-")
    processes = []
    try:
        remove_lab()
        make_lab()
        processes.append(spawn("python3", TRAFFIC, "serve", ns=SRV, stdout=subprocess.PIPE))
        processes[-1].stdout.readline()  # "ready"
        collectors, nf_dir, pm_out = start_collectors(work)
        processes += collectors
        jsonl = os.path.join(work, "records.jsonl")
        agent, stderr = start_tcflows(tcflows, jsonl)
        processes.append(agent)
        pcap = os.path.join(work, "capture.pcap")
        capture = spawn("tcpdump", "-i", CLI_IF, "-U", "-w", pcap, ns=CLI,
                        stderr=subprocess.PIPE, text=True)
        processes.append(capture)
        capture.stderr.readline()  # "listening on ..."
        m0 = scrape()
        long_conn = run_traffic()
        m1 = scrape()  # during the traffic
        long_conn.wait(timeout=20)
        time.sleep(6)  # timeouts (2 s), linger (1 s), an interval and a sweep
        m2 = scrape()
        with open(os.path.join(work, "m2.txt"), "w") as f:
            f.write(json.dumps(m2, indent=1))
        finals_at_m2 = jsonl_finals(jsonl)
        stop(capture)
        stop(agent)  # the rest as "shutdown" finals, exported before it exits
        time.sleep(3)  # pmacct's print plugin writes every second
        for c in collectors:
            stop(c)
        ref = capture_reference(pcap)
        problems = check_metrics(m0, m1, m2, ref, finals_at_m2)
        finals = jsonl_finals(jsonl)
        want = expected_per_tuple(finals)
        if not any(k[4] == "TCP" for k in want) or not any(k[4] == "ICMPv6" for k in want):
            problems.append(f"too few records in --jsonl to compare: {list(want)}")
        records = nfdump_flows(nf_dir)
        nfdump_records = len(records)
        problems += compare("nfdump", summed(records, 4), want)
        forward = {k: [v[0], v[1]] for k, v in want.items()}
        problems += compare("pmacct", summed(pmacct_flows(pm_out), 2), forward)
        if nfdump_records <= len(want):
            problems.append(f"nfdump has {nfdump_records} records for {len(want)} connections: "
                            "no active-timeout record of the long connection")
        for p in problems:
            print("FAIL:", p)
        print(f"{len(want)} connections, {nfdump_records} IPFIX records, capture {ref}: "
              f"{len(problems)} problems")
        return 1 if problems else 0
    finally:
        for p in reversed(processes):
            stop(p)
        remove_lab()
        if os.environ.get("TCFLOWS_KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
