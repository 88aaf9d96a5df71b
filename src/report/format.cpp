#include "report/format.h"

#include "report/filter_values.h"
#include "util/timestamp.h"
#include "util/units.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

namespace tcflows {
namespace {

// Table cells: a header, then one line per row.
using Cells = std::vector<std::vector<std::string>>;

bool several_ifaces(const Rows &rows) {
  size_t iface = rows.column("iface");
  return std::any_of(rows.values.begin(), rows.values.end(),
                     [&](const auto &row) { return row[iface] != rows.values[0][iface]; });
}

// The values of named columns, the columns found once.
class Columns {
public:
  Columns(const Rows &rows, std::initializer_list<std::string_view> names) {
    for (auto name : names)
      at_.emplace_back(name, rows.column(name));
  }
  const Value &operator()(const std::vector<Value> &row, std::string_view name) const {
    for (const auto &[n, index] : at_)
      if (n == name)
        return row[index];
    throw std::logic_error("report: column not looked up");
  }

private:
  std::vector<std::pair<std::string_view, size_t>> at_;
};

Cells flow_cells(const Rows &rows) {
  bool iface = several_ifaces(rows);
  Cells cells{{"PROTOCOL", "SOURCE", "DESTINATION", "PACKETS", "BYTES"}};
  if (iface)
    cells[0].push_back("IFACE");
  Columns at(
      rows, {"proto", "src_addr", "src_port", "dst_addr", "dst_port", "packets", "bytes", "iface"});
  cells.reserve(rows.values.size() + 1);
  for (const auto &row : rows.values) {
    auto proto = text_view(at(row, "proto"));
    auto &line = cells.emplace_back(std::vector<std::string>{
        std::string(proto),
        endpoint(proto, text_view(at(row, "src_addr")), number(at(row, "src_port"))),
        endpoint(proto, text_view(at(row, "dst_addr")), number(at(row, "dst_port"))),
        text(at(row, "packets")), human_bytes(number(at(row, "bytes")))});
    if (iface)
      line.push_back(text(at(row, "iface")));
  }
  return cells;
}

Cells conn_cells(const Rows &rows) {
  bool iface = several_ifaces(rows);
  Cells cells{{"PROTOCOL", "ORIGINATOR", "RESPONDER", "START", "DURATION", "STATE", "ORIG_PKTS",
               "ORIG_BYTES", "RESP_PKTS", "RESP_BYTES"}};
  if (iface)
    cells[0].push_back("IFACE");
  Columns at(rows, {"proto", "src_addr", "src_port", "dst_addr", "dst_port", "start_ns", "end_ns",
                    "state", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes", "iface"});
  for (const auto &row : rows.values) {
    auto proto = text(at(row, "proto"));
    int64_t start = number(at(row, "start_ns"));
    auto duration = std::chrono::nanoseconds(number(at(row, "end_ns")) - start);
    auto &line = cells.emplace_back(std::vector<std::string>{
        proto, endpoint(proto, text(at(row, "src_addr")), number(at(row, "src_port"))),
        endpoint(proto, text(at(row, "dst_addr")), number(at(row, "dst_port"))), format_utc(start),
        human_duration(duration), text(at(row, "state")), text(at(row, "orig_pkts")),
        human_bytes(number(at(row, "orig_bytes"))), text(at(row, "resp_pkts")),
        human_bytes(number(at(row, "resp_bytes")))});
    if (iface)
      line.push_back(text(at(row, "iface")));
  }
  return cells;
}

// --by host|port|proto|total, and every --by in time buckets: the columns
// as they are (start_ns aside), bytes in human units.
Cells plain_cells(const Rows &rows) {
  Cells cells(1);
  std::vector<size_t> shown;
  for (size_t c = 0; c < rows.columns.size(); c++) {
    if (rows.columns[c] == "start_ns")
      continue;
    std::string label = rows.columns[c] == "proto" ? "protocol" : rows.columns[c];
    std::transform(label.begin(), label.end(), label.begin(), ::toupper);
    cells[0].push_back(label);
    shown.push_back(c);
  }
  for (const auto &row : rows.values) {
    auto &line = cells.emplace_back();
    for (size_t c : shown)
      line.push_back(rows.columns[c].ends_with("bytes") ? human_bytes(number(row[c]))
                                                        : text(row[c]));
  }
  return cells;
}

// Time buckets: the bucket's start before each line.
void add_time(Cells &cells, const Rows &rows) {
  size_t time = rows.column("time");
  cells[0].insert(cells[0].begin(), "TIME");
  for (size_t r = 0; r < rows.values.size(); r++)
    cells[r + 1].insert(cells[r + 1].begin(), text(rows.values[r][time]));
}

// Each line gets the bar of its row.
void add_bars(Cells &cells, const Rows &rows, const ReportOptions &o) {
  size_t column = rows.column(o.sort == ReportSort::packets ? "packets" : "bytes");
  int64_t largest = 0;
  for (const auto &row : rows.values)
    largest = std::max(largest, number(row[column]));
  cells[0].push_back("");
  for (size_t r = 0; r < rows.values.size(); r++)
    cells[r + 1].push_back(bar(number(rows.values[r][column]), largest));
}

// Columns padded to their widest cell (bytes: the cells are ASCII but for
// the last column, the bar).
std::string aligned(const Cells &cells) {
  std::vector<size_t> width(cells[0].size());
  for (const auto &line : cells)
    for (size_t c = 0; c < line.size(); c++)
      width[c] = std::max(width[c], line[c].size());
  std::string out;
  for (const auto &line : cells) {
    size_t end = line.size();
    while (end > 1 && line[end - 1].empty())
      end--;
    for (size_t c = 0; c < end; c++) {
      out += line[c];
      if (c + 1 < end)
        out.append(width[c] - line[c].size() + 1, ' ');
    }
    out += '\n';
  }
  return out;
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
  bool buckets = o.every.has_value();
  Cells cells;
  if (o.by == ReportBy::flow) {
    cells = flow_cells(rows);
    if (buckets)
      add_time(cells, rows);
  } else if (o.by == ReportBy::conn)
    cells = conn_cells(rows);
  else
    cells = plain_cells(rows);
  if (buckets)
    add_bars(cells, rows, o);
  return aligned(cells);
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
