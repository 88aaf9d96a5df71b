"""Connection records of `tcflows record --jsonl` against references
tcflows did not produce:

- the capture of the same interface read by tshark: one connection per
  tcp.stream / udp.stream / ICMP echo identifier, cut where it was quiet for
  longer than the idle timeout the test gave tcflows (tshark.capture_connections);
  per-direction packets and IP bytes, first and last frame, originator, Zeek
  history and handshake RTT at the capture point;
- conntrack with accounting in the same namespace (conntrack.Conntrack): how many
  connections, ASSURED/UNREPLIED, and per-direction counters where they are a
  fair reference (no GSO super-packets, no idle split conntrack does not do);
- what the scenario did (Expect): how many connections between whom, and the
  Zeek conn_state and close reason that follow from it.

Namespaces and interfaces start with `tc` (netns.Lab's prefix).
"""

import json
import os
from collections import namedtuple

from .compare import SHOW, counts_text, differences, pair, rec_counts, record_ports
from .conntrack import Conntrack
from .netns import Lab
from .proc import Failure, LabError, scratch_dir
from .runs import observe
from .tcflows import read_jsonl
from .tshark import (TCP_ACK, TCP_SYN, capture_connections, capture_history,
                     capture_history_times, capture_rtt, norm_addr, same_history)

PREFIX = "tc"
TOLERANCE_NS = 1_000_000  # record times vs capture times
# Program counters that count lost data; all must stay 0.
NO_LOSS = ("flow_full", "flow_error", "malformed", "untracked_packets")
# Shown for the record: the protocol's own work (doorbells, joined orphans).
TRACKER_STATS = ("connections", "doorbells", "doorbells_lost", "orphans_joined", "orphans_alone")
COUNTERS = ("orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes")


class Expect:
    """`count` connections a scenario made from `client` to `server` (port
    `port`; None for ICMP), and what they must look like:

    state, close: Zeek conn_state and close_reason;
    letters: history letters the scenario implies (their order comes from
      the capture);
    each of these three may be a list instead: one value per connection, in
      the order they began;
    ct: conntrack status, "ASSURED", "UNREPLIED" or "" for neither (or a
      list); None when conntrack is no reference for them;
    ct_counts: conntrack's per-direction counters are a fair reference."""

    def __init__(self, proto, client, server, port=None, count=1, state=None, close=None,
                 letters="", ct=None, ct_counts=False):
        self.proto, self.client, self.server, self.port = proto, client, server, port
        self.count, self.state, self.close, self.letters = count, state, close, letters
        self.ct, self.ct_counts = ct, ct_counts

    def selects(self, key):
        return (key.proto == self.proto and key.src == norm_addr(self.client)
                and key.dst == norm_addr(self.server)
                and (self.port is None or key.dport == self.port))

    def __str__(self):
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.proto} {self.client} -> {self.server}{port}"


# ---------------------------------------------------------------- a run

Timeouts = namedtuple("Timeouts", "tcp udp icmp other linger")
DEFAULT_TIMEOUTS = Timeouts(tcp=300, udp=60, icmp=60, other=60, linger=5)

# obs: runs.Observation; lines: every JSONL object in order; conns: the
# capture's connections; conntrack: conntrack.CtEntry list; dev: the interface.
Run = namedtuple("Run", "obs lines conns conntrack dev timeouts")


def timeout_args(t):
    return ["--tcp-timeout", f"{t.tcp}s", "--udp-timeout", f"{t.udp}s",
            "--icmp-timeout", f"{t.icmp}s", "--other-timeout", f"{t.other}s",
            "--linger", f"{t.linger}s"]


def idle_of(timeouts):
    """proto -> the idle timeout in ns that tcflows was given for it."""
    def idle_ns(proto):
        seconds = {"TCP": timeouts.tcp, "UDP": timeouts.udp, "ICMP": timeouts.icmp,
                   "ICMPv6": timeouts.icmp}.get(proto, timeouts.other)
        return int(seconds * 1e9)
    return idle_ns


def observe_records(binary, traffic, timeouts=DEFAULT_TIMEOUTS, extra=(), interval="500ms",
                    conntrack=True, prepare=None, settle_s=1.0):
    """tcflows --jsonl, tcpdump and (optionally) conntrack in namespace a
    while traffic(lab) runs; prepare(lab) first (e.g. firewall rules).
    tcflows is stopped with SIGTERM."""
    path = os.path.join(scratch_dir(), "conns.jsonl")
    args = ["--jsonl", path, *timeout_args(timeouts), *extra]
    with Lab(prefix=PREFIX) as lab:
        if prepare:
            prepare(lab)
        ct = Conntrack(lab) if conntrack else None
        obs = observe(binary, lab, traffic, interval=interval, settle_s=settle_s,
                      tcflows_args=args)
        entries = ct.finish() if ct else []
        dev = lab.dev["a"]
    conns = capture_connections(obs.frames, idle_ns=idle_of(timeouts))
    return Run(obs, read_jsonl(path), conns, entries, dev, timeouts)


# ---------------------------------------------------------------- describing


