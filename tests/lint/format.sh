#!/bin/sh
# The C++ sources are clang-format clean (.clang-format at the top). The
# BPF C in bpf/ follows the kernel's own style and is not checked here.
# Fix with: clang-format -i $(find src tests tools -name '*.cpp' -o -name '*.h')
top=$1
cd "$top" || exit 1
files=$(find src tests tools -name '*.cpp' -o -name '*.h' | sort)
out=$(clang-format --dry-run $files 2>&1)
if [ -n "$out" ]; then
  printf '%s\n' "$out" | grep 'warning:' | cut -d: -f1 | sort -u | sed 's/$/: not clang-format clean/'
  exit 1
fi
echo "$(echo "$files" | wc -l) files clang-format clean"
