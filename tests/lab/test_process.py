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


def socketless_datagrams(lab):
    """Raw UDP frames from b (no socket sends them): one to a's address and
    a port nobody listens on (local, no owner: unattributed), one between
    two addresses of no namespace (as forwarded traffic looks: not counted)."""
    src, dst = L.mac_of(lab, "b"), L.mac_of(lab, "a")
    local = L.ipv4_udp(lab.addr4["b"], lab.addr4["a"], 40031, 47031, bytes(20))
    passing = L.ipv4_udp("10.199.7.7", "10.199.8.8", 40032, 47032, bytes(20))
    L.send_frames(lab, "b", [L.frame(src, dst, [], 0x0800, p) for p in (local, passing)])


def test_owners(binary):
    """TCP and UDP, IPv4 and IPv6, connected and unconnected, a client that
    never sends nor receives, a refused connect; datagrams no socket sent."""
    jsonl = os.path.join(L.scratch_dir(), "records.jsonl")
    cgroup = make_cgroup()
    # UDP records final before the stop, so that the final snapshot counts them.
    with L.Recorded(binary, args=["--jsonl", jsonl, "--udp-timeout", "2s"]) as r:
        lab = r.lab
        talk4, _ = exchange(lab, "tcp-client", "tcp-server", 47001, ["talk"], ["talk"],
                            cgroup=cgroup)
        talk6, _ = exchange(lab, "tcp-client", "tcp-server", 47002, ["talk"], ["talk"],
                            host=lab.addr6["b"])
        # The client connects but never sends nor receives: its connect() names it.
        quiet, _ = exchange(lab, "tcp-client", "tcp-server", 47003, ["quiet"], ["quiet"])
        refused = Role(lab.ns["a"], "tcp-client", "tl-refused", lab.addr4["b"], 47009, "refused")
        refused.done()
        udp_c, _ = exchange(lab, "udp-client", "udp-server", 47006, ["connected"])
        udp_u, _ = exchange(lab, "udp-client", "udp-server", 47007, ["unconnected"])
        udp_u6, _ = exchange(lab, "udp-client", "udp-server", 47008, ["unconnected"],
                             host=lab.addr6["b"])
        socketless_datagrams(lab)
        time.sleep(7)  # FIN both ways, then --linger (5 s): final records
        final = r.finish()["counters"]
    expect_owner(jsonl, "TCP", 47001, talk4.pid, "tl-client", cgroup[1])
    expect_owner(jsonl, "TCP", 47002, talk6.pid, "tl-client")
    expect_owner(jsonl, "TCP", 47003, quiet.pid, "tl-client")
    expect_owner(jsonl, "UDP", 47006, udp_c.pid, "tl-client")
    expect_owner(jsonl, "UDP", 47007, udp_u.pid, "tl-client")
    expect_owner(jsonl, "UDP", 47008, udp_u6.pid, "tl-client")
    # Refused: no data either way, but the connect() is the client's.
    expect_owner(jsonl, "TCP", 47009, refused.pid, "tl-refused")
    print(f"  counters: proc_available {final['proc_available']} attributed "
          f"{final['proc_attributed']} unattributed {final['proc_unattributed']}")
    L.check(final["proc_available"] == 1, "the socket tracing programs were not attached")
    for port in (47031, 47032):
        unowned = expect_owner(jsonl, "UDP", port, None, None)
        L.check(unowned["cgroup"] is None, "a connection without owner has a cgroup")
    L.check(final["proc_unattributed"] == 1,
            f"proc_unattributed {final['proc_unattributed']}, want 1 (port 47031)")
    L.check(final["proc_attributed"] >= 7, f"proc_attributed {final['proc_attributed']} < 7")


def test_before_agent(binary):
    """Sockets open before tcflows started, seeded from the open files at its
    start: a client that only holds its connection, whose server sends
    afterwards, owns it (the originator's socket comes first); so does one
    that nobody uses afterwards; a socket a parent connected and its forked
    child talks on afterwards is the child's; a UDP server (an IPv6 socket
    bound to ::) that answers an IPv4 client which exited before tcflows
    started owns that exchange (the originator's socket is gone: the
    responder's is looked up)."""
    lab = L.new_lab()
    lab.setup()
    lab.link_up()
    go = os.path.join(L.scratch_dir(), "go")
    pairs = []
    plays = ((27003, ["greet", go], ["hold", go], "tl-client"),
             (27004, ["talk"], ["fork", "tl-child", go], "tl-parent"),
             (27005, ["quiet"], ["hold", go], "tl-client"))
    for port, server_mode, client_mode, client_name in plays:
        server = Role(lab.ns["b"], "tcp-server", "tl-server", port, *server_mode)
        server.said("port")
        client = Role(lab.ns["a"], "tcp-client", client_name, lab.addr4["b"], port, *client_mode)
        client.said("connected")
        pairs.append((client, server))
    udp_server = Role(lab.ns["b"], "udp-server", "tl-udpsrv", 27006, go)
    udp_server.said("port")
    udp_client = Role(lab.ns["a"], "udp-client", "tl-client", lab.addr4["b"], 27006, "fire")
    udp_client.done()
    jsonl = os.path.join(L.scratch_dir(), "records.jsonl")
    agent = L.Agent(binary, lab.ns["a"], [lab.dev["a"]], args=["--jsonl", jsonl])
    open(go, "w").close()
    child = int(pairs[1][0].said("child"))
    for client, server in pairs:
        client.done()
        server.done()
    udp_server.done()
    time.sleep(7)  # FIN both ways, then --linger (5 s): final records
    final = agent.finish()["counters"]
    lab.destroy()
    expect_owner(jsonl, "TCP", 27003, pairs[0][0].pid, "tl-client")
    expect_owner(jsonl, "TCP", 27004, child, "tl-child")
    expect_owner(jsonl, "UDP", 27006, udp_server.pid, "tl-udpsrv")
    expect_owner(jsonl, "TCP", 27005, pairs[2][0].pid, "tl-client")
    L.check(final["proc_unattributed"] == 0,
            f"proc_unattributed {final['proc_unattributed']}, want 0")


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


def test_off(binary):
    """--no-process: the same connection has no owner, and nothing is counted
    as unattributed (proc_available says why)."""
    jsonl = os.path.join(L.scratch_dir(), "records.jsonl")
    with L.Recorded(binary, args=["--jsonl", jsonl, "--no-process", "--linger", "1s"]) as r:
        exchange(r.lab, "tcp-client", "tcp-server", 47021, ["talk"], ["talk"])
        time.sleep(3)
        final = r.finish()["counters"]
    expect_owner(jsonl, "TCP", 47021, None, None)
    got = (final["proc_available"], final["proc_attributed"], final["proc_unattributed"])
    L.check(got == (0, 0, 0), f"proc_available, attributed, unattributed: {got}, want zeros")


if __name__ == "__main__":
    L.main([test_owners, test_before_agent, test_exited, test_off])
