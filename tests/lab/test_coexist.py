#!/usr/bin/env python3
"""Lab: tcflows coexists with TC setups it does not own.

A pre-existing clsact qdisc and foreign filters (a u32 filter redirecting UDP
to port 7777 away on egress, a BPF program dropping UDP to port 7779 on
ingress) keep working while tcflows is attached and after it exits, and are
listed exactly as before; when tcflows created the qdisc itself, nothing of
it remains after exit. Needs foreign_bpf=PATH (foreign_drop.bpf.o).
"""

import os
import signal
import socket

import tcflows_lab as L

REDIRECTED, PASSED_OUT = 7777, 7778  # egress, from a to b
DROPPED, PASSED_IN = 7779, 7780  # ingress, from b to a
DATAGRAMS, PAYLOAD = 5, 100


def tc(lab, *args):
    return L.run(["tc", *args], ns=lab.ns["a"]).stdout


def tc_state(lab):
    dev = lab.dev["a"]
    qdiscs = [q for q in tc(lab, "qdisc", "show", "dev", dev).splitlines() if "clsact" in q]
    return {"clsact": qdiscs,
            "egress": tc(lab, "filter", "show", "dev", dev, "egress").strip(),
            "ingress": tc(lab, "filter", "show", "dev", dev, "ingress").strip()}


def tcflows_filters(state):
    return [line for hook in ("egress", "ingress") for line in state[hook].splitlines()
            if "tcflows_" in line]


def add_sink(lab):
    """A veth pair in namespace a without addresses: where the u32 filter
    redirects; its far end's rx_packets counts what the filter took."""
    return lab.add_spare("c")


def add_foreign_filters(lab, sink_near):
    dev = lab.dev["a"]
    tc(lab, "filter", "add", "dev", dev, "egress", "pref", "10", "protocol", "ip", "u32",
       "match", "ip", "dport", str(REDIRECTED), "0xffff",
       "action", "mirred", "egress", "redirect", "dev", sink_near)
    obj = L.option_file("foreign_bpf", "the built foreign_drop.bpf.o")
    tc(lab, "filter", "add", "dev", dev, "ingress", "pref", "10", "bpf", "da", "obj", obj,
       "sec", "tc")


def rx_packets(lab, dev):
    return int(L.run(["cat", f"/sys/class/net/{dev}/statistics/rx_packets"],
                     ns=lab.ns["a"]).stdout)


