"""Summaries of repeated measurements: median and spread, per scenario and peer."""

import statistics


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else (None, None)


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def pairs(runs, scenario, peer):
    """(baseline run, peer run) pairs of one scenario, by repetition."""
    by_rep = {}
    for run in runs:
        if run["scenario"] == scenario and run.get("pair_of") == peer and not run.get("error"):
            by_rep.setdefault(run["rep"], {})[run["peer"]] = run
    return [(r["none"], r[peer]) for _, r in sorted(by_rep.items()) if "none" in r and peer in r]


def summarise(runs, scenario, peer):
    """One summary row; None where nothing was measured."""
    matched = pairs(runs, scenario.name, peer)
    measured = [p for _, p in matched]
    ratios = [ratio(p["value"], b["value"]) for b, p in matched]
    lo, hi = spread(ratios)
    acc_pkts = [ratio(p.get("rec_packets"), p.get("ref_packets")) for p in measured]
    acc_bytes = [ratio(p.get("rec_bytes"), p.get("ref_ip_bytes")) for p in measured]
    with_ref = [p for p in measured if p.get("ref_packets") is not None]
    exact = sum(1 for p in with_ref if p.get("rec_packets") == p.get("ref_packets")
                and p.get("rec_bytes") == p.get("ref_ip_bytes"))
    costs = cost_runs(runs, scenario.name, peer)
    floor = median([c.get("ns_per_run") for c in cost_runs(runs, scenario.name, "bpf-noop")])
    return {
        "scenario": scenario.name, "peer": peer, "unit": scenario.unit, "pairs": len(matched),
        "baseline": median([b["value"] for b, _ in matched]),
        "value": median([p["value"] for p in measured]),
        "ratio": median(ratios), "ratio_min": lo, "ratio_max": hi,
        "cpu_s_per_s": median([p.get("cpu_s_per_s") for p in measured]),
        "peak_rss_kib": max([p.get("peak_rss_kib") or 0 for p in measured], default=None),
        "acc_packets": median(acc_pkts), "acc_packets_worst": worst(acc_pkts),
        "acc_bytes": median(acc_bytes), "acc_bytes_worst": worst(acc_bytes),
        "ref_runs": len(with_ref), "exact_runs": exact,
        "ns_per_run": median([c.get("ns_per_run") for c in costs]),
        "cost_runs": len(costs), "floor_ns_per_run": floor,
        "notes": sum_notes([p.get("notes", "") for p in measured]),
        "errors": len([r for r in runs if r["scenario"] == scenario.name and r["peer"] == peer
                       and r.get("error")]),
    }


def worst(accuracies):
    """The accuracy farthest from 1."""
    values = [a for a in accuracies if a is not None]
    return max(values, key=lambda a: abs(a - 1)) if values else None


def cost_runs(runs, scenario, peer):
    return [r for r in runs if r["scenario"] == scenario and r["peer"] == peer
            and r.get("kind") == "cost" and not r.get("error")]


def sum_notes(notes):
    """'key=N' notes of several runs as one, numbers summed over the runs."""
    sums, other, runs = {}, [], 0
    for note in notes:
        runs += 1
        for token in note.split():
            key, _, value = token.partition("=")
            if value.isdigit():
                sums[key] = sums.get(key, 0) + int(value)
            elif token not in other:
                other.append(token)
    parts = [f"{k}={v}" for k, v in sums.items()] + other
    if not parts:
        return ""
    return " ".join(parts) + (f" (sums over {runs} runs)" if sums and runs > 1 else "")
