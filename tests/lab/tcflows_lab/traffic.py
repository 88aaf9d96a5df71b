"""Traffic from real sockets in the lab's namespaces: TCP transfers, UDP
exchanges and floods, pings, traffic that runs in the background until
stopped (SteadyTcp, ShortConnections), and connload's bursts of short
connections. These only make traffic and say whether the sockets lost
any; the reference stays the capture.
"""

import itertools
import json
import os
import socket
import threading
from collections import namedtuple

from .netns import make_socket, wait_listening
from .proc import LabError, Process, check, on_cleanup, run, tail
from .runner import OPTIONS, option_file


def available_cpus():
    return sorted(os.sched_getaffinity(0))


class Worker(threading.Thread):
    """A thread pinned to a CPU; its exception is re-raised by result()."""

    def __init__(self, fn, *args, cpu=None):
        super().__init__(daemon=True)
        self.fn, self.args, self.cpu = fn, args, cpu
        self.value = self.error = None

    def run(self):
        try:
            if self.cpu is not None:
                os.sched_setaffinity(0, {self.cpu})  # this thread only
            self.value = self.fn(*self.args)
        except BaseException as e:
            self.error = e

    def result(self, timeout=120):
        self.join(timeout)
        if self.is_alive():
            raise LabError(f"traffic thread {self.fn.__name__} hung for {timeout} s")
        if self.error:
            raise self.error
        return self.value


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def send_all(sock, nbytes, chunk=65536):
    block = bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < nbytes:
        sent += sock.send(block[:min(chunk, nbytes - sent)])
    sock.shutdown(socket.SHUT_WR)
    return sent


def recv_all(sock):
    got = 0
    while True:
        data = sock.recv(1 << 16)
        if not data:
            return got
        got += len(data)


def recv_exact(sock, n):
    got = 0
    while got < n:
        data = sock.recv(min(1 << 16, n - got))
        if not data:
            raise LabError(f"the peer closed after {got} of {n} bytes")
        got += len(data)
    return got


def tcp_listener(lab, server, addr, port, backlog=1):
    """A listening TCP socket on addr:port in namespace `server`."""
    listener = make_socket(lab.ns[server], family_of(addr), socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, port))
    listener.listen(backlog)
    return listener


def tcp_pair(lab, client, server, addr, port, timeout=None):
    """One TCP connection from namespace `client` to `addr`:`port` in
    namespace `server`: (client socket, server socket)."""
    with tcp_listener(lab, server, addr, port) as listener:
        sock = make_socket(lab.ns[client], family_of(addr), socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect((addr, port))
        conn, _ = listener.accept()
    conn.settimeout(timeout)
    return sock, conn


TcpResult = namedtuple("TcpResult", "client_port client_sent client_recv server_sent server_recv")


class TcpTransfer:
    """One TCP connection: the client sends `up` bytes while the server sends
    `down` bytes; each direction's sender and receiver run in their own thread
    (pinned to `cpus` in turn), then both sides close."""

    def __init__(self, lab, client, server, server_addr, port, up, down, cpus=(None,)):
        family = family_of(server_addr)
        self.listener = tcp_listener(lab, server, server_addr, port)
        self.client = make_socket(lab.ns[client], family, socket.SOCK_STREAM)
        self.target = (server_addr, port)
        self.up, self.down = up, down
        self.cpus = itertools.cycle(cpus)
        self.thread = Worker(self._run)
        self.thread.start()

    def _run(self):
        self.client.connect(self.target)
        conn, _ = self.listener.accept()
        self.listener.close()
        with conn, self.client:
            # The two senders on different CPUs (with two or more).
            workers = [Worker(send_all, self.client, self.up, cpu=next(self.cpus)),
                       Worker(send_all, conn, self.down, cpu=next(self.cpus)),
                       Worker(recv_all, conn, cpu=next(self.cpus)),
                       Worker(recv_all, self.client, cpu=next(self.cpus))]
            for w in workers:
                w.start()
            c_sent, s_sent, s_recv, c_recv = (w.result() for w in workers)
            port = self.client.getsockname()[1]
        if c_sent != s_recv or s_sent != c_recv:
            raise LabError(f"TCP lost data: sent {c_sent}/{s_sent}, got {s_recv}/{c_recv}")
        return TcpResult(port, c_sent, c_recv, s_sent, s_recv)

    def result(self):
        return self.thread.result()


def tcp_transfers(specs):
    """Runs TcpTransfers at once; specs are TcpTransfer argument tuples."""
    transfers = [TcpTransfer(*spec) for spec in specs]
    return [t.result() for t in transfers]


UDP_SEGMENT = 103  # linux/udp.h
SO_RCVBUFFORCE = 33  # asm-generic/socket.h
UdpResult = namedtuple("UdpResult", "client_port sent recv reply_bytes")


def udp_exchange(lab, client, server, server_addr, port, count, size, reply_size=None,
                 gso_size=None):
    """`count` sends of `size` payload bytes from client to server; the server
    answers each datagram it gets with `reply_size` bytes (no answer when None).
    With gso_size, each send is one UDP GSO super-packet of gso_size segments."""
    family = family_of(server_addr)
    srv = make_socket(lab.ns[server], family, socket.SOCK_DGRAM)
    cli = make_socket(lab.ns[client], family, socket.SOCK_DGRAM)
    with srv, cli:
        for s in (srv, cli):
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)  # no loss in the stack
            s.settimeout(3)
        srv.bind((server_addr, port))
        cli.connect((server_addr, port))
        if gso_size:
            cli.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, gso_size)
        payload = bytes(size)
        sent = sum(cli.send(payload) for _ in range(count))
        received = datagrams = 0
        while received < sent:
            data, peer = srv.recvfrom(1 << 16)
            received += len(data)
            datagrams += 1
            if reply_size is not None:
                srv.sendto(bytes(reply_size), peer)
        replies = reply_bytes = 0
        while reply_size is not None and replies < datagrams:
            reply_bytes += len(cli.recv(1 << 16))
            replies += 1
        if received != sent:
            raise LabError(f"UDP datagrams lost in the stack: sent {sent} B, received {received} B")
        return UdpResult(cli.getsockname()[1], sent, received, reply_bytes)


