// Zeek's view of a connection from its steps (first occurrences in order):
// orientation, conn_state, history, RTT, ports, uid; the steps a slot's
// marks and order give; and the clock conversion.
#include "keys.h"
#include "track/zeek_state.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

using namespace tcflows;

namespace {

constexpr uint8_t P = TCF_SEEN_PKT, S = TCF_SEEN_SYN, H = TCF_SEEN_SYNACK, K = TCF_SEEN_ACK,
                  A = TCF_SEEN_PUREACK, D = TCF_SEEN_DATA, F = TCF_SEEN_FIN, R = TCF_SEEN_RST;

// Side 0 is 10.0.0.1, the lower address: the key is canonical as built.
tcf_flow_key key_of(uint8_t proto, uint16_t port0, uint16_t port1, uint8_t kind = TCF_KIND_PORTS) {
  return fake::v4("10.0.0.1", port0, "10.0.0.2", port1, proto, kind);
}

uint32_t seen_of(uint8_t side0, uint8_t side1) { return side0 | uint32_t(side1) << 8; }

Steps steps_of(std::initializer_list<SeenStep> list) {
  Steps steps;
  for (const auto &step : list)
    steps.push_back(step);
  return steps;
}

// What the program writes for these steps: each bit's rank in `order`.
std::pair<uint32_t, uint64_t> encode(const Steps &steps) {
  uint32_t marks = 0;
  uint64_t order = 0;
  for (const auto &step : steps) {
    uint64_t rank = __builtin_popcount(marks);
    for (int b = 0; b < 8; b++)
      if (step.bits & (1u << b)) {
        order |= rank << (4 * (8 * step.dir + b));
        marks |= 1u << (8 * step.dir + b);
      }
  }
  return {marks, order};
}

std::string text(const History &h) { return std::string(h.view()); }

struct StateCase {
  const char *state;
  // Steps with dir 0 for the originator, 1 for the responder.
  std::vector<SeenStep> steps;
  const char *history;
};

const std::vector<SeenStep> handshake_and_data = {{0, P | S}, {1, P | H}, {0, K | A},
                                                  {0, D},     {1, K | A}, {1, D}};

std::vector<SeenStep> plus(std::vector<SeenStep> steps, std::vector<SeenStep> more) {
  steps.insert(steps.end(), more.begin(), more.end());
  return steps;
}

const StateCase state_cases[] = {
    {"S0", {{0, P | S}}, "S"},
    {"S1", handshake_and_data, "ShADad"},
    {"SF", plus(handshake_and_data, {{0, F}, {1, F}}), "ShADadFf"},
    {"REJ", {{0, P | S}, {1, P | K | R}}, "Sr"},
    {"S2", plus(handshake_and_data, {{0, F}}), "ShADadF"},
    {"S3", plus(handshake_and_data, {{1, F}}), "ShADadf"},
    {"RSTO", plus(handshake_and_data, {{0, R}}), "ShADadR"},
    {"RSTR", plus(handshake_and_data, {{1, R}}), "ShADadr"},
    {"RSTOS0", {{0, P | S}, {0, R}}, "SR"},
    // Only a SYN/ACK and a RST from the responder ('^': its packet came first).
    {"RSTRH", {{1, P | H}, {1, R}}, "^hr"},
    {"SH", {{0, P | S}, {0, F}}, "SF"},
    {"SHR", {{1, P | H}, {1, F}}, "^hf"},
    // Mid-stream data both ways, no SYN: the client port is the originator.
    {"OTH", {{0, P | K | D}, {1, P | K | A | D}}, "Dad"},
};

void check_state_case(const StateCase &c, int orig_side) {
  CAPTURE(c.state);
  CAPTURE(orig_side);
  // The originator is a client on an ephemeral port, the responder port 80.
  auto key = orig_side == 0 ? key_of(IPPROTO_TCP, 40000, 80) : key_of(IPPROTO_TCP, 80, 40000);
  Steps steps;
  for (const auto &step : c.steps)
    steps.push_back({uint8_t(step.dir == 0 ? orig_side : 1 - orig_side), step.bits});
  auto o = decide_orientation(key, steps[0].dir, 0, steps);
  CHECK(o.orig == orig_side);
  auto view = zeek_view(key, steps, o);
  CHECK(state_name(view.state) == c.state);
  CHECK(text(view.history) == c.history);
}

} // namespace

