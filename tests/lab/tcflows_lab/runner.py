"""The runner of a lab test file: `test_x.py TCFLOWS [NAME=VALUE...] [TEST...]`."""

import os
import sys
import time
import traceback

from .proc import Failure, LabError, install_exit_hooks, run_cleanups

SKIP = 77
OPTIONS = {}  # NAME=VALUE arguments (foreign_bpf, connload, only ...)


def option_file(name, what):
    """The file a NAME=PATH option names; raises LabError when it is missing."""
    path = OPTIONS.get(name)
    if not path or not os.path.exists(path):
        raise LabError(f"{name}=PATH ({what}) is missing")
    return path


def require_root():
    if os.geteuid() != 0:
        print("skipped: lab tests need root (network namespaces, TC, BPF)")
        sys.exit(SKIP)


def main(tests):
    """Runs the test functions with the tcflows binary from argv[1].

    Further arguments: NAME=VALUE options for the tests (in OPTIONS), and test
    names to run only those. Exit 0 all passed, 1 any failed, 77 not root
    (never skipped as root). What a test leaves is cleaned up after it, and at
    exit or on a signal.
    """
    require_root()
    install_exit_hooks()
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} TCFLOWS_BINARY [NAME=VALUE...] [TEST...]", file=sys.stderr)
        sys.exit(2)
    binary = os.path.abspath(sys.argv[1])
    chosen = []
    for arg in sys.argv[2:]:
        if "=" in arg:
            name, value = arg.split("=", 1)
            OPTIONS[name] = value
        else:
            chosen.append(arg)
    chosen = chosen or [t.__name__ for t in tests]
    failed = []
    for test in tests:
        if test.__name__ not in chosen:
            continue
        summary = (test.__doc__ or "").strip().split("\n")[0]
        print(f"== {test.__name__}: {summary}", flush=True)
        start = time.monotonic()
        try:
            test(binary)
            print(f"PASS {test.__name__} ({time.monotonic() - start:.1f} s)", flush=True)
        except Failure as e:
            print(f"FAIL {test.__name__}: {e}", flush=True)
            failed.append(test.__name__)
        except Exception as e:
            print(f"ERROR {test.__name__}: {type(e).__name__}: {e}", flush=True)
            where = traceback.format_exc().strip().splitlines()[:-1]
            print("\n".join(where[-8:]), flush=True)
            failed.append(test.__name__)
        finally:
            run_cleanups()
    print(f"{len(chosen) - len(failed)} passed, {len(failed)} failed"
          + (f": {' '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)
