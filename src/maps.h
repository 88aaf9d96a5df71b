// Reading the TC program's maps from user space.
#pragma once

#include "abi.h"

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tcflows {

struct FlowEntry {
  tcf_flow_key key;
  tcf_flow_val val;
};

// Every entry of a hash map of flow keys, read in batches.
std::vector<FlowEntry> read_flows(int map_fd);

using Counters = std::array<uint64_t, TCF_CTR_MAX>;

// The per-CPU counters, summed over all CPUs.
Counters read_counters(int map_fd);

// The user-facing name of a counter ("malformed", "flow_full", ...).
std::string_view counter_name(int index);

} // namespace tcflows
