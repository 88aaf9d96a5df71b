#!/usr/bin/env python3
"""Lab: tcflows' connection records (--jsonl) against a capture of
the same interface and conntrack with accounting in the same namespace.

Every connection of the capture (one per tcp.stream, udp.stream or ICMP echo
identifier, cut at the idle timeout the test set) appears exactly once as a
final record, with the capture's per-direction packets and IP bytes, its
first and last frame's times (within 1 ms), its originator, the Zeek history
of its packets and its handshake RTT; the scenario's connections have the
conn_state and close_reason that follow from what the scenario did, and
conntrack agrees on their number, status and (for small segments, no GSO)
counters. tcflows stops with SIGTERM; connections still open then end as
"shutdown"."""

import socket
import struct
import time

import tcflows_lab as L
from tcflows_lab import Expect

# Segments below the MSS: no GSO super-packets, so conntrack's counters
# (per skb) are a fair reference too.
REQUEST, REPLY = 300, 1000


# ---------------------------------------------------------------- TCP traffic


def _abort(sock):
    """close() with SO_LINGER 0: a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _await_end(sock, reset_expected):
    """Waits for the peer's FIN (recv returns nothing) or RST."""
    try:
        data = sock.recv(1)
    except ConnectionResetError:
        if not reset_expected:
            raise L.LabError("TCP peer reset the connection unexpectedly")
        return
    if data:
        raise L.LabError("TCP peer sent more than the scenario")


def _serve(listener, end):
    conn, _ = listener.accept()
    listener.close()
    conn.settimeout(5)
    L.recv_exact(conn, REQUEST)
    conn.sendall(bytes(REPLY))
    if end == "server":
        conn.close()
    elif end == "server-rst":
        L.recv_exact(conn, 1)  # the client has the reply: nothing in flight
        _abort(conn)
    else:
        _await_end(conn, reset_expected=end == "client-rst")
        conn.close()


def tcp_session(lab, server_addr, port, end, client_port=None):
    """One TCP connection from a to b: REQUEST bytes up, REPLY bytes down,
    then `end`: "client" or "server" closes first, "client-rst" or
    "server-rst" aborts with a RST."""
    listener = L.tcp_listener(lab, "b", server_addr, port)
    server = L.Worker(_serve, listener, end)
    server.start()
    client = L.make_socket(lab.ns["a"], L.family_of(server_addr), socket.SOCK_STREAM)
    client.settimeout(5)
    if client_port:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        client.bind(("", client_port))
    client.connect((server_addr, port))
    client.sendall(bytes(REQUEST))
    L.recv_exact(client, REPLY)
    if end == "client":
        client.close()
    elif end == "client-rst":
        _abort(client)
    else:
        if end == "server-rst":
            client.sendall(b"k")
        _await_end(client, reset_expected=end == "server-rst")
        client.close()
    server.result(timeout=10)


def connected_pair(lab, port):
    """A TCP connection from a to b's port: (client socket, server socket)."""
    return L.tcp_pair(lab, "a", "b", lab.addr4["b"], port, timeout=5)


def tcp_expect(port, state, close, letters, version=4, count=1, ct="ASSURED", ct_counts=True):
    """TCP connections from a to b's `port`; conntrack's counters are fair
    unless said otherwise."""
    addrs = L.ADDR4 if version == 4 else L.ADDR6
    return Expect("TCP", addrs["a"], addrs["b"], port, count=count, state=state, close=close,
                  letters=letters, ct=ct, ct_counts=ct_counts)


# ---------------------------------------------------------------- TCP tests


def test_normal_close(binary):
    """Normal close, client closes first and server closes first: SF, fin.

    --linger 1s: the records become final in a sweep before the stop."""
    def traffic(lab):
        tcp_session(lab, lab.addr4["b"], 5001, "client")
        tcp_session(lab, lab.addr4["b"], 5002, "server")
        L.settle(2.5)  # past the linger: final before SIGTERM
    expects = [tcp_expect(5001, "SF", "fin", "ShADdFf"),
               tcp_expect(5002, "SF", "fin", "ShADdFf")]
    run = L.observe_records(binary, traffic, timeouts=L.DEFAULT_TIMEOUTS._replace(linger=1))
    L.verify(run, expects, "normal close")


