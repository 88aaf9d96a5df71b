#!/usr/bin/env python3
"""Lab: process attribution. Clients and servers of known pids and names
(tests/lab/proc_roles.py) talk between the lab's namespaces while tcflows
records interface a; each connection's record names the process the test
started for the socket that used it: the originator's when it sent or
received, else the responder's.
"""

import os
import sys
import time

import tcflows_lab as L

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proc_roles.py")


class Role:
    """A proc_roles.py process in namespace ns; its pid is the one it says."""

    def __init__(self, ns, role, name, *args, cgroup=None):
        argv = [sys.executable, ROLES, role, name]
        argv += ["--cgroup", cgroup[1]] if cgroup else []
        self.p = L.Process(argv + [str(a) for a in args], ns=ns)
        self.name = name
        self.pid = int(self.said("pid"))
        L.check(self.pid == self.p.pid, f"{name}: says pid {self.pid}, started as {self.p.pid}")
        if cgroup:
            with open(os.path.join(cgroup[0], "cgroup.procs"), "w") as f:
                f.write(str(self.pid))

    def said(self, word, timeout=10):
        line = self.p.out.wait_for(lambda text: text.startswith(word + " "), timeout)
        L.check(line is not None, f"{self.name}: no `{word}` line; {L.tail(self.p.err.text())}")
        return line.split()[1]

    def done(self):
        rc = self.p.proc.wait(timeout=30)
        L.check(rc == 0, f"{self.name} exited {rc}: {L.tail(self.p.err.text())}")


def exchange(lab, client_role, server_role, port, client_mode, server_mode=(), host=None,
             client_name="tl-client", server_name="tl-server", cgroup=None):
    """A server in b and a client in a; returns (client, server) once both exited."""
    server = Role(lab.ns["b"], server_role, server_name, port, *server_mode)
    server.said("port")
    client = Role(lab.ns["a"], client_role, client_name, host or lab.addr4["b"], port,
                  *client_mode, cgroup=cgroup)
    client.done()
    server.done()
    return client, server


def finals(path, proto, port):
    """The final records of proto to responder port `port`."""
    return [r for r in L.read_jsonl(path)
            if not r["checkpoint"] and r["proto"] == proto and r["dst_port"] == port]


def expect_owner(path, proto, port, pid, comm, cgroup=None):
    records = finals(path, proto, port)
    L.check(len(records) == 1, f"{proto} port {port}: {len(records)} final records")
    r = records[0]
    got = (r["pid"], r["comm"])
    print(f"  {proto} :{port}: pid {r['pid']} comm {r['comm']} cgroup {r['cgroup']}")
    L.check(got == (pid, comm), f"{proto} port {port}: owner {got}, want {(pid, comm)}")
    if cgroup is not None:
        L.check(r["cgroup"] == cgroup, f"{proto} port {port}: cgroup {r['cgroup']}, want {cgroup}")
    return r


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, tail = line.split(" - ")
            if tail.split()[0] == "cgroup2":
                return fields.split()[4]
    return None


def make_cgroup():
    """A cgroup of the cgroup2 mount for the test (removed in cleanup): its
    directory, and its path as tcflows writes it."""
    mount = cgroup2_mount()
    L.check(mount is not None, "no cgroup2 mount: the cgroup check needs one")
    name = f"tcflows-lab-{os.getpid()}"
    directory = os.path.join(mount, name)
    os.mkdir(directory)
    L.on_cleanup(lambda: os.rmdir(directory))
    return directory, "/" + name


def test_owners(binary):
    """TCP and UDP, IPv4 and IPv6, connected and unconnected, a forked child,
    an accepting server, and a connection nobody used."""
    jsonl = os.path.join(L.scratch_dir(), "records.jsonl")
    cgroup = make_cgroup()
    with L.Recorded(binary, args=["--jsonl", jsonl]) as r:
        lab = r.lab
        talk4, _ = exchange(lab, "tcp-client", "tcp-server", 47001, ["talk"], ["talk"],
                            cgroup=cgroup)
        talk6, _ = exchange(lab, "tcp-client", "tcp-server", 47002, ["talk"], ["talk"],
                            host=lab.addr6["b"])
        # The client never sends nor receives: the accepting server owns it.
        _, greeter = exchange(lab, "tcp-client", "tcp-server", 47003, ["quiet"], ["greet"])
        forker, _ = exchange(lab, "tcp-client", "tcp-server", 47004, ["fork", "tl-child"],
                             ["talk"], client_name="tl-parent")
        child = int(forker.said("child"))
        quiet, _ = exchange(lab, "tcp-client", "tcp-server", 47005, ["quiet"], ["quiet"])
        udp_c, _ = exchange(lab, "udp-client", "udp-server", 47006, ["connected"])
        udp_u, _ = exchange(lab, "udp-client", "udp-server", 47007, ["unconnected"])
        udp_u6, _ = exchange(lab, "udp-client", "udp-server", 47008, ["unconnected"],
                             host=lab.addr6["b"])
        time.sleep(7)  # FIN both ways, then --linger (5 s): final records
        final = r.finish()["counters"]
    expect_owner(jsonl, "TCP", 47001, talk4.pid, "tl-client", cgroup[1])
    expect_owner(jsonl, "TCP", 47002, talk6.pid, "tl-client")
    expect_owner(jsonl, "TCP", 47003, greeter.pid, "tl-server")
    # The child did all the sending and receiving on the socket it inherited.
    expect_owner(jsonl, "TCP", 47004, child, "tl-child")
    expect_owner(jsonl, "UDP", 47006, udp_c.pid, "tl-client")
    expect_owner(jsonl, "UDP", 47007, udp_u.pid, "tl-client")
    expect_owner(jsonl, "UDP", 47008, udp_u6.pid, "tl-client")
    unowned = expect_owner(jsonl, "TCP", 47005, None, None)
    L.check(unowned["cgroup"] is None, "a connection without owner has a cgroup")
    print(f"  counters: proc_available {final['proc_available']} attributed "
          f"{final['proc_attributed']} unattributed {final['proc_unattributed']}")
    L.check(final["proc_available"] == 1, "the socket tracing programs were not attached")
    L.check(final["proc_unattributed"] == 1,
            f"proc_unattributed {final['proc_unattributed']}, want 1 (port 47005)")
    L.check(final["proc_attributed"] >= 7, f"proc_attributed {final['proc_attributed']} < 7")


def test_exited(binary):
    """A client that exited long before its connection's record was written
    keeps its pid and name in the record and in the database."""
    jsonl = os.path.join(L.scratch_dir(), "records.jsonl")
    with L.Recorded(binary, args=["--jsonl", jsonl, "--linger", "2s"], interval="10s") as r:
        client, _ = exchange(r.lab, "tcp-client", "tcp-server", 47011, ["talk"], ["talk"])
        gone = time.monotonic()
        L.check(not [x for x in L.read_jsonl(jsonl) if x["dst_port"] == 47011],
                "the record was written before the client exited: nothing to test")
        L.wait_for(lambda: finals(jsonl, "TCP", 47011), 15, "the final record")
        print(f"  final record written {time.monotonic() - gone:.1f} s after the client exited")
        r.finish()
    expect_owner(jsonl, "TCP", 47011, client.pid, "tl-client")
    rows = r.db.query("SELECT pid, comm FROM connections WHERE dst_port = 47011")
    L.check(rows == [{"pid": client.pid, "comm": "tl-client"}], f"database: {rows}")


if __name__ == "__main__":
    L.main([test_owners, test_exited])
