"""tcpdump, the capture every count is checked against: it writes the frames
of one interface, tshark reads them back (tshark.py)."""

import os
import re
import signal

from .proc import LabError, Process, scratch_dir, tail
from .tshark import read_capture

_STATS = re.compile(r"(\d+) packets? (captured|received by filter|dropped by kernel|"
                    r"dropped by interface)")


class Tcpdump(Process):
    """tcpdump writing every frame of `dev` (the first `snaplen` bytes) to
    `path`, with nanosecond timestamps. immediate: each frame written at once
    (a test's capture is complete the moment it stops); off, tcpdump keeps up
    with higher rates."""

    def __init__(self, ns, dev, path, snaplen=256, buffer_kib=65536, immediate=True):
        argv = ["tcpdump", "-i", dev, "-w", path, "-s", snaplen, "-n", "-B", buffer_kib,
                "--time-stamp-precision", "nano"]
        if immediate:
            argv += ["-U", "--immediate-mode"]
        super().__init__(argv, ns=ns)
        self.path = path
        if not self.err.wait_for(lambda line: "listening on" in line, 10):
            self.kill()
            raise LabError(f"tcpdump did not start on {dev}: {self.err.text()}")

    def stop_counts(self):
        """Stops the capture; returns tcpdump's counts by name ("captured",
        "received by filter", "dropped by kernel", "dropped by interface")."""
        rc = self.stop(signal.SIGINT, timeout=30)
        stats = self.err.text()
        numbers = {key: int(n) for n, key in _STATS.findall(stats)}
        if rc != 0 or "captured" not in numbers:
            raise LabError(f"tcpdump failed (exit {rc}): {tail(stats)}")
        return numbers

    def finish(self):
        """Stops the capture; returns the frames captured; raises LabError
        when it missed any."""
        numbers = self.stop_counts()
        lost = numbers.get("dropped by kernel", 0) + numbers.get("dropped by interface", 0)
        if lost or numbers["captured"] != numbers.get("received by filter", numbers["captured"]):
            raise LabError(f"the capture is incomplete, no reference: {tail(self.err.text(), 4)}")
        return numbers["captured"]


class Capture:
    """tcpdump on dev of namespace ns, into a scratch file; finish() returns
    the frames, as tshark reads them."""

    def __init__(self, ns, dev):
        self.path = os.path.join(scratch_dir(), f"{dev}.pcap")
        self.dump = Tcpdump(ns, dev, self.path)

    def finish(self):
        captured = self.dump.finish()
        frames = read_capture(self.path)
        if len(frames) != captured:
            raise LabError(f"tshark read {len(frames)} frames, tcpdump wrote {captured}")
        return frames
