#!/usr/bin/env python3
"""Traffic and scraping for the export lab test, run inside its namespaces.

  export_traffic.py serve                 TCP echo :7000 and UDP echo :7001 (v4+v6)
  export_traffic.py client ADDR4 ADDR6    short TCP and UDP exchanges to both
  export_traffic.py long ADDR SECONDS     one TCP connection sending every 0.5 s
  export_traffic.py scrape URL            prints the body of an HTTP GET
"""
import socket
import sys
import threading
import time
import urllib.request


def tcp_echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def serve():
    tcp = socket.socket(socket.AF_INET6)
    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("::", 7000))
    tcp.listen(128)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("::", 7001))

    def udp_echo():
        while True:
            data, peer = udp.recvfrom(65536)
            udp.sendto(data, peer)

    threading.Thread(target=udp_echo, daemon=True).start()
    print("ready", flush=True)
    while True:
        conn, _ = tcp.accept()
        threading.Thread(target=tcp_echo, args=(conn,), daemon=True).start()


def exchange_tcp(addr, size):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(5)
        s.connect((addr, 7000))
        s.sendall(b"x" * size)
        got = 0
        while got < size:
            got += len(s.recv(65536))


def exchange_udp(addr, size):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"u" * size, (addr, 7001))
        s.recvfrom(65536)


def client(addr4, addr6):
    for addr in (addr4, addr6):
        for size in (1, 100, 1000, 20000):
            exchange_tcp(addr, size)
        for size in (10, 500):
            exchange_udp(addr, size)


def long(addr, seconds):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(5)
        s.connect((addr, 7000))
        end = time.time() + float(seconds)
        while time.time() < end:
            s.sendall(b"l" * 100)
            s.recv(65536)
            time.sleep(0.5)


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        sys.stdout.write(response.read().decode())


if __name__ == "__main__":
    {"serve": serve, "client": client, "long": long, "scrape": scrape}[sys.argv[1]](*sys.argv[2:])
