// The parser and kernel-logic tests: the real TC program run on crafted
// frames and on captures through bpf_prog_test_run_opts. Needs root (loading
// BPF); exits 77, which meson reports as skipped, only when not root.
//
// `--summary` prints one line per capture and the verifier statistics.
#define DOCTEST_CONFIG_IMPLEMENT
#include "summary.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace tcflows::test {
bool summary_enabled = false;
}

int main(int argc, char **argv) {
  if (geteuid() != 0) {
    std::fputs("bpf_tests: skipped, loading the TC program needs root\n", stderr);
    return 77;
  }
  std::vector<char *> args;
  for (int i = 0; i < argc; i++) {
    if (std::strcmp(argv[i], "--summary") == 0)
      tcflows::test::summary_enabled = true;
    else
      args.push_back(argv[i]);
  }
  doctest::Context context(int(args.size()), args.data());
  return context.run();
}
