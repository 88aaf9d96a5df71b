#include "cmd/record.h"

#include "agent/agent.h"
#include "agent/config.h"
#include "attach/attachments.h"
#include "attach/iface_lock.h"
#include "attach/left_recording.h"
#include "attach/link_monitor.h"
#include "attach/netif.h"
#include "attach/privileges.h"
#include "attach/tc_attach.h"
#include "kernel/bpf_program.h"
#include "kernel/conn_table.h"
#include "sinks/outputs.h"
#include "util/log.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <optional>

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

// The lock files of a recording, released on any orderly exit: only a crash
// or SIGKILL leaves them (and the filters, which keep counting) for a
// restarted agent to adopt. An agent that adopts them and fails before its
// programs run in the filters leaves them too, for the next attempt.
class CleanExit {
public:
  CleanExit(std::vector<InterfaceLock> &locks, bool adopting) : locks_(locks), keep_(adopting) {}
  ~CleanExit() {
    if (keep_)
      return;
    for (auto &lock : locks_)
      lock.release();
  }
  void attached() { keep_ = false; }

private:
  std::vector<InterfaceLock> &locks_;
  bool keep_;
};

} // namespace

int run_record(const RecordOptions &options) {
  auto ifaces = resolve_interfaces(options.ifaces);
  require_capture_privileges();
  // Signals are caught from before the first attach, so that a stop always detaches.
  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);

  // One recording per interface; what an earlier agent of this one left is adopted.
  std::vector<InterfaceLock> locks;
  for (const auto &iface : ifaces)
    locks.emplace_back(iface.name);
  for (auto &lock : locks) // all taken: a refused one leaves the others as they were
    lock.claim();
  TcOptions tc{.priority = options.tc_priority};
  std::optional<LeftRecording> left = find_left_recording(ifaces, tc);

  ProgramConfig config;
  config.max_flows = options.max_flows;
  config.ringbuf_bytes = options.ringbuf_bytes;
  config.kernel = kernel_config(options);
  config.adopt = left ? &left->maps : nullptr;
  BpfProgram program = BpfProgram::load(config);
  CleanExit clean_exit(locks, program.adopted());
  if (left)
    log::info("adopting the counts the filters kept since the last agent stopped (program {})",
              left->maps.prog_id());
  Adoption adoption{left ? left->prog_ids : std::vector<uint32_t>{}};
  left.reset(); // our program holds the maps now

  // The table's shared memory, and the map that waits for running programs
  // (creating a map needs CAP_BPF).
  auto table = kernel_conn_table(program);
  // Process attribution: the socket tracing programs, if asked for and the kernel takes them.
  std::optional<ProcProgram> proc;
  if (!options.no_process)
    proc = ProcProgram::attach(options.max_flows);

  // Everything that needs more than CAP_NET_ADMIN is done: drop the rest.
  for (const auto &lock : locks)
    give_to_user(lock.path(), options.user);
  drop_privileges(options.user);

  // The outputs open with the rights records are written with, and before
  // attaching: a database, a --jsonl file or a collector that cannot be used
  // stops us here.
  Outputs outputs(io, outputs_config(options));

  Attachments attachments({program.ingress_fd(), program.egress_fd(), tc}, ifaces, locks, adoption);
  clean_exit.attached();
  LinkMonitor links(io, [&attachments](const LinkChange &c) { attachments.on_link(c); });
  Agent agent(io, signals, program, *table, options, attachments, outputs, std::move(proc));
  links.start();
  agent.start([&] {
    links.stop();
    attachments.detach_all();
  });
  io.run();
  return 0;
}

} // namespace tcflows
