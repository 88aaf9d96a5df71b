"""A network-namespace lab for tcflows tests (Python 3 standard library only).

Two namespaces joined by a veth pair; tcflows and tcpdump watch the end in
namespace "a". The reference for every count is the capture of that same
interface, read by tshark, or the byte counts of the sockets that made the
traffic, never numbers that tcflows produced.

Names start with a prefix, `tl` unless a test passes its own (namespaces
`tl-a-<pid>-<n>`, veth `tl<pid><letters>a`), and everything is removed at
exit, also when a test fails or is killed.
"""

import atexit
import contextlib
import ctypes
import ipaddress
import itertools
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque, namedtuple

SKIP = 77

# Addresses inside the lab namespaces only; no packet ever leaves them.
ADDR4 = {"a": "10.199.0.1", "b": "10.199.0.2"}
ADDR6 = {"a": "fd00:199::1", "b": "fd00:199::2"}


class LabError(Exception):
    """The lab itself failed (setup, a tool, the environment): not a verdict."""


class Failure(Exception):
    """The check failed: tcflows disagrees with the reference."""


# ---------------------------------------------------------------- cleanup

_cleanups = []


def on_cleanup(fn):
    """Runs fn at exit (last registered first), also on SIGTERM/SIGINT."""
    _cleanups.append(fn)
    return fn


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup goes on whatever failed
            print(f"lab: cleanup: {e}", file=sys.stderr)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


atexit.register(_run_cleanups)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


# ---------------------------------------------------------------- commands


def tail(text, lines=8):
    """The last lines of a tool's output, for bounded error messages."""
    return "\n".join((text or "").strip().splitlines()[-lines:])


def ns_argv(ns, argv):
    return (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in argv]


def run(argv, ns=None, check=True, timeout=60, **kwargs):
    """Runs a command (inside namespace ns); raises LabError when it fails."""
    argv = ns_argv(ns, argv)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` did not finish within {timeout} s")
    if check and p.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` exited {p.returncode}: {tail(p.stderr or p.stdout)}")
    return p


def require_root():
    if os.geteuid() != 0:
        print("skipped: lab tests need root (network namespaces, TC, BPF)")
        sys.exit(SKIP)


