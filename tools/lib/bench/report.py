"""Output: the table on stdout, results.csv / summary.csv, a gnuplot chart, targets."""

import csv
import os
import platform
import shutil
import subprocess

from tcflows_lab.proc import run

COMPETITORS = ("softflowd", "pmacctd")


def machine_description(top):
    """The exact machine, kernel and tool versions, as (key, value) pairs."""
    cpuinfo = open("/proc/cpuinfo").read().splitlines()
    model = next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")), "?")
    lscpu = run(["lscpu"], check=False).stdout
    hypervisor = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
                       if l.startswith("Hypervisor vendor")), "none")
    mem_kib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
    commit = run(["git", "-C", top, "describe", "--always", "--dirty"], check=False).stdout.strip()
    versions = run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "iperf3", "softflowd",
                    "pmacct", "libpcap0.8", "bpftool"], check=False).stdout
    versions = versions.strip().replace("\n", ", ")
    return [
        ("cpu", model), ("cpus", str(os.cpu_count())), ("hypervisor", hypervisor),
        ("memory", f"{mem_kib / 1024 / 1024:.1f} GiB"),
        ("kernel", f"{platform.release()} {platform.version()}"),
        ("tcflows", commit), ("tools", versions),
    ]


def fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ratio(row):
    if row["ratio"] is None:
        return "-"
    return f"{row['ratio']:.3f} [{row['ratio_min']:.3f}..{row['ratio_max']:.3f}]"


def fmt_acc(median, worst):
    if median is None:
        return "-"
    text = f"{median:.6f}"
    return text if worst == median else f"{text} (worst {worst:.6f})"


def table(summaries, scenarios):
    """The main table: one row per scenario and peer."""
    header = ["SCENARIO", "PEER", "THROUGHPUT", "RATIO median [min..max]", "CPU s/s", "PEAK RSS",
              "PACKETS rec/ref", "BYTES rec/ref", "NOTES"]
    rows = []
    for scenario in scenarios:
        baseline = next((s for s in summaries if s["scenario"] == scenario.name), None)
        if baseline and baseline["baseline"] is not None:
            rows.append([scenario.name, "none", f"{baseline['baseline']:.3g} {scenario.unit}",
                         "1 (the limit)", "-", "-", "-", "-", scenario.title])
        for s in (s for s in summaries if s["scenario"] == scenario.name):
            rows.append([
                scenario.name, s["peer"],
                f"{s['value']:.3g} {scenario.unit}" if s["value"] is not None else "-",
                fmt_ratio(s), fmt(s["cpu_s_per_s"], 4),
                f"{s['peak_rss_kib'] / 1024:.1f} MiB" if s["peak_rss_kib"] else "-",
                fmt_acc(s["acc_packets"], s["acc_packets_worst"]),
                fmt_acc(s["acc_bytes"], s["acc_bytes_worst"]),
                s["notes"] + (f" ERRORS={s['errors']}" if s["errors"] else ""),
            ])
    return align([header] + rows)


def align(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[-1])
                     for r in rows)


def cost_table(summaries):
    rows = [["SCENARIO", "TCFLOWS", "EMPTY PROGRAM", "DIFFERENCE",
             "ns per program run: bpf_stats run_time_ns / run_cnt after the warm-up, median"]]
    for s in summaries:
        if s["peer"] == "tcflows" and s["cost_runs"]:
            floor = s["floor_ns_per_run"]
            net = s["ns_per_run"] - floor if None not in (s["ns_per_run"], floor) else None
            rows.append([s["scenario"], f"{fmt(s['ns_per_run'], 1)} ns", f"{fmt(floor, 1)} ns",
                         f"{fmt(net, 1)} ns", f"{s['cost_runs']} run(s)"])
    return align(rows) if len(rows) > 1 else ""


