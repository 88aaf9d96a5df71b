// Connection lifecycle in the kernel: a SYN after FIN both ways or after RST,
// a SYN with a new ISN after an unanswered SYN or a half-close, or a packet
// after idleness ends the key's connection — its slot becomes ENDED with its
// final counters — and a new one starts in a new slot. When no slot is free,
// nothing is lost silently.
#include "rows.h"
#include "track/flow.h"

#include <bpf/bpf.h>
#include <doctest/doctest.h>

#include <algorithm>

using namespace tcflows;
using namespace tcflows::test;

namespace {

namespace tf = tcp_flags;

Bytes a_to_b(uint8_t flags, size_t payload = 0) {
  return v4().tcp(1234, 80, flags).payload(payload).build();
}
Bytes b_to_a(uint8_t flags, size_t payload = 0) {
  return v4_back().tcp(80, 1234, flags).payload(payload).build();
}

// An ended connection: its key and counters.
struct ExpectedEnd {
  tcf_flow_key key;
  std::array<uint64_t, 2> pkts;
  std::array<uint64_t, 2> bytes;
};

// A sequence of frames and what the table holds afterwards: the key's
// current connection and the ones it ended, oldest first.
struct LifecycleRow {
  std::string name;
  std::vector<Frame> frames;
  ExpectedFlow flow;
  std::vector<ExpectedEnd> ended;
};

void check_ended(const Harness &h, const std::vector<ExpectedEnd> &expected) {
  auto ended = h.ended();
  REQUIRE(ended.size() == expected.size());
  std::sort(ended.begin(), ended.end(),
            [](const SlotEntry &a, const SlotEntry &b) { return a.val.first_ns < b.val.first_ns; });
  for (size_t i = 0; i < expected.size(); i++) {
    const ExpectedEnd &e = expected[i];
    INFO("ended: ", describe(e.key), " #", i);
    CHECK(ended[i].key == e.key);
    CHECK(ended[i].val.pkts[0] == e.pkts[0]);
    CHECK(ended[i].val.pkts[1] == e.pkts[1]);
    CHECK(ended[i].val.bytes[0] == e.bytes[0]);
    CHECK(ended[i].val.bytes[1] == e.bytes[1]);
  }
}

void check_lifecycle(Harness &h, const LifecycleRow &row) {
  INFO("row: ", row.name);
  h.reset();
  for (const Frame &frame : row.frames)
    h.run(frame.data, frame.opts);
  check_state(h, {row.flow}, {});
  REQUIRE(h.flow(row.flow.key).has_value());
  check_ended(h, row.ended);
  CHECK(h.counters()[TCF_CTR_CONNECTIONS] == row.ended.size() + 1);
}

std::vector<LifecycleRow> reuse_rows() {
  const tcf_flow_key key = tcp4(1234, 80);
  std::vector<Frame> closed = {a_to_b(tf::syn),
                               b_to_a(tf::syn | tf::ack),
                               a_to_b(tf::ack),
                               a_to_b(tf::ack | tf::psh, 100),
                               a_to_b(tf::fin | tf::ack),
                               b_to_a(tf::fin | tf::ack),
                               a_to_b(tf::ack)};
  auto then = [](std::vector<Frame> frames, std::vector<Frame> more) {
    frames.insert(frames.end(), more.begin(), more.end());
    return frames;
  };
  auto syn_seq = [](uint32_t seq) { return v4().tcp(1234, 80, tf::syn, {.seq = seq}).build(); };
  return {
      {"SYN after FIN both ways",
       then(closed, {a_to_b(tf::syn)}),
       fwd(key, 40),
       {{key, {5, 2}, {40 + 40 + 140 + 40 + 40, 40 + 40}}}},
      {"SYN after RST from the responder",
       {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), a_to_b(tf::syn)},
       fwd(key, 40),
       {{key, {1, 1}, {40, 40}}}},
      {"SYN after RST from the originator",
       {a_to_b(tf::syn), b_to_a(tf::syn | tf::ack), a_to_b(tf::rst), a_to_b(tf::syn)},
       fwd(key, 40),
       {{key, {2, 1}, {80, 40}}}},
      {"three connections",
       then(then(closed, closed), {a_to_b(tf::syn)}),
       fwd(key, 40),
       {{key, {5, 2}, {300, 80}}, {key, {5, 2}, {300, 80}}}},
      {"SYN retransmission: no split",
       {a_to_b(tf::syn), a_to_b(tf::syn)},
       {key, {2, 0}, {80, 0}},
       {}},
      {"SYN with a new ISN after an unanswered SYN",
       {syn_seq(100), syn_seq(100), syn_seq(9000)},
       fwd(key, 40),
       {{key, {2, 0}, {80, 0}}}},
      {"SYN with the same ISN after FIN one way: no split",
       {a_to_b(tf::syn), b_to_a(tf::syn | tf::ack), a_to_b(tf::fin | tf::ack), a_to_b(tf::syn)},
       {key, {3, 1}, {120, 40}},
       {}},
      {"SYN with a new ISN after FIN one way",
       {syn_seq(100), b_to_a(tf::syn | tf::ack), a_to_b(tf::fin | tf::ack), syn_seq(5000)},
       fwd(key, 40),
       {{key, {2, 1}, {80, 40}}}},
      {"SYN/ACK after RST: no split",
       {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), b_to_a(tf::syn | tf::ack)},
       {key, {1, 2}, {40, 80}},
       {}},
  };
}