# ---------------------------------------------------------------- namespaces

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _setns(fd):
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError(f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def netns(name):
    """The calling thread enters namespace `name` for the block.

    Sockets created inside keep the namespace after the block, so any thread
    can use them.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


_lab_numbers = itertools.count()

# Quiet IPv6 and neighbour discovery: no DAD, no router solicitations, MLD
# reports done within milliseconds of link-up, and neighbour entries that stay
# reachable for the test's length, so nothing is sent unprompted while the
# observers start or stop.
_QUIET_SYSCTLS = [
    "net.ipv6.conf.{c}.accept_dad=0",
    "net.ipv6.conf.{c}.router_solicitations=0",
    "net.ipv6.conf.{c}.mldv1_unsolicited_report_interval=10",
    "net.ipv6.conf.{c}.mldv2_unsolicited_report_interval=10",
    "net.ipv6.conf.{c}.use_tempaddr=0",
]
_NEIGH_SYSCTLS = [
    "net.{f}.neigh.{c}.base_reachable_time_ms=3600000",
    "net.{f}.neigh.{c}.delay_first_probe_time=3600",
]


def _letters(n):
    """0 -> "a", 25 -> "z", 26 -> "ba": digits of base 26 in letters."""
    text = ""
    while True:
        text = chr(ord("a") + n % 26) + text
        n //= 26
        if not n:
            return text


class Lab:
    """Namespaces a and b joined by veth dev['a'] <-> dev['b'].

    setup() leaves dev['a'] up without carrier (dev['b'] down), so observers
    started on dev['a'] see everything from the first frame; link_up() then
    brings dev['b'] up.
    """

    def __init__(self, offloads=False, sysctls=(), prefix="tl"):
        n = next(_lab_numbers)
        pid = os.getpid()
        self.ns = {"a": f"{prefix}-a-{pid}-{n}", "b": f"{prefix}-b-{pid}-{n}"}
        # <prefix><pid><lab number in letters><side>: unambiguous, at most 15 chars.
        tag = f"{prefix}{pid}{_letters(n)}"
        self.dev = {"a": tag + "a", "b": tag + "b"}
        assert all(len(d) <= 15 for d in self.dev.values())
        self.addr4 = dict(ADDR4)
        self.addr6 = dict(ADDR6)
        self.offloads = offloads
        self.sysctls = list(sysctls)
        self._created = []
        on_cleanup(self.destroy)

    def __enter__(self):
        self.setup()
        return self

    def __exit__(self, *exc):
        self.destroy()

    def setup(self):
        for side in ("a", "b"):
            run(["ip", "netns", "add", self.ns[side]])
            self._created.append(self.ns[side])
            self.sysctl(side, *[s.format(c=c) for s in _QUIET_SYSCTLS for c in ("all", "default")])
            self.sysctl(side, *self.sysctls)
            run(["ip", "link", "set", "lo", "up"], ns=self.ns[side])
        run(["ip", "-n", self.ns["a"], "link", "add", self.dev["a"], "type", "veth",
             "peer", "name", self.dev["b"], "netns", self.ns["b"]])
        for side in ("a", "b"):
            dev = self.dev[side]
            self.sysctl(side, *[s.format(f=f, c=dev) for s in _NEIGH_SYSCTLS
                                for f in ("ipv4", "ipv6")])
            self.sysctl(side, *[s.format(c=dev) for s in _QUIET_SYSCTLS])
            self.set_offloads(side, self.offloads)
            self.ip(side, "addr", "add", f"{self.addr4[side]}/24", "dev", dev)
            self.ip(side, "-6", "addr", "add", f"{self.addr6[side]}/64", "dev", dev, "nodad")
        self.ip("a", "link", "set", self.dev["a"], "up")

    def link_up(self):
        """Brings dev['b'] up and waits until dev['a'] has carrier."""
        self.ip("b", "link", "set", self.dev["b"], "up")
        path = f"/sys/class/net/{self.dev['a']}/carrier"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            state = run(["cat", path], ns=self.ns["a"], check=False).stdout.strip()
            if state == "1":
                return
            time.sleep(0.05)
        raise LabError(f"{self.dev['a']} has no carrier 5 s after link-up")

    def destroy(self):
        for name in reversed(self._created):
            kill_namespace_processes(name)
            run(["ip", "netns", "del", name], check=False)
        self._created.clear()

    def ip(self, side, *args):
        return run(["ip", *args], ns=self.ns[side])

    def sysctl(self, side, *settings):
        if settings:
            run(["sysctl", "-q", "-w", *settings], ns=self.ns[side])

    def set_offloads(self, side, on):
        state = "on" if on else "off"
        run(["ethtool", "-K", self.dev[side], "tso", state, "gso", state, "gro", state],
            ns=self.ns[side])

    def peer(self, side):
        return "b" if side == "a" else "a"


def kill_namespace_processes(ns):
    """Ends processes left in a lab namespace (all of them are ours)."""
    p = run(["ip", "netns", "pids", ns], check=False)
    for pid in p.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def wait_listening(ns, port, udp=False, timeout=10):
    """Waits until a socket in namespace ns listens on (or is bound to) port."""
    flag = "-Hlun" if udp else "-Hltn"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run(["ss", flag, f"sport = :{port}"], ns=ns).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise LabError(f"nothing listens on port {port} in {ns} after {timeout} s")


# ---------------------------------------------------------------- processes


class _Reader(threading.Thread):
    """Reads a pipe line by line: keeps the last lines and signals each one."""

    def __init__(self, pipe, keep=40):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines = deque(maxlen=keep)
        self.count = 0
        self.events = queue.Queue(maxsize=keep)  # for wait_for; bounded, may drop

    def run(self):
        for line in self.pipe:
            self.lines.append(line.rstrip("\n"))
            self.count += 1
            self._signal(line)
        self._signal(None)

    def _signal(self, line):
        with contextlib.suppress(queue.Full):
            self.events.put_nowait(line)

    def wait_for(self, predicate, timeout):
        """The first unread line that satisfies predicate, or None on EOF/timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if predicate(line):
                return line

    def text(self):
        return "\n".join(self.lines)


class Process:
    """A long-running tool in a namespace, stopped by signal in cleanup too."""

    def __init__(self, argv, ns=None, keep_out=40, keep_err=40):
        self.argv = ns_argv(ns, argv)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out = _Reader(self.proc.stdout, keep_out)
        self.err = _Reader(self.proc.stderr, keep_err)
        self.out.start()
        self.err.start()
        on_cleanup(self.kill)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the process, waits for it and its output; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise LabError(f"`{' '.join(self.argv)}` did not stop within {timeout} s")
        self.out.join(5)
        self.err.join(5)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Tcpdump(Process):
    """tcpdump writing every frame of `dev` (snap length 256) to `path`."""

    def __init__(self, ns, dev, path):
        super().__init__(["tcpdump", "-i", dev, "-w", path, "-s", "256", "-U", "-n",
                          "--immediate-mode", "-B", "65536"], ns=ns)
        self.path = path
        if not self.err.wait_for(lambda line: "listening on" in line, 10):
            self.kill()
            raise LabError(f"tcpdump did not start on {dev}: {self.err.text()}")

    def finish(self):
        """Stops the capture; raises LabError when it missed frames."""
        rc = self.stop(signal.SIGINT)
        stats = self.err.text()
        numbers = {key: int(n) for n, key in re.findall(
            r"(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)",
            stats)}
        if rc != 0 or "captured" not in numbers:
            raise LabError(f"tcpdump failed (exit {rc}): {tail(stats)}")
        lost = numbers.get("dropped by kernel", 0) + numbers.get("dropped by interface", 0)
        if lost or numbers["captured"] != numbers.get("received by filter", numbers["captured"]):
            raise LabError(f"the capture is incomplete, no reference: {tail(stats, 4)}")
        return numbers["captured"]


class Tcflows(Process):
    """`tcflows record --format json` in a namespace.

    Ready once attached: after its first snapshot, or its "recording on"
    message (with a long --interval the first snapshot comes late).
    """

    def __init__(self, binary, ns, ifaces, extra=(), interval="500ms"):
        argv = [binary, "record", "--format", "json", "--interval", interval]
        for iface in ifaces:
            argv += ["-i", iface]
        super().__init__(argv + list(extra), ns=ns, keep_out=4)
        deadline = time.monotonic() + 15
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                rc = self.stop()
                raise LabError(f"tcflows did not start (exit {rc}): {tail(self.err.text())}")
            time.sleep(0.02)

    def _ready(self):
        return self.out.count > 0 or any("recording on" in line for line in self.err.lines)

    def finish(self, sig=signal.SIGTERM):
        """Stops tcflows; returns its final snapshot (the last JSON line)."""
        rc = self.stop(sig)
        if rc != 0:
            raise Failure(f"tcflows exited {rc} on {signal.Signals(sig).name}: "
                          f"{tail(self.err.text())}")
        if not self.out.lines:
            raise Failure("tcflows printed no snapshot")
        return json.loads(self.out.lines[-1])


def settle(seconds=1.0):
    """Lets late ACKs and queued frames reach both observers."""
    time.sleep(seconds)


# ---------------------------------------------------------------- flow keys

Key = namedtuple("Key", "proto src sport dst dport")
Counts = namedtuple("Counts", "packets bytes")

# Names as tcflows prints them (src/flow.cpp).
IP_PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6", 132: "SCTP", 33: "DCCP",
                136: "UDPLite"}
