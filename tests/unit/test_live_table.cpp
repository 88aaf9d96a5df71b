#include "sinks/live_table.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

using namespace tcflows;

namespace {

FlowEntry entry(const char *a, uint16_t pa, const char *b, uint16_t pb, uint8_t proto,
                uint64_t fwd_pkts, uint64_t fwd_bytes, uint64_t rev_pkts, uint64_t rev_bytes) {
  FlowEntry e{};
  inet_pton(AF_INET, a, &e.key.addr[0][0]);
  inet_pton(AF_INET, b, &e.key.addr[1][0]);
  e.key.port[0] = pa;
  e.key.port[1] = pb;
  e.key.ethertype = ETH_P_IP;
  e.key.proto = proto;
  e.key.ifindex = 1;
  e.val.pkts[0] = fwd_pkts;
  e.val.bytes[0] = fwd_bytes;
  e.val.pkts[1] = rev_pkts;
  e.val.bytes[1] = rev_bytes;
  return e;
}

const std::vector<FlowEntry> flows = {
    entry("10.0.2.3", 53, "10.0.2.15", 38055, IPPROTO_UDP, 1, 154, 1, 154),
    entry("10.0.2.15", 56604, "216.58.215.142", 443, IPPROTO_TCP, 3900, 210000, 7688, 135456522),
};

std::string name_of(uint32_t ifindex) { return "if" + std::to_string(ifindex); }

} // namespace

TEST_CASE("direction rows: one per direction with traffic, largest first") {
  auto rows = direction_rows(flows);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].bytes == 135456522);
  CHECK(rows[0].dir == TCF_DIR_REV);
  CHECK(rows[1].bytes == 210000);
  auto quiet = flows;
  quiet[0].val.pkts[1] = quiet[0].val.bytes[1] = 0;
  CHECK(direction_rows(quiet).size() == 3);
}

TEST_CASE("the table looks like the original's") {
  Status status;
  status.flows = 2;
  status.max_flows = 65536;
  std::string table = format_table(direction_rows(flows), 2, false, status, name_of);
  CHECK(table.find("PROTOCOL SOURCE") == 0);
  CHECK(table.find("TCP      216.58.215.142:443 10.0.2.15:56604    7688    129.18 MiB\n") !=
        std::string::npos);
  CHECK(table.find("UDP") == std::string::npos); // --top 2
  CHECK(table.find("flows 2/65536") != std::string::npos);
}

TEST_CASE("json snapshot carries exact numbers") {
  Status status;
  status.flows = 2;
  status.max_flows = 65536;
  status.counters[TCF_CTR_MALFORMED] = 7;
  auto line = format_json(42, direction_rows(flows), 100, status, name_of);
  auto json = nlohmann::json::parse(line);
  CHECK(json["ts_ns"] == 42);
  REQUIRE(json["flows"].size() == 4);
  CHECK(json["flows"][0]["src_addr"] == "216.58.215.142");
  CHECK(json["flows"][0]["src_port"] == 443);
  CHECK(json["flows"][0]["bytes"] == 135456522);
  CHECK(json["counters"]["malformed"] == 7);
  CHECK(json["counters"]["max_flows"] == 65536);
}
