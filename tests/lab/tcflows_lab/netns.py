"""Network namespaces: the lab of two namespaces joined by a veth pair, the
calling thread inside a namespace, and a private mount (a tmpfs, a bpffs)
in a mount namespace of its own.

A lab's names start with a prefix, `tl` unless a test passes its own
(namespaces `tl-a-<pid>-<n>`, veth `tl<pid><letters>a`), so that labs of
several tests and several users never meet; or they are fixed names (the
benchmark's), whose leftovers from an interrupted run can only be ours.
Everything is removed in cleanup, also when a test fails or is killed.
"""

import contextlib
import ctypes
import errno
import itertools
import json
import os
import signal
import socket
import subprocess
import time

from .proc import LabError, kill_process, on_cleanup, run, wait_for

# Addresses inside the lab namespaces only; no packet ever leaves them.
ADDR4 = {"a": "10.199.0.1", "b": "10.199.0.2"}
ADDR6 = {"a": "fd00:199::1", "b": "fd00:199::2"}
ETH_HLEN = 14

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _setns(fd):
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError(f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(name):
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


def make_socket(ns, family, kind):
    """A socket of namespace ns (it stays there, whichever thread uses it)."""
    with in_netns(ns):
        return socket.socket(family, kind)


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
_NO_IPV6 = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]


def _letters(n):
    """0 -> "a", 25 -> "z", 26 -> "ba": digits of base 26 in letters."""
    text = ""
    while True:
        text = chr(ord("a") + n % 26) + text
        n //= 26
        if not n:
            return text


def lab_names(prefix):
    """({side: namespace}, {side: device}) for a new lab of this process:
    namespaces <prefix>-<side>-<pid>-<n>, devices <prefix><pid><n in
    letters><side> (unambiguous, at most 15 characters)."""
    n, pid = next(_lab_numbers), os.getpid()
    ns = {side: f"{prefix}-{side}-{pid}-{n}" for side in "ab"}
    dev = {side: f"{prefix}{pid}{_letters(n)}{side}" for side in "ab"}
    assert all(len(d) <= 15 for d in dev.values())
    return ns, dev


def prepare_namespace(name, sysctls=(), ipv6=True):
    """A new namespace made ready: IPv6 quiet (or off), sysctls set, lo up."""
    quiet = [s.format(c=c) for s in _QUIET_SYSCTLS for c in ("all", "default")]
    run(["sysctl", "-q", "-w", *(quiet if ipv6 else _NO_IPV6), *sysctls], ns=name)
    run(["ip", "link", "set", "lo", "up"], ns=name)


