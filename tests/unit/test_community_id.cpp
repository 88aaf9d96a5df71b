// Community ID v1 against the specification's own values: the baselines it
// ships with its captures (tests/community_id, seeds 0 and 1), each flow's
// tuple hashed here and compared with the value the reference computed.
#include "track/community_id.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

using namespace tcflows;

namespace {

std::vector<uint8_t> address(const std::string &text) {
  uint8_t bytes[16];
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1)
    return {bytes, bytes + 4};
  REQUIRE(inet_pton(AF_INET6, text.c_str(), bytes) == 1);
  return {bytes, bytes + 16};
}

// A baseline entry as our tuple. ICMP entries give the ports the spec maps
// a message to: a type with a counterpart is followed by that counterpart,
// any other by its code and hashed one way.
CommunityTuple tuple_of(const nlohmann::json &e, const std::vector<uint8_t> &src,
                        const std::vector<uint8_t> &dst) {
  CommunityTuple t{src, dst, e["proto"].get<uint8_t>()};
  if (e["sport"].is_null())
    return t;
  t.has_ports = true;
  t.src_port = e["sport"].get<uint16_t>();
  t.dst_port = e["dport"].get<uint16_t>();
  if (t.proto == IPPROTO_ICMP || t.proto == IPPROTO_ICMPV6) {
    IcmpPorts p = icmp_ports(t.proto == IPPROTO_ICMPV6, uint8_t(t.src_port), uint8_t(t.dst_port));
    t.one_way = p.one_way;
  }
  return t;
}

void check_baseline(const std::string &file, uint16_t seed) {
  std::ifstream in(std::string(TCF_COMMUNITY_ID_DIR) + "/" + file);
  REQUIRE(in.good());
  auto entries = nlohmann::json::parse(in);
  REQUIRE(entries.size() >= 20);
  for (const auto &e : entries) {
    auto src = address(e["saddr"]), dst = address(e["daddr"]);
    INFO(e.dump());
    CHECK(community_id_text(community_id(tuple_of(e, src, dst), seed)) ==
          e["communityid"].get<std::string>());
  }
}

ConnRecord v4_record(uint8_t proto, uint8_t kind, const char *orig, uint16_t orig_port,
                     const char *resp, uint16_t resp_port) {
  ConnRecord r;
  r.key.ethertype = ETH_P_IP;
  r.key.proto = proto;
  r.key.kind = kind;
  // The key's lower endpoint is not always the originator: put it second.
  inet_pton(AF_INET, orig, &r.key.addr[1][0]);
  inet_pton(AF_INET, resp, &r.key.addr[0][0]);
  r.orig = 1;
  r.src_port = orig_port;
  r.dst_port = resp_port;
  return r;
}

std::string text_of(const ConnRecord &r, uint16_t seed = 0) {
  auto id = community_id(r, seed);
  return id ? community_id_text(*id) : "";
}

} // namespace

TEST_CASE("community id: the specification's baseline, seed 0") {
  check_baseline("baseline_deflt.json", 0);
}

TEST_CASE("community id: the specification's baseline, seed 1") {
  check_baseline("baseline_seed1.json", 1);
}

TEST_CASE("community id of records: originator first, ICMP mapped, link flows none") {
  // The spec's tcp.pcap and udp.pcap flows, and icmp.pcap's echo.
  auto tcp = v4_record(IPPROTO_TCP, TCF_KIND_PORTS, "128.232.110.120", 34855, "66.35.250.204", 80);
  CHECK(text_of(tcp) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
  auto udp = v4_record(IPPROTO_UDP, TCF_KIND_PORTS, "192.168.1.52", 54585, "8.8.8.8", 53);
  CHECK(text_of(udp) == "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
  auto echo = v4_record(IPPROTO_ICMP, TCF_KIND_ICMP_ECHO, "192.168.0.89", 8, "192.168.0.1", 0);
  CHECK(text_of(echo) == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
  auto rsvp = v4_record(46, TCF_KIND_IP, "10.1.12.1", 0, "10.1.12.2", 0);
  CHECK(text_of(rsvp) == "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=");
  // Time exceeded has no counterpart: hashed one way, sender first.
  auto exceeded = v4_record(IPPROTO_ICMP, TCF_KIND_ICMP, "10.0.0.1", 11, "10.0.0.2", 0);
  CHECK(text_of(exceeded) == "1:YHxtAirCG//0OzkcVAukqKQN9xM=");
  ConnRecord arp;
  arp.key.kind = TCF_KIND_LINK;
  CHECK(!community_id(arp, 0));
}

TEST_CASE("community id: the seed changes it") {
  auto tcp = v4_record(IPPROTO_TCP, TCF_KIND_PORTS, "128.232.110.120", 34855, "66.35.250.204", 80);
  CHECK(text_of(tcp, 1) != text_of(tcp, 0));
  CHECK(text_of(tcp, 0).size() == 30); // "1:" and 28 base64 characters
}