def test_rst_abort(binary):
    """RST abort by the originator (RSTO) and by the responder (RSTR): rst."""
    def traffic(lab):
        tcp_session(lab, lab.addr4["b"], 5011, "client-rst")
        tcp_session(lab, lab.addr4["b"], 5012, "server-rst")
    expects = [tcp_expect(5011, "RSTO", "rst", "ShADdR"),
               tcp_expect(5012, "RSTR", "rst", "ShADdr")]
    L.verify(L.observe_records(binary, traffic), expects, "RST abort")


def test_refused(binary):
    """A connection to a closed port: SYN, RST/ACK: REJ, rst.

    conntrack ends the entry on the RST without marking the reply seen: it
    stays UNREPLIED, but its counters have the RST."""
    def traffic(lab):
        sock = L.make_socket(lab.ns["a"], socket.AF_INET, socket.SOCK_STREAM)
        with sock:
            if sock.connect_ex((lab.addr4["b"], 5021)) != 111:  # ECONNREFUSED
                raise L.LabError("the connection to a closed port was not refused")
    expects = [tcp_expect(5021, "REJ", "rst", "Sr", ct="UNREPLIED")]
    L.verify(L.observe_records(binary, traffic), expects, "refused")


DROP_PORT = 5031
SYN_WAIT_S = 3.5  # the SYN and at least two retransmissions


def drop_syns(lab):
    """The server namespace drops TCP to DROP_PORT: the SYNs go unanswered."""
    L.run(["nft", "-f", "-"], ns=lab.ns["b"], input=(
        "table inet tcflows_lab_drop {\n"
        f" chain input {{ type filter hook input priority 0; tcp dport {DROP_PORT} drop\n }}\n"
        "}\n"))


