#include "report/report.h"

#include "sinks/store.h"
#include "util/error.h"
#include "util/timestamp.h"
#include "util/units.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>
#include <tuple>
#include <unordered_map>
#include <variant>

namespace tcflows {
namespace {

constexpr std::string_view port_protocols = "('TCP', 'UDP', 'SCTP', 'DCCP', 'UDPLite')";

bool has_ports(const std::string &proto) {
  return port_protocols.find("'" + proto + "'") != std::string_view::npos;
}

// A cell as it is: an integer, text, or NULL.
using Value = std::variant<std::monostate, int64_t, std::string>;

int64_t number(const Value &value) {
  const auto *n = std::get_if<int64_t>(&value);
  return n ? *n : 0;
}

std::string text(const Value &value) {
  if (const auto *s = std::get_if<std::string>(&value))
    return *s;
  if (const auto *n = std::get_if<int64_t>(&value))
    return std::to_string(*n);
  return "";
}

// The report's rows: column names (the JSON keys and the CSV header) and
// exact values.
struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> values;

  size_t column(std::string_view name) const {
    auto it = std::find(columns.begin(), columns.end(), name);
    if (it == columns.end())
      throw std::logic_error(fmt::format("report: no column {}", name));
    return static_cast<size_t>(it - columns.begin());
  }
};

std::string filters_sql(const ReportOptions &o) {
  std::string sql;
  if (o.proto)
    sql += " AND c.proto = :proto";
  if (o.host)
    sql += " AND (c.src_addr = :host OR c.dst_addr = :host)";
  if (o.port)
    sql += fmt::format(" AND (c.src_port = :port OR c.dst_port = :port) AND c.proto IN {}",
                       port_protocols);
  if (o.iface)
    sql += " AND c.iface = :iface";
  return sql;
}

std::string conn_sql(const ReportOptions &o) {
  std::string order;
  switch (o.sort) {
  case ReportSort::bytes:
    order = "orig_bytes + resp_bytes DESC, orig_pkts + resp_pkts DESC";
    break;
  case ReportSort::packets:
    order = "orig_pkts + resp_pkts DESC, orig_bytes + resp_bytes DESC";
    break;
  case ReportSort::start:
    order = "start_ns";
    break;
  case ReportSort::duration:
    order = "end_ns - start_ns DESC";
    break;
  }
  return "SELECT id, uid, iface, proto, src_addr, src_port, dst_addr, dst_port, vlan, start_ns, "
         "end_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes, state, history, close_reason, "
         "rtt_ns, orig_guessed FROM connections c "
         "WHERE c.end_ns >= :since AND c.start_ns < :until" +
         filters_sql(o) + " ORDER BY " + order + ", id LIMIT :top";
}

void bind_named(sql::Statement &statement, const char *name, const auto &value) {
  if (int index = statement.parameter(name))
    statement.bind(index, value);
}

void bind_options(sql::Statement &statement, const ReportOptions &o) {
  bind_named(statement, ":since", int64_t{o.since_ns});
  bind_named(statement, ":until", o.until_ns.value_or(std::numeric_limits<int64_t>::max()));
  bind_named(statement, ":top", o.top ? static_cast<int64_t>(*o.top) : int64_t{-1});
  if (o.proto)
    bind_named(statement, ":proto", std::string_view(*o.proto));
  if (o.host)
    bind_named(statement, ":host", std::string_view(*o.host));
  if (o.port)
    bind_named(statement, ":port", int64_t{*o.port});
  if (o.iface)
    bind_named(statement, ":iface", std::string_view(*o.iface));
}

Rows conn_rows(sql::Database &db, const ReportOptions &o) {
  sql::Statement statement(db, conn_sql(o));
  sql::ResetGuard guard(statement);
  bind_options(statement, o);
  Rows rows;
  for (int i = 0; i < statement.columns(); i++)
    rows.columns.push_back(statement.column_name(i));
  while (statement.step()) {
    auto &row = rows.values.emplace_back();
    for (int i = 0; i < statement.columns(); i++) {
      if (statement.is_null(i))
        row.emplace_back();
      else if (statement.is_text(i))
        row.emplace_back(statement.text(i));
      else
        row.emplace_back(statement.int64(i));
    }
  }
  return rows;
}

// One connection's traffic inside the window.
struct ConnTraffic {
  std::string proto, iface, src_addr, dst_addr;
  int64_t src_port = 0, dst_port = 0;
  int64_t orig_pkts = 0, orig_bytes = 0, resp_pkts = 0, resp_bytes = 0;
};

// The deltas whose interval ends in the window, summed per connection. The
// sums are made here rather than in SQL: a hash table beats SQLite's sorted
// temporary b-trees on text keys several times over.
std::vector<ConnTraffic> window_traffic(sql::Database &db, const ReportOptions &o) {
  sql::Statement statement(
      db, "SELECT t.conn_id, t.orig_pkts, t.orig_bytes, t.resp_pkts, t.resp_bytes, c.proto, "
          "c.iface, c.src_addr, c.src_port, c.dst_addr, c.dst_port FROM traffic t "
          "JOIN connections c ON c.id = t.conn_id "
          "WHERE t.to_ns > :since AND t.to_ns <= :until" +
              filters_sql(o));
  sql::ResetGuard guard(statement);
  bind_options(statement, o);
  std::vector<ConnTraffic> conns;
  std::unordered_map<int64_t, size_t> at;
  while (statement.step()) {
    auto [it, added] = at.try_emplace(statement.int64(0), conns.size());
    if (added)
      conns.push_back({statement.text(5), statement.text(6), statement.text(7), statement.text(9),
                       statement.int64(8), statement.int64(10)});
    auto &c = conns[it->second];
    c.orig_pkts += statement.int64(1);
    c.orig_bytes += statement.int64(2);
    c.resp_pkts += statement.int64(3);
    c.resp_bytes += statement.int64(4);
  }
  return conns;
}

// Rows of --by flow|host|port|proto as they add up.
class Totals {
public:
  struct Row {
    std::vector<Value> key;
    int64_t connections = 0, packets = 0, bytes = 0;
    int64_t sent_pkts = 0, sent_bytes = 0, recv_pkts = 0, recv_bytes = 0;
  };

