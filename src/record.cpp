#include "record.h"

#include "agent.h"
#include "bpf_program.h"
#include "log.h"
#include "netif.h"
#include "privileges.h"
#include "tc_attach.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

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
  config.kernel = kernel_config(options);
  BpfProgram program = BpfProgram::load(config);

  std::vector<InterfaceHook> hooks;
  for (auto &iface : ifaces)
    hooks.emplace_back(iface, program.ingress_fd(), program.egress_fd(),
                       TcOptions{.priority = options.tc_priority});
  for (const auto &hook : hooks)
    log::info("recording on {}", hook.iface().name);

  Agent agent(io, signals, program, options, hooks.size());
  agent.start([&hooks] { hooks.clear(); });
  io.run();
  return 0;
}

} // namespace tcflows
