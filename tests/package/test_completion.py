#!/usr/bin/env python3
"""Bash completion (dist/tcflows.bash-completion) in a real bash with the
bash-completion library: commands and options as the man pages document
them, interface names as `ip link` lists them, and the words each choice
option accepts.

Usage: test_completion.py TCFLOWS_BINARY COMPLETION_SCRIPT
"""

import os
import re
import tempfile

import docs as D

LIBRARY = "/usr/share/bash-completion/bash_completion"
# As bash calls a completion function: COMP_LINE the line up to the cursor,
# COMP_WORDS its words (split at blanks and at "=" as COMP_WORDBREAKS says).
DRIVER = """
source {library}
source {script}
COMP_LINE=$1; COMP_POINT=${{#COMP_LINE}}; shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_tcflows "$1" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""


def complete(binary, script, line, cwd=None):
    """What completing `tcflows LINE` (the cursor at its end) offers."""
    D.check(os.path.exists(LIBRARY), f"{LIBRARY} is missing: apt-get install bash-completion")
    binary = os.path.abspath(binary)
    words = [binary] + re.split(r"\s+|(=)", line)
    words = [w for w in words if w is not None]
    words = [w for i, w in enumerate(words) if w or i == len(words) - 1]
    driver = DRIVER.format(library=LIBRARY, script=os.path.abspath(script))
    p = D.run(["bash", "-c", driver, "complete", f"{binary} {line}", *words], cwd=cwd)
    D.check(p.returncode == 0 and not p.stderr, f"completing `tcflows {line}`: exit "
            f"{p.returncode} {p.stderr.strip()}")
    return sorted(w for w in p.stdout.splitlines() if w)


def expect(binary, script, line, want, cwd=None):
    got = complete(binary, script, line, cwd=cwd)
    print(f"  tcflows {line}<TAB>: {' '.join(got)}")
    D.check(got == sorted(want), f"completing `tcflows {line}` offers {got}, "
            f"expected {sorted(want)}")


def test_commands_and_options(binary, script):
    """`tcflows <TAB>` offers the commands of tcflows(8); `tcflows CMD -<TAB>`
    the options of its page, `tcflows -<TAB>` those of tcflows(8)."""
    expect(binary, script, "", D.page_commands())
    expect(binary, script, "re", [c for c in D.page_commands() if c.startswith("re")])
    expect(binary, script, "-", D.page_options(D.page_of(None)))
    for command in D.page_commands():
        expect(binary, script, f"{command} -", D.page_options(D.page_of(command)))
    expect(binary, script, "-v record --ipfix", ["--ipfix", "--ipfix-active"])


def interfaces():
    names = D.run(["ip", "-o", "link", "show"]).stdout.splitlines()
    return sorted(line.split(": ")[1].split("@")[0] for line in names)


def expect_interfaces(binary, script, line):
    """The interfaces (starting with the word at the cursor), as `ip link`
    lists them before and after: others may add or remove one meanwhile."""
    prefix = line.split(" ")[-1]
    for attempt in range(3):
        before = interfaces()
        got = complete(binary, script, line)
        if before == interfaces():
            break
    want = sorted(i for i in before if i.startswith(prefix))
    print(f"  tcflows {line}<TAB>: {' '.join(got)}")
    D.check(got == want, f"completing `tcflows {line}` offers {got}, `ip link` lists {want}")


def test_values(binary, script):
    """Interface names after -i/--iface, the words of --by, --format and
    --sort, users after --user, files (and -) after PATH options."""
    for line in ("record -i ", "detach --iface ", "report --iface lo"):
        expect_interfaces(binary, script, line)
    expect(binary, script, "record --by ", ["flow", "conn"])
    expect(binary, script, "record --format ", ["table", "json"])
    expect(binary, script, "report --by ",
           ["flow", "conn", "host", "port", "proto", "total", "process"])
    expect(binary, script, "report --sort p", ["packets"])
    expect(binary, script, "report --format=", ["table", "json", "csv"])
    D.check("root" in complete(binary, script, "record --user ro"), "--user offers no root")
    with tempfile.TemporaryDirectory() as top:
        for name in ("flows.db", "other.db"):
            open(os.path.join(top, name), "w").close()
        expect(binary, script, "report --db f", ["flows.db"], cwd=top)
        expect(binary, script, "record --jsonl ", ["-", "flows.db", "other.db"], cwd=top)
        expect(binary, script, "read ", ["flows.db", "other.db"], cwd=top)
    expect(binary, script, "report --top ", [])


if __name__ == "__main__":
    D.main([test_commands_and_options, test_values])
