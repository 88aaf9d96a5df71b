// The rows of a report as they are computed, before a format prints them:
// column names (the JSON keys and the CSV header) and exact values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tcflows {

// A cell as it is: an integer, text, or NULL. Text the report computed is
// a view into Rows::storage rather than a copy per row.
using Value = std::variant<std::monostate, int64_t, std::string, std::string_view>;

inline int64_t number(const Value &value) {
  const auto *n = std::get_if<int64_t>(&value);
  return n ? *n : 0;
}

// The text of a text cell, "" for others.
inline std::string_view text_view(const Value &value) {
  if (const auto *s = std::get_if<std::string>(&value))
    return *s;
  if (const auto *v = std::get_if<std::string_view>(&value))
    return *v;
  return {};
}

inline std::string text(const Value &value) {
  if (const auto *n = std::get_if<int64_t>(&value))
    return std::to_string(*n);
  return std::string(text_view(value));
}

struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> values;
  std::shared_ptr<const void> storage; // what the string_view cells point into

  size_t column(std::string_view name) const {
    auto it = std::find(columns.begin(), columns.end(), name);
    if (it == columns.end())
      throw std::logic_error("report: no column " + std::string(name));
    return static_cast<size_t>(it - columns.begin());
  }
  bool has(std::string_view name) const {
    return std::find(columns.begin(), columns.end(), name) != columns.end();
  }
};

// Bytes over time of the keys a chart draws: one series per key, one value
// per bucket.
struct Series {
  std::string label;
  std::vector<int64_t> bytes;
};
struct ChartData {
  int64_t first_ns = 0; // start of the first bucket
  int64_t width_ns = 0;
  std::vector<Series> series;
};

} // namespace tcflows
