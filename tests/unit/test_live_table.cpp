#include "sinks/live_table.h"
#include "text_record.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>

using namespace tcflows;

namespace {

FlowTotals entry(const char *a, uint16_t pa, const char *b, uint16_t pb, uint8_t proto,
                 uint64_t fwd_pkts, uint64_t fwd_bytes, uint64_t rev_pkts, uint64_t rev_bytes) {
  FlowTotals e{};
  inet_pton(AF_INET, a, &e.key.addr[0][0]);
  inet_pton(AF_INET, b, &e.key.addr[1][0]);
  e.key.port[0] = pa;
  e.key.port[1] = pb;
  e.key.ethertype = ETH_P_IP;
  e.key.proto = proto;
  e.key.ifindex = 1;
  e.pkts[0] = fwd_pkts;
  e.bytes[0] = fwd_bytes;
  e.pkts[1] = rev_pkts;
  e.bytes[1] = rev_bytes;
  return e;
}

const std::vector<FlowTotals> flows = {
    entry("10.0.2.3", 53, "10.0.2.15", 38055, IPPROTO_UDP, 1, 154, 1, 154),
    entry("10.0.2.15", 56604, "216.58.215.142", 443, IPPROTO_TCP, 3900, 210000, 7688, 135456522),
};

const InterfaceNames name_of; // every interface as "if<N>"

} // namespace

TEST_CASE("direction rows: one per direction with traffic, largest first") {
  auto rows = direction_rows(flows);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].bytes == 135456522);
  CHECK(rows[0].dir == TCF_DIR_REV);
  CHECK(rows[1].bytes == 210000);
  auto quiet = flows;
  quiet[0].pkts[1] = quiet[0].bytes[1] = 0;
  CHECK(direction_rows(quiet).size() == 3);
}

TEST_CASE("the table looks like the original's") {
  Stats status;
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
  Stats status;
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

TEST_CASE("the status line: what the README shows, from the counter tables") {
  Stats stats;
  stats.flows = 12;
  stats.max_flows = 65536;
  stats.open_connections = 3;
  stats.finished_connections = 57;
  stats.store = StoreStats{.written = 60};
  CHECK(status_line(stats) == "flows 12/65536  conns 3 open 57 done  malformed 0  not tracked 0  "
                              "untracked 0 pkts  db written 60  queued 0  write "
                              "errors 0  dropped 0");
  // Counters sharing a place are summed; the tracker's show once not 0.
  stats.counters[TCF_CTR_FLOW_FULL] = 2;
  stats.counters[TCF_CTR_FLOW_ERROR] = 1;
  stats.counters[TCF_CTR_UNTRACKED_PKTS] = 9;
  stats.store.reset();
  stats.ipfix = std::vector<CollectorStatus>{{"udp://a:1", true, {.records_sent = 7}},
                                             {"udp://b:1", false, {.records_failed = 3}}};
  CHECK(status_line(stats) == "flows 12/65536  conns 3 open 57 done  malformed 0  not tracked 3  "
                              "untracked 9 pkts  ipfix 7 sent 3 failed");
}

TEST_CASE("the JSON snapshot names every counter as the database does") {
  Stats stats;
  for (int i = 0; i < TCF_CTR_MAX; i++)
    stats.counters[i] = 100 + i;
  stats.store = StoreStats{.queued = 1, .written = 2, .write_errors = 3, .dropped = 4};
  auto json = nlohmann::json::parse(format_json(1, {}, 10, stats, name_of))["counters"];
  for (const auto &counter : kernel_counters)
    CHECK(json[std::string(counter.name)] == 100 + counter.id);
  CHECK(json["store_queued"] == 1);
  CHECK(json["store_dropped"] == 4);
  CHECK(json.contains("orphans_joined"));
  CHECK(json.contains("doorbells_heard"));
  CHECK_FALSE(json.contains("ipfix_sent"));
}

namespace {

// What a LiveTable wrote to a file (not a terminal).
std::string drawn(LiveTableConfig config, const std::function<void(LiveTable &)> &draw) {
  std::FILE *file = std::tmpfile();
  REQUIRE(file);
  LiveTable table(config, file);
  draw(table);
  std::rewind(file);
  std::string out;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), file))
    out.append(buffer, n);
  std::fclose(file);
  return out;
}

} // namespace

