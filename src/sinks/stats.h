// One snapshot of everything the agent counts, taken on its loop. The status
// line, the JSON snapshot's "counters" and the Prometheus metrics are all
// printed from it, each number named once: the kernel's in kernel_counters
// (kernel/counters.h), the store's in store_counters (sinks/store.h), the
// agent's and the tracker's in agent_counters below.
#pragma once

#include "kernel/counters.h"
#include "kernel/proc_program.h"
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

// Process attribution (agent/process_join.h).
struct ProcStats {
  bool available = false;    // the socket tracing programs are attached
  uint64_t attributed = 0;   // connections given an owner
  uint64_t unattributed = 0; // final records of TCP and UDP connections with an address
                             // of the agent's network namespace, and no owner found
  ProcCounters kernel{};     // the programs' counters (enum tcf_proc_counter)
};

struct Stats {
  // The kernel's.
  uint64_t flows = 0;     // connections in the table (slots in use)
  uint64_t max_flows = 0; // --max-flows
  Counters counters{};    // the TC program's, summed over CPUs
  uint64_t doorbells = 0; // doorbells the agent heard (ring-buffer events)
  uint64_t sweep_us = 0;  // the last sweep's duration
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
  ProcStats proc;
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

inline constexpr std::array<AgentCounter, 11> agent_counters{{
    {"flows", "tcflows_flows", "gauge", "Connections in the kernel's table (slots in use).", "",
     [](const Stats &s) { return s.flows; }},
    {"max_flows", "tcflows_flows_max", "gauge",
     "Live connections the table is sized for (--max-flows).", "",
     [](const Stats &s) { return s.max_flows; }},
    {"doorbells_heard", "tcflows_doorbells_heard_total", "counter",
     "Doorbells the agent heard: the program asked for a sweep as free slots ran low.", "",
     [](const Stats &s) { return s.doorbells; }},
    {"orphans_joined", "tcflows_tracker_orphans_joined_total", "counter",
     "Connections whose first packets were in a slot the index lost while it was pruned: "
     "joined to their connection's record, nothing lost.",
     "", [](const Stats &s) { return s.tracker.orphans_joined; }},
    {"orphans_alone", "tcflows_tracker_orphans_alone_total", "counter",
     "Slots the index lost while it was pruned that no later slot continued: recorded alone.", "",
     [](const Stats &s) { return s.tracker.orphans_alone; }},
    {"totals_dropped", "tcflows_tracker_totals_dropped_total", "counter",
     "Flow totals the live table forgot (the smallest, past its bound); records keep them.", "",
     [](const Stats &s) { return s.tracker.totals_dropped; }},
    {"sweeps", "tcflows_sweeps_total", "counter", "Sweeps of the connection table.", "",
     [](const Stats &s) { return s.tracker.sweeps; }},
    {"proc_available", "tcflows_proc_available", "gauge",
     "1 when the socket tracing programs of process attribution are attached, else 0.", "",
     [](const Stats &s) { return uint64_t(s.proc.available); }},
    {"proc_attributed", "tcflows_proc_attributed_total", "counter",
     "Connections whose local socket's owning process was found.", "",
     [](const Stats &s) { return s.proc.attributed; }},
    {"proc_unattributed", "tcflows_proc_unattributed_total", "counter",
     "Final records of TCP and UDP connections with an address of the agent's network "
     "namespace whose owning process was not found (socket unused since the agent started, "
     "or its map entry evicted).",
     "no process {}", [](const Stats &s) { return s.proc.unattributed; }},
    {"proc_map_full", "tcflows_proc_map_full_total", "counter",
     "Socket owners the kernel's owners map refused.", "proc map full {}",
     [](const Stats &s) { return s.proc.kernel[TCF_PROC_CTR_MAP_FULL]; }},
}};

} // namespace tcflows
