#!/usr/bin/env python3
"""Lab (security): what `tcflows record` keeps after attaching,
running as another user, the modes of what it creates, `report` with the
caller's rights, the systemd unit, no shell-outs and no SQL built from input.
"""

import json
import os
import re
import shutil

import tcflows_lab as L

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def expect_confined(pid, uid):
    """Only CAP_NET_ADMIN left (permitted, effective, bounding), no_new_privs, uid."""
    s = proc_status(pid)
    caps = {k: int(s[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    print(f"  pid {pid}: Uid {s['Uid']}, Gid {s['Gid']}, "
          + ", ".join(f"{k} {v:#x}" for k, v in caps.items()) + f", NoNewPrivs {s['NoNewPrivs']}")
    want = {"CapInh": 0, "CapPrm": L.CAP_NET_ADMIN, "CapEff": L.CAP_NET_ADMIN,
            "CapBnd": L.CAP_NET_ADMIN, "CapAmb": 0}
    L.check(caps == want, f"capabilities {caps}, expected {want}")
    L.check(s["NoNewPrivs"].strip() == "1", f"NoNewPrivs is {s['NoNewPrivs']}")
    L.check(s["Uid"].split() == [str(uid)] * 4, f"Uid is {s['Uid']}, expected {uid} x4")
    L.check(s["Gid"].split()[:3] == [str(uid)] * 3 if uid else True, f"Gid is {s['Gid']}")


def mode(path):
    return os.stat(path).st_mode & 0o777


def record_confined(binary, db_path, user=None, mount_ns=None):
    """An agent (as root, or --user) with traffic; checks its confinement and
    its clean stop: its filters detached, its program and maps freed, its
    lock file gone (emptied, as another user); returns the database."""
    args = ["--user", user] if user else []
    uid = int(L.run(["id", "-u", user]).stdout) if user else 0
    with L.Recorded(binary, db_path, args=args, mount_ns=mount_ns) as r:
        expect_confined(r.agent.pid, uid)
        programs = L.tcflows_programs(r.ns, r.dev)
        steady = L.SteadyTcp(r.lab, "a", "b", r.lab.addr4["b"], 5701)
        L.ping(r.lab, "b", r.lab.addr6["a"], count=2)
        steady.close()
        r.finish()
        # As another user it cannot remove the emptied lock file from its
        # root-owned directory (detach or the next agent does).
        left = L.leftovers(r.ns, [r.dev], empty_ok=bool(user))
        remains = L.leftovers(r.ns, [r.dev])
    print(f"  after SIGTERM: {remains or 'nothing left'}")
    L.check(not left, f"the stop left {left}")
    loaded = [p for p in programs.values() if not L.program_gone(p)]
    L.check(not loaded, f"the stop left programs {loaded} loaded")
    r.compare("records")
    st = os.stat(db_path)
    L.check(st.st_uid == uid, f"the database belongs to uid {st.st_uid}, not {uid}")
    return r.db


def test_root_confined(binary):
    """As root: after attach only CAP_NET_ADMIN, no_new_privs; the database
    0640 (-wal, -shm too) in directories it made 0750; exact; clean stop."""
    top = L.scratch_dir()
    path = os.path.join(top, "new", "sub", "t.db")
    record_confined(binary, path)
    modes = {p: mode(p) for p in (path, path + "-wal", path + "-shm")}
    modes.update({d: mode(d) for d in (os.path.dirname(path), os.path.join(top, "new"))})
    print("  modes: " + ", ".join(f"{os.path.relpath(p, top)} {m:o}" for p, m in modes.items()))
    want = {p: 0o640 if p.startswith(path) else 0o750 for p in modes}
    L.check(modes == want, "modes " + ", ".join(f"{os.path.relpath(p, top)} {m:o}" for p, m in
                                              modes.items()) + ": expected 640 and 750")


def report_as_nobody(tcflows, path):
    return L.run(L.NOBODY + [tcflows, "report", "--db", path, "--by", "conn", "--format", "json",
                           "--since", "1d"], check=False)


def test_user_nobody(binary):
    """--user nobody: runs as nobody with only CAP_NET_ADMIN, writes its
    records (exact, 0640), stops cleanly at SIGTERM leaving nothing behind,
    with bpffs mounted 0700 (as systemd mounts it) and 0755 alike: each in a
    mount namespace of its own, whatever the host's mount. `report` as
    nobody reads that database, and refuses a root 0640 copy with one line,
    exit 2."""
    top = L.scratch_dir()
    os.chmod(top, 0o777)
    for bpffs_mode in ("0700", "0755"):
        bpffs = L.PrivateMount(L.BPFFS, "bpf", f"mode={bpffs_mode}")
        # A new bpffs holds the kernel's own iterators (maps.debug, progs.debug).
        fresh = L.paths_under(bpffs.view(L.BPFFS))
        readable = os.path.join(top, f"nobody-{bpffs_mode}.db")
        print(f"  bpffs mounted with mode {bpffs_mode}, holding {len(fresh)} entries:")
        db = record_confined(binary, readable, user="nobody", mount_ns=bpffs.ns)
        pins = set(L.paths_under(bpffs.view(L.BPFFS))) - set(fresh)
        L.check(not pins, f"bpffs mode {bpffs_mode}: tcflows left {sorted(pins)}")
        L.check(mode(readable) == 0o640, f"the database has mode {mode(readable):o}")
    tcflows = L.reachable_copy(binary)
    ok = report_as_nobody(tcflows, readable)
    L.check(ok.returncode == 0 and not ok.stderr, f"report as nobody: exit {ok.returncode}: "
            f"{L.tail(ok.stderr)}")
    rows = json.loads(ok.stdout)
    print(f"  report as nobody: {len(rows)} connections, totals {L.totals(rows)}")
    L.check(L.totals(rows) == L.totals(db.rows()), f"report as nobody: totals "
            f"{L.totals(rows)}, database {L.totals(db.rows())}")
    private = os.path.join(top, "root.db")
    shutil.copy(readable, private)
    os.chown(private, 0, 0)
    os.chmod(private, 0o640)
    bad = report_as_nobody(tcflows, private)
    lines = bad.stderr.strip().splitlines()
    print(f"  report as nobody on a root 0640 database: exit {bad.returncode}: {lines}")
    L.check(bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("tcflows: error:")
            and not bad.stdout, "expected one line 'tcflows: error: ...' and exit 2")


def test_systemd_unit(binary):
    """The unit as built from dist/tcflows.service.in (unit=PATH):
    `systemd-analyze verify` clean; `security --offline` exposure at most 4.0."""
    unit = L.OPTIONS.get("unit")
    if not unit:
        raise L.LabError("unit=PATH (the built tcflows.service) is missing")
    # ExecStart names the installed binary (e.g. /usr/local/bin/tcflows): an
    # overlay on its directory, in a mount namespace of the check's own, adds
    # a link to the built binary. The man pages of Documentation= are checked
    # where the package installs them (tests/package), not here.
    with open(unit) as f:
        installed = re.search(r"^ExecStart=(\S+)", f.read(), re.M).group(1)
    where, top = os.path.dirname(installed), L.scratch_dir()
    os.makedirs(f"{top}/upper")
    os.makedirs(f"{top}/work")
    script = (f"mount -t overlay overlay -o lowerdir={where},upperdir={top}/upper,"
              f"workdir={top}/work {where} && ln -sf {binary} {installed} && "
              f"exec systemd-analyze verify --man=no {unit}")
    p = L.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], check=False)
    print(f"  systemd-analyze verify: exit {p.returncode} {L.tail(p.stderr + p.stdout, 5)}")
    L.check(p.returncode == 0 and not (p.stderr + p.stdout).strip(), "the unit does not verify")
    p = L.run(["systemd-analyze", "security", "--offline=true", "--threshold=40", unit],
              check=False)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", p.stdout)
    L.check(level, f"no exposure level in: {L.tail(p.stdout + p.stderr, 3)}")
    print(f"  systemd-analyze security: exposure {level.group(1)}, exit {p.returncode}")
    L.check(float(level.group(1)) <= 4.0 and p.returncode == 0,
            f"exposure {level.group(1)} is above 4.0")


# Running programs: none in src/ (netlink and libbpf only).
SPAWN = re.compile(r"\b(system|popen|execl|execlp|execle|execv|execve|execvp|execvpe|fork|vfork|"
                   r"posix_spawnp?|wordexp)\s*\(")
COMMANDS = re.compile(r'"(/s?bin/|/usr/s?bin/)?(tc|ip|sh|bash|bpftool|iptables|nft)[" ]')
LITERAL = re.compile(r'"(\\.|[^"\\])*"')
SQL_LITERAL = re.compile(r'^"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|WHERE|AND|ORDER|'
                         r'LIMIT)\b')
# What SQL may be built from besides literals: fragments the code chooses
# (filters with named parameters, the ORDER BY of a --sort choice, a fixed
# protocol list, PRAGMA names and values that the code passes, below).
SQL_PIECES = {"sql", "filters_sql(o)", "order", "port_protocols", "name", "value"}
PRAGMA_CALL = re.compile(r"[.>](set_pragma|pragma_int)\(")
PRAGMA_ARG = re.compile(r'^("[^"]*"|text|std::to_string\(\w+\))$')


def call_args(code, start):
    """The argument text of the call whose '(' is at start (to the line's end
    when it goes on), and where it ends."""
    depth = 0
    for i in range(start, len(code)):
        depth += (code[i] == "(") - (code[i] == ")")
        if depth == 0:
            return code[start + 1:i], i + 1
    return code[start + 1:], len(code)


def top_level(text, sep):
    """text split at sep outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur]]


def sql_pieces(line):
    """What a line joins to SQL literals: the arguments of fmt::format with
    an SQL format string, the operands of + and += next to an SQL literal."""
    literals = [m.group(0) for m in LITERAL.finditer(line)]
    if not any(SQL_LITERAL.match(lit) for lit in literals):
        return set()
    code = LITERAL.sub('""', line.strip().rstrip(";"))
    found = set()
    m = re.search(r"fmt::format\(", code)
    if m:
        args, end = call_args(code, m.end() - 1)
        found |= {a for a in top_level(args, ",")[1:] if a}
        code = code[:m.start()] + '""' + code[end:]
    if "+" in code:
        code = re.sub(r"^(return\b|.*\bStatement\s+\w+\(\s*\w+,)\s*", "", code)
        for piece in top_level(code.replace("+=", "+"), "+"):
            while piece.count(")") > piece.count("("):
                piece = piece[:piece.rindex(")")].strip()
            while piece.count("(") > piece.count(")"):
                piece = piece[piece.index("(") + 1:].strip()
            if piece and piece != '""':
                found.add(piece)
    return found


def source_problems(path, name):
    problems = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            where = f"src/{name}:{n}: {line.strip()}"
            if SPAWN.search(line) or COMMANDS.search(line):
                problems.append(f"runs a program: {where}")
            extra = sql_pieces(line) - SQL_PIECES
            if extra:
                problems.append(f"SQL built with {sorted(extra)}: {where}")
            call = PRAGMA_CALL.search(line)
            if call:
                args = top_level(call_args(LITERAL.sub('"x"', line), call.end() - 1)[0], ",")
                if not all(PRAGMA_ARG.match(a) for a in args):
                    problems.append(f"a PRAGMA from {args}: {where}")
    return problems


def test_no_shell_no_sql_from_input(binary):
    """src/ runs no programs and builds no SQL from input (grep), and input
    that would change concatenated SQL is taken as a value: an interface
    named with quotes is stored as it is, and `report --iface` with quotes
    matches only that name."""
    problems = []
    src = os.path.join(SOURCE, "src")
    for folder, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            problems += source_problems(path, os.path.relpath(path, src))
    for p in problems:
        print(f"    {p}")
    L.check(not problems, f"{len(problems)} lines in src/ run programs or build SQL from input")
    print("  src/: no program run, SQL only from literals and code-chosen fragments")
    quoted_names(binary)


def quoted_names(binary):
    path = os.path.join(L.scratch_dir(), "quotes.db")
    with L.new_lab() as lab:
        odd = "tr'||'x"  # an interface name the kernel allows
        L.run(["ip", "link", "set", lab.dev["a"], "name", odd], ns=lab.ns["a"])
        lab.dev["a"] = odd
        agent = L.Agent(binary, lab.ns["a"], [odd], db=path)
        lab.link_up()
        L.ping(lab, "a", lab.addr4["b"], count=2)
        agent.finish()
    ifaces = {r["iface"] for r in L.Db(path).rows()}
    L.check(ifaces == {odd}, f"interface names stored: {ifaces}, expected {{{odd!r}}}")
    for iface, want in ((odd, True), ("x' OR '1'='1", False)):
        p = L.run([binary, "report", "--db", path, "--since", "1d", "--by", "conn", "--format",
                   "json", "--iface", iface], check=False)
        L.check(p.returncode == 0, f"report --iface {iface!r}: exit {p.returncode}: {p.stderr}")
        rows = json.loads(p.stdout)
        print(f"  report --iface {iface!r}: {len(rows)} connections")
        L.check(bool(rows) == want, f"report --iface {iface!r} gave {len(rows)} connections")


if __name__ == "__main__":
    L.main([test_root_confined, test_user_nobody, test_systemd_unit,
            test_no_shell_no_sql_from_input])
