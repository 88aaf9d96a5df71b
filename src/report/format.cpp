#include "report/format.h"

#include "report/filter_values.h"
#include "util/text_table.h"
#include "util/timestamp.h"
#include "util/units.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

namespace tcflows {
namespace {

// Tables are built column by column: the time and the bar join as columns.
using Column = TextColumn;
using Table = TextTable;

template <typename Cell> Column column(std::string header, const Rows &rows, Cell cell) {
  Column c{std::move(header), {}};
  c.cells.reserve(rows.values.size());
  for (const auto &row : rows.values)
    c.cells.push_back(cell(row));
  return c;
}

using Row = std::vector<Value>;

// A cell of the column `name` as text, or in human units when it counts bytes.
Column plain(std::string header, const Rows &rows, std::string_view name) {
  size_t at = rows.column(name);
  if (name.ends_with("bytes"))
    return column(std::move(header), rows,
                  [at](const Row &r) { return human_bytes(number(r[at])); });
  return column(std::move(header), rows, [at](const Row &r) { return text(r[at]); });
}

// "10.0.2.15:443" of the columns `addr` and `port`.
Column endpoints(std::string header, const Rows &rows, std::string_view addr,
                 std::string_view port) {
  size_t proto = rows.column("proto"), a = rows.column(addr), p = rows.column(port);
  return column(std::move(header), rows, [=](const Row &r) {
    return endpoint(text_view(r[proto]), text_view(r[a]), number(r[p]));
  });
}

bool several_ifaces(const Rows &rows) {
  size_t iface = rows.column("iface");
  return std::any_of(rows.values.begin(), rows.values.end(),
                     [&](const auto &row) { return row[iface] != rows.values[0][iface]; });
}

Table flow_table(const Rows &rows) {
  Table t;
  t.push_back(plain(column_header("proto"), rows, "proto"));
  t.push_back(endpoints(column_header("src"), rows, "src_addr", "src_port"));
  t.push_back(endpoints(column_header("dst"), rows, "dst_addr", "dst_port"));
  t.push_back(plain(column_header("packets"), rows, "packets"));
  t.push_back(plain(column_header("bytes"), rows, "bytes"));
  if (several_ifaces(rows))
    t.push_back(plain(column_header("iface"), rows, "iface"));
  return t;
}

// "orig/resp" of a TCP health count; "-" for other protocols.
Column per_side(std::string header, const Rows &rows, std::string_view field) {
  size_t o = rows.column("orig_" + std::string(field)),
         r = rows.column("resp_" + std::string(field));
  return column(std::move(header), rows, [=](const Row &row) {
    if (std::holds_alternative<std::monostate>(row[o]))
      return std::string("-");
    return fmt::format("{}/{}", number(row[o]), number(row[r]));
  });
}

// Retransmissions and the originator's mean round trip ("-" without one).
void add_health(Table &t, const Rows &rows) {
  t.push_back(per_side("RETX", rows, "retx_pkts"));
  size_t rtt = rows.column("orig_rtt_mean_ns");
  t.push_back(column("RTT", rows, [rtt](const Row &r) {
    if (std::holds_alternative<std::monostate>(r[rtt]))
      return std::string("-");
    return human_round_trip(std::chrono::nanoseconds(number(r[rtt])));
  }));
}

Table conn_table(const Rows &rows) {
  size_t start = rows.column("start_ns"), end = rows.column("end_ns");
  Table t;
  t.push_back(plain(column_header("proto"), rows, "proto"));
  t.push_back(endpoints(column_header("orig"), rows, "src_addr", "src_port"));
  t.push_back(endpoints(column_header("resp"), rows, "dst_addr", "dst_port"));
  t.push_back(column(column_header("start_ns"), rows,
                     [start](const Row &r) { return format_utc(number(r[start])); }));
  t.push_back(column(column_header("duration"), rows, [=](const Row &r) {
    return human_duration(std::chrono::nanoseconds(number(r[end]) - number(r[start])));
  }));
  for (auto name : {"state", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes"})
    t.push_back(plain(column_header(name), rows, name));
  add_health(t, rows);
  if (several_ifaces(rows))
    t.push_back(plain(column_header("iface"), rows, "iface"));
  t.push_back(plain(column_header("community_id"), rows, "community_id"));
  t.push_back(plain(column_header("pid"), rows, "pid"));
  t.push_back(plain(column_header("comm"), rows, "comm"));
  return t;
}

// --by host|port|proto|total, and every --by in time buckets: the columns
// as they are (time and start_ns aside), bytes in human units.
Table plain_table(const Rows &rows) {
  Table t;
  for (const auto &name : rows.columns) {
    if (name == "time" || name == "start_ns")
      continue;
    t.push_back(plain(column_header(name), rows, name));
  }
  return t;
}

// Time buckets: the bucket's start first, a bar last.
void add_time_and_bars(Table &t, const Rows &rows, const ReportOptions &o) {
  t.insert(t.begin(), plain(column_header("time"), rows, "time"));
  size_t at = rows.column(o.sort == ReportSort::packets ? "packets" : "bytes");
  int64_t largest = 0;
  for (const auto &row : rows.values)
    largest = std::max(largest, number(row[at]));
  t.push_back(column("", rows, [=](const Row &r) { return bar(number(r[at]), largest); }));
}

void append_text(std::string &out, const Value &value) {
  if (const auto *n = std::get_if<int64_t>(&value)) {
    char digits[24];
    out.append(digits, std::to_chars(digits, digits + sizeof(digits), *n).ptr);
  } else {
    out += text_view(value);
  }
}

void append_json_string(std::string &out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) < 0x20)
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    else
      out += c;
  }
  out += '"';
}

void append_json(std::string &out, const Value &value) {
  if (std::holds_alternative<int64_t>(value))
    append_text(out, value);
  else if (std::holds_alternative<std::monostate>(value))
    out += "null";
  else
    append_json_string(out, text_view(value));
}

void append_csv(std::string &out, const Value &value) {
  auto s = text_view(value);
  if (s.find_first_of(",\"\r\n") == std::string_view::npos)
    return append_text(out, value);
  out += '"';
  for (char c : s)
    out.append(c == '"' ? 2 : 1, c);
  out += '"';
}

} // namespace

