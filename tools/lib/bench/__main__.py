"""tools/bench: tcflows against no monitor, softflowd and pmacctd, on one veth.

Every scenario runs every peer in interleaved pairs (baseline, peer) so that
drift of the machine hits both sides of a ratio alike; the order inside a
pair alternates between repetitions. tcflows gets one more run per
repetition with BPF run-time statistics on (they cost time per packet, so
they are never on during a ratio run).
"""

import argparse
import datetime
import json
import os
import pathlib
import signal
import sys
import time
import traceback

from tcflows_lab.proc import run_cleanups, wait_for

from . import bpfstats, hooks, procstat, report, stats
from .lab import NICE, counter_delta, make_lab
from .peers import NoopBpf, all_peers
from .scenarios import all_scenarios

WARMUP_S = 1.0  # bpf_stats: the known-flow window starts after this


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tools/bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 2 s per run, 1 repetition")
    p.add_argument("--seconds", type=int, help="load time per run (default 10, quick 2)")
    p.add_argument("--reps", type=int, help="repetitions (default 5, quick 1)")
    p.add_argument("--scenarios", help="comma-separated subset, e.g. tcp1,udp64")
    p.add_argument("--peers", help="comma-separated subset of tcflows,softflowd,pmacctd")
    p.add_argument("--cpus", help="CPUs for client,server,monitor (default 1,0,0; 1,0,2 with 3+)")
    p.add_argument("--hooks", default=",".join(hooks.ALL),
                   help="comma-separated tcflows-only measurements after the scenarios, or "
                   "none (default: all of " + ",".join(hooks.ALL) + ")")
    p.add_argument("--build", default="build", help="meson build directory")
    p.add_argument("--out", default="bench-results", help="results directory")
    args = p.parse_args(argv)
    args.seconds = args.seconds or (2 if args.quick else 10)
    args.reps = args.reps or (1 if args.quick else 5)
    args.settle = 0.5 if args.quick else 1.0
    args.hooks = [h for h in args.hooks.split(",") if h and h != "none"]
    unknown = set(args.hooks) - set(hooks.ALL)
    if unknown:
        p.error(f"--hooks: no such hook: {', '.join(sorted(unknown))}")
    default_cpus = "1,0,2" if (os.cpu_count() or 1) >= 3 else "1,0,0"
    args.cpu_client, args.cpu_server, args.cpu_monitor = (
        int(c) for c in (args.cpus or default_cpus).split(","))
    return args


