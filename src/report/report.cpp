#include "report/report.h"

#include "report/chart.h"
#include "report/format.h"
#include "report/query.h"
#include "report/traffic.h"
#include "sinks/store.h"
#include "track/conn.h"
#include "util/error.h"

#include <sqlite3.h>

#include <cstdio>
#include <optional>

namespace tcflows {
namespace {

// The hours of end_ns that host and net tests seek in the address indexes,
// when the window reaches over fewer than this; over more, SQLite reads the
// window instead.
constexpr int64_t max_index_hours = 200'000;

constexpr const char *hours_sql =
    "WITH RECURSIVE hours(h) AS (SELECT :first_hour UNION ALL SELECT h + 1 FROM hours "
    "WHERE h < :last_hour) ";

// ", orig_retx_pkts, ..., resp_rtt_max_ns": the TCP health columns.
std::string health_columns_sql() {
  std::string sql;
  for (const auto &column : tcp_health_columns())
    sql += ", " + column;
  return sql;
}

std::string conn_sql(const ReportOptions &options, const FilterSql &o) {
  std::string order;
  switch (options.sort) {
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
  case ReportSort::retx:
    order = "coalesce(orig_retx_pkts, 0) + coalesce(resp_retx_pkts, 0) DESC";
    break;
  case ReportSort::rtt:
    order = "max(coalesce(orig_rtt_mean_ns, 0), coalesce(resp_rtt_mean_ns, 0)) DESC";
    break;
  }
  std::string sql = o.uses_hours ? hours_sql : "";
  sql += "SELECT id, uid, iface, proto, src_addr, src_port, dst_addr, dst_port, vlan, start_ns, "
         "end_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes, state, history, close_reason, "
         "rtt_ns, orig_guessed, community_id" +
         health_columns_sql() +
         ", pid, comm, cgroup FROM connections c WHERE c.end_ns >= :since AND c.start_ns < :until" +
         filters_sql(o) + " ORDER BY " + order + ", id LIMIT :top";
  return sql;
}

std::optional<int64_t> end_bound(sql::Database &db, const char *query, int64_t since) {
  sql::Statement statement(db, query);
  sql::ResetGuard guard(statement);
  if (int index = statement.parameter(":since"))
    statement.bind(index, since);
  if (!statement.step() || statement.is_null(0))
    return std::nullopt;
  return statement.int64(0);
}

// The first and last hour of end_ns a connection of the window may have,
// if the window is short enough to seek each.
std::optional<std::pair<int64_t, int64_t>> index_hours(sql::Database &db, const ReportOptions &o) {
  auto first =
      end_bound(db, "SELECT min(end_ns) FROM connections WHERE end_ns >= :since", o.since_ns);
  auto last = end_bound(db, "SELECT max(end_ns) FROM connections", o.since_ns);
  if (!first || !last)
    return std::pair<int64_t, int64_t>{0, -1}; // no connection: no hour
  auto hours = std::pair{floor_div(*first, index_hour_ns), floor_div(*last, index_hour_ns)};
  if (hours.second - hours.first >= max_index_hours)
    return std::nullopt;
  return hours;
}

// Whether the database has the indexes of address_index_sql.
bool has_address_indexes(sql::Database &db) {
  sql::Statement statement(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                               "name IN ('connections_src_hour', 'connections_dst_hour')");
  return statement.step() && statement.int64(0) == 2;
}

Rows conn_rows(sql::Database &db, const ReportOptions &o) {
  auto hours =
      o.filter.admits_all() || !has_address_indexes(db) ? std::nullopt : index_hours(db, o);
  auto filter = o.filter.sql(hours.has_value());
  sql::Statement statement(db, conn_sql(o, filter));
  sql::ResetGuard guard(statement);
  bind_query(statement, o, filter, hours ? hours->first : 0, hours ? hours->second : -1);
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

} // namespace

std::string make_report(sql::Database &db, const ReportOptions &options, ChartData *chart) {
  add_filter_functions(db);
  Rows rows =
      options.by == ReportBy::conn ? conn_rows(db, options) : traffic_rows(db, options, chart);
  switch (options.format) {
  case ReportFormat::json:
    return format_json(rows);
  case ReportFormat::csv:
    return format_csv(rows);
  case ReportFormat::table:
    break;
  }
  return format_table(rows, options);
}

int run_report(const ReportOptions &options) {
  auto db = open_database_read_only(options.db);
  std::string out;
  ChartData chart;
  try {
    out = make_report(db, options, options.chart ? &chart : nullptr);
  } catch (const sql::Error &e) {
    int code =
        e.primary() == SQLITE_CORRUPT || e.primary() == SQLITE_NOTADB ? exit_usage : exit_failure;
    fail(code, "{}", e.what());
  }
  if (options.chart)
    write_chart(*options.chart, chart);
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
    fail(exit_failure, "cannot write the report: {}", errno_text(errno));
  return 0;
}

} // namespace tcflows
