"""The agent of the tcflows-only measurements: tcflows recording tb-r."""

import json
import os
import time

from tcflows_lab.proc import stop_process, wait_for

from . import procstat
from .lab import RCV_IF
from .peers import start_in_rcv, tcflows_attached


class Agent:
    """`tcflows record` on tb-r writing its database into workdir, as it would
    in use, with a JSON snapshot every second (--top 1: one flow, the counters)."""

    def __init__(self, binary, workdir, cpu, extra=()):
        self.binary = binary
        self.out_path, self.err_path = workdir / "agent.out", workdir / "agent.err"
        argv = [binary, "record", "-i", RCV_IF, "--db", str(workdir / "tcflows.db"),
                "--format", "json", "--top", "1", "--interval", "1s", *extra]
        self.process = start_in_rcv(argv, cpu, open(self.out_path, "w"),
                                    open(self.err_path, "w"))
        try:
            wait_for(self._attached, 15, "tcflows to attach")
            wait_for(self.snapshot, 5, "the agent's first snapshot")
        except BaseException:
            self.kill()
            raise

    def _attached(self):
        return tcflows_attached(self.process, self.err_path)

    @property
    def pid(self):
        return self.process.pid

    def is_tcflows(self):
        """The measured pid is the agent itself, not a wrapper (ip netns exec, nice
        and taskset exec, they do not fork)."""
        return os.path.realpath(f"/proc/{self.pid}/exe") == os.path.realpath(self.binary)

    def snapshot(self):
        """The last complete JSON snapshot, or None."""
        lines = self.out_path.read_text().split("\n")[:-1]
        return json.loads(lines[-1]) if lines else None

    def counters(self):
        return self.snapshot()["counters"]

    def during(self, load):
        """Runs load(); returns its result and the agent's CPU, peak RSS and
        counters before and after."""
        before = self.counters()
        cpu0, t0 = procstat.cpu_seconds(self.pid), time.monotonic()
        result = load()
        seconds = time.monotonic() - t0
        return {"result": result, "seconds": seconds, "before": before,
                "cpu_s_per_s": (procstat.cpu_seconds(self.pid) - cpu0) / seconds,
                "peak_rss_kib": procstat.peak_rss_kib(self.pid), "is_tcflows": self.is_tcflows()}

    def stop(self):
        """SIGTERM; returns the counters of the final snapshot."""
        status = stop_process(self.process, 120)
        if status != 0:
            raise RuntimeError(f"tcflows exited with {status}: {self.err_path.read_text()[-300:]}")
        return self.counters()

    def kill(self):
        stop_process(self.process, 5)