def udp_flood(lab, side, port, count, threads=4, payload=16, sink_port=9999):
    """One UDP flow (one 5-tuple) sent from `threads` sockets at once
    (SO_REUSEPORT), pinned to the CPUs in turn, as fast as they can: the
    program updates that flow's counters on every CPU at the same time.
    Returns the datagrams sent."""
    peer = lab.peer(side)
    family = family_of(lab.addr4[side])
    sink = make_socket(lab.ns[peer], family, socket.SOCK_DGRAM)
    sink.bind((lab.addr4[peer], sink_port))
    socks = []
    for _ in range(threads):
        s = make_socket(lab.ns[side], family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((lab.addr4[side], port))
        s.connect((lab.addr4[peer], sink_port))
        socks.append(s)

    def blast(sock):
        data = bytes(payload)
        for _ in range(count):
            sock.send(data)
        return count

    cpus = available_cpus()
    with sink:
        workers = [Worker(blast, s, cpu=cpus[i % len(cpus)]) for i, s in enumerate(socks)]
        for w in workers:
            w.start()
        sent = sum(w.result() for w in workers)
    for s in socks:
        s.close()
    return sent


def ping(lab, side, addr, count=5, size=56, interval=0.2):
    """Echo requests from `side` to addr with iputils ping; raises if any is lost."""
    argv = ["ping", "-6" if ":" in addr else "-4", "-n", "-q", "-c", count, "-i", interval,
            "-s", size, "-W", "2", addr]
    run(argv, ns=lab.ns[side], timeout=count * interval + 15)


# ---------------------------------------------------------------- background traffic


class SteadyTcp:
    """One TCP connection from `client` to `server`: every `period` seconds
    the client sends `chunk` bytes and the server answers `reply` bytes.
    halt() stops sending and keeps the connection open; close() ends it."""

    def __init__(self, lab, client, server, addr, port, chunk=1000, reply=100, period=0.02):
        self.client, self.server = tcp_pair(lab, client, server, addr, port)
        self.chunk, self.reply, self.period = chunk, reply, period
        self.exchanges = 0
        self._halt = threading.Event()
        self.thread = Worker(self._run)
        self.thread.start()
        on_cleanup(self._close_sockets)

    def _run(self):
        data, answer = bytes(self.chunk), bytes(self.reply)
        while not self._halt.wait(self.period):
            self.client.sendall(data)
            recv_exact(self.server, self.chunk)
            self.server.sendall(answer)
            recv_exact(self.client, self.reply)
            self.exchanges += 1
        return self.exchanges

    def halt(self):
        """Stops sending (the connection stays open); returns the exchanges."""
        self._halt.set()
        return self.thread.result()

    def close(self):
        """Halts, then closes both ends (FIN both ways)."""
        if not self._halt.is_set():
            self.halt()
        self.client.shutdown(socket.SHUT_WR)
        check(self.server.recv(1) == b"", "steady TCP: data after the client's FIN")
        self.server.close()
        check(self.client.recv(1) == b"", "steady TCP: data after the server's FIN")
        self._close_sockets()

    def _close_sockets(self):
        for s in (self.client, self.server):
            s.close()


class ShortConnections:
    """Every `period` seconds, one new TCP connection from `client` to a
    server on `port` (request, reply, both close) and one UDP exchange from a
    new socket (request, reply) to port+1. stop() returns how many of each."""

    def __init__(self, lab, client, server, addr, port, request=300, reply=2000, period=0.1):
        family = family_of(addr)
        self.lab, self.client_side, self.family = lab, client, family
        self.target = (addr, port)
        self.listener = tcp_listener(lab, server, addr, port, backlog=64)
        self.udp = make_socket(lab.ns[server], family, socket.SOCK_DGRAM)
        self.udp.bind((addr, port + 1))
        self.udp.settimeout(0.2)
        self.request, self.reply, self.period = request, reply, period
        self.tcp_done = self.udp_done = 0
        self._stop = threading.Event()
        self.threads = [Worker(self._accept), Worker(self._answer_udp), Worker(self._run)]
        for t in self.threads:
            t.start()
        on_cleanup(self._close)

    def _accept(self):
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(5)
                recv_exact(conn, self.request)
                conn.sendall(bytes(self.reply))
                check(conn.recv(1) == b"", "short TCP: data after the client's FIN")

    def _answer_udp(self):
        while not self._stop.is_set():
            try:
                _, peer = self.udp.recvfrom(1 << 16)
            except socket.timeout:
                continue
            self.udp.sendto(bytes(self.reply // 4), peer)

    def _one_tcp(self):
        s = make_socket(self.lab.ns[self.client_side], self.family, socket.SOCK_STREAM)
        with s:
            s.settimeout(5)
            s.connect(self.target)
            s.sendall(bytes(self.request))
            s.shutdown(socket.SHUT_WR)
            recv_exact(s, self.reply)
            check(s.recv(1) == b"", "short TCP: more than the reply")
        self.tcp_done += 1

    def _one_udp(self):
        s = make_socket(self.lab.ns[self.client_side], self.family, socket.SOCK_DGRAM)
        with s:
            s.settimeout(2)
            s.sendto(bytes(self.request // 3), (self.target[0], self.target[1] + 1))
            s.recv(1 << 16)
        self.udp_done += 1

    def _run(self):
        while not self._stop.wait(self.period):
            self._one_tcp()
            self._one_udp()

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.result()
        self._close()
        return self.tcp_done, self.udp_done

    def _close(self):
        self._stop.set()
        self.listener.close()
        self.udp.close()


# ---------------------------------------------------------------- connload


def connload_path(binary=None):
    """tools/connload: the connload=PATH option, or next to the tcflows
    binary's build tree."""
    if "connload" in OPTIONS or not binary:
        return option_file("connload", "build/tools/connload")
    path = os.path.join(os.path.dirname(os.path.dirname(binary)), "tools", "connload")
    if not os.access(path, os.X_OK):
        raise LabError(f"connload is missing at {path}: pass connload=PATH")
    return path


def connload_burst(binary, lab, count, concurrency=32, port=5501, request=200, reply=1000,
                   client="a", server="b"):
    """`count` short TCP connections from client to server as fast as they
    go; returns connload's client totals. Every connection must complete."""
    tool = connload_path(binary)
    addr = lab.addr4[server]
    srv = Process([tool, "server", "--listen", addr, "--port", port, "--count", count,
                   "--request", request, "--reply", reply], ns=lab.ns[server])
    wait_listening(lab.ns[server], port)
    p = run([tool, "client", "--connect", addr, "--port", port, "--count", count,
             "--concurrency", concurrency, "--request", request, "--reply", reply],
            ns=lab.ns[client], check=False, timeout=120)
    if srv.stop(timeout=20) != 0:
        raise LabError(f"connload server failed: {tail(srv.err.text())}")
    if p.returncode != 0:
        raise LabError(f"connload client exited {p.returncode}: {tail(p.stdout + p.stderr)}")
    return json.loads(p.stdout)
