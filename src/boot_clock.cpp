#include "boot_clock.h"

#include <ctime>
#include <limits>

namespace tcflows {
namespace {

int64_t read_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

} // namespace

uint64_t boot_now_ns() { return static_cast<uint64_t>(read_ns(CLOCK_BOOTTIME)); }

int64_t measure_boot_to_epoch_ns() {
  int64_t best_gap = std::numeric_limits<int64_t>::max(), offset = 0;
  for (int i = 0; i < 16; i++) {
    int64_t before = read_ns(CLOCK_REALTIME);
    int64_t boot = read_ns(CLOCK_BOOTTIME);
    int64_t after = read_ns(CLOCK_REALTIME);
    if (after - before < best_gap) {
      best_gap = after - before;
      offset = before + (after - before) / 2 - boot;
    }
  }
  return offset;
}

} // namespace tcflows