class Lab:
    """Namespaces a and b joined by veth dev['a'] <-> dev['b'].

    setup() leaves dev['a'] up without carrier (dev['b'] down), so observers
    started on dev['a'] see everything from the first frame; link_up() then
    brings dev['b'] up.

    names: fixed {side: (namespace, device)} instead of prefix-pid names.
    ipv6=False: no IPv6 at all and permanent neighbour entries, so that only
    the traffic a test makes crosses the veth (no ND, MLD or ARP).
    addresses=False: no addresses either. mtu: the veth's MTU.
    """

    def __init__(self, offloads=False, sysctls=(), prefix="tl", names=None, ipv6=True,
                 addresses=True, mtu=None):
        if names:
            self.ns = {side: names[side][0] for side in "ab"}
            self.dev = {side: names[side][1] for side in "ab"}
            assert all(len(d) <= 15 for d in self.dev.values())
        else:
            self.ns, self.dev = lab_names(prefix)
        self.fixed_names = bool(names)
        self.addr4 = dict(ADDR4)
        self.addr6 = dict(ADDR6)
        self.offloads = offloads
        self.sysctls = list(sysctls)
        self.ipv6, self.addresses, self.mtu = ipv6, addresses, mtu
        self._created = []
        on_cleanup(self.destroy)

    def __enter__(self):
        self.setup()
        return self

    def __exit__(self, *exc):
        self.destroy()

    def setup(self):
        if self.fixed_names:  # an interrupted run's: the names are ours
            for name in self.ns.values():
                remove_namespace(name)
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def _create(self):
        for side in ("a", "b"):
            run(["ip", "netns", "add", self.ns[side]])
            self._created.append(self.ns[side])
            prepare_namespace(self.ns[side], self.sysctls, self.ipv6)
        mtu = ["mtu", self.mtu] if self.mtu else []
        run(["ip", "-n", self.ns["a"], "link", "add", self.dev["a"], *mtu, "type", "veth",
             "peer", "name", self.dev["b"], *mtu, "netns", self.ns["b"]])
        for side in ("a", "b"):
            dev = self.dev[side]
            if self.ipv6:
                self.quiet_link(side, dev)
            if self.addresses:
                self.ip(side, "addr", "add", f"{self.addr4[side]}/24", "dev", dev)
            if self.addresses and self.ipv6:
                self.ip(side, "-6", "addr", "add", f"{self.addr6[side]}/64", "dev", dev, "nodad")
        if self.addresses and not self.ipv6:
            for side in ("a", "b"):
                peer = self.peer(side)
                self.ip(side, "neigh", "replace", self.addr4[peer], "lladdr",
                        _mac(self.ns[peer], self.dev[peer]), "dev", self.dev[side],
                        "nud", "permanent")
        self.set_offloads(self.offloads)
        self.ip("a", "link", "set", self.dev["a"], "up")

    def quiet_link(self, side, dev):
        """The quiet IPv6 and neighbour settings on dev (in namespace `side`)."""
        self.sysctl(side, *[s.format(f=f, c=dev) for s in _NEIGH_SYSCTLS
                            for f in ("ipv4", "ipv6")])
        self.sysctl(side, *[s.format(c=dev) for s in _QUIET_SYSCTLS])

    def add_spare(self, letter):
        """A veth pair with both ends in namespace a, up and silent (no IPv6
        addresses): dev['a'] with its last letter replaced, and that + "p"."""
        name = self.dev["a"][:-1] + letter
        self.ip("a", "link", "add", name, "type", "veth", "peer", "name", name + "p")
        for dev in (name, name + "p"):
            self.ip("a", "link", "set", dev, "addrgenmode", "none")
            self.ip("a", "link", "set", dev, "up")
        return name, name + "p"

    def link_up(self):
        """Brings dev['b'] up; waits until dev['a'] has carrier and both ends
        have their IPv6 link-local address, and lets the MLD reports that
        follow go out: none comes later, while observers stop. (The kernel's
        link watch may tell IPv6 of the link up to a second late.)"""
        self.ip("b", "link", "set", self.dev["b"], "up")
        path = f"/sys/class/net/{self.dev['a']}/carrier"
        wait_for(lambda: run(["cat", path], ns=self.ns["a"], check=False).stdout.strip() == "1",
                 5, f"carrier on {self.dev['a']} after link-up", poll=0.02)
        if not self.ipv6:
            return
        for side in ("a", "b"):
            argv = ["ip", "-6", "-o", "addr", "show", "dev", self.dev[side], "scope", "link"]
            wait_for(lambda: run(argv, ns=self.ns[side]).stdout.strip() != "", 5,
                     f"an IPv6 link-local address on {self.dev[side]} after link-up", poll=0.02)
        time.sleep(0.1)  # MLD reports: robustness 2, 10 ms apart (_QUIET_SYSCTLS)

    def destroy(self):
        for name in reversed(self._created):
            remove_namespace(name)
        self._created.clear()

    def ip(self, side, *args):
        return run(["ip", *args], ns=self.ns[side])

    def sysctl(self, side, *settings):
        if settings:
            run(["sysctl", "-q", "-w", *settings], ns=self.ns[side])

    def set_offloads(self, on):
        """Offloads off: every skb on the veth is one wire packet (exact reference)."""
        state = "on" if on else "off"
        for side in ("a", "b"):
            run(["ethtool", "-K", self.dev[side], "tso", state, "gso", state, "gro", state],
                ns=self.ns[side])
        self.offloads = on

    def peer(self, side):
        return "b" if side == "a" else "a"

    def link_counters(self, side="a"):
        """Packets and IP bytes that crossed dev[side], both directions.

        veth counts an skb when it is handed to the peer, with skb->len = the
        Ethernet header plus the IP packet (no padding, no FCS). Frames the
        egress hook saw but veth dropped are in tx dropped; their bytes are
        not known, which the caller reports.
        """
        out = self.ip(side, "-s", "-j", "link", "show", self.dev[side]).stdout
        stats = json.loads(out)[0]["stats64"]
        rx, tx = stats["rx"], stats["tx"]
        packets = rx["packets"] + tx["packets"]
        return {
            "packets": packets,
            "ip_bytes": rx["bytes"] + tx["bytes"] - ETH_HLEN * packets,
            "dropped": tx["dropped"],
            "rx_packets": rx["packets"],
            "tx_packets": tx["packets"],
        }


