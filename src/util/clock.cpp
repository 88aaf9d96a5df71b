#include "util/clock.h"

#include <time.h>

#include <limits>

namespace tcflows {
namespace {

int64_t read_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

} // namespace

uint64_t boot_now_ns() { return static_cast<uint64_t>(read_ns(CLOCK_BOOTTIME)); }

uint64_t epoch_now_ns() { return static_cast<uint64_t>(read_ns(CLOCK_REALTIME)); }

uint64_t boot_to_epoch(uint64_t boot_ns, int64_t boot_to_epoch_ns) {
  if (boot_to_epoch_ns < 0 && boot_ns < uint64_t(-boot_to_epoch_ns))
    return 0;
  return boot_ns + uint64_t(boot_to_epoch_ns); // modular: adds a negative offset too
}

int64_t measure_boot_to_epoch_ns() {
  int64_t best_offset = 0, best_gap = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < 5; i++) {
    int64_t before = read_ns(CLOCK_BOOTTIME);
    int64_t real = read_ns(CLOCK_REALTIME);
    int64_t after = read_ns(CLOCK_BOOTTIME);
    if (after - before < best_gap) {
      best_gap = after - before;
      best_offset = real - (before + (after - before) / 2);
    }
  }
  return best_offset;
}

} // namespace tcflows