def targets(summaries, scenarios):
    """(target, verdict, detail) for every performance target this run can judge."""
    by = {(s["scenario"], s["peer"]): s for s in summaries}
    out = []

    def judge(name, value, ok, detail):
        if value is None:
            out.append((name, "n/a", "not measured"))
        else:
            out.append((name, "PASS" if ok(value) else "MISS", detail))

    for sc in scenarios:
        s = by.get((sc.name, "tcflows"))
        if not s:
            continue
        if sc.name.startswith("tcp"):
            judge(f"{sc.name}: TCP throughput >= 99 % of baseline", s["ratio"],
                  lambda v: v >= 0.99, f"median ratio {fmt(s['ratio'])}")
        if sc.name == "udp64":
            judge("udp64: 64-byte UDP pps >= 97 % of baseline", s["ratio"], lambda v: v >= 0.97,
                  f"median ratio {fmt(s['ratio'])}")
        if sc.name == "shorttcp":
            judge("shorttcp: short-connection throughput >= 95 % of baseline", s["ratio"],
                  lambda v: v >= 0.95, f"median ratio {fmt(s['ratio'])}")
            known = by.get(("udp64", "tcflows"), {}).get("ns_per_run")
            if s["ns_per_run"] is not None and known:
                judge("shorttcp: program cost under churn <= 2x the known-flow cost (udp64)",
                      s["ns_per_run"] / known, lambda v: v <= 2,
                      f"{fmt(s['ns_per_run'], 1)} ns against {fmt(known, 1)} ns per run "
                      "(bpf_stats)")
        if sc.steady and not sc.offloads and s["cost_runs"]:
            judge(f"{sc.name}: <= 60 ns per packet, known flow (bpf_stats)", s["ns_per_run"],
                  lambda v: v <= 60, f"{fmt(s['ns_per_run'], 1)} ns; an empty program measures "
                  f"{fmt(s['floor_ns_per_run'], 1)} ns here")
        if s["ref_runs"]:
            judge(f"{sc.name}: packets and bytes exact (its database)", s["exact_runs"],
                  lambda v: v == s["ref_runs"], f"exact in {s['exact_runs']}/{s['ref_runs']} runs")
        for other in COMPETITORS:
            o = by.get((sc.name, other))
            if o and o["ratio"] is not None and s["ratio"] is not None:
                judge(f"{sc.name}: ahead of {other} on throughput", s["ratio"],
                      lambda v: v >= o["ratio"], f"{fmt(s['ratio'])} vs {fmt(o['ratio'])}")
            if o and o["acc_packets_worst"] is not None and s["acc_packets_worst"] is not None:
                judge(f"{sc.name}: ahead of {other} on accuracy (packets, worst run)",
                      s["acc_packets_worst"],
                      lambda v: abs(v - 1) <= abs(o["acc_packets_worst"] - 1),
                      f"{fmt(s['acc_packets_worst'], 6)} vs {fmt(o['acc_packets_worst'], 6)}")
    return out


def write_csv(path, rows):
    keys = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def chart(outdir, summaries, scenarios, machine):
    """chart.png: throughput ratio and monitor CPU per scenario and peer (gnuplot)."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed: no chart"
    peers = [p for p in ("tcflows", *COMPETITORS) if any(s["peer"] == p for s in summaries)]
    by = {(s["scenario"], s["peer"]): s for s in summaries}
    lines = ["# scenario " + " ".join(f"{p} {p}_min {p}_max {p}_cpu" for p in peers)]
    for sc in scenarios:
        cells = []
        for p in peers:
            s = by.get((sc.name, p), {})
            cells += [s.get("ratio"), s.get("ratio_min"), s.get("ratio_max"), s.get("cpu_s_per_s")]
        lines.append(sc.name + " " + " ".join("NaN" if c is None else f"{c:.6f}" for c in cells))
    (outdir / "chart.dat").write_text("\n".join(lines) + "\n")
    top = max([1.1] + [s["ratio_max"] + 0.05 for s in summaries if s.get("ratio_max")])
    title = dict(machine)["cpu"] + ", " + dict(machine)["cpus"] + " CPUs, Linux " + \
        platform.release()
    ratio_plot = ", ".join(f"'chart.dat' using {2 + 4 * i}:{3 + 4 * i}:{4 + 4 * i}"
                           f"{':xtic(1)' if i == 0 else ''} title '{p}'"
                           for i, p in enumerate(peers))
    cpu_plot = ", ".join(f"'chart.dat' using {5 + 4 * i}{':xtic(1)' if i == 0 else ''} "
                         f"title '{p}'" for i, p in enumerate(peers))
    script = f"""set terminal pngcairo size 1100,800 font ',10'
set output 'chart.png'
set datafile missing 'NaN'
set multiplot layout 2,1 title "tcflows vs softflowd vs pmacctd on a veth — {title}"
set style fill solid 0.8 border -1
set grid ytics
set key outside right
set title 'Throughput with the monitor attached / without (median, min..max)'
set style data histogram
set style histogram errorbars gap 1.5 lw 1
set yrange [0:{top:.2f}]
set arrow 1 from graph 0, first 0.99 to graph 1, first 0.99 nohead dt 2
plot {ratio_plot}
unset arrow 1
set title 'CPU seconds per second of the monitoring process (user space; BPF runs in softirq)'
set style histogram clustered gap 1.5
set yrange [0:*]
plot {cpu_plot}
unset multiplot
"""
    (outdir / "chart.gp").write_text(script)
    done = subprocess.run(["gnuplot", "chart.gp"], cwd=outdir, capture_output=True, text=True)
    return "" if done.returncode == 0 else f"gnuplot failed: {done.stderr.strip()}"