def received(lab, side, port, send):
    """Datagrams that arrived at port on side while send() ran."""
    addr = lab.addr4[side]
    sock = L.make_socket(lab.ns[side], socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind((addr, port))
        send(addr, port)
        L.settle(0.3)
        sock.setblocking(False)
        count = 0
        while True:
            try:
                sock.recv(2048)
            except BlockingIOError:
                return count
            count += 1


def udp_burst(lab, side):
    def send(addr, port):
        sock = L.make_socket(lab.ns[side], socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            for _ in range(DATAGRAMS):
                sock.sendto(b"x" * PAYLOAD, (addr, port))
    return send


def check_foreign_filters_work(lab, sink, when):
    """u32 takes UDP to 7777 away (into the sink), the BPF program drops UDP to
    7779, everything else passes."""
    before = rx_packets(lab, sink)
    got = {PASSED_OUT: received(lab, "b", PASSED_OUT, udp_burst(lab, "a")),
           REDIRECTED: received(lab, "b", REDIRECTED, udp_burst(lab, "a")),
           PASSED_IN: received(lab, "a", PASSED_IN, udp_burst(lab, "b")),
           DROPPED: received(lab, "a", DROPPED, udp_burst(lab, "b"))}
    sunk = rx_packets(lab, sink) - before
    print(f"  {when}: received {got}, redirected into the sink {sunk}")
    want = {PASSED_OUT: DATAGRAMS, REDIRECTED: 0, PASSED_IN: DATAGRAMS, DROPPED: 0}
    L.check(got == want and sunk == DATAGRAMS,
            f"{when}: the foreign filters do not work: received {got}, sunk {sunk}, "
            f"expected {want} and {DATAGRAMS} sunk")


def check_counted(snapshot, lab, port, src, dst):
    """tcflows runs first (priority 1) and hands every packet on: it counted the
    datagrams that the foreign filter then took."""
    flows = L.snapshot_flows(snapshot, lab.dev["a"])
    mine = [c for k, c in flows.items()
            if k.proto == "UDP" and k.dport == port and k.src == src and k.dst == dst]
    want = L.Counts(DATAGRAMS, DATAGRAMS * (20 + 8 + PAYLOAD))
    L.check(mine == [want], f"tcflows counted {mine} for UDP to {port}, expected [{want}]")


def test_foreign_filters_kept(binary):
    """A pre-existing clsact with foreign u32 and BPF filters: kept and working."""
    with L.Lab() as lab:
        near, sink = add_sink(lab)
        tc(lab, "qdisc", "add", "dev", lab.dev["a"], "clsact")
        add_foreign_filters(lab, near)
        before = tc_state(lab)
        lab.link_up()
        check_foreign_filters_work(lab, sink, "before tcflows")

        flows = L.Tcflows(binary, lab.ns["a"], [lab.dev["a"]])
        during = tc_state(lab)
        L.check(len(tcflows_filters(during)) == 2,
                f"tcflows filters while attached: {tcflows_filters(during)}")
        for hook in ("egress", "ingress"):
            for line in before[hook].splitlines():
                L.check(line in during[hook], f"{hook} filter gone while tcflows runs: {line}")
        check_foreign_filters_work(lab, sink, "while tcflows runs")
        snapshot = flows.finish()
        a, b = lab.addr4["a"], lab.addr4["b"]
        check_counted(snapshot, lab, REDIRECTED, a, b)
        check_counted(snapshot, lab, DROPPED, b, a)

        after = tc_state(lab)
        for hook in ("clsact", "egress", "ingress"):
            L.check(after[hook] == before[hook],
                    f"{hook} after tcflows exited differs from before:\n{after[hook]}\n"
                    f"--- before:\n{before[hook]}")
        print("  qdisc and foreign filters listed exactly as before tcflows")
        check_foreign_filters_work(lab, sink, "after tcflows exited")


def leftover_files(lab):
    """Lock files that name the interface, and anything in bpffs that does
    (tcflows pins nothing)."""
    return [p for root in ("/run/tcflows", L.BPFFS) for p in L.paths_under(root)
            if lab.dev["a"] in os.path.basename(p)]


def check_nothing_left(lab, when):
    state = tc_state(lab)
    L.check(state == {"clsact": [], "egress": "", "ingress": ""},
            f"{when}: tcflows left TC state behind: {state}")
    files = leftover_files(lab)
    L.check(not files, f"{when}: tcflows left files behind: {files[:4]}")
    print(f"  {when}: no clsact qdisc, no filter, no lock file, nothing in bpffs")


def test_own_qdisc_removed(binary):
    """tcflows created the clsact qdisc: nothing of it remains after SIGINT or SIGTERM."""
    with L.Lab() as lab:
        lab.link_up()
        for sig in (signal.SIGINT, signal.SIGTERM):
            check_nothing_left(lab, "before tcflows")
            flows = L.Tcflows(binary, lab.ns["a"], [lab.dev["a"]])
            state = tc_state(lab)
            L.check(state["clsact"] and len(tcflows_filters(state)) == 2,
                    f"tcflows is not attached as expected: {state}")
            L.ping(lab, "a", lab.addr4["b"], count=2)
            flows.finish(sig)
            check_nothing_left(lab, f"after {sig.name}")
            L.ping(lab, "a", lab.addr4["b"], count=2)


def test_empty_qdisc_kept(binary):
    """A pre-existing clsact qdisc without filters stays after tcflows exits."""
    with L.Lab() as lab:
        tc(lab, "qdisc", "add", "dev", lab.dev["a"], "clsact")
        before = tc_state(lab)
        lab.link_up()
        flows = L.Tcflows(binary, lab.ns["a"], [lab.dev["a"]])
        L.ping(lab, "a", lab.addr4["b"], count=2)
        flows.finish()
        after = tc_state(lab)
        L.check(after == before and before["clsact"],
                f"TC state after tcflows exited: {after}, before: {before}")
        print(f"  clsact kept, no filter: {after['clsact'][0].strip()}")


def test_filter_added_meanwhile(binary):
    """A filter added while tcflows (which made the qdisc) runs stays, working.

    tcflows created the clsact qdisc; someone added filters meanwhile: the
    qdisc and those filters stay after tcflows exits, and keep working."""
    with L.Lab() as lab:
        near, sink = add_sink(lab)
        lab.link_up()
        flows = L.Tcflows(binary, lab.ns["a"], [lab.dev["a"]])
        add_foreign_filters(lab, near)
        with_foreign = tc_state(lab)
        check_foreign_filters_work(lab, sink, "while tcflows runs")
        flows.finish()
        after = tc_state(lab)
        L.check(after["clsact"] and not tcflows_filters(after),
                f"after exit: clsact {after['clsact']}, tcflows filters {tcflows_filters(after)}")
        for hook in ("egress", "ingress"):
            # tcflows' filter: priority 1, a header line and a "tcflows_..." line.
            foreign = [line for line in with_foreign[hook].splitlines()
                       if "tcflows_" not in line and " pref 1 bpf " not in line]
            L.check(after[hook].splitlines() == foreign,
                    f"{hook} filters after exit:\n{after[hook]}\n--- expected:\n"
                    + "\n".join(foreign))
        print("  clsact and foreign filters kept, tcflows filters gone")
        check_foreign_filters_work(lab, sink, "after tcflows exited")


if __name__ == "__main__":
    L.main([test_foreign_filters_kept, test_own_qdisc_removed, test_empty_qdisc_kept,
            test_filter_added_meanwhile])
