"""`tcflows record` as an agent that writes a database, and the checks of
what it wrote against a capture of the same interface (issues 4 and 5).

The agent runs in a lab namespace through `nsenter --net` (in the test's
mount namespace), or with exec="ip-netns-exec" through `ip netns exec` (a
mount namespace of its own with /sys remounted). Namespaces and interfaces
start with `tr`.

The reference is the capture (tshark's tcp.stream / udp.stream split reused
5-tuples); a connection's record is compared per direction, matched by its
two endpoints, so the originator's choice does not matter here (issue 3's
tests check it).
"""

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sqlite3
import sys
import time
from collections import namedtuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

PREFIX = "tr"
RUN_DIR = "/run/tcflows"
CAP_NET_ADMIN = 1 << 12
SHOW = 15  # problem lines printed at most


def new_lab(**kwargs):
    return L.Lab(prefix=PREFIX, **kwargs)


# ---------------------------------------------------------------- the agent


class Agent(L.Process):
    """`tcflows record --format json` on `ifaces` of namespace `ns`.

    db: the --db path (None: --no-db); mount_ns: a mount namespace to run in
    (a /proc/PID/ns/mnt path); exec: "nsenter", or "ip-netns-exec" to start
    it as `ip netns exec` does; wait: return once every interface is attached.
    """

    def __init__(self, binary, ns, ifaces, db=None, args=(), interval="500ms", mount_ns=None,
                 wait=True, exec="nsenter"):
        # Registered before the process's own cleanup, so it runs after that
        # kill: the locks a test left (a killed agent's) go too.
        locks = [lock_file(ns, iface) for iface in ifaces]
        L.on_cleanup(lambda: remove_leftovers(locks))
        argv = ["nsenter", f"--net=/run/netns/{ns}"]
        argv += [f"--mount={mount_ns}"] if mount_ns else []
        argv = ["ip", "netns", "exec", ns] if exec == "ip-netns-exec" else argv
        argv += [binary, "record", "--format", "json", "--interval", interval]
        for iface in ifaces:
            argv += ["-i", iface]
        argv += ["--db", db] if db else ["--no-db"]
        super().__init__(argv + list(args), keep_out=4, keep_err=60)
        self.ifaces = list(ifaces)
        if wait:
            self.wait_attached()

    @property
    def pid(self):
        return self.proc.pid

    def wait_attached(self, timeout=15):
        deadline = time.monotonic() + timeout
        while not all(self.said(f"recording on {i}") for i in self.ifaces):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                rc = self.stop()
                raise L.Failure(f"tcflows did not attach (exit {rc}): {L.tail(self.err.text())}")
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
        raise L.Failure(f"{what}: not seen within {timeout} s; counters "
                        f"{store_counters(snap['counters']) if snap else 'none'}")

    def finish(self, sig=signal.SIGTERM):
        """Stops the agent; checks exit 0; returns the final snapshot."""
        rc = self.stop(sig)
        if rc != 0:
            raise L.Failure(f"tcflows exited {rc} on {signal.Signals(sig).name}: "
                            f"{L.tail(self.err.text())}")
        if not self.out.lines:
            raise L.Failure("tcflows printed no snapshot")
        return json.loads(self.out.lines[-1])

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.out.join(5)
        self.err.join(5)


def store_counters(counters):
    return {k: v for k, v in counters.items() if k.startswith("store_")}


def tcflows_cmd(binary, ns, *args, timeout=30):
    """A one-shot tcflows command (detach, a second record) in namespace ns."""
    try:
        return L.run(["nsenter", f"--net=/run/netns/{ns}", binary, *args], check=False,
                     timeout=timeout)
    except L.LabError as e:
        raise L.Failure(f"`tcflows {' '.join(map(str, args))}` kept running: {e}")


# ---------------------------------------------------------------- what tcflows leaves


def lock_file(ns, iface):
    """The lock file of an interface of namespace ns (named by its inode)."""
    return os.path.join(RUN_DIR, f"net{os.stat(f'/run/netns/{ns}').st_ino}.{iface}.lock")


def remove_leftovers(locks):
    """Our lock files (of test-only interfaces)."""
    for lock in locks:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)


def tc_state(ns, dev):
    """(qdisc lines, {hook: filter lines}) of dev, as `tc` shows them."""
    qdiscs = L.run(["tc", "qdisc", "show", "dev", dev], ns=ns).stdout.strip().splitlines()
    filters = {}
    for hook in ("ingress", "egress"):
        out = L.run(["tc", "filter", "show", "dev", dev, hook], ns=ns).stdout
        filters[hook] = [line for line in out.splitlines() if line.strip()]
    return qdiscs, filters


