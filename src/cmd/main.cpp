#include "cmd/cli.h"
#include "cmd/read.h"
#include "cmd/record.h"
#include "report/report.h"
#include "util/error.h"
#include "util/log.h"

#include <exception>

namespace {

struct Run {
  int operator()(const tcflows::RecordOptions &options) const {
    return tcflows::run_record(options);
  }
  int operator()(const tcflows::ReadOptions &options) const { return tcflows::run_read(options); }
  int operator()(const tcflows::ReportOptions &options) const {
    return tcflows::run_report(options);
  }
  int operator()(const tcflows::DetachOptions &options) const {
    return tcflows::run_detach(options);
  }
};

} // namespace

int main(int argc, char **argv) {
  using namespace tcflows;
  try {
    Command command = parse_command_line(argc, argv);
    if (command.verbose)
      log::set_level(log::Level::debug);
    log::route_libbpf();
    return std::visit(Run{}, command.options);
  } catch (const Fatal &e) {
    log::error("{}", e.what());
    return e.exit_code();
  } catch (const std::exception &e) {
    log::error("{}", e.what());
    return exit_failure;
  }
}
