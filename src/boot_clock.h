// The packet clock (CLOCK_BOOTTIME, bpf_ktime_get_boot_ns) against wall time.
#pragma once

#include <cstdint>

namespace tcflows {

// CLOCK_BOOTTIME now, in ns.
uint64_t boot_now_ns();

// Unix epoch ns minus CLOCK_BOOTTIME ns: add it to a packet timestamp to get
// wall time. Measured as the tightest of several REALTIME/BOOTTIME/REALTIME
// brackets, so the error is well under a microsecond.
int64_t measure_boot_to_epoch_ns();

} // namespace tcflows
