#!/usr/bin/env python3
"""The processes of the process-attribution lab (test_process.py): TCP and
UDP clients and servers with names of their own.

`proc_roles.py ROLE NAME [--cgroup PATH] ARGS...`: sets its command name
(comm) to NAME, prints `pid N`, with --cgroup waits until the test has
moved it into the cgroup2 group PATH (`ip netns exec` mounts a /sys of its
own, without the cgroup mounts), prints `port N` for servers once
listening, plays ROLE and exits 0.

    tcp-server PORT MODE        accept one connection: `talk` (read to EOF,
                                answer), `greet FILE` (once FILE exists,
                                send, then wait for EOF), `quiet` (no send
                                or receive, wait for EOF)
    tcp-client HOST PORT MODE   `talk` (send, read the answer), `quiet`
                                (connect and close, no send or receive),
                                `refused` (no server: the connect fails),
                                `hold FILE` (connect, print `connected`,
                                close once FILE exists; no send or receive),
                                `fork CHILD FILE` (connect, print
                                `connected`; once FILE exists a child
                                named CHILD talks on the socket; prints
                                `child N`)
    udp-server PORT [FILE]      answer one datagram (once FILE exists)
    udp-client HOST PORT MODE   `connected` (connect, send) or `unconnected`
                                (sendto); then read the answer; or `fire`
                                (sendto, print `sent`, exit without reading)
"""

import ctypes
import os
import select
import socket
import sys
import time

PR_SET_NAME = 15


def set_name(name):
    ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def wait_eof(sock):
    """Waits until the peer closes, without a receive call on the socket."""
    select.select([sock], [], [], 30)


def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.01)


def tcp_server(port, mode, *go, host="::"):
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen()
    print(f"port {port}", flush=True)
    conn, _ = listener.accept()
    if mode == "talk":
        while conn.recv(4096):
            pass
        conn.sendall(b"answer")
    elif mode == "greet":
        wait_file(go[0])
        conn.sendall(b"hello")
        wait_eof(conn)
    else:
        wait_eof(conn)
    conn.close()


def talk(sock):
    sock.sendall(b"question")
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(4096):
        pass


def tcp_client(host, port, mode, *more):
    sock = socket.socket(family(host), socket.SOCK_STREAM)
    if mode == "refused":
        try:
            sock.connect((host, int(port)))
        except ConnectionRefusedError:
            return
        sys.exit("connected to a port without a server")
    sock.connect((host, int(port)))
    if mode == "talk":
        talk(sock)
    elif mode == "fork":
        print("connected 1", flush=True)
        wait_file(more[1])
        child = os.fork()
        if child == 0:
            set_name(more[0])
            talk(sock)
            os._exit(0)
        print(f"child {child}", flush=True)
        os.waitpid(child, 0)
    elif mode == "hold":
        print("connected 1", flush=True)
        wait_file(more[0])
    sock.close()


def udp_server(port, *go):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::", int(port)))
    print(f"port {port}", flush=True)
    data, peer = sock.recvfrom(4096)
    if go:
        wait_file(go[0])
    sock.sendto(b"answer", peer)


def udp_client(host, port, mode):
    sock = socket.socket(family(host), socket.SOCK_DGRAM)
    if mode == "connected":
        sock.connect((host, int(port)))
        sock.send(b"question")
    else:
        sock.sendto(b"question", (host, int(port)))
    if mode == "fire":
        print("sent 1", flush=True)
        return
    sock.settimeout(10)
    sock.recv(4096)


ROLES = {"tcp-server": tcp_server, "tcp-client": tcp_client, "udp-server": udp_server,
         "udp-client": udp_client}


def wait_cgroup(path):
    deadline = time.monotonic() + 10
    while f"0::{path}\n" not in open("/proc/self/cgroup").read():
        if time.monotonic() > deadline:
            sys.exit(f"not moved into cgroup {path}")
        time.sleep(0.01)


def main():
    role, name, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    set_name(name)
    print(f"pid {os.getpid()}", flush=True)
    if args[:1] == ["--cgroup"]:
        wait_cgroup(args[1])
        args = args[2:]
    ROLES[role](*args)


if __name__ == "__main__":
    main()