def tcflows_filters(ns, dev):
    """{hook: number of tcflows filters} on dev."""
    _, filters = tc_state(ns, dev)
    return {hook: sum("tcflows_" in line for line in lines) for hook, lines in filters.items()}


def tcflows_programs(ns, dev):
    """{hook: program id of the tcflows filter} on dev (hooks without one left out)."""
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
    return L.run(["bpftool", "prog", "show", "id", prog_id], check=False).returncode == 0


def program_gone(prog_id, timeout=5):
    """Whether BPF program prog_id is freed within timeout (the kernel frees a
    program after an RCU grace period once its last filter is gone)."""
    deadline = time.monotonic() + timeout
    while program_exists(prog_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def bpffs_entries(root):
    """Every path in a bpffs mounted at root (what tcflows must never pin)."""
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


# ---------------------------------------------------------------- the database


TRAFFIC_MISMATCHES = """
SELECT c.uid, c.orig_pkts, c.orig_bytes, c.resp_pkts, c.resp_bytes,
       coalesce(sum(t.orig_pkts), 0) AS t_orig_pkts, coalesce(sum(t.orig_bytes), 0) AS t_orig_bytes,
       coalesce(sum(t.resp_pkts), 0) AS t_resp_pkts, coalesce(sum(t.resp_bytes), 0) AS t_resp_bytes,
       count(t.to_ns) AS intervals
FROM connections c LEFT JOIN traffic t ON t.conn_id = c.id
GROUP BY c.id
HAVING c.orig_pkts != t_orig_pkts OR c.orig_bytes != t_orig_bytes
    OR c.resp_pkts != t_resp_pkts OR c.resp_bytes != t_resp_bytes"""


class Db:
    """A tcflows database, read-only. With mount_ns, read from inside that
    mount namespace by the sqlite3 shell (SQLite resolves /proc/PID/root
    links, so the file cannot be opened from here)."""

    def __init__(self, path, mount_ns=None):
        self.path, self.mount_ns = path, mount_ns

    def query(self, sql):
        """Rows as dicts."""
        if self.mount_ns:
            out = L.run(["nsenter", f"--mount={self.mount_ns}", "sqlite3", "-readonly", "-json",
                         self.path, sql]).stdout
            return json.loads(out) if out.strip() else []
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql)]
        finally:
            db.close()

    def rows(self):
        """Every row of `connections`."""
        return self.query("SELECT * FROM connections ORDER BY start_ns")

    def uids(self):
        return {r["uid"] for r in self.query("SELECT uid FROM connections")}

    def counters(self):
        """name -> (last value, largest value) in the `counters` table."""
        rows = self.query("SELECT name, value, (SELECT max(value) FROM counters c2 "
                          "WHERE c2.name = c.name) AS biggest FROM counters c "
                          "WHERE ts_ns = (SELECT max(ts_ns) FROM counters)")
        return {r["name"]: (r["value"], r["biggest"]) for r in rows}

    def check_traffic_sums(self):
        """Per connection, its `traffic` rows add up to its totals."""
        bad = self.query(TRAFFIC_MISMATCHES)
        n = self.query("SELECT count(*) AS n FROM connections")[0]["n"]
        intervals = self.query("SELECT count(*) AS n FROM traffic")[0]["n"]
        for r in bad[:SHOW]:
            print(f"    DIFF   {r['uid']}: totals {r['orig_pkts']}/{r['orig_bytes']} "
                  f"{r['resp_pkts']}/{r['resp_bytes']}, its {r['intervals']} traffic rows add up "
                  f"to {r['t_orig_pkts']}/{r['t_orig_bytes']} {r['t_resp_pkts']}/{r['t_resp_bytes']}")
        L.check(not bad, f"{len(bad)} of {n} connections: traffic rows do not add up to the totals")
        print(f"  traffic: {intervals} interval rows add up to the totals of all {n} connections")


# ---------------------------------------------------------------- records vs the capture

# A connection as both sides see it: match groups connections that can only
# be told apart by time (a reused 5-tuple); ends maps each endpoint to what
# it sent.
View = namedtuple("View", "match start_ns ends what")
ICMP_ECHO_REQUEST = {"ICMP": 8, "ICMPv6": 128}