  // The row of `key`; `id` is the key as one string, to find it fast.
  Row &at(const std::string &id, std::vector<Value> key) {
    auto [it, added] = at_.try_emplace(id, rows_.size());
    if (added)
      rows_.push_back({std::move(key)});
    return rows_[it->second];
  }

  // Largest first (bytes, or packets), then by key; at most `top`.
  std::vector<Row> sorted(const ReportOptions &o) {
    bool by_packets = o.sort == ReportSort::packets;
    std::sort(rows_.begin(), rows_.end(), [by_packets](const Row &a, const Row &b) {
      auto volume = [by_packets](const Row &r) {
        return by_packets ? std::pair{r.packets, r.bytes} : std::pair{r.bytes, r.packets};
      };
      if (volume(a) != volume(b))
        return volume(a) > volume(b);
      return a.key < b.key;
    });
    if (o.top && rows_.size() > *o.top)
      rows_.resize(*o.top);
    return std::move(rows_);
  }

private:
  std::unordered_map<std::string, size_t> at_;
  std::vector<Row> rows_;
};

std::string id_of(std::initializer_list<std::string_view> parts) {
  std::string id;
  for (auto part : parts) {
    id += part;
    id += '\x1f';
  }
  return id;
}

// One direction of a connection, as a key of the flow table: the strings
// stay in the ConnTraffic, nothing is copied until the rows are made.
struct Direction {
  const ConnTraffic *c;
  bool orig;