TEST_CASE("every TCP conn_state from the seen bits of each direction") {
  for (const auto &c : state_cases) {
    check_state_case(c, 0);
    check_state_case(c, 1);
  }
}

TEST_CASE("the steps a slot's marks and order replay") {
  Steps steps = steps_of(
      {{0, P | S}, {1, P | H}, {0, K | A}, {0, D}, {1, K | A | D}, {1, F}, {0, F}, {0, R}});
  auto [marks, order] = encode(steps);
  Steps back = conn_steps(marks, order);
  REQUIRE(back.size() == steps.size());
  for (size_t i = 0; i < steps.size(); i++)
    CHECK(back[i] == steps[i]);
  auto view = zeek_view(key_of(IPPROTO_TCP, 40000, 80), back, {0});
  CHECK(text(view.history) == "ShADadfFR"); // the server's FIN came first
  CHECK(view.state == ConnState::SF);
  CHECK(view.closed_by == CloseReason::fin);
  CHECK(steps_seen(back) == marks);
}

TEST_CASE("a connection whose first packets landed in another slot: steps joined") {
  Steps earlier = steps_of({{0, P | S}, {1, P | H}});
  Steps later = steps_of({{1, P | H}, {0, P | K | A}, {0, D}, {1, P | K | D}});
  Steps joined = join_steps(earlier, later);
  REQUIRE(joined.size() == 5);
  CHECK(joined[2] == SeenStep{0, K | A}); // its first packet came with the SYN
  CHECK(joined[4] == SeenStep{1, K | D});
  CHECK(text(zeek_view(key_of(IPPROTO_TCP, 40000, 80), joined, {0}).history) == "ShADd");
}

TEST_CASE("handshake RTT: the SYN first, the SYN/ACK, then the originator's ACK") {
  Steps steps = steps_of({{1, P | S}, {0, P | H}, {1, K | A}});
  CHECK(handshake_rtt(steps, 1, 300) == 300u);
  CHECK_FALSE(handshake_rtt(steps, 1, 0).has_value());          // no completing ACK timed
  CHECK_FALSE(handshake_rtt(steps, 1, UINT32_MAX).has_value()); // later than 4.29 s
  // An ACK before the SYN/ACK (Zeek's "ACK of the SYN" oddity) is no handshake.
  Steps odd = steps_of({{1, P | S}, {1, K | A}, {0, P | H}});
  CHECK_FALSE(handshake_rtt(odd, 1, 300).has_value());
  // Seen from the middle: the SYN was not the first packet.
  Steps mid = steps_of({{0, P | D}, {1, P | S}, {0, H}, {1, K | A}});
  CHECK_FALSE(handshake_rtt(mid, 1, 300).has_value());
}

TEST_CASE("closed by FIN both ways or RST, whichever first") {
  CHECK(closed_by(steps_of({{0, F}, {1, F}, {0, R}})) == CloseReason::fin);
  CHECK(closed_by(steps_of({{0, F}, {1, R}, {1, F}})) == CloseReason::rst);
  CHECK_FALSE(closed_by(steps_of({{0, F}})).has_value());
  CHECK(seen_closed(seen_of(F, F)));
  CHECK(seen_closed(seen_of(0, R)));
  CHECK_FALSE(seen_closed(seen_of(F, D)));
}

TEST_CASE("a RST after the FIN exchange keeps SF, Zeek's rule") {
  auto key = key_of(IPPROTO_TCP, 40000, 80);
  Steps steps = steps_of({{0, P | S}, {1, P | H}, {0, K | A}, {0, F}, {1, K | F}, {0, R}});
  auto view = zeek_view(key, steps, {0});
  CHECK(view.state == ConnState::SF);
  CHECK(text(view.history) == "ShAFfR");
  CHECK(view.closed_by == CloseReason::fin);
}

