// `tcflows report`: traffic and connections over a time window, read from
// the database.
//
// --by flow|host|port|proto count the traffic deltas whose interval ends
// inside the window (since, until], so a connection that lasted days counts
// only what it carried in the window, at interval precision. --by conn lists
// the connections active in the window (start before until, last packet at or
// after since) with their whole counts.
#pragma once

#include "report/options.h"
#include "sinks/sqlite.h"

#include <string>

namespace tcflows {

// The report over an open database in the format options.format names.
std::string make_report(sql::Database &db, const ReportOptions &options);

// Opens options.db read-only and prints the report. Returns the exit code;
// throws Fatal (exit 2) for a missing, foreign, corrupt or newer database.
int run_report(const ReportOptions &options);

} // namespace tcflows
