#!/usr/bin/env python3
"""Lab (nothing lost): database trouble while recording.

The database is made read-only, locked by another writer, deleted, or its
disk fills up, while traffic runs; then the trouble ends. Meanwhile the
failed writes are counted and shown (store_write_errors, store_queued in the
live snapshot, a warning), recording goes on, and afterwards the database
holds every connection with the counts of a capture of the same interface,
what was committed before is still there, and nothing was dropped.
"""

import os
import sqlite3
import time

import tcflows_lab as L

TROUBLE_S = 3
# TCP connections end soon after their close, so that final records are
# among those committed before the trouble. (Not UDP's idle timeout: the
# capture does not split a reused UDP 5-tuple at idle times.)
AGENT_ARGS = ["--linger", "200ms"]


class Trouble:
    """What a scenario does to the database the agent writes at `db`."""

    lasting = True  # writes fail until end(), not only once
    keeps_history = True  # what was committed before stays in the file
    mount_ns = None  # the agent runs in this mount namespace

    def begin(self, db):
        raise NotImplementedError

    def end(self, db):
        pass


class Immutable(Trouble):
    """chattr +i on the database and its WAL. (Not on the -shm file: SQLite
    maps it, and a write to an immutable mapped page is a SIGBUS.)"""

    files = ("", "-wal")

    def begin(self, db):
        for suffix in self.files:
            L.run(["chattr", "+i", db + suffix])
        L.on_cleanup(lambda: self.end(db))

    def end(self, db):
        for suffix in self.files:
            L.run(["chattr", "-i", db + suffix], check=False)


class Locked(Trouble):
    """Another process (the sqlite3 shell) holds a write transaction."""

    def begin(self, db):
        self.lock = L.DbWriteLock(db)

    def end(self, db):
        self.lock.release()


class Deleted(Trouble):
    """The database file is deleted: a new one is made. The final records
    the old file held went with it: read here under a write lock, so that
    nothing commits between the reading and the deletion. (While this
    connection to the deleted file stays open, SQLite cannot write the new
    file, which shares its -wal and -shm names: the agent's writes fail
    until it is closed, right after.)"""

    lasting = False
    keeps_history = False

    def begin(self, db):
        con = sqlite3.connect(db, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.row_factory = sqlite3.Row
            self.gone = [dict(r) for r in con.execute(
                "SELECT * FROM connections WHERE close_reason IS NOT NULL")]
            os.unlink(db)
            con.execute("ROLLBACK")
        finally:
            con.close()

    def end(self, db):
        mode = os.stat(db).st_mode & 0o777
        L.check(mode == 0o640, f"the new database has mode {mode:o}, not 640")


class DiskFull(Trouble):
    """The database's file system (a private tmpfs) is full, then freed."""

    def __init__(self, tmpfs):
        self.tmpfs = tmpfs
        self.mount_ns = tmpfs.ns

    def begin(self, _):
        print(f"  filled the tmpfs with {self.tmpfs.fill()} bytes")

    def end(self, _):
        self.tmpfs.free()


def run_with_trouble(binary, trouble, path):
    """Traffic, an agent writing db, trouble for TROUBLE_S seconds, recovery,
    a clean stop; then the checks."""
    with L.Recorded(binary, path, args=AGENT_ARGS, mount_ns=trouble.mount_ns) as r:
        lab, agent, db = r.lab, r.agent, r.db
        steady = L.SteadyTcp(lab, "a", "b", lab.addr4["b"], 5401)
        short = L.ShortConnections(lab, "b", "a", lab.addr6["a"], 5410)
        time.sleep(1.5)
        committed = db.uids()
        trouble.begin(path)
        failing = (lambda c: c["store_write_errors"] >= 2 and c["store_queued"] > 0) \
            if trouble.lasting else (lambda c: c["store_write_errors"] > 0)
        during = L.store_counters(agent.wait_counters(failing, "failed writes counted"))
        time.sleep(TROUBLE_S)
        trouble.end(path)
        written = agent.snapshot()["counters"]["store_written"]
        after = L.store_counters(agent.wait_counters(
            lambda c: c["store_queued"] == 0 and c["store_written"] > written,
            "writes again, queue empty"))
        made = short.stop()
        steady.close()
        final = r.finish()["counters"]
    print(f"  during the trouble: {during}\n  after it: {after}\n  short connections: {made}")
    L.check(agent.said("cannot write the database"), "no warning about the failed writes")
    L.check(final["store_dropped"] == 0 and final["store_queued"] == 0,
            f"at the stop: {L.store_counters(final)}")
    stored = db.counters()
    L.check(stored["store_write_errors"][0] > 0,
            f"the counters table does not show the failed writes: {stored['store_write_errors']}")
    rows = db.rows()
    conns = L.capture_connections(r.frames)
    if trouble.keeps_history:
        lost = committed - {r["uid"] for r in rows}
        L.check(not lost, f"{len(lost)} of {len(committed)} connections committed before the "
                f"trouble are gone, e.g. {sorted(lost)[:3]}")
        print(f"  all {len(committed)} connections committed before the trouble are still there")
        db.check_traffic_sums()
    else:
        twice = {r["uid"] for r in trouble.gone} & {r["uid"] for r in rows}
        L.check(not twice, f"{len(twice)} connections final in the deleted file are in the new "
                f"one too, e.g. {sorted(twice)[:3]}")
        print(f"  {len(trouble.gone)} final records went with the deleted file; with the new "
              f"file's {len(rows)}:")
        rows = rows + trouble.gone
    L.compare_records(conns, rows, "after the trouble")


def test_read_only(binary):
    """The database and its WAL immutable (chattr +i), then writable again."""
    run_with_trouble(binary, Immutable(), os.path.join(L.scratch_dir(), "ro.db"))


def test_locked(binary):
    """Another process holds a write transaction (BEGIN IMMEDIATE) for 3 s."""
    run_with_trouble(binary, Locked(), os.path.join(L.scratch_dir(), "locked.db"))


def test_deleted(binary):
    """The database file deleted under the agent: a new one, records go on."""
    run_with_trouble(binary, Deleted(), os.path.join(L.scratch_dir(), "deleted.db"))


def test_disk_full(binary):
    """The database's file system full (a private 16 MiB tmpfs), then freed."""
    mount_point = L.scratch_dir()
    tmpfs = L.PrivateTmpfs(mount_point, "16m")
    run_with_trouble(binary, DiskFull(tmpfs), os.path.join(mount_point, "full.db"))


if __name__ == "__main__":
    L.main([test_read_only, test_locked, test_deleted, test_disk_full])