TEST_CASE("UDP conn_state and history") {
  auto key = key_of(IPPROTO_UDP, 40000, 53);
  CHECK(zeek_view(key, steps_of({{0, P | D}}), {0}).state == ConnState::S0);
  auto both = zeek_view(key, steps_of({{0, P | D}, {1, P | D}}), {0});
  CHECK(both.state == ConnState::SF);
  CHECK(text(both.history) == "Dd");
  // Only the DNS server's packet: the client is the originator and never sent.
  auto reply = zeek_view(key, steps_of({{1, P | D}}), {0, true, true});
  CHECK(reply.state == ConnState::SHR);
  CHECK(text(reply.history) == "^d");
  // An empty datagram still counts as a packet (Zeek writes 'D' for any).
  CHECK(text(zeek_view(key, steps_of({{0, P}}), {0}).history) == "D");
}

TEST_CASE("ICMP and other protocols are OTH, as in Zeek") {
  auto echo = key_of(IPPROTO_ICMP, 7, 7, TCF_KIND_ICMP_ECHO);
  auto view = zeek_view(echo, steps_of({{0, P | D}, {1, P | D}}), {0});
  CHECK(view.state == ConnState::OTH);
  CHECK(text(view.history) == "Dd");
  auto gre = key_of(47, 0, 0, TCF_KIND_IP);
  CHECK(zeek_view(gre, steps_of({{0, P | D}}), {0}).state == ConnState::OTH);
}

TEST_CASE("port heuristic: which side looks like the server") {
  CHECK(likely_server_side(40000, 80) == 1);
  CHECK(likely_server_side(80, 40000) == 0);
  CHECK(likely_server_side(1023, 1024) == 0);  // 1023 is well known, 1024 not
  CHECK(likely_server_side(8080, 50000) == 0); // registered against ephemeral
  CHECK(likely_server_side(50000, 5432) == 1);
  CHECK(likely_server_side(32767, 32768) == 0);  // ephemeral from 32768
  CHECK(likely_server_side(40000, 50000) == -1); // both ephemeral
  CHECK(likely_server_side(8080, 9090) == -1);   // both registered
  CHECK(likely_server_side(22, 80) == -1);       // both well known
  CHECK(likely_server_side(123, 123) == -1);
}

TEST_CASE("originator: SYN sender, SYN/ACK peer, echo requester, else ports") {
  auto tcp = key_of(IPPROTO_TCP, 80, 40000);
  // SYN from side 1: it originated, whatever the ports say.
  auto o = decide_orientation(tcp, 1, 0, steps_of({{1, P | S}}));
  CHECK(o.orig == 1);
  CHECK_FALSE(o.guessed);
  CHECK_FALSE(o.flipped);
  // Only a SYN/ACK from side 1 (first packet): side 0 sent the SYN we missed.
  o = decide_orientation(tcp, 1, 0, steps_of({{1, P | H}, {0, P | K | A}}));
  CHECK(o.orig == 0);
  CHECK_FALSE(o.guessed);
  CHECK(o.flipped);
  // Simultaneous open: the first SYN decides.
  o = decide_orientation(tcp, 1, 0, steps_of({{1, P | S}, {0, P | S}, {1, H}, {0, H}}));
  CHECK(o.orig == 1);
  // Mid-stream, first packet from port 80: the ephemeral side originated.
  Steps mid = steps_of({{0, P | K | D}, {1, P | K | A}});
  o = decide_orientation(tcp, 0, 0, mid);
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK(o.flipped);
  // Mid-stream between two ephemeral ports: the first sender, guessed.
  auto high = key_of(IPPROTO_TCP, 40000, 50000);
  o = decide_orientation(high, 1, 0, steps_of({{1, P | K | D}, {0, P | K | A}}));
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK_FALSE(o.flipped);
}