def _mac(ns, dev):
    """A device's MAC address, as `ip link` shows it."""
    return json.loads(run(["ip", "-j", "link", "show", dev], ns=ns).stdout)[0]["address"]


def mac_of(lab, side):
    """The MAC address of dev[side], as bytes."""
    return bytes.fromhex(_mac(lab.ns[side], lab.dev[side]).replace(":", ""))


def remove_namespace(name):
    """A namespace of ours and the processes in it, if it is there."""
    if os.path.exists(f"/run/netns/{name}"):
        kill_namespace_processes(name)
        run(["ip", "netns", "del", name], check=False)


def kill_namespace_processes(ns):
    """Ends processes left in a lab namespace (all of them are ours)."""
    p = run(["ip", "netns", "pids", ns], check=False)
    for pid in p.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def wait_listening(ns, port, udp=False, timeout=10):
    """Waits until a socket in namespace ns listens on (or is bound to) port."""
    flag = "-Hlun" if udp else "-Hltn"
    wait_for(lambda: run(["ss", flag, f"sport = :{port}"], ns=ns).stdout.strip(), timeout,
             f"a socket listening on port {port} in {ns}")


class PrivateMount:
    """A file system of type fstype mounted with `options` on directory
    `path` in a mount namespace of its own, held by a sleeping process:
    agents run in it (mount_ns=self.ns), the test reaches its files through
    /proc/PID/root (view()), and it vanishes with the holder."""

    def __init__(self, path, fstype, options):
        self.path = path
        script = f"mount -t {fstype} -o {options} {fstype} {path} && echo mounted && " \
                 "exec sleep 3600"
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "sh", "-c", script], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        on_cleanup(lambda: kill_process(self.proc))
        if self.proc.stdout.readline().strip() != "mounted":
            raise LabError(f"cannot mount a private {fstype}: {self.proc.stderr.read()}")
        self.ns = f"/proc/{self.proc.pid}/ns/mnt"

    def view(self, path):
        """The path as the test sees it."""
        return f"/proc/{self.proc.pid}/root{path}"


class PrivateTmpfs(PrivateMount):
    """A tmpfs of `size` on directory `path` in a mount namespace of its own."""

    def __init__(self, path, size):
        super().__init__(path, "tmpfs", f"size={size},mode=0755")

    def fill(self):
        """Fills the tmpfs up; returns the bytes written."""
        written = 0
        block = bytes(64 << 10)
        with open(self.view(os.path.join(self.path, "filler")), "wb", buffering=0) as f:
            try:
                while True:
                    written += f.write(block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
        return written

    def free(self):
        os.unlink(self.view(os.path.join(self.path, "filler")))
