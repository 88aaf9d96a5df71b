// What `tcflows report` is asked: the window, the grouping, the filter, the
// time buckets and the output.
#pragma once

#include "report/filter.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace tcflows {

// total: one row for the window, or one per time bucket.
enum class ReportBy { flow, conn, host, port, proto, total, process };
// start, duration, retx and rtt go with --by conn.
enum class ReportSort { bytes, packets, start, duration, retx, rtt };
enum class ReportFormat { table, json, csv };

struct ReportOptions {
  std::string db = "tcflows.db";
  int64_t since_ns = 0;            // --since, resolved against the time of parsing
  std::optional<int64_t> until_ns; // --until; none: up to now and beyond
  int64_t now_ns = 0;              // the time of parsing: where buckets end without --until
  ReportBy by = ReportBy::flow;
  Filter filter;             // the expression and --proto, --host, --port, --iface
  std::optional<size_t> top; // rows, or rows per bucket
  ReportSort sort = ReportSort::bytes;
  ReportFormat format = ReportFormat::table;
  std::optional<std::chrono::nanoseconds> every; // time buckets of this width
  std::optional<std::string> chart;              // an .svg or .png file to draw
};

} // namespace tcflows
