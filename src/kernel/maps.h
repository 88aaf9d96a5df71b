// Reading the TC program's counters from user space.
#pragma once

#include "kernel/abi.h"

#include <array>
#include <cstdint>
#include <string_view>

namespace tcflows {

using Counters = std::array<uint64_t, TCF_CTR_MAX>;

// The per-CPU counters, summed over all CPUs.
Counters read_counters(int map_fd);

// The user-facing name of a counter ("malformed", "flow_full", ...).
std::string_view counter_name(int index);

} // namespace tcflows
