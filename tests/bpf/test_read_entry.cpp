// tcflows_read, the entry `tcflows read` runs captures through: frames
// written into the read_frames array, many counted in one test run. The
// parser and connection rows run through it too when the suite runs with
// TCF_TEST_ENTRY=read (harness.h); these cases are its own.
#include "rows.h"

#include <doctest/doctest.h>
#include <linux/pkt_cls.h>

using namespace tcflows;
using namespace tcflows::test;

namespace {

// Switches the shared harness to the read entry for one test case.
class ReadEntry {
public:
  ReadEntry() : h_(shared_harness()), before_(h_.set_entry(Entry::read)) { h_.reset(); }
  ~ReadEntry() { h_.set_entry(before_); }
  Harness &h() { return h_; }

private:
  Harness &h_;
  Entry before_;
};

TEST_CASE("read entry: frames a test run of the hooks refuses are malformed, not lost") {
  // The kernel refuses these before a hook runs (test_parser.cpp); a
  // capture can hold them, and the read entry counts each with its reason.
  struct Short {
    const char *name;
    Bytes frame;
    tcf_counter reason;
  };
  const Short rows[] = {
      {"13 bytes", Bytes(13, 0), TCF_CTR_MAL_L2},
      {"no bytes", Bytes(), TCF_CTR_MAL_L2},
      {"IPv4 EtherType, 19 bytes", PacketBuilder().eth(mac_a, mac_b, 0x0800).payload(19).build(),
       TCF_CTR_MAL_IPV4},
      {"IPv6 EtherType, 39 bytes", PacketBuilder().eth(mac_a, mac_b, 0x86dd).payload(39).build(),
       TCF_CTR_MAL_IPV6},
  };
  ReadEntry entry;
  for (const Short &row : rows) {
    INFO(std::string(row.name));
    entry.h().reset();
    entry.h().run(row.frame);
    CHECK(entry.h().counters()[TCF_CTR_FRAMES] == 1);
    check_state(entry.h(), {}, malformed(row.reason, row.frame));
  }
}

TEST_CASE("read entry: one run counts a whole batch, each frame at its own time and way") {
  ReadEntry entry;
  Harness &h = entry.h();
  FrameBatch batch(h.program());
  REQUIRE(h.program().read_batch() == TCF_READ_BATCH);
  // A request a -> b and its answer b -> a for each of half a batch of flows.
  const uint16_t flows = TCF_READ_BATCH / 2;
  const size_t request = 10, answer = 300;
  uint64_t t = 5'000'000'000;
  for (uint16_t i = 0; i < flows; i++) {
    batch.add(v4().udp(1000 + i, 53).payload(request).build(), 0, t += 1000, TCF_HOOK_EGRESS,
              test_ifindex);
    batch.add(v4_back().udp(53, 1000 + i).payload(answer).build(), 0, t += 1000, TCF_HOOK_INGRESS,
              test_ifindex);
  }
  REQUIRE(batch.full());
  uint32_t retval = 0;
  REQUIRE(batch.run(&retval) == 0);
  CHECK(int(retval) == TC_ACT_UNSPEC);
  CHECK(batch.empty());
  CHECK(h.counters()[TCF_CTR_FRAMES] == TCF_READ_BATCH);
  std::vector<ExpectedFlow> expected;
  for (uint16_t i = 0; i < flows; i++)
    expected.push_back({udp4(1000 + i, 53), {1, 1}, {28 + request, 28 + answer}});
  check_state(h, expected, {});
  // The clock is each frame's: the first flow began at its request's time
  // and was last seen at its answer's.
  auto first = h.flow(udp4(1000, 53));
  REQUIRE(first.has_value());
  CHECK(first->first_ns == 5'000'001'000);
  CHECK(first->last_ns == 5'000'002'000);
  // And the way is each frame's: the request went out (egress).
  CHECK(first->first == (TCF_DIR_FWD | TCF_FIRST_EGRESS));
}

TEST_CASE("read entry: a frame longer than the array takes counts its whole length") {
  ReadEntry entry;
  Harness &h = entry.h();
  FrameBatch batch(h.program());
  Bytes frame = v4().tcp(1234, 80, tcp_flags::ack).payload(9000 - eth_len - 40).build();
  REQUIRE(frame.size() > TCF_READ_FRAME_BYTES);
  batch.add(frame, uint32_t(frame.size()), 1'000'000'000, TCF_HOOK_INGRESS, test_ifindex);
  REQUIRE(batch.run() == 0);
  check_state(h, {fwd(tcp4(1234, 80), 9000 - eth_len)}, {});
}

} // namespace
