"""tcflows-only figures that need features still being built (issues 3 and 4).

Each hook checks whether the feature exists in the built binary and says
"not available yet" until it does — it never invents a number. When a
feature lands, replace the hook's body with the measurement described in
its docstring.
"""

import subprocess


def _help(binary, *args):
    done = subprocess.run([binary, *args, "--help"], capture_output=True, text=True)
    return done.stdout + done.stderr


def connections_recorded(binary):
    """HOOK (issue 3): connections/s with 100 % recorded exactly.

    To measure: run the shorttcp scenario for 30 s with `tcflows record
    --jsonl FILE`; count final records of the server port against connload's
    `completed` (every connection exactly once) and compare per-direction
    packets/bytes against a capture of tb-r; report completed/s and the
    fraction exact. Aim: >= 10 k/s with 100 %.
    """
    if "--jsonl" not in _help(binary, "record"):
        return "not available yet: `tcflows record` has no --jsonl (issue 3)"
    return "not available yet: --jsonl exists; the measurement is still a hook in bench/hooks.py"


def ringbuf_events(binary):
    """HOOK (issue 3): ring-buffer events consumed per second, and the agent's CPU/RSS.

    To measure: during shorttcp, read the agent's consumed-events counter
    (from its JSON snapshot) at start and end; events/s = delta / seconds;
    ringbuf_full must stay 0.
    """
    if "--jsonl" not in _help(binary, "record"):
        return "not available yet: no event consumer in `tcflows record` (issue 3)"
    return "not available yet: needs a consumed-events counter in the JSON snapshot"


def sqlite_rows(binary):
    """HOOK (issue 4): SQLite rows/s while recording shorttcp to a database."""
    if "--db" not in _help(binary, "record"):
        return "not available yet: `tcflows record` has no --db (issue 4)"
    return "not available yet: --db exists; the measurement is still a hook in bench/hooks.py"


def report_latency(binary):
    """HOOK (issue 4): `tcflows report` latency on a 10 M-row database."""
    if "report" not in _help(binary):
        return "not available yet: no `tcflows report` (issue 4)"
    return "not available yet: `report` exists; the measurement is still a hook in bench/hooks.py"


def agent_rss_100k_flows(binary):
    """HOOK (issue 6): agent RSS at 100 k live flows (target <= 30 MB)."""
    return "not available yet: needs a 100 k-flow load (connload --bind over many addresses)"


ALL = [
    ("connections/s recorded exactly", connections_recorded),
    ("ring-buffer events/s", ringbuf_events),
    ("SQLite rows/s", sqlite_rows),
    ("report latency, 10 M rows", report_latency),
    ("agent RSS at 100 k flows", agent_rss_100k_flows),
]


def run_all(binary):
    return [(name, hook(binary)) for name, hook in ALL]