TEST_CASE("a SYN after close starts a new connection on the same key") {
  for (const LifecycleRow &row : reuse_rows())
    check_lifecycle(shared_harness(), row);
}

TEST_CASE("the new connection starts from zero with its own first packet") {
  Harness &h = shared_harness();
  h.reset();
  h.run(a_to_b(tf::syn), {.tstamp = 100});
  h.run(b_to_a(tf::rst | tf::ack), {.hook = TCF_HOOK_EGRESS, .tstamp = 200});
  h.run(b_to_a(tf::syn), {.hook = TCF_HOOK_EGRESS, .tstamp = 300});
  auto val = h.flow(tcp4(1234, 80));
  REQUIRE(val.has_value());
  CHECK(val->first_ns == 300);
  CHECK(val->last_ns == 300);
  CHECK((val->first & TCF_FIRST_DIR) == TCF_DIR_REV);
  CHECK((val->first & TCF_FIRST_EGRESS));
  CHECK((val->marks & 0xffff) == uint32_t(TCF_SEEN_PKT | TCF_SEEN_SYN) << 8);
  auto ended = h.ended();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].val.first_ns == 100);
  CHECK(ended[0].val.last_ns == 200);
  CHECK((ended[0].val.marks & 0xffff) ==
        (TCF_SEEN_PKT | TCF_SEEN_SYN | (TCF_SEEN_PKT | TCF_SEEN_ACK | TCF_SEEN_RST) << 8));
}

TEST_CASE("TCP flags are ORed per direction, and a new connection starts without them") {
  Harness &h = shared_harness();
  h.reset();
  h.run(a_to_b(tf::syn));
  h.run(b_to_a(tf::syn | tf::ack), {.hook = TCF_HOOK_EGRESS});
  h.run(a_to_b(tf::ack | tf::psh, 100));
  h.run(a_to_b(tf::fin | tf::ack));
  h.run(b_to_a(tf::rst), {.hook = TCF_HOOK_EGRESS});
  auto val = h.flow(tcp4(1234, 80));
  REQUIRE(val.has_value());
  uint32_t a = tf::syn | tf::ack | tf::psh | tf::fin, b = tf::syn | tf::ack | tf::rst;
  CHECK((val->marks >> 16) == (a | b << 8));

  h.run(a_to_b(tf::syn)); // after the RST: a new connection
  val = h.flow(tcp4(1234, 80));
  REQUIRE(val.has_value());
  CHECK((val->marks >> 16) == tf::syn);
  auto ended = h.ended();
  REQUIRE(ended.size() == 1);
  CHECK((ended[0].val.marks >> 16) == (a | b << 8));
}

// Idle timeouts per class; a packet later than the timeout ends the connection.
constexpr uint64_t sec = 1'000'000'000;

ProgramConfig idle_config() {
  ProgramConfig config = test_config();
  config.kernel.idle_ns[TCF_IDLE_TCP] = 4 * sec;
  config.kernel.idle_ns[TCF_IDLE_UDP] = 1 * sec;
  config.kernel.idle_ns[TCF_IDLE_ICMP] = 2 * sec;
  config.kernel.idle_ns[TCF_IDLE_OTHER] = 3 * sec;
  return config;
}

struct IdleCase {
  const char *name;
  Bytes frame;
  tcf_flow_key key;
  uint64_t timeout;
};

