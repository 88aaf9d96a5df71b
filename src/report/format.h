// The report's rows as text: an aligned table for people, JSON and CSV with
// exact values for programs.
#pragma once

#include "report/options.h"
#include "report/rows.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace tcflows {

// "10.0.2.15:443", "[2001:db8::1]:443", or the bare address for protocols
// without ports.
std::string endpoint(std::string_view proto, std::string_view addr, int64_t port);

// The table of the rows. With --every each line ends with a bar of up to
// bar_width cells of Unicode blocks, in eighths, scaled to the row with the
// most bytes (packets with --sort packets).
std::string format_table(const Rows &rows, const ReportOptions &options);

// An array of objects, keys in column order.
std::string format_json(const Rows &rows);

// A header row of the column names, then the rows.
std::string format_csv(const Rows &rows);

inline constexpr int bar_width = 40;

// The bar of `value` when `largest` fills bar_width cells: the eighths
// rounded up, so that any traffic shows.
std::string bar(int64_t value, int64_t largest);

} // namespace tcflows