std::string endpoint(std::string_view proto, std::string_view addr, int64_t port) {
  std::string out;
  if (!has_ports(proto))
    return out.append(addr);
  bool v6 = addr.find(':') != std::string_view::npos;
  out.reserve(addr.size() + 8);
  out.append(v6 ? "[" : "").append(addr).append(v6 ? "]:" : ":");
  append_text(out, port);
  return out;
}

std::string bar(int64_t value, int64_t largest) {
  static constexpr std::string_view eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  if (value <= 0 || largest <= 0)
    return "";
  __int128 scaled = static_cast<__int128>(value) * bar_width * 8;
  auto n = static_cast<int64_t>((scaled + largest - 1) / largest);
  std::string out;
  for (int64_t i = 0; i < n / 8; i++)
    out += "█";
  return out += eighths[n % 8];
}

std::string format_table(const Rows &rows, const ReportOptions &o) {
  Table t = o.by == ReportBy::flow   ? flow_table(rows)
            : o.by == ReportBy::conn ? conn_table(rows)
                                     : plain_table(rows);
  if (o.every)
    add_time_and_bars(t, rows, o);
  return aligned(t);
}

std::string format_json(const Rows &rows) {
  std::string out = "[";
  out.reserve(160 * rows.values.size() + 2);
  for (size_t r = 0; r < rows.values.size(); r++) {
    out += r ? ",{" : "{";
    for (size_t c = 0; c < rows.columns.size(); c++) {
      if (c)
        out += ',';
      append_json_string(out, rows.columns[c]);
      out += ':';
      append_json(out, rows.values[r][c]);
    }
    out += '}';
  }
  return out + "]\n";
}

std::string format_csv(const Rows &rows) {
  std::string out;
  out.reserve(64 * (rows.values.size() + 1));
  for (size_t c = 0; c < rows.columns.size(); c++)
    out.append(c ? "," : "").append(rows.columns[c]);
  out += '\n';
  for (const auto &values : rows.values) {
    for (size_t c = 0; c < values.size(); c++) {
      if (c)
        out += ',';
      append_csv(out, values[c]);
    }
    out += '\n';
  }
  return out;
}

} // namespace tcflows