TEST_CASE("the live table draws itself: a table after an empty line, or JSON lines") {
  Stats stats;
  stats.max_flows = 65536;
  LiveTableConfig config;
  config.top = 1;
  auto table = drawn(config, [&](LiveTable &t) { t.draw_flows(flows, stats, name_of, 42); });
  CHECK(table.starts_with("\nPROTOCOL SOURCE"));
  CHECK(std::count(table.begin(), table.end(), '\n') == 4); // blank, header, one row, status
  config.format = LiveFormat::json;
  auto json = drawn(config, [&](LiveTable &t) { t.draw_flows(flows, stats, name_of, 42); });
  CHECK(json.ends_with("}\n"));
  CHECK(nlohmann::json::parse(json)["flows"].size() == 4); // JSON without --top: every row
  config.top_given = true;
  json = drawn(config, [&](LiveTable &t) { t.draw_flows(flows, stats, name_of, 42); });
  CHECK(nlohmann::json::parse(json)["flows"].size() == 1);
}

TEST_CASE("--by conn: the records' text, made from the binary record") {
  test::TextRecord web{.uid = "Cweb",
                       .iface = "eth0",
                       .proto = "TCP",
                       .src_addr = "2001:db8::9",
                       .src_port = 50000,
                       .dst_addr = "2001:db8::1",
                       .dst_port = 443,
                       .start_ns = 1'700'000'000'000'000'000,
                       .end_ns = 1'700'000'002'500'000'000,
                       .orig_pkts = 10,
                       .orig_bytes = 2048,
                       .resp_pkts = 8,
                       .resp_bytes = 4096,
                       .state = "S1",
                       .history = "ShAD"};
  test::TextRecord ping = web;
  ping.uid = "Cping";
  ping.proto = "ICMP";
  ping.src_addr = "10.0.0.2";
  ping.dst_addr = "10.0.0.1";
  ping.src_port = 8;
  ping.dst_port = 0;
  ping.orig_bytes = ping.resp_bytes = 84;
  ping.state = "OTH";
  std::vector<ConnRecord> conns = {test::binary(ping), test::binary(web)};
  conns[1].orig_tcp = TcpHealth{.retx_pkts = 2, .rtt_samples = 4, .rtt_mean_ns = 1'500'000};
  conns[1].resp_tcp = TcpHealth{.retx_pkts = 1};
  conns[1].process = ProcessOwner{.pid = 4242, .comm_chars = {'c', 'u', 'r', 'l'}};
  auto names = test::interfaces();
  Stats stats;
  std::string table = format_conn_table(conns, 10, stats);
  // The headers `tcflows report --by conn` prints, and the database's names.
  CHECK(table.starts_with("PROTOCOL ORIGINATOR          RESPONDER         START    DURATION STATE "
                          "ORIG_PKTS ORIG_BYTES RESP_PKTS RESP_BYTES RETX RTT     PROCESS\n"));
  CHECK(
      table.find("TCP      [2001:db8::9]:50000 [2001:db8::1]:443 22:13:20 2.5 s    S1    10        "
                 "2.00 KiB   8         4.00 KiB   2/1  1.50 ms curl[4242]\n") != std::string::npos);
  CHECK(
      table.find("ICMP     10.0.0.2            10.0.0.1          22:13:20 2.5 s    OTH   10        "
                 "84         8         84         -    -       -\n") != std::string::npos);
  auto json = nlohmann::json::parse(format_conn_json(7, conns, 10, stats, *names));
  REQUIRE(json["connections"].size() == 2);
  const auto &first = json["connections"][0]; // the larger
  CHECK(first["uid"] == "Cweb");
  CHECK(first["src_addr"] == "2001:db8::9");
  CHECK(first["dst_port"] == 443);
  CHECK(first["iface"] == "eth0");
  CHECK(first["state"] == "S1");
  CHECK(first["history"] == "ShAD");
  CHECK(first["pid"] == 4242);
  CHECK(first["comm"] == "curl");
  CHECK(json["connections"][1]["pid"].is_null());
}
