#!/usr/bin/env python3
"""Lab (nothing lost): stopping and restarting `tcflows record`.

A clean stop writes every open connection and removes everything; after
kill -9 the filters keep counting into their maps (nothing is pinned) and a
restarted agent adopts them from the filters, so the database equals a
capture that covers the gap; `tcflows detach` removes what a killed agent
left and nothing else; a second agent on an interface refuses. The
reference is always a tcpdump capture of the same interface.
"""

import os
import signal
import time

import tcflows_lab as L


def udp_open(lab, port, exchanges=5):
    """A UDP flow a -> b that stays open (no timeout before the test ends)."""
    return L.udp_exchange(lab, "a", "b", lab.addr6["b"], port, exchanges, 400, reply_size=40)


def expect_closed_by(rows, port, reason, what):
    mine = [r for r in rows if port in (r["src_port"], r["dst_port"])]
    L.check(len(mine) == 1, f"{what}: {len(mine)} records with port {port}, expected 1")
    L.check(mine[0]["close_reason"] == reason,
            f"{what}: close_reason {mine[0]['close_reason']!r}, expected {reason!r}")


def stop_by_signal(binary, sig, interval):
    """Traffic up to just before the stop (late ACKs aside): what the last
    sweep before the signal missed must be in the final records too."""
    name = signal.Signals(sig).name
    jsonl = os.path.join(L.scratch_dir(), "t.jsonl")
    with L.Recorded(binary, args=["--jsonl", jsonl], interval=interval) as r:
        lab = r.lab
        steady = L.SteadyTcp(lab, "a", "b", lab.addr4["b"], 5101)
        udp_open(lab, 5102)
        L.ping(lab, "b", lab.addr4["a"], count=3)
        L.tcp_transfers([(lab, "b", "a", lab.addr4["a"], 5103, 200_000, 50_000)])
        time.sleep(1.5)
        steady.halt()
        snapshot = r.finish(sig, settle_s=0.3)
        left = L.leftovers(r.ns, [r.dev])
        qdiscs, _ = L.tc_state(r.ns, r.dev)
        steady.close()
    print(f"  {name}: exit 0; final snapshot {len(snapshot['flows'])} flows")
    L.check(not left, f"{name} left: {left}")
    L.check(not any("clsact" in q for q in qdiscs), f"{name} left its clsact qdisc: {qdiscs}")
    conns = L.capture_connections(r.frames)
    for label, rows in (("database", r.db.rows()), ("jsonl", L.latest_jsonl(jsonl))):
        open_rows = [row for row in rows if row["close_reason"] is None]
        L.check(not open_rows, f"{name}: {len(open_rows)} {label} records still open after "
                f"the stop, e.g. {open_rows[:1]}")
        for port, what in ((5101, "the open TCP connection"), (5102, "the open UDP flow")):
            expect_closed_by(rows, port, "shutdown", f"{label}, {what}")
        L.compare_records(conns, rows, f"{name}, {label}", name=label)
    r.db.check_traffic_sums()


def test_sigterm(binary):
    """SIGTERM: open connections written final ('shutdown'), exact; nothing left; exit 0.

    With --interval 500ms their earlier checkpoints are brought up to date."""
    stop_by_signal(binary, signal.SIGTERM, "500ms")


def test_sigint(binary):
    """SIGINT: as SIGTERM; with --interval 1h the stop writes every record."""
    stop_by_signal(binary, signal.SIGINT, "1h")


def test_kill_restart(binary):
    """kill -9, traffic in the gap, restart, twice: the database equals the capture.

    A long TCP connection sends steadily and new TCP and UDP connections
    start every 100 ms throughout: before each kill, during the gaps (some
    start and end in them) and after the restarts. Each connection is
    recorded once, with every packet each way, and its interval rows add up.
    The second kill hits an agent that had adopted the first one's maps."""
    kill_restart(L.Recorded(binary))