def capture_view(conn):
    k = conn.key
    if k.proto in ICMP_ECHO_REQUEST:
        # Records show ICMP as the originator's (type, code), no identifier.
        kind = (ICMP_ECHO_REQUEST[k.proto], 0) if k.sport == k.dport else \
            (k.sport >> 8, k.sport & 0xFF)
        match = (k.proto, frozenset({k.src, k.dst}), kind)
        ends = {k.src: conn.orig, k.dst: conn.resp}
    else:
        match = (k.proto, frozenset({(k.src, k.sport), (k.dst, k.dport)}))
        ends = {(k.src, k.sport): conn.orig, (k.dst, k.dport): conn.resp}
    return View(match, conn.first_ns, ends, L._fmt_key(k))


def record_view(r):
    src, dst = L.norm_addr(r["src_addr"]), L.norm_addr(r["dst_addr"])
    orig = L.Counts(r["orig_pkts"], r["orig_bytes"])
    resp = L.Counts(r["resp_pkts"], r["resp_bytes"])
    if r["proto"] in ICMP_ECHO_REQUEST:
        match = (r["proto"], frozenset({src, dst}), (r["src_port"], r["dst_port"]))
        ends = {src: orig, dst: resp}
    else:
        a, b = (src, r["src_port"]), (dst, r["dst_port"])
        match = (r["proto"], frozenset({a, b}))
        ends = {a: orig, b: resp}
    what = f"{r['proto']} {src}:{r['src_port']} -> {dst}:{r['dst_port']} uid {r['uid']}"
    return View(match, r["start_ns"], ends, what)


def _ends_text(view):
    return " ".join(f"{c.packets}/{c.bytes}" for _, c in sorted(view.ends.items(), key=str))


def _group(views):
    groups = {}
    for v in sorted(views, key=lambda v: v.start_ns):
        groups.setdefault(v.match, []).append(v)
    return groups


def compare_records(conns, rows, label, name="db"):
    """Every capture connection has exactly one record with its counts each
    way, and no record lacks a capture connection. conns: lab.Connection
    list; rows: records as dicts (database rows or JSONL objects)."""
    want = _group(capture_view(c) for c in conns)
    got = _group(record_view(r) for r in rows)
    problems, equal = [], 0
    for match in sorted(set(want) | set(got), key=str):
        w, g = want.get(match, []), got.get(match, [])
        if len(w) != len(g):
            problems.append(f"{(w or g)[0].what}: {len(w)} connection(s) in the capture, "
                            f"{len(g)} record(s) in the {name} "
                            f"[{'; '.join(_ends_text(v) for v in w)}] vs "
                            f"[{'; '.join(_ends_text(v) for v in g)}]")
            continue
        for wv, gv in zip(w, g):
            if wv.ends != gv.ends:
                problems.append(f"{gv.what}: capture {_ends_text(wv)}, {name} {_ends_text(gv)}")
            else:
                equal += 1
    print(f"  {label}: {len(conns)} connections in the capture, {len(rows)} records in the "
          f"{name}, {equal} equal each way")
    for p in problems[:SHOW]:
        print(f"    DIFF   {p}")
    if len(problems) > SHOW:
        print(f"    ... and {len(problems) - SHOW} more")
    L.check(not problems, f"{label}: {len(problems)} connections differ from the capture")


def totals(rows):
    """(packets, bytes) over records."""
    return (sum(r["orig_pkts"] + r["resp_pkts"] for r in rows),
            sum(r["orig_bytes"] + r["resp_bytes"] for r in rows))


def capture_totals(frames):
    return len(frames), sum(f.bytes for f in frames)


def latest_jsonl(path):
    """The last line of each uid in a --jsonl file."""
    last = {}
    for obj in L.read_jsonl(path):
        last[obj["uid"]] = obj
    return list(last.values())


# ---------------------------------------------------------------- a capture


class Capture:
    """tcpdump on dev of namespace ns, into a scratch file; finish() returns
    the frames and their connections."""

    def __init__(self, ns, dev):
        self.path = os.path.join(L.scratch_dir(), f"{dev}.pcap")
        self.dump = L.Tcpdump(ns, dev, self.path)

    def finish(self):
        captured = self.dump.finish()
        frames = L.read_capture(self.path)
        if len(frames) != captured:
            raise L.LabError(f"tshark read {len(frames)} frames, tcpdump wrote {captured}")
        return frames


def connections(frames):
    return L.capture_connections(frames)