  std::tuple<const std::string &, const std::string &, int64_t, const std::string &, int64_t,
             const std::string &>
  key() const {
    return orig ? std::tie(c->proto, c->src_addr, c->src_port, c->dst_addr, c->dst_port, c->iface)
                : std::tie(c->proto, c->dst_addr, c->dst_port, c->src_addr, c->src_port, c->iface);
  }
  bool operator==(const Direction &other) const { return key() == other.key(); }
};

struct DirectionHash {
  size_t operator()(const Direction &d) const {
    auto [proto, from, from_port, to, to_port, iface] = d.key();
    size_t hash = std::hash<std::string_view>()(from);
    for (size_t part :
         {std::hash<std::string_view>()(to), std::hash<std::string_view>()(proto),
          std::hash<std::string_view>()(iface), static_cast<size_t>(from_port << 16 | to_port)})
      hash = hash * 1099511628211ull ^ part;
    return hash;
  }
};

struct Volume {
  int64_t packets = 0, bytes = 0;
};

Rows flow_rows(const std::vector<ConnTraffic> &conns, const ReportOptions &o) {
  std::unordered_map<Direction, Volume, DirectionHash> totals;
  totals.reserve(conns.size() * 2);
  for (const auto &c : conns)
    for (bool orig : {true, false}) {
      int64_t packets = orig ? c.orig_pkts : c.resp_pkts;
      if (packets == 0)
        continue;
      auto &volume = totals[Direction{&c, orig}];
      volume.packets += packets;
      volume.bytes += orig ? c.orig_bytes : c.resp_bytes;
    }
  std::vector<std::pair<Direction, Volume>> sorted(totals.begin(), totals.end());
  bool by_packets = o.sort == ReportSort::packets;
  auto order = [by_packets](const auto &a, const auto &b) {
    auto volume = [by_packets](const Volume &v) {
      return by_packets ? std::pair{v.packets, v.bytes} : std::pair{v.bytes, v.packets};
    };
    if (volume(a.second) != volume(b.second))
      return volume(a.second) > volume(b.second);
    return a.first.key() < b.first.key();
  };
  size_t count = o.top ? std::min(*o.top, sorted.size()) : sorted.size();
  std::partial_sort(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(count), sorted.end(),
                    order);
  Rows rows{{"proto", "src_addr", "src_port", "dst_addr", "dst_port", "iface", "packets", "bytes"},
            {}};
  rows.values.reserve(count);
  for (size_t i = 0; i < count; i++) {
    auto [proto, from, from_port, to, to_port, iface] = sorted[i].first.key();
    rows.values.push_back({proto, from, from_port, to, to_port, iface, sorted[i].second.packets,
                           sorted[i].second.bytes});
  }
  return rows;
}

Rows host_rows(const std::vector<ConnTraffic> &conns, const ReportOptions &o) {
  Totals totals;
  for (const auto &c : conns)
    for (const auto *host : {&c.src_addr, &c.dst_addr}) {
      if (host == &c.dst_addr && c.dst_addr == c.src_addr)
        break; // a host talking to itself: one connection of it
      auto &row = totals.at(*host, {*host});
      row.connections++;
      row.packets += c.orig_pkts + c.resp_pkts;
      row.bytes += c.orig_bytes + c.resp_bytes;
      bool src = *host == c.src_addr, dst = *host == c.dst_addr;
      row.sent_pkts += (src ? c.orig_pkts : 0) + (dst ? c.resp_pkts : 0);
      row.sent_bytes += (src ? c.orig_bytes : 0) + (dst ? c.resp_bytes : 0);
      row.recv_pkts += (src ? c.resp_pkts : 0) + (dst ? c.orig_pkts : 0);
      row.recv_bytes += (src ? c.resp_bytes : 0) + (dst ? c.orig_bytes : 0);
    }
  Rows rows{{"host", "connections", "packets", "bytes", "sent_pkts", "sent_bytes", "recv_pkts",
             "recv_bytes"},
            {}};
  for (auto &row : totals.sorted(o)) {
    row.key.insert(row.key.end(), {row.connections, row.packets, row.bytes, row.sent_pkts,
                                   row.sent_bytes, row.recv_pkts, row.recv_bytes});
    rows.values.push_back(std::move(row.key));
  }
  return rows;
}

// --by port (per protocol and responder port, port protocols only) and
// --by proto.
Rows service_rows(const std::vector<ConnTraffic> &conns, const ReportOptions &o) {
  bool by_port = o.by == ReportBy::port;
  Totals totals;
  for (const auto &c : conns) {
    if (by_port && !has_ports(c.proto))
      continue;
    auto &row = by_port
                    ? totals.at(id_of({c.proto, std::to_string(c.dst_port)}), {c.proto, c.dst_port})
                    : totals.at(c.proto, {c.proto});
    row.connections++;
    row.packets += c.orig_pkts + c.resp_pkts;
    row.bytes += c.orig_bytes + c.resp_bytes;
  }
  Rows rows;
  rows.columns =
      by_port ? std::vector<std::string>{"proto", "port"} : std::vector<std::string>{"proto"};
  rows.columns.insert(rows.columns.end(), {"connections", "packets", "bytes"});
  for (auto &row : totals.sorted(o)) {
    row.key.insert(row.key.end(), {row.connections, row.packets, row.bytes});
    rows.values.push_back(std::move(row.key));
  }
  return rows;
}

std::string endpoint(const std::string &proto, const std::string &addr, int64_t port) {
  if (!has_ports(proto))
    return addr;
  if (addr.find(':') != std::string::npos)
    return fmt::format("[{}]:{}", addr, port);
  return fmt::format("{}:{}", addr, port);
}

// Table cells: a header, then one line per row.
using Cells = std::vector<std::vector<std::string>>;

bool several_ifaces(const Rows &rows) {
  size_t iface = rows.column("iface");
  return std::any_of(rows.values.begin(), rows.values.end(),
                     [&](const auto &row) { return row[iface] != rows.values[0][iface]; });
}

Cells flow_cells(const Rows &rows) {
  bool iface = several_ifaces(rows);
  Cells cells{{"PROTOCOL", "SOURCE", "DESTINATION", "PACKETS", "BYTES"}};
  if (iface)
    cells[0].push_back("IFACE");
  for (const auto &row : rows.values) {
    // proto, src_addr, src_port, dst_addr, dst_port, iface, packets, bytes
    auto proto = text(row[0]);
    auto &line = cells.emplace_back(std::vector<std::string>{
        proto, endpoint(proto, text(row[1]), number(row[2])),
        endpoint(proto, text(row[3]), number(row[4])), text(row[6]), human_bytes(number(row[7]))});
    if (iface)
      line.push_back(text(row[5]));
  }
  return cells;
}

Cells conn_cells(const Rows &rows) {
  bool iface = several_ifaces(rows);
  Cells cells{{"PROTOCOL", "ORIGINATOR", "RESPONDER", "START", "DURATION", "STATE", "ORIG_PKTS",
               "ORIG_BYTES", "RESP_PKTS", "RESP_BYTES"}};
  if (iface)
    cells[0].push_back("IFACE");
  auto at = [&](const auto &row, std::string_view name) -> const Value & {
    return row[rows.column(name)];
  };
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

// --by host|port|proto: the key columns as they are, then the volumes.
Cells total_cells(const Rows &rows) {
  Cells cells(1);
  for (const auto &column : rows.columns) {
    std::string label = column == "proto" ? "protocol" : column;
    std::transform(label.begin(), label.end(), label.begin(), ::toupper);
    cells[0].push_back(label);
  }
  for (const auto &row : rows.values) {
    auto &line = cells.emplace_back();
    for (size_t c = 0; c < row.size(); c++)
      line.push_back(rows.columns[c].ends_with("bytes") ? human_bytes(number(row[c]))
                                                        : text(row[c]));
  }
  return cells;
}

std::string format_table(const Cells &cells) {
  std::vector<size_t> width(cells[0].size());
  for (const auto &line : cells)
    for (size_t c = 0; c < line.size(); c++)
      width[c] = std::max(width[c], line[c].size());
  std::string out;
  for (const auto &line : cells) {
    for (size_t c = 0; c < line.size(); c++) {
      out += line[c];
      if (c + 1 < line.size())
        out.append(width[c] - line[c].size() + 1, ' ');
    }
    out += '\n';
  }
  return out;
}

void append_json_string(std::string &out, const std::string &text) {
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
  if (const auto *n = std::get_if<int64_t>(&value))
    out += std::to_string(*n);
  else if (const auto *s = std::get_if<std::string>(&value))
    append_json_string(out, *s);
  else
    out += "null";
}

// An array of objects, keys in column order.
std::string format_json(const Rows &rows) {
  std::string out = "[";
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

std::string csv_field(const Value &value) {
  auto field = text(value);
  if (field.find_first_of(",\"\r\n") == std::string::npos)
    return field;
  std::string quoted = "\"";
  for (char c : field)
    quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + '"';
}

std::string format_csv(const Rows &rows) {
  std::string out;
  for (size_t c = 0; c < rows.columns.size(); c++)
    out += (c ? "," : "") + rows.columns[c];
  out += "\n";
  for (const auto &values : rows.values) {
    for (size_t c = 0; c < values.size(); c++)
      out += (c ? "," : "") + csv_field(values[c]);
    out += "\n";
  }
  return out;
}

} // namespace

std::string make_report(sql::Database &db, const ReportOptions &options) {
  Rows rows;
  if (options.by == ReportBy::conn) {
    rows = conn_rows(db, options);
  } else {
    auto conns = window_traffic(db, options);
    if (options.by == ReportBy::flow)
      rows = flow_rows(conns, options);
    else if (options.by == ReportBy::host)
      rows = host_rows(conns, options);
    else
      rows = service_rows(conns, options);
  }
  switch (options.format) {
  case ReportFormat::json:
    return format_json(rows);
  case ReportFormat::csv:
    return format_csv(rows);
  case ReportFormat::table:
    break;
  }
  if (options.by == ReportBy::flow)
    return format_table(flow_cells(rows));
  if (options.by == ReportBy::conn)
    return format_table(conn_cells(rows));
  return format_table(total_cells(rows));
}

int run_report(const ReportOptions &options) {
  auto db = open_database_read_only(options.db);
  std::string out;
  try {
    out = make_report(db, options);
  } catch (const sql::Error &e) {
    int code =
        e.primary() == SQLITE_CORRUPT || e.primary() == SQLITE_NOTADB ? exit_usage : exit_failure;
    fail(code, "{}", e.what());
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
    fail(exit_failure, "cannot write the report: {}", errno_text(errno));
  return 0;
}

} // namespace tcflows
