// Connection lifecycle in the kernel: a SYN after FIN both ways or
// after RST, or a packet after idleness, ends the entry's connection — its
// counters go to the ended map under {key, gen} — and a new one starts from
// zero. When a map is full, nothing is lost silently.
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

// An ended connection: its key, generation and counters.
struct ExpectedEnd {
  tcf_flow_key key;
  uint32_t gen;
  std::array<uint64_t, 2> pkts;
  std::array<uint64_t, 2> bytes;
};

// A sequence of frames and what the flow and ended maps hold afterwards.
struct LifecycleRow {
  std::string name;
  std::vector<Frame> frames;
  ExpectedFlow flow;
  uint32_t gen; // of the flow entry's current connection
  std::vector<ExpectedEnd> ended;
};

void check_ended(const Harness &h, const std::vector<ExpectedEnd> &expected) {
  auto ended = h.ended();
  REQUIRE(ended.size() == expected.size());
  for (const ExpectedEnd &e : expected) {
    INFO("ended: ", describe(e.key), " gen ", e.gen);
    auto match = std::find_if(ended.begin(), ended.end(), [&](const EndedEntry &entry) {
      return entry.key.flow == e.key && entry.key.gen == e.gen;
    });
    REQUIRE(match != ended.end());
    CHECK(match->val.pkts[0] == e.pkts[0]);
    CHECK(match->val.pkts[1] == e.pkts[1]);
    CHECK(match->val.bytes[0] == e.bytes[0]);
    CHECK(match->val.bytes[1] == e.bytes[1]);
  }
}

// Checks the maps and that one ENDED event was sent per ended connection.
void check_lifecycle(Harness &h, const LifecycleRow &row) {
  INFO("row: ", row.name);
  h.reset();
  for (const Frame &frame : row.frames)
    h.run(frame.data, frame.opts);
  check_state(h, {row.flow}, {});
  auto val = h.flow(row.flow.key);
  REQUIRE(val.has_value());
  CHECK(val->gen == row.gen);
  check_ended(h, row.ended);
  auto events = h.events();
  auto ends = std::count_if(events.begin(), events.end(),
                            [](const tcf_event &e) { return e.type == TCF_EV_ENDED; });
  CHECK(size_t(ends) == row.ended.size());
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
  return {
      {"SYN after FIN both ways",
       then(closed, {a_to_b(tf::syn)}),
       fwd(key, 40),
       1,
       {{key, 0, {5, 2}, {40 + 40 + 140 + 40 + 40, 40 + 40}}}},
      {"SYN after RST from the responder",
       {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), a_to_b(tf::syn)},
       fwd(key, 40),
       1,
       {{key, 0, {1, 1}, {40, 40}}}},
      {"SYN after RST from the originator",
       {a_to_b(tf::syn), b_to_a(tf::syn | tf::ack), a_to_b(tf::rst), a_to_b(tf::syn)},
       fwd(key, 40),
       1,
       {{key, 0, {2, 1}, {80, 40}}}},
      {"three connections",
       then(then(closed, closed), {a_to_b(tf::syn)}),
       fwd(key, 40),
       2,
       {{key, 0, {5, 2}, {300, 80}}, {key, 1, {5, 2}, {300, 80}}}},
      {"SYN retransmission: no split",
       {a_to_b(tf::syn), a_to_b(tf::syn)},
       {key, {2, 0}, {80, 0}},
       0,
       {}},
      {"SYN after FIN one way: no split",
       {a_to_b(tf::syn), b_to_a(tf::syn | tf::ack), a_to_b(tf::fin | tf::ack), a_to_b(tf::syn)},
       {key, {3, 1}, {120, 40}},
       0,
       {}},
      {"SYN/ACK after RST: no split",
       {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), b_to_a(tf::syn | tf::ack)},
       {key, {1, 2}, {40, 80}},
       0,
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
  CHECK(val->first_dir == TCF_DIR_REV);
  CHECK(val->first_hook == TCF_HOOK_EGRESS);
  CHECK(val->seen == uint32_t(TCF_SEEN_PKT | TCF_SEEN_SYN) << 8);
  auto ended = h.ended();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].val.first_ns == 100);
  CHECK(ended[0].val.last_ns == 200);
  CHECK(ended[0].val.seen ==
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
  CHECK(val->tcp_flags == (a | b << 8));

  h.run(a_to_b(tf::syn)); // after the RST: a new connection
  val = h.flow(tcp4(1234, 80));
  REQUIRE(val.has_value());
  CHECK(val->tcp_flags == tf::syn);
  auto ended = h.ended();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].val.tcp_flags == (a | b << 8));
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

