"""The monitors compared on the receiver's veth end, each run fresh per measurement.

A peer starts, says when it is ready (attached or capturing), and at the end
reports the packets and IP bytes it recorded, from its own output: tcflows
from its database (written at its stop), softflowd from the NetFlow v5 it exports,
pmacctd from the CSV its print plugin writes. None of them samples: tcflows counts every
packet by design, softflowd samples only with -s (not given), pmacctd only
with sampling_rate (not set).
"""

import csv
import json
import os
import shutil
import sqlite3
import signal
import subprocess
import sys

from tcflows_lab.proc import run, stop_process, wait_for

from . import procstat
from .bpfstats import attached_tcflows_ids
from .lab import RCV, RCV_IF, ns_argv, python_env


class Peer:
    name = "none"
    process = None  # the monitoring process; None for the baseline

    def unavailable(self):
        """Why this peer cannot run here, or None."""
        return None

    def start(self, workdir, cpu):
        pass

    def ready(self):
        return True

    def finish(self):
        """Stops the monitor; returns {"packets", "bytes", "notes"} it recorded."""
        return {"packets": None, "bytes": None, "notes": ""}

    def kill(self):
        """Cleanup after a failure: stop whatever this peer started."""
        for proc in self._procs():
            stop_process(proc, 2)

    def _procs(self):
        return [p for p in (self.process,) if p is not None]

    @property
    def pid(self):
        return self.process.pid if self.process else None


def start_in_rcv(argv, cpu, stdout, stderr):
    return subprocess.Popen(ns_argv(RCV, argv, cpu), stdout=stdout, stderr=stderr,
                            stdin=subprocess.DEVNULL)


def tcflows_attached(process, err_path):
    """Are tcflows' ingress and egress filters on tb-r? Raises if it exited."""
    if process.poll() is not None:
        raise RuntimeError(f"tcflows exited: {err_path.read_text().strip()}")
    return len(attached_tcflows_ids()) == 2


def packet_socket_open(pid):
    """Does the process tree below pid hold a packet socket (pcap capturing)?"""
    out = run(["cat", "/proc/net/packet"], ns=RCV, check=False).stdout
    inodes = {line.split()[-1] for line in out.splitlines()[1:] if line.strip()}
    for proc in procstat.descendants(pid):
        try:
            links = [os.readlink(f"/proc/{proc}/fd/{fd}") for fd in os.listdir(f"/proc/{proc}/fd")]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            return True
    return False


class Tcflows(Peer):
    name = "tcflows"

    def __init__(self, binary):
        self.binary = binary

    def unavailable(self):
        if not os.access(self.binary, os.X_OK):
            return f"{self.binary} is not built"
        return None

    def start(self, workdir, cpu):
        self.workdir = workdir
        self.out_path = workdir / "tcflows.jsonl"
        self.err_path = workdir / "tcflows.err"
        # A long interval: the one snapshot is the final one, printed at SIGTERM.
        # The database, tcflows' real job (the default is ./tcflows.db), in the run's workdir.
        argv = [self.binary, "record", "-i", RCV_IF, "--format", "json", "--interval", "24h",
                "--db", str(workdir / "tcflows.db")]
        self.process = start_in_rcv(argv, cpu, open(self.out_path, "w"), open(self.err_path, "w"))

    def ready(self):
        return tcflows_attached(self.process, self.err_path)

    def prog_ids(self):
        return attached_tcflows_ids()

    def finish(self):
        status = stop_process(self.process, 60)
        lines = self.out_path.read_text().splitlines()
        if status != 0 or not lines:
            raise RuntimeError(f"tcflows exited with {status} and {len(lines)} snapshots: "
                               f"{self.err_path.read_text().strip()}")
        snapshot = json.loads(lines[-1])
        counters = snapshot.get("counters", {})
        lost = {k: v for k, v in counters.items()
                if v and k in ("untracked_packets", "flow_full", "flow_error", "split_failed",
                               "ringbuf_full", "malformed", "store_dropped",
                               "store_write_errors")}
        # What tcflows recorded: every connection of this interface in its
        # database, written at the stop (the live table keeps the totals of a
        # bounded number of finished 5-tuples only).
        db = sqlite3.connect(f"file:{self.workdir / 'tcflows.db'}?mode=ro", uri=True)
        try:
            packets, nbytes = db.execute(
                "SELECT total(orig_pkts + resp_pkts), total(orig_bytes + resp_bytes) "
                "FROM connections WHERE iface = ?", (RCV_IF,)).fetchone()
        finally:
            db.close()
        return {"packets": int(packets), "bytes": int(nbytes),
                "notes": " ".join(f"{k}={v}" for k, v in sorted(lost.items())),
                "flows": counters.get("flows")}


