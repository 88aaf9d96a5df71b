// Zeek's view of a connection from seen bits and events: orientation,
// conn_state, history, RTT, ports, uid; and the clock conversion.
#include "keys.h"
#include "track/zeek_state.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <time.h>
#include <vector>

#include <cctype>
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

tcf_flow_val val_of(uint32_t seen, uint8_t first_dir) {
  tcf_flow_val val{};
  val.seen = seen;
  val.first_dir = first_dir;
  return val;
}

struct StateCase {
  const char *state;
  uint8_t orig; // seen bits of the originator
  uint8_t resp;
  bool resp_first; // the responder's packet came first
  const char *history;
};

// Each state from the letters alone (all events lost): the canonical order is
// handshake, originator's ACK and data, responder's ACK and data, FINs
// (originator first), RSTs.
const StateCase state_cases[] = {
    // SYN, no answer.
    {"S0", P | S, 0, false, "S"},
    // Handshake and data both ways, no FIN.
    {"S1", P | S | K | A | D, P | H | K | A | D, false, "ShADad"},
    // ... and FIN both ways.
    {"SF", P | S | K | A | D | F, P | H | K | A | D | F, false, "ShADadFf"},
    // SYN answered by RST/ACK.
    {"REJ", P | S, P | K | R, false, "Sr"},
    // Established, FIN from the originator only.
    {"S2", P | S | K | A | D | F, P | H | K | A | D, false, "ShADadF"},
    // Established, FIN from the responder only.
    {"S3", P | S | K | A | D, P | H | K | A | D | F, false, "ShADadf"},
    // Established, the originator aborts.
    {"RSTO", P | S | K | A | D | R, P | H | K | A | D, false, "ShADadR"},
    // Established, the responder aborts.
    {"RSTR", P | S | K | A | D, P | H | K | A | D | R, false, "ShADadr"},
    // SYN then RST from the originator, nothing back.
    {"RSTOS0", P | S | R, 0, false, "SR"},
    // Only a SYN/ACK and a RST from the responder ('^': its packet came first).
    {"RSTRH", 0, P | H | R, true, "^hr"},
    // SYN then FIN from the originator, nothing back.
    {"SH", P | S | F, 0, false, "SF"},
    // Only a SYN/ACK and a FIN from the responder.
    {"SHR", 0, P | H | F, true, "^hf"},
    // Mid-stream data both ways, no SYN: the client port is the originator.
    {"OTH", P | K | D, P | K | A | D, false, "Dad"},
};

void check_state_case(const StateCase &c, int orig_side) {
  CAPTURE(c.state);
  CAPTURE(orig_side);
  // The originator is a client on an ephemeral port, the responder port 80.
  auto key = orig_side == 0 ? key_of(IPPROTO_TCP, 40000, 80) : key_of(IPPROTO_TCP, 80, 40000);
  uint32_t seen = orig_side == 0 ? seen_of(c.orig, c.resp) : seen_of(c.resp, c.orig);
  uint8_t first_dir = c.resp_first ? 1 - orig_side : orig_side;
  auto o = decide_orientation(key, val_of(seen, first_dir), seen, {});
  CHECK(o.orig == orig_side);
  auto view = zeek_view(key, seen, {}, o);
  CHECK(state_name(view.state) == c.state);
  CHECK(view.history.view() == c.history);
  CHECK_FALSE(view.rtt_ns.has_value()); // no events, no timing
}

} // namespace

TEST_CASE("every TCP conn_state from the seen bits of each direction") {
  for (const auto &c : state_cases) {
    check_state_case(c, 0);
    check_state_case(c, 1);
  }
}

