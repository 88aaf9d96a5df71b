#!/usr/bin/env python3
"""tcflows read: capture files through the TC program offline, against
references tcflows did not make.

- every capture in tests/pcaps and tests/community_id (and in the folders
  named by pcaps=DIR[:DIR...]) is read: exit 0, JSON lines that parse, one
  final record per uid, open connections ending with close reason eof;
- the well-formed captures: each connection's packets and bytes each way
  equal tshark's (tcp.stream, udp.stream, else the bidirectional key);
- the Community ID of every flow of the specification's captures equals the
  specification's baselines, seed 0 and seed 1, flow by flow;
- several files (and standard input) are read as one capture in time order;
- --ipfix exports to a collector on this host;
- Linux cooked (SLL, SLL2) and raw IP captures read as the Ethernet one;
- frames longer than a test run takes (9 000 and 60 000 bytes, as a GRO
  capture holds) count whole, as tshark counts them;
- bad input: a missing file, a file that is not a capture, an unsupported
  link type: one line, exit 2; a truncated capture: its frames, exit 0.
"""

import json
import os
import socket
import struct
import subprocess

import tcflows_lab as L
from tcflows_lab import compare, tshark

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PCAPS = os.path.join(TESTS, "pcaps")
COMMUNITY = os.path.join(TESTS, "community_id")
# Captures whose frames are all well formed and whole: tshark's connections
# are the reference for them (gso-*: one GRO frame longer than a test run
# takes). The others are malformed on purpose, cut by their snap length
# short of their IP length, jumbograms (whose length tshark's reference here
# does not read), or tunnels and link-layer protocols that tshark and tcflows
# key differently.
WELL_FORMED = ["802.1ad_QinQ.pcap", "dns_tcp.pcap", "dns_udp.pcap", "espudp1.pcap", "geneve.pcap",
               "icmpv6.pcap", "mptcp-fclose.pcap", "pppoe.pcap", "syslog_udp.pcap", "vxlan.pcap",
               "ipv4_tcp_http_xml.pcap", "gso-ipv4.pcap", "gso-ipv6.pcap"]


def captures():
    dirs = [PCAPS, COMMUNITY] + [d for d in L.OPTIONS.get("pcaps", "").split(":") if d]
    return sorted(os.path.join(d, f) for d in dirs for f in os.listdir(d)
                  if f.endswith((".pcap", ".pcapng")))


def read(binary, files, *extra, stdin=None, check=True):
    """tcflows read's JSON lines: (final records, all lines, the process).
    stdin: the bytes of a capture on standard input."""
    argv = [binary, "read", "--no-db", "--jsonl", "-", *extra, *files]
    if stdin is None:
        p = L.run(argv, check=False, timeout=120)
    else:
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
        p.stdout, p.stderr = p.stdout.decode(), p.stderr.decode()
    if check:
        L.check(p.returncode == 0, f"tcflows read {' '.join(files)}: exit {p.returncode}: "
                f"{L.tail(p.stderr)}")
    lines = [json.loads(line) for line in p.stdout.splitlines()] if p.returncode == 0 else []
    return [r for r in lines if not r["checkpoint"]], lines, p


# ---------------------------------------------------------------- pcap files

def pcap_frames(path):
    """(seconds, microseconds, original length, bytes) of a classic pcap's frames."""
    with open(path, "rb") as f:
        data = f.read()
    L.check(struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4, f"{path}: not a little-endian pcap")
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, usec, caplen, length = struct.unpack("<IIII", data[off:off + 16])
        frames.append((sec, usec, length, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return frames


def write_pcap(path, link_type, frames):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link_type))
        for sec, usec, length, data in frames:
            out.write(struct.pack("<IIII", sec, usec, len(data), length) + data)


def relinked(frames, link_type):
    """Ethernet frames behind another link header: SLL (113), SLL2 (276), raw IP (101)."""
    out = []
    for sec, usec, length, data in frames:
        ethertype, mac, body = data[12:14], data[6:12], data[14:]
        if link_type == 113:
            head = struct.pack(">HHH", 0, 1, 6) + mac + b"\0\0" + ethertype
        elif link_type == 276:
            head = ethertype + b"\0\0" + struct.pack(">IHBB", 2, 1, 0, 6) + mac + b"\0\0"
        else:
            head = b""
        out.append((sec, usec, length - 14 + len(head), head + body))
    return out


def counts(records):
    """The records as comparable rows: who, and their counts each way."""
    return sorted((r["proto"], r["src_addr"], r["src_port"], r["dst_addr"], r["dst_port"],
                   r["orig_pkts"], r["orig_bytes"], r["resp_pkts"], r["resp_bytes"],
                   r["start_ns"], r["close_reason"]) for r in records)


# ---------------------------------------------------------------- tests