def describe(conn):
    k = conn.key
    sport, dport = record_ports(conn.key)
    what = f" id {k.sport}" if k.proto.startswith("ICMP") and k.sport == k.dport else ""
    return f"{k.proto} {k.src}:{sport} -> {k.dst}:{dport}{what}"


def frames_text(conn):
    n = [f.number for f in conn.frames]
    return f"capture frames {n[0]}..{n[-1]} ({len(n)} frames)"


def evidence(conn, rec):
    return f"\n      jsonl: {json.dumps(rec, sort_keys=True)}\n      tshark: {frames_text(conn)}"


# ---------------------------------------------------------------- the checks


class Problems(list):
    def add(self, text):
        self.append(text)

    def verdict(self, label):
        if not self:
            return
        print(f"  {len(self)} problems:")
        for p in self[:SHOW]:
            print(f"    {p}")
        if len(self) > SHOW:
            print(f"    ... and {len(self) - SHOW} more")
        raise Failure(f"{label}: {len(self)} problems, first: {self[0].splitlines()[0]}")


def check_sequences(lines, problems):
    """Per uid: checkpoints whose counters never decrease, then exactly one
    final record, last. Returns the final records."""
    by_uid = {}
    for rec in lines:
        by_uid.setdefault(rec["uid"], []).append(rec)
    finals = []
    for uid, recs in by_uid.items():
        final = [r for r in recs if not r["checkpoint"]]
        if len(final) != 1 or recs[-1]["checkpoint"]:
            problems.add(f"uid {uid}: {len(final)} final records, last line checkpoint="
                         f"{recs[-1]['checkpoint']}: {json.dumps(recs[-1])}")
        for prev, rec in zip(recs, recs[1:]):
            _check_step(uid, prev, rec, problems)
        for rec in recs:
            if (rec["close_reason"] is None) != rec["checkpoint"]:
                problems.add(f"uid {uid}: checkpoint={rec['checkpoint']} with close_reason "
                             f"{rec['close_reason']}")
        finals += final
    return finals


def _check_step(uid, prev, rec, problems):
    for name in ("start_ns", "src_addr", "src_port", "dst_addr", "dst_port", "proto"):
        if rec[name] != prev[name]:
            problems.add(f"uid {uid}: {name} changed from {prev[name]} to {rec[name]}")
    for name in COUNTERS + ("end_ns",):
        if rec[name] < prev[name]:
            problems.add(f"uid {uid}: {name} decreased from {prev[name]} to {rec[name]}")


def match(conns, finals, problems):
    """Pairs every capture connection with exactly one final record."""
    pairs, unequal = pair(conns, finals)
    for caps, recs in unequal:
        for conn in caps:
            problems.add(f"{describe(conn)} at {conn.first_ns}: {len(caps)} in the capture, "
                         f"{len(recs)} final records ({frames_text(conn)})")
        for rec in recs:
            problems.add(f"  record of that key: {json.dumps(rec, sort_keys=True)}")
    return pairs


def check_pair(conn, rec, dev, problems):
    """Originator, counts, times and interface of one record."""
    for what in differences(conn, rec):
        problems.add(f"{describe(conn)}: {what}{evidence(conn, rec)}")
    for name, want in (("start_ns", conn.first_ns), ("end_ns", conn.last_ns)):
        if abs(rec[name] - want) > TOLERANCE_NS:
            problems.add(f"{describe(conn)}: {name} {rec[name]} is {rec[name] - want} ns from "
                         f"the capture's {want}{evidence(conn, rec)}")
    if rec["iface"] != dev:
        problems.add(f"{describe(conn)}: iface {rec['iface']}, watching {dev}")


def check_records(run, problems):
    """Every capture connection exactly once, with exact counts and times.
    Returns {id(conn): record}."""
    finals = check_sequences(run.lines, problems)
    pairs = match(run.conns, finals, problems)
    for conn, rec in pairs:
        check_pair(conn, rec, run.dev, problems)
    print(f"  capture: {len(run.obs.frames)} frames, {len(run.conns)} connections; "
          f"tcflows: {len(run.lines)} JSONL lines, {len(finals)} final records, "
          f"{len(pairs)} paired")
    return {id(conn): rec for conn, rec in pairs}


# ---------------------------------------------------------------- expectations


def selected(run, exp):
    """The capture's connections of an Expect; the count must be what the
    scenario made, or the capture is no reference for it."""
    conns = [c for c in run.conns if exp.selects(c.key)]
    if len(conns) != exp.count:
        raise LabError(f"{exp}: the scenario made {exp.count} connections, the capture "
                         f"shows {len(conns)}")
    return conns


def nth(value, i):
    return value[i] if isinstance(value, list) else value


