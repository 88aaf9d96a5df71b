#!/usr/bin/env python3
"""The Debian package: `tools/package` builds it and lintian passes it, then
`apt-get install ./tcflows_*.deb` installs it for real into a scratch root,
a throwaway overlay of this machine's own / in a mount namespace of the
test's own (nothing reaches the host). Checked there:

- the maintainer scripts' effects: the tcflows user (sysusers.d),
  /var/lib/tcflows and /run/tcflows (tmpfiles.d), the unit installed but not
  enabled and no start asked of systemd;
- `tcflows --version` from /usr/bin, `systemd-analyze verify` and `security`
  on the installed unit, every installed man page rendered by `man
  --warnings`, the completion loaded by bash-completion;
- the unit's own command line recording in a lab namespace as the tcflows
  user into /var/lib/tcflows, next to a foreign clsact qdisc and filters;
- an upgrade asks only try-restart; removal asks to stop the service (the
  stop is SIGTERM, as systemd sends it), after which tcflows' filters are
  gone, the foreign qdisc and filters are as they were, and no lock file
  and nothing in bpffs is left; purge keeps the database and the user.

A systemd cannot run in the scratch root: /run/systemd/system is made there
and a container's policy-rc.d removed (so the scripts talk to systemd as on a
booted machine), and its `systemctl`
logs what is asked, answers queries with the real systemctl (offline), and
for `stop tcflows.service` sends SIGTERM to the agent and waits for it.

Usage (root): test_deb.py TCFLOWS_BINARY
"""

import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lab"))
import tcflows_lab as L  # noqa: E402

CLONE_NEWNS = 0x00020000
PINGS = 3

# The scratch root's systemctl: logs each call; the agent whose pid the test
# left in /run/tcflows-test.pid is tcflows.service.
SYSTEMCTL = """#!/bin/sh
echo "$*" >> /run/systemctl.log
case " $* " in
  *" stop "*tcflows.service*)
    pid=$(cat /run/tcflows-test.pid 2>/dev/null) || exit 0
    kill -TERM "$pid" 2>/dev/null || exit 0
    # Until it exits (a zombie until the test reaps it), as TimeoutStopSec=30.
    for i in $(seq 300); do
      grep -qs '^[0-9]* (.*) [^Z] ' "/proc/$pid/stat" || exit 0
      sleep 0.1
    done
    kill -KILL "$pid"; exit 1 ;;
  *" is-enabled "*) exec /usr/bin/systemctl.real --root=/ "$@" ;;
  *" is-active "*tcflows.service*)
    pid=$(cat /run/tcflows-test.pid 2>/dev/null) && grep -qs '^[0-9]* (.*) [^Z] ' "/proc/$pid/stat" &&
      { echo active; exit 0; }
    echo inactive; exit 3 ;;
esac
exit 0
"""


