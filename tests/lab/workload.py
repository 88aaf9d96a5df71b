"""Traffic that runs in the background of a lab test until stopped: one long
TCP connection that sends at a steady pace, and new short connections (TCP
and UDP) at a steady rate. Real sockets in the lab's namespaces; the
reference stays the capture, these only make traffic and say whether the
sockets lost any."""

import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402


def _recv_exact(sock, n):
    got = 0
    while got < n:
        data = sock.recv(min(1 << 16, n - got))
        if not data:
            raise L.LabError(f"the peer closed after {got} of {n} bytes")
        got += len(data)
    return got


class SteadyTcp:
    """One TCP connection from `client` to `server`: every `period` seconds
    the client sends `chunk` bytes and the server answers `reply` bytes.
    halt() stops sending and keeps the connection open; close() ends it."""

    def __init__(self, lab, client, server, addr, port, chunk=1000, reply=100, period=0.02):
        family = L.family_of(addr)
        listener = L.make_socket(lab.ns[server], family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((addr, port))
        listener.listen(1)
        self.client = L.make_socket(lab.ns[client], family, socket.SOCK_STREAM)
        self.client.connect((addr, port))
        self.server, _ = listener.accept()
        listener.close()
        self.chunk, self.reply, self.period = chunk, reply, period
        self.exchanges = 0
        self._halt = threading.Event()
        self.thread = L.Worker(self._run)
        self.thread.start()
        L.on_cleanup(self._close_sockets)

    def _run(self):
        data, answer = bytes(self.chunk), bytes(self.reply)
        while not self._halt.wait(self.period):
            self.client.sendall(data)
            _recv_exact(self.server, self.chunk)
            self.server.sendall(answer)
            _recv_exact(self.client, self.reply)
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
        L.check(self.server.recv(1) == b"", "steady TCP: data after the client's FIN")
        self.server.close()
        L.check(self.client.recv(1) == b"", "steady TCP: data after the server's FIN")
        self._close_sockets()

    def _close_sockets(self):
        for s in (self.client, self.server):
            s.close()


class ShortConnections:
    """Every `period` seconds, one new TCP connection from `client` to a
    server on `port` (request, reply, both close) and one UDP exchange from a
    new socket (request, reply) to port+1. stop() returns how many of each."""

    def __init__(self, lab, client, server, addr, port, request=300, reply=2000, period=0.1):
        family = L.family_of(addr)
        self.lab, self.client_side, self.family = lab, client, family
        self.target = (addr, port)
        self.listener = L.make_socket(lab.ns[server], family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((addr, port))
        self.listener.listen(64)
        self.udp = L.make_socket(lab.ns[server], family, socket.SOCK_DGRAM)
        self.udp.bind((addr, port + 1))
        self.udp.settimeout(0.2)
        self.request, self.reply, self.period = request, reply, period
        self.tcp_done = self.udp_done = 0
        self._stop = threading.Event()
        self.threads = [L.Worker(self._accept), L.Worker(self._answer_udp), L.Worker(self._run)]
        for t in self.threads:
            t.start()
        L.on_cleanup(self._close)

    def _accept(self):
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(5)
                _recv_exact(conn, self.request)
                conn.sendall(bytes(self.reply))
                L.check(conn.recv(1) == b"", "short TCP: data after the client's FIN")

    def _answer_udp(self):
        while not self._stop.is_set():
            try:
                _, peer = self.udp.recvfrom(1 << 16)
            except socket.timeout:
                continue
            self.udp.sendto(bytes(self.reply // 4), peer)

    def _one_tcp(self):
        s = L.make_socket(self.lab.ns[self.client_side], self.family, socket.SOCK_STREAM)
        with s:
            s.settimeout(5)
            s.connect(self.target)
            s.sendall(bytes(self.request))
            s.shutdown(socket.SHUT_WR)
            _recv_exact(s, self.reply)
            L.check(s.recv(1) == b"", "short TCP: more than the reply")
        self.tcp_done += 1

    def _one_udp(self):
        s = L.make_socket(self.lab.ns[self.client_side], self.family, socket.SOCK_DGRAM)
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
