// --by flow|host|port|proto|total: the traffic rows whose interval ends in
// the window (since, until], summed per key, for the window or per time
// bucket (--every).
//
// A bucket of width w holds the traffic rows whose interval ends in
// (start, start + w], start a multiple of w since the epoch: the rule of the
// window itself, so the buckets add up exactly to the window's totals. A
// traffic row is never split: one whose interval straddles a bucket edge
// counts whole in the bucket where it ends.
#pragma once

#include "report/options.h"
#include "report/rows.h"
#include "sinks/sqlite.h"

namespace tcflows {

// The rows (with --every, columns time and start_ns first, buckets in order,
// --top rows per bucket). Fills `chart` when given: bytes per bucket of the
// keys with the most bytes in the window (--top of them, default 5).
// Throws Fatal (exit 2) when --every makes more than max_buckets buckets.
Rows traffic_rows(sql::Database &db, const ReportOptions &options, ChartData *chart = nullptr);

inline constexpr int64_t max_buckets = 100'000;

} // namespace tcflows
