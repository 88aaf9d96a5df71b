// `tcflows read FILE...`: capture files through the TC program, offline, into
// the outputs `record` writes.
#pragma once

#include "agent/options.h"

namespace tcflows {

// Exit 2 with one line when no file can be read; bad frames are counted and
// shown at the end.
int run_read(const ReadOptions &options);

} // namespace tcflows
