// Reading the TC program's counters from user space.
#pragma once

#include "kernel/abi.h"
#include "kernel/counters.h"

#include <cstdint>

namespace tcflows {

// The per-CPU counters, summed over all CPUs.
Counters read_counters(int map_fd);

} // namespace tcflows
