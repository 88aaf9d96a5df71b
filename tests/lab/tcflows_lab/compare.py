"""tcflows' numbers against the reference: flow directions of a snapshot
against the capture's (compare_flows), and connection records (JSONL
objects or database rows, as dicts) against the capture's connections.

A record and a capture connection stand for each other when they have the
same two endpoints (ICMP: the same two addresses and the originator's type
and code) and the same place in time among those: pair() groups both by
their endpoints and pairs each group in order of start where it has as many
records as connections (a reused 5-tuple is several connections).
"""

from collections import namedtuple

from .proc import Failure, check
from .tshark import Counts, norm_addr

SHOW = 15  # problem lines printed at most
ICMP_ECHO_REQUEST = {"ICMP": 8, "ICMPv6": 128}
# The fields of a record that pairing and comparing read.
RECORD_FIELDS = ("uid", "proto", "src_addr", "src_port", "dst_addr", "dst_port", "start_ns",
                 "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes")


def describe_key(k):
    if k.proto in ICMP_ECHO_REQUEST:
        what = f"echo id {k.sport}" if k.sport == k.dport else \
            f"type {k.sport >> 8} code {k.sport & 0xff}"
        return f"{k.proto} {k.src} -> {k.dst} {what}"
    if k.sport or k.dport:
        return f"{k.proto} {k.src}:{k.sport} -> {k.dst}:{k.dport}"
    return f"{k.proto} {k.src} -> {k.dst}"


# ---------------------------------------------------------------- flow directions


def compare_flows(reference, measured, ref_name="capture", name="tcflows", max_rows=30):
    """Prints the per-direction comparison; raises Failure on any difference."""
    keys = sorted(set(reference) | set(measured), key=lambda k: (k.proto, str(k)))
    bad = []
    for k in keys:
        r, m = reference.get(k), measured.get(k)
        if r != m:
            bad.append((k, r, m))
    total_pkts = sum(c.packets for c in reference.values())
    total_bytes = sum(c.bytes for c in reference.values())
    print(f"  {len(keys)} flow directions, {ref_name}: {total_pkts} packets "
          f"{total_bytes} bytes")
    if not bad:
        for k in keys[:max_rows]:
            r = reference[k]
            print(f"    equal  {describe_key(k):60} {r.packets:>8} pkts {r.bytes:>11} B")
        if len(keys) > max_rows:
            print(f"    ... and {len(keys) - max_rows} more, all equal")
        return
    print(f"  {len(bad)} of {len(keys)} flow directions differ "
          f"({ref_name} vs {name}, packets/bytes):")
    for k, r, m in bad[:max_rows]:
        show = lambda c: "absent" if c is None else f"{c.packets}/{c.bytes}"
        print(f"    DIFF   {describe_key(k):60} {ref_name} {show(r):>18}  {name} {show(m):>18}")
    if len(bad) > max_rows:
        print(f"    ... and {len(bad) - max_rows} more")
    raise Failure(f"{len(bad)} flow directions differ from the {ref_name}")


# ---------------------------------------------------------------- records


def record_ports(key):
    """The ports a record of the capture connection with this key shows:
    transport ports; for ICMP Zeek's (type, code) of the originator's message."""
    if key.proto in ICMP_ECHO_REQUEST:
        if key.sport == key.dport:  # echo (both "ports" are the identifier)
            return ICMP_ECHO_REQUEST[key.proto], 0
        return key.sport >> 8, key.sport & 0xFF
    return key.sport, key.dport


def rec_counts(rec, side):
    return Counts(rec[f"{side}_pkts"], rec[f"{side}_bytes"])


def counts_text(c):
    return f"{c.packets}/{c.bytes}"


# A connection as both sides see it: match groups connections that can only
# be told apart by time (a reused 5-tuple); ends maps each endpoint to what
# it sent.
View = namedtuple("View", "match start_ns ends what")


def capture_view(conn):
    k = conn.key
    sport, dport = record_ports(k)
    if k.proto in ICMP_ECHO_REQUEST:  # records show no identifier
        match = (k.proto, frozenset({k.src, k.dst}), (sport, dport))
        ends = {k.src: conn.orig, k.dst: conn.resp}
    else:
        match = (k.proto, frozenset({(k.src, k.sport), (k.dst, k.dport)}))
        ends = {(k.src, k.sport): conn.orig, (k.dst, k.dport): conn.resp}
    return View(match, conn.first_ns, ends, describe_key(k))