def kill_restart(recorded):
    """test_kill_restart on `recorded` (an L.Recorded not yet entered)."""
    with recorded as r:
        lab = r.lab
        steady = L.SteadyTcp(lab, "a", "b", lab.addr4["b"], 5201)
        steady6 = L.SteadyTcp(lab, "b", "a", lab.addr6["a"], 5202, chunk=3000, reply=10,
                              period=0.05)
        short = L.ShortConnections(lab, "a", "b", lab.addr4["b"], 5210)
        left_by_kill, adopted = [], []
        for gap in (3, 1.5):
            time.sleep(2)
            running = L.tcflows_programs(r.ns, r.dev)
            r.agent.kill9()
            started = short.tcp_done
            left_by_kill.append((running, L.tcflows_programs(r.ns, r.dev), pinned(r.dev)))
            time.sleep(gap)
            r.agent = r.start_agent()
            adopted.append(r.agent.said("adopting"))
            print(f"  kill -9, {gap} s gap ({short.tcp_done - started} TCP connections "
                  f"started in it), restart")
        time.sleep(2)
        made = short.stop()
        steady.close()
        steady6.close()
        r.finish()
        left = L.leftovers(r.ns, [r.dev])
    print(f"  programs before and after each kill -9, pins: {left_by_kill}; short connections: "
          f"{made}")
    for before, after, pins in left_by_kill:
        L.check(set(after) == {"ingress", "egress"} and after == before,
                f"kill -9 did not leave the filters running as they were: {before} -> {after}")
        L.check(not pins, f"tcflows pinned in bpffs: {pins}")
    r.compare("kill -9 and restart")
    r.db.check_traffic_sums()
    got, want = L.totals(r.db.rows()), L.capture_totals(r.frames)
    print(f"  totals: database {got[0]} packets {got[1]} bytes, capture {want[0]} / {want[1]}")
    L.check(got == want, f"database totals {got} != capture totals {want}")
    L.check(all(adopted), f"the restarted agents adopted the filters' maps: {adopted}")
    L.check(not left, f"the clean stop after the restarts left: {left}")


def pinned(dev):
    """What names dev in the host's bpffs (tcflows must pin nothing)."""
    return [p for p in L.paths_under(L.BPFFS) if dev in p]


def test_failed_restart(binary):
    """A restart that fails (its database locked by another writer) keeps
    what the killed agent left: the next restart adopts it, and the database
    equals the capture, gap included."""
    with L.Recorded(binary) as r:
        steady = L.SteadyTcp(r.lab, "a", "b", r.lab.addr4["b"], 5251)
        short = L.ShortConnections(r.lab, "a", "b", r.lab.addr4["b"], 5260)
        time.sleep(1.5)
        r.agent.kill9()
        with L.DbWriteLock(r.db.path):
            p = L.tcflows_cmd(binary, r.ns, "record", "-i", r.dev, "--db", r.db.path, "-q")
        print(f"  restart with the database locked: exit {p.returncode}: "
              f"{L.tail(p.stderr, 1)}")
        L.check(p.returncode != 0, "the restart with a locked database ran")
        filters = L.tcflows_filters(r.ns, r.dev)
        time.sleep(1)
        r.agent = r.start_agent()
        time.sleep(1.5)
        short.stop()
        steady.close()
        r.finish()
    print(f"  after the failed restart: filters {filters}")
    L.check(filters == {"ingress": 1, "egress": 1},
            f"the failed restart did not keep the filters: {filters}")
    L.check(r.agent.said("adopting"), "the next restart did not adopt the filters' maps")
    r.compare("after a failed restart")
    r.db.check_traffic_sums()


def add_spare(lab, letter):
    """A veth pair with both ends in namespace a; returns the name of one."""
    return lab.add_spare(letter)[0]


def add_foreign(lab, dev):
    """A clsact qdisc of someone else with a u32 and a BPF filter."""
    tc = ["tc", "-n", lab.ns["a"]]
    L.run(tc + ["qdisc", "add", "dev", dev, "clsact"])
    L.run(tc + ["filter", "add", "dev", dev, "ingress", "pref", "10", "protocol", "ip", "u32",
                "match", "ip", "dport", "9", "0xffff", "classid", "1:1"])
    obj = L.option_file("foreign_bpf", "the built foreign_drop.bpf.o")
    L.run(tc + ["filter", "add", "dev", dev, "egress", "pref", "10", "bpf", "da", "obj", obj,
                "sec", "tc"])