ETHERTYPES = {0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x8863: "PPPoE-D",
              0x8864: "PPPoE", 0x8847: "MPLS", 0x8848: "MPLS", 0x888E: "EAPOL",
              0x88F7: "PTP", 0x8809: "LACP", 0x9000: "LOOP", 0x0800: "IPv4", 0x86DD: "IPv6"}
ECHO_TYPES = {"icmp": (0, 8), "icmpv6": (128, 129)}


def norm_addr(text):
    """RFC 5952 text of an IP address; MAC addresses in lower case."""
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text.lower()


def snapshot_flows(snapshot, iface):
    """Per-direction counts from a tcflows JSON snapshot, for one interface."""
    flows = {}
    for f in snapshot["flows"]:
        if f["iface"] != iface:
            raise Failure(f"tcflows reports interface {f['iface']}, watching only {iface}")
        key = Key(f["proto"], norm_addr(f["src_addr"]), f["src_port"],
                  norm_addr(f["dst_addr"]), f["dst_port"])
        if key in flows:
            raise Failure(f"tcflows lists {key} twice")
        flows[key] = Counts(f["packets"], f["bytes"])
    return flows


# ---------------------------------------------------------------- the capture

FIELDS = ["frame.number", "frame.time_epoch", "frame.len", "frame.protocols",
          "eth.src", "eth.dst", "eth.type", "vlan.etype",
          "ip.src", "ip.dst", "ip.len", "ip.proto", "ipv6.src", "ipv6.dst", "ipv6.plen",
          "tcp.srcport", "tcp.dstport", "tcp.hdr_len", "tcp.len", "tcp.flags.syn", "tcp.seq",
          "tcp.options.mss_val", "tcp.stream",
          "udp.srcport", "udp.dstport", "udp.stream", "sctp.srcport", "sctp.dstport",
          "icmp.type", "icmp.code", "icmp.ident",
          "icmpv6.type", "icmpv6.code", "icmpv6.echo.identifier"]

