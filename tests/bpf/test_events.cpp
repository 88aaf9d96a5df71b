// Ring-buffer events: a new flow, the first occurrence of each history letter
// per direction, the end of a connection; losses counted, counts unaffected.
#include "rows.h"
#include "track/flow.h"

#include <doctest/doctest.h>

using namespace tcflows;
using namespace tcflows::test;

namespace {

namespace tf = tcp_flags;

struct ExpectedEvent {
  uint8_t type;
  uint8_t dir;
  uint8_t bits;
  uint8_t hook;
  uint32_t gen;
};

constexpr uint8_t in = TCF_HOOK_INGRESS, out = TCF_HOOK_EGRESS;
constexpr uint8_t pkt = TCF_SEEN_PKT, syn = TCF_SEEN_SYN, synack = TCF_SEEN_SYNACK,
                  ack = TCF_SEEN_ACK, pure = TCF_SEEN_PUREACK, data = TCF_SEEN_DATA,
                  fin = TCF_SEEN_FIN, rst = TCF_SEEN_RST;

// Runs the frames (a -> b on ingress, b -> a on egress) and checks the events.
void check_events(Harness &h, const std::vector<Frame> &frames,
                  const std::vector<ExpectedEvent> &expected) {
  h.reset();
  std::vector<uint64_t> times;
  for (const Frame &frame : frames) {
    h.run(frame.data, frame.opts);
    times.push_back(h.clock());
  }
  auto events = h.events();
  REQUIRE(events.size() == expected.size());
  for (size_t i = 0; i < expected.size(); i++) {
    INFO("event ", i);
    const tcf_event &e = events[i];
    CHECK(e.key == tcp4(1234, 80));
    CHECK(int(e.type) == expected[i].type);
    CHECK(int(e.dir) == expected[i].dir);
    CHECK(int(e.bits) == expected[i].bits);
    CHECK(int(e.hook) == expected[i].hook);
    CHECK(e.gen == expected[i].gen);
  }
}

Frame a_to_b(uint8_t flags, size_t payload = 0) {
  return {v4().tcp(1234, 80, flags).payload(payload).build()};
}
Frame b_to_a(uint8_t flags, size_t payload = 0) {
  return {v4_back().tcp(80, 1234, flags).payload(payload).build(), {.hook = out}};
}

TEST_CASE("events: new flow and first occurrences of history letters") {
  std::vector<Frame> frames = {
      a_to_b(tf::syn),           b_to_a(tf::syn | tf::ack), a_to_b(tf::ack),
      a_to_b(tf::ack, 100),      a_to_b(tf::ack, 100),      a_to_b(tf::fin | tf::ack),
      b_to_a(tf::fin | tf::ack), a_to_b(tf::ack),           b_to_a(tf::rst),
  };
  check_events(shared_harness(), frames,
               {{TCF_EV_NEW_FLOW, 0, pkt | syn, in, 0},
                {TCF_EV_SEEN, 1, pkt | synack, out, 0},
                {TCF_EV_SEEN, 0, ack | pure, in, 0},
                {TCF_EV_SEEN, 0, data, in, 0},
                {TCF_EV_SEEN, 0, fin, in, 0},
                {TCF_EV_SEEN, 1, ack | fin, out, 0},
                {TCF_EV_SEEN, 1, rst, out, 0}});
}

TEST_CASE("events: data on a FIN, SYN or RST segment is no 'd' (Zeek's history rule)") {
  check_events(shared_harness(),
               {a_to_b(tf::syn, 20), b_to_a(tf::syn | tf::ack), a_to_b(tf::fin | tf::ack, 300),
                b_to_a(tf::rst | tf::ack, 10), b_to_a(tf::ack, 5)},
               {{TCF_EV_NEW_FLOW, 0, pkt | syn, in, 0},
                {TCF_EV_SEEN, 1, pkt | synack, out, 0},
                {TCF_EV_SEEN, 0, ack | fin, in, 0},
                {TCF_EV_SEEN, 1, ack | rst, out, 0},
                {TCF_EV_SEEN, 1, data, out, 0}});
}

TEST_CASE("events: the end of a connection, then the new one's letters") {
  check_events(shared_harness(), {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), a_to_b(tf::syn)},
               {{TCF_EV_NEW_FLOW, 0, pkt | syn, in, 0},
                {TCF_EV_SEEN, 1, pkt | ack | rst, out, 0},
                {TCF_EV_ENDED, 0, 0, in, 0},
                {TCF_EV_SEEN, 0, pkt | syn, in, 1}});
}

TEST_CASE("events carry the packet clock") {
  Harness &h = shared_harness();
  h.reset();
  h.run(a_to_b(tf::syn).data, {.tstamp = 123'456'789});
  auto events = h.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].ts_ns == 123'456'789);
}

TEST_CASE("a full ring buffer loses events, counted, and no packet") {
  ProgramConfig config = test_config();
  config.ringbuf_bytes = 4096; // room for 56 events of 64 + 8 bytes
  Harness h(config);
  constexpr uint16_t flows = 100;
  std::vector<ExpectedFlow> expected;
  for (uint16_t port = 1; port <= flows; port++) {
    h.run(v4().udp(port, 2000).build());
    expected.push_back(fwd(udp4(port, 2000), 28));
  }
  uint64_t lost = h.counters()[TCF_CTR_RINGBUF_FULL];
  CHECK(lost > 0);
  CHECK(h.events().size() + lost == flows);
  check_state(h, expected, {{TCF_CTR_RINGBUF_FULL, lost}});
}

TEST_CASE("without TCF_CFG_EVENTS nothing is sent and nothing counted lost") {
  ProgramConfig config = test_config();
  config.kernel.flags = TCF_CFG_SKB_TSTAMP;
  config.ringbuf_bytes = 4096;
  Harness h(config);
  for (uint16_t port = 1; port <= 100; port++)
    h.run(v4().udp(port, 2000).build());
  CHECK(h.events().empty());
  CHECK(h.counters()[TCF_CTR_RINGBUF_FULL] == 0);
  CHECK(h.flows().size() == 100);
}

} // namespace