def test_detach_after_kill(binary):
    """`tcflows detach -i` after kill -9: our filters and locks gone; nothing else.

    The killed agent recorded on a veth with someone else's clsact qdisc and
    filters (kept exactly as they were) and on a spare veth where it
    made the qdisc (removed). A live agent on a third interface keeps its
    filters and lock, and detach refuses on its interface. The killed
    agent's program (and with it its maps) is gone once its filters are."""
    with L.new_lab() as lab:
        ns, dev = lab.ns["a"], lab.dev["a"]
        dummy, other = add_spare(lab, "x"), add_spare(lab, "y")
        add_foreign(lab, dev)
        foreign = L.tc_state(ns, dev)
        killed = L.Agent(binary, ns, [dev, dummy])
        alive = L.Agent(binary, ns, [other])
        lab.link_up()
        L.ping(lab, "a", lab.addr4["b"], count=2)
        killed_prog = L.tcflows_programs(ns, dev)["ingress"]
        killed.kill9()
        L.check(L.leftovers(ns, [dev, dummy]), "kill -9 left nothing: no test of detach")
        L.check(L.program_exists(killed_prog), "kill -9 freed the program its filters run")
        refused = L.tcflows_cmd(binary, ns, "detach", "-i", other)
        L.expect_error(refused, "detach where an agent runs", mentions=[other, str(alive.pid)])
        p = L.tcflows_cmd(binary, ns, "detach", "-i", dev, "-i", dummy)
        print(f"  detach -i {dev} -i {dummy}: exit {p.returncode}: {L.tail(p.stderr, 4)}")
        L.check(p.returncode == 0, f"detach exited {p.returncode}: {L.tail(p.stderr)}")
        left = L.leftovers(ns, [dev, dummy])
        after = L.tc_state(ns, dev)
        dummy_qdiscs, _ = L.tc_state(ns, dummy)
        alive_left = L.leftovers(ns, [other])
        snapshot = alive.finish()
        alive_after = L.leftovers(ns, [other])
    L.check(not left, f"detach left: {left}")
    L.check(L.program_gone(killed_prog),
            f"the killed agent's program {killed_prog} is still loaded after detach")
    L.check(after == foreign, f"the foreign qdisc and filters changed: before {foreign}, "
            f"after {after}")
    L.check(not any("clsact" in q for q in dummy_qdiscs),
            f"the clsact qdisc tcflows made on {dummy} is still there: {dummy_qdiscs}")
    print(f"  {dev}: foreign qdisc and filters as before; {dummy}: no qdisc left")
    L.check(len(alive_left) == 2, f"the live agent on {other} lost its filters or its lock: "
            f"it has {alive_left}")
    L.check(snapshot is not None and not alive_after,
            f"the live agent's own stop left {alive_after}")


def test_second_agent(binary):
    """A second agent on a recorded interface refuses (one line, the first's
    pid, non-zero exit, no database); the first counts on exactly."""
    db2 = os.path.join(L.scratch_dir(), "second.db")
    with L.Recorded(binary) as r:
        spare = add_spare(r.lab, "x")
        steady = L.SteadyTcp(r.lab, "a", "b", r.lab.addr4["b"], 5301)
        for ifaces in ([r.dev], [spare, r.dev]):
            args = ["record", "--format", "json", "--db", db2]
            for iface in ifaces:
                args += ["-i", iface]
            p = L.tcflows_cmd(binary, r.ns, *args)
            L.expect_error(p, f"second agent on {' '.join(ifaces)}",
                           mentions=[r.dev, f"pid {r.agent.pid}"])
        filters = L.tcflows_filters(r.ns, r.dev)
        spare_left = L.leftovers(r.ns, [spare])
        L.ping(r.lab, "b", r.lab.addr6["a"], count=3)
        steady.close()
        r.finish()
    L.check(filters == {"ingress": 1, "egress": 1}, f"the first agent's filters are {filters}")
    L.check(not spare_left, f"the refused agent left {spare_left}")
    L.check(not os.path.exists(db2), "the refused agent created its database")
    r.compare("the first agent")