class Bench:
    def __init__(self, args, outdir):
        self.args, self.outdir, self.runs = args, outdir, []
        build = pathlib.Path(args.build).resolve()
        self.tcflows = str(build / "src" / "tcflows")
        self.connload = str(build / "tools" / "connload")
        self.bench_store = str(build / "tools" / "bench_store")
        self.bpf_cost = str(build / "tests" / "bpf_cost")
        self.figures = []
        self.peers = [p for p in all_peers(self.tcflows)
                      if p.name == "none" or not args.peers or p.name in args.peers.split(",")]
        self.noop = NoopBpf()
        self.scenarios = [s for s in all_scenarios(self.connload, args.quick)
                          if not args.scenarios or s.name in args.scenarios.split(",")]

    def stop_all(self):
        for peer in self.peers + [self.noop]:
            peer.kill()
        for scenario in self.scenarios:
            scenario.stop_server()

    def log(self, text):
        print(text, file=sys.stderr, flush=True)

    def run(self, lab):
        self.lab = lab
        active = []
        for peer in self.peers:
            reason = peer.unavailable()
            if reason:
                self.log(f"bench: {peer.name}: not available: {reason}; skipped")
            else:
                active.append(peer)
        for scenario in self.scenarios:
            reason = scenario.unavailable()
            if reason:
                self.log(f"bench: {scenario.name}: not available: {reason}; skipped")
                continue
            self.run_scenario(lab, scenario, active)
        self.figures = hooks.run_all(self, lab, self.args.hooks)

    def run_scenario(self, lab, scenario, peers):
        lab.set_offloads(scenario.offloads)
        workdir = self.outdir / "runs" / scenario.name
        workdir.mkdir(parents=True)
        scenario.start_server(workdir, self.args.cpu_server)
        try:
            for rep in range(self.args.reps):
                for peer in peers[1:]:
                    order = [peers[0], peer] if rep % 2 == 0 else [peer, peers[0]]
                    for p in order:
                        self.measure(scenario, p, rep, pair_of=peer.name)
                tcflows = next((p for p in peers if p.name == "tcflows"), None)
                if tcflows:
                    self.measure(scenario, tcflows, rep, kind="cost")
                    if not self.noop.unavailable():
                        self.measure(scenario, self.noop, rep, kind="cost")
        finally:
            scenario.stop_server()

    def measure(self, scenario, peer, rep, pair_of=None, kind="ratio"):
        tag = f"{scenario.name}-{peer.name}-{rep}" + (f"-for-{pair_of}" if peer.name == "none"
                                                      else f"-{kind}")
        workdir = self.outdir / "runs" / scenario.name / tag
        workdir.mkdir()
        row = {"scenario": scenario.name, "peer": peer.name, "rep": rep, "kind": kind,
               "pair_of": pair_of, "unit": scenario.unit, "offloads": scenario.offloads,
               "loadavg_1m": os.getloadavg()[0], "bpf_stats_sysctl": bpfstats.sysctl_value()}
        self.log(f"bench: {tag} ...")
        try:
            row.update(self.measure_once(scenario, peer, workdir, kind == "cost"))
        except Exception as error:  # one failed run is reported, the rest go on
            peer.kill()
            row["error"] = str(error).replace("\n", " ")[:300]
            self.log(f"bench: {tag}: FAILED: {row['error']}")
            (workdir / "error.txt").write_text(traceback.format_exc())
        if peer.name == "tcflows" and kind == "ratio" and row["bpf_stats_sysctl"]:
            row["notes"] = (row.get("notes", "") + " bpf_stats_on_during_ratio_run").strip()
        self.runs.append(row)
        self.log(f"bench: {tag}: " + ", ".join(f"{k}={v}" for k, v in row.items()
                                              if k in ("value", "ref_packets", "rec_packets",
                                                       "cpu_s_per_s", "ns_per_run", "notes")))

    def measure_once(self, scenario, peer, workdir, cost):
        args = self.args
        peer.start(workdir, args.cpu_monitor)
        wait_for(peer.ready, 15, f"{peer.name} to attach")
        before = self.lab.link_counters()
        cpu0 = procstat.cpu_seconds(peer.pid) if peer.pid else None
        t0 = time.monotonic()
        row = {}
        if cost:
            with bpfstats.StatsEnabled():
                ids = peer.prog_ids()
                client = scenario.launch(args.seconds, workdir, args.cpu_client)
                time.sleep(WARMUP_S + (0 if args.quick else 1))  # + iperf3's omitted second
                s0 = bpfstats.prog_stats(ids)
                out, err = client.communicate(timeout=args.seconds + 60)
                s1 = bpfstats.prog_stats(ids)
            runs = s1[1] - s0[1]
            row.update(ns_per_run=(s1[0] - s0[0]) / runs if runs else None, prog_runs=runs,
                       xlated_insns=bpfstats.xlated_insns(ids[0]))
        else:
            client = scenario.launch(args.seconds, workdir, args.cpu_client)
            out, err = client.communicate(timeout=args.seconds + 60)
        elapsed = time.monotonic() - t0
        if peer.pid:
            row["cpu_s_per_s"] = (procstat.cpu_seconds(peer.pid) - cpu0) / elapsed
            row["peak_rss_kib"] = procstat.peak_rss_kib(peer.pid)
        (workdir / "client.out").write_text(out)
        (workdir / "client.err").write_text(err)
        if not out.strip():
            raise RuntimeError(f"the load client failed (exit {client.returncode}): {err.strip()}")
        row.update(scenario.result(out))
        time.sleep(args.settle)  # the last ACKs and FINs
        ref = counter_delta(before, self.lab.link_counters())
        recorded = peer.finish()
        row.update(ref_packets=ref["packets"], ref_ip_bytes=ref["ip_bytes"],
                   ref_tx_dropped=ref["dropped"], rec_packets=recorded["packets"],
                   rec_bytes=recorded["bytes"], rec_flows=recorded.get("flows"),
                   notes=recorded["notes"])
        if ref["dropped"]:
            row["notes"] = (row["notes"] + f" veth_tx_dropped={ref['dropped']}").strip()
        if scenario.offloads:  # veth counts GSO super-packets: no wire reference
            row.update(ref_packets=None, ref_ip_bytes=None)
        return row