# tcp_seq is tshark's relative sequence number, mss the SYN's MSS option,
# stream tshark's tcp.stream or udp.stream (None for other protocols).
Frame = namedtuple("Frame", "number time_ns key bytes ip_version l4 tcp_hdr_len tcp_len syn "
                   "tcp_seq mss stream")


def _epoch_ns(text):
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def _int(text):
    if text in ("", None):
        return None
    if text in ("True", "False"):
        return int(text == "True")
    return int(text, 0)


def _l4_name(protocols):
    """The transport of the OUTER IP header, from tshark's frame.protocols."""
    layers = protocols.split(":")
    for i, layer in enumerate(layers):
        if layer in ("ip", "ipv6"):
            for inner in layers[i + 1:]:
                if not inner.startswith("ipv6."):
                    return inner
            return ""
    return None


def _frame_key(f):
    """(key, IP-level bytes, IP version, transport) of one frame, as tcflows keys it."""
    l4 = _l4_name(f["frame.protocols"])
    if l4 is None:  # not IP: a link-layer flow, frame bytes
        ethertype = _int(f["vlan.etype"] or f["eth.type"])
        name = ETHERTYPES.get(ethertype, f"0x{ethertype:04x}" if ethertype else "?")
        return Key(name, norm_addr(f["eth.src"]), 0, norm_addr(f["eth.dst"]), 0), \
            int(f["frame.len"]), 0, None
    if f["ip.src"]:
        version, src, dst = 4, f["ip.src"], f["ip.dst"]
        nbytes, proto = int(f["ip.len"]), int(f["ip.proto"])
    else:
        version, src, dst = 6, f["ipv6.src"], f["ipv6.dst"]
        nbytes, proto = int(f["ipv6.plen"]) + 40, None
    sport = dport = 0
    if l4 in ("tcp", "udp", "sctp"):
        sport, dport = int(f[f"{l4}.srcport"]), int(f[f"{l4}.dstport"])
        proto = {"tcp": 6, "udp": 17, "sctp": 132}[l4]
    elif l4 in ("icmp", "icmpv6"):
        proto = 1 if l4 == "icmp" else 58
        itype, code = int(f[f"{l4}.type"]), int(f[f"{l4}.code"])
        if itype in ECHO_TYPES[l4]:
            ident = f["icmp.ident"] if l4 == "icmp" else f["icmpv6.echo.identifier"]
            sport = dport = _int(ident)
        else:
            sport = itype << 8 | code
    name = IP_PROTOCOLS.get(proto, str(proto) if proto is not None else f"?{l4}")
    return Key(name, norm_addr(src), sport, norm_addr(dst), dport), nbytes, version, l4