def test_every_capture(binary):
    """every capture read: exit 0, one final record per uid, eof at the end"""
    problems = []
    for path in captures():
        finals, lines, p = read(binary, [path], check=False)
        name = os.path.basename(path)
        if p.returncode != 0:
            problems.append(f"{name}: exit {p.returncode}: {L.tail(p.stderr)}")
            continue
        uids = [r["uid"] for r in finals]
        if len(uids) != len(set(uids)) or {r["uid"] for r in lines} != set(uids):
            problems.append(f"{name}: not one final record per uid")
        if any(r["close_reason"] not in ("fin", "rst", "idle", "eof") for r in finals):
            problems.append(f"{name}: a final record without a close reason of a capture")
        print(f"  {name}: {len(finals)} records; {p.stderr.strip().splitlines()[0]}")
    for line in problems:
        print(f"    BAD {line}")
    L.check(not problems, f"{len(problems)} captures read badly")


def test_counts_equal_tshark(binary):
    """each connection's packets and bytes each way equal tshark's"""
    failed = []
    paths = [os.path.join(PCAPS, f) for f in WELL_FORMED]
    paths += sorted(os.path.join(COMMUNITY, f) for f in os.listdir(COMMUNITY) if f.endswith(".pcap"))
    for path in paths:
        finals, _, _ = read(binary, [path])
        conns = tshark.capture_connections(tshark.read_capture(path))
        try:
            compare.compare_records(conns, finals, os.path.basename(path), name="read")
        except L.Failure as e:
            failed.append(str(e))
    L.check(not failed, "; ".join(failed))


def community_ids(records):
    """Flows as the baselines list them, each with the ids of its records."""
    ids = {}
    for r in records:
        if r["community_id"] is None:
            continue
        ends = frozenset({r["src_addr"], r["dst_addr"]})
        ids.setdefault((r["proto"], ends), set()).add(r["community_id"])
    return ids


def check_baseline(binary, baseline, seed):
    with open(os.path.join(COMMUNITY, baseline)) as f:
        expected = json.load(f)
    paths = sorted(os.path.join(COMMUNITY, f) for f in os.listdir(COMMUNITY) if f.endswith(".pcap"))
    records = []
    for path in paths:
        records += read(binary, [path], "--community-id-seed", str(seed))[0]
    ours = community_ids(records)
    names = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
    wanted, problems = set(), []
    for e in expected:
        flow = (names.get(e["proto"], str(e["proto"])),
                frozenset({tshark.norm_addr(e["saddr"]), tshark.norm_addr(e["daddr"])}))
        wanted.add(e["communityid"])
        if e["communityid"] not in ours.get(flow, set()):
            problems.append(f"{e}: ours {sorted(ours.get(flow, set()))}")
    extra = {i for ids in ours.values() for i in ids} - wanted
    problems += [f"a record's id {i} is in no baseline flow" for i in sorted(extra)]
    print(f"  seed {seed}: {len(expected)} baseline flows, {len(records)} records, "
          f"{len(problems)} differences")
    for line in problems:
        print(f"    DIFF {line}")
    L.check(not problems, f"seed {seed}: {len(problems)} flows differ from {baseline}")


def test_community_id_seed_0(binary):
    """the Community ID of every flow equals the specification's, seed 0"""
    check_baseline(binary, "baseline_deflt.json", 0)


def test_community_id_seed_1(binary):
    """the Community ID of every flow equals the specification's, seed 1"""
    check_baseline(binary, "baseline_seed1.json", 1)


def test_files_merged_in_time_order(binary):
    """a capture split into two files, and read from stdin: the same records"""
    path = os.path.join(PCAPS, "dns_tcp.pcap")
    whole, _, _ = read(binary, [path])
    frames = pcap_frames(path)
    d = L.scratch_dir()
    odd, even = os.path.join(d, "odd.pcap"), os.path.join(d, "even.pcap")
    write_pcap(odd, 1, frames[1::2])
    write_pcap(even, 1, frames[0::2])
    split, _, _ = read(binary, [odd, even])
    L.check(counts(split) == counts(whole), f"split files: {counts(split)} != {counts(whole)}")
    with open(path, "rb") as f:
        piped, _, _ = read(binary, ["-"], stdin=f.read())
    L.check(counts(piped) == counts(whole), "standard input: other records")
    print(f"  {len(frames)} frames: {len(whole)} records from one file, two, and stdin")


def test_same_records_every_time(binary):
    """a capture read twice gives the same JSON lines, uids included"""
    for name in ("mptcp-fclose.pcap", "geneve.pcap"):
        path = os.path.join(PCAPS, name)
        first, second = read(binary, [path])[1], read(binary, [path])[1]
        L.check(first == second, f"{name}: the records differ between two reads")
        print(f"  {name}: {len(first)} lines, twice the same")


def test_link_types(binary):
    """Linux cooked (SLL, SLL2) and raw IP read as the Ethernet capture"""
    path = os.path.join(PCAPS, "dns_tcp.pcap")
    whole, _, _ = read(binary, [path])
    d = L.scratch_dir()
    for link_type, name in ((113, "SLL"), (276, "SLL2"), (101, "raw IP")):
        out = os.path.join(d, f"{link_type}.pcap")
        write_pcap(out, link_type, relinked(pcap_frames(path), link_type))
        got, _, _ = read(binary, [out])
        L.check(counts(got) == counts(whole), f"{name}: {counts(got)} != {counts(whole)}")
        print(f"  {name}: {len(got)} records, as the Ethernet capture")