// Two frames `gap` apart: split (ended gen 0 + new gen 1) or one connection.
LifecycleRow idle_row(const IdleCase &c, uint64_t gap, bool splits) {
  uint64_t bytes = c.frame.size() - (c.key.kind == TCF_KIND_LINK ? 0 : eth_len);
  std::vector<Frame> frames = {{c.frame, {.tstamp = 10 * sec}},
                               {c.frame, {.tstamp = 10 * sec + gap}}};
  if (splits)
    return {c.name, frames, fwd(c.key, bytes), 1, {{c.key, 0, {1, 0}, {bytes, 0}}}};
  return {c.name, frames, {c.key, {2, 0}, {2 * bytes, 0}}, 0, {}};
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

// Fills the ended map with entries of another key; returns how many fit.
uint32_t fill_ended(Harness &h) {
  tcf_ended_key key{};
  key.flow = udp4(1, 1);
  tcf_flow_val val{};
  int err = 0;
  for (key.gen = 0; !err; key.gen++)
    err = bpf_map_update_elem(h.program().ended_fd(), &key, &val, BPF_NOEXIST);
  REQUIRE(err == -E2BIG);
  return key.gen - 1;
}

TEST_CASE("ended map full: the connections merge, counted, nothing lost") {
  Harness &h = shared_harness();
  h.reset();
  CHECK(fill_ended(h) == ended_capacity(test_config().max_flows));
  for (const Bytes &frame : {a_to_b(tf::syn), b_to_a(tf::rst | tf::ack), a_to_b(tf::syn)})
    h.run(frame);
  check_state(h, {{tcp4(1234, 80), {2, 1}, {80, 40}}}, {{TCF_CTR_SPLIT_FAILED, 1}});
  CHECK(h.flow(tcp4(1234, 80))->gen == 0);
  auto events = h.events(); // NEW_FLOW, SEEN of the RST, and no ENDED
  REQUIRE(events.size() == 2);
  CHECK(events[1].type == TCF_EV_SEEN);

  // Once there is room, the next SYN ends the merged connection whole.
  tcf_ended_key victim{udp4(1, 1), 0, 0};
  REQUIRE(bpf_map_delete_elem(h.program().ended_fd(), &victim) == 0);
  h.run(a_to_b(tf::syn));
  auto ended = h.ended();
  auto merged = std::find_if(ended.begin(), ended.end(),
                             [](const EndedEntry &e) { return e.key.flow == tcp4(1234, 80); });
  REQUIRE(merged != ended.end());
  CHECK(merged->key.gen == 0);
  CHECK(merged->val.pkts[0] == 2);
  CHECK(merged->val.pkts[1] == 1);
  CHECK(h.flow(tcp4(1234, 80))->pkts[0] == 1);
}

TEST_CASE("flow map full: inserts fail, counted, untracked packets and bytes exact") {
  constexpr uint32_t max_flows = 16;
  Harness h(test_config(max_flows));
  std::vector<ExpectedFlow> tracked;
  for (uint16_t port = 1; port <= max_flows + 4; port++) {
    h.run(v4().udp(port, 2000).payload(10).build());
    if (port <= max_flows)
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
               {TCF_CTR_GSO_FRAMES, 1}});
}

} // namespace
