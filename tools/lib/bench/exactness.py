"""Connection records against a capture of the same interface.

The reference is the capture, read by tshark, never tcflows' own numbers:
one connection per tcp.stream (tshark starts a new stream when a SYN reuses
a closed 5-tuple), the originator the sender of its first SYN, per direction
the wire packets and IP bytes. A small copy of what tests/lab/records.py
does for the lab tests (match, check_pair), streaming, so that a capture of
millions of frames needs no frame list in memory; times, history and RTT
are not compared here.
"""

import json
import sqlite3
import subprocess
from collections import namedtuple

# key: (src, sport, dst, dport) with src the originator; counts: orig
# packets, orig bytes, resp packets, resp bytes; order: sorts in time.
Conn = namedtuple("Conn", "key counts order")

TSHARK_FIELDS = ("tcp.stream", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "ip.len",
                 "tcp.flags")
TCP_SYN, TCP_ACK = 0x02, 0x10


def capture_connections(path, port):
    """The capture's TCP connections to or from `port`."""
    argv = ["tshark", "-n", "-r", str(path), "-o", "tcp.desegment_tcp_streams:FALSE",
            "-Y", f"tcp.port == {port}", "-T", "fields", "-E", "separator=/t"]
    for field in TSHARK_FIELDS:
        argv += ["-e", field]
    streams = {}  # stream -> {"ends": {(addr, port): [packets, bytes]}, "orig": end}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as tshark:
        for line in tshark.stdout:
            stream, src, sport, _, _, iplen, flags = line.rstrip("\n").split("\t")
            s = streams.setdefault(int(stream), {"ends": {}, "orig": None})
            end = (src, int(sport))
            counts = s["ends"].setdefault(end, [0, 0])
            counts[0] += 1
            counts[1] += int(iplen)
            if s["orig"] is None and int(flags, 0) & (TCP_SYN | TCP_ACK) == TCP_SYN:
                s["orig"] = end
        err = tshark.stderr.read()
    if tshark.returncode != 0:
        raise RuntimeError(f"tshark failed (exit {tshark.returncode}): {err.strip()[:200]}")
    return [_connection(n, s) for n, s in sorted(streams.items())]


def _connection(number, stream):
    ends = list(stream["ends"])
    orig = stream["orig"] or ends[0]
    resp = next((e for e in ends if e != orig), None)
    o, r = stream["ends"][orig], stream["ends"].get(resp, [0, 0])
    # A stream with one end only: its responder is not known from the capture.
    key = (*orig, *(resp or (None, None)))
    return Conn(key, (o[0], o[1], r[0], r[1]), number)


def jsonl_finals(path, port):
    """Final records of TCP connections to `port` from `tcflows record --jsonl`,
    and how many uids had more than one final record."""
    finals, uids, twice = [], set(), 0
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec["checkpoint"] or rec["proto"] != "TCP" or rec["dst_port"] != port:
                continue
            twice += rec["uid"] in uids
            uids.add(rec["uid"])
            finals.append(_record(rec))
    return finals, twice


def db_finals(path, port):
    """The same from the database's connections table (closed rows)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM connections WHERE proto = 'TCP' AND dst_port = ? "
                          "AND close_reason IS NOT NULL", (port,)).fetchall()
    finally:
        db.close()
    return [_record(dict(r)) for r in rows], 0  # uid is UNIQUE in the table


def _record(rec):
    return Conn((rec["src_addr"], rec["src_port"], rec["dst_addr"], rec["dst_port"]),
                (rec["orig_pkts"], rec["orig_bytes"], rec["resp_pkts"], rec["resp_bytes"]),
                rec["start_ns"])


def compare(capture, records, twice=0):
    """Pairs capture connections and records by 5-tuple, in time order.

    Where a 5-tuple has as many records as connections they pair one to one
    and each pair is exact or mismatched; where not, the difference is
    missing or extra and the rest is unpaired (not exact either)."""
    groups = {}
    for conn in capture:
        groups.setdefault(conn.key, ([], []))[0].append(conn)
    for rec in records:
        groups.setdefault(rec.key, ([], []))[1].append(rec)
    out = {"connections": len(capture), "records": len(records), "exact": 0, "mismatched": 0,
           "missing": 0, "extra": 0, "unpaired": 0, "uid_twice": twice}
    for caps, recs in groups.values():
        if len(caps) != len(recs):
            out["missing"] += max(0, len(caps) - len(recs))
            out["extra"] += max(0, len(recs) - len(caps))
            out["unpaired"] += min(len(caps), len(recs))
            continue
        recs.sort(key=lambda r: r.order)
        for conn, rec in zip(caps, recs):
            out["exact" if conn.counts == rec.counts else "mismatched"] += 1
    out["fraction"] = out["exact"] / out["connections"] if out["connections"] else None
    return out


def describe(result):
    return ", ".join(f"{k} {result[k]}" for k in ("connections", "records", "exact", "mismatched",
                                                  "missing", "extra", "unpaired", "uid_twice"))
