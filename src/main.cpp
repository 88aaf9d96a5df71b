#include "cli.h"
#include "error.h"
#include "log.h"
#include "record.h"
#include "report.h"

#include <exception>

namespace {

int run(const tcflows::RecordOptions &options) { return tcflows::run_record(options); }
int run(const tcflows::ReportOptions &options) { return tcflows::run_report(options); }

} // namespace

int main(int argc, char **argv) {
  using namespace tcflows;
  try {
    Command command = parse_command_line(argc, argv);
    if (command.verbose)
      log::set_level(log::Level::debug);
    log::route_libbpf();
    return std::visit([](const auto &options) { return run(options); }, command.options);
  } catch (const Fatal &e) {
    log::error("{}", e.what());
    return e.exit_code();
  } catch (const std::exception &e) {
    log::error("{}", e.what());
    return exit_failure;
  }
}
