"""A tcflows database, read as the tests check it, and held locked by
another writer."""

import json
import sqlite3
import subprocess
import time

from .compare import SHOW
from .proc import LabError, check, kill_process, on_cleanup, run

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
            out = run(["nsenter", f"--mount={self.mount_ns}", "sqlite3", "-readonly", "-json",
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
                  f"to {r['t_orig_pkts']}/{r['t_orig_bytes']} "
                  f"{r['t_resp_pkts']}/{r['t_resp_bytes']}")
        if bad:
            rows = self.query("SELECT t.* FROM traffic t JOIN connections c ON c.id = t.conn_id "
                              f"WHERE c.uid = '{bad[0]['uid']}' ORDER BY to_ns")
            conn = self.query(f"SELECT * FROM connections WHERE uid = '{bad[0]['uid']}'")
            print(f"    {bad[0]['uid']}: {conn}\n    its traffic rows: {rows}")
        check(not bad, f"{len(bad)} of {n} connections: traffic rows do not add up to the totals")
        print(f"  traffic: {intervals} interval rows add up to the totals of all {n} connections")


def totals(rows):
    """(packets, bytes) over records."""
    return (sum(r["orig_pkts"] + r["resp_pkts"] for r in rows),
            sum(r["orig_bytes"] + r["resp_bytes"] for r in rows))


class DbWriteLock:
    """The sqlite3 shell holding a write transaction (BEGIN IMMEDIATE) on a
    database, until release()."""

    def __init__(self, path):
        self.path = path
        self.proc = subprocess.Popen(["sqlite3", "-bail", path], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        on_cleanup(lambda: kill_process(self.proc))
        # A busy timeout: the probe below may hold the lock for an instant.
        self.proc.stdin.write(".timeout 10000\nBEGIN IMMEDIATE;\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + 10
        while not self._held():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"sqlite3 could not lock {path}: {self.proc.stderr.read()}")
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
            raise LabError(f"sqlite3 failed: {self.proc.stderr.read()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
