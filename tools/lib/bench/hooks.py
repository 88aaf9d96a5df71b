"""tcflows-only figures (exact records, the store, memory, the program's cost),
measured in the lab after the scenarios.

    record     shorttcp for 60 s (quick 3 s) recorded with --jsonl and --db,
               against a capture of tb-r: connections/s, the fraction recorded
               exactly, ring-buffer events per connection, the program's cost
               per run under that churn (bpf_stats), store updates/s, agent
               CPU and RSS
    reuse      the same from 512 client ports: each 5-tuple carries many
               connections back to back
    reuse64k   reuse with --ringbuf-size 64KiB
    store      build/tools/bench_store: rows/s through the real writer, report
               latency on 10 M connections (quick: 200 k), size per million
    flows100k  agent RSS with 100 k live UDP flows
    flows1m    agent RSS and sweep time with 1 M live UDP flows (--max-flows 2097152)
    cost       build/tests/bpf_cost: ns per run through bpf_prog_test_run
    read       tcflows read on a generated capture (2 M frames, quick 500 k)
               against softflowd -r and tshark -z conv,tcp: frames/s, and
               the records' packets and bytes against tshark's; the cost of
               one test-run system call (bpf_cost --per-call), what one call
               a frame would allow

A hook returns Figures; one that fails gives a FAILED figure saying why.
No number is ever filled in: what was not measured says so.
"""

import contextlib
import json
import re
import subprocess
import sys
import time
import traceback
from collections import namedtuple

from tcflows_lab.capture import Tcpdump
from tcflows_lab.proc import stop_process, wait_for

from . import bpfstats, exactness, procstat, readspeed, udpflows
from .agent import Agent
from .lab import RCV, RCV_ADDR, RCV_IF, SND, SND_ADDR, ns_argv, python_env
from .report import align, write_csv
from .scenarios import ShortTcp

# verdict: PASS or MISS against target, "unverifiable", FAILED, or "" (no target).
Figure = namedtuple("Figure", "hook name value unit target verdict detail")


def figure(hook, name, value, unit="", target="", ok=None, detail=""):
    verdict = "" if ok is None or value is None else ("PASS" if ok(value) else "MISS")
    return Figure(hook, name, value, unit, target, verdict, detail)


# ---------------------------------------------------------------- record


REUSE_PORTS = "20000 20511"  # 512 client ports


def record_shorttcp(bench, lab, workdir, ports=None, extra=()):
    """shorttcp recorded with --jsonl and --db while tcpdump captures tb-r;
    `ports`: the client's port range (default: the lab's wide one)."""
    args, seconds = bench.args, 3 if bench.args.quick else 60
    lab.set_offloads(False)
    load = ShortTcp(bench.connload, concurrency=64)
    with contextlib.ExitStack() as stack:
        if ports:
            lab.sysctl("b", f"net.ipv4.ip_local_port_range={ports}")
            stack.callback(lab.sysctl, "b", "net.ipv4.ip_local_port_range=1024 65535")
        load.start_server(workdir, args.cpu_server)
        stack.callback(load.stop_server)
        capture = Tcpdump(RCV, RCV_IF, str(workdir / "shorttcp.pcap"), snaplen=128,
                          buffer_kib=262144, immediate=False)
        stack.callback(capture.kill)
        agent = Agent(bench.tcflows, workdir, args.cpu_monitor,
                      ["--jsonl", str(workdir / "records.jsonl"), *extra])
        stack.callback(agent.kill)
        with bpfstats.StatsEnabled():
            ids = bpfstats.attached_tcflows_ids()
            s0 = bpfstats.prog_stats(ids)
            run = agent.during(lambda: run_load(load, seconds, workdir, args.cpu_client))
            s1 = bpfstats.prog_stats(ids)
        time.sleep(2.0)  # the last FINs and ACKs, then a sweep for their finals
        final = agent.stop()
        tcpdump = capture.stop_counts()
    runs = s1[1] - s0[1]
    run["ns_per_run"] = (s1[0] - s0[0]) / runs if runs else None
    return record_figures(run, final, tcpdump, workdir, load.port)


def record_reuse(bench, lab, workdir):
    return record_shorttcp(bench, lab, workdir, REUSE_PORTS)


