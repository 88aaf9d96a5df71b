// Test driver: feeds hand-made connection updates through the real IPFIX
// exporter, so that collectors can be tested without the kernel or tracker.
//
//   ipfix_feed [--active 60s] --ipfix URL [--ipfix URL ...] BATCHES.jsonl
//
// Each input line is one export call: {"now_ns": N, "sleep_ms": M,
// "updates": [...]}. An update has the keys of a --jsonl record (conn_json)
// plus an optional "delta" object (TrafficDelta keys; default: the record's
// totals). After each call the loop runs for sleep_ms (default 20). At the
// end the exporter finishes and the counters are printed as one JSON line.
#include "sinks/ipfix_export.h"
#include "text_record.h"
#include "util/error.h"
#include "util/units.h"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

using namespace tcflows;
using nlohmann::json;

namespace {

ConnUpdate parse_update(const json &j) {
  test::TextRecord r;
  r.uid = j.at("uid");
  r.iface = j.value("iface", "lo");
  r.proto = j.at("proto");
  r.src_addr = j.at("src_addr");
  r.src_port = j.value("src_port", 0);
  r.dst_addr = j.at("dst_addr");
  r.dst_port = j.value("dst_port", 0);
  r.vlan = j.value("vlan", 0);
  r.start_ns = j.at("start_ns");
  r.end_ns = j.at("end_ns");
  r.orig_pkts = j.value("orig_pkts", uint64_t{0});
  r.orig_bytes = j.value("orig_bytes", uint64_t{0});
  r.resp_pkts = j.value("resp_pkts", uint64_t{0});
  r.resp_bytes = j.value("resp_bytes", uint64_t{0});
  r.state = j.value("state", "OTH");
  r.history = j.value("history", "");
  r.orig_tcp_flags = j.value("orig_tcp_flags", uint8_t{0});
  r.resp_tcp_flags = j.value("resp_tcp_flags", uint8_t{0});
  if (j.contains("close_reason") && !j["close_reason"].is_null())
    r.close_reason = j["close_reason"].get<std::string>();
  r.orig_guessed = j.value("orig_guessed", false);
  const json delta = j.value("delta", json::object());
  return test::update_of(
      r, {delta.value("from_ns", r.start_ns), delta.value("to_ns", r.end_ns),
          delta.value("orig_pkts", r.orig_pkts), delta.value("orig_bytes", r.orig_bytes),
          delta.value("resp_pkts", r.resp_pkts), delta.value("resp_bytes", r.resp_bytes)});
}

json counters_json(const ExportCounters &c) {
  return {{"records_sent", c.records_sent},   {"records_failed", c.records_failed},
          {"messages_sent", c.messages_sent}, {"messages_failed", c.messages_failed},
          {"bytes_sent", c.bytes_sent},       {"connects", c.connects}};
}

int run(int argc, char **argv) {
  std::vector<std::string> urls;
  std::chrono::nanoseconds active = std::chrono::seconds(60);
  std::string input;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--ipfix" && i + 1 < argc)
      urls.push_back(argv[++i]);
    else if (arg == "--active" && i + 1 < argc)
      active = parse_duration(argv[++i]).value();
    else
      input = arg;
  }
  if (urls.empty() || input.empty())
    fail(exit_usage, "usage: ipfix_feed [--active DURATION] --ipfix URL... BATCHES.jsonl");
  std::ifstream in(input);
  if (!in)
    fail(exit_usage, "cannot read {}", input);
  boost::asio::io_context io;
  IpfixExporter exporter(io, urls, active);
  exporter.start();
  // run_for returns early when the loop runs out of work; restart() it.
  auto run_for = [&io](int ms) {
    io.restart();
    io.run_for(std::chrono::milliseconds(ms));
  };
  run_for(50); // TCP collectors connect
  for (std::string line; std::getline(in, line);) {
    if (line.empty())
      continue;
    json batch = json::parse(line);
    std::vector<ConnUpdate> updates;
    for (const auto &u : batch.at("updates"))
      updates.push_back(parse_update(u));
    exporter.export_updates(updates, *test::interfaces(), batch.at("now_ns").get<uint64_t>());
    run_for(batch.value("sleep_ms", 20));
  }
  exporter.finish();
  io.restart();
  io.run();
  json out = {{"skipped", exporter.records_skipped()}, {"collectors", json::array()}};
  for (const auto &c : exporter.collectors())
    out["collectors"].push_back(
        {{"url", c.url}, {"up", c.up}, {"counters", counters_json(c.counters)}});
  std::cout << out.dump() << std::endl;
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const Fatal &e) {
    std::fprintf(stderr, "ipfix_feed: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "ipfix_feed: %s\n", e.what());
    return 1;
  }
}
