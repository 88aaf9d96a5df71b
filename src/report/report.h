// `tcflows report`: traffic and connections over a time window, read from
// the database.
//
// --by flow|host|port|proto|total count the traffic rows whose interval ends
// inside the window (since, until], so a connection that lasted days counts
// only what it carried in the window, at interval precision; with --every,
// per time bucket (report/traffic.h). --by conn lists the connections active
// in the window (start before until, last packet at or after since) with
// their whole counts. The filter selects connections (report/filter.h).
#pragma once

#include "report/options.h"
#include "report/rows.h"
#include "sinks/sqlite.h"

#include <string>

namespace tcflows {

// The report over an open database in the format options.format names;
// fills `chart` (time buckets only) when given.
std::string make_report(sql::Database &db, const ReportOptions &options,
                        ChartData *chart = nullptr);

// Opens options.db read-only, prints the report and draws --chart. Returns
// the exit code; throws Fatal (exit 2) for a missing, foreign, corrupt or
// newer database.
int run_report(const ReportOptions &options);

} // namespace tcflows
