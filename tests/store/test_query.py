#!/usr/bin/env python3
"""`tcflows report` as people query flows, through the built binary on a real
SQLite file: filter expressions, time buckets, bars and the chart.

The reference is never tcflows: the rows are written here (into a database
the store created empty, tests/tools/new_db), and every question is answered
again in Python over the rows read back from the same file: each filter
primitive by a predicate written by hand (addresses and networks with the
ipaddress module), combinations by Python's own and/or/not, buckets by
summing the traffic rows.

    test_query.py TCFLOWS NEW_DB RSVG_CONVERT
"""
import datetime
import ipaddress
import json
import math
import os
import random
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib

TCFLOWS, NEW_DB, RSVG = sys.argv[1:4]

SEC = 10**9
T0 = 1_764_090_000 * SEC  # 2025-11-25T17:00:00Z
SINCE, UNTIL = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
PORT_PROTOS = {"TCP", "UDP", "SCTP", "DCCP", "UDPLite"}
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
        print(f"  FAIL: {message}")
    return ok


# --- The data -------------------------------------------------------------

def canonical(text):
    """An address as tcflows stores it: the C library's inet_ntop."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, text))
        except OSError:
            pass
    raise ValueError(text)


V4 = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.255", "10.0.1.0", "10.1.0.1", "10.10.0.1",
      "10.100.0.1", "10.127.255.255", "10.128.0.0", "10.200.3.4", "11.0.0.1", "9.255.255.255",
      "0.0.0.0", "255.255.255.255", "192.168.1.1", "192.168.1.2", "192.168.1.200",
      "172.16.0.1", "172.31.255.255", "172.32.0.0", "172.15.255.255", "1.2.3.4", "100.64.0.1"]
V6 = [canonical(a) for a in (
    "::1", "::", "2001:db8::1", "2001:db8::", "2001:db8:0:1::1",
    "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::1", "2001:db7:ffff::1",
    "2001:db8:8000::1", "fe80::1", "febf:ffff::1", "fec0::1", "fe7f::1", "::ffff:10.0.0.1",
    "::ffff:1.2.3.4", "::ffff:0.0.0.0", "64:ff9b::a00:1", "2001:db8::a:b", "2001:db8:1::",
    "ff02::1", "2001:db8::fffe", "2001:db8::ffff", "2001:0:0:1::5")]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:0a", "ff:ff:ff:ff:ff:ff"]
STATES = ["S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "SH", "OTH"]
COLUMNS = ["uid", "iface", "proto", "src_addr", "src_port", "dst_addr", "dst_port", "vlan",
           "start_ns", "end_ns", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes", "state",
           "history", "close_reason", "rtt_ns", "orig_guessed"]


def make_connection(rng, i):
    proto = rng.choice(["TCP"] * 5 + ["UDP"] * 3 + ["ICMP", "ICMPv6", "SCTP", "47", "ARP"])
    if proto == "ARP":
        pool = MACS
    elif proto == "ICMPv6":
        pool = V6
    elif proto == "ICMP":
        pool = V4
    else:
        pool = rng.choice([V4, V4, V6])
    src, dst = rng.choice(pool), rng.choice(pool)
    if proto in PORT_PROTOS:
        sport = rng.choice([0, 1, 1023, 1024, 40000, 65535] + [rng.randrange(65536)] * 4)
        dport = rng.choice([443, 443, 53, 80, 22, 8080, 0, 65535, 1023, 1024])
    elif proto in ("ICMP", "ICMPv6"):
        sport, dport = rng.choice([8, 0, 3, 128]), rng.choice([0, 1, 3])
    else:
        sport = dport = 0
    start = T0 + rng.randrange(2 * 3600 * SEC)
    duration = rng.choice([0, 10 * SEC, 10 * SEC + 1, 10 * SEC - 1, 1_500_000_000, 500_000_000,
                           60 * SEC, rng.randrange(40 * 60 * SEC), rng.randrange(20 * SEC)])
    op, rp = rng.choice([1, 5, 10, 11, 999, 1000, 1001]), rng.choice([0, 0, 3, 10, 2000])
    ob = rng.choice([0, 60, 1499, 1500, 1501, 100_000, 999_999, 1_000_000, 1_048_576,
                     rng.randrange(3_000_000)])
    rb = rng.choice([0, 0, 40, 1_000_000, 48_576, rng.randrange(2_000_000)])
    rtt = rng.choice([None, None, 200_000, 250_000, 999_999, 1_000_000, 5_000_000, 5_000_001,
                      rng.randrange(10_000_000)]) if proto == "TCP" else None
    return {"uid": f"C{i}", "iface": rng.choice(["eth0", "eth0", "eth1", "we'ird"]),
            "proto": proto, "src_addr": src, "src_port": sport, "dst_addr": dst,
            "dst_port": dport, "vlan": rng.choice([0, 0, 7, 100]), "start_ns": start,
            "end_ns": start + duration, "orig_pkts": op, "orig_bytes": ob, "resp_pkts": rp,
            "resp_bytes": rb, "state": rng.choice(STATES), "history": "ShAD",
            "close_reason": rng.choice([None, "fin", "fin", "rst", "idle", "shutdown"]),
            "rtt_ns": rtt, "orig_guessed": 0}


def make_traffic(rng, conn_id, c):
    """Traffic rows of a connection: 5 s intervals, some ending exactly on a
    minute, some not aligned at all, some spanning a pause."""
    rows, end = [], c["end_ns"] + rng.choice([1, 5 * SEC, 3 * SEC])
    to = (c["start_ns"] // (5 * SEC) + 1) * (5 * SEC)
    frm = c["start_ns"]
    while True:
        if rng.random() < 0.1:
            to = (to // (60 * SEC)) * 60 * SEC + rng.choice([0, 1, -1]) * SEC + 60 * SEC
        if to <= frm:
            to = frm + 1
        if rng.random() < 0.8:  # quiet intervals have no row
            resp_pkts = rng.randrange(0, 30)
            rows.append((conn_id, frm, to, rng.randrange(1, 40), rng.randrange(60, 60_000),
                         resp_pkts, rng.randrange(40, 40_000) if resp_pkts else 0))
            frm = to
        if to >= end:
            break
        to += rng.choice([5 * SEC, 5 * SEC, 65 * SEC, 7 * SEC + 123])
    return rows


def build(path, seed=16, count=500):
    subprocess.run([NEW_DB, path], check=True)
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    for i in range(count):
        c = make_connection(rng, i)
        cur = db.execute(f"INSERT INTO connections ({', '.join(COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(COLUMNS))})", [c[k] for k in COLUMNS])
        db.executemany("INSERT INTO traffic VALUES (?, ?, ?, ?, ?, ?, ?)",
                       make_traffic(rng, cur.lastrowid, c))
    db.commit()
    db.close()


def read_back(path):
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    conns = [dict(r) for r in db.execute("SELECT * FROM connections")]
    traffic = [dict(r) for r in db.execute("SELECT * FROM traffic")]
    db.close()
    return conns, traffic


# --- Running tcflows --------------------------------------------------------

def report(db, *args):
    return subprocess.run([TCFLOWS, "report", "--db", db, *args], capture_output=True,
                          text=True)


def report_json(db, *args):
    p = report(db, "--format", "json", *args)
    if not check(p.returncode == 0, f"report {args}: exit {p.returncode}: {p.stderr.strip()}"):
        return None
    return json.loads(p.stdout)


def uids(db, expression, *args):
    rows = report_json(db, "--since", SINCE, "--until", UNTIL, "--by", "conn", *args,
                       "-f", expression)
    return None if rows is None else {r["uid"] for r in rows}


# --- Reference predicates ---------------------------------------------------

def ip(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def address_key(text):
    a = ip(text)
    return ("ip", a) if a is not None else ("mac", text.lower().replace("-", ":"))


def sides(side, test):
    """A test of one address or port on the sides a qualifier names."""
    return {
        "": lambda r: test(r, "src") or test(r, "dst"),
        "src ": lambda r: test(r, "src"),
        "dst ": lambda r: test(r, "dst"),
        "src or dst ": lambda r: test(r, "src") or test(r, "dst"),
        "src and dst ": lambda r: test(r, "src") and test(r, "dst"),
    }[side]


def host(a):
    key = address_key(a)
    return lambda r, s: address_key(r[f"{s}_addr"]) == key


def net(n):
    network = ipaddress.ip_network(n)

    def test(r, s):
        a = ip(r[f"{s}_addr"])
        return a is not None and a.version == network.version and a in network
    return test


def port(compare):
    return lambda r, s: r["proto"] in PORT_PROTOS and compare(r[f"{s}_port"])


def total(field):
    return lambda r: r[f"orig_{field}"] + r[f"resp_{field}"]


def duration(r):
    return r["end_ns"] - r["start_ns"]


A, B = "10.0.0.1", "2001:db8::1"
MS, US = 10**6, 10**3


def primitive_cases():
    """(expression, reference predicate, whether it must select a proper
    subset of the connections)."""
    cases = []
    for side in ("", "src ", "dst ", "src or dst ", "src and dst "):
        for a in (A, "10.0.0.2", B, "::ffff:10.0.0.1", "02:00:00:00:00:01"):
            cases.append((f"{side}host {a}", sides(side, host(a)), side != "src and dst "))
    for typed, a in (("2001:0DB8:0:0:0:0:0:1", B), ("02-00-00-00-00-0A", "02:00:00:00:00:0a"),
                     ("::FFFF:10.0.0.1", "::ffff:10.0.0.1"), ("0.0.0.0", "0.0.0.0")):
        cases.append((f"host {typed}", sides("", host(a)), True))
    for n in ("0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/16",
              "10.0.0.0/24", "10.0.1.0/24", "10.0.0.1/32", "10.0.0.0/31", "10.0.0.2/31",
              "10.0.0.0/30", "172.16.0.0/12", "192.168.0.0/16", "192.168.1.0/25",
              "192.168.1.2/31", "10.100.0.0/14", "8.0.0.0/7", "0.0.0.0/1", "128.0.0.0/1",
              "255.255.255.255/32", "0.0.0.0/32", "10.10.0.0/15", "1.2.3.4",
              "::/0", "2001:db8::/32", "2001:db8::/33", "2001:db8:8000::/33", "2001:db8::1/128",
              "2001:db8::/127", "2001:db8::fffe/127", "2001:db8::/64", "2001:db8:0:1::/64",
              "fe80::/10", "fe80::/9", "2000::/3", "::ffff:0:0/96", "::ffff:10.0.0.0/104",
              "::/127", "::1/128", "2001:db9::/32", "2001:db8::a:0/112", "64:ff9b::/96",
              "ff00::/8", "2001::/16", "2001:0:0:1::/64", "2001:db8::1"):
        for side in ("", "src ", "dst "):
            cases.append((f"{side}net {n}", sides(side, net(n)), False))
    ports = [("port 443", lambda p: p == 443), ("port 0", lambda p: p == 0),
             ("port 65535", lambda p: p == 65535), ("port 8", lambda p: p == 8),
             ("port > 1023", lambda p: p > 1023), ("port <= 1023", lambda p: p <= 1023),
             ("port != 443", lambda p: p != 443), ("port gt 60000", lambda p: p > 60000),
             ("port = 53", lambda p: p == 53), ("port == 22", lambda p: p == 22),
             ("port < 1", lambda p: p < 1), ("port >= 65535", lambda p: p >= 65535),
             ("port ne 80", lambda p: p != 80), ("port lt 1024", lambda p: p < 1024),
             ("port le 1024", lambda p: p <= 1024), ("port ge 40000", lambda p: p >= 40000),
             ("port eq 8080", lambda p: p == 8080),
             ("portrange 1-1023", lambda p: 1 <= p <= 1023),
             ("portrange 1024-65535", lambda p: p >= 1024),
             ("portrange 443-443", lambda p: p == 443), ("portrange 0-0", lambda p: p == 0)]
    for side in ("", "src ", "dst "):
        for text, compare in ports:
            cases.append((side + text, sides(side, port(compare)), side == "" and
                          text not in ("port 8", "port != 443", "port ne 80")))
    for typed, stored in (("tcp", "TCP"), ("TCP", "TCP"), ("6", "TCP"), ("17", "UDP"),
                          ("udp", "UDP"), ("icmp", "ICMP"), ("1", "ICMP"), ("icmp6", "ICMPv6"),
                          ("ICMPv6", "ICMPv6"), ("58", "ICMPv6"), ("47", "47"), ("gre", None),
                          ("sctp", "SCTP"), ("132", "SCTP"), ("arp", "ARP")):
        if stored:
            cases.append((f"proto {typed}", lambda r, p=stored: r["proto"] == p, True))
    for word, stored in (("tcp", "TCP"), ("udp", "UDP"), ("icmp", "ICMP"), ("icmp6", "ICMPv6"),
                         ("sctp", "SCTP"), ("arp", "ARP")):
        cases.append((word, lambda r, p=stored: r["proto"] == p, True))
    cases += [
        ("ip4", lambda r: (ip(r["src_addr"]) or ipaddress.IPv6Address("::")).version == 4, True),
        ("ip6", lambda r: (ip(r["src_addr"]) or ipaddress.IPv4Address(0)).version == 6, True),
        ("tcp port 443", lambda r: r["proto"] == "TCP" and 443 in (r["src_port"], r["dst_port"]),
         True),
        ("udp dst port 53", lambda r: r["proto"] == "UDP" and r["dst_port"] == 53, True),
        ("iface eth0", lambda r: r["iface"] == "eth0", True),
        ("iface eth1", lambda r: r["iface"] == "eth1", True),
        ("iface we'ird", lambda r: r["iface"] == "we'ird", True),
        ("state SF", lambda r: r["state"] == "SF", True),
        ("state rej", lambda r: r["state"] == "REJ", True),
        ("state S0", lambda r: r["state"] == "S0", True),
        ("vlan 7", lambda r: r["vlan"] == 7, True),
        ("vlan > 0", lambda r: r["vlan"] > 0, True),
        ("uid C7", lambda r: r["uid"] == "C7", True),
    ]
    for reason in ("fin", "rst", "idle", "shutdown"):
        cases.append((f"close {reason}", lambda r, x=reason: r["close_reason"] == x, True))
        cases.append((f"not close {reason}", lambda r, x=reason: r["close_reason"] != x, True))
    b, p = total("bytes"), total("pkts")
    cases += [
        ("bytes > 1M", lambda r: b(r) > 1_000_000, True),
        ("bytes >= 1000000", lambda r: b(r) >= 1_000_000, True),
        ("bytes = 1M", lambda r: b(r) == 1_000_000, False),
        ("bytes < 1.5k", lambda r: b(r) < 1500, True),
        ("bytes <= 1.5K", lambda r: b(r) <= 1500, True),
        ("bytes > 1MiB", lambda r: b(r) > 1_048_576, True),
        ("bytes > 1.5M", lambda r: b(r) > 1_500_000, True),
        ("bytes > 1mb", lambda r: b(r) > 1_000_000, True),
        ("bytes > 64KiB", lambda r: b(r) > 65536, True),
        ("bytes != 0", lambda r: b(r) != 0, True),
        ("bytes 1500", lambda r: b(r) == 1500, False),
        ("bytes > 0.001G", lambda r: b(r) > 1_000_000, True),
        ("src bytes > 100k", lambda r: r["orig_bytes"] > 100_000, True),
        ("dst bytes <= 0", lambda r: r["resp_bytes"] <= 0, True),
        ("src and dst bytes > 0", lambda r: r["orig_bytes"] > 0 and r["resp_bytes"] > 0, True),
        ("src or dst bytes >= 1M", lambda r: max(r["orig_bytes"], r["resp_bytes"]) >= 10**6,
         True),
        ("packets > 10", lambda r: p(r) > 10, True),
        ("packets >= 1k", lambda r: p(r) >= 1000, True),
        ("src packets < 5", lambda r: r["orig_pkts"] < 5, True),
        ("dst packets = 0", lambda r: r["resp_pkts"] == 0, True),
        ("duration > 10s", lambda r: duration(r) > 10 * SEC, True),
        ("duration >= 10s", lambda r: duration(r) >= 10 * SEC, True),
        ("duration < 1.5s", lambda r: duration(r) < 1_500_000_000, True),
        ("duration > 1m", lambda r: duration(r) > 60 * SEC, True),
        ("duration <= 500ms", lambda r: duration(r) <= 500 * MS, True),
        ("duration > 1m30s", lambda r: duration(r) > 90 * SEC, True),
        ("duration = 0ns", lambda r: duration(r) == 0, True),
        ("duration > 0.5h", lambda r: duration(r) > 1800 * SEC, True),
        ("duration < 1d", lambda r: duration(r) < 86400 * SEC, False),
        ("rtt > 5ms", lambda r: r["rtt_ns"] is not None and r["rtt_ns"] > 5 * MS, True),
        ("rtt < 250us", lambda r: r["rtt_ns"] is not None and r["rtt_ns"] < 250 * US, True),
        ("rtt <= 1ms", lambda r: r["rtt_ns"] is not None and r["rtt_ns"] <= MS, True),
        ("rtt >= 0ns", lambda r: r["rtt_ns"] is not None, True),
        ("not rtt > 5ms", lambda r: not (r["rtt_ns"] is not None and r["rtt_ns"] > 5 * MS), True),
    ]
    return cases


def run_cases(db, conns, cases, *args, window=lambda r: True):
    everything = {r["uid"] for r in conns if window(r)}
    for expression, predicate, proper in cases:
        expected = {r["uid"] for r in conns if window(r) and predicate(r)}
        got = uids(db, expression, *args)
        check(got == expected, f"{expression!r} {args}: {len(got or ())} connections, expected "
                               f"{len(expected)}; extra {sorted((got or set()) - expected)[:5]}, "
                               f"missing {sorted(expected - (got or set()))[:5]}")
        if proper:
            check(0 < len(expected) < len(everything),
                  f"{expression!r} selects {len(expected)} of {len(everything)}: the data "
                  f"cannot tell it from nothing or everything")


# The indexes README (Performance) tells how to add; the report seeks them.
ADDRESS_INDEXES = """
CREATE INDEX connections_src_hour ON connections(end_ns / 3600000000000, src_addr);
CREATE INDEX connections_dst_hour ON connections(end_ns / 3600000000000, dst_addr);
"""


def with_address_indexes(db, tmp):
    indexed = os.path.join(tmp, "indexed.db")
    source = sqlite3.connect(db)
    target = sqlite3.connect(indexed)
    source.backup(target)
    target.executescript(ADDRESS_INDEXES)
    target.close()
    source.close()
    return indexed


def test_primitives(db, conns, tmp):
    """Every primitive and operator, on each side, against a predicate; host
    and net also through the address indexes, over the whole data and a
    shorter window."""
    cases = primitive_cases()
    run_cases(db, conns, cases)
    print(f"  {len(cases)} primitives, each as Python's predicate over {len(conns)} rows")
    indexed = with_address_indexes(db, tmp)
    addresses = [c for c in cases if " host " in f" {c[0]}" or " net " in f" {c[0]}"]
    run_cases(indexed, conns, addresses)
    # In the second hour: connections begun in the first one still count.
    since, until = T0 + 70 * 60 * SEC, T0 + 90 * 60 * SEC
    window = lambda r: r["end_ns"] >= since and r["start_ns"] < until  # noqa: E731
    check(any(window(r) and r["start_ns"] < T0 + 3600 * SEC and sides("", host(r["src_addr"]))(r)
              for r in conns), "no connection of the window began in the hour before")
    for path in (db, indexed):
        for expression, predicate, _ in addresses:
            expected = {r["uid"] for r in conns if window(r) and predicate(r)}
            rows = report_json(path, "--since", str_time(since), "--until", str_time(until),
                               "--by", "conn", "-f", expression)
            got = None if rows is None else {r["uid"] for r in rows}
            check(got == expected, f"{expression!r} in a 20 min window of {path}: "
                                   f"{len(got or ())}, expected {len(expected)}")
    print(f"  {len(addresses)} host and net tests with the address indexes, and in a 20-minute "
          "window with and without them")
    check(len({r["uid"] for r in conns}) == len(conns), "uids are unique")


def str_time(ns, digits=9):
    """ISO 8601 UTC, exactly: nanoseconds for arguments, milliseconds as
    tcflows prints times."""
    seconds, fraction = divmod(ns, SEC)
    clock = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{fraction:09d}"[:digits] + "Z"


def tcflows_time(ns):
    return str_time(ns, 3)


def boolean_cases():
    h = lambda a: sides("", host(a))  # noqa: E731
    p = lambda n: sides("", port(lambda x: x == n))  # noqa: E731
    tcp = lambda r: r["proto"] == "TCP"  # noqa: E731
    return [
        ("host 10.0.0.1 and port 443", lambda r: h(A)(r) and p(443)(r)),
        ("host 10.0.0.1 && port 443", lambda r: h(A)(r) and p(443)(r)),
        ("host 10.0.0.1 or host 10.0.0.2 and port 53",
         lambda r: h(A)(r) or (h("10.0.0.2")(r) and p(53)(r))),
        ("(host 10.0.0.1 or host 10.0.0.2) and port 53",
         lambda r: (h(A)(r) or h("10.0.0.2")(r)) and p(53)(r)),
        ("not host 10.0.0.1 and port 443", lambda r: (not h(A)(r)) and p(443)(r)),
        ("not (host 10.0.0.1 and port 443)", lambda r: not (h(A)(r) and p(443)(r))),
        ("! host 10.0.0.1", lambda r: not h(A)(r)),
        ("!host 10.0.0.1", lambda r: not h(A)(r)),
        ("not not tcp", tcp),
        ("host 10.0.0.1 || host 2001:db8::1", lambda r: h(A)(r) or h(B)(r)),
        ("port 80 or 443", lambda r: p(80)(r) or p(443)(r)),
        ("port 80 or 443 or 53", lambda r: p(80)(r) or p(443)(r) or p(53)(r)),
        ("src host 10.0.0.1 or 10.0.0.2",
         lambda r: r["src_addr"] in ("10.0.0.1", "10.0.0.2")),
        ("tcp and (port 80 or 443 or 53)", lambda r: tcp(r) and (p(80)(r) or p(443)(r)
                                                                 or p(53)(r))),
        ("tcp port 80 or 443", lambda r: tcp(r) and p(80)(r) or p(443)(r)),
        ("bytes>1M and duration>10s",
         lambda r: total("bytes")(r) > 10**6 and duration(r) > 10 * SEC),
        ("((tcp))", tcp),
        ("not tcp or udp and not port 53",
         lambda r: (not tcp(r)) or (r["proto"] == "UDP" and not p(53)(r))),
        ("state SF or REJ", lambda r: r["state"] in ("SF", "REJ")),
        ("tcp and not port 22 and not net 10.0.0.0/8",
         lambda r: tcp(r) and not p(22)(r) and not sides("", net("10.0.0.0/8"))(r)),
    ]


ATOMS = [("tcp", lambda r: r["proto"] == "TCP"),
         ("udp", lambda r: r["proto"] == "UDP"),
         ("host 10.0.0.1", lambda r: sides("", host(A))(r)),
         ("src net 10.0.0.0/24", lambda r: sides("src ", net("10.0.0.0/24"))(r)),
         ("dst net 2001:db8::/32", lambda r: sides("dst ", net("2001:db8::/32"))(r)),
         ("port 443", lambda r: sides("", port(lambda x: x == 443))(r)),
         ("bytes > 1M", lambda r: total("bytes")(r) > 10**6),
         ("duration >= 10s", lambda r: duration(r) >= 10 * SEC),
         ("iface eth1", lambda r: r["iface"] == "eth1"),
         ("close fin", lambda r: r["close_reason"] == "fin"),
         ("rtt > 1ms", lambda r: r["rtt_ns"] is not None and r["rtt_ns"] > MS)]


def random_expression(rng, depth):
    """Expression text, the same expression in Python, and whether it is
    one atom. The grammar's precedence (not, and, or) is Python's, so
    parentheses are added only sometimes."""
    if depth == 0 or rng.random() < 0.3:
        i = rng.randrange(len(ATOMS))
        return ATOMS[i][0], f"atoms[{i}][1](r)", True
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        text, py, atom = random_expression(rng, depth - 1)
        if atom and rng.random() < 0.5:
            return f"not {text}", f"(not {py})", False
        return f"not ({text})", f"(not ({py}))", False
    parts = [random_expression(rng, depth - 1) for _ in range(rng.randrange(2, 4))]
    if rng.random() < 0.5:
        parts = [(f"({t})", f"({p})", a) for t, p, a in parts]
    return (f" {kind} ".join(t for t, _, _ in parts), f" {kind} ".join(p for _, p, _ in parts),
            False)


def test_booleans(db, conns):
    """and/or/not, precedence and parentheses; then random trees."""
    cases = [(e, f, True) for e, f in boolean_cases()]
    run_cases(db, conns, cases)
    # Precedence makes a difference on this data: or-first would differ.
    tcpdump_like = {r["uid"] for r in conns
                    if (sides("", host(A))(r) or sides("", host("10.0.0.2"))(r))
                    and sides("", port(lambda x: x == 53))(r)}
    ours = {r["uid"] for r in conns if boolean_cases()[2][1](r)}
    check(tcpdump_like != ours, "the data cannot tell and-first from left-to-right")
    rng = random.Random(7)
    randoms = []
    for _ in range(60):
        text, py, _ = random_expression(rng, 3)
        predicate = eval(f"lambda r: {py}", {"atoms": ATOMS})
        randoms.append((text, predicate, False))
    run_cases(db, conns, randoms)
    print(f"  {len(cases)} boolean forms and {len(randoms)} random trees against Python's "
          "and/or/not")


def test_argument_forms(db, conns):
    """The expression as trailing arguments equals -f; --host and the others
    join it with and."""
    expected = {r["uid"] for r in conns if boolean_cases()[0][1](r)}
    p = report(db, "--since", SINCE, "--until", UNTIL, "--by", "conn", "--format", "json",
               "host", "10.0.0.1", "and", "port", "443")
    check(p.returncode == 0 and {r["uid"] for r in json.loads(p.stdout)} == expected,
          f"trailing arguments: exit {p.returncode} {p.stderr}")
    got = uids(db, "port 443", "--host", "10.0.0.1")
    check(got == expected, "--host with -f 'port 443'")
    got = uids(db, "tcp", "--iface", "eth0", "--port", "443")
    check(got == {r["uid"] for r in conns if r["proto"] == "TCP" and r["iface"] == "eth0"
                  and 443 in (r["src_port"], r["dst_port"])}, "--iface and --port with -f tcp")
    p = report(db, "-f", "tcp", "udp")
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1,
          f"-f and trailing words both: exit {p.returncode}, {p.stderr!r}")
    print("  trailing arguments, -f and the --host style options agree")


ERRORS = [
    ("hots 10.0.0.1", 1, "hots"),
    ("host", 5, None),
    ("host 10.0.0.300", 6, "10.0.0.300"),
    ("host 10.0.0.1 and", 18, None),
    ("host 10.0.0.1 prot tcp", 15, "prot"),
    ("(host 10.0.0.1", 15, None),
    ("host 10.0.0.1)", 14, ")"),
    ("net 10.0.0.1/8", 5, "10.0.0.1/8"),
    ("net 10.0.0.0/33", 5, "10.0.0.0/33"),
    ("net 2001:db8::/129", 5, "2001:db8::/129"),
    ("net 02:00:00:00:00:01", 5, "02:00:00:00:00:01"),
    ("port 70000", 6, "70000"),
    ("port http", 6, "http"),
    ("portrange 100-10", 11, "100-10"),
    ("portrange 100", 11, "100"),
    ("bytes > 1.0001k", 9, "1.0001k"),
    ("bytes > 1X", 9, "1X"),
    ("bytes > 99999999999999999999", 9, "99999999999999999999"),
    ("duration > 10", 12, "10"),
    ("rtt < 5", 7, "5"),
    ("proto tcpp", 7, "tcpp"),
    ("proto 256", 7, "256"),
    ("state XX", 7, "XX"),
    ("close open", 7, "open"),
    ("src proto tcp", 1, "src"),
    ("dst duration > 1s", 1, "dst"),
    ("bytes >", 8, None),
    ("host 10.0.0.1 or or port 1", 18, "or"),
    ("()", 2, ")"),
    ("host > 10.0.0.1", 6, ">"),
    ("iface an-interface-name-too-long", 7, "an-interface-name-too-long"),
    ("src", 4, None),
    ("not", 4, None),
    ("tcp port", 9, None),
    ("port 1 & port 2", 8, "&"),
    ("port 1 2", 8, "2"),
]


def test_errors(db):
    """A bad filter: exit 2, one line naming the column and the token, no
    output."""
    for expression, column, token in ERRORS:
        p = report(db, "-f", expression)
        where = f"column {column}, '{token}'" if token else f"column {column}, at the end"
        lines = p.stderr.strip().splitlines()
        check(p.returncode == 2 and len(lines) == 1 and where in lines[0] and not p.stdout,
              f"{expression!r}: exit {p.returncode}, {p.stderr!r}, expected one line with "
              f"{where!r}")
    # Trailing arguments: the column in the words joined by one blank.
    p = report(db, "host", "10.0.0.1", "and", "prot", "tcp")
    check(p.returncode == 2 and "column 19, 'prot'" in p.stderr,
          f"trailing words: {p.returncode} {p.stderr!r}")
    print(f"  {len(ERRORS) + 1} bad filters: exit 2, one line with column and token")


# --- Time buckets ------------------------------------------------------------

def bucket_of(to_ns, width):
    """The bucket (start, start + width] of a traffic row: by its end."""
    return (to_ns - 1) // width


def expected_buckets(traffic, conns_by_id, width, since, until, key=None, admit=None):
    """{bucket: {key: [connections set, packets, bytes]}} for rows ending in
    (since, until], each row whole in the bucket of its end."""
    out = {}
    for t in traffic:
        if not since < t["to_ns"] <= until:
            continue
        c = conns_by_id[t["conn_id"]]
        if admit and not admit(c):
            continue
        for k, pkts, nbytes in key(c, t) if key else [((), t["orig_pkts"] + t["resp_pkts"],
                                                       t["orig_bytes"] + t["resp_bytes"])]:
            v = out.setdefault(bucket_of(t["to_ns"], width), {}).setdefault(k, [set(), 0, 0])
            v[0].add(t["conn_id"])
            v[1] += pkts
            v[2] += nbytes
    return out


def test_buckets_total(db, conns, traffic):
    """--every: one row per bucket of the window, zeros included, each
    traffic row whole in the bucket of its end; the buckets add up to the
    window."""
    by_id = {c["id"]: c for c in conns}
    cases = [(60 * SEC, T0 + 10 * 60 * SEC + 1, T0 + 100 * 60 * SEC, "1m"),
             (7 * 60 * SEC, T0, T0 + 3 * 3600 * SEC, "7m"),
             (5 * SEC, T0 + 3600 * SEC - 1, T0 + 3600 * SEC + 10 * 60 * SEC, "5s"),
             (3600 * SEC, T0 - 5 * 3600 * SEC, T0 + 4 * 3600 * SEC, "1h")]
    for width, since, until, every in cases:
        expected = expected_buckets(traffic, by_id, width, since, until)
        first_to = min(t["to_ns"] for t in traffic if t["to_ns"] > since)
        first = max(since, first_to - 1) // width
        last = (until - 1) // width
        rows = report_json(db, "--since", str_time(since), "--until", str_time(until),
                           "--every", every)
        want = []
        for b in range(first, last + 1):
            conns_, pkts, nbytes = expected.get(b, {}).get((), [set(), 0, 0])
            want.append({"time": tcflows_time(b * width), "start_ns": b * width,
                         "connections": len(conns_), "packets": pkts, "bytes": nbytes})
        check(rows == want, f"--every {every} from {str_time(since)}: {len(rows or [])} rows, "
                            f"expected {len(want)}; first difference "
                            f"{next(((g, w) for g, w in zip(rows or [], want) if g != w), None)}")
        window = report_json(db, "--since", str_time(since), "--until", str_time(until),
                             "--by", "total")
        check(window == [{"connections": len({t["conn_id"] for t in traffic
                                              if since < t["to_ns"] <= until}),
                          "packets": sum(r["packets"] for r in want),
                          "bytes": sum(r["bytes"] for r in want)}],
              f"--by total over the window of --every {every}: {window}")
    print(f"  {len(cases)} bucket widths (1m, 7m, 5s, 1h): every bucket as Python sums it")


def test_straddling(tmp):
    """A traffic row that straddles a bucket edge counts whole where it ends;
    one ending exactly on an edge belongs to the bucket that ends there."""
    path = os.path.join(tmp, "edge.db")
    subprocess.run([NEW_DB, path], check=True)
    db = sqlite3.connect(path)
    edge = T0 + 3600 * SEC  # a multiple of a minute
    db.execute(f"INSERT INTO connections ({', '.join(COLUMNS)}) VALUES "
               f"({', '.join('?' * len(COLUMNS))})",
               ["Cedge", "eth0", "TCP", "10.0.0.1", 1, "10.0.0.2", 2, 0, edge - 90 * SEC,
                edge + 50 * SEC, 6, 6000, 0, 0, "SF", "ShADFf", "fin", None, 0])
    db.executemany("INSERT INTO traffic VALUES (1, ?, ?, ?, ?, 0, 0)",
                   [(edge - 90 * SEC, edge - 60 * SEC, 1, 1000),   # ends on the edge before
                    (edge - 60 * SEC, edge - 30 * SEC, 1, 100),
                    (edge - 30 * SEC, edge + 30 * SEC, 1, 10),     # straddles the edge
                    (edge + 30 * SEC, edge + 60 * SEC, 3, 4890)])  # ends on the next edge
    db.commit()
    db.close()
    rows = report_json(path, "--since", str_time(edge - 3 * 60 * SEC), "--until",
                       str_time(edge + 2 * 60 * SEC), "--every", "1m")
    got = [(r["start_ns"] - edge) // SEC for r in rows or []], [r["bytes"] for r in rows or []]
    check(got == ([-120, -60, 0, 60], [1000, 100, 4900, 0]),
          f"straddling rows: buckets {got}, expected starts -120 -60 0 60 s with 1000, 100, "
          "4900, 0")
    print("  a row across a bucket edge counts whole in the bucket where it ends")


def flow_keys(c, t):
    out = []
    if t["orig_pkts"]:
        out.append(((c["proto"], c["src_addr"], c["src_port"], c["dst_addr"], c["dst_port"],
                     c["iface"]), t["orig_pkts"], t["orig_bytes"]))
    if t["resp_pkts"]:
        out.append(((c["proto"], c["dst_addr"], c["dst_port"], c["src_addr"], c["src_port"],
                     c["iface"]), t["resp_pkts"], t["resp_bytes"]))
    return out


KEYS = {
    "flow": (["proto", "src_addr", "src_port", "dst_addr", "dst_port", "iface"], flow_keys),
    "host": (["host"], lambda c, t: [((h,), t["orig_pkts"] + t["resp_pkts"],
                                      t["orig_bytes"] + t["resp_bytes"])
                                     for h in dict.fromkeys([c["src_addr"], c["dst_addr"]])]),
    "port": (["proto", "port"], lambda c, t: [((c["proto"], c["dst_port"]),
                                               t["orig_pkts"] + t["resp_pkts"],
                                               t["orig_bytes"] + t["resp_bytes"])]
             if c["proto"] in PORT_PROTOS else []),
    "proto": (["proto"], lambda c, t: [((c["proto"],), t["orig_pkts"] + t["resp_pkts"],
                                        t["orig_bytes"] + t["resp_bytes"])]),
}


def test_buckets_by(db, conns, traffic):
    """--every with --by: per bucket the --top keys with most bytes (then
    packets, then key), with a filter; csv as json."""
    by_id = {c["id"]: c for c in conns}
    since, until, width = T0 + 20 * 60 * SEC, T0 + 80 * 60 * SEC, 10 * 60 * SEC
    admit = lambda c: c["proto"] != "ICMP"  # noqa: E731
    for by, (columns, key) in KEYS.items():
        for top in (None, 2):
            args = ["--since", str_time(since), "--until", str_time(until), "--every", "10m",
                    "--by", by, "-f", "not icmp"] + (["--top", str(top)] if top else [])
            rows = report_json(db, *args)
            expected = expected_buckets(traffic, by_id, width, since, until, key, admit)
            want = []
            for b in sorted(expected):
                items = sorted(expected[b].items(), key=lambda kv: (-kv[1][2], -kv[1][1], kv[0]))
                for k, (cs, pkts, nbytes) in items[:top]:
                    row = {"time": tcflows_time(b * width), "start_ns": b * width}
                    row.update(zip(columns, k))
                    if by != "flow":
                        row["connections"] = len(cs)
                    row.update({"packets": pkts, "bytes": nbytes})
                    want.append(row)
            shown = set(want[0]) if want else set()
            got = [{k: v for k, v in r.items() if k in shown} for r in rows or []]
            check(got == want, f"--every 10m --by {by} --top {top}: {len(got)} rows, expected "
                               f"{len(want)}; first difference "
                               f"{next(((g, w) for g, w in zip(got, want) if g != w), None)}")
            csv_text = report(db, "--format", "csv", *args).stdout
            csv_rows = [line.split(",") for line in csv_text.splitlines()]
            check(csv_rows[0] == list((rows or [{}])[0].keys()) and
                  [[str(v) for v in r.values()] for r in rows or []] ==
                  [r for r in csv_rows[1:]], f"csv of --by {by} --top {top} differs from json")
    print("  --every 10m with --by flow, host, port, proto, --top 2 and a filter: per bucket "
          "as Python ranks it; csv equal to json")


BLOCKS = " ▏▎▍▌▋▊▉█"


def expected_bar(value, largest):
    if value <= 0:
        return ""
    eighths = -(-value * 40 * 8 // largest)
    return "█" * (eighths // 8) + ("" if eighths % 8 == 0 else BLOCKS[eighths % 8])


def test_bars(db):
    """The table: a bar per row in eighths of a cell, the largest bucket 40
    cells wide, any traffic at least an eighth."""
    for extra in ([], ["--by", "proto", "--top", "2"], ["--sort", "packets"]):
        args = ["--since", str_time(T0), "--until", str_time(T0 + 3 * 3600 * SEC), "--every",
                "5m"] + extra
        rows = report_json(db, *args)
        column = "packets" if "packets" in extra else "bytes"
        largest = max(r[column] for r in rows)
        lines = report(db, *args).stdout.splitlines()
        check(len(lines) == len(rows) + 1 and lines[0].startswith("TIME"),
              f"table {extra}: {len(lines)} lines for {len(rows)} rows")
        for line, row in zip(lines[1:], rows):
            last = line.split()[-1]
            bar = last if all(ch in BLOCKS for ch in last) else ""
            check(line.startswith(row["time"]) and bar == expected_bar(row[column], largest),
                  f"table {extra}: {line!r}, expected the bar {expected_bar(row[column], largest)!r}")
        check(any(expected_bar(r[column], largest) == "█" * 40 for r in rows) and
              any(0 < len(expected_bar(r[column], largest)) < 40 for r in rows),
              f"table {extra}: the data shows neither a full nor a partial bar")
    print("  bars: eighths of a cell, scaled to the largest bucket")


def test_bucket_limits(db, traffic):
    """Without --until the buckets reach now; from a --since before the data
    they start at its first traffic; too many buckets is bad usage."""
    before = time.time_ns()
    rows = report_json(db, "--since", SINCE, "--every", "1d")
    after = time.time_ns()
    day = 86400 * SEC
    first = min(t["to_ns"] for t in traffic)
    check(rows and rows[0]["start_ns"] == (first - 1) // day * day and
          rows[-1]["start_ns"] <= after and rows[-1]["start_ns"] + day >= before and
          len(rows) == (rows[-1]["start_ns"] - rows[0]["start_ns"]) // day + 1,
          f"--every 1d without --until: {rows[:1]} ... {rows[-1:]}")
    p = report(db, "--since", SINCE, "--until", UNTIL, "--every", "1s")
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "--every" in p.stderr,
          f"a million buckets: exit {p.returncode} {p.stderr!r}")
    for bad in (["--every", "0s"], ["--every", "soon"], ["--every", "1m", "--by", "conn"],
                ["--chart", "x.svg"], ["--every", "1m", "--chart", "x.gif"],
                ["--every", "1m", "--top", "3"]):
        p = report(db, *bad)
        check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1,
              f"{bad}: exit {p.returncode} {p.stderr!r}")
    print("  buckets reach now without --until, start at the first traffic; bad use is exit 2")


# --- The chart ---------------------------------------------------------------

def png_pixels(path):
    """Width, height and RGB pixels of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    channels = {2: 3, 6: 4}[color]
    assert depth == 8
    raw, stride = zlib.decompress(idat), width * channels
    pixels, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += [tuple(line[i:i + 3]) for i in range(0, stride, channels)]
        previous = line
    return width, height, pixels


