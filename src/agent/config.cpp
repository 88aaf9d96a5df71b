#include "agent/config.h"

#include "util/clock.h"
#include "util/hash.h"

#include <fstream>
#include <string>

namespace tcflows {

namespace {

// The idle timeouts by enum tcf_idle_class: the program's and the tracker's.
std::array<std::chrono::nanoseconds, TCF_IDLE_MAX> idle_timeouts(const RecordOptions &options) {
  return {options.tcp_timeout, options.udp_timeout, options.icmp_timeout, options.other_timeout};
}

} // namespace

tcf_config kernel_config(const RecordOptions &options) {
  tcf_config config{};
  auto idle = idle_timeouts(options);
  for (int c = 0; c < TCF_IDLE_MAX; c++)
    config.idle_ns[c] = idle[c].count();
  return config;
}

TrackerConfig tracker_config(const RecordOptions &options, size_t interfaces) {
  TrackerConfig config;
  config.idle = idle_timeouts(options);
  config.linger = options.linger;
  config.boot_to_epoch_ns = measure_boot_to_epoch_ns();
  config.uid_salt = boot_salt();
  config.community_id_seed = options.community_id_seed;
  LiveTable live(live_table_config(options, interfaces));
  config.live_rows = live.enabled() ? live.rows() : 0;
  config.count_states = !options.metrics.empty();
  return config;
}

TrackerConfig replay_tracker_config(const RecordOptions &options) {
  TrackerConfig config;
  config.idle = idle_timeouts(options);
  config.linger = options.linger;
  config.community_id_seed = options.community_id_seed;
  return config;
}

OutputsConfig outputs_config(const RecordOptions &options) {
  OutputsConfig config;
  config.jsonl = options.jsonl;
  config.ipfix = options.ipfix;
  config.ipfix_active = options.ipfix_active;
  if (!options.no_db)
    config.store = StoreConfig{.path = options.db, .retention = options.retention};
  return config;
}

LiveTableConfig live_table_config(const RecordOptions &options, size_t interfaces) {
  LiveTableConfig config;
  // JSON lines on standard output leave it to them.
  config.enabled = !options.quiet && options.jsonl != "-";
  config.format = options.format;
  config.by = options.by;
  config.top = options.top;
  config.top_given = options.top_given;
  config.show_iface = interfaces > 1;
  return config;
}

uint64_t boot_salt() {
  std::string id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> id;
  return fnv1a(id); // the same on every build: uids stay stable across upgrades
}

} // namespace tcflows
