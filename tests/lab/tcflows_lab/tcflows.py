"""tcflows, the program under test: `tcflows record` running in a lab
namespace, one-shot commands, what it prints (JSON snapshots, JSONL
records) and what it leaves behind (TC filters and their programs, lock
files; nothing in bpffs)."""

import contextlib
import json
import os
import re
import shutil
import signal
import time

from .proc import Failure, LabError, Process, check, on_cleanup, run, scratch_dir, tail
from .tshark import Counts, Key, norm_addr

RUN_DIR = "/run/tcflows"
BPFFS = "/sys/fs/bpf"
CAP_NET_ADMIN = 1 << 12


class Tcflows(Process):
    """`tcflows record --format json` on `ifaces` of namespace `ns`.

    db: the --db path (None: --no-db). It runs under `ip netns exec` (in a
    mount namespace of its own, /sys remounted: no bpffs there), or with
    nsenter under `nsenter --net` in the test's mount namespace (or in
    mount_ns, a /proc/PID/ns/mnt path). tcflows keeps nothing in bpffs, so
    an agent started either way adopts the filters a killed one left.
    wait: return once every interface is attached.
    """

    def __init__(self, binary, ns, ifaces, extra=(), interval="500ms", db=None, nsenter=False,
                 mount_ns=None, wait=True):
        # Registered before the process's own cleanup, so it runs after that
        # kill: the lock files a test left (a killed agent's) go too.
        locks = [lock_file(ns, iface) for iface in ifaces]
        on_cleanup(lambda: remove_leftovers(locks))
        argv, run_ns = [], ns
        if nsenter or mount_ns:
            argv, run_ns = ["nsenter", f"--net=/run/netns/{ns}"], None
            argv += [f"--mount={mount_ns}"] if mount_ns else []
        argv += [binary, "record", "--format", "json", "--interval", interval]
        for iface in ifaces:
            argv += ["-i", iface]
        argv += ["--db", db] if db else ["--no-db"]
        super().__init__(argv + list(extra), ns=run_ns, keep_out=4, keep_err=60)
        self.ifaces = list(ifaces)
        if wait:
            self.wait_attached()

    def wait_attached(self, timeout=15):
        deadline = time.monotonic() + timeout
        while not all(self.said(f"recording on {i}") for i in self.ifaces):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                rc = self.stop()
                raise Failure(f"tcflows did not attach (exit {rc}): {tail(self.err.text())}")
            time.sleep(0.02)

    def said(self, text):
        return any(text in line for line in self.err.lines)

    def snapshot(self):
        """The latest JSON snapshot, None before the first."""
        lines = list(self.out.lines)
        return json.loads(lines[-1]) if lines else None

    def wait_counters(self, predicate, what, timeout=20):
        """Waits until the live snapshot's counters satisfy predicate; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.snapshot()
            if snap and predicate(snap["counters"]):
                return snap["counters"]
            time.sleep(0.1)
        snap = self.snapshot()
        raise Failure(f"{what}: not seen within {timeout} s; counters "
                      f"{store_counters(snap['counters']) if snap else 'none'}")

    def finish(self, sig=signal.SIGTERM):
        """Stops tcflows; checks exit 0; returns its final snapshot (the last JSON line)."""
        rc = self.stop(sig)
        if rc != 0:
            raise Failure(f"tcflows exited {rc} on {signal.Signals(sig).name}: "
                          f"{tail(self.err.text())}")
        if not self.out.lines:
            raise Failure("tcflows printed no snapshot")
        return json.loads(self.out.lines[-1])

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.out.join(5)
        self.err.join(5)


class Agent(Tcflows):
    """tcflows as an agent, as a service runs it: under `nsenter --net`
    unless nsenter=False (then `ip netns exec`); args: further options."""

    def __init__(self, binary, ns, ifaces, db=None, args=(), interval="500ms", mount_ns=None,
                 wait=True, nsenter=True):
        super().__init__(binary, ns, ifaces, extra=args, interval=interval, db=db,
                         nsenter=nsenter, mount_ns=mount_ns, wait=wait)


def expect_error(p, what, code=None, mentions=(), pattern=None):
    """A finished tcflows command failed as it should: exit code (non-zero,
    or `code`), one line `tcflows: error: ...` on stderr that mentions each
    of `mentions` and matches `pattern`, nothing on stdout."""
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    print(f"  {what}: exit {p.returncode}: {' | '.join(lines[:3])}")
    check(p.returncode != 0, f"{what}: exit 0")
    check(code is None or p.returncode == code, f"{what}: exit {p.returncode}, expected {code}")
    check(len(lines) == 1 and lines[0].startswith("tcflows: error: "),
          f"{what}: expected one line 'tcflows: error: ...' on stderr, got {len(lines)}")
    check(not p.stdout.strip(), f"{what}: printed on stdout: {tail(p.stdout, 2)}")
    for word in mentions:
        check(word in lines[0], f"{what}: the message does not mention '{word}'")
    check(pattern is None or re.search(pattern, lines[0]),
          f"{what}: the message does not say /{pattern}/")


# User nobody, without capabilities or groups.
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def reachable_copy(binary):
    """The binary where user nobody can run it (the build tree may not be)."""
    home = scratch_dir()
    os.chmod(home, 0o755)
    copy = os.path.join(home, "tcflows")
    shutil.copy(binary, copy)
    os.chmod(copy, 0o755)
    return copy


def tcflows_cmd(binary, ns, *args, timeout=30):
    """A one-shot tcflows command (detach, a second record) in namespace ns."""
    try:
        return run(["nsenter", f"--net=/run/netns/{ns}", binary, *args], check=False,
                   timeout=timeout)
    except LabError as e:
        raise Failure(f"`tcflows {' '.join(map(str, args))}` kept running: {e}")


# ---------------------------------------------------------------- what it prints


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


def counters_line(snapshot, names=("frames", "gso_frames", "malformed", "flow_full",
                                   "flow_error", "untracked_packets")):
    c = snapshot["counters"]
    return "  tcflows counters: " + " ".join(f"{n}={c.get(n, '?')}" for n in names)


def store_counters(counters):
    return {k: v for k, v in counters.items() if k.startswith("store_")}


def iter_jsonl(path):
    """The objects of a JSONL file (tcflows --jsonl), one by one."""
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path):
    """Every object of a JSONL file, in order."""
    return list(iter_jsonl(path))


def latest_jsonl(path):
    """The last line of each uid in a --jsonl file."""
    last = {}
    for obj in iter_jsonl(path):
        last[obj["uid"]] = obj
    return list(last.values())


# ---------------------------------------------------------------- what it leaves


def lock_file(ns, iface):
    """The lock file of interface iface of namespace ns (named by the
    namespace's inode: interfaces of one name in two namespaces do not meet)."""
    return os.path.join(RUN_DIR, f"net{os.stat(f'/run/netns/{ns}').st_ino}.{iface}.lock")


def remove_leftovers(locks):
    """Our lock files (of test-only interfaces)."""
    for lock in locks:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)


