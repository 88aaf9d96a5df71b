"""What the man pages and `tcflows --help` say, for the docs and package tests.

The pages are docs/man/tcflows.8.scd (the commands and the global options)
and one docs/man/tcflows-COMMAND.SECTION.scd per subcommand. An option is
documented by a term line that starts with it: `*-i*, *--iface* _IFACE_`.
"""

import os
import re
import subprocess
import sys

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN_SOURCE = os.path.join(SOURCE, "docs", "man")

HELP_OPTION = re.compile(r"^  (-[^ ]+)(?: ([^ ]+))?")
TERM_OPTION = re.compile(r"\*(--?[A-Za-z0-9][A-Za-z0-9-]*)\*")


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)


def help_text(binary, command=None):
    p = run([binary] + ([command] if command else []) + ["--help"])
    check(p.returncode == 0, f"`tcflows {command or ''} --help` exited {p.returncode}")
    return p.stdout


def help_options(binary, command=None):
    """{option name: whether it takes a value} from `tcflows [command] --help`."""
    options = {}
    for line in help_text(binary, command).splitlines():
        m = HELP_OPTION.match(line)
        if m:
            takes_value = m.group(2) is not None and m.group(2) != "Excludes:"
            for name in m.group(1).split(","):
                options[name] = takes_value
    return options


def help_commands(binary):
    """The subcommands listed under "Subcommands:" in `tcflows --help`."""
    text = help_text(binary).split("Subcommands:\n", 1)
    check(len(text) == 2, "`tcflows --help` lists no subcommands")
    return [line.split()[0] for line in text[1].splitlines() if line.startswith("  ")]


def page_sources():
    """{page name (tcflows-record.8): path of its scdoc source}."""
    return {name[:-4]: os.path.join(MAN_SOURCE, name)
            for name in sorted(os.listdir(MAN_SOURCE)) if name.endswith(".scd")}


def page_of(command):
    """The page of a subcommand (None: the overview page tcflows.8)."""
    stem = f"tcflows-{command}." if command else "tcflows."
    found = [p for p in page_sources() if p.startswith(stem) and p[len(stem):].isdigit()]
    return found[0] if len(found) == 1 else None


def section(page, title):
    """The text of a page's section (`# TITLE` up to the next `# `)."""
    with open(page_sources()[page]) as f:
        parts = f.read().split(f"\n# {title}\n", 1)
    check(len(parts) == 2, f"{page} has no {title} section")
    return parts[1].split("\n# ", 1)[0]


def page_options(page):
    """{option name: whether its term line names a value} under OPTIONS."""
    options = {}
    for line in section(page, "OPTIONS").splitlines():
        if line.startswith("*-"):
            takes_value = "_" in line
            for name in TERM_OPTION.findall(line):
                options[name] = takes_value
    return options


def page_commands():
    """The commands the overview page tcflows.8 lists under COMMANDS."""
    return re.findall(r"^\*([a-z][a-z0-9-]*)\*$", section(page_of(None), "COMMANDS"), re.M)


def main(tests):
    """Runs each test(binary, *args) with argv[1:]; exit 0 or 1."""
    failed = []
    for test in tests:
        print(f"== {test.__name__}: {(test.__doc__ or '').strip().splitlines()[0]}", flush=True)
        try:
            test(*sys.argv[1:])
            print(f"PASS {test.__name__}", flush=True)
        except Failure as e:
            print(f"FAIL {test.__name__}: {e}", flush=True)
            failed.append(test.__name__)
    print(f"{len(tests) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
