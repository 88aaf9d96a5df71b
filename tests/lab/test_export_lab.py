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
import subprocess
import sys
import time

import tcflows_lab as L
from flow_collectors import nfacctd_config, nfdump_flows, pmacct_flows, stop, summed

TRAFFIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "export_traffic.py")
NFCAPD_PORT, NFACCTD_PORT, METRICS_PORT = 4739, 9995, 9469
MAX_FLOWS = 4096


def spawn(lab, side, *args, **kw):
    """A process in namespace `side`, in a session of its own (stop() ends
    nfacctd's plugins with it)."""
    return subprocess.Popen(L.ns_argv(lab.ns[side], args), start_new_session=True, **kw)


def export_traffic(lab, side, *args):
    """export_traffic.py in namespace `side`; returns its output."""
    return L.run([sys.executable, TRAFFIC, *args], ns=lab.ns[side]).stdout


def scrape(lab):
    body = export_traffic(lab, "a", "scrape", f"http://127.0.0.1:{METRICS_PORT}/metrics")
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                          text=True)
    L.check(lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(),
            f"promtool: {lint.stdout}{lint.stderr}")
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


def capture_reference(lab, pcap):
    """Frames, and packets/IP bytes in and out of dev a, in the capture."""
    mac = L.mac_of(lab, "a").hex(":")
    out = L.run(["tshark", "-r", pcap, "-T", "fields", "-E", "separator=,",
                 "-e", "frame.time_epoch", "-e", "eth.src", "-e", "ip.len", "-e", "ipv6.plen",
                 "-e", "frame.len"]).stdout
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


def start_collectors(lab, work):
    nf_dir = os.path.join(work, "nfcapd")
    os.mkdir(nf_dir)
    nfcapd = spawn(lab, "a", "nfcapd", "-b", "127.0.0.1", "-p", str(NFCAPD_PORT), "-w", nf_dir,
                   "-t", "3600", "-B", "8000000", stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    pm_out = os.path.join(work, "pmacct.json")
    conf = os.path.join(work, "nfacctd.conf")
    with open(conf, "w") as f:
        f.write(nfacctd_config(NFACCTD_PORT, pm_out))
    nfacctd = spawn(lab, "a", "nfacctd", "-f", conf, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    return [nfcapd, nfacctd], nf_dir, pm_out


def start_tcflows(binary, lab, jsonl):
    agent = L.Tcflows(binary, lab.ns["a"], [lab.dev["a"]], interval="1s", extra=[
        "-q", "--jsonl", jsonl, "--max-flows", str(MAX_FLOWS), "--udp-timeout", "2s",
        "--icmp-timeout", "2s", "--other-timeout", "2s", "--linger", "1s",
        "--ipfix-active", "3s", "--ipfix", f"udp://127.0.0.1:{NFCAPD_PORT}",
        "--ipfix", f"udp://127.0.0.1:{NFACCTD_PORT}", "--metrics", str(METRICS_PORT)])
    L.wait_for(lambda: agent.said("metrics on"), 20, "tcflows' metrics endpoint")
    return agent


def run_traffic(lab):
    srv4, srv6 = lab.addr4["b"], lab.addr6["b"]
    long_conn = spawn(lab, "a", sys.executable, TRAFFIC, "long", srv4, "7")
    export_traffic(lab, "a", "client", srv4, srv6)
    L.ping(lab, "a", srv4, count=3)
    L.ping(lab, "a", srv6, count=3)
    return long_conn


def check_metrics(dev, m0, m1, m2, ref, finals):
    p = []
    lab = {"iface": dev}
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
    for counter in ("malformed", "flow_full", "flow_error", "untracked_packets"):
        if metric(m2, f"tcflows_kernel_{counter}_total"):
            p.append(f"kernel {counter} is not 0")
    started = metric(m2, "tcflows_kernel_connections_total") - \
        metric(m0, "tcflows_kernel_connections_total")
    if started < len(finals):
        p.append(f"the program started {started} connections, --jsonl has {len(finals)}")
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


def test_export(binary):
    """IPFIX to nfcapd and nfacctd, metrics, against --jsonl and a capture"""
    work = L.scratch_dir()
    processes = []
    L.on_cleanup(lambda: [stop(p) for p in reversed(processes)])
    with L.Lab(prefix="tx") as lab:
        # tcflows and tcpdump start once the link is up and quiet, so that
        # both see the same frames. (MLD reports from :: of both sides would
        # share one flow key, whose direction the per-interface metrics
        # cannot tell apart: see metrics.h.)
        lab.link_up()
        server = spawn(lab, "b", sys.executable, TRAFFIC, "serve", stdout=subprocess.PIPE)
        processes.append(server)
        server.stdout.readline()  # "ready"
        collectors, nf_dir, pm_out = start_collectors(lab, work)
        processes += collectors
        jsonl = os.path.join(work, "records.jsonl")
        agent = start_tcflows(binary, lab, jsonl)
        pcap = os.path.join(work, "capture.pcap")
        capture = L.Tcpdump(lab.ns["a"], lab.dev["a"], pcap)
        m0 = scrape(lab)
        long_conn = run_traffic(lab)
        processes.append(long_conn)
        m1 = scrape(lab)  # during the traffic
        long_conn.wait(timeout=20)
        time.sleep(6)  # timeouts (2 s), linger (1 s), an interval and a sweep
        m2 = scrape(lab)
        with open(os.path.join(work, "m2.txt"), "w") as f:
            f.write(json.dumps(m2, indent=1))
        finals_at_m2 = jsonl_finals(jsonl)
        capture.finish()
        agent.stop()  # the rest as "shutdown" finals, exported before it exits
        time.sleep(3)  # pmacct's print plugin writes every second
        for c in collectors:
            stop(c)
        ref = capture_reference(lab, pcap)
    problems = check_metrics(lab.dev["a"], m0, m1, m2, ref, finals_at_m2)
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
        print("  FAIL:", p)
    print(f"  {len(want)} connections, {nfdump_records} IPFIX records, capture {ref}: "
          f"{len(problems)} problems")
    L.check(not problems, f"{len(problems)} problems, first: {problems[:1]}")


if __name__ == "__main__":
    L.main([test_export])
