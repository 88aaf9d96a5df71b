// Exact counting: one canonical entry per connection with per-direction
// counters, IP-level bytes, 64-bit counters, no lost updates from two CPUs,
// and GSO/GRO super-packets counted as the wire segments they stand for.
#include "rows.h"

#include <bpf/bpf.h>
#include <doctest/doctest.h>
#include <pthread.h>
#include <sched.h>

#include <thread>

using namespace tcflows;
using namespace tcflows::test;

namespace {

namespace tf = tcp_flags;

constexpr RunOpts egress{.hook = TCF_HOOK_EGRESS};

std::vector<Row> canonical_rows() {
  auto tcp_between = [](std::string_view x, std::string_view y, uint16_t px, uint16_t py) {
    return PacketBuilder().eth().ipv4(x, y).tcp(px, py, tf::ack).build();
  };
  auto tcp6_between = [](std::string_view x, std::string_view y) {
    return PacketBuilder().eth().ipv6(x, y).tcp(1, 2, tf::ack).build();
  };
  return {
      {"handshake and data, both hooks",
       {v4().tcp(1234, 80, tf::syn).build(),
        {v4_back().tcp(80, 1234, tf::syn | tf::ack).build(), egress},
        v4().tcp(1234, 80, tf::ack).build(),
        {v4_back().tcp(80, 1234, tf::ack).payload(100).build(), egress}},
       {{tcp4(1234, 80), {2, 2}, {40 + 40, 40 + 140}}}},
      {"first packet from the higher address",
       {v4_back().tcp(80, 1234, tf::ack).build()},
       {rev(tcp4(1234, 80), 40)}},
      {"same address: the lower port first",
       {tcp_between("127.0.0.1", "127.0.0.1", 5000, 80),
        tcp_between("127.0.0.1", "127.0.0.1", 80, 5000)},
       {{ip4_key(IPPROTO_TCP, "127.0.0.1", 80, "127.0.0.1", 5000), {1, 1}, {40, 40}}}},
      {"IPv4 addresses compared in network order",
       {tcp_between("10.0.1.0", "10.0.0.255", 2, 1)},
       {rev(ip4_key(IPPROTO_TCP, "10.0.0.255", 1, "10.0.1.0", 2), 40)}},
      {"IPv6 addresses compared in network order",
       {tcp6_between("2001:db8::100", "2001:db8::ff")},
       {rev(ip6_key(IPPROTO_TCP, "2001:db8::ff", 2, "2001:db8::100", 1), 60)}},
      {"IPv6 addresses differing in an upper word",
       {tcp6_between("2001:db8::2:0:0:1", "2001:db8::1:0:0:2")},
       {rev(ip6_key(IPPROTO_TCP, "2001:db8::1:0:0:2", 2, "2001:db8::2:0:0:1", 1), 60)}},
  };
}

TEST_CASE("one canonical entry per connection, counters per direction") {
  check_rows(canonical_rows());
}

TEST_CASE("the first packet's direction, hook, clock and ICMP type") {
  Harness &h = shared_harness();
  h.reset();
  h.run(v4_back().icmp(0, 0, 7, 1).build(), {.hook = TCF_HOOK_EGRESS, .tstamp = 5'000});
  h.run(v4().icmp(8, 0, 7, 2).build(), {.tstamp = 9'000});
  auto val = h.flow(ip4_key(IPPROTO_ICMP, a4, 7, b4, 7, TCF_KIND_ICMP_ECHO));
  REQUIRE(val.has_value());
  CHECK((val->first & TCF_FIRST_DIR) == TCF_DIR_REV);
  CHECK((val->first & TCF_FIRST_EGRESS));
  CHECK(val->first_ns == 5'000);
  CHECK(val->last_ns == 9'000);
  CHECK(val->icmp_type == 0);
  CHECK(val->icmp_code == 0);
  CHECK((val->marks & 0xffff) == (TCF_SEEN_PKT | TCF_SEEN_PKT << 8));
}

TEST_CASE("64-bit counters do not wrap") {
  Harness &h = shared_harness();
  h.reset();
  constexpr uint64_t two32 = 1ull << 32;
  tcf_flow_key key = tcp4(1234, 80);
  h.run(v4().tcp(1234, 80, tf::ack).payload(100).build()); // takes a slot
  auto slots = h.flows();
  REQUIRE(slots.size() == 1);
  h.table().with_slot(slots[0].slot, [&](tcf_conn &near) {
    near.pkts[0] = two32 - 1;
    near.bytes[0] = two32 - 10;
    near.pkts[1] = two32 * 5;
    near.bytes[1] = two32 * 7 - 1;
  });
  h.run(v4().tcp(1234, 80, tf::ack).payload(100).build());
  h.run(v4_back().tcp(80, 1234, tf::ack).build());
  check_state(h, {{key, {two32, two32 * 5 + 1}, {two32 - 10 + 140, two32 * 7 - 1 + 40}}}, {});
}

// Runs `frame` `repeat` times on one CPU.
void run_pinned(int prog_fd, const Bytes &frame, int cpu, uint32_t repeat, int *err) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  *err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (*err)
    return;
  __sk_buff ctx{};
  ctx.tstamp = 1;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = uint32_t(frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = int(repeat));
  *err = bpf_prog_test_run_opts(prog_fd, &opts);
}

TEST_CASE("no lost updates when both CPUs count the same new flow") {
  if (std::thread::hardware_concurrency() < 2) {
    MESSAGE("one CPU only: the two runs cannot overlap");
    return;
  }
  Harness h(test_config());
  constexpr uint32_t repeat = 200'000;
  Bytes frame = v4().udp(1000, 2000).payload(100).build();
  int err[2] = {-1, -1};
  std::thread a(run_pinned, h.program().ingress_fd(), std::cref(frame), 0, repeat, &err[0]);
  std::thread b(run_pinned, h.program().egress_fd(), std::cref(frame), 1, repeat, &err[1]);
  a.join();
  b.join();
  REQUIRE(err[0] == 0);
  REQUIRE(err[1] == 0);
  CHECK(h.counters()[TCF_CTR_FRAMES] == 2 * repeat);
  // At most the one CPU that lost the race to create the flow looked again.
  CHECK(h.counters()[TCF_CTR_RETRIES] <= 1);
  CHECK(h.counters()[TCF_CTR_CONNECTIONS] == 1);
  check_state(h, {{udp4(1000, 2000), {2 * repeat, 0}, {2 * repeat * (20 + 8 + 100), 0}}}, {});
}

// GSO/GRO super-packets: `segs` wire packets; every segment after the first
// repeats the IP header (with extension headers) and the transport header.
// Sizes are the ones the builder was given: IPv4 20, IPv6 40, dest opts 8,
// TCP with options 32, UDP 8.
std::vector<Row> gso_rows() {
  auto gso = [](uint32_t segs, uint32_t size) {
    return RunOpts{.gso_segs = segs, .gso_size = size};
  };
  constexpr TcpOpts ts{.doff = 8};
  Bytes big_tcp4 = v4({.total_length = 0}).tcp(1234, 80, tf::ack, ts).payload(3000).build();
  Bytes big_tcp6 = v6({.payload_length = 0}).tcp(1234, 80, tf::ack, ts).payload(3000).build();
  CounterValues one_gso = {{TCF_CTR_GSO_FRAMES, 1}};
  return {
      {"TCP over IPv4, 3 segments",
       {{v4().tcp(1234, 80, tf::ack, ts).payload(3000).build(), gso(3, 1000)}},
       {{tcp4(1234, 80), {3, 0}, {20 + 32 + 3000 + 2 * (20 + 32), 0}}},
       one_gso},
      {"TCP over IPv6 with destination options, 2 segments",
       {{v6().ipv6_ext(IPPROTO_DSTOPTS).tcp(1234, 80, tf::ack, ts).payload(2800).build(),
         gso(2, 1400)}},
       {{tcp6(1234, 80), {2, 0}, {40 + 8 + 32 + 2800 + (40 + 8 + 32), 0}}},
       one_gso},
      {"UDP over IPv4, 3 segments",
       {{v4().udp(1000, 2000).payload(2400).build(), gso(3, 800)}},
       {{udp4(1000, 2000), {3, 0}, {20 + 8 + 2400 + 2 * (20 + 8), 0}}},
       one_gso},
      {"UDP over IPv6, 2 segments, length field of one segment",
       {{v6().udp(1000, 2000, 8 + 1000).payload(2000).build(), gso(2, 1000)}},
       {{udp6(1000, 2000), {2, 0}, {40 + 8 + 2000 + (40 + 8), 0}}},
       one_gso},
      {"BIG TCP over IPv4: total length 0",
       {{big_tcp4, gso(3, 1000)}},
       {{tcp4(1234, 80), {3, 0}, {20 + 32 + 3000 + 2 * (20 + 32), 0}}},
       one_gso},
      {"BIG TCP over IPv6: payload length 0, no hop-by-hop",
       {{big_tcp6, gso(3, 1000)}},
       {{tcp6(1234, 80), {3, 0}, {40 + 32 + 3000 + 2 * (40 + 32), 0}}},
       one_gso},
      {"egress super-packet back",
       {{v4_back().tcp(80, 1234, tf::ack, ts).payload(2000).build(),
         {.hook = TCF_HOOK_EGRESS, .gso_segs = 2, .gso_size = 1000}}},
       {{tcp4(1234, 80), {0, 2}, {0, 20 + 32 + 2000 + (20 + 32)}}},
       one_gso},
      {"one segment is one packet",
       {{v4().tcp(1234, 80, tf::ack, ts).payload(1000).build(), gso(1, 1000)}},
       {fwd(tcp4(1234, 80), 20 + 32 + 1000)}},
  };
}

TEST_CASE("GSO/GRO super-packets count their wire segments") { check_rows(gso_rows()); }

} // namespace