def record_reuse64k(bench, lab, workdir):
    return record_shorttcp(bench, lab, workdir, REUSE_PORTS, ["--ringbuf-size", "65536"])


def run_load(load, seconds, workdir, cpu):
    client = load.launch(seconds, workdir, cpu)
    out, err = client.communicate(timeout=seconds + 60)
    (workdir / "connload.out").write_text(out + err)
    if not out.strip():
        raise RuntimeError(f"connload failed (exit {client.returncode}): {err.strip()}")
    return load.result(out)


def record_figures(run, final, tcpdump, workdir, port):
    h, s, before = "record", run["seconds"], run["before"]
    load = run["result"]
    figures = [figure(h, "new TCP connections/s (connload, 64 clients)", load["value"], "/s",
                      ">= 10000", lambda v: v >= 10000,
                      f"{load['load_connections']} completed, {load['load_failed']} failed "
                      f"in {s:.1f} s")]
    capture = exactness.capture_connections(workdir / "shorttcp.pcap", port)
    jsonl = exactness.compare_records(capture,
                                      *exactness.jsonl_finals(workdir / "records.jsonl", port))
    db = exactness.compare_records(capture, *exactness.db_finals(workdir / "tcflows.db", port))
    figures.append(figure(h, "final records/s (--jsonl)", jsonl["records"] / s, "/s"))
    figures += [exact_figure(f"recorded exactly, {what}", result, tcpdump)
                for what, result in (("--jsonl", jsonl), ("--db connections", db))]
    if jsonl["fraction"] == 1 and db["fraction"] == 1:
        (workdir / "shorttcp.pcap").unlink()  # large; kept when something is to be looked at
    return figures + counter_figures(h, before, final, s) + process_figures(h, run)


def exact_figure(name, result, tcpdump):
    dropped = tcpdump.get("dropped by kernel", 0)
    detail = exactness.describe(result) + f"; tcpdump {tcpdump.get('captured')} captured, " \
        f"{dropped} dropped by kernel"
    fig = figure("record", name, result["fraction"], "", "1 (100 %)",
                 lambda v: v == 1 and result["records"] == result["connections"], detail)
    if dropped:
        fig = fig._replace(verdict="unverifiable", detail="the capture dropped packets: " + detail)
    return fig


def counter_figures(h, before, final, seconds):
    """Rates of the agent's counters between the snapshot before the load and
    the final one (after a settle), over the load's seconds."""
    def delta(name):
        return final[name] - before[name] if name in final else None
    conns, bells = delta("connections"), delta("doorbells")
    per_conn = bells / conns if conns else None
    return [
        figure(h, "connections the program started/s", conns / seconds if conns else None, "/s"),
        figure(h, "ring-buffer events per connection", per_conn, "", "<= 1",
               lambda v: v <= 1, f"{bells} doorbells for {conns} connections; "
               f"doorbells lost {final.get('doorbells_lost')}"),
        figure(h, "connections not tracked (flow_full)", final.get("flow_full"), "", "0",
               lambda v: v == 0, f"untracked packets {final.get('untracked_packets')}"),
        figure(h, "database updates written/s while recording", delta("store_written") / seconds
               if delta("store_written") is not None else None, "/s",
               detail="store_written: each a connection upsert and a traffic row; "
               f"store_dropped {final.get('store_dropped')}, "
               f"write errors {final.get('store_write_errors')}"),
    ]


def process_figures(h, run):
    pid_note = "" if run["is_tcflows"] else "; the measured pid is not tcflows itself"
    cost = run.get("ns_per_run")
    return [figure(h, "agent CPU s/s during the load", run["cpu_s_per_s"], "s/s", "<= 0.15",
                   lambda v: v <= 0.15,
                   "user + system of the agent (BPF runs in softirq, not here)" + pid_note),
            figure(h, "agent peak RSS (VmHWM)", run["peak_rss_kib"] / 1024, "MiB"),
            figure(h, "program ns per run during the load (bpf_stats)", cost, "ns",
                   detail="run_time_ns / run_cnt of both programs while connload ran; "
                   "bpf_stats themselves add a little per run")]


# ---------------------------------------------------------------- store


