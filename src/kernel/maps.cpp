#include "kernel/maps.h"

#include "util/error.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

namespace tcflows {

std::vector<FlowEntry> read_flows(int map_fd) {
  std::vector<FlowEntry> entries;
  uint32_t chunk = 4096;
  std::vector<tcf_flow_key> keys(chunk);
  std::vector<tcf_flow_val> vals(chunk);
  uint32_t batch = 0;
  bool first = true;
  for (;;) {
    uint32_t count = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(map_fd, first ? nullptr : &batch, &batch, keys.data(),
                                   vals.data(), &count, &opts);
    if (err && err != -ENOENT && err != -ENOSPC)
      fail(exit_failure, "reading the flow map failed: {}", errno_text(err));
    for (uint32_t i = 0; i < count; i++)
      entries.push_back({keys[i], vals[i]});
    if (err == -ENOENT)
      return entries;
    if (err == -ENOSPC && count == 0) {
      // One hash bucket holds more entries than the buffer: grow it.
      chunk *= 2;
      keys.resize(chunk);
      vals.resize(chunk);
      continue;
    }
    first = false;
  }
}

std::vector<EndedEntry> drain_ended(int map_fd) {
  // Key by key: batch lookup-and-delete would skip entries the program adds
  // to a bucket while the batch walks it.
  std::vector<EndedEntry> entries;
  tcf_ended_key key{};
  for (;;) {
    if (bpf_map_get_next_key(map_fd, nullptr, &key))
      return entries;
    auto val = take_ended(map_fd, key);
    if (!val) // cannot happen single-threaded; never spin on it
      return entries;
    entries.push_back({key, *val});
  }
}

std::optional<tcf_flow_val> take_ended(int map_fd, const tcf_ended_key &key) {
  tcf_flow_val val;
  if (bpf_map_lookup_and_delete_elem(map_fd, &key, &val))
    return std::nullopt;
  return val;
}

std::optional<tcf_flow_val> remove_flow(int map_fd, const tcf_flow_key &key) {
  tcf_flow_val val;
  if (bpf_map_lookup_and_delete_elem(map_fd, &key, &val))
    return std::nullopt;
  return val;
}

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
