#!/usr/bin/env python3
"""The man pages: each renders with no warning from `man --warnings`, every
subcommand of `tcflows --help` has a page that the overview lists, and each
page documents exactly the options of its command's --help (so that an
option added to the code without its page fails here).

Usage: test_man.py TCFLOWS_BINARY BUILT_PAGE...
"""

import os

import docs as D


def test_pages_render(binary, *built):
    """`man --warnings -l` renders every built page without a warning."""
    names = {os.path.basename(p): p for p in built}
    D.check(set(names) == set(D.page_sources()),
            f"built pages {sorted(names)}, sources {sorted(D.page_sources())}: "
            "list each docs/man/*.scd in docs/man/meson.build")
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    for name, path in sorted(names.items()):
        p = D.run(["man", "--warnings", "-E", "UTF-8", "-l", path], env=env)
        lines = len(p.stdout.splitlines())
        print(f"  {name}: {lines} lines, exit {p.returncode}, warnings: {p.stderr.strip() or 'none'}")
        D.check(p.returncode == 0 and not p.stderr.strip(), f"{name} renders with warnings")
        D.check("NAME" in p.stdout and "SEE ALSO" in p.stdout, f"{name} lacks NAME or SEE ALSO")


def test_every_command_has_a_page(binary, *built):
    """Each subcommand of `tcflows --help` has a page tcflows-NAME.N that
    tcflows(8) lists under COMMANDS; no page for a command that is gone."""
    commands = D.help_commands(binary)
    print(f"  --help: {commands}; tcflows(8) COMMANDS: {D.page_commands()}")
    for command in commands:
        D.check(D.page_of(command), f"`tcflows {command}` has no page: add "
                f"docs/man/tcflows-{command}.SECTION.scd and list it in docs/man/meson.build")
    D.check(sorted(D.page_commands()) == sorted(commands),
            f"tcflows(8) lists {D.page_commands()} under COMMANDS, --help {commands}")
    pages = {p for p in D.page_sources() if p.startswith("tcflows-")}
    extra = pages - {D.page_of(c) for c in commands}
    D.check(not extra, f"pages of commands that --help does not list: {sorted(extra)}")


def test_every_option_documented(binary, *built):
    """Each page documents exactly the options of its command's --help, a
    value where the option takes one."""
    for command in [None] + D.help_commands(binary):
        page = D.page_of(command)
        want = D.help_options(binary, command)
        have = D.page_options(page)
        missing = sorted(set(want) - set(have))
        stale = sorted(set(have) - set(want))
        values = sorted(o for o in set(want) & set(have) if want[o] != have[o])
        print(f"  {page}: {len(have)} options documented, --help has {len(want)}")
        D.check(not missing, f"{page} lacks {missing} (from `tcflows {command or ''} --help`): "
                f"add a term line like `*--name* _VALUE_` under OPTIONS")
        D.check(not stale, f"{page} documents {stale}, which --help does not list")
        D.check(not values, f"{page}: {values} take a value in one of --help and the page, "
                "not in the other")


if __name__ == "__main__":
    D.main([test_pages_render, test_every_command_has_a_page, test_every_option_documented])
