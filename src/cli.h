// The command line: subcommands and their options.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "detach.h"
#include <vector>

namespace tcflows {

enum class LiveFormat { table, json };
enum class LiveBy { flow, conn };

struct RecordOptions {
  std::vector<std::string> ifaces; // empty: the default-route interface
  std::chrono::nanoseconds interval = std::chrono::seconds(5);
  size_t top = 20;
  bool top_given = false;
  LiveFormat format = LiveFormat::table;
  bool quiet = false;
  uint32_t max_flows = 65536;
  uint32_t ringbuf_bytes = 4u << 20;
  uint32_t tc_priority = 1;
  LiveBy by = LiveBy::flow;
  std::string jsonl; // empty: no JSON lines; "-": standard output
  std::chrono::nanoseconds tcp_timeout = std::chrono::minutes(5);
  std::chrono::nanoseconds udp_timeout = std::chrono::seconds(60);
  std::chrono::nanoseconds icmp_timeout = std::chrono::seconds(60);
  std::chrono::nanoseconds other_timeout = std::chrono::seconds(60);
  std::chrono::nanoseconds linger = std::chrono::seconds(5);
  std::string user;               // switch to this user after attaching
  std::vector<std::string> ipfix; // collectors: udp://HOST:PORT, tcp://HOST:PORT
  std::chrono::nanoseconds ipfix_active = std::chrono::seconds(60);
  std::string metrics;                               // empty: no metrics endpoint; else [ADDR:]PORT
  std::string db = "tcflows.db";                     // --db
  std::optional<std::chrono::nanoseconds> retention; // --retention; none: keep everything
  bool no_db = false;                                // --no-db: store nothing
};

enum class ReportBy { flow, conn, host, port, proto };
enum class ReportSort { bytes, packets, start, duration };
enum class ReportFormat { table, json, csv };

struct ReportOptions {
  std::string db = "tcflows.db";
  int64_t since_ns = 0;            // --since, resolved against the time of parsing
  std::optional<int64_t> until_ns; // --until; none: up to now and beyond
  ReportBy by = ReportBy::flow;
  std::optional<std::string> proto; // canonical spelling (canonical_proto_name)
  std::optional<std::string> host;  // canonical text
  std::optional<uint16_t> port;
  std::optional<std::string> iface;
  std::optional<size_t> top;
  ReportSort sort = ReportSort::bytes;
  ReportFormat format = ReportFormat::table;
};

struct Command {
  bool verbose = false;
  std::variant<RecordOptions, ReportOptions, DetachOptions> options;
};

// Parses argv. Throws Fatal (exit 2) with a one-line message on bad input;
// prints help and exits 0 for --help.
Command parse_command_line(int argc, char **argv);

} // namespace tcflows