TEST_CASE("originator of ICMP, UDP and portless flows") {
  auto echo = key_of(IPPROTO_ICMP, 7, 7, TCF_KIND_ICMP_ECHO);
  Steps both = steps_of({{1, P}, {0, P}});
  auto o = decide_orientation(echo, 1, 8, both); // first: an echo request from side 1
  CHECK(o.orig == 1);
  CHECK_FALSE(o.guessed);
  o = decide_orientation(echo, 1, 0, both); // first: an echo reply from side 1
  CHECK(o.orig == 0);
  CHECK(o.flipped);
  CHECK_FALSE(o.guessed);

  auto v6 = echo;
  v6.proto = IPPROTO_ICMPV6;
  CHECK(decide_orientation(v6, 1, 129, both).orig == 0);
  CHECK(decide_orientation(v6, 1, 128, both).orig == 1);

  // A DNS response seen first (side 0 is port 53): the client originated.
  auto dns = key_of(IPPROTO_UDP, 53, 40000);
  o = decide_orientation(dns, 0, 0, steps_of({{0, P | D}}));
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK(o.flipped);

  auto gre = key_of(47, 0, 0, TCF_KIND_IP);
  o = decide_orientation(gre, 1, 0, steps_of({{1, P}}));
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK_FALSE(o.flipped);
}

TEST_CASE("record ports: transport ports, ICMP type and code, none for link flows") {
  auto tcp = key_of(IPPROTO_TCP, 80, 40000);
  CHECK(zeek_ports(tcp, 0, 0, 1).src == 40000);
  CHECK(zeek_ports(tcp, 0, 0, 1).dst == 80);

  auto echo = key_of(IPPROTO_ICMPV6, 9, 9, TCF_KIND_ICMP_ECHO);
  CHECK(zeek_ports(echo, 128, 0, 0).src == 128);
  CHECK(zeek_ports(echo, 128, 0, 0).dst == 0);
  // A reply seen first: the originator's message is a request.
  CHECK(zeek_ports(echo, 129, 0, 1).src == 128);
  CHECK(zeek_ports(echo, 129, 0, 1).dst == 0);

  auto unreach = key_of(IPPROTO_ICMP, 3 << 8 | 1, 0, TCF_KIND_ICMP);
  CHECK(zeek_ports(unreach, 3, 1, 0).src == 3);
  CHECK(zeek_ports(unreach, 3, 1, 0).dst == 1);

  tcf_flow_key link{};
  link.kind = TCF_KIND_LINK;
  link.port[0] = link.port[1] = 0x4242;
  CHECK(zeek_ports(link, 3, 1, 0).src == 0);
  CHECK(zeek_ports(link, 3, 1, 0).dst == 0);
}

TEST_CASE("uid: Zeek-like, stable, distinct per connection") {
  auto key = key_of(IPPROTO_TCP, 40000, 80);
  Uid uid = conn_uid(key, 123456789, 7);
  CHECK(uid.view().size() == 18);
  CHECK(uid.view()[0] == 'C');
  for (char c : uid.view())
    CHECK(std::isalnum(static_cast<unsigned char>(c)));
  CHECK(conn_uid(key, 123456789, 7) == uid);
  CHECK(!(conn_uid(key, 123456790, 7) == uid));
  CHECK(!(conn_uid(key, 123456789, 8) == uid)); // another boot
  auto other = key;
  other.port[0] = 40001;
  CHECK(!(conn_uid(other, 123456789, 7) == uid));
}

TEST_CASE("uid: the same value on every build, so that restarts and upgrades resume by it") {
  // Computed apart from this code (FNV-1a 64 over the key, first_ns and the
  // salt in memory order, the splitmix64 finalizer, base62), from the
  // algorithm conn_uid() documents.
  tcf_flow_key key{};
  key.addr[0][0] = htonl(0x0a000001);
  key.addr[1][0] = htonl(0x0a000002);
  key.port[0] = 40000;
  key.port[1] = 80;
  key.ifindex = 3;
  key.ethertype = ETH_P_IP;
  key.proto = IPPROTO_TCP;
  CHECK(conn_uid(key, 1'700'000'000'123'456'789, 0x1234).view() == "C7mjS6bYyui7goTz0x");
}