class Softflowd(Peer):
    name = "softflowd"
    port = 9995

    def unavailable(self):
        missing = [t for t in ("softflowd", "softflowctl") if not shutil.which(t)]
        return f"not installed ({' '.join(missing)})" if missing else None

    def start(self, workdir, cpu):
        self.workdir = workdir
        self.sink_out = workdir / "nfsink.json"
        sink = [sys.executable, "-m", "bench.nfsink", "127.0.0.1", str(self.port),
                str(self.sink_out)]
        self.sink_err = workdir / "nfsink.err"
        env = python_env()
        self.sink = subprocess.Popen(ns_argv(RCV, sink), env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.sink_err, "w"))
        wait_for(lambda: "ready" in self.sink_err.read_text(), 5, "the NetFlow sink")
        self.ctl = workdir / "softflowd.ctl"
        # Defaults otherwise: NetFlow v5, no sampling, 8192 flows, libpcap's buffer.
        argv = ["softflowd", "-d", "-i", RCV_IF, "-n", f"127.0.0.1:{self.port}",
                "-c", str(self.ctl), "-p", str(workdir / "softflowd.pid")]
        self.err_path = workdir / "softflowd.err"
        self.process = start_in_rcv(argv, cpu, subprocess.DEVNULL, open(self.err_path, "w"))

    def ready(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"softflowd exited: {self.err_path.read_text().strip()}")
        return packet_socket_open(self.process.pid)

    def finish(self):
        stats = run(["softflowctl", "-c", self.ctl, "statistics"], ns=RCV, check=False).stdout
        (self.workdir / "softflowd.stats").write_text(stats)
        # `shutdown` expires and exports every flow. (SIGTERM, which the man
        # page says does the same, killed softflowd 1.1.0 -d without exporting.)
        run(["softflowctl", "-c", self.ctl, "shutdown"], ns=RCV)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            stop_process(self.process, 2)
            raise RuntimeError("softflowd did not exit after `softflowctl shutdown`")
        stop_process(self.sink, 10)
        totals = json.loads(self.sink_out.read_text())
        notes = [f"{key}={value}" for key, value in sorted(pcap_counts(stats).items()) if value]
        if totals["missing_flows"] or totals["bad_datagrams"]:
            notes.append(f"export_missing_flows={totals['missing_flows']}")
        if any(totals["sampling_intervals"]):
            notes.append(f"SAMPLED={totals['sampling_intervals']}")
        return {"packets": totals["packets"], "bytes": totals["bytes"], "notes": " ".join(notes),
                "flows": totals["flows"]}

    def _procs(self):
        return [p for p in (self.process, getattr(self, "sink", None)) if p is not None]


def pcap_counts(stats):
    """The processed and dropped packet counts from `softflowctl statistics`."""
    keys = {"Packets processed:": "processed", "Packets received by libpcap:": "pcap_received",
            "Packets dropped by libpcap:": "pcap_dropped"}
    counts = {}
    for line in stats.splitlines():
        for prefix, key in keys.items():
            if line.startswith(prefix):
                counts[key] = int(line[len(prefix):].split()[0])
    return counts


