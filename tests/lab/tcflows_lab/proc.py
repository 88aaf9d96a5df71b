"""Commands and long-running processes, in a namespace or not, and what is
undone at the end.

Nothing here acts on import: cleanups are only collected (on_cleanup) until
someone runs them (run_cleanups), and install_exit_hooks(), which a test
runner calls, makes them run at exit and on SIGTERM, SIGINT and SIGHUP.
"""

import atexit
import contextlib
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque


class LabError(Exception):
    """The lab itself failed (setup, a tool, the environment): not a verdict."""


class Failure(Exception):
    """The check failed: tcflows disagrees with the reference."""


def check(condition, message):
    if not condition:
        raise Failure(message)


# ---------------------------------------------------------------- cleanup

_cleanups = []


def on_cleanup(fn):
    """Runs fn in run_cleanups() (last registered first)."""
    _cleanups.append(fn)
    return fn


def run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup goes on whatever failed
            print(f"lab: cleanup: {e}", file=sys.stderr)


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def install_exit_hooks():
    """The cleanups run at exit, also when SIGTERM, SIGINT or SIGHUP ends the process."""
    atexit.register(run_cleanups)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)


def scratch_dir():
    """A new temporary directory, removed in cleanup."""
    path = tempfile.mkdtemp(prefix="tl-lab-")
    on_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


# ---------------------------------------------------------------- commands


def tail(text, lines=8):
    """The last lines of a tool's output, for bounded error messages."""
    return "\n".join((text or "").strip().splitlines()[-lines:])


def ns_argv(ns, argv):
    return (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in argv]


def run(argv, ns=None, check=True, timeout=60, **kwargs):
    """Runs a command (inside namespace ns); raises LabError when it fails."""
    argv = ns_argv(ns, argv)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` did not finish within {timeout} s")
    if check and p.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` exited {p.returncode}: {tail(p.stderr or p.stdout)}")
    return p


def wait_for(ready, timeout, what, poll=0.05):
    """Polls ready() until it is true; raises LabError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def settle(seconds=1.0):
    """Lets late ACKs and queued frames reach every observer."""
    time.sleep(seconds)


# ---------------------------------------------------------------- processes


class _Reader(threading.Thread):
    """Reads a pipe line by line: keeps the last lines and signals each one."""

    def __init__(self, pipe, keep=40):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines = deque(maxlen=keep)
        self.count = 0
        self.events = queue.Queue(maxsize=keep)  # for wait_for; bounded, may drop

    def run(self):
        for line in self.pipe:
            self.lines.append(line.rstrip("\n"))
            self.count += 1
            self._signal(line)
        self._signal(None)

    def _signal(self, line):
        with contextlib.suppress(queue.Full):
            self.events.put_nowait(line)

    def wait_for(self, predicate, timeout):
        """The first unread line that satisfies predicate, or None on EOF/timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if predicate(line):
                return line

    def text(self):
        return "\n".join(self.lines)


class Process:
    """A long-running tool (in a namespace), killed in cleanup too; the last
    lines of its output are kept (out, err)."""

    def __init__(self, argv, ns=None, keep_out=40, keep_err=40):
        self.argv = ns_argv(ns, argv)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out = _Reader(self.proc.stdout, keep_out)
        self.err = _Reader(self.proc.stderr, keep_err)
        self.out.start()
        self.err.start()
        on_cleanup(self.kill)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the process, waits for it and its output; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise LabError(f"`{' '.join(self.argv)}` did not stop within {timeout} s")
        self.out.join(5)
        self.err.join(5)
        return rc

    def kill(self):
        kill_process(self.proc)


def kill_process(proc):
    """A subprocess.Popen: SIGKILL, and reaped, if it still runs."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def stop_process(proc, timeout):
    """A subprocess.Popen: SIGTERM, then SIGKILL after timeout seconds; returns
    the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