STORE_LINES = {  # name: (pattern in bench_store's output, unit)
    "writer rows/s, new open connections": (r"store, new open connections\s+(\d+) rows/s", "/s"),
    "writer rows/s, checkpoints": (r"store, checkpoints of these connections\s+(\d+) rows/s",
                                   "/s"),
    "bare INSERT rows/s (same SQLite, baseline)": (r"baseline, bare INSERTs[^\d]+(\d+) rows/s",
                                                   "/s"),
    "writer rows/s building the large database": (r"(\d+) rows/s over the whole build", "/s"),
    "database size per million connections": (r"([\d.]+) MiB per million connections", "MiB"),
    "report --since 1h": (r"report --since 1h \(--by flow, table\)\s+wall\s+([\d.]+) ms", "ms"),
    "report --since 1h --by conn --host X": (
        r"report --since 1h --by conn --host X\s+wall\s+([\d.]+) ms", "ms"),
}


def store_bench(bench, lab, workdir):
    """bench_store in workdir/store (it removes the directory at the end)."""
    count = 200_000 if bench.args.quick else 10_000_000
    argv = [bench.bench_store, "--connections", str(count), "--ordered-uids",
            "--dir", str(workdir / "store")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3 * 3600)
    (workdir / "bench_store.out").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"bench_store exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return [store_figure(name, done.stdout, count) for name in STORE_LINES]


def store_figure(name, out, count):
    pattern, unit = STORE_LINES[name]
    found = re.search(pattern, out)
    if not found:
        return Figure("store", name, None, unit, "", "FAILED", "not in bench_store's output")
    value = float(found.group(1))
    if name.startswith("writer rows/s, "):
        return figure("store", name, value, unit, ">= 500000", lambda v: v >= 500_000,
                      "batches of 100000 updates, 2 rows each")
    if unit == "ms":
        on = f"on {count} connections, warm cache, in-process, median of 5"
        if count < 10_000_000:
            return figure("store", name, value, unit, "<= 200 (on 10 M)",
                          detail=on + "; quick mode: no verdict, the target is on 10 M")
        return figure("store", name, value, unit, "<= 200", lambda v: v <= 200, on)
    return figure("store", name, value, unit, detail=f"{count} connections")


# ---------------------------------------------------------------- flows100k


def live_flows(bench, lab, workdir, flows, max_flows, rss_target):
    """`flows` UDP flows (one datagram each, 60 s idle timeout) through tb-r;
    the agent's memory once they are in its table, and its sweep time."""
    env = python_env()
    module = [sys.executable, "-m", "bench.udpflows"]
    lab.set_offloads(False)
    with contextlib.ExitStack() as stack:
        sink_out = workdir / "sink.out"
        sink = subprocess.Popen(ns_argv(RCV, [*module, "sink", RCV_ADDR,
                                              *map(str, udpflows.dst_ports(flows))]),
                                env=env, stdout=open(sink_out, "w"), stderr=subprocess.STDOUT)
        stack.callback(stop_process, sink, 5)
        wait_for(lambda: "ready" in sink_out.read_text(), 10, "the UDP sink")
        agent = Agent(bench.tcflows, workdir, bench.args.cpu_monitor,
                      ["--max-flows", str(max_flows)])
        stack.callback(agent.kill)
        subprocess.run(ns_argv(SND, [*module, "send", SND_ADDR, RCV_ADDR, str(flows)]), env=env,
                       check=True, capture_output=True, timeout=600)
        counters = wait_flows(agent, flows, 60)
        time.sleep(6)  # a checkpoint of them all, in the database, and sweeps in steady state
        counters = agent.counters()
        rss, hwm = procstat.rss_kib(agent.pid), procstat.peak_rss_kib(agent.pid)
        agent.stop()
    return flows_figures(counters, rss, hwm, flows, rss_target)