def tc_state(ns, dev):
    """(qdisc lines, {hook: filter lines}) of dev, as `tc` shows them."""
    qdiscs = run(["tc", "qdisc", "show", "dev", dev], ns=ns).stdout.strip().splitlines()
    filters = {}
    for hook in ("ingress", "egress"):
        out = run(["tc", "filter", "show", "dev", dev, hook], ns=ns).stdout
        filters[hook] = [line for line in out.splitlines() if line.strip()]
    return qdiscs, filters


def tcflows_filters(ns, dev):
    """{hook: number of tcflows filters} on dev."""
    _, filters = tc_state(ns, dev)
    return {hook: sum("tcflows_" in line for line in lines) for hook, lines in filters.items()}


def tcflows_programs(ns, dev):
    """{hook: id of the program of the tcflows filter} on dev (hooks without one left out)."""
    _, filters = tc_state(ns, dev)
    ids = {}
    for hook, lines in filters.items():
        for line in lines:
            m = re.search(r"tcflows_\w+:\[(\d+)\]", line)
            if m:
                ids[hook] = int(m.group(1))
    return ids


def program_exists(prog_id):
    """Whether the kernel still has BPF program prog_id."""
    return run(["bpftool", "prog", "show", "id", prog_id], check=False).returncode == 0


def program_gone(prog_id, timeout=5):
    """Whether BPF program prog_id is freed within timeout seconds (the kernel
    frees a program an RCU grace period after its last filter went)."""
    deadline = time.monotonic() + timeout
    while program_exists(prog_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def paths_under(root):
    """Every file and directory below root (none when root is missing): where
    tcflows keeps lock files, or a bpffs, where it must keep nothing."""
    return [os.path.join(path, n) for path, dirs, files in os.walk(root) for n in dirs + files]


def leftovers(ns, ifaces, empty_ok=False):
    """What tcflows left for these interfaces: filters, lock files.
    empty_ok: empty lock files do not count."""
    found = []
    for dev in ifaces:
        n = tcflows_filters(ns, dev)
        if any(n.values()):
            found.append(f"tcflows filters on {dev}: {n}")
        lock = lock_file(ns, dev)
        if os.path.exists(lock) and not (empty_ok and os.path.getsize(lock) == 0):
            found.append(f"lock file {lock}")
    return found
