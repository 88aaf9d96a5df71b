// The live traffic table: one row per flow direction, largest first.
#pragma once

#include "kernel/maps.h"
#include "sinks/store.h"
#include "track/conn.h"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tcflows {

struct DirectionRow {
  tcf_flow_key key; // canonical key of the flow
  int dir;          // TCF_DIR_FWD: endpoint 0 to 1
  uint64_t packets;
  uint64_t bytes;
};

// Rows for both directions of every flow that carried traffic, by bytes
// (then packets) descending.
std::vector<DirectionRow> direction_rows(const std::vector<FlowEntry> &flows);

// Interface names by index (also of interfaces that are gone).
using IfaceNames = std::function<std::string(uint32_t ifindex)>;

struct Status {
  size_t flows = 0;
  uint32_t max_flows = 0;
  Counters counters{};
  size_t open_connections = 0;
  uint64_t finished_connections = 0;
  uint64_t events = 0;
  // The tracker's own loss accounting (see TrackerStats).
  uint64_t finals_from_snapshot = 0;
  uint64_t counter_regressions = 0;
  uint64_t events_unmatched = 0;
  std::optional<StoreStats> store; // with a database
  bool ipfix = false;              // --ipfix is on: the two counts below are shown
  uint64_t ipfix_sent = 0;
  uint64_t ipfix_failed = 0;
};

// "flows 12/65536  malformed 0  failed inserts 0 ..."
std::string status_line(const Status &status);

// The table, at most `top` rows, then the status line. With `show_iface`
// an IFACE column follows BYTES.
std::string format_table(const std::vector<DirectionRow> &rows, size_t top, bool show_iface,
                         const Status &status, const IfaceNames &names);

// One JSON line: {"ts_ns", "flows": [...], "counters": {...}} with exact numbers.
std::string format_json(uint64_t ts_ns, const std::vector<DirectionRow> &rows, size_t top,
                        const Status &status, const IfaceNames &names);

// The live `--by conn` table: one row per open connection (largest first),
// with start time, duration, state and traffic each way.
std::string format_conn_table(std::vector<ConnRecord> conns, size_t top, const Status &status);

// The same as one JSON line: {"ts_ns", "connections": [...], "counters": {...}}.
std::string format_conn_json(uint64_t ts_ns, std::vector<ConnRecord> conns, size_t top,
                             const Status &status);

} // namespace tcflows