class Pmacctd(Peer):
    name = "pmacctd"

    # Defaults, sampling off, with the print plugin: at SIGINT it writes its
    # whole cache to a CSV file. (Measured on this lab: the memory plugin's
    # query truncates large tables with "Failed during write: Resource
    # temporarily unavailable", and plugin_buffer_size, which CONFIG-KEYS
    # suggests for heavy traffic, lost ~17 % of short-connection packets
    # without a warning; the defaults lost none.)
    CONFIG = """daemonize: false
pcap_interface: {iface}
promisc: false
plugins: print
aggregate: src_host, dst_host, src_port, dst_port, proto
print_output: csv
print_output_file: {csv}
print_output_file_append: true
print_refresh_time: 3600
logfile: {log}
"""

    def unavailable(self):
        return None if shutil.which("pmacctd") else "not installed (pmacctd)"

    def start(self, workdir, cpu):
        self.csv = workdir / "pmacctd.csv"
        self.log = workdir / "pmacctd.log"
        conf = workdir / "pmacctd.conf"
        conf.write_text(self.CONFIG.format(iface=RCV_IF, csv=self.csv, log=self.log))
        self.err_path = workdir / "pmacctd.err"
        self.process = start_in_rcv(["pmacctd", "-f", str(conf)], cpu, subprocess.DEVNULL,
                                    open(self.err_path, "w"))

    def ready(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"pmacctd exited: {self.err_path.read_text().strip()}")
        return packet_socket_open(self.process.pid)

    def finish(self):
        self.process.send_signal(signal.SIGINT)  # the print plugin writes its cache and exits
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            stop_process(self.process, 2)
            raise RuntimeError("pmacctd did not exit after SIGINT")
        with open(self.csv) as f:
            rows = list(csv.DictReader(f))
        log = self.log.read_text() if self.log.exists() else ""
        notes = [line.split("): ", 1)[1] for line in log.splitlines()
                 if "dropped_packets=" in line and "dropped_packets=0" not in line]
        warnings = sum(1 for line in log.splitlines() if "WARN" in line or "ERROR" in line)
        if warnings:
            notes.append(f"log_warnings={warnings}")
        return {"packets": sum(int(r["PACKETS"]) for r in rows),
                "bytes": sum(int(r["BYTES"]) for r in rows), "notes": " ".join(notes),
                "flows": len(rows)}


def all_peers(tcflows_binary):
    return [Peer(), Tcflows(tcflows_binary), Softflowd(), Pmacctd()]


NOOP_SOURCE = """// An empty TC program: its bpf_stats run time is the measurement floor.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
__attribute__((section("tc"), used)) int noop(struct __sk_buff *skb) { return TC_ACT_UNSPEC; }
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"""


class NoopBpf(Peer):
    """An empty program on ingress and egress, for cost runs only.

    bpf_stats times every run with two clock reads; on a VM whose TSC reads
    are slow that alone is tens of ns. The empty program's ns per run is that
    floor, so that tcflows' own cost can be told apart from the measurement.
    """

    name = "bpf-noop"

    def unavailable(self):
        return None if shutil.which("clang") and shutil.which("tc") else "needs clang and tc"

    def start(self, workdir, cpu):
        obj = workdir / "noop.bpf.o"
        src = workdir / "noop.bpf.c"
        src.write_text(NOOP_SOURCE)
        multiarch = run(["gcc", "-print-multiarch"], check=False).stdout.strip() or \
            "x86_64-linux-gnu"
        run(["clang", "-target", "bpf", "-O2", "-idirafter", f"/usr/include/{multiarch}", "-c",
             src, "-o", obj])
        tc = ["tc", "-n", RCV]
        self.created_qdisc = "clsact" not in run(tc + ["qdisc", "show", "dev", RCV_IF]).stdout
        if self.created_qdisc:
            run(tc + ["qdisc", "add", "dev", RCV_IF, "clsact"])
        for hook in ("ingress", "egress"):
            run(tc + ["filter", "add", "dev", RCV_IF, hook, "prio", "1", "handle", "1", "bpf",
                      "da", "obj", obj, "sec", "tc"])
        self.attached = True

    def ready(self):
        return True

    def prog_ids(self):
        out = run(["bpftool", "-j", "net", "show", "dev", RCV_IF], ns=RCV).stdout
        return [h["id"] for s in json.loads(out) for h in s.get("tc", [])
                if h.get("name", "").startswith("noop")]

    def finish(self):
        self.kill()
        return {"packets": None, "bytes": None, "notes": ""}

    def kill(self):
        if not getattr(self, "attached", False):
            return
        for hook in ("ingress", "egress"):
            run(["tc", "-n", RCV, "filter", "del", "dev", RCV_IF, hook, "prio", "1", "handle",
                 "1", "bpf"], check=False)
        if self.created_qdisc:
            run(["tc", "-n", RCV, "qdisc", "del", "dev", RCV_IF, "clsact"], check=False)
        self.attached = False
