// Per-packet cost of the TC program, measured by the kernel itself:
// bpf_prog_test_run_opts runs one frame `repeat` times and reports the mean
// run time. Not a test: a benchmark figure, printed as JSON.
//
//   bpf_cost [repeat]
#include "bpf_program.h"
#include "error.h"
#include "packet_builder.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace tcflows;
using namespace tcflows::test;

namespace {

struct Case {
  std::string name;
  Bytes frame;
  uint32_t gso_segs = 0;
};

// Mean ns per run of `frame` through `prog_fd` (the flow exists after the first run).
uint32_t mean_ns(int prog_fd, const Case &c, int repeat) {
  __sk_buff ctx{};
  ctx.gso_segs = c.gso_segs;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(),
              .data_size_in = uint32_t(c.frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = repeat);
  if (bpf_prog_test_run_opts(prog_fd, &opts))
    fail(exit_failure, "test run failed: {}", errno_text(errno));
  return opts.duration;
}

std::vector<Case> cases() {
  return {
      {"tcp4_ack", PacketBuilder()
                       .eth()
                       .ipv4("10.0.0.1", "10.0.0.2")
                       .tcp(40000, 443, tcp_flags::ack)
                       .payload(1400)
                       .build()},
      {"tcp6_ack", PacketBuilder()
                       .eth()
                       .ipv6("2001:db8::1", "2001:db8::2")
                       .tcp(40000, 443, tcp_flags::ack)
                       .payload(1400)
                       .build()},
      {"udp4_64",
       PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").udp(40000, 5201).payload(64).build()},
      {"tcp4_gso",
       PacketBuilder()
           .eth()
           .ipv4("10.0.0.1", "10.0.0.2")
           .tcp(40000, 443, tcp_flags::ack)
           .payload(1400)
           .build(),
       8},
      {"arp", PacketBuilder().eth(mac_a, mac_b, 0x0806).payload(28).build()},
  };
}

} // namespace

int main(int argc, char **argv) {
  int repeat = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
  try {
    ProgramConfig config;
    config.kernel.flags = TCF_CFG_EVENTS;
    BpfProgram program = BpfProgram::load(config);
    // An empty program's cost on the same frames: the test-run harness itself.
    fmt::print("{{");
    bool first = true;
    for (const auto &c : cases()) {
      mean_ns(program.ingress_fd(), c, 1); // creates the flow: then it is known
      fmt::print("{}\"{}\": {}", first ? "" : ", ", c.name,
                 mean_ns(program.ingress_fd(), c, repeat));
      first = false;
    }
    fmt::print("}}\n");
  } catch (const Fatal &e) {
    fmt::print(stderr, "bpf_cost: {}\n", e.what());
    return e.exit_code();
  }
}
