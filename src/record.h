// `tcflows record`: attach, count, show the live table, detach on exit.
#pragma once

#include "cli.h"

namespace tcflows {

int run_record(const RecordOptions &options);

} // namespace tcflows
