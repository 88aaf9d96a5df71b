// Filter expressions over connections, as people who know tcpdump and nfdump
// write them: "host 10.0.0.1 and not port 22", "src net 2001:db8::/32",
// "tcp and (bytes > 1M or duration > 10s)".
//
// A parsed filter becomes an SQL condition over the table connections (as
// `c`) whose text holds only fragments this code chooses (the columns of the
// field table in filter.cpp, operators from a fixed list, parameter names it
// numbers itself); every value typed by the user is a bound parameter.
#pragma once

#include "sinks/sqlite.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tcflows {

using SqlValue = std::variant<int64_t, std::string>;

struct FilterSql {
  std::string sql;                                      // "" when the filter admits everything
  std::vector<std::pair<std::string, SqlValue>> params; // ":f1" -> value
  bool uses_hours = false; // refers to the table `hours` (Filter::sql with the hour index)
};

// Where and why a filter does not parse. column is 1-based, in the text as
// given; token is empty at the end of the text.
struct FilterError {
  size_t column = 0;
  std::string token;
  std::string message;

  // One line: "column 19, 'prot': <message>".
  std::string text() const;
};

struct FilterNode;

class Filter {
public:
  // Admits every connection.
  Filter() = default;

  static std::variant<Filter, FilterError> parse(std::string_view text);

  // The primitive `field value` ("host", "10.0.0.1"): the options --host,
  // --port, --proto and --iface, whatever their value's spelling.
  static std::variant<Filter, FilterError> primitive(std::string_view field,
                                                     std::string_view value);

  // Connections both admit.
  friend Filter operator&&(const Filter &a, const Filter &b);

  bool admits_all() const { return !root_; }

  // The condition. With hour_index, host and net tests also name the hour of
  // end_ns in the table `hours` (h INTEGER), so that SQLite can look them up
  // in the indexes of address_index_sql: the query must then define `hours`
  // to hold every hour its rows may end in.
  FilterSql sql(bool hour_index) const;

private:
  std::shared_ptr<const FilterNode> root_;
};

// Indexes a database may be given for host and net filters over long
// windows (`report --by conn`): each address under the hour of the
// connection's last packet, so that a write touches only the current hour's
// part of them and a lookup seeks once per hour. They cost writes (README,
// Performance), so tcflows does not create them; the report uses them when
// both exist.
inline constexpr const char *address_index_sql =
    "CREATE INDEX connections_src_hour ON connections(end_ns / 3600000000000, src_addr);\n"
    "CREATE INDEX connections_dst_hour ON connections(end_ns / 3600000000000, dst_addr);\n";
inline constexpr int64_t index_hour_ns = 3'600'000'000'000; // the hour of address_index_sql

// Defines tcflows_in_net(addr, net, bits), which the SQL of net tests calls,
// on a connection that reads with filters.
void add_filter_functions(sql::Database &db);

// The words of the grammar and the fields, for `report --help`.
std::string filter_help();

} // namespace tcflows
