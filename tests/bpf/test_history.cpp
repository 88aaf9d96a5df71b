// What a connection's slot keeps of its history, on the real program: each
// first occurrence of a history letter, in order (marks and order), the
// handshake's time and the first SYN; and the one event, the doorbell.
#include "rows.h"
#include "track/flow.h"
#include "track/zeek_state.h"

#include <doctest/doctest.h>

using namespace tcflows;
using namespace tcflows::test;

namespace {

namespace tf = tcp_flags;

constexpr uint8_t out = TCF_HOOK_EGRESS;
constexpr uint8_t pkt = TCF_SEEN_PKT, syn = TCF_SEEN_SYN, synack = TCF_SEEN_SYNACK,
                  ack = TCF_SEEN_ACK, pure = TCF_SEEN_PUREACK, data = TCF_SEEN_DATA,
                  fin = TCF_SEEN_FIN, rst = TCF_SEEN_RST;

Frame a_to_b(uint8_t flags, size_t payload = 0) {
  return {v4().tcp(1234, 80, flags).payload(payload).build()};
}
Frame b_to_a(uint8_t flags, size_t payload = 0) {
  return {v4_back().tcp(80, 1234, flags).payload(payload).build(), {.hook = out}};
}

// Runs the frames and checks the steps the key's slot replays.
tcf_conn check_steps(Harness &h, const std::vector<Frame> &frames,
                     const std::vector<SeenStep> &expected) {
  h.reset();
  for (const Frame &frame : frames)
    h.run(frame.data, frame.opts);
  auto conn = h.flow(tcp4(1234, 80));
  REQUIRE(conn.has_value());
  Steps steps = conn_steps(conn->marks, conn->order);
  REQUIRE(steps.size() == expected.size());
  for (size_t i = 0; i < expected.size(); i++) {
    INFO("step ", i);
    CHECK(int(steps[i].dir) == expected[i].dir);
    CHECK(int(steps[i].bits) == expected[i].bits);
  }
  return *conn;
}

TEST_CASE("history: each first occurrence of a letter, in order") {
  std::vector<Frame> frames = {
      a_to_b(tf::syn),           b_to_a(tf::syn | tf::ack), a_to_b(tf::ack),
      a_to_b(tf::ack, 100),      a_to_b(tf::ack, 100),      a_to_b(tf::fin | tf::ack),
      b_to_a(tf::fin | tf::ack), a_to_b(tf::ack),           b_to_a(tf::rst),
  };
  check_steps(shared_harness(), frames,
              {{0, pkt | syn},
               {1, pkt | synack},
               {0, ack | pure},
               {0, data},
               {0, fin},
               {1, ack | fin},
               {1, rst}});
}

TEST_CASE("history: data on a FIN, SYN or RST segment is no 'd' (Zeek's rule)") {
  check_steps(shared_harness(),
              {a_to_b(tf::syn, 20), b_to_a(tf::syn | tf::ack), a_to_b(tf::fin | tf::ack, 300),
               b_to_a(tf::rst | tf::ack, 10), b_to_a(tf::ack, 5)},
              {{0, pkt | syn}, {1, pkt | synack}, {0, ack | fin}, {1, ack | rst}, {1, data}});
}

TEST_CASE("history: the first packet's time, the handshake's, the first SYN") {
  Harness &h = shared_harness();
  h.reset();
  h.run(a_to_b(tf::syn).data, {.tstamp = 1'000'000});
  h.run(b_to_a(tf::syn | tf::ack).data, {.hook = out, .tstamp = 1'000'300});
  h.run(a_to_b(tf::ack).data, {.tstamp = 1'000'450});
  h.run(a_to_b(tf::ack, 10).data, {.tstamp = 1'000'900});
  auto conn = h.flow(tcp4(1234, 80));
  REQUIRE(conn.has_value());
  CHECK(conn->first_ns == 1'000'000);
  CHECK(conn->last_ns == 1'000'900);
  CHECK(conn->ack_dt == 450);
  CHECK((conn->first & TCF_FIRST_SYN));
  CHECK(!(conn->first & TCF_FIRST_SYN_DIR));
  CHECK(conn->syn_seq == 1); // the builder's sequence number
}

TEST_CASE("history: a new connection on the key starts its own; the old one keeps its own") {
  Harness &h = shared_harness();
  auto conn = check_steps(h, {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), a_to_b(tf::syn)},
                          {{0, pkt | syn}});
  auto ended = h.ended();
  REQUIRE(ended.size() == 1);
  Steps old = conn_steps(ended[0].val.marks, ended[0].val.order);
  REQUIRE(old.size() == 2);
  CHECK(old[1] == SeenStep{1, pkt | ack | rst});
  CHECK(slot_reason(ended[0].val.state) == TCF_END_REUSED);
  CHECK(conn.pkts[0] == 1);
}

TEST_CASE("doorbell: rung once when free slots run low, counted when lost") {
  ProgramConfig config = test_config();
  config.kernel.bell_below = 8;
  config.ringbuf_bytes = 4096;
  Harness h(config);
  h.reset(20);
  for (uint16_t port = 1; port <= 15; port++)
    h.run(v4().udp(port, 2000).build());
  CHECK(h.doorbells() == 1); // at 7 free, then no more until re-armed
  CHECK(h.counters()[TCF_CTR_DOORBELLS] == 1);
  CHECK(h.table().pool().bell_armed == 0);
  h.table().pool().bell_armed = 1; // what a sweep does
  h.run(v4().udp(16, 2000).build());
  CHECK(h.doorbells() == 1);
  CHECK(h.flows().size() == 16);
}

} // namespace
