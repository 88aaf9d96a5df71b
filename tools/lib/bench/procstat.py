"""CPU time and peak memory of a process and its descendants, from /proc."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command name is in parentheses and may contain spaces.
    return text[text.rindex(")") + 2:].split()


def descendants(root):
    """root and every process below it (pmacctd forks its plugins)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(entry)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root):
    """utime + stime of the tree, plus children it has already reaped."""
    ticks = 0
    for pid in descendants(root):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        # After ")": state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
        ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / CLK_TCK


def peak_rss_kib(root):
    """Sum of VmHWM over the tree (each process's own peak resident set)."""
    return status_kib(root, "VmHWM")


def rss_kib(root):
    """Sum of VmRSS over the tree (resident now)."""
    return status_kib(root, "VmRSS")


def status_kib(root, field):
    total = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total
