// What `tcflows record` is asked to do: the options the agent runs with.
#pragma once

#include "sinks/live_table.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tcflows {

struct RecordOptions {
  std::vector<std::string> ifaces; // empty: the default-route interface
  std::chrono::nanoseconds interval = std::chrono::seconds(5);
  size_t top = 20;
  bool top_given = false;
  LiveFormat format = LiveFormat::table;
  bool quiet = false;
  uint32_t max_flows = 65536;
  uint32_t ringbuf_bytes = 16u << 10;
  uint32_t tc_priority = 1;
  LiveBy by = LiveBy::flow;
  std::string jsonl; // empty: no JSON lines; "-": standard output
  std::chrono::nanoseconds tcp_timeout = std::chrono::minutes(5);
  std::chrono::nanoseconds udp_timeout = std::chrono::seconds(60);
  std::chrono::nanoseconds icmp_timeout = std::chrono::seconds(60);
  std::chrono::nanoseconds other_timeout = std::chrono::seconds(60);
  std::chrono::nanoseconds linger = std::chrono::seconds(5);
  uint16_t community_id_seed = 0;
  std::string user;               // switch to this user after attaching
  std::vector<std::string> ipfix; // collectors: udp://HOST:PORT, tcp://HOST:PORT
  std::chrono::nanoseconds ipfix_active = std::chrono::seconds(60);
  std::string metrics;                               // empty: no metrics endpoint; else [ADDR:]PORT
  std::string db = "tcflows.db";                     // --db
  std::optional<std::chrono::nanoseconds> retention; // --retention; none: keep everything
  bool no_db = false;                                // --no-db: store nothing
  bool no_process = false; // --no-process: no socket tracing programs, no owners
};

// What `tcflows read` is asked: the capture files ("-": standard input),
// and the options of `record` that apply offline (the outputs, timeouts,
// --interval in capture time, --max-flows, the Community ID's seed).
struct ReadOptions {
  std::vector<std::string> files;
  RecordOptions record;
};

} // namespace tcflows
