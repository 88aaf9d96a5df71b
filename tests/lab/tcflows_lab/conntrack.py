"""conntrack with accounting, the second reference: the kernel's own
connection tracking in a lab namespace, its entries with their counters."""

import os
import signal
import subprocess
import time
from collections import namedtuple

from .proc import LabError, kill_process, ns_argv, on_cleanup, run, scratch_dir, tail
from .tshark import Counts, Key, norm_addr

CtEntry = namedtuple("CtEntry", "ct_id key orig resp state status")
_CT_PROTOS = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "icmpv6": "ICMPv6"}


def parse_conntrack_line(line):
    """One line of `conntrack -E -o extended,id` (an event) or of `conntrack
    -L -o extended,id` (event "LIST"): (event, CtEntry) or None.

    key is the original direction's key as read_capture keys frames (ICMP
    echo: both ports the identifier); orig/resp the accounting Counts."""
    tokens = line.split()
    event = "LIST"
    if tokens and tokens[0].startswith("["):
        event, tokens = tokens[0].strip("[]"), tokens[1:]
    if len(tokens) < 4 or tokens[2] not in _CT_PROTOS:
        return None
    proto = _CT_PROTOS[tokens[2]]
    last_id = max(i for i, t in enumerate(tokens) if t.startswith("id="))
    tuples, status, state = [], set(), None
    for i, t in enumerate(tokens[4:], 4):
        if t.startswith("[") and t.endswith("]"):
            status.add(t.strip("[]"))
        elif "=" in t and i != last_id:
            name, value = t.split("=", 1)
            if name == "src":
                tuples.append({})
            if tuples and name not in tuples[-1]:
                tuples[-1][name] = value
        elif not tuples and t.isupper():
            state = t
    o = tuples[0]
    if proto in ("ICMP", "ICMPv6"):
        sport = dport = int(o["id"])
    else:
        sport, dport = int(o["sport"]), int(o["dport"])
    key = Key(proto, norm_addr(o["src"]), sport, norm_addr(o["dst"]), dport)
    counts = [Counts(int(t.get("packets", 0)), int(t.get("bytes", 0))) for t in tuples]
    return event, CtEntry(int(tokens[last_id][3:]), key, counts[0], counts[1], state,
                          frozenset(status))


# No entry of a test's connections expires while the test runs (a dump at
# the end reads their counters): conntrack timeouts of 10 minutes.
_CT_TIMEOUTS = ["tcp_timeout_syn_sent", "tcp_timeout_syn_recv", "tcp_timeout_established",
                "tcp_timeout_fin_wait", "tcp_timeout_close_wait", "tcp_timeout_last_ack",
                "tcp_timeout_time_wait", "tcp_timeout_close", "udp_timeout",
                "udp_timeout_stream", "icmp_timeout", "icmpv6_timeout"]


class Conntrack:
    """conntrack with accounting in a lab namespace, as a second reference.

    Turns accounting on, makes the namespace track connections (a rule with
    a conntrack expression), and lists conntrack's DESTROY events from
    before the traffic: entries that end while the test runs (a refused
    connection, one replaced by a reused 5-tuple). finish() adds a dump of
    the table for the rest; conntrack timeouts of 10 minutes keep them in it.
    (NEW events or a flush of the table would be thousands of events at
    once in the bursts, more than the event socket reliably takes.)"""

    PROBE = ("192.0.2.1", "192.0.2.2")  # documentation addresses, never sent to

    def __init__(self, lab, side="a"):
        self.ns = lab.ns[side]
        lab.sysctl(side, "net.netfilter.nf_conntrack_acct=1",
                   *[f"net.netfilter.nf_conntrack_{t}=600" for t in _CT_TIMEOUTS])
        run(["nft", "-f", "-"], ns=self.ns, input=(
            "table inet tcflows_lab_ct {\n"
            " chain pre { type filter hook prerouting priority 0; ct state new counter\n }\n"
            " chain out { type filter hook output priority 0; ct state new counter\n }\n"
            "}\n"))
        self.path = os.path.join(scratch_dir(), "conntrack.events")
        with open(self.path, "w") as out:
            self.proc = subprocess.Popen(
                ns_argv(self.ns, ["conntrack", "-E", "-e", "DESTROY", "-o", "extended,id",
                                  "--buffer-size", 64 << 20]),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, text=True)
        on_cleanup(lambda: kill_process(self.proc))
        self._probe()

    def _probe(self):
        """Returns once the listener reports events: a probe entry's end shows."""
        src, dst = self.PROBE
        entry = ["-p", "udp", "-s", src, "-d", dst, "--sport", "9", "--dport", "9"]
        deadline = time.monotonic() + 10
        while True:
            run(["conntrack", "-I", *entry, "-t", "30"], ns=self.ns)
            run(["conntrack", "-D", *entry], ns=self.ns)
            time.sleep(0.1)
            if src in self._text():
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"conntrack -E reports no events: {tail(self._stderr())}")

    def _text(self):
        with open(self.path) as f:
            return f.read()

    def _stderr(self):
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def _dump(self):
        lines = []
        for family in ("ipv4", "ipv6"):
            out = run(["conntrack", "-L", "-f", family, "-o", "extended,id"], ns=self.ns).stdout
            lines += out.splitlines()
        return lines

    def finish(self):
        """Stops listening; returns a CtEntry with the final counters of every
        connection conntrack had (probe excluded): the ended ones in the order
        they ended, then those still in the table."""
        dump = self._dump()
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            kill_process(self.proc)
            raise LabError("conntrack -E did not stop within 10 s")
        if "ENOBUFS" in err:
            raise LabError(f"conntrack lost events, no reference: {tail(err, 3)}")
        # Nothing ends between the dump and the stop: the traffic is over and
        # the timeouts are long. (No dedup by id: a reused 5-tuple's entries
        # often share memory and so id.)
        return self._parse(self._text().splitlines()) + self._parse(dump)

    def _parse(self, lines):
        entries = []
        for line in lines:
            parsed = parse_conntrack_line(line)
            if parsed and parsed[1].key.src != self.PROBE[0]:
                entries.append(parsed[1])
        return entries