def read_capture(path):
    """Every frame of a capture file, keyed as tcflows keys flows."""
    argv = ["tshark", "-n", "-r", path, "-o", "ip.defragment:FALSE",
            "-o", "ipv6.defragment:FALSE", "-o", "tcp.desegment_tcp_streams:FALSE",
            "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for field in FIELDS:
        argv += ["-e", field]
    out = run(argv, timeout=300).stdout
    frames = []
    for line in out.splitlines():
        f = dict(zip(FIELDS, line.split("\t")))
        key, nbytes, version, l4 = _frame_key(f)
        stream = _int(f[f"{l4}.stream"]) if l4 in ("tcp", "udp") else None
        frames.append(Frame(int(f["frame.number"]), _epoch_ns(f["frame.time_epoch"]), key,
                            nbytes, version, l4, _int(f["tcp.hdr_len"]), _int(f["tcp.len"]),
                            _int(f["tcp.flags.syn"]) or 0, _int(f["tcp.seq"]),
                            _int(f["tcp.options.mss_val"]), stream))
    return frames


def capture_flows(frames):
    """Per-direction wire packets and IP bytes (frame bytes for non-IP) of a capture."""
    flows = {}
    for fr in frames:
        packets, nbytes = flows.get(fr.key, (0, 0))
        flows[fr.key] = Counts(packets + 1, nbytes + fr.bytes)
    return flows


Connection = namedtuple("Connection", "key orig resp first_ns last_ns frames")


def capture_connections(frames):
    """The capture's connections, for per-connection checks (issue 3).

    TCP and UDP split by tshark's stream number (reused 5-tuples apart),
    others by their bidirectional key. The originator is the sender of the
    first frame; key is that frame's key, orig/resp the Counts each way."""
    groups = {}
    for fr in frames:
        k = fr.key
        ends = frozenset({(k.src, k.sport), (k.dst, k.dport)})
        group = groups.setdefault((k.proto, fr.stream, ends), [])
        group.append(fr)
    conns = []
    for group in groups.values():
        first = group[0].key
        orig = [f for f in group if (f.key.src, f.key.sport) == (first.src, first.sport)]
        resp = [f for f in group if (f.key.src, f.key.sport) != (first.src, first.sport)]
        conns.append(Connection(first, Counts(len(orig), sum(f.bytes for f in orig)),
                                Counts(len(resp), sum(f.bytes for f in resp)),
                                group[0].time_ns, group[-1].time_ns, len(group)))
    return conns


# ---------------------------------------------------------------- comparison


def _fmt_key(k):
    if k.proto in ("ICMP", "ICMPv6"):
        what = f"echo id {k.sport}" if k.sport == k.dport else \
            f"type {k.sport >> 8} code {k.sport & 0xff}"
        return f"{k.proto} {k.src} -> {k.dst} {what}"
    if k.sport or k.dport:
        return f"{k.proto} {k.src}:{k.sport} -> {k.dst}:{k.dport}"
    return f"{k.proto} {k.src} -> {k.dst}"


def compare_flows(reference, measured, ref_name="capture", name="tcflows", max_rows=30):
    """Prints the per-direction comparison; raises Failure on any difference."""
    keys = sorted(set(reference) | set(measured), key=lambda k: (k.proto, str(k)))
    bad = []
    for k in keys:
        r, m = reference.get(k), measured.get(k)
        if r != m:
            bad.append((k, r, m))
    total_pkts = sum(c.packets for c in reference.values())
    total_bytes = sum(c.bytes for c in reference.values())
    print(f"  {len(keys)} flow directions, {ref_name}: {total_pkts} packets "
          f"{total_bytes} bytes")
    if not bad:
        for k in keys[:max_rows]:
            r = reference[k]
            print(f"    equal  {_fmt_key(k):60} {r.packets:>8} pkts {r.bytes:>11} B")
        if len(keys) > max_rows:
            print(f"    ... and {len(keys) - max_rows} more, all equal")
        return
    print(f"  {len(bad)} of {len(keys)} flow directions differ "
          f"({ref_name} vs {name}, packets/bytes):")
    for k, r, m in bad[:max_rows]:
        show = lambda c: "absent" if c is None else f"{c.packets}/{c.bytes}"
        print(f"    DIFF   {_fmt_key(k):60} {ref_name} {show(r):>18}  {name} {show(m):>18}")
    if len(bad) > max_rows:
        print(f"    ... and {len(bad) - max_rows} more")
    raise Failure(f"{len(bad)} flow directions differ from the {ref_name}")


def check(condition, message):
    if not condition:
        raise Failure(message)


# ---------------------------------------------------------------- traffic


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


def make_socket(ns, family, kind):
    with netns(ns):
        return socket.socket(family, kind)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _send_all(sock, nbytes, chunk=65536):
    block = bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < nbytes:
        sent += sock.send(block[:min(chunk, nbytes - sent)])
    sock.shutdown(socket.SHUT_WR)
    return sent


def _recv_all(sock):
    got = 0
    while True:
        data = sock.recv(1 << 16)
        if not data:
            return got
        got += len(data)


TcpResult = namedtuple("TcpResult", "client_port client_sent client_recv server_sent server_recv")


class TcpTransfer:
    """One TCP connection: the client sends `up` bytes while the server sends
    `down` bytes; each direction's sender and receiver run in their own thread
    (pinned to `cpus` in turn), then both sides close."""

    def __init__(self, lab, client, server, server_addr, port, up, down, cpus=(None,)):
        family = family_of(server_addr)
        self.listener = make_socket(lab.ns[server], family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((server_addr, port))
        self.listener.listen(1)
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
            workers = [Worker(_send_all, self.client, self.up, cpu=next(self.cpus)),
                       Worker(_send_all, conn, self.down, cpu=next(self.cpus)),
                       Worker(_recv_all, conn, cpu=next(self.cpus)),
                       Worker(_recv_all, self.client, cpu=next(self.cpus))]
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


def mac_of(lab, side):
    path = f"/sys/class/net/{lab.dev[side]}/address"
    return bytes.fromhex(run(["cat", path], ns=lab.ns[side]).stdout.strip().replace(":", ""))


def _checksum(data):
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src_mac, dst_mac, tags, ethertype, payload):
    """An Ethernet frame with VLAN tags [(tpid, vid), ...], outermost first."""
    head = dst_mac + src_mac
    for tpid, vid in tags:
        head += tpid.to_bytes(2, "big") + vid.to_bytes(2, "big")
    return head + ethertype.to_bytes(2, "big") + payload


def ipv4_udp(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + _checksum(ip).to_bytes(2, "big") + ip[12:]
    return ip + udp


def ipv6_udp(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0xFFFF) + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + udp


def arp_request(src_mac, src_ip, dst_ip):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src_mac, socket.inet_aton(src_ip),
                       bytes(6), socket.inet_aton(dst_ip))


def send_frames(lab, side, frames):
    """Writes raw frames on dev[side] (AF_PACKET: through TC egress)."""
    sock = make_socket(lab.ns[side], socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((lab.dev[side], 0))
        for f in frames:
            sock.send(f)


def ping(lab, side, addr, count=5, size=56, interval=0.2):
    """Echo requests from `side` to addr with iputils ping; raises if any is lost."""
    argv = ["ping", "-6" if ":" in addr else "-4", "-n", "-q", "-c", count, "-i", interval,
            "-s", size, "-W", "2", addr]
    run(argv, ns=lab.ns[side], timeout=count * interval + 15)


# ---------------------------------------------------------------- a whole run

Observation = namedtuple("Observation", "snapshot frames traffic captured snapshots")


def observe(binary, lab, traffic, interval="500ms", settle_s=1.0, tcflows_args=()):
    """tcpdump and tcflows on dev['a'] from before link-up; runs traffic(lab)
    and lets it settle; stops tcflows, then tcpdump. Returns the final tcflows
    snapshot, the captured frames and traffic's return value."""
    cap_path = os.path.join(scratch_dir(), "a.pcap")
    dev = lab.dev["a"]
    dump = Tcpdump(lab.ns["a"], dev, cap_path)
    flows = Tcflows(binary, lab.ns["a"], [dev], extra=tcflows_args, interval=interval)
    lab.link_up()
    result = traffic(lab)
    settle(settle_s)
    snapshot = flows.finish()
    captured = dump.finish()
    frames = read_capture(cap_path)
    if len(frames) != captured:
        raise LabError(f"tshark read {len(frames)} frames, tcpdump wrote {captured}")
    return Observation(snapshot, frames, result, captured, flows.out.count)


def read_jsonl(path):
    """One JSON object per line (tcflows --jsonl, issue 3)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def counters_line(snapshot, names=("frames", "gso_frames", "malformed", "flow_full",
                                   "flow_error", "untracked_packets")):
    c = snapshot["counters"]
    return "  tcflows counters: " + " ".join(f"{n}={c.get(n, '?')}" for n in names)


# ---------------------------------------------------------------- test runner


def scratch_dir():
    path = tempfile.mkdtemp(prefix="tl-lab-")
    on_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


OPTIONS = {}


def main(tests):
    """Runs the test functions with the tcflows binary from argv[1].

    Further arguments: NAME=VALUE options for the tests (in OPTIONS), and test
    names to run only those. Exit 0 all passed, 1 any failed, 77 not root
    (never skipped as root).
    """
    require_root()
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} TCFLOWS_BINARY [NAME=VALUE...] [TEST...]", file=sys.stderr)
        sys.exit(2)
    binary = os.path.abspath(sys.argv[1])
    chosen = []
    for arg in sys.argv[2:]:
        if "=" in arg:
            name, value = arg.split("=", 1)
            OPTIONS[name] = value
        else:
            chosen.append(arg)
    chosen = chosen or [t.__name__ for t in tests]
    failed = []
    for test in tests:
        if test.__name__ not in chosen:
            continue
        summary = (test.__doc__ or "").strip().split("\n")[0]
        print(f"== {test.__name__}: {summary}", flush=True)
        start = time.monotonic()
        try:
            test(binary)
            print(f"PASS {test.__name__} ({time.monotonic() - start:.1f} s)", flush=True)
        except Failure as e:
            print(f"FAIL {test.__name__}: {e}", flush=True)
            failed.append(test.__name__)
        except Exception as e:
            print(f"ERROR {test.__name__}: {type(e).__name__}: {e}", flush=True)
            where = traceback.format_exc().strip().splitlines()[:-1]
            print("\n".join(where[-8:]), flush=True)
            failed.append(test.__name__)
        finally:
            _run_cleanups()
    print(f"{len(chosen) - len(failed)} passed, {len(failed)} failed"
          + (f": {' '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)