TEST_CASE("uids sort by start time, to the microsecond") {
  auto a = key_of(IPPROTO_TCP, 40000, 80), b = key_of(IPPROTO_UDP, 53, 9999);
  uint64_t second = 1'000'000'000;
  std::vector<std::string> uids;
  for (auto [key, t] : {std::pair{b, 5 * second},
                        {a, 5 * second + 1000},
                        {b, 86400 * second},
                        {a, 3 * 365 * 86400 * second}})
    uids.emplace_back(conn_uid(key, t, 1).view());
  CHECK(std::is_sorted(uids.begin(), uids.end()));
}

TEST_CASE("boot clock to epoch") {
  CHECK(boot_to_epoch(1'000, 5'000) == 6'000);
  CHECK(boot_to_epoch(10'000, -4'000) == 6'000);
  CHECK(boot_to_epoch(1'000, -4'000) == 0);
  // A realistic offset: booted an hour before 2026-01-01T00:00:00Z.
  int64_t offset = 1'767'225'600'000'000'000 - 3'600'000'000'000;
  CHECK(boot_to_epoch(3'600'000'000'000 + 42, offset) == 1'767'225'600'000'000'042u);
}

TEST_CASE("measured offset lies between bracketing clock readings") {
  auto read = [](clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  };
  int64_t boot_before = read(CLOCK_BOOTTIME);
  int64_t real_before = read(CLOCK_REALTIME);
  int64_t offset = measure_boot_to_epoch_ns();
  int64_t real_after = read(CLOCK_REALTIME);
  int64_t boot_after = read(CLOCK_BOOTTIME);
  // realtime - boottime at any instant in between is within these bounds.
  CHECK(offset >= real_before - boot_after);
  CHECK(offset <= real_after - boot_before);
}

TEST_CASE("Zeek's special cases of the TCP state machine") {
  auto key = key_of(IPPROTO_TCP, 40000, 80);
  SUBCASE("an ACK of the SYN ahead of the SYN/ACK is no partial connection") {
    auto view = zeek_view(key, steps_of({{0, P | S}, {1, P | K | A}, {1, H}, {0, K | A}}), {0});
    CHECK(view.state == ConnState::S1);
    CHECK(text(view.history) == "SahA");
  }
  SUBCASE("the SYN missed: the originator's ACK of the SYN/ACK establishes it") {
    Steps steps = steps_of({{1, P | H}, {0, P | K | A}, {0, D}, {1, K | D}});
    auto o = decide_orientation(key, 1, 0, steps);
    CHECK(o.orig == 0);
    auto view = zeek_view(key, steps, o);
    CHECK(view.state == ConnState::S1);
    CHECK(text(view.history) == "^hADd");
  }
  SUBCASE("a FIN then RST from the responder, then the originator's FIN: a normal close") {
    auto view = zeek_view(
        key, steps_of({{0, P | S}, {1, P | H}, {0, K | A}, {1, K | F}, {1, R}, {0, F}}), {0});
    CHECK(view.state == ConnState::SF);
    CHECK(text(view.history) == "ShAfrF");
    CHECK(view.closed_by == CloseReason::rst); // the RST came before the FIN exchange completed
  }
  SUBCASE("a RST from the originator after its SYN/ACK-less SYN and data is still RSTOS0") {
    // Zeek's /^\^?S[^HAFGIQ]*R.*/: data ('D') may come between.
    auto view = zeek_view(key, steps_of({{0, P | S | D}, {0, R}}), {0});
    CHECK(view.state == ConnState::RSTOS0);
    CHECK(text(view.history) == "SDR");
  }
  SUBCASE("an originator RST after mid-stream traffic is OTH, not RSTOS0") {
    auto view = zeek_view(key, steps_of({{0, P | K | A}, {0, R}}), {0});
    CHECK(view.state == ConnState::OTH);
    CHECK(text(view.history) == "AR");
  }
}
