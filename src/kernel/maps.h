// Reading the TC program's maps from user space.
#pragma once

#include "kernel/abi.h"
#include "kernel/counters.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace tcflows {

struct FlowEntry {
  tcf_flow_key key;
  tcf_flow_val val;
};

// Every entry of a hash map of flow keys, read in batches.
std::vector<FlowEntry> read_flows(int map_fd);

struct EndedEntry {
  tcf_ended_key key;
  tcf_flow_val val;
};

// Takes every entry out of the ended map (connections the program ended).
std::vector<EndedEntry> drain_ended(int map_fd);

// Takes one connection out of the ended map; nullopt when it is not there.
std::optional<tcf_flow_val> take_ended(int map_fd, const tcf_ended_key &key);

// Deletes a flow entry and returns its last value; nullopt when it was gone.
std::optional<tcf_flow_val> remove_flow(int map_fd, const tcf_flow_key &key);

// The per-CPU counters, summed over all CPUs.
Counters read_counters(int map_fd);

} // namespace tcflows
