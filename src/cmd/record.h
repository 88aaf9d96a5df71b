// `tcflows record`: attach, count, show the live table, detach on exit.
#pragma once

#include "agent/options.h"

namespace tcflows {

int run_record(const RecordOptions &options);

} // namespace tcflows