class Recorded:
    """A lab whose interface a is captured and recorded by an agent writing
    a database, both from before link-up. A context manager; finish() lets
    late frames settle, stops the agent (exit 0), then the capture, and
    returns the final snapshot; then `frames` holds the capture. exec: how
    agents start (see Agent)."""

    def __init__(self, binary, db_path=None, args=(), interval="500ms", mount_ns=None,
                 exec="nsenter"):
        self.binary, self.args, self.interval, self.mount_ns = binary, args, interval, mount_ns
        self.exec = exec
        self.db = Db(db_path or os.path.join(L.scratch_dir(), "records.db"), mount_ns)
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
                     interval=self.interval, mount_ns=self.mount_ns, exec=self.exec)

    def finish(self, sig=signal.SIGTERM, settle_s=1.0):
        L.settle(settle_s)
        snapshot = self.agent.finish(sig)
        self.frames = self.capture.finish()
        return snapshot

    def compare(self, label, rows=None):
        """The database's records (or `rows`) against the capture."""
        compare_records(connections(self.frames), self.db.rows() if rows is None else rows,
                        label)


# ---------------------------------------------------------------- database trouble


class DbWriteLock:
    """The sqlite3 shell holding a write transaction (BEGIN IMMEDIATE) on a
    database, until release()."""

    def __init__(self, path):
        self.path = path
        self.proc = subprocess.Popen(["sqlite3", "-bail", path], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        L.on_cleanup(self._kill)
        # A busy timeout: the probe below may hold the lock for an instant.
        self.proc.stdin.write(".timeout 10000\nBEGIN IMMEDIATE;\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + 10
        while not self._held():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise L.LabError(f"sqlite3 could not lock {path}: {self.proc.stderr.read()}")
            time.sleep(0.05)

    def _held(self):
        db = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as e:
            return "locked" in str(e)
        finally:
            db.close()

    def release(self):
        self.proc.stdin.write("ROLLBACK;\n.quit\n")
        self.proc.stdin.flush()
        if self.proc.wait(timeout=10) != 0:
            raise L.LabError(f"sqlite3 failed: {self.proc.stderr.read()}")

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class PrivateMount:
    """A file system of type fstype mounted on directory `path` in a mount
    namespace of its own, held by a sleeping process: agents run in it
    (mount_ns=self.ns), the test reaches its files through /proc/PID/root
    (view()), and it vanishes with the holder."""

    def __init__(self, path, fstype, options):
        self.path = path
        script = f"mount -t {fstype} -o {options} {fstype} {path} && echo mounted && " \
                 "exec sleep 3600"
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "sh", "-c", script], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        L.on_cleanup(self._kill)
        if self.proc.stdout.readline().strip() != "mounted":
            raise L.LabError(f"cannot mount a private {fstype}: {self.proc.stderr.read()}")
        self.ns = f"/proc/{self.proc.pid}/ns/mnt"

    def view(self, path):
        """The path as the test sees it."""
        return f"/proc/{self.proc.pid}/root{path}"

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class PrivateTmpfs(PrivateMount):
    """A tmpfs of `size` on `path` in a mount namespace of its own."""

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


# ---------------------------------------------------------------- connload


def connload_path(binary):
    """tools/connload: connload=PATH, or next to the tcflows binary's build tree."""
    path = L.OPTIONS.get("connload") or os.path.join(
        os.path.dirname(os.path.dirname(binary)), "tools", "connload")
    if not os.path.exists(path):
        raise L.LabError(f"connload is missing at {path}: pass connload=PATH")
    return path


def connload_burst(binary, lab, count, concurrency=32, port=5501, request=200, reply=1000,
                   client="a", server="b"):
    """`count` short TCP connections from client to server as fast as they
    go; returns connload's client totals. Every connection must complete."""
    tool = connload_path(binary)
    addr = lab.addr4[server]
    srv = L.Process([tool, "server", "--listen", addr, "--port", port, "--count", count,
                     "--request", request, "--reply", reply], ns=lab.ns[server])
    L.wait_listening(lab.ns[server], port)
    p = L.run([tool, "client", "--connect", addr, "--port", port, "--count", count,
               "--concurrency", concurrency, "--request", request, "--reply", reply],
              ns=lab.ns[client], check=False, timeout=120)
    if srv.stop(timeout=20) != 0:
        raise L.LabError(f"connload server failed: {L.tail(srv.err.text())}")
    if p.returncode != 0:
        raise L.LabError(f"connload client exited {p.returncode}: {L.tail(p.stdout + p.stderr)}")
    return json.loads(p.stdout)