TEST_CASE("timed events order the history; lost ones take their canonical place") {
  auto key = key_of(IPPROTO_TCP, 40000, 80);
  // Client (side 0) opens, sends, the server answers and closes first.
  std::vector<SeenStep> events = {
      {1000, 0, P | S}, {1500, 1, P | H}, {2300, 0, K | A}, {2400, 0, D},
      {2900, 1, K | A}, {3000, 1, D},     {4000, 1, F},     {4100, 0, F},
  };
  uint32_t seen = seen_of(P | S | K | A | D | F, P | H | K | A | D | F);
  Orientation o{0};

  auto all = zeek_view(key, seen, events, o);
  CHECK(all.history.view() == "ShADadfF"); // the server's FIN came first
  CHECK(state_name(all.state) == "SF");
  REQUIRE(all.rtt_ns.has_value());
  CHECK(*all.rtt_ns == 1300); // ACK at 2300 minus SYN at 1000
  CHECK(all.closed_by == CloseReason::fin);

  // The FIN events lost: both FINs go last, originator first.
  std::vector<SeenStep> no_fins(events.begin(), events.end() - 2);
  auto lost = zeek_view(key, seen, no_fins, o);
  CHECK(lost.history.view() == "ShADadFf");
  CHECK(state_name(lost.state) == "SF");
  CHECK(lost.rtt_ns == 1300u);

  // The SYN/ACK event lost: 'h' still between the SYN and the ACK, no RTT.
  std::vector<SeenStep> no_synack = events;
  no_synack.erase(no_synack.begin() + 1);
  auto gap = zeek_view(key, seen, no_synack, o);
  CHECK(gap.history.view() == "ShADadfF");
  CHECK_FALSE(gap.rtt_ns.has_value());
}

TEST_CASE("handshake RTT needs SYN, SYN/ACK and ACK timed and in order") {
  std::vector<SeenStep> steps = {{100, 1, P | S}, {150, 0, P | H}, {400, 1, K | A}};
  CHECK(handshake_rtt(steps, 1) == 300u);
  // An ACK before the SYN/ACK (Zeek's "ACK of the SYN" oddity) is no handshake.
  std::vector<SeenStep> odd = {{100, 1, P | S}, {150, 1, K | A}, {400, 0, P | H}};
  CHECK_FALSE(handshake_rtt(odd, 1).has_value());
  // An untimed SYN.
  std::vector<SeenStep> untimed = {{0, 1, P | S, false}, {150, 0, P | H}, {400, 1, K | A}};
  CHECK_FALSE(handshake_rtt(untimed, 1).has_value());
}

TEST_CASE("closed by FIN both ways or RST, whichever first") {
  std::vector<SeenStep> fin_then_rst = {{1, 0, F}, {2, 1, F}, {3, 0, R}};
  CHECK(closed_by(fin_then_rst) == CloseReason::fin);
  std::vector<SeenStep> rst_first = {{1, 0, F}, {2, 1, R}, {3, 1, F}};
  CHECK(closed_by(rst_first) == CloseReason::rst);
  std::vector<SeenStep> half = {{1, 0, F}};
  CHECK_FALSE(closed_by(half).has_value());
  CHECK(seen_closed(seen_of(F, F)));
  CHECK(seen_closed(seen_of(0, R)));
  CHECK_FALSE(seen_closed(seen_of(F, D)));
}

TEST_CASE("a RST after the FIN exchange keeps SF, Zeek's rule") {
  auto key = key_of(IPPROTO_TCP, 40000, 80);
  std::vector<SeenStep> events = {{1, 0, P | S}, {2, 1, P | H}, {3, 0, K | A},
                                  {4, 0, F},     {5, 1, K | F}, {6, 0, R}};
  auto view = zeek_view(key, seen_of(P | S | K | A | F | R, P | H | K | F), events, {0});
  CHECK(state_name(view.state) == "SF");
  CHECK(view.history.view() == "ShAFfR");
  CHECK(view.closed_by == CloseReason::fin);
}

TEST_CASE("UDP conn_state and history") {
  auto key = key_of(IPPROTO_UDP, 40000, 53);
  CHECK(state_name(zeek_view(key, seen_of(P | D, 0), {}, {0}).state) == "S0");
  auto both = zeek_view(key, seen_of(P | D, P | D), {}, {0});
  CHECK(state_name(both.state) == "SF");
  CHECK(both.history.view() == "Dd");
  // Only the DNS server's packet: the client is the originator and never sent.
  auto reply = zeek_view(key, seen_of(0, P | D), {}, {0, true, true});
  CHECK(state_name(reply.state) == "SHR");
  CHECK(reply.history.view() == "^d");
  // An empty datagram still counts as a packet (Zeek writes 'D' for any).
  CHECK(zeek_view(key, seen_of(P, 0), {}, {0}).history.view() == "D");
}

