#!/usr/bin/env python3
"""Lab: with veth offloads off, tcflows' per-direction packets and IP bytes
equal those of a tcpdump capture of the same interface, exactly, for every
flow (link-layer ARP/ND flows included), and tcflows has no flow the capture
lacks. Traffic from real sockets, iperf3 and ping in two namespaces.
(test_same_flow_all_cpus floods too much for a capture: its reference is
the datagrams the sockets sent.)"""


import socket

import tcflows_lab as L

NO_LOSS_COUNTERS = ("malformed", "flow_full", "flow_error", "untracked_packets")


def expect_exact(obs, dev, label):
    """The whole comparison: every flow direction equal, nothing lost or extra."""
    print(L.counters_line(obs.snapshot))
    measured = L.snapshot_flows(obs.snapshot, dev)
    L.compare_flows(L.capture_flows(obs.frames), measured)
    counters = obs.snapshot["counters"]
    lost = {n: counters[n] for n in NO_LOSS_COUNTERS if counters[n]}
    L.check(not lost, f"{label}: frames not attributed to a flow: {lost}")


def require_flows(obs, *wanted):
    """The traffic really happened: each (proto, src, dst) has packets in the capture."""
    seen = {(f.key.proto, f.key.src, f.key.dst) for f in obs.frames}
    for want in wanted:
        if want not in seen:
            raise L.LabError(f"the capture has no {want}: the traffic did not run")


def run_exact(binary, traffic, label, interval="500ms"):
    with L.Lab(offloads=False) as lab:
        obs = L.observe(binary, lab, traffic, interval=interval)
        expect_exact(obs, lab.dev["a"], label)
        return lab, obs


def tcp_both_ways(binary, version, ports, sizes):
    """One connection opened from each side, data both ways; IP version 4 or 6."""
    def traffic(lab):
        addrs = lab.addr4 if version == 4 else lab.addr6
        return L.tcp_transfers([(lab, "a", "b", addrs["b"], ports[0], *sizes[0]),
                                (lab, "b", "a", addrs["a"], ports[1], *sizes[1])])
    _, obs = run_exact(binary, traffic, f"IPv{version} TCP")
    addrs = L.ADDR4 if version == 4 else L.ADDR6
    require_flows(obs, ("TCP", addrs["a"], addrs["b"]), ("TCP", addrs["b"], addrs["a"]))


def test_tcp_both_ways(binary):
    """IPv4 TCP, one connection opened from each side, data both ways."""
    tcp_both_ways(binary, 4, (5001, 5002), ((3_000_000, 1_000_000), (2_000_000, 500_000)))


def test_parallel_streams(binary):
    """Several TCP streams at once, both ways, and iperf3 -P 4 --bidir.

    Each connection's two senders are pinned to different CPUs, so both CPUs
    update the same flows' counters concurrently."""
    def traffic(lab):
        b = lab.addr4["b"]
        cpus = L.available_cpus()
        server = L.Process(["iperf3", "-s", "-1", "-B", b, "-p", 5201], ns=lab.ns["b"])
        L.wait_listening(lab.ns["b"], 5201)
        # Four connections at once, two opened from each side.
        sides = [("a", "b"), ("b", "a")] * 2
        specs = [(lab, c, s, lab.addr4[s], 6000 + i, 4_000_000, 4_000_000,
                  cpus[i % len(cpus):] + cpus) for i, (c, s) in enumerate(sides)]
        results = L.tcp_transfers(specs)
        L.run(["iperf3", "-c", b, "-p", 5201, "-P", 4, "--bidir", "-t", 2, "-b", "40M"],
              ns=lab.ns["a"], timeout=60)
        rc = server.stop(timeout=10)
        if rc != 0:
            raise L.LabError(f"iperf3 server exited {rc}: {L.tail(server.err.text())}")
        return results
    run_exact(binary, traffic, "parallel")


def veth_drops(lab):
    """Frames the veth pair dropped (a full backlog): no exact reference then."""
    total = 0
    for side in ("a", "b"):
        for name in ("rx_dropped", "tx_dropped"):
            path = f"/sys/class/net/{lab.dev[side]}/statistics/{name}"
            total += int(L.run(["cat", path], ns=lab.ns[side]).stdout)
    return total


def test_same_flow_all_cpus(binary):
    """One UDP flow each way flooded from threads on every CPU at once.

    Both CPUs update the counters of the same flow direction at the same
    time, half a million times each way; a lost update shows as a count
    below the datagrams the sockets sent. The reference is the sockets (a
    capture of a million frames would take tshark minutes): every datagram
    that send() took passes a's TC egress, and every one b sent reaches a's
    TC ingress unless the veth dropped it (then the run has no reference)."""
    per_thread = 250_000
    with L.Lab(offloads=False) as lab:
        flows = L.Tcflows(binary, lab.ns["a"], [lab.dev["a"]])
        lab.link_up()
        L.ping(lab, "a", lab.addr4["b"], count=1)  # neighbours resolved first
        out = L.Worker(L.udp_flood, lab, "a", 9100, per_thread, 2)
        back = L.Worker(L.udp_flood, lab, "b", 9101, per_thread, 2)
        out.start()
        back.start()
        sent = {"a": out.result(), "b": back.result()}
        L.settle()
        snapshot = flows.finish()
        dropped = veth_drops(lab)
        if dropped:
            raise L.LabError(f"the veth pair dropped {dropped} frames: no exact reference")
        measured = L.snapshot_flows(snapshot, lab.dev["a"])
        problems = []
        for side, port in (("a", 9100), ("b", 9101)):
            key = L.Key("UDP", lab.addr4[side], port, lab.addr4[lab.peer(side)], 9999)
            want = L.Counts(sent[side], sent[side] * (20 + 8 + 16))
            got = measured.get(key)
            print(f"  {L.describe_key(key)}: sockets sent {want.packets} ({want.bytes} B), "
                  f"tcflows {got}")
            if got != want:
                problems.append(f"{L.describe_key(key)}: tcflows {got}, sockets {want}")
        print(L.counters_line(snapshot))
        L.check(not problems, "; ".join(problems))


