// Per-packet cost of the TC program, measured by the kernel itself:
// bpf_prog_test_run_opts runs one frame `repeat` times and reports the mean
// run time. Not a test: a benchmark figure, printed as JSON, with
// "empty_program": the same for a program that only returns (the floor).
// With --per-call, each run is a system call of its own: wall-clock ns per
// call, skb allocation and copies included, for the known-flow cases and the
// empty program (what `tcflows read` would cost with one call a frame; it
// makes one for a batch of frames).
//
//   bpf_cost [repeat]
//   bpf_cost --per-call [calls]
#include "kernel/bpf_program.h"
#include "kernel/conn_table.h"
#include "packet_builder.h"
#include "util/error.h"
#include "util/fd.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
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

// Wall-clock ns per bpf_prog_test_run_opts call, `calls` calls of one run each.
uint32_t per_call_ns(int prog_fd, const Case &c, int calls) {
  __sk_buff ctx{};
  ctx.gso_segs = c.gso_segs;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(),
              .data_size_in = uint32_t(c.frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = 1);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; i++)
    if (bpf_prog_test_run_opts(prog_fd, &opts))
      fail(exit_failure, "test run failed: {}", errno_text(errno));
  std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return uint32_t(took.count() / calls + 0.5);
}

std::vector<Case> cases() {
  return {
      {"tcp4_ack", PacketBuilder()
                       .eth()
                       .ipv4("10.0.0.1", "10.0.0.2")
                       .tcp(40000, 443, tcp_flags::ack)
                       .payload(1400)
                       .build()},
      // Without payload: a repeated data segment is a retransmission for the
      // TCP health counters (the slowest path, as tcp4_ack now measures).
      {"tcp4_pureack",
       PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").tcp(40000, 443, tcp_flags::ack).build()},
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

// An empty TC program (r0 = TC_ACT_OK; exit): its cost is the test-run harness alone.
UniqueFd load_empty_program() {
  bpf_insn insns[2]{};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "empty", "GPL", insns, 2, nullptr));
  if (!fd)
    fail(exit_failure, "loading an empty program failed: {}", errno_text(errno));
  return fd;
}

// The empty program's median over the cases.
template <typename Measure> auto empty_ns(Measure measure) {
  UniqueFd empty = load_empty_program();
  std::vector<decltype(measure(0, cases()[0]))> ns;
  for (const auto &c : cases())
    ns.push_back(measure(empty.get(), c));
  std::sort(ns.begin(), ns.end());
  return ns[ns.size() / 2];
}

// Every case (a known flow after its first run) and the empty program,
// measured by `measure(prog_fd, case)`, as one JSON object.
template <typename Measure> void print_costs(const BpfProgram &program, Measure measure) {
  fmt::print("{{");
  bool first = true;
  for (const auto &c : cases()) {
    mean_ns(program.ingress_fd(), c, 1); // creates the flow: then it is known
    fmt::print("{}\"{}\": {}", first ? "" : ", ", c.name, measure(program.ingress_fd(), c));
    first = false;
  }
  // An empty program's cost on the same frames: the test-run harness itself.
  fmt::print(", \"empty_program\": {}}}\n", empty_ns(measure));
}

} // namespace

int main(int argc, char **argv) {
  bool per_call = argc > 1 && std::strcmp(argv[1], "--per-call") == 0;
  const char *count = argc > 1 + per_call ? argv[1 + per_call] : nullptr;
  int repeat = count ? std::atoi(count) : 1'000'000;
  try {
    ProgramConfig config;
    BpfProgram program = BpfProgram::load(config);
    if (per_call)
      print_costs(program, [&](int fd, const Case &c) { return per_call_ns(fd, c, repeat); });
    else
      print_costs(program, [&](int fd, const Case &c) { return mean_ns(fd, c, repeat); });
  } catch (const Fatal &e) {
    fmt::print(stderr, "bpf_cost: {}\n", e.what());
    return e.exit_code();
  }
}
