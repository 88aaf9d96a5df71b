// One snapshot of everything the agent counts, taken on its loop. The status
// line, the JSON snapshot's "counters" and the Prometheus metrics are all
// printed from it, each number named once: the kernel's in kernel_counters
// (kernel/counters.h), the store's in store_counters (sinks/store.h), the
// agent's and the tracker's in agent_counters below.
#pragma once

#include "kernel/counters.h"
#include "sinks/ipfix_export.h"
#include "sinks/store.h"
#include "track/conn.h"
#include "track/tracker.h"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tcflows {

// Packets and bytes of the connections recorded on one interface, by
// direction from the kernel's point of view (in: TC ingress, out: TC egress),
// summed from the records' deltas (so they advance at every --interval). Each
// direction of a connection crosses one hook, the one its first packet showed;
// on loopback, where only ingress is hooked, all is "in". Frames no flow took
// (malformed, map full) are in the kernel counters, not here. Slot 2
// ("unknown") stays for the format and is always 0.
struct InterfaceTraffic {
  uint64_t pkts[3] = {}; // [0] in, [1] out, [2] unknown
  uint64_t bytes[3] = {};
};

struct ProcessMetrics {
  double cpu_seconds = 0; // user + system
  uint64_t rss_bytes = 0;
};

struct Stats {
  // The kernel's.
  uint64_t flows = 0; // entries in the flow map
  uint64_t max_flows = 0;
  Counters counters{};           // the TC program's, summed over CPUs
  uint64_t events = 0;           // ring-buffer events consumed
  uint64_t events_malformed = 0; // ring-buffer samples too short for an event, dropped
  // The tracker's.
  uint64_t open_connections = 0;
  uint64_t finished_connections = 0;
  TrackerStats tracker;
  // Open connections by conn_state; filled for the metrics only (it costs a
  // record per open connection).
  std::map<ConnState, uint64_t> open_by_state;
  // The outputs'.
  std::map<std::pair<ConnState, CloseReason>, uint64_t> closed; // final records delivered
  std::map<std::string, InterfaceTraffic> interfaces;           // by name
  std::optional<StoreStats> store;                              // with a database
  std::optional<uint64_t> jsonl_errors;                         // with --jsonl
  std::optional<std::vector<CollectorStatus>> ipfix;            // with --ipfix
  uint64_t ipfix_skipped = 0;
  // The process's; filled for the metrics only.
  ProcessMetrics process;
};

// The agent's and the tracker's numbers: their JSON snapshot key, Prometheus
// family (type, help) and status-line format (shown when not 0; "" never).
struct AgentCounter {
  std::string_view name;
  std::string_view metric;
  std::string_view type; // "counter" or "gauge"
  std::string_view help;
  std::string_view status;
  uint64_t (*value)(const Stats &);
};

inline constexpr std::array<AgentCounter, 8> agent_counters{{
    {"flows", "tcflows_flows", "gauge", "Entries in the kernel flow map.", "",
     [](const Stats &s) { return s.flows; }},
    {"max_flows", "tcflows_flows_max", "gauge", "Capacity of the kernel flow map (--max-flows).",
     "", [](const Stats &s) { return s.max_flows; }},
    {"events", "tcflows_ringbuf_events_total", "counter", "Ring-buffer events the agent consumed.",
     "", [](const Stats &s) { return s.events; }},
    {"finals_from_snapshot", "tcflows_tracker_finals_from_snapshot_total", "counter",
     "Connections finalised from their last map snapshot because their final value never came: "
     "packets after it are missing from their records.",
     "finals from snapshot {}", [](const Stats &s) { return s.tracker.finals_from_snapshot; }},
    {"counter_regressions", "tcflows_tracker_torn_reads_total", "counter",
     "Map reads below counters already reported (torn by a concurrent split): held at zero.",
     "torn reads {}", [](const Stats &s) { return s.tracker.counter_regressions; }},
    {"events_unmatched", "tcflows_tracker_events_unmatched_total", "counter",
     "Ring-buffer events that matched no connection: history detail only.", "",
     [](const Stats &s) { return s.tracker.events_unmatched; }},
    {"totals_dropped", "tcflows_tracker_totals_dropped_total", "counter",
     "Flow totals the live table forgot (the smallest, past its bound); records keep them.", "",
     [](const Stats &s) { return s.tracker.totals_dropped; }},
    {"events_malformed", "tcflows_ringbuf_events_malformed_total", "counter",
     "Ring-buffer samples too short for an event (a program of another version): dropped.",
     "malformed events {}", [](const Stats &s) { return s.events_malformed; }},
}};

} // namespace tcflows
