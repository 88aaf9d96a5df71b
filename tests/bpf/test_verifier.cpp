// Verifier complexity of the three programs under the configurations the loader
// uses: the instructions the verifier processed must stay well below the
// kernel's limit, so that a parser change that explodes the state space fails
// here rather than on a user's machine. `--summary` prints the figures.
#include "kernel/abi.h" // before the skeleton, which names struct tcf_config
#include "summary.h"
#include "tcflows.skel.h"

#include <doctest/doctest.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

namespace {

// The kernel's limit is 1M processed instructions per program.
constexpr long budget = 500'000;

struct Stats {
  long insns = -1;
  long usec = -1;
};

Stats parse_stats(const char *log) {
  Stats stats;
  std::cmatch m;
  if (std::regex_search(log, m, std::regex("processed (\\d+) insns")))
    stats.insns = std::stol(m[1]);
  if (std::regex_search(log, m, std::regex("verification time (\\d+) usec")))
    stats.usec = std::stol(m[1]);
  return stats;
}

void check_complexity(const char *name, const tcf_config &config) {
  INFO("configuration: ", std::string(name));
  std::unique_ptr<tcflows_bpf, decltype(&tcflows_bpf__destroy)> skel(tcflows_bpf__open(),
                                                                     tcflows_bpf__destroy);
  REQUIRE(skel != nullptr);
  skel->rodata->tcf_cfg = config;
  REQUIRE(bpf_map__set_max_entries(skel->maps.conns, 1024) == 0);
  bpf_program *progs[] = {skel->progs.tcflows_ingress, skel->progs.tcflows_egress,
                          skel->progs.tcflows_read};
  std::vector<char> logs[3];
  for (int i = 0; i < 3; i++) {
    logs[i].assign(64 * 1024, 0);
    REQUIRE(bpf_program__set_log_level(progs[i], 4) == 0); // statistics only
    REQUIRE(bpf_program__set_log_buf(progs[i], logs[i].data(), logs[i].size()) == 0);
  }
  REQUIRE(tcflows_bpf__load(skel.get()) == 0);
  for (int i = 0; i < 3; i++) {
    Stats stats = parse_stats(logs[i].data());
    CHECK(stats.insns > 0);
    CHECK(stats.insns < budget);
    tcflows::test::summary("verifier {:<28} {:<16} processed {:>7} insns in {:>7} us", name,
                           bpf_program__name(progs[i]), stats.insns, stats.usec);
  }
}

TEST_CASE("verifier complexity stays well below the kernel's limit") {
  tcf_config config{};
  config.digest_mask = ~0ull;
  check_complexity("boot clock", config);
  for (auto &idle : config.idle_ns)
    idle = 60'000'000'000;
  check_complexity("idle timeouts", config);
  config.flags |= TCF_CFG_SKB_TSTAMP;
  check_complexity("idle, skb clock", config);
}

} // namespace
