#!/usr/bin/env python3
"""Lab (nothing lost): a connection table too small for the traffic.

The program rings its doorbell when free slots run low and the agent sweeps
at once; what finds no slot is counted (flow_full, untracked_packets/bytes)
in the final JSON snapshot and in the database's `counters` table, and the
recorded traffic plus the untracked traffic equals the capture's.
"""


import tcflows_lab as L


def burst_run(binary, args, count, concurrency):
    """A connload burst a -> b recorded with args; returns (final counters,
    the Recorded run)."""
    with L.Recorded(binary, args=args) as r:
        L.ping(r.lab, "a", r.lab.addr4["b"], count=1)
        totals = L.connload_burst(binary, r.lab, count, concurrency)
        final = r.finish()["counters"]
    print(f"  connload: {totals['completed']} connections in {totals['elapsed_s']:.2f} s")
    return final, r


def expect_counted(name, final, db):
    """The counter is above 0 in the final snapshot and in the database."""
    stored = db.counters().get(name)
    print(f"  {name}: final snapshot {final.get(name)}, database (last, largest) {stored}")
    L.check(final.get(name, 0) > 0, f"{name} is {final.get(name)} in the final snapshot")
    L.check(stored and stored[0] > 0, f"{name} is {stored} in the counters table")


def test_doorbell(binary):
    """--max-flows 512 (768 slots) and no linger, 3000 connections: the
    program rings the doorbell, the agent sweeps and gives slots back; every
    connection is recorded exactly or its packets counted untracked."""
    final, r = burst_run(binary, ["--max-flows", "512", "--linger", "1ms"], 3000, 64)
    print(f"  doorbells {final.get('doorbells')}, heard {final.get('doorbells_heard')}, "
          f"flow_full {final.get('flow_full')}")
    L.check(final.get("doorbells", 0) > 0, "the program never rang the doorbell")
    L.check(final.get("doorbells_heard", 0) > 0, "the agent never heard the doorbell")
    conserved(final, r)


def conserved(final, r):
    """Recorded plus untracked traffic equals the capture's, and the database
    has the untracked counts the final snapshot has."""
    db = r.db
    recorded = L.totals(db.rows())
    untracked = (final["untracked_packets"], final["untracked_bytes"])
    stored = db.counters()
    untracked_db = (stored["untracked_packets"][0], stored["untracked_bytes"][0])
    want = L.capture_totals(r.frames)
    got = (recorded[0] + untracked[0], recorded[1] + untracked[1])
    print(f"  recorded {recorded[0]} packets {recorded[1]} bytes + untracked {untracked[0]} / "
          f"{untracked[1]} = {got[0]} / {got[1]}; capture {want[0]} / {want[1]}")
    L.check(untracked_db == untracked, f"untracked in the database {untracked_db}, in the "
            f"final snapshot {untracked}")
    L.check(got == want, f"recorded + untracked {got} != capture {want}")
    db.check_traffic_sums()


def test_flow_map_full(binary):
    """--max-flows 64 (96 slots) and 1000 connections at once: most find no
    slot, counted; recorded plus untracked traffic equals the capture's."""
    final, r = burst_run(binary, ["--max-flows", "64"], 1000, 100)
    for name in ("flow_full", "untracked_packets", "untracked_bytes"):
        expect_counted(name, final, r.db)
    conserved(final, r)


if __name__ == "__main__":
    L.main([test_doorbell, test_flow_map_full])