// Two frames `gap` apart: two connections, or one.
LifecycleRow idle_row(const IdleCase &c, uint64_t gap, bool splits) {
  uint64_t bytes = c.frame.size() - (c.key.kind == TCF_KIND_LINK ? 0 : eth_len);
  std::vector<Frame> frames = {{c.frame, {.tstamp = 10 * sec}},
                               {c.frame, {.tstamp = 10 * sec + gap}}};
  if (splits)
    return {c.name, frames, fwd(c.key, bytes), {{c.key, {1, 0}, {bytes, 0}}}};
  return {c.name, frames, {c.key, {2, 0}, {2 * bytes, 0}}, {}};
}

TEST_CASE("idle timeouts end connections, per protocol class") {
  Harness h(idle_config());
  const IdleCase cases[] = {
      {"TCP", a_to_b(tf::ack), tcp4(1234, 80), 4 * sec},
      {"UDP", v4().udp(1000, 2000).build(), udp4(1000, 2000), 1 * sec},
      {"UDP-Lite", v4().udplite(1000, 2000).build(), ip4_key(IPPROTO_UDPLITE, a4, 1000, b4, 2000),
       1 * sec},
      {"ICMP", v4().icmp(8, 0, 3).build(), ip4_key(IPPROTO_ICMP, a4, 3, b4, 3, TCF_KIND_ICMP_ECHO),
       2 * sec},
      {"ICMPv6", v6().icmpv6(128, 0, 3).build(),
       ip6_key(IPPROTO_ICMPV6, a6, 3, b6, 3, TCF_KIND_ICMP_ECHO), 2 * sec},
      {"GRE", v4().gre().build(), ip4_key(IPPROTO_GRE, a4, 0, b4, 0, TCF_KIND_IP), 3 * sec},
      {"ARP", PacketBuilder().eth(mac_a, mac_b).arp("10.0.0.1", "10.0.0.2").build(),
       link_key(mac_a, mac_b, 0x0806), 3 * sec},
  };
  for (const IdleCase &c : cases) {
    check_lifecycle(h, idle_row(c, c.timeout, false));
    check_lifecycle(h, idle_row(c, c.timeout + 1, true));
  }
}

TEST_CASE("idle timeout 0 never ends a connection") {
  check_lifecycle(
      shared_harness(),
      idle_row({"UDP", v4().udp(1000, 2000).build(), udp4(1000, 2000), 0}, 1000 * sec, false));
}

TEST_CASE("no free slot: a new connection is untracked, counted; the old one untouched") {
  Harness &h = shared_harness();
  h.reset(1);
  for (const Bytes &frame : {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), a_to_b(tf::syn, 10)})
    h.run(frame);
  // The SYN after the RST found no slot for the next connection.
  check_state(h, {{tcp4(1234, 80), {1, 1}, {40, 40}}},
              {{TCF_CTR_FLOW_FULL, 1},
               {TCF_CTR_UNTRACKED_PKTS, 1},
               {TCF_CTR_UNTRACKED_BYTES, 50},
               {TCF_CTR_DOORBELLS, 1}}); // rung when the one slot went
  // With a slot given back, the next SYN starts it.
  uint32_t spare = h.table().capacity() - 2; // a slot never used
  h.table().release({&spare, 1});
  h.run(a_to_b(tf::syn));
  check_ended(h, {{tcp4(1234, 80), {1, 1}, {40, 40}}});
  CHECK(h.flow(tcp4(1234, 80))->pkts[0] == 1);
}

TEST_CASE("free slots run out: counted, untracked packets and bytes exact") {
  constexpr uint32_t slots = 16;
  Harness &h = shared_harness();
  h.reset(slots);
  std::vector<ExpectedFlow> tracked;
  for (uint16_t port = 1; port <= slots + 4; port++) {
    h.run(v4().udp(port, 2000).payload(10).build());
    if (port <= slots)
      tracked.push_back(fwd(udp4(port, 2000), 38));
  }
  // A known flow still counts; a new super-packet counts all its segments.
  h.run(v4().udp(1, 2000).payload(10).build());
  tracked[0].pkts[0]++;
  tracked[0].bytes[0] += 38;
  h.run(v4().udp(999, 2000).payload(2400).build(), {.gso_segs = 3, .gso_size = 800});
  check_state(h, tracked,
              {{TCF_CTR_FLOW_FULL, 5},
               {TCF_CTR_UNTRACKED_PKTS, 4 + 3},
               {TCF_CTR_UNTRACKED_BYTES, 4 * 38 + (20 + 8 + 2400) + 2 * (20 + 8)},
               {TCF_CTR_GSO_FRAMES, 1},
               {TCF_CTR_DOORBELLS, 1}}); // rung once, then never re-armed here
}

} // namespace
