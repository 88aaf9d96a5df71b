"""Connection records against a capture of the same interface, for the
`record` hook: the capture read by tcflows_lab.tshark as it goes (one
connection per tcp.stream), records paired and compared by
tcflows_lab.compare (originator, packets and IP bytes each way). Times,
history and RTT are not compared here; the lab tests do that.
"""

from tcflows_lab import compare, tcflows, tshark
from tcflows_lab.db import Db


def capture_connections(path, port):
    """The capture's TCP connections to or from `port`."""
    return tshark.stream_tcp_connections(path, port)


def _slim(rec):
    return {k: rec[k] for k in compare.RECORD_FIELDS}


def jsonl_finals(path, port):
    """Final records of TCP connections to `port` from `tcflows record --jsonl`,
    and how many uids had more than one final record."""
    finals, uids, twice = [], set(), 0
    for rec in tcflows.iter_jsonl(path):
        if rec["checkpoint"] or rec["proto"] != "TCP" or rec["dst_port"] != port:
            continue
        twice += rec["uid"] in uids
        uids.add(rec["uid"])
        finals.append(_slim(rec))
    return finals, twice


def db_finals(path, port):
    """The same from the database's connections table (closed rows)."""
    rows = Db(str(path)).query(f"SELECT * FROM connections WHERE proto = 'TCP' AND dst_port = "
                               f"{int(port)} AND close_reason IS NOT NULL")
    return [_slim(r) for r in rows], 0  # uid is UNIQUE in the table


def compare_records(capture, records, twice=0):
    """compare.tally of the records, and uid_twice: uids with two final records."""
    return dict(compare.tally(capture, records), uid_twice=twice)


def describe(result):
    return ", ".join(f"{k} {result[k]}" for k in ("connections", "records", "exact", "mismatched",
                                                  "missing", "extra", "unpaired", "uid_twice"))
