#include "report.h"

#include "error.h"
#include "store.h"
#include "timestamp.h"
#include "units.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>

namespace tcflows {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view port_protocols = "('TCP', 'UDP', 'SCTP', 'DCCP', 'UDPLite')";

// The result of a query: column names (the JSON keys and the CSV header)
// and exact values (integer, text or null).
struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<Json>> values;

  size_t column(std::string_view name) const {
    auto it = std::find(columns.begin(), columns.end(), name);
    if (it == columns.end())
      throw std::logic_error(fmt::format("report: no column {}", name));
    return static_cast<size_t>(it - columns.begin());
  }
  const Json &at(size_t row, std::string_view name) const { return values[row][column(name)]; }
  int64_t number(size_t row, std::string_view name) const {
    const auto &value = at(row, name);
    return value.is_number() ? value.get<int64_t>() : 0;
  }
  std::string text(size_t row, std::string_view name) const {
    const auto &value = at(row, name);
    return value.is_string() ? value.get<std::string>() : value.is_null() ? "" : value.dump();
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

// The traffic of each connection in the window, with the fields the
// aggregates need: wc(proto, iface, src_addr, src_port, dst_addr, dst_port,
// op, ob, rp, rb).
std::string window_sql(const ReportOptions &o) {
  return "WITH w AS (SELECT conn_id, sum(orig_pkts) AS op, sum(orig_bytes) AS ob, "
         "sum(resp_pkts) AS rp, sum(resp_bytes) AS rb FROM traffic "
         "WHERE to_ns > :since AND to_ns <= :until GROUP BY conn_id), "
         "wc AS (SELECT c.proto, c.iface, c.src_addr, c.src_port, c.dst_addr, c.dst_port, "
         "w.op, w.ob, w.rp, w.rb FROM w JOIN connections c ON c.id = w.conn_id WHERE 1" +
         filters_sql(o) + ") ";
}

std::string volume_order(const ReportOptions &o) {
  return o.sort == ReportSort::packets ? "packets DESC, bytes DESC" : "bytes DESC, packets DESC";
}

std::string flow_sql(const ReportOptions &o) {
  return window_sql(o) +
         "SELECT proto, src_addr, src_port, dst_addr, dst_port, iface, sum(p) AS packets, "
         "sum(b) AS bytes FROM ("
         "SELECT proto, iface, src_addr, src_port, dst_addr, dst_port, op AS p, ob AS b FROM wc "
         "UNION ALL "
         "SELECT proto, iface, dst_addr, dst_port, src_addr, src_port, rp, rb FROM wc) "
         "WHERE p > 0 GROUP BY proto, src_addr, src_port, dst_addr, dst_port, iface ORDER BY " +
         volume_order(o) + ", proto, src_addr, src_port, dst_addr, dst_port, iface LIMIT :top";
}

std::string host_sql(const ReportOptions &o) {
  return window_sql(o) +
         "SELECT host, count(*) AS connections, sum(sent_p + recv_p) AS packets, "
         "sum(sent_b + recv_b) AS bytes, sum(sent_p) AS sent_pkts, sum(sent_b) AS sent_bytes, "
         "sum(recv_p) AS recv_pkts, sum(recv_b) AS recv_bytes FROM ("
         "SELECT src_addr AS host, op AS sent_p, ob AS sent_b, rp AS recv_p, rb AS recv_b "
         "FROM wc UNION ALL SELECT dst_addr, rp, rb, op, ob FROM wc) "
         "GROUP BY host ORDER BY " +
         volume_order(o) + ", host LIMIT :top";
}

std::string port_sql(const ReportOptions &o) {
  return window_sql(o) +
         fmt::format("SELECT proto, dst_port AS port, count(*) AS connections, "
                     "sum(op + rp) AS packets, sum(ob + rb) AS bytes FROM wc "
                     "WHERE proto IN {} GROUP BY proto, dst_port ORDER BY {}, proto, "
                     "port LIMIT :top",
                     port_protocols, volume_order(o));
}

std::string proto_sql(const ReportOptions &o) {
  return window_sql(o) +
         "SELECT proto, count(*) AS connections, sum(op + rp) AS packets, "
         "sum(ob + rb) AS bytes FROM wc GROUP BY proto ORDER BY " +
         volume_order(o) + ", proto LIMIT :top";
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

Rows run_query(sql::Database &db, const std::string &text, const ReportOptions &o) {
  sql::Statement statement(db, text);
  sql::ResetGuard guard(statement);
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
  Rows rows;
  for (int i = 0; i < statement.columns(); i++)
    rows.columns.push_back(statement.column_name(i));
  while (statement.step()) {
    auto &row = rows.values.emplace_back();
    for (int i = 0; i < statement.columns(); i++) {
      if (statement.is_null(i))
        row.emplace_back(nullptr);
      else if (statement.is_text(i))
        row.emplace_back(statement.text(i));
      else
        row.emplace_back(statement.int64(i));
    }
  }
  return rows;
}

bool has_ports(const std::string &proto) {
  return port_protocols.find("'" + proto + "'") != std::string_view::npos;
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
  std::set<std::string> ifaces;
  for (size_t i = 0; i < rows.values.size(); i++)
    ifaces.insert(rows.text(i, "iface"));
  return ifaces.size() > 1;
}

Cells flow_cells(const Rows &rows) {
  bool iface = several_ifaces(rows);
  Cells cells{{"PROTOCOL", "SOURCE", "DESTINATION", "PACKETS", "BYTES"}};
  if (iface)
    cells[0].push_back("IFACE");
  for (size_t i = 0; i < rows.values.size(); i++) {
    auto proto = rows.text(i, "proto");
    auto &line = cells.emplace_back(std::vector<std::string>{
        proto, endpoint(proto, rows.text(i, "src_addr"), rows.number(i, "src_port")),
        endpoint(proto, rows.text(i, "dst_addr"), rows.number(i, "dst_port")),
        std::to_string(rows.number(i, "packets")), human_bytes(rows.number(i, "bytes"))});
    if (iface)
      line.push_back(rows.text(i, "iface"));
  }
  return cells;
}

Cells conn_cells(const Rows &rows) {
  bool iface = several_ifaces(rows);
  Cells cells{{"PROTOCOL", "ORIGINATOR", "RESPONDER", "START", "DURATION", "STATE", "ORIG_PKTS",
               "ORIG_BYTES", "RESP_PKTS", "RESP_BYTES"}};
  if (iface)
    cells[0].push_back("IFACE");
  for (size_t i = 0; i < rows.values.size(); i++) {
    auto proto = rows.text(i, "proto");
    int64_t start = rows.number(i, "start_ns");
    auto &line = cells.emplace_back(std::vector<std::string>{
        proto, endpoint(proto, rows.text(i, "src_addr"), rows.number(i, "src_port")),
        endpoint(proto, rows.text(i, "dst_addr"), rows.number(i, "dst_port")), format_utc(start),
        human_duration(std::chrono::nanoseconds(rows.number(i, "end_ns") - start)),
        rows.text(i, "state"), std::to_string(rows.number(i, "orig_pkts")),
        human_bytes(rows.number(i, "orig_bytes")), std::to_string(rows.number(i, "resp_pkts")),
        human_bytes(rows.number(i, "resp_bytes"))});
    if (iface)
      line.push_back(rows.text(i, "iface"));
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
  for (size_t i = 0; i < rows.values.size(); i++) {
    auto &line = cells.emplace_back();
    for (const auto &column : rows.columns)
      line.push_back(column.ends_with("bytes") ? human_bytes(rows.number(i, column))
                                               : rows.text(i, column));
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
    for (size_t c = 0; c < line.size(); c++)
      out += c + 1 == line.size() ? line[c] : fmt::format("{:<{}} ", line[c], width[c]);
    out += '\n';
  }
  return out;
}

std::string format_json(const Rows &rows) {
  Json array = Json::array();
  for (const auto &values : rows.values) {
    Json object = Json::object();
    for (size_t c = 0; c < rows.columns.size(); c++)
      object[rows.columns[c]] = values[c];
    array.push_back(std::move(object));
  }
  return array.dump() + '\n';
}

std::string csv_field(const Json &value) {
  if (value.is_null())
    return "";
  if (!value.is_string())
    return value.dump();
  auto text = value.get<std::string>();
  if (text.find_first_of(",\"\r\n") == std::string::npos)
    return text;
  std::string quoted = "\"";
  for (char c : text)
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
  std::string text;
  switch (options.by) {
  case ReportBy::flow:
    text = flow_sql(options);
    break;
  case ReportBy::conn:
    text = conn_sql(options);
    break;
  case ReportBy::host:
    text = host_sql(options);
    break;
  case ReportBy::port:
    text = port_sql(options);
    break;
  case ReportBy::proto:
    text = proto_sql(options);
    break;
  }
  Rows rows = run_query(db, text, options);
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