def test_udp(binary):
    """UDP request/response from each side, IPv4 and IPv6, and one-way UDP."""
    def traffic(lab):
        out = []
        for addrs in (lab.addr4, lab.addr6):
            out.append(L.udp_exchange(lab, "a", "b", addrs["b"], 7001, 50, 1000, reply_size=200))
            out.append(L.udp_exchange(lab, "b", "a", addrs["a"], 7002, 30, 1400, reply_size=20))
            out.append(L.udp_exchange(lab, "a", "b", addrs["b"], 7003, 20, 1))
        return out
    run_exact(binary, traffic, "udp")


def test_icmp(binary):
    """ICMP and ICMPv6 echo from each side, and port-unreachable errors.

    The errors quote an inner IP/UDP header that must not be taken for the
    packet's own."""
    def traffic(lab):
        for addrs in (lab.addr4, lab.addr6):
            L.ping(lab, "a", addrs["b"], count=5, size=56)
            L.ping(lab, "b", addrs["a"], count=3, size=1000)
            # A closed port: the answer is ICMP(v6) destination unreachable.
            sock = L.make_socket(lab.ns["a"], L.family_of(addrs["b"]), socket.SOCK_DGRAM)
            with sock:
                sock.sendto(b"x" * 100, (addrs["b"], 9))
            L.settle(0.2)
    _, obs = run_exact(binary, traffic, "icmp")
    require_flows(obs, ("ICMP", L.ADDR4["b"], L.ADDR4["a"]),
                  ("ICMPv6", L.ADDR6["b"], L.ADDR6["a"]))
    unreachable = [f for f in obs.frames if f.key.proto in ("ICMP", "ICMPv6")
                   and f.key.sport in (3 << 8 | 3, 1 << 8 | 4)]
    L.check(unreachable, "the capture has no ICMP port-unreachable: the error case did not run")


def test_ipv6_tcp(binary):
    """IPv6 TCP, one connection opened from each side, data both ways."""
    tcp_both_ways(binary, 6, (5003, 5004), ((2_000_000, 700_000), (1_500_000, 300_000)))


def tagged_frames(lab, side):
    """802.1Q and QinQ frames with IPv4/UDP, IPv6/UDP and ARP, written raw."""
    src, dst = L.mac_of(lab, side), L.mac_of(lab, lab.peer(side))
    one = [(0x8100, 100)]
    two = [(0x88A8, 200), (0x8100, 100)]
    n = 1 if side == "a" else 2
    # The JSON snapshot has no VLAN ids: flows that differ only by them
    # would print as two rows with the same key, so the QinQ flow has its own port.
    v4 = L.ipv4_udp(f"10.200.100.{n}", f"10.200.100.{3 - n}", 4000 + n, 4100, bytes(50))
    v4_qinq = L.ipv4_udp(f"10.200.100.{n}", f"10.200.100.{3 - n}", 4010 + n, 4100, bytes(50))
    v6 = L.ipv6_udp(f"fd00:200::{n}", f"fd00:200::{3 - n}", 4000 + n, 4100, bytes(70))
    arp = L.arp_request(src, f"10.200.100.{n}", f"10.200.100.{3 - n}")
    return ([L.frame(src, dst, one, 0x0800, v4)] * 5
            + [L.frame(src, dst, two, 0x0800, v4_qinq)] * 3
            + [L.frame(src, dst, one, 0x86DD, v6)] * 4
            + [L.frame(src, dst, one, 0x0806, arp)] * 2)


def test_vlan(binary):
    """802.1Q and QinQ frames both ways: exact too (tags inline or in skb metadata).

    Written raw from each side: on egress the tags are in the frame, on
    ingress the kernel has moved the outer tag into the skb's metadata."""
    def traffic(lab):
        L.send_frames(lab, "a", tagged_frames(lab, "a"))
        L.send_frames(lab, "b", tagged_frames(lab, "b"))
    _, obs = run_exact(binary, traffic, "vlan")
    require_flows(obs, ("UDP", "10.200.100.1", "10.200.100.2"),
                  ("UDP", "fd00:200::2", "fd00:200::1"))
    tagged = [f for f in obs.frames if f.key.src.startswith(("10.200.", "fd00:200:"))]
    L.check(len(tagged) == 2 * 12, f"the capture has {len(tagged)} tagged IP frames, not 24")


def test_final_snapshot(binary):
    """The snapshot printed at SIGTERM counts everything up to the stop.

    With --interval 1h it is the only snapshot: no periodic one can stand in."""
    def traffic(lab):
        L.ping(lab, "a", lab.addr4["b"], count=3)
        L.udp_exchange(lab, "b", "a", lab.addr6["a"], 7004, 10, 500, reply_size=50)
        L.tcp_transfers([(lab, "a", "b", lab.addr4["b"], 5005, 300_000, 100_000)])
    _, obs = run_exact(binary, traffic, "final snapshot", interval="1h")
    L.check(obs.snapshots == 1, f"tcflows printed {obs.snapshots} snapshots, expected only "
            "the final one")


if __name__ == "__main__":
    L.main([test_tcp_both_ways, test_parallel_streams, test_same_flow_all_cpus, test_udp,
            test_icmp, test_ipv6_tcp, test_vlan, test_final_snapshot])
