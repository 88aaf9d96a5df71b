// Joins connections to the processes that own their local sockets: the
// owner the socket tracing programs wrote for a connection's tuple is looked
// up when the agent makes the connection's records, its cgroup's path
// resolved, and kept for the connection (track/owner_cache.h).
#pragma once

#include "agent/cgroup.h"
#include "kernel/proc_program.h"
#include "sinks/stats.h"
#include "track/conn.h"
#include "track/owner_cache.h"

#include <array>
#include <chrono>
#include <optional>
#include <span>
#include <vector>

namespace tcflows {

class ProcessJoin {
public:
  // Without a program (it could not be attached), records stay without owners.
  explicit ProcessJoin(std::optional<ProcProgram> program);

  // Gives each update's record its connection's owner (see OwnerCache).
  void annotate(std::span<ConnUpdate> updates);
  // The owners already known, for the live table.
  void annotate(std::span<ConnRecord> records) const;

  ProcStats stats() const;

private:
  std::optional<ProcessOwner> find(const ConnRecord &record);
  // Whether an address of `key` is one of this network namespace's.
  bool local(const tcf_flow_key &key);

  std::optional<ProcProgram> program_;
  CgroupPaths cgroups_;
  OwnerCache owners_;
  std::vector<std::array<uint32_t, 4>> addresses_; // this namespace's, as in flow keys
  std::chrono::steady_clock::time_point addresses_read_{};
};

} // namespace tcflows
