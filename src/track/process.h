// Process attribution: which process owns a connection's local socket, as
// the socket tracing programs (bpf/proc.bpf.c) saw it, and how a connection's
// flow key becomes the keys of their `owners` map.
#pragma once

#include "kernel/abi.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tcflows {

// The process that last sent or received on the connection's local socket
// before the agent first wrote the connection's record.
struct ProcessOwner {
  uint32_t pid = 0; // process id (thread group id) in the root pid namespace
  std::array<char, TCF_COMM_LEN> comm_chars{};
  uint64_t cgroup_id = 0; // cgroup v2 id (0: unknown)
  std::string cgroup;     // its path below the cgroup2 mount ("/" the root), "" unknown

  std::string_view comm() const;
  bool operator==(const ProcessOwner &) const = default;
};

// An owner as the programs wrote it (the cgroup's path still to resolve).
ProcessOwner owner_of(const tcf_proc_owner &owner);

// The `owners` keys that may hold the owner of a connection, in the order
// to try: each endpoint as the local one, the originator (side `orig` of the
// canonical key) first, exactly, then as an unconnected UDP socket (remote
// any, local address as seen, then any). Empty for anything but TCP and UDP.
std::vector<tcf_proc_key> owner_keys(const tcf_flow_key &key, int orig);
} // namespace tcflows
