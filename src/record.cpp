#include "record.h"

#include "bpf_program.h"
#include "error.h"
#include "live_table.h"
#include "log.h"
#include "maps.h"
#include "netif.h"
#include "privileges.h"
#include "tc_attach.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <limits>

namespace tcflows {
namespace {

namespace asio = boost::asio;

std::vector<Interface> resolve_interfaces(const std::vector<std::string> &names) {
  std::vector<Interface> ifaces;
  if (names.empty())
    ifaces.push_back(default_route_interface());
  for (const auto &name : names)
    ifaces.push_back(resolve_interface(name));
  return ifaces;
}

uint64_t realtime_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

// The live output: one snapshot per interval until a signal stops the loop.
class LiveLoop {
public:
  LiveLoop(asio::io_context &io, asio::signal_set &signals, const BpfProgram &program,
           const RecordOptions &options, size_t iface_count)
      : program_(program), options_(options), show_iface_(iface_count > 1), timer_(io),
        signals_(signals), tty_(::isatty(STDOUT_FILENO)) {}

  void start() {
    signals_.async_wait([this](const boost::system::error_code &error, int signal) {
      if (error)
        return;
      log::debug("signal {}: stopping", signal);
      timer_.cancel();
      show(); // the final numbers, counted up to the stop
    });
    schedule();
  }

private:
  void schedule() {
    timer_.expires_after(options_.interval);
    timer_.async_wait([this](const boost::system::error_code &error) {
      if (error)
        return;
      show();
      schedule();
    });
  }

  void show() {
    if (options_.quiet)
      return;
    auto flows = read_flows(program_.flows_fd());
    Status status{flows.size(), program_.max_flows(), read_counters(program_.counters_fd())};
    auto rows = direction_rows(flows);
    if (options_.format == LiveFormat::json) {
      size_t top = options_.top_given ? options_.top : std::numeric_limits<size_t>::max();
      std::fputs((format_json(realtime_ns(), rows, top, status) + '\n').c_str(), stdout);
    } else {
      std::string table = format_table(rows, options_.top, show_iface_, status);
      std::fputs(tty_ ? "\x1b[H\x1b[2J" : "\n", stdout);
      std::fputs(table.c_str(), stdout);
    }
    std::fflush(stdout);
  }

  const BpfProgram &program_;
  const RecordOptions &options_;
  bool show_iface_;
  asio::steady_timer timer_;
  asio::signal_set &signals_;
  bool tty_;
};

} // namespace

int run_record(const RecordOptions &options) {
  auto ifaces = resolve_interfaces(options.ifaces);
  require_capture_privileges();
  // Signals are caught from before the first attach, so that a stop always detaches.
  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);

  ProgramConfig config;
  config.max_flows = options.max_flows;
  config.ringbuf_bytes = options.ringbuf_bytes;
  BpfProgram program = BpfProgram::load(config);

  std::vector<InterfaceHook> hooks;
  for (auto &iface : ifaces)
    hooks.emplace_back(iface, program.ingress_fd(), program.egress_fd(),
                       TcOptions{.priority = options.tc_priority});
  for (const auto &hook : hooks)
    log::info("recording on {}", hook.iface().name);

  LiveLoop loop(io, signals, program, options, hooks.size());
  loop.start();
  io.run();
  return 0;
}

} // namespace tcflows
