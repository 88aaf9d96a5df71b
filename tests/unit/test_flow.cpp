#include "track/flow.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <cstring>

using namespace tcflows;

namespace {

tcf_flow_key v4_key(const char *a, uint16_t pa, const char *b, uint16_t pb, uint8_t proto) {
  tcf_flow_key key{};
  inet_pton(AF_INET, a, &key.addr[0][0]);
  inet_pton(AF_INET, b, &key.addr[1][0]);
  key.port[0] = pa;
  key.port[1] = pb;
  key.ethertype = ETH_P_IP;
  key.proto = proto;
  key.kind = TCF_KIND_PORTS;
  return key;
}

} // namespace

TEST_CASE("canonicalise orders endpoints numerically and reports direction") {
  auto key = v4_key("216.58.215.142", 443, "10.0.2.15", 56604, IPPROTO_TCP);
  CHECK(canonicalise(key) == TCF_DIR_REV);
  CHECK(addr_text(key, 0) == "10.0.2.15");
  CHECK(key.port[0] == 56604);
  CHECK(canonicalise(key) == TCF_DIR_FWD); // idempotent

  auto reverse = v4_key("10.0.2.15", 56604, "216.58.215.142", 443, IPPROTO_TCP);
  CHECK(canonicalise(reverse) == TCF_DIR_FWD);
  CHECK(reverse == key);
}

TEST_CASE("canonicalise breaks address ties by port") {
  auto key = v4_key("127.0.0.1", 5000, "127.0.0.1", 80, IPPROTO_TCP);
  CHECK(canonicalise(key) == TCF_DIR_REV);
  CHECK(key.port[0] == 80);
}

TEST_CASE("endpoints and protocol names") {
  auto key = v4_key("10.0.2.3", 53, "10.0.2.15", 38055, IPPROTO_UDP);
  CHECK(proto_name(key) == "UDP");
  CHECK(endpoint_text(key, 0) == "10.0.2.3:53");

  tcf_flow_key v6{};
  inet_pton(AF_INET6, "2001:db8:0:0:1:0:0:1", v6.addr[0]);
  v6.port[0] = 443;
  v6.ethertype = ETH_P_IPV6;
  v6.proto = IPPROTO_TCP;
  CHECK(endpoint_text(v6, 0) == "[2001:db8::1:0:0:1]:443"); // RFC 5952
  v6.proto = 47;
  v6.kind = TCF_KIND_IP;
  CHECK(proto_name(v6) == "47");
  CHECK(endpoint_text(v6, 0) == "2001:db8::1:0:0:1");
}

TEST_CASE("link-layer flows are named by type, addressed by MAC") {
  tcf_flow_key key{};
  key.kind = TCF_KIND_LINK;
  key.ethertype = ETH_P_ARP;
  const uint8_t mac[6] = {0x02, 0xfc, 0x00, 0x00, 0x00, 0x01};
  std::memcpy(key.addr[0], mac, 6);
  CHECK(proto_name(key) == "ARP");
  CHECK(endpoint_text(key, 0) == "02:fc:00:00:00:01");
  key.ethertype = 0x88b5;
  CHECK(proto_name(key) == "0x88b5");
  key.ethertype = TCF_ETH_LLC;
  key.port[0] = key.port[1] = 0x4242;
  CHECK(proto_name(key) == "STP");
  key.port[0] = key.port[1] = 0xaaaa;
  key.ethertype = 0x2000;
  CHECK(proto_name(key) == "CDP");
}
