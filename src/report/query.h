// What the report's queries share: the window and the filter as SQL with
// named parameters, and their binding.
#pragma once

#include "report/filter.h"
#include "report/options.h"
#include "sinks/sqlite.h"

#include <string>

namespace tcflows {

// " AND (<the filter>)", or "" when it admits everything.
std::string filters_sql(const FilterSql &o);

// Binds :since, :until, :top, :first_hour, :last_hour and the filter's
// values, each where the statement has it.
void bind_query(sql::Statement &statement, const ReportOptions &options, const FilterSql &filter,
                int64_t first_hour = 0, int64_t last_hour = -1);

// Floor division: the bucket of a time, also before 1970.
inline int64_t floor_div(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

} // namespace tcflows
