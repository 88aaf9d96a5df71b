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

std::string_view counter_name(int index) {
  static constexpr std::string_view names[TCF_CTR_MAX] = {
      "frames",          "gso_frames",     "malformed",         "malformed_bytes",
      "malformed_l2",    "malformed_ipv4", "malformed_ipv6",    "malformed_ipv6_ext",
      "malformed_l4",    "flow_full",      "flow_error",        "untracked_packets",
      "untracked_bytes", "frag_unmatched", "frag_track_failed", "connections",
      "collisions",      "retries",        "doorbells",         "doorbells_lost",
  };
  return index >= 0 && index < TCF_CTR_MAX ? names[index] : "unknown";
}

} // namespace tcflows
