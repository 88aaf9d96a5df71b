"""A whole run: a lab whose interface a is captured and recorded by tcflows
from before link-up, the traffic, and the stop (tcflows first, then the
capture)."""

import os
import signal
from collections import namedtuple

from .capture import Capture
from .compare import compare_records
from .db import Db
from .netns import Lab
from .proc import scratch_dir, settle
from .tcflows import Agent, Tcflows
from .tshark import capture_connections

AGENT_PREFIX = "tr"  # the labs of tests that run tcflows as an agent

# pcap: the capture file, for readers with other questions than read_capture's.
Observation = namedtuple("Observation", "snapshot frames traffic captured snapshots pcap")


def observe(binary, lab, traffic, interval="500ms", settle_s=1.0, tcflows_args=()):
    """tcpdump and tcflows on dev['a'] from before link-up; runs traffic(lab)
    and lets it settle; stops tcflows, then tcpdump. Returns the final tcflows
    snapshot, the captured frames and traffic's return value."""
    capture = Capture(lab.ns["a"], lab.dev["a"])
    flows = Tcflows(binary, lab.ns["a"], [lab.dev["a"]], extra=tcflows_args, interval=interval)
    lab.link_up()
    result = traffic(lab)
    settle(settle_s)
    snapshot = flows.finish()
    frames = capture.finish()
    return Observation(snapshot, frames, result, len(frames), flows.out.count, capture.path)


def new_lab(**kwargs):
    """A lab for tests that run tcflows as an agent (Agent)."""
    return Lab(prefix=AGENT_PREFIX, **kwargs)


class Recorded:
    """A lab whose interface a is captured and recorded by an agent writing
    a database, both from before link-up. A context manager; finish() lets
    late frames settle, stops the agent (exit 0), then the capture, and
    returns the final snapshot; then `frames` holds the capture. nsenter:
    how agents start (see Agent)."""

    def __init__(self, binary, db_path=None, args=(), interval="500ms", mount_ns=None,
                 nsenter=True):
        self.binary, self.args, self.interval, self.mount_ns = binary, args, interval, mount_ns
        self.nsenter = nsenter
        self.db = Db(db_path or os.path.join(scratch_dir(), "records.db"), mount_ns)
        self.lab = new_lab()
        self.frames = None

    def __enter__(self):
        self.lab.setup()
        self.ns, self.dev = self.lab.ns["a"], self.lab.dev["a"]
        self.capture = Capture(self.ns, self.dev)
        self.agent = self.start_agent()
        self.lab.link_up()
        return self

    def __exit__(self, *exc):
        self.lab.destroy()

    def start_agent(self):
        return Agent(self.binary, self.ns, [self.dev], db=self.db.path, args=self.args,
                     interval=self.interval, mount_ns=self.mount_ns, nsenter=self.nsenter)

    def finish(self, sig=signal.SIGTERM, settle_s=1.0):
        settle(settle_s)
        snapshot = self.agent.finish(sig)
        self.frames = self.capture.finish()
        return snapshot

    def compare(self, label, rows=None):
        """The database's records (or `rows`) against the capture."""
        compare_records(capture_connections(self.frames),
                        self.db.rows() if rows is None else rows, label)
