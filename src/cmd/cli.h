// The command line: subcommands and their options.
#pragma once

#include "agent/options.h"
#include "attach/detach.h"
#include "report/options.h"

#include <variant>

namespace tcflows {

struct Command {
  bool verbose = false;
  std::variant<RecordOptions, ReadOptions, ReportOptions, DetachOptions> options;
};

// Parses argv. Throws Fatal (exit 2) with a one-line message on bad input;
// prints help and exits 0 for --help.
Command parse_command_line(int argc, char **argv);

} // namespace tcflows
