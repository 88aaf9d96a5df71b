"""The `read` hook: how fast a capture file is read, tcflows against softflowd
and tshark on the same generated file, and tcflows' counts against tshark's.

    tcflows read --no-db --jsonl FILE.jsonl FILE
    tcflows read --db FILE.db FILE
    softflowd -6 -d -r FILE -n 127.0.0.1:PORT     (a socket here that reads nothing)
    tshark -q -z conv,tcp -r FILE

Each is timed REPS times (wall clock; the figure is the median) and gives
frames/s. The check: every direction of every TCP and UDP conversation of
`tshark -z conv,tcp` and `-z conv,udp` (one per 5-tuple: the generator uses
each once) has the same packets in tcflows' records, JSONL and database
alike, and the same IP bytes (tshark's frame lengths less 14 a frame: the
conv tables print kB); a difference is a FAILED figure and a loud line.
"""

import ipaddress
import json
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict

from tcflows_lab.db import Db
from tcflows_lab.tcflows import iter_jsonl

from . import gencapture

TARGET = 1_000_000  # frames/s
ETH = 14
CONV = re.compile(r"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+) \d+ \w+\s+(\d+) ")


def timed(argv, out_path):
    """(wall-clock seconds, CPU seconds: user + system) `argv` takes; its
    output kept in out_path."""
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    with open(out_path, "w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
    seconds, after = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: see {out_path}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def addr(text):
    return ipaddress.ip_address(text)


def tshark_packets(path, workdir):
    """{(proto, (addr, port), (addr, port)): packets one way} from tshark's
    conv tables ("->" counts the frames from the first endpoint)."""
    convs = {}
    for proto in ("tcp", "udp"):
        out = workdir / f"conv-{proto}.txt"
        timed(["tshark", "-q", "-z", f"conv,{proto}", "-r", str(path)], out)
        for line in out.read_text().splitlines():
            m = CONV.match(line)
            if m:
                a, b = (addr(m.group(1)), int(m.group(2))), (addr(m.group(3)), int(m.group(4)))
                convs[(proto.upper(), b, a)], convs[(proto.upper(), a, b)] = \
                    int(m.group(5)), int(m.group(6))
    return convs


def tshark_bytes(path, workdir):
    """{the same key: [packets, IP bytes]} from every frame's fields: the conv
    tables print bytes in kB."""
    fields = ["ip.src", "ipv6.src", "tcp.srcport", "udp.srcport", "ip.dst", "ipv6.dst",
              "tcp.dstport", "udp.dstport", "frame.len"]
    out = workdir / "fields.txt"
    timed(["tshark", "-r", str(path), "-T", "fields", "-E", "separator=,",
           *[arg for f in fields for arg in ("-e", f)]], out)
    raw = defaultdict(lambda: [0, 0])
    for line in out.read_text().splitlines():
        f = line.split(",")
        if len(f) == len(fields):
            d = raw[tuple(f[:8])]
            d[0] += 1
            d[1] += int(f[8]) - ETH
    dirs = {}
    for (s4, s6, st, su, d4, d6, dt, du), counts in raw.items():
        proto = "TCP" if st else "UDP"
        dirs[(proto, (addr(s4 or s6), int(st or su)), (addr(d4 or d6), int(dt or du)))] = counts
    out.unlink()
    return dirs


def tshark_reference(path, workdir):
    """Packets from the conv tables, IP bytes from the frames; both tshark
    views must agree on the packets."""
    packets, counted = tshark_packets(path, workdir), tshark_bytes(path, workdir)
    if {k: v[0] for k, v in counted.items()} != {k: n for k, n in packets.items() if n}:
        raise RuntimeError("tshark's conv tables and its frames disagree on packets")
    return {k: (n, counted[k][1]) for k, n in packets.items() if n}


def tcflows_directions(records):
    """The same key from tcflows' final records (summed per 5-tuple)."""
    dirs = defaultdict(lambda: [0, 0])
    for r in records:
        src, dst = (addr(r["src_addr"]), r["src_port"]), (addr(r["dst_addr"]), r["dst_port"])
        for a, b, pkts, nbytes in ((src, dst, r["orig_pkts"], r["orig_bytes"]),
                                   (dst, src, r["resp_pkts"], r["resp_bytes"])):
            d = dirs[(r["proto"], a, b)]
            d[0] += pkts
            d[1] += nbytes
    return {k: tuple(v) for k, v in dirs.items() if v[0]}


def differences(reference, measured):
    keys = set(reference) | set(measured)
    return sorted((str(k), reference.get(k), measured.get(k)) for k in keys
                  if reference.get(k) != measured.get(k))


def count_figure(figure, what, reference, measured, workdir):
    diff = differences(reference, measured)
    detail = (f"{len(reference)} directions, {sum(p for p, _ in reference.values())} packets "
              f"(tshark's conv tables), {sum(b for _, b in reference.values())} IP bytes")
    if not diff:
        return figure("read", f"directions equal to tshark's conv, {what}", 1.0, "", "1",
                      lambda v: v == 1, detail)
    (workdir / f"diff-{what}.txt").write_text("\n".join(map(str, diff)) + "\n")
    print(f"bench: read: COUNTS DIFFER from tshark's ({what}): {len(diff)} directions, "
          f"first {diff[0]}", file=sys.stderr, flush=True)
    fig = figure("read", f"directions equal to tshark's conv, {what}",
                 1 - len(diff) / max(1, len(reference)), "", "1", lambda v: v == 1)
    return fig._replace(verdict="FAILED", detail=f"{len(diff)} directions differ (see "
                        f"diff-{what}.txt): {diff[0]}; " + detail)


def outputs(argv):
    """The files a tcflows run writes: its database, its JSONL (which
    --jsonl appends to)."""
    if "--db" in argv:
        return ["read.db", "read.db-wal", "read.db-shm"]
    return ["records.jsonl"] if "--jsonl" in argv else []


def run_tools(bench, path, workdir, reps):
    """{tool: [(wall seconds, CPU seconds), ...]} for every tool timed on `path`."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # NetFlow goes here, unread
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    argv = {
        "tcflows read --no-db": [bench.tcflows, "read", "--no-db", "--jsonl",
                                 str(workdir / "records.jsonl"), str(path)],
        "tcflows read --db": [bench.tcflows, "read", "--db", str(workdir / "read.db"),
                              str(path)],
        "softflowd -r": ["softflowd", "-6", "-d", "-r", str(path), "-n", f"127.0.0.1:{port}"],
        "tshark -z conv,tcp": ["tshark", "-q", "-z", "conv,tcp", "-r", str(path)],
    }
    times = defaultdict(list)
    with sink:
        for rep in range(reps):
            for i, (tool, args) in enumerate(argv.items()):
                for name in outputs(args):  # each run writes them anew
                    (workdir / name).unlink(missing_ok=True)
                times[tool].append(timed(args, workdir / f"{tool.split()[0]}-{i}-{rep}.out"))
                bench.log(f"bench: read: {tool}: {times[tool][-1][0]:.2f} s, "
                          f"{times[tool][-1][1]:.2f} s CPU")
    return times


def syscall_floor(bench, figure):
    """bpf_cost --per-call: ns per test-run system call, the real program on
    a known flow and an empty one; the frames/s one call a frame would allow
    (tcflows read makes one for a batch of frames)."""
    calls = 100_000 if bench.args.quick else 1_000_000
    done = subprocess.run([bench.bpf_cost, "--per-call", str(calls)], capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"bpf_cost exited {done.returncode}: {done.stderr.strip()}")
    costs = json.loads(done.stdout)
    note = f"wall clock per bpf_prog_test_run_opts call of one run, {calls} calls"
    return [figure("read", f"one test run a frame: ns per call, {case}", costs[case], "ns",
                   detail=note + f"; one a frame: at most {1e9 / costs[case]:.0f} frames/s")
            for case in ("tcp4_ack", "udp4_64", "empty_program")]


def read_speed(bench, lab, workdir):
    from .hooks import figure  # hooks imports this module
    frames = 500_000 if bench.args.quick else 2_000_000
    reps = 1 if bench.args.quick else 3
    path = workdir / "generated.pcap"
    frames, conns = gencapture.generate(path, frames)
    made = f"{frames} frames, {conns} connections (gencapture)"
    times = run_tools(bench, path, workdir, reps)
    rates = {tool: frames / statistics.median(w for w, _ in t) for tool, t in times.items()}
    figures = []
    for tool, rate in rates.items():
        walls = [w for w, _ in times[tool]]
        spread = "..".join(f"{frames / s:.0f}" for s in (max(walls), min(walls)))
        cpu = statistics.median(c for _, c in times[tool])
        fig = figure("read", f"frames/s, {tool}", rate, "/s", detail=f"{made}; median of "
                     f"{reps}, wall clock [{spread}]; CPU {cpu:.2f} s, "
                     f"{frames / cpu:.0f} frames per CPU second")
        if tool.startswith("tcflows"):
            fig = figure("read", f"frames/s, {tool}", rate, "/s", f">= {TARGET}",
                         lambda v: v >= TARGET, fig.detail)
        figures.append(fig)
    fast = rates["tcflows read --no-db"]
    figures += [figure("read", f"tcflows read --no-db / {tool}", fast / rates[tool], "x")
                for tool in ("softflowd -r", "tshark -z conv,tcp")]
    reference = tshark_reference(path, workdir)
    finals = [r for r in iter_jsonl(workdir / "records.jsonl") if not r["checkpoint"]]
    figures.append(count_figure(figure, "--jsonl", reference, tcflows_directions(finals),
                                workdir))
    rows = Db(str(workdir / "read.db")).query("SELECT * FROM connections")
    figures.append(count_figure(figure, "--db", reference, tcflows_directions(rows), workdir))
    figures += syscall_floor(bench, figure)
    if all(f.verdict != "FAILED" for f in figures):
        path.unlink()  # large; kept when something is to be looked at
    return figures