def record_view(r):
    src, dst = norm_addr(r["src_addr"]), norm_addr(r["dst_addr"])
    orig, resp = rec_counts(r, "orig"), rec_counts(r, "resp")
    if r["proto"] in ICMP_ECHO_REQUEST:
        match = (r["proto"], frozenset({src, dst}), (r["src_port"], r["dst_port"]))
        ends = {src: orig, dst: resp}
    else:
        a, b = (src, r["src_port"]), (dst, r["dst_port"])
        match = (r["proto"], frozenset({a, b}))
        ends = {a: orig, b: resp}
    what = f"{r['proto']} {src}:{r['src_port']} -> {dst}:{r['dst_port']} uid {r['uid']}"
    return View(match, r["start_ns"], ends, what)


def pair(conns, records):
    """Capture connections and the records that stand for them: (pairs of
    (connection, record), groups of (connections, records) that differ in
    number), each in order of start."""
    groups = {}
    for conn in conns:
        groups.setdefault(capture_view(conn).match, ([], []))[0].append(conn)
    for rec in records:
        groups.setdefault(record_view(rec).match, ([], []))[1].append(rec)
    pairs, unequal = [], []
    for caps, recs in groups.values():
        caps.sort(key=lambda c: c.first_ns)
        recs.sort(key=lambda r: r["start_ns"])
        if len(caps) == len(recs):
            pairs += zip(caps, recs)
        else:
            unequal.append((caps, recs))
    return pairs, unequal


def differences(conn, rec):
    """What a record gets wrong about its capture connection: the originator,
    or the packets and bytes each way."""
    k = conn.key
    sport, dport = record_ports(k)
    got = (norm_addr(rec["src_addr"]), rec["src_port"], norm_addr(rec["dst_addr"]),
           rec["dst_port"])
    if got != (k.src, sport, k.dst, dport):
        return ["originator reversed"]
    return [f"{side} packets/bytes {counts_text(rec_counts(rec, side))}, capture "
            f"{counts_text(want)}" for side, want in (("orig", conn.orig), ("resp", conn.resp))
            if rec_counts(rec, side) != want]


def _ends_text(view):
    return " ".join(f"{c.packets}/{c.bytes}" for _, c in sorted(view.ends.items(), key=str))


def compare_records(conns, rows, label, name="db"):
    """Every capture connection has exactly one record with its counts each
    way, and no record lacks a capture connection; which end originated does
    not matter here. Prints a summary; raises Failure listing the differences.
    conns: tshark.Connection list; rows: records as dicts."""
    pairs, unequal = pair(conns, rows)
    problems = []
    for caps, recs in unequal:
        w, g = [capture_view(c) for c in caps], [record_view(r) for r in recs]
        problems.append(f"{(w or g)[0].what}: {len(w)} connection(s) in the capture, "
                        f"{len(g)} record(s) in the {name} "
                        f"[{'; '.join(_ends_text(v) for v in w)}] vs "
                        f"[{'; '.join(_ends_text(v) for v in g)}]")
    equal = 0
    for conn, rec in pairs:
        wv, gv = capture_view(conn), record_view(rec)
        if wv.ends != gv.ends:
            problems.append(f"{gv.what}: capture {_ends_text(wv)}, {name} {_ends_text(gv)}")
        else:
            equal += 1
    print(f"  {label}: {len(conns)} connections in the capture, {len(rows)} records in the "
          f"{name}, {equal} equal each way")
    for p in problems[:SHOW]:
        print(f"    DIFF   {p}")
    if len(problems) > SHOW:
        print(f"    ... and {len(problems) - SHOW} more")
    check(not problems, f"{label}: {len(problems)} connections differ from the capture")


def tally(conns, records):
    """How many capture connections have a record that equals them
    (originator, packets and bytes each way), and how the others are off:
    mismatched (paired, not equal), missing or extra (a group with fewer or
    more records than connections), unpaired (the rest of such groups)."""
    pairs, unequal = pair(conns, records)
    out = {"connections": len(conns), "records": len(records), "exact": 0, "mismatched": 0,
           "missing": 0, "extra": 0, "unpaired": 0}
    for caps, recs in unequal:
        out["missing"] += max(0, len(caps) - len(recs))
        out["extra"] += max(0, len(recs) - len(caps))
        out["unpaired"] += min(len(caps), len(recs))
    for conn, rec in pairs:
        out["mismatched" if differences(conn, rec) else "exact"] += 1
    out["fraction"] = out["exact"] / out["connections"] if out["connections"] else None
    return out

