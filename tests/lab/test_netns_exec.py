#!/usr/bin/env python3
"""Lab: `tcflows record` started as `ip netns exec NS tcflows record -i IF`.

`ip netns exec` runs the agent in a mount namespace of its own with /sys
remounted (no bpffs there). tcflows keeps nothing in bpffs: after kill -9 the
filters keep counting into their maps, and a restarted agent adopts them
from the filters, so a restart there is as exact against a tcpdump capture
covering the gap as one in the host's mount namespace. `tcflows detach`
works there too, and two recordings of interfaces of one name in two
namespaces (which share /run) do not collide.
"""

import os

import tcflows_lab as L
import test_restart as R


def mounts_of(pid):
    """(mount namespace, mount points of /sys and below) of a process."""
    with open(f"/proc/{pid}/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return os.readlink(f"/proc/{pid}/ns/mnt"), [p for p in points if p.startswith("/sys")]


def expect_own_sys(agent):
    """The agent runs in a mount namespace of its own, without bpffs on /sys/fs/bpf."""
    ns, points = mounts_of(agent.pid)
    mine = os.readlink("/proc/self/ns/mnt")
    print(f"  agent pid {agent.pid}: mount namespace {ns} (the test's {mine}), /sys mounts "
          f"{points}")
    L.check(ns != mine, "the agent runs in the test's mount namespace")
    L.check("/sys/fs/bpf" not in points, "bpffs is mounted where the agent runs")


def test_kill_restart_netns_exec(binary):
    """kill -9 and restart under `ip netns exec`, twice: the database equals
    the capture that covers the gaps (as test_restart's test_kill_restart)."""
    R.kill_restart(L.Recorded(binary, nsenter=False))


def test_detach_netns_exec(binary):
    """kill -9 under `ip netns exec`, then `ip netns exec NS tcflows detach -i
    IF`: the filters and the lock file go, and with them the program."""
    with L.new_lab() as lab:
        ns, dev = lab.ns["a"], lab.dev["a"]
        agent = L.Agent(binary, ns, [dev], nsenter=False)
        expect_own_sys(agent)
        lab.link_up()
        L.ping(lab, "a", lab.addr4["b"], count=2)
        prog = L.tcflows_programs(ns, dev)["ingress"]
        agent.kill9()
        killed = L.leftovers(ns, [dev])
        L.check(len(killed) == 2, f"kill -9 left {killed}, expected the filters and the lock")
        p = L.run([binary, "detach", "-i", dev], ns=ns, check=False)
        print(f"  ip netns exec {ns} tcflows detach -i {dev}: exit {p.returncode}: "
              f"{L.tail(p.stderr, 2)}")
        L.check(p.returncode == 0, f"detach exited {p.returncode}")
        left = L.leftovers(ns, [dev])
    L.check(not left, f"detach left {left}")
    L.check(L.program_gone(prog), f"program {prog} is still loaded after detach")


def test_same_name_two_namespaces(binary):
    """Two agents under `ip netns exec` on interfaces of the same name in two
    namespaces: both record (their locks do not collide), each exactly its side."""
    with L.new_lab() as lab:
        name = lab.dev["a"][:-1] + "s"
        for side in ("a", "b"):
            lab.ip(side, "link", "set", lab.dev[side], "down")
            lab.ip(side, "link", "set", lab.dev[side], "name", name)
            lab.dev[side] = name
        lab.ip("a", "link", "set", name, "up")
        dbs = {side: L.Db(os.path.join(L.scratch_dir(), f"{side}.db")) for side in "ab"}
        caps, agents = {}, {}
        for side in "ab":  # b once it is up (a quiet lab sends nothing meanwhile)
            caps[side] = L.Capture(lab.ns[side], name)
            agents[side] = L.Agent(binary, lab.ns[side], [name], db=dbs[side].path,
                                   nsenter=False)
            if side == "a":
                lab.link_up()
        # IPv4: the renames (the link down) took the IPv6 addresses away.
        L.ping(lab, "a", lab.addr4["b"], count=3)
        L.ping(lab, "b", lab.addr4["a"], count=2)
        L.settle()
        for side in "ab":
            agents[side].finish()
        frames = {side: caps[side].finish() for side in "ab"}
        locks = {side: L.lock_file(lab.ns[side], name) for side in "ab"}
    print(f"  lock files: {locks}")
    L.check(locks["a"] != locks["b"], "both namespaces use one lock file")
    for side in "ab":
        L.compare_records(L.capture_connections(frames[side]), dbs[side].rows(),
                          f"{name} in namespace {side}")


if __name__ == "__main__":
    L.main([test_kill_restart_netns_exec, test_detach_netns_exec, test_same_name_two_namespaces])