def test_ipfix(binary):
    """--ipfix exports to a collector on this host; the files after it are read"""
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(5)
    url = f"udp://127.0.0.1:{collector.getsockname()[1]}"
    files = [os.path.join(COMMUNITY, f) for f in ("tcp.pcap", "udp.pcap")]
    p = L.run([binary, "read", "--no-db", "--ipfix", url, *files], timeout=60)
    L.check("read 14 frames from 2 files" in p.stdout and "0 failed" in p.stdout,
            f"summary: {p.stdout.strip()}")
    message = collector.recv(65535)
    L.check(struct.unpack(">H", message[:2])[0] == 10, "not an IPFIX message")
    print(f"  {len(message)} bytes of IPFIX; {p.stdout.strip().splitlines()[-1]}")


def tcp_frame(src, dst, sport, dport, flags, payload, v6=False):
    """An Ethernet TCP frame of `payload` zero bytes (checksums 0: not read)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, flags, 65535, 0, 0)
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(tcp) + payload, 6, 64) + \
            socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    else:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + payload, 0, 0x4000, 64, 6, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    ethertype = b"\x86\xdd" if v6 else b"\x08\x00"
    return bytes(6) + b"\x02\0\0\0\0\x01" + ethertype + ip + tcp + bytes(payload)


def large_frames():
    """Two connections whose frames a GRO capture holds: 9 000 and 60 000
    bytes, longer than a test run takes (one page), IPv4 and IPv6."""
    frames = []
    for a, b, v6 in (("10.0.0.1", "10.0.0.2", False), ("fd00::1", "fd00::2", True)):
        for i, (fwd, flags, payload) in enumerate([(1, 0x02, 0), (0, 0x12, 0), (1, 0x10, 0),
                                                   (1, 0x18, 9000 - 54), (0, 0x10, 0),
                                                   (0, 0x18, 60000 - 74), (1, 0x10, 0),
                                                   (1, 0x11, 0), (0, 0x11, 0), (1, 0x10, 0)]):
            src, dst, sport, dport = (a, b, 40000, 80) if fwd else (b, a, 80, 40000)
            data = tcp_frame(src, dst, sport, dport, flags, payload, v6)
            frames.append((1 + v6, i, len(data), data))
    return frames


def test_large_frames(binary):
    """9 000- and 60 000-byte frames count whole, as tshark counts them: whole,
    snapped to 128 bytes, and behind a Linux cooked header"""
    d = L.scratch_dir()
    frames = large_frames()
    snapped = [(sec, usec, length, data[:128]) for sec, usec, length, data in frames]
    for name, link_type, rows in (("whole", 1, frames), ("snapped", 1, snapped),
                                  ("SLL", 113, relinked(frames, 113))):
        path = os.path.join(d, f"large-{name}.pcap")
        write_pcap(path, link_type, rows)
        finals, _, p = read(binary, [path])
        summary = p.stderr.strip().splitlines()
        conns = tshark.capture_connections(tshark.read_capture(path))
        compare.compare_records(conns, finals, f"large frames, {name}", name="read")
        L.check("malformed 0" in summary[1], f"{name}: {summary}")
        print(f"  {name}: {len(finals)} records equal tshark's; {summary[0]}")


def test_bad_input(binary):
    """bad captures: one line and exit 2; a truncated one: its frames, exit 0"""
    d = L.scratch_dir()
    text = os.path.join(d, "text.pcap")
    with open(text, "w") as f:
        f.write("not a capture\n")
    null = os.path.join(d, "null.pcap")
    write_pcap(null, 0, [])  # BSD loopback: not a link type tcflows reads
    for files in ([os.path.join(d, "missing.pcap")], [text], [null]):
        _, _, p = read(binary, files, check=False)
        lines = p.stderr.strip().splitlines()
        print(f"  {os.path.basename(files[0])}: exit {p.returncode}: {lines}")
        L.check(p.returncode == 2 and len(lines) == 1 and not p.stdout,
                f"{files[0]}: exit {p.returncode}, stderr {lines}")
    with open(os.path.join(PCAPS, "dns_tcp.pcap"), "rb") as f:
        data = f.read()
    cut = os.path.join(d, "cut.pcap")
    with open(cut, "wb") as f:
        f.write(data[:len(data) - 20])
    finals, _, p = read(binary, [cut])
    L.check("read errors 1" in p.stderr and finals, f"truncated: {p.stderr.strip()}")
    print(f"  truncated: {len(finals)} records; {p.stderr.strip().splitlines()[0]}")


if __name__ == "__main__":
    L.main([test_every_capture, test_counts_equal_tshark, test_community_id_seed_0,
            test_community_id_seed_1, test_files_merged_in_time_order,
            test_same_records_every_time, test_link_types, test_large_frames, test_ipfix,
            test_bad_input])
