#include "report/query.h"

#include <limits>

namespace tcflows {
namespace {

void bind_named(sql::Statement &statement, const char *name, const SqlValue &value) {
  if (int index = statement.parameter(name)) {
    if (const auto *n = std::get_if<int64_t>(&value))
      statement.bind(index, *n);
    else
      statement.bind(index, std::string_view(std::get<std::string>(value)));
  }
}

} // namespace

std::string filters_sql(const FilterSql &o) {
  const std::string &sql = o.sql; // code-chosen fragments and :f parameters
  if (sql.empty())
    return sql;
  return " AND " + sql;
}

void bind_query(sql::Statement &statement, const ReportOptions &options, const FilterSql &filter,
                int64_t first_hour, int64_t last_hour) {
  bind_named(statement, ":since", options.since_ns);
  bind_named(statement, ":until", options.until_ns.value_or(std::numeric_limits<int64_t>::max()));
  bind_named(statement, ":top", options.top ? static_cast<int64_t>(*options.top) : int64_t{-1});
  bind_named(statement, ":first_hour", first_hour);
  bind_named(statement, ":last_hour", last_hour);
  for (const auto &[name, value] : filter.params)
    bind_named(statement, name.c_str(), value);
}

} // namespace tcflows