def test_unanswered_syn(binary):
    """SYNs dropped by nftables in the server namespace: S0, ended idle.

    The client's retransmissions (1 s apart, or 1 s then 2 s on kernels
    without tcp_syn_linear_timeouts) are one connection: --tcp-timeout 3s is
    longer than their gaps. It ends idle 3 s after the last SYN, before the
    stop. conntrack counts only the first SYN (retransmitted SYNs leave its
    counters alone): its status is a reference here, its counters are not."""
    timeouts = L.DEFAULT_TIMEOUTS._replace(tcp=3)

    def traffic(lab):
        sock = L.make_socket(lab.ns["a"], socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        with sock:
            sock.connect_ex((lab.addr4["b"], DROP_PORT))
            time.sleep(SYN_WAIT_S)
        L.settle(timeouts.tcp + 2)
    expects = [tcp_expect(DROP_PORT, "S0", "idle", "S", ct="UNREPLIED", ct_counts=False)]
    run = L.observe_records(binary, traffic, timeouts=timeouts, prepare=drop_syns)
    L.verify(run, expects, "unanswered SYN")
    syns = sum(len(c.frames) for c in run.conns if c.key.dport == DROP_PORT)
    L.check(syns >= 3, f"the capture has {syns} SYNs, expected retransmissions")
    print(f"  {syns} SYNs, one connection")


def test_reused_tuple(binary):
    """Three consecutive connections on one 5-tuple, 0.2 s apart (the client
    binds the same port; the first and last end with the server closing
    first, the second with the client's RST, so the port is free at once):
    three records, each equal to its tcp.stream, the program splitting the
    flow entry at each SYN. Then a fourth after --linger 1s and a sweep have
    removed the entry: a record of its own too."""
    def traffic(lab):
        for end in ("server", "client-rst", "server"):
            tcp_session(lab, lab.addr4["b"], 5041, end, client_port=40041)
            time.sleep(0.2)
        time.sleep(2.5)
        tcp_session(lab, lab.addr4["b"], 5041, "server", client_port=40041)
    expects = [tcp_expect(5041, ["SF", "RSTO", "SF", "SF"], ["fin", "rst", "fin", "fin"],
                          ["ShADdFf", "ShADdR", "ShADdFf", "ShADdFf"], count=4)]
    run = L.observe_records(binary, traffic, timeouts=L.DEFAULT_TIMEOUTS._replace(linger=1))
    L.verify(run, expects, "reused 5-tuple")
    streams = {f.stream for c in run.conns if c.key.dport == 5041 for f in c.frames}
    ports = {c.key.sport for c in run.conns if c.key.dport == 5041}
    L.check(len(streams) == 4 and ports == {40041},
            f"expected 4 tcp.streams from port 40041, got {streams} from {ports}")


def test_ipv6_tcp(binary):
    """IPv6 TCP, client closes first and server closes first: SF, fin."""
    def traffic(lab):
        tcp_session(lab, lab.addr6["b"], 5051, "client")
        tcp_session(lab, lab.addr6["b"], 5052, "server")
    expects = [tcp_expect(5051, "SF", "fin", "ShADdFf", version=6),
               tcp_expect(5052, "SF", "fin", "ShADdFf", version=6)]
    L.verify(L.observe_records(binary, traffic), expects, "IPv6 TCP")


OPEN_PORT = 5081


def test_open_at_stop(binary):
    """A connection still open (established, quiet) when tcflows stops: its
    final record says S1 and "shutdown". The sockets close only after the
    capture has stopped, so the capture has no FIN either."""
    held = []

    def traffic(lab):
        client, conn = connected_pair(lab, OPEN_PORT)
        held.extend([client, conn])
        client.sendall(bytes(REQUEST))
        L.recv_exact(conn, REQUEST)
        conn.sendall(bytes(REPLY))
        L.recv_exact(client, REPLY)
    try:
        run = L.observe_records(binary, traffic)
    finally:
        for sock in held:
            sock.close()
    expects = [tcp_expect(OPEN_PORT, "S1", "shutdown", "ShADd")]
    L.verify(run, expects, "open at stop")


# ---------------------------------------------------------------- UDP, ICMP


def udp_twice(lab, port, gap_s):
    """Request/response, a pause of gap_s, request/response again, from one socket."""
    srv = L.make_socket(lab.ns["b"], socket.AF_INET, socket.SOCK_DGRAM)
    cli = L.make_socket(lab.ns["a"], socket.AF_INET, socket.SOCK_DGRAM)
    with srv, cli:
        for s in (srv, cli):
            s.settimeout(3)
        srv.bind((lab.addr4["b"], port))
        cli.connect((lab.addr4["b"], port))
        for i in range(2):
            if i:
                time.sleep(gap_s)
            cli.send(bytes(100))
            _, peer = srv.recvfrom(2048)
            srv.sendto(bytes(40), peer)
            cli.recv(2048)


def test_udp(binary):
    """UDP request/response (SF) over IPv4 and IPv6, one-way (S0), and one
    socket pair quiet for longer than --udp-timeout 1s in between (two
    connections); all end idle before the stop.

    conntrack has no reference for the last (its UDP timeout is 30 s: one
    entry for both)."""
    timeouts = L.DEFAULT_TIMEOUTS._replace(udp=1)

    def traffic(lab):
        L.udp_exchange(lab, "a", "b", lab.addr4["b"], 7001, 3, 200, reply_size=50)
        L.udp_exchange(lab, "a", "b", lab.addr6["b"], 7002, 4, 300, reply_size=60)
        L.udp_exchange(lab, "a", "b", lab.addr4["b"], 7003, 3, 200)
        udp_twice(lab, 7004, gap_s=2.5)
        L.settle(timeouts.udp + 1.5)
    a, b = L.ADDR4["a"], L.ADDR4["b"]
    expects = [Expect("UDP", a, b, 7001, state="SF", close="idle", letters="Dd", ct="",
                      ct_counts=True),
               Expect("UDP", L.ADDR6["a"], L.ADDR6["b"], 7002, state="SF", close="idle",
                      letters="Dd", ct="", ct_counts=True),
               Expect("UDP", a, b, 7003, state="S0", close="idle", letters="D", ct="UNREPLIED",
                      ct_counts=True),
               Expect("UDP", a, b, 7004, count=2, state="SF", close="idle", letters="Dd")]
    L.verify(L.observe_records(binary, traffic, timeouts=timeouts), expects, "UDP")


def test_icmp_echo(binary):
    """Two pings with different identifiers (two connections) and an ICMPv6
    ping; --icmp-timeout 1s: they end idle before the stop."""
    timeouts = L.DEFAULT_TIMEOUTS._replace(icmp=1)

    def traffic(lab):
        L.ping(lab, "a", lab.addr4["b"], count=3)
        L.ping(lab, "a", lab.addr4["b"], count=4, size=200)
        L.ping(lab, "a", lab.addr6["b"], count=3, size=100)
        L.settle(timeouts.icmp + 1.5)
    expects = [Expect("ICMP", L.ADDR4["a"], L.ADDR4["b"], count=2, state="OTH", close="idle",
                      letters="Dd", ct="", ct_counts=True),
               Expect("ICMPv6", L.ADDR6["a"], L.ADDR6["b"], state="OTH", close="idle",
                      letters="Dd", ct="", ct_counts=True)]
    run = L.observe_records(binary, traffic, timeouts=timeouts)
    L.verify(run, expects, "ICMP echo")
    idents = {c.key.sport for c in run.conns if c.key.proto == "ICMP"}
    L.check(len(idents) == 2, f"expected two echo identifiers, the capture has {idents}")


# ---------------------------------------------------------------- long-lived


LONG_PORT = 5061


def trickle(lab, seconds=3.0, period=0.1):
    """One TCP connection that exchanges 100 and 50 bytes every period for `seconds`."""
    client, conn = connected_pair(lab, LONG_PORT)
    with conn, client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            client.sendall(bytes(100))
            L.recv_exact(conn, 100)
            conn.sendall(bytes(50))
            L.recv_exact(client, 50)
            time.sleep(period)
        client.shutdown(socket.SHUT_WR)
        _await_end(conn, reset_expected=False)
        conn.close()
        _await_end(client, reset_expected=False)


def prefix_counts(conn):
    """(time, orig, resp) after each frame of a capture connection."""
    out, orig, resp = [], L.Counts(0, 0), L.Counts(0, 0)
    for f in conn.frames:
        if L.is_orig_frame(conn, f):
            orig = L.Counts(orig.packets + 1, orig.bytes + f.bytes)
        else:
            resp = L.Counts(resp.packets + 1, resp.bytes + f.bytes)
        out.append((f.time_ns, orig, resp))
    return out


def check_checkpoints(conn, lines, problems):
    """Each checkpoint equals the capture up to some frame within 1 ms of its end_ns."""
    prefixes = prefix_counts(conn)
    for rec in lines:
        got = (L.rec_counts(rec, "orig"), L.rec_counts(rec, "resp"))
        if not any((o, r) == got and abs(t - rec["end_ns"]) <= L.TOLERANCE_NS
                   for t, o, r in prefixes):
            problems.add(f"checkpoint {L.counts_text(got[0])} {L.counts_text(got[1])} at "
                         f"end_ns {rec['end_ns']} is no prefix of the capture's connection"
                         f"{L.evidence(conn, rec)}")


def test_long_lived(binary):
    """A connection open across several --interval periods (500 ms, traffic
    for 3 s): checkpoint lines, whose counters never decrease and each equal
    the capture up to its end_ns, then one final record equal to the capture."""
    expects = [tcp_expect(LONG_PORT, "SF", "fin", "ShADdFf")]
    run = L.observe_records(binary, trickle, interval="500ms")
    L.verify(run, expects, "long-lived")
    conn = next(c for c in run.conns if c.key.dport == LONG_PORT)
    rec_uid = next(r["uid"] for r in run.lines if r["dst_port"] == LONG_PORT)
    lines = [r for r in run.lines if r["uid"] == rec_uid]
    checkpoints = [r for r in lines if r["checkpoint"]]
    problems = L.Problems()
    if len(checkpoints) < 4:
        problems.add(f"{len(checkpoints)} checkpoints in 3 s at --interval 500ms, expected >= 4")
    check_checkpoints(conn, checkpoints, problems)
    print(f"  {len(checkpoints)} checkpoints: orig packets "
          f"{[r['orig_pkts'] for r in checkpoints]}, final {lines[-1]['orig_pkts']}")
    problems.verdict("long-lived checkpoints")


if __name__ == "__main__":
    L.main([test_normal_close, test_rst_abort, test_refused, test_unanswered_syn,
            test_reused_tuple, test_ipv6_tcp, test_open_at_stop, test_udp, test_icmp_echo,
            test_long_lived])
