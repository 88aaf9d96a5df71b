#include "cmd/record.h"

#include "agent/agent.h"
#include "agent/config.h"
#include "attach/attachments.h"
#include "attach/iface_lock.h"
#include "attach/link_monitor.h"
#include "attach/netif.h"
#include "attach/privileges.h"
#include "attach/tc_attach.h"
#include "kernel/bpf_program.h"
#include "kernel/conn_table.h"
#include "kernel/pins.h"
#include "sinks/outputs.h"
#include "util/log.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <filesystem>

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

// The pins and lock files of a recording, removed on any orderly exit: only a
// crash or SIGKILL leaves them for a restarted agent to adopt. An agent that
// adopts them and fails before it has attached leaves them too (but for its
// own staged program pins), for the next attempt.
class CleanExit {
public:
  CleanExit(std::string pin_dir, std::vector<InterfaceLock> &locks, bool adopting)
      : pin_dir_(std::move(pin_dir)), locks_(locks), keep_(adopting) {}
  ~CleanExit() {
    if (keep_) {
      remove_staged_pins(pin_dir_);
      return;
    }
    remove_pin_dir(pin_dir_);
    std::error_code ignored;
    std::filesystem::remove(pin_root, ignored); // only when empty
    for (auto &lock : locks_)
      lock.release();
  }
  // Our programs run in the filters: what is pinned is ours.
  void attached() {
    commit_staged_pins(pin_dir_);
    keep_ = false;
  }

private:
  std::string pin_dir_;
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
  ensure_bpffs();
  std::vector<std::string> names;
  for (const auto &iface : ifaces)
    names.push_back(iface.name);
  std::string pin_dir = pin_dir_for(names);
  Adoption adoption{pinned_prog_id(pin_dir, "ingress"), pinned_prog_id(pin_dir, "egress")};

  ProgramConfig config;
  config.max_flows = options.max_flows;
  config.ringbuf_bytes = options.ringbuf_bytes;
  config.kernel = kernel_config(options);
  config.pin_dir = pin_dir;
  BpfProgram program = BpfProgram::load(config);
  CleanExit clean_exit(pin_dir, locks, program.adopted());
  if (program.adopted())
    log::info("adopting the counts kept in {} since the last agent stopped", pin_dir);

  // The table's shared memory, and the map that waits for running programs
  // (creating a map needs CAP_BPF).
  auto table = kernel_conn_table(program);

  // Everything that needs more than CAP_NET_ADMIN is done: drop the rest.
  give_to_user(pin_dir, options.user);
  for (const auto &iface : ifaces)
    give_to_user(std::string(run_dir) + "/" + iface.name + ".lock", options.user);
  drop_privileges(options.user);

  // The outputs open with the rights records are written with, and before
  // attaching: a database, a --jsonl file or a collector that cannot be used
  // stops us here.
  Outputs outputs(io, outputs_config(options));

  Attachments attachments(
      {program.ingress_fd(), program.egress_fd(), TcOptions{.priority = options.tc_priority}},
      ifaces, locks, adoption);
  clean_exit.attached();
  LinkMonitor links(io, [&attachments](const LinkChange &c) { attachments.on_link(c); });
  Agent agent(io, signals, program, *table, options, attachments, outputs);
  links.start();
  agent.start([&] {
    links.stop();
    attachments.detach_all();
  });
  io.run();
  return 0;
}

} // namespace tcflows