TEST_CASE("ICMP and other protocols are OTH, as in Zeek") {
  auto echo = key_of(IPPROTO_ICMP, 7, 7, TCF_KIND_ICMP_ECHO);
  auto view = zeek_view(echo, seen_of(P | D, P | D), {}, {0});
  CHECK(state_name(view.state) == "OTH");
  CHECK(view.history.view() == "Dd");
  auto gre = key_of(47, 0, 0, TCF_KIND_IP);
  CHECK(state_name(zeek_view(gre, seen_of(P | D, 0), {}, {0}).state) == "OTH");
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
  auto o = decide_orientation(tcp, val_of(seen_of(0, P | S), 1), seen_of(0, P | S), {});
  CHECK(o.orig == 1);
  CHECK_FALSE(o.guessed);
  CHECK_FALSE(o.flipped);
  // Only a SYN/ACK from side 1 (first packet): side 0 sent the SYN we missed.
  uint32_t synack = seen_of(P | K | A, P | H);
  o = decide_orientation(tcp, val_of(synack, 1), synack, {});
  CHECK(o.orig == 0);
  CHECK_FALSE(o.guessed);
  CHECK(o.flipped);
  // Simultaneous open: the earlier SYN event decides.
  uint32_t both = seen_of(P | S | H, P | S | H);
  std::vector<SeenStep> events = {{20, 0, P | S}, {10, 1, P | S}};
  CHECK(decide_orientation(tcp, val_of(both, 0), both, events).orig == 1);
  // Mid-stream, first packet from port 80: the ephemeral side originated.
  uint32_t mid = seen_of(P | K | D, P | K | A);
  o = decide_orientation(tcp, val_of(mid, 0), mid, {});
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK(o.flipped);
  // Mid-stream between two ephemeral ports: the first sender, guessed.
  auto high = key_of(IPPROTO_TCP, 40000, 50000);
  o = decide_orientation(high, val_of(mid, 1), mid, {});
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK_FALSE(o.flipped);
}

TEST_CASE("originator of ICMP, UDP and portless flows") {
  auto echo = key_of(IPPROTO_ICMP, 7, 7, TCF_KIND_ICMP_ECHO);
  tcf_flow_val val = val_of(seen_of(P, P), 1);
  val.icmp_type = 8; // first packet: an echo request from side 1
  auto o = decide_orientation(echo, val, val.seen, {});
  CHECK(o.orig == 1);
  CHECK_FALSE(o.guessed);
  val.icmp_type = 0; // first packet: an echo reply from side 1
  o = decide_orientation(echo, val, val.seen, {});
  CHECK(o.orig == 0);
  CHECK(o.flipped);
  CHECK_FALSE(o.guessed);

  auto v6 = echo;
  v6.proto = IPPROTO_ICMPV6;
  val.icmp_type = 129; // ICMPv6 echo reply first
  CHECK(decide_orientation(v6, val, val.seen, {}).orig == 0);
  val.icmp_type = 128;
  CHECK(decide_orientation(v6, val, val.seen, {}).orig == 1);

  // A DNS response seen first (side 0 is port 53): the client originated.
  auto dns = key_of(IPPROTO_UDP, 53, 40000);
  o = decide_orientation(dns, val_of(seen_of(P | D, 0), 0), seen_of(P | D, 0), {});
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK(o.flipped);

  auto gre = key_of(47, 0, 0, TCF_KIND_IP);
  o = decide_orientation(gre, val_of(seen_of(0, P), 1), seen_of(0, P), {});
  CHECK(o.orig == 1);
  CHECK(o.guessed);
  CHECK_FALSE(o.flipped);
}

TEST_CASE("record ports: transport ports, ICMP type and code, none for link flows") {
  tcf_flow_val val{};
  auto tcp = key_of(IPPROTO_TCP, 80, 40000);
  CHECK(zeek_ports(tcp, val, 1).src == 40000);
  CHECK(zeek_ports(tcp, val, 1).dst == 80);

  auto echo = key_of(IPPROTO_ICMPV6, 9, 9, TCF_KIND_ICMP_ECHO);
  val.icmp_type = 128;
  CHECK(zeek_ports(echo, val, 0).src == 128);
  CHECK(zeek_ports(echo, val, 0).dst == 0);
  val.icmp_type = 129; // reply seen first: the originator's message is a request
  CHECK(zeek_ports(echo, val, 1).src == 128);
  CHECK(zeek_ports(echo, val, 1).dst == 0);

  auto unreach = key_of(IPPROTO_ICMP, 3 << 8 | 1, 0, TCF_KIND_ICMP);
  val.icmp_type = 3;
  val.icmp_code = 1;
  CHECK(zeek_ports(unreach, val, 0).src == 3);
  CHECK(zeek_ports(unreach, val, 0).dst == 1);

  tcf_flow_key link{};
  link.kind = TCF_KIND_LINK;
  link.port[0] = link.port[1] = 0x4242;
  CHECK(zeek_ports(link, val, 0).src == 0);
  CHECK(zeek_ports(link, val, 0).dst == 0);
}