ADDR_C = {"a": "10.199.1.1", "b": "10.199.1.2"}


def add_second_pair(lab):
    """A second veth pair between the namespaces, c (in a) <-> d (in b),
    10.199.1.0/24, quiet like the first; c up, d down (no carrier yet)."""
    tag = lab.dev["a"][:-1]
    c, d = tag + "c", tag + "d"
    L.run(["ip", "-n", lab.ns["a"], "link", "add", c, "type", "veth", "peer", "name", d,
           "netns", lab.ns["b"]])
    for side, dev in (("a", c), ("b", d)):
        lab.quiet_link(side, dev)
        lab.ip(side, "addr", "add", f"{ADDR_C[side]}/24", "dev", dev)
        L.run(["ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"], ns=lab.ns[side])
    lab.ip("a", "link", "set", c, "up")
    return c, d


def traffic_on_c(lab, port):
    """A TCP transfer, a ping and an open UDP flow over the second pair."""
    L.tcp_transfers([(lab, "a", "b", ADDR_C["b"], port, 150_000, 30_000)])
    L.ping(lab, "b", ADDR_C["a"], count=2)
    L.udp_exchange(lab, "a", "b", ADDR_C["b"], port + 1, 5, 300, reply_size=30)


def wait_said(agent, text, timeout=10):
    deadline = time.monotonic() + timeout
    while not agent.said(text):
        L.check(time.monotonic() < deadline, f"tcflows did not say '{text}' within {timeout} s: "
                f"{L.tail(agent.err.text(), 4)}")
        time.sleep(0.05)


def test_interface_gone(binary):
    """One of two interfaces disappears and comes back under its name.

    The other is recorded exactly throughout (a steady TCP connection runs
    across it all); a warning names the one that went; traffic on it before
    it went and after it came back is recorded exactly (two captures)."""
    db = L.Db(os.path.join(L.scratch_dir(), "links.db"))
    with L.new_lab() as lab:
        dev = lab.dev["a"]
        c, d = add_second_pair(lab)
        cap_a, cap_c = L.Capture(lab.ns["a"], dev), L.Capture(lab.ns["a"], c)
        agent = L.Agent(binary, lab.ns["a"], [dev, c], db=db.path)
        lab.link_up()
        lab.ip("b", "link", "set", d, "up")
        steady = L.SteadyTcp(lab, "a", "b", lab.addr4["b"], 5601)
        traffic_on_c(lab, 5602)
        L.settle()
        before = cap_c.finish()
        lab.ip("a", "link", "del", c)
        wait_said(agent, f"{c} disappeared")
        time.sleep(1)
        add_second_pair(lab)
        cap_c = L.Capture(lab.ns["a"], c)
        lab.ip("b", "link", "set", d, "up")
        wait_said(agent, f"{c} is back")
        traffic_on_c(lab, 5612)
        L.settle()
        steady.close()
        L.settle()
        agent.finish()
        frames_a, after = cap_a.finish(), cap_c.finish()
    print("  " + "\n  ".join(line for line in agent.err.lines if c in line))
    rows = db.rows()
    L.compare_records(L.capture_connections(frames_a), [r for r in rows if r["iface"] == dev],
                      f"{dev}, throughout")
    L.compare_records(L.capture_connections(before) + L.capture_connections(after),
                      [r for r in rows if r["iface"] == c], f"{c}, before it went and after")
    others = {r["iface"] for r in rows} - {dev, c}
    L.check(not others, f"records of interfaces {others}")


if __name__ == "__main__":
    L.main([test_sigterm, test_sigint, test_kill_restart, test_failed_restart,
            test_detach_after_kill,
            test_second_agent, test_interface_gone])
