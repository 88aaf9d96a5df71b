// The connection tracker: pure logic, no kernel. It turns what the TC program
// reports (flow-map snapshots, connections it ended, ring-buffer events) into
// one ConnRecord per connection, the way Zeek's conn.log describes them.
//
// Time: every *_boot_ns argument is the packet clock (CLOCK_BOOTTIME ns, the
// clock of tcf_flow_val and tcf_event); records carry Unix epoch ns, converted
// with the offset given to the constructor.
#pragma once

#include "kernel/abi.h"
#include "kernel/maps.h"
#include "track/conn.h"
#include "track/flow.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tcflows {

struct TrackerConfig {
  std::chrono::nanoseconds tcp_idle = std::chrono::minutes(5);
  std::chrono::nanoseconds udp_idle = std::chrono::seconds(60);
  std::chrono::nanoseconds icmp_idle = std::chrono::seconds(60);
  std::chrono::nanoseconds other_idle = std::chrono::seconds(60);
  // After FIN both ways or RST, late ACKs and retransmitted FINs still belong
  // to the closed connection for this long (Zeek's tcp_close_delay).
  std::chrono::nanoseconds linger = std::chrono::seconds(5);
  // Unix epoch ns minus CLOCK_BOOTTIME ns, measured by the agent.
  int64_t boot_to_epoch_ns = 0;
  // Tells boots apart in uids (the packet clock restarts at boot): the
  // agent derives it from the kernel's boot id.
  uint64_t uid_salt = 0;
  // Flow keys gone from the map whose totals the live table still shows.
  size_t max_retired = 65536;
};

// Cumulative traffic of one flow key since the tracker started: every
// connection on it, finished or open. For the live `--by flow` table; keys
// gone from the flow map stay up to TrackerConfig::max_retired of them.
struct FlowTotals {
  tcf_flow_key key;
  uint64_t pkts[2];
  uint64_t bytes[2];
};

// Where the tracker had less than the kernel's last word. Each is a
// user-visible counter (the agent shows them with the program's counters).
struct TrackerStats {
  // Connections finalised from their last snapshot because their final value
  // never came (a kernel split whose ended entry was not drained within three
  // sweeps, or a flow entry gone without a delete): packets after that
  // snapshot are missing from their records.
  uint64_t finals_from_snapshot = 0;
  // A value below counters already reported (a map read torn by a
  // concurrent split): that delta was held at zero.
  uint64_t counter_regressions = 0;
  // Ring-buffer events that matched no connection: dropped, history detail only.
  uint64_t events_unmatched = 0;
  // Totals of keys gone from the map dropped from the live table's memory
  // (the smallest, past TrackerConfig::max_retired). Records are not affected.
  uint64_t totals_dropped = 0;
};

class Tracker {
public:
  explicit Tracker(TrackerConfig config);
  ~Tracker();
  Tracker(const Tracker &) = delete;
  Tracker &operator=(const Tracker &) = delete;

  // A ring-buffer event: timing detail (history order, handshake RTT).
  // Events may be lost; the maps stay authoritative.
  void on_event(const tcf_event &event);

  // A connection the program ended (drained from the ended map): final.
  void on_ended(const tcf_ended_key &key, const tcf_flow_val &final_val);

  // The whole flow map as read at now_boot_ns. Returns the keys whose current
  // connection is over (closed and lingered, or idle past its timeout); the
  // agent deletes each from the map and passes the value the delete returned
  // to on_removed().
  std::vector<tcf_flow_key> on_flows(const std::vector<FlowEntry> &flows, uint64_t now_boot_ns);

  // The last value of a flow-map entry the agent deleted: its connection is final.
  void on_removed(const tcf_flow_key &key, const tcf_flow_val &final_val, uint64_t now_boot_ns);

  // Every connection that changed since the last call: a checkpoint of each
  // open one, and each one that became final (once, with its close_reason).
  // Deltas cover the traffic since the previous update of that connection.
  std::vector<ConnUpdate> take_updates(uint64_t now_boot_ns);

  // The agent stops: every open connection as a final update, close_reason
  // "shutdown" (or "fin"/"rst" when it had closed and was lingering). Drain
  // the ended map and pass a last flow-map snapshot first, so that finals
  // carry the last packets.
  std::vector<ConnUpdate> shutdown(uint64_t now_boot_ns);

  // Connections an earlier agent left open in the database: when the same
  // connection (by uid) turns up in the maps, its first update counts only
  // the traffic after those counters.
  void resume(std::vector<StoredOpenConn> conns);
  // Resumed connections that no update matched (they ended while no agent
  // ran): handed out once, after the first take_updates, for the store to close.
  std::vector<Uid> take_unresumed();

  // For the live tables.
  std::vector<FlowTotals> flow_totals() const;
  std::vector<ConnRecord> open_connections() const;
  // How many there are, without building their records.
  size_t open_count() const;

  // Records produced so far (finals), for the status line.
  uint64_t connections_finished() const;

  TrackerStats stats() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace tcflows
