#!/usr/bin/env python3
"""Lab: TCP health in connection records (--jsonl) against tshark's TCP
analysis of a capture of the same interface, per tcp.stream and direction:
the data segments tshark flags as retransmitted (tcp.analysis.retransmission,
fast or spurious) with their IP bytes, those it flags out of order, and the
segments advertising a zero window; round trips within the range of tshark's
tcp.analysis.ack_rtt of the same segments.

Losses are made, not hoped for: nftables in the server's namespace drops
every 7th data segment the request/response client sends, and every 50th
of the bulk sender (numgen: the retransmission is the next one and passes). A request/response client waits
for each reply, so a lost request is sent again only after a timer, never
close behind new data: there retransmitted and out of order are told apart
alike by both. A bulk sender's retransmissions come right after new data,
within a round trip, where the two tell them apart by times taken on two
clocks (the capture's and the program's): there their sum is compared. A
receiver that stops reading closes its window."""

import socket
import threading
import time

import tcflows_lab as L

RR_PORT, BULK_PORT, ZWIN_PORT = 7101, 7102, 7103
TSHARK_FIELDS = ("tcp.stream", "ip.src", "tcp.srcport", "ip.len", "tcp.len",
                 "tcp.analysis.retransmission", "tcp.analysis.fast_retransmission",
                 "tcp.analysis.spurious_retransmission", "tcp.analysis.out_of_order",
                 "tcp.analysis.zero_window", "tcp.analysis.ack_rtt", "tcp.dstport")
RTT_SLACK_NS = 100_000  # the capture's clock against the program's


def drop_every_7th(lab):
    rules = f"""
table inet tcflows_lab_loss {{
  chain input {{
    type filter hook input priority 0;
    tcp dport {RR_PORT} tcp flags & (syn | fin | rst) == 0 meta length > 200 \\
      numgen inc mod 7 == 6 drop
    tcp dport {BULK_PORT} tcp flags & (syn | fin | rst) == 0 meta length > 200 \\
      numgen inc mod 50 == 49 drop
  }}
}}
"""
    L.run(["nft", "-f", "-"], ns=lab.ns["b"], input=rules)


def request_response(lab):
    client, server = L.tcp_pair(lab, "a", "b", lab.addr4["b"], RR_PORT, timeout=20)
    with client, server:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(40):
            client.sendall(bytes(600))
            L.recv_exact(server, 600)
            server.sendall(bytes(100))
            L.recv_exact(client, 100)
        client.shutdown(socket.SHUT_WR)
        L.recv_all(server)
        server.close()
        L.recv_all(client)


def bulk(lab):
    client, server = L.tcp_pair(lab, "a", "b", lab.addr4["b"], BULK_PORT, timeout=20)
    with client, server:
        reader = L.Worker(L.recv_all, server)
        reader.start()
        L.send_all(client, 1_000_000)  # and shuts down
        if reader.result() != 1_000_000:
            raise L.LabError("the bulk transfer lost data")


