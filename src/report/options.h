// What `tcflows report` is asked: the window, the grouping, the filters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace tcflows {

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

} // namespace tcflows