def meson_version():
    with open(os.path.join(SOURCE, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def build_package():
    """tools/package: the .deb, after lintian passed it. (TCFLOWS_DEB=PATH:
    that .deb instead, to rerun the install checks while developing.)"""
    if os.environ.get("TCFLOWS_DEB"):
        print(f"  TCFLOWS_DEB: {os.environ['TCFLOWS_DEB']}, not built here")
        return os.environ["TCFLOWS_DEB"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESON", "MALLOC_"))}
    start = time.monotonic()
    p = L.run([os.path.join(SOURCE, "tools", "package")], timeout=1500, env=env, check=False)
    print(f"  tools/package: exit {p.returncode} in {time.monotonic() - start:.0f} s")
    print("  lintian: " + (L.tail(p.stderr, 6).replace("\n", "\n    ") or "nothing"))
    L.check(p.returncode == 0, f"tools/package failed: {L.tail(p.stderr, 20)}")
    debs = [line for line in p.stdout.splitlines() if line.endswith(".deb")]
    L.check(len(debs) == 1, f"tools/package printed {debs}, expected one .deb")
    return debs[0]


class ScratchRoot:
    """An overlay of / at self.root (upper layer on a tmpfs) with its own
    /proc, /dev, /sys (a bpffs of its own), /run and /tmp, in this process's
    own mount namespace."""

    def __init__(self):
        if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNS) != 0:
            raise L.LabError(f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
        L.run(["mount", "--make-rprivate", "/"])
        # Never removed file by file: /dev and /sys inside are the host's.
        top = tempfile.mkdtemp(prefix="tp-root-")
        L.on_cleanup(lambda: (L.run(["umount", "-R", "-l", top], check=False), os.rmdir(top)))
        L.run(["mount", "-t", "tmpfs", "tmpfs", top])
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(top, d))
        self.root = os.path.join(top, "root")
        L.run(["mount", "-t", "overlay", "overlay", "-o",
               f"lowerdir=/,upperdir={top}/upper,workdir={top}/work", self.root])
        L.run(["mount", "-t", "proc", "proc", self.path("/proc")])
        L.run(["mount", "--rbind", "/dev", self.path("/dev")])
        L.run(["mount", "--bind", "/sys", self.path("/sys")])
        # A bpffs of its own, mode 0700 as systemd mounts it at boot, and
        # what a new one holds (the kernel's iterators maps.debug, progs.debug).
        L.run(["mount", "-t", "bpf", "-o", "mode=0700", "bpf", self.path(L.BPFFS)])
        self.bpffs_fresh = set(L.paths_under(self.path(L.BPFFS)))
        for d in ("/run", "/tmp"):
            L.run(["mount", "-t", "tmpfs", "tmpfs", self.path(d)])
        os.makedirs(self.path("/run/systemd/system"))
        # A container's policy-rc.d forbids every service action; a booted
        # Debian has none.
        if os.path.lexists(self.path("/usr/sbin/policy-rc.d")):
            os.remove(self.path("/usr/sbin/policy-rc.d"))
        os.rename(self.path("/usr/bin/systemctl"), self.path("/usr/bin/systemctl.real"))
        with open(self.path("/usr/bin/systemctl"), "w") as f:
            f.write(SYSTEMCTL)
        os.chmod(self.path("/usr/bin/systemctl"), 0o755)

    def path(self, p):
        return self.root + p

    def run(self, *argv, netns=None, check=True, timeout=300):
        """argv in the scratch root (and in network namespace netns)."""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
               "DEBIAN_FRONTEND": "noninteractive", "MANWIDTH": "80"}
        enter = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
        return L.run([*enter, "chroot", self.root, *argv], check=check, timeout=timeout, env=env)

    def systemctl_calls(self):
        """What the maintainer scripts asked of systemctl since the last call."""
        try:
            with open(self.path("/run/systemctl.log")) as f:
                calls = f.read().splitlines()
            os.remove(self.path("/run/systemctl.log"))
        except FileNotFoundError:
            calls = []
        return calls


def changes_of(calls):
    """The calls that would start, stop, enable or restart something, without
    their options (`--quiet stop tcflows.service` -> `stop tcflows.service`)."""
    verbs = {"start", "stop", "restart", "try-restart", "enable", "reenable", "reload"}
    words = [[w for w in c.split() if not w.startswith("-")] for c in calls]
    return [" ".join(w) for w in words if set(w) & verbs]


def check_installed(root, version):
    """The maintainer scripts' effects, the binary, unit, pages, completion."""
    user = root.run("getent", "passwd", "tcflows", check=False).stdout.strip()
    print(f"  user: {user or 'missing'}")
    L.check(user, "postinst made no tcflows user")
    _, _, uid, gid, _, home, shell = user.split(":")
    L.check(home == "/var/lib/tcflows" and shell.endswith("nologin"), f"user {user}")
    L.check(root.run("getent", "group", "tcflows", check=False).returncode == 0, "no group")
    for d, owner, mode in (("/var/lib/tcflows", (int(uid), int(gid)), 0o750),
                           ("/run/tcflows", (0, 0), 0o750)):
        st = os.stat(root.path(d))
        got = ((st.st_uid, st.st_gid), st.st_mode & 0o777)
        print(f"  {d}: owner {got[0]}, mode {got[1]:o}")
        L.check(got == (owner, mode), f"{d}: owner and mode {got}, expected {(owner, mode)}")
    enabled = root.run("systemctl.real", "--root=/", "is-enabled", "tcflows.service",
                       check=False).stdout
    wants = [w for w in os.listdir(root.path("/etc/systemd/system")) if w.endswith(".wants")
             and os.path.lexists(root.path(f"/etc/systemd/system/{w}/tcflows.service"))]
    print(f"  tcflows.service: {enabled.strip()}, wanted by {wants or 'nothing'}")
    L.check(enabled.strip() == "disabled" and not wants, "the unit is enabled after install")

    out = root.run("tcflows", "--version").stdout.strip()
    print(f"  /usr/bin/tcflows --version: {out}")
    L.check(out == f"tcflows {version}", f"--version says {out!r}, meson.build {version}")

    verify = root.run("systemd-analyze", "verify", "tcflows.service", check=False)
    print(f"  systemd-analyze verify: exit {verify.returncode} "
          f"{L.tail(verify.stdout + verify.stderr, 5)}")
    L.check(verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(),
            "the installed unit does not verify (ExecStart, Documentation= pages, ...)")
    sec = root.run("systemd-analyze", "security", "--offline=true", "tcflows.service").stdout
    level = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", sec).group(1))
    print(f"  systemd-analyze security: exposure {level}")
    L.check(level <= 4.0, f"exposure {level} is above 4.0")

    check_pages(root)
    loaded = root.run("bash", "-c", "source /usr/share/bash-completion/bash_completion && "
                      "_completion_loader tcflows; complete -p tcflows", check=False)
    print(f"  completion: {loaded.stdout.strip() or loaded.stderr.strip()}")
    L.check("-F _tcflows tcflows" in loaded.stdout, "bash-completion does not load tcflows'")
    docs = sorted(os.listdir(root.path("/usr/share/doc/tcflows/schema")))
    print(f"  /usr/share/doc/tcflows/schema: {docs}")
    L.check(docs and os.path.exists(root.path("/usr/share/doc/tcflows/README.md.gz")),
            "README or schema docs missing")


def check_pages(root):
    mandir = root.path("/usr/share/man")
    pages = sorted(f"{s}/{p}" for s in os.listdir(mandir) for p in os.listdir(f"{mandir}/{s}")
                   if p.startswith("tcflows"))
    sources = sorted(n for n in os.listdir(os.path.join(SOURCE, "docs", "man")) if n.endswith(".scd"))
    L.check(len(pages) == len(sources), f"installed pages {pages}, sources {sources}")
    for page in pages:
        name = page.split("/")[1].split(".")
        p = root.run("man", "--warnings", name[1], name[0], check=False)
        print(f"  man {name[1]} {name[0]}: {len(p.stdout.splitlines())} lines, "
              f"warnings: {p.stderr.strip() or 'none'}")
        L.check(p.returncode == 0 and not p.stderr.strip() and "SEE ALSO" in p.stdout,
                f"{page} does not render cleanly")


def exec_start(root):
    with open(root.path("/lib/systemd/system/tcflows.service")) as f:
        return re.search(r"^ExecStart=(.*)$", f.read(), re.M).group(1).split()


def record_as_the_service(root, lab):
    """The unit's ExecStart in namespace a (its default route is dev a);
    returns the running agent once its filters are attached."""
    lab.ip("a", "route", "add", "default", "via", lab.addr4["b"])
    argv = ["nsenter", f"--net=/run/netns/{lab.ns['a']}", "chroot", root.root,
            *exec_start(root)]
    print(f"  as tcflows.service: {' '.join(exec_start(root))}")
    agent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    L.on_cleanup(lambda: agent.poll() is None and (agent.kill(), agent.wait()))
    deadline = time.monotonic() + 30
    while L.tcflows_filters(lab.ns["a"], lab.dev["a"]) != {"ingress": 1, "egress": 1}:
        if agent.poll() is not None:
            raise L.Failure(f"the service's command exited {agent.returncode}: "
                            f"{L.tail(agent.stderr.read())}")
        L.check(time.monotonic() < deadline, "the service's command did not attach in 30 s")
        time.sleep(0.1)
    with open(root.path("/run/tcflows-test.pid"), "w") as f:
        f.write(str(agent.pid))
    return agent


def leftovers(root):
    """Files under the scratch root's /run/tcflows (lock files), and whatever
    its bpffs holds beyond what a new one does (tcflows pins nothing)."""
    locks = [p for p in L.paths_under(root.path("/run/tcflows")) if os.path.isfile(p)]
    pins = set(L.paths_under(root.path(L.BPFFS))) - root.bpffs_fresh
    return sorted(p[len(root.root):] for p in locks + list(pins))


def add_foreign(lab):
    """A clsact qdisc and two u32 filters that are not tcflows' (on a port
    that the test's pings do not use)."""
    dev = lab.dev["a"]
    L.run(["tc", "qdisc", "add", "dev", dev, "clsact"], ns=lab.ns["a"])
    for hook in ("ingress", "egress"):
        L.run(["tc", "filter", "add", "dev", dev, hook, "pref", "10", "protocol", "ip", "u32",
               "match", "ip", "dport", "7779", "0xffff", "flowid", "1:1"], ns=lab.ns["a"])
    return L.tc_state(lab.ns["a"], dev)


def check_records(root):
    """The pings, as the service wrote them into /var/lib/tcflows."""
    db = root.path("/var/lib/tcflows/tcflows.db")
    owner = root.run("stat", "-c", "%U:%G %a", "/var/lib/tcflows/tcflows.db").stdout.strip()
    print(f"  /var/lib/tcflows/tcflows.db: {owner}")
    L.check(owner == "tcflows:tcflows 640", f"the database is {owner}")
    rows = L.Db(db).rows()
    icmp = [(r["orig_pkts"], r["resp_pkts"], r["close_reason"]) for r in rows
            if r["proto"] == "ICMP"]
    print(f"  records: {len(rows)}, ICMP (orig, resp, close): {icmp}; ping sent {PINGS}")
    L.check(icmp == [(PINGS, PINGS, "shutdown")], f"ICMP records {icmp}")


def apt(root, lab, *args):
    """apt-get in the scratch root; the systemctl calls its scripts made."""
    root.run("sh", "-c", "cd / && apt-get -y -q " + " ".join(args), netns=lab.ns["a"])
    return root.systemctl_calls()


def check_upgrade_and_removal(root, lab, local):
    """With the service recording: an upgrade try-restarts it; removal stops
    it, leaves others' qdisc and filters as they were, no lock file and nothing
    in bpffs."""
    foreign = add_foreign(lab)
    lab.link_up()
    agent = record_as_the_service(root, lab)
    L.ping(lab, "a", lab.addr4["b"], count=PINGS)

    calls = apt(root, lab, "install", "--reinstall", local)
    print(f"  upgrade: systemctl {calls}")
    L.check(changes_of(calls) == ["try-restart tcflows.service"],
            f"upgrading asked systemd for {changes_of(calls)}, expected only try-restart")
    L.check(agent.poll() is None, "the upgrade stopped the service")

    calls = apt(root, lab, "remove", "tcflows")
    print(f"  remove: systemctl {calls}; the agent exited {agent.poll()}")
    L.check(changes_of(calls) == ["stop tcflows.service"],
            f"removing asked systemd for {changes_of(calls)}, expected stop")
    L.check(agent.poll() == 0, f"the service did not stop cleanly: {agent.poll()}")
    after = L.tc_state(lab.ns["a"], lab.dev["a"])
    lines = {hook: len(f) for hook, f in after[1].items()}
    print(f"  tc after removal: qdiscs {after[0]}, filter lines {lines}, "
          f"{'as before' if after == foreign else 'changed'}")
    L.check(after == foreign, f"tc before: {foreign}, after removal: {after}")
    # The service, as the tcflows user, cannot remove its lock file from
    # /run/tcflows; the prerm's `tcflows detach` does.
    print(f"  lock files and bpffs entries after removal: {leftovers(root) or 'none'}")
    L.check(not leftovers(root), f"removal left {leftovers(root)}")
    L.check(not os.path.exists(root.path("/usr/bin/tcflows")), "/usr/bin/tcflows is left")


def test_package(binary):
    """tools/package, lintian, then install, upgrade, remove and purge in a
    scratch root, with the service recording in a lab namespace."""
    deb = build_package()
    version = meson_version()
    fields = L.run(["dpkg-deb", "-f", deb, "Package", "Version"]).stdout.split()
    L.check(fields == ["Package:", "tcflows", "Version:", version],
            f"{os.path.basename(deb)}: {fields}; meson.build says version {version}: "
            "add a debian/changelog entry")
    # The lab's namespaces first, in the host's mount namespace like every
    # lab's; then the scratch root, in one of this process's own. The
    # package's scripts run in namespace a: its interfaces are the machine's
    # for them, and the host's stay out of their reach.
    lab = L.new_lab()
    lab.setup()
    root = ScratchRoot()
    shutil.copy(deb, root.path("/tmp"))
    local = "./tmp/" + os.path.basename(deb)

    calls = apt(root, lab, "install", "--no-install-recommends", local)
    print(f"  install: systemctl {calls}")
    L.check(not changes_of(calls), f"installing asked systemd for {changes_of(calls)}")
    check_installed(root, version)
    check_upgrade_and_removal(root, lab, local)
    check_records(root)

    print(f"  purge: systemctl {apt(root, lab, 'purge', 'tcflows')}")
    left = sorted(os.listdir(root.path("/var/lib/tcflows")))
    L.check("tcflows.db" in left, "purge removed the recorded database")
    L.check(root.run("getent", "passwd", "tcflows", check=False).returncode == 0,
            "purge removed the tcflows user")
    print(f"  after purge: /var/lib/tcflows holds {left}, the user stays")
    lab.destroy()


if __name__ == "__main__":
    L.main([test_package])