def check_zeek(conn, rec, exp, i, degraded, problems):
    """State, close reason, history and RTT of the i-th connection of an Expect."""
    history = capture_history(conn)
    missing = set(nth(exp.letters, i)) - set(history)
    if missing:
        raise LabError(f"{describe(conn)}: the capture's history {history} lacks "
                         f"{''.join(sorted(missing))}: the scenario did not run as planned")
    for name, want in (("state", nth(exp.state, i)), ("close_reason", nth(exp.close, i))):
        if want is not None and rec[name] != want:
            problems.add(f"{describe(conn)}: {name} {rec[name]}, expected {want} "
                         f"(capture history {history}){evidence(conn, rec)}")
    same = (sorted(rec["history"]) == sorted(history) if degraded
            else same_history(rec["history"], capture_history_times(conn)))
    if not same:
        problems.add(f"{describe(conn)}: history {rec['history']}, capture {history}"
                     f"{evidence(conn, rec)}")
    if rec["orig_guessed"] and originator_known(conn):
        problems.add(f"{describe(conn)}: orig_guessed although the originator is known"
                     f"{evidence(conn, rec)}")
    check_rtt(conn, rec, degraded, problems)


def originator_known(conn):
    """A SYN (without ACK) or an echo request tells who originated."""
    if conn.key.proto == "TCP":
        return any(f.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN for f in conn.frames)
    return conn.key.proto in ("ICMP", "ICMPv6") and conn.key.sport == conn.key.dport


def check_rtt(conn, rec, degraded, problems):
    want, got = capture_rtt(conn), rec["rtt_ns"]
    if want is None:
        if got is not None:
            problems.add(f"{describe(conn)}: rtt_ns {got} without a handshake in the capture"
                         f"{evidence(conn, rec)}")
        return
    if got is None:
        if not degraded:
            problems.add(f"{describe(conn)}: no rtt_ns, capture SYN->ACK {want} ns"
                         f"{evidence(conn, rec)}")
        return
    if abs(got - want) > TOLERANCE_NS:
        problems.add(f"{describe(conn)}: rtt_ns {got}, capture SYN->ACK {want} ns"
                     f"{evidence(conn, rec)}")


def check_conntrack(run, exp, conns, records, problems):
    """conntrack's entries of an Expect: as many, the expected status, and
    (when fair) the same counters as the records. Entries and capture
    connections pair by 5-tuple (ICMP: identifier), in order of time."""
    entries = [e for e in run.conntrack if exp.selects(e.key)]
    if len(entries) != exp.count:
        raise LabError(f"{exp}: conntrack saw {len(entries)} connections, the scenario "
                         f"made {exp.count}")
    by_key = {}
    for e in entries:
        by_key.setdefault(e.key, []).append(e)
    for conn in conns:
        if not by_key.get(conn.key):
            raise LabError(f"{describe(conn)}: conntrack has no such connection")
        entry = by_key[conn.key].pop(0)
        status = " ".join(s for s in ("ASSURED", "UNREPLIED") if s in entry.status)
        want = nth(exp.ct, conns.index(conn))
        if status != want:
            problems.add(f"{describe(conn)}: conntrack status '{status}', the scenario "
                         f"implies '{want}' (conntrack state {entry.state})")
        rec = records.get(id(conn))
        if not exp.ct_counts or rec is None:
            continue
        for side, want in (("orig", entry.orig), ("resp", entry.resp)):
            if rec_counts(rec, side) != want:
                problems.add(f"{describe(conn)}: {side} {counts_text(rec_counts(rec, side))}, "
                             f"conntrack {counts_text(want)}{evidence(conn, rec)}")


def check_expects(run, expects, records, problems, degraded=False, show=40):
    shown = 0
    for exp in expects:
        conns = selected(run, exp)
        for i, conn in enumerate(conns):
            rec = records.get(id(conn))
            if rec is None:
                continue  # reported by match()
            check_zeek(conn, rec, exp, i, degraded, problems)
            if shown < show:
                print(summary(conn, rec))
                shown += 1
        if exp.ct is not None:
            check_conntrack(run, exp, conns, records, problems)
    if shown == show:
        print("    ...")


def summary(conn, rec):
    rtt = "" if rec["rtt_ns"] is None else f" rtt {rec['rtt_ns'] / 1000:.0f} us " \
        f"(capture {(capture_rtt(conn) or 0) / 1000:.0f})"
    return (f"    {rec['state']:6} {rec['close_reason']:8} {describe(conn):48} "
            f"{counts_text(rec_counts(rec, 'orig')):>11} {counts_text(rec_counts(rec, 'resp')):>11}"
            f" {rec['history']:10}{rtt}")


def check_counters(snapshot, problems, allow=()):
    """The program's loss counters in the final snapshot are 0 (but `allow`)."""
    c = snapshot["counters"]
    print("  counters: " + " ".join(f"{n}={c.get(n)}" for n in NO_LOSS + TRACKER_STATS))
    for name in NO_LOSS:
        if name not in allow and c.get(name) != 0:
            problems.add(f"counter {name} = {c.get(name)}, expected 0")


def verify(run, expects, label, degraded=False, allow=()):
    """All checks of one run; raises Failure listing the problems."""
    problems = Problems()
    records = check_records(run, problems)
    check_expects(run, expects, records, problems, degraded)
    check_counters(run.obs.snapshot, problems, allow)
    if run.conntrack:
        print(f"  conntrack: {len(run.conntrack)} connections")
    problems.verdict(label)
    return records
