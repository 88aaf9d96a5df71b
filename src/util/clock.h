// The packet clock (CLOCK_BOOTTIME, what the TC program stamps) and Unix
// epoch time, which records carry.
#pragma once

#include <cstdint>

namespace tcflows {

// CLOCK_BOOTTIME now, in ns: the packet clock's present.
uint64_t boot_now_ns();

// CLOCK_REALTIME now, in Unix epoch ns: the time records and exports carry.
uint64_t epoch_now_ns();

// Unix epoch ns of packet-clock time `boot_ns`, given the offset
// CLOCK_REALTIME - CLOCK_BOOTTIME. Times before the epoch become 0.
uint64_t boot_to_epoch(uint64_t boot_ns, int64_t boot_to_epoch_ns);

// CLOCK_REALTIME - CLOCK_BOOTTIME in ns, now: each realtime reading is taken
// between two boottime readings and the tightest of a few tries is kept, so
// the error is at most half that bracket (well below a microsecond normally).
int64_t measure_boot_to_epoch_ns();

} // namespace tcflows
