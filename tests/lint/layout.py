#!/usr/bin/env python3
"""The stages of src/ include only the stages below them (src/meson.build).

A header of a higher stage included from a lower one would compile (all
stages share one include root) but turn the pipeline into a tangle; this
check fails on the first such include and names it.
"""

import os
import re
import sys

# What each stage may include besides itself: the libraries it links.
ALLOWED = {
    "util": set(),
    "capture": {"util"},
    "kernel": {"util"},
    "attach": {"util", "kernel"},
    "track": {"util", "kernel"},
    "sinks": {"util", "kernel", "track"},
    "agent": {"util", "capture", "kernel", "attach", "track", "sinks"},
    "report": {"util", "kernel", "track", "sinks"},
    "cmd": {"util", "capture", "kernel", "attach", "track", "sinks", "agent", "report"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')


def main(src):
    problems = []
    stages = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    for stage in stages:
        if stage not in ALLOWED:
            problems.append(f"src/{stage}/ is not a known stage: add it to {__file__}")
            continue
        for name in sorted(os.listdir(os.path.join(src, stage))):
            path = os.path.join(src, stage, name)
            with open(path) as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if m and m.group(1) != stage and m.group(1) not in ALLOWED[stage]:
                        problems.append(f"src/{stage}/{name}:{n}: {stage} includes "
                                        f"{m.group(1)}, a stage above or beside it")
    for p in problems:
        print(p)
    print(f"{len(stages)} stages, {len(problems)} includes out of place")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
