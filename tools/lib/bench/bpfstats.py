"""Run-time statistics of BPF programs (run_time_ns, run_cnt).

Statistics are enabled with the bpf(BPF_ENABLE_STATS) syscall, which keeps
them on while its fd is open and counts references, so a benchmark never
switches them off under someone else who set kernel.bpf_stats_enabled. If
the syscall is unavailable, the sysctl is set and restored afterwards.
"""

import ctypes
import json
import os
import platform

from tcflows_lab.proc import run

from .lab import RCV, RCV_IF

BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0
SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def sysctl_value():
    with open(SYSCTL) as f:
        return int(f.read())


class StatsEnabled:
    """Context manager: BPF run-time statistics on while inside."""

    def __enter__(self):
        self.fd, self.restore = -1, None
        if SYS_BPF is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            attr = (ctypes.c_uint32 * 32)()
            attr[0] = BPF_STATS_RUN_TIME
            self.fd = libc.syscall(SYS_BPF, BPF_ENABLE_STATS, ctypes.byref(attr),
                                   ctypes.sizeof(attr))
        if self.fd < 0:
            self.restore = sysctl_value()
            with open(SYSCTL, "w") as f:
                f.write("1")
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)
        elif self.restore is not None:
            with open(SYSCTL, "w") as f:
                f.write(str(self.restore))


def attached_tcflows_ids():
    """Ids of the tcflows programs attached to the monitored veth end."""
    out = run(["bpftool", "-j", "net", "show", "dev", RCV_IF], ns=RCV).stdout
    hooks = [h for s in json.loads(out) for h in s.get("tc", [])]
    return [h["id"] for h in hooks if "tcflows" in h.get("name", "")]


def prog_stats(ids):
    """Summed run_time_ns and run_cnt of the programs."""
    time_ns = count = 0
    for prog_id in ids:
        info = json.loads(run(["bpftool", "-j", "prog", "show", "id", prog_id]).stdout)
        time_ns += info.get("run_time_ns", 0)
        count += info.get("run_cnt", 0)
    return time_ns, count


def xlated_insns(prog_id):
    """Instructions of the program after the verifier (a static size, not a path)."""
    out = run(["bpftool", "-j", "prog", "dump", "xlated", "id", prog_id]).stdout
    return len(json.loads(out))