def test_chart(db, tmp):
    """--chart FILE.svg and FILE.png: rendered (rsvg-convert for the SVG), the
    picture holds the lines of the top keys in their colors."""
    colors = [(0x4e, 0x79, 0xa7), (0xf2, 0x8e, 0x2b), (0xe1, 0x57, 0x59)]
    args = ["--since", str_time(T0), "--until", str_time(T0 + 3 * 3600 * SEC), "--every", "5m",
            "--by", "proto", "--top", "3"]
    for name in ("chart.svg", "chart.png"):
        path = os.path.join(tmp, name)
        p = report(db, *args, "--chart", path)
        if not check(p.returncode == 0 and os.path.getsize(path) > 0,
                     f"--chart {name}: exit {p.returncode} {p.stderr}"):
            continue
        png = path
        if name.endswith(".svg"):
            png = os.path.join(tmp, "chart-svg.png")
            r = subprocess.run([RSVG, "-o", png, path], capture_output=True, text=True)
            check(r.returncode == 0, f"rsvg-convert: {r.stderr}")
        width, height, pixels = png_pixels(png)
        drawn = sum(1 for px in pixels if px != (255, 255, 255))
        lines = [sum(1 for px in pixels if all(abs(a - b) < 40 for a, b in zip(px, c)))
                 for c in colors]
        check(width >= 600 and height >= 300 and drawn > 0.01 * len(pixels) and
              all(n > 200 for n in lines),
              f"{name}: {width}x{height}, {drawn} drawn pixels, per series color {lines}")
        print(f"  {name}: {width}x{height}, {drawn} pixels drawn, series colors {lines}")
    p = report(db, *args, "--chart", "/nonexistent/dir/chart.svg")
    check(p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1,
          f"--chart into a missing directory: exit {p.returncode} {p.stderr!r}")