TEST_CASE("uid: Zeek-like, stable, distinct per connection") {
  auto key = key_of(IPPROTO_TCP, 40000, 80);
  Uid uid = conn_uid(key, 123456789, 0, 7);
  CHECK(uid.view().size() == 18);
  CHECK(uid.view()[0] == 'C');
  for (char c : uid.view())
    CHECK(std::isalnum(static_cast<unsigned char>(c)));
  CHECK(conn_uid(key, 123456789, 0, 7) == uid);
  CHECK(conn_uid(key, 123456789, 1, 7) != uid);
  CHECK(conn_uid(key, 123456790, 0, 7) != uid);
  CHECK(conn_uid(key, 123456789, 0, 8) != uid); // another boot
  auto other = key;
  other.port[0] = 40001;
  CHECK(conn_uid(other, 123456789, 0, 7) != uid);
}

TEST_CASE("uid: the same value on every build, so that restarts and upgrades resume by it") {
  // Computed apart from this code (FNV-1a 64 over key, first_ns, gen and
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
  CHECK(conn_uid(key, 1'700'000'000'123'456'789, 2, 0x1234).view() == "C7mjS6bYyuePoJ28dD");
}

TEST_CASE("uids sort by start time, to the microsecond") {
  auto a = key_of(IPPROTO_TCP, 40000, 80), b = key_of(IPPROTO_UDP, 53, 9999);
  uint64_t second = 1'000'000'000;
  std::vector<Uid> uids{conn_uid(b, 5 * second, 0, 1), conn_uid(a, 5 * second + 1000, 3, 1),
                        conn_uid(b, 86400 * second, 0, 1),
                        conn_uid(a, 3 * 365 * 86400 * second, 0, 1)};
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
    std::vector<SeenStep> events = {{1, 0, P | S}, {2, 1, P | K | A}, {3, 1, H}, {4, 0, K | A}};
    auto view = zeek_view(key, seen_of(P | S | K | A, P | K | A | H), events, {0});
    CHECK(state_name(view.state) == "S1");
    CHECK(view.history.view() == "SahA");
  }
  SUBCASE("the SYN missed: the originator's ACK of the SYN/ACK establishes it") {
    std::vector<SeenStep> events = {{1, 1, P | H}, {2, 0, P | K | A}, {3, 0, D}, {4, 1, K | D}};
    uint32_t seen = seen_of(P | K | A | D, P | H | K | D);
    tcf_flow_val val = val_of(seen, 1);
    auto o = decide_orientation(key, val, seen, events);
    CHECK(o.orig == 0);
    auto view = zeek_view(key, seen, events, o);
    CHECK(state_name(view.state) == "S1");
    CHECK(view.history.view() == "^hADd");
    CHECK_FALSE(view.rtt_ns.has_value());
  }
  SUBCASE("a FIN then RST from the responder, then the originator's FIN: a normal close") {
    std::vector<SeenStep> events = {{1, 0, P | S}, {2, 1, P | H}, {3, 0, K | A},
                                    {4, 1, K | F}, {5, 1, R},     {6, 0, F}};
    auto view = zeek_view(key, seen_of(P | S | K | A | F, P | H | K | F | R), events, {0});
    CHECK(state_name(view.state) == "SF");
    CHECK(view.history.view() == "ShAfrF");
    CHECK(view.closed_by == CloseReason::rst); // the RST came before the FIN exchange completed
  }
  SUBCASE("a RST from the originator after its SYN/ACK-less SYN and data is still RSTOS0") {
    // Zeek's /^\^?S[^HAFGIQ]*R.*/: data ('D') may come between.
    std::vector<SeenStep> events = {{1, 0, P | S | D}, {2, 0, R}};
    auto view = zeek_view(key, seen_of(P | S | D | R, 0), events, {0});
    CHECK(state_name(view.state) == "RSTOS0");
    CHECK(view.history.view() == "SDR");
  }
  SUBCASE("an originator RST after mid-stream traffic is OTH, not RSTOS0") {
    std::vector<SeenStep> events = {{1, 0, P | K | A}, {2, 0, R}};
    auto view = zeek_view(key, seen_of(P | K | A | R, 0), events, {0});
    CHECK(state_name(view.state) == "OTH");
    CHECK(view.history.view() == "AR");
  }
}