def wait_flows(agent, want, timeout):
    """The agent's counters once it holds `want` open connections (or at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        counters = agent.counters()
        if counters["open_connections"] >= want or time.monotonic() > deadline:
            return counters
        time.sleep(0.2)


def flows_figures(c, rss, hwm, flows, rss_target):
    h = f"flows{flows // 1000}k" if flows < 1_000_000 else f"flows{flows // 1_000_000}m"
    mb = "MB (1e6 B)"
    return [
        figure(h, "live connections reached", c["open_connections"], "", f">= {flows}",
               lambda v: v >= flows, f"slots in use {c['flows']}, max_flows {c['max_flows']}, "
               f"flow_full {c['flow_full']}, doorbells {c['doorbells']}"),
        figure(h, "agent RSS now (VmRSS)", rss * 1024 / 1e6, mb, f"<= {rss_target}",
               lambda v: v <= rss_target, "the program's table is kernel memory; the agent maps "
               "its index and a window of it"),
        figure(h, "agent peak RSS (VmHWM)", hwm * 1024 / 1e6, mb, f"<= {rss_target}",
               lambda v: v <= rss_target),
        figure(h, "the last sweep of the table", c.get("sweep_us", 0) / 1000, "ms", "<= 1000",
               lambda v: v <= 1000, "a pass over every slot, once a second"),
    ]


def rss_100k_flows(bench, lab, workdir):
    return live_flows(bench, lab, workdir, 100_000, 131_072, 30)


def rss_1m_flows(bench, lab, workdir):
    return live_flows(bench, lab, workdir, 1_000_000, 2_097_152, 250)


# ---------------------------------------------------------------- cost


def program_cost(bench, lab, workdir):
    """bpf_cost: one frame per case through bpf_prog_test_run, mean ns per run."""
    repeat = 100_000 if bench.args.quick else 1_000_000
    done = subprocess.run([bench.bpf_cost, str(repeat)], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"bpf_cost exited {done.returncode}: {done.stderr.strip()}")
    costs = json.loads(done.stdout)
    floor = costs.pop("empty_program", None)
    note = f"known flow, mean of {repeat} runs, harness included" + (
        f"; an empty program measures {floor} ns" if floor is not None else
        "; bpf_cost prints no empty-program floor")
    figures = [figure("cost", f"bpf_prog_test_run ns/run, {case}", ns, "ns", detail=note)
               for case, ns in costs.items()]
    if floor is not None and "tcp4_ack" in costs:
        figures.append(figure("cost", "known-flow packet above an empty program (tcp4_ack)",
                              costs["tcp4_ack"] - floor, "ns", "<= 50", lambda v: v <= 50,
                              f"{costs['tcp4_ack']} ns against {floor} ns"))
    if floor is not None:
        figures.append(figure("cost", "bpf_prog_test_run ns/run, empty program", floor, "ns",
                              detail="the harness alone, same frames (median over cases)"))
    return figures


# ---------------------------------------------------------------- running them


ALL = {"record": record_shorttcp, "reuse": record_reuse, "reuse64k": record_reuse64k,
       "store": store_bench, "flows100k": rss_100k_flows, "flows1m": rss_1m_flows,
       "cost": program_cost, "read": readspeed.read_speed}


def run_all(bench, lab, names):
    figures = []
    for name in names:
        workdir = bench.outdir / "runs" / "hooks" / name
        workdir.mkdir(parents=True)
        bench.log(f"bench: hook {name} ...")
        try:
            figures += ALL[name](bench, lab, workdir)
        except Exception as error:  # one failed hook is reported, the others go on
            (workdir / "error.txt").write_text(traceback.format_exc())
            reason = str(error).replace("\n", " ")[:300]
            figures.append(Figure(name, "(the whole hook)", None, "", "", "FAILED", reason))
            bench.log(f"bench: hook {name}: FAILED: {reason}")
    return figures


def fmt_value(fig):
    """Counts and rates whole, fractions (no unit) to 6 digits, the rest to 0.1."""
    value = fig.value
    if value is None:
        return "-"
    if isinstance(value, int) or value >= 1000:
        return f"{value:.0f}"
    return f"{value:.6f}" if not fig.unit else f"{value:.{3 if value < 1 else 1}f}"


def table(figures):
    rows = [["HOOK", "FIGURE", "VALUE", "UNIT", "TARGET", "VERDICT", "DETAIL"]]
    rows += [[f.hook, f.name, fmt_value(f), f.unit, f.target, f.verdict, f.detail]
             for f in figures]
    return align(rows)


def write(path, figures):
    write_csv(path, [f._asdict() for f in figures])