def print_report(bench, machine, started):
    summaries = [stats.summarise(bench.runs, sc, p.name) for sc in bench.scenarios
                 for p in bench.peers if p.name != "none"]
    summaries = [s for s in summaries if s["pairs"] or s["errors"] or s["cost_runs"]]
    outdir = bench.outdir
    report.write_csv(outdir / "results.csv", bench.runs)
    report.write_csv(outdir / "summary.csv", summaries)
    lines = [f"tcflows benchmark {started:%Y-%m-%d %H:%M:%S} — "
             f"{'quick' if bench.args.quick else 'full'} mode, {bench.args.seconds} s per run, "
             f"{bench.args.reps} repetition(s), interleaved pairs (baseline, peer)"]
    lines += [f"  {k}: {v}" for k, v in machine]
    lines.append(f"  pinning: client CPU {bench.args.cpu_client}, server CPU "
                 f"{bench.args.cpu_server}, monitor CPU {bench.args.cpu_monitor} (taskset), all "
                 f"at nice {NICE}")
    loads = [r["loadavg_1m"] for r in bench.runs]
    if loads:
        lines.append(f"  load average (1 min) during runs: {min(loads):.2f}..{max(loads):.2f} "
                     f"on {os.cpu_count()} CPUs — other work on the machine makes numbers "
                     f"provisional")
    lines += ["", report.table(summaries, bench.scenarios), "", report.cost_table(summaries), ""]
    lines.append("Reference: packets/bytes = tb-r interface counters during the run (offloads "
                 "off: one skb = one wire packet; IP bytes = bytes - 14 x packets).")
    lines += ["", "TARGETS"]
    lines += [f"  {verdict:4}  {name}: {detail}"
              for name, verdict, detail in report.targets(summaries, bench.scenarios)]
    if bench.figures:
        hooks.write(outdir / "hooks.csv", bench.figures)
        lines += ["", "tcflows-only figures (hooks.py: records, store, memory, cost)",
                  hooks.table(bench.figures)]
    chart_error = (report.chart(outdir, summaries, bench.scenarios, machine) if summaries
                   else "no scenario ran: no chart")
    lines += ["", f"results: {outdir}/results.csv (every run), summary.csv, hooks.csv, "
              f"{'chart.png' if not chart_error else chart_error}"]
    text = "\n".join(lines)
    (outdir / "table.txt").write_text(text + "\n")
    print(text)


def interrupt(*_):
    """SIGTERM unwinds like Ctrl-C, so the lab and every process are cleaned up."""
    raise KeyboardInterrupt()


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("tools/bench: needs root (namespaces, TC, bpf_stats); run it with sudo")
    top = pathlib.Path(__file__).resolve().parents[3]
    started = datetime.datetime.now()
    outdir = pathlib.Path(args.out).resolve() / started.strftime("%Y%m%d-%H%M%S")
    outdir.mkdir(parents=True)
    bench = Bench(args, outdir)
    machine = report.machine_description(top)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with make_lab() as lab:
            try:
                lab.link_up()
                bench.run(lab)
            finally:  # before the lab goes: nothing of ours outlives it
                bench.stop_all()
                run_cleanups()
    except KeyboardInterrupt:
        bench.log("bench: interrupted; reporting what was measured")
    (outdir / "runs.json").write_text(json.dumps(bench.runs, indent=1))
    print_report(bench, machine, started)


if __name__ == "__main__":
    main(sys.argv[1:])
