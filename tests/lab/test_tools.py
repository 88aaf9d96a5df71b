#!/usr/bin/env python3
"""tools/run, tools/test and tools/bench as the README gives them, without
sudo in front: as root they go on without sudo (which may not be installed);
as another user they run themselves again under sudo when sudo is there, and
say in one line that they need root when it is not.

The other user is nobody; the sudo it finds is a stand-in on its PATH that
writes down how it was called (nobody may not become root here).
"""

import os

import tcflows_lab as L

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(SOURCE, "tools")
BASE_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
FAKE_SUDO = """#!/bin/sh
echo "sudo $*" > "{log}"
"""


def without_sudo():
    """PATH directories with no sudo in them."""
    dirs = [d for d in BASE_PATH.split(":") if not os.path.exists(os.path.join(d, "sudo"))]
    return ":".join(dirs)


def fake_sudo():
    """(PATH with a stand-in sudo first, the file it writes its call to)."""
    top = L.scratch_dir()
    os.chmod(top, 0o755)
    bin_dir = os.path.join(top, "bin")
    os.mkdir(bin_dir)
    log = os.path.join(top, "sudo.log")
    with open(os.path.join(bin_dir, "sudo"), "w") as f:
        f.write(FAKE_SUDO.format(log=log))
    os.chmod(os.path.join(bin_dir, "sudo"), 0o755)
    with open(log, "w"):
        pass
    os.chmod(log, 0o666)
    return f"{bin_dir}:{without_sudo()}", log


def run_as(user_argv, argv, path):
    env = {"PATH": path, "HOME": "/", "LANG": "C"}
    return L.run(user_argv + argv, check=False, env=env, cwd="/", timeout=600)


def as_root_check(path):
    """as_root in a shell that sources tools/lib/setup.sh: prints the uid it goes on with."""
    script = f"source {TOOLS}/lib/setup.sh && as_root 'the check' && echo \"uid $(id -u)\""
    return ["bash", "-c", script, os.path.join(TOOLS, "check")]


def test_root_without_sudo(binary):
    """As root with no sudo on PATH: as_root goes on at once, and `tools/run
    --version` (the README's command, no sudo) builds and runs tcflows."""
    path = without_sudo()
    p = run_as([], as_root_check(path), path)
    print(f"  as_root as root, no sudo: exit {p.returncode}: {p.stdout.strip()}")
    L.check(p.returncode == 0 and p.stdout.strip() == "uid 0", f"as_root: {p.stderr.strip()}")
    if os.path.dirname(os.path.dirname(binary)) != os.path.join(SOURCE, "build"):
        print("  tools/run --version: not run (the tests were built outside build/)")
        return
    p = run_as([], [os.path.join(TOOLS, "run"), "--version"], path)
    print(f"  tools/run --version as root, no sudo: exit {p.returncode}: {p.stdout.strip()}")
    L.check(p.returncode == 0 and p.stdout.strip(), f"tools/run --version: {L.tail(p.stderr)}")


def test_user_with_sudo(binary):
    """As nobody with sudo on PATH: `tools/run`, `tools/run record -i lo`,
    `tools/run detach`, `tools/test` and `tools/bench --quick` run themselves
    again under sudo, with their arguments."""
    path, log = fake_sudo()
    for tool, args in (("run", []), ("run", ["record", "-i", "lo"]), ("run", ["detach"]),
                       ("test", []), ("bench", ["--quick"])):
        script = os.path.join(TOOLS, tool)
        p = run_as(L.NOBODY, [script, *args], path)
        with open(log) as f:
            called = f.read().strip()
        want = " ".join(["sudo", "--", script, *args])
        print(f"  nobody: tools/{tool} {' '.join(args)}: exit {p.returncode}, {called!r}")
        L.check(p.returncode == 0 and called == want,
                f"tools/{tool}: expected {want!r}, got {called!r}: {L.tail(p.stderr)}")


def test_user_without_sudo(binary):
    """As nobody with no sudo: one line that says root is needed, exit 1."""
    path = without_sudo()
    for argv in (as_root_check(path), [os.path.join(TOOLS, "run")],
                 [os.path.join(TOOLS, "test")]):
        p = run_as(L.NOBODY, argv, path)
        lines = p.stderr.strip().splitlines()
        print(f"  nobody, no sudo: {os.path.basename(argv[-1])}: exit {p.returncode}: {lines}")
        L.check(p.returncode == 1 and len(lines) == 1 and "needs root" in lines[0]
                and not p.stdout.strip(), "expected one line '... needs root ...' and exit 1")


if __name__ == "__main__":
    L.main([test_root_without_sudo, test_user_with_sudo, test_user_without_sudo])