def zero_window(lab):
    """The server's receive buffer fills while it does not read, then it reads all."""
    listener = L.tcp_listener(lab, "b", lab.addr4["b"], ZWIN_PORT)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client = L.make_socket(lab.ns["a"], socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(20)
    client.connect((lab.addr4["b"], ZWIN_PORT))
    server, _ = listener.accept()
    listener.close()
    with client, server:
        server.settimeout(20)
        sender = threading.Thread(target=client.sendall, args=(bytes(400_000),))
        sender.start()
        time.sleep(1.5)  # the window closes; the sender probes it
        L.recv_exact(server, 400_000)
        sender.join(20)
        client.shutdown(socket.SHUT_WR)
        L.recv_all(server)


def traffic(lab):
    request_response(lab)
    bulk(lab)
    zero_window(lab)


def tshark_health(path):
    """(stream, src addr, src port) -> the counts of tshark's TCP analysis."""
    argv = ["tshark", "-n", "-r", path, "-o", "tcp.desegment_tcp_streams:FALSE",
            "-o", "tcp.analyze_sequence_numbers:TRUE", "-Y", "tcp", "-T", "fields",
            "-E", "separator=/t", "-E", "occurrence=f"]
    for field in TSHARK_FIELDS:
        argv += ["-e", field]
    sides = {}
    for line in L.run(argv, timeout=300).stdout.splitlines():
        f = dict(zip(TSHARK_FIELDS, line.split("\t")))
        side = sides.setdefault((int(f["tcp.stream"]), L.norm_addr(f["ip.src"]),
                                 int(f["tcp.srcport"])),
                                {"retx": 0, "retx_bytes": 0, "ooo": 0, "zwin": 0, "acks": [],
                                 "dport": int(f["tcp.dstport"])})
        data = int(f["tcp.len"] or 0) > 0
        retx = any(f[k] for k in TSHARK_FIELDS[5:8])
        if data and retx:
            side["retx"] += 1
            side["retx_bytes"] += int(f["ip.len"])
        elif data and f["tcp.analysis.out_of_order"]:
            side["ooo"] += 1
        if f["tcp.analysis.zero_window"]:
            side["zwin"] += 1
        if f["tcp.analysis.ack_rtt"]:
            side["acks"].append(int(float(f["tcp.analysis.ack_rtt"]) * 1e9))
    return sides


def side_of(sides, addr, port, dport):
    found = [v for (_, a, p), v in sides.items() if a == addr and p == port and v["dport"] == dport]
    if len(found) != 1:
        raise L.LabError(f"the capture has {len(found)} streams from {addr}:{port}")
    return found[0]


def compare_side(rec, prefix, theirs, peer, problems, split):
    what = f"{rec['src_addr']}:{rec['src_port']} -> :{rec['dst_port']} {prefix}"
    got = {k: rec[f"{prefix}_{k}"] for k in ("retx_pkts", "retx_bytes", "ooo_pkts",
                                              "zero_windows")}
    want = {"retx_pkts": theirs["retx"], "retx_bytes": theirs["retx_bytes"],
            "ooo_pkts": theirs["ooo"], "zero_windows": theirs["zwin"]}
    if not split:
        got = {"retx+ooo": got["retx_pkts"] + got["ooo_pkts"],
               "zero_windows": got["zero_windows"]}
        want = {"retx+ooo": want["retx_pkts"] + want["ooo_pkts"],
                "zero_windows": want["zero_windows"]}
    if got != want:
        problems.add(f"{what}: tcflows {got}, tshark {want}")
    # The peer's ACKs time this side's segments.
    if rec[f"{prefix}_rtt_samples"] and peer["acks"]:
        low, high = min(peer["acks"]) - RTT_SLACK_NS, max(peer["acks"]) + RTT_SLACK_NS
        for k in ("rtt_min_ns", "rtt_max_ns"):
            if not low <= rec[f"{prefix}_{k}"] <= high:
                problems.add(f"{what}: {k} {rec[f'{prefix}_{k}']} outside tshark's ack_rtt "
                             f"[{low}, {high}]")
    acks = f"{min(peer['acks'])}..{max(peer['acks'])}" if peer["acks"] else "none"
    print(f"  {what}: {got} rtt {rec[f'{prefix}_rtt_samples']} samples "
          f"{rec[f'{prefix}_rtt_min_ns']}..{rec[f'{prefix}_rtt_max_ns']} ns "
          f"(tshark's ack_rtt {acks} ns)")


def test_health_against_tshark(binary):
    run = L.observe_records(binary, traffic, prepare=drop_every_7th, conntrack=False)
    sides = tshark_health(run.obs.pcap)
    finals = {r["dst_port"]: r for r in run.lines if not r["checkpoint"] and r["proto"] == "TCP"}
    problems = L.Problems()
    for port in (RR_PORT, BULK_PORT, ZWIN_PORT):
        rec = finals.get(port)
        if rec is None:
            problems.add(f"no final record of the connection to port {port}")
            continue
        orig = side_of(sides, rec["src_addr"], rec["src_port"], port)
        resp = side_of(sides, rec["dst_addr"], port, rec["src_port"])
        split = port != BULK_PORT
        compare_side(rec, "orig", orig, resp, problems, split)
        compare_side(rec, "resp", resp, orig, problems, split)
    # The scenario made what it meant to make.
    rr, zw = finals.get(RR_PORT), finals.get(ZWIN_PORT)
    L.check(rr is not None and rr["orig_retx_pkts"] >= 3,
            f"the request/response connection shows no drops: {rr}")
    L.check(rr["orig_rtt_samples"] >= 20, f"few round trips measured: {rr['orig_rtt_samples']}")
    L.check(zw is not None and zw["resp_zero_windows"] >= 1,
            f"the receiver's window never closed: {zw}")
    L.check("T" in rr["history"] and "w" in zw["history"],
            f"histories without t/w: {rr['history']} {zw['history']}")
    problems.verdict("TCP health")


def test_other_protocols_have_none(binary):
    """A UDP exchange: no health fields (null), not zeros."""
    def udp(lab):
        L.udp_exchange(lab, "a", "b", lab.addr4["b"], 7200, 3, 100, reply_size=100)
    run = L.observe_records(binary, udp, conntrack=False)
    recs = [r for r in run.lines if r["proto"] == "UDP" and r["dst_port"] == 7200]
    L.check(recs, "no UDP record")
    for r in recs:
        L.check(r["orig_retx_pkts"] is None and r["resp_rtt_samples"] is None,
                f"UDP record with TCP health: {r}")


if __name__ == "__main__":
    L.main([test_health_against_tshark, test_other_protocols_have_none])
