#include "kernel/maps.h"

#include "util/error.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <vector>

namespace tcflows {

Counters read_counters(int map_fd) {
  static const int cpus = libbpf_num_possible_cpus();
  Counters totals{};
  std::vector<uint64_t> per_cpu(cpus > 0 ? cpus : 1);
  for (uint32_t i = 0; i < TCF_CTR_MAX; i++) {
    if (bpf_map_lookup_elem(map_fd, &i, per_cpu.data()))
      fail(exit_failure, "reading the counters map failed: {}", errno_text(errno));
    for (uint64_t value : per_cpu)
      totals[i] += value;
  }
  return totals;
}

} // namespace tcflows