def test_flows_filtered(db, conns, traffic):
    """The traffic reports (--by flow) apply the same filter as --by conn."""
    by_id = {c["id"]: c for c in conns}
    n = 0
    for expression, predicate, _ in primitive_cases()[::7] + [(e, f, 0) for e, f in
                                                             boolean_cases()[:6]]:
        expected = expected_buckets(traffic, by_id, 1 << 62, 0, 1 << 62, flow_keys,
                                    predicate).get(0, {})
        rows = report_json(db, "--since", SINCE, "--until", UNTIL, "-f", expression)
        got = {(r["proto"], r["src_addr"], r["src_port"], r["dst_addr"], r["dst_port"],
                r["iface"]): (r["packets"], r["bytes"]) for r in rows or []}
        want = {k: (v[1], v[2]) for k, v in expected.items()}
        check(got == want, f"--by flow -f {expression!r}: {len(got)} flows, expected {len(want)}")
        n += 1
    print(f"  {n} filters on --by flow: the window's traffic of the admitted connections")


def main():
    with tempfile.TemporaryDirectory(prefix="tq-") as tmp:
        db = os.path.join(tmp, "query.db")
        build(db)
        conns, traffic = read_back(db)
        print(f"database: {len(conns)} connections, {len(traffic)} traffic rows")
        for test in (lambda: test_primitives(db, conns, tmp), lambda: test_booleans(db, conns),
                     lambda: test_argument_forms(db, conns), lambda: test_errors(db),
                     lambda: test_flows_filtered(db, conns, traffic),
                     lambda: test_buckets_total(db, conns, traffic),
                     lambda: test_straddling(tmp),
                     lambda: test_buckets_by(db, conns, traffic), lambda: test_bars(db),
                     lambda: test_bucket_limits(db, traffic), lambda: test_chart(db, tmp)):
            test()
    if failures:
        print(f"{len(failures)} checks failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
