#include "agent/config.h"

#include "util/clock.h"
#include "util/hash.h"

#include <fstream>
#include <string>

namespace tcflows {

tcf_config kernel_config(const RecordOptions &options) {
  tcf_config config{};
  config.idle_ns[TCF_IDLE_TCP] = options.tcp_timeout.count();
  config.idle_ns[TCF_IDLE_UDP] = options.udp_timeout.count();
  config.idle_ns[TCF_IDLE_ICMP] = options.icmp_timeout.count();
  config.idle_ns[TCF_IDLE_OTHER] = options.other_timeout.count();
  config.flags = TCF_CFG_EVENTS;
  return config;
}

TrackerConfig tracker_config(const RecordOptions &options) {
  TrackerConfig config;
  config.tcp_idle = options.tcp_timeout;
  config.udp_idle = options.udp_timeout;
  config.icmp_idle = options.icmp_timeout;
  config.other_idle = options.other_timeout;
  config.linger = options.linger;
  config.boot_to_epoch_ns = measure_boot_to_epoch_ns();
  config.uid_salt = boot_salt();
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
