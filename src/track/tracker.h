// The connection tracker: turns the program's connection table (one slot per
// connection, struct tcf_conn) into one ConnRecord per connection, the way
// Zeek's conn.log describes them, and runs the user-space half of the slot
// protocol (bpf/conn.h): it seals connections that are over, takes their
// final counters once no program can add to them any more, removes their
// mappings, and gives their slots back once their records are durable.
//
// Time: every *_boot_ns argument is the packet clock (CLOCK_BOOTTIME ns, the
// clock of tcf_conn); records carry Unix epoch ns, converted with the offset
// in the configuration.
#pragma once

#include "kernel/conn_table.h"
#include "track/conn.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace tcflows {

struct TrackerConfig {
  // Idle timeouts by enum tcf_idle_class (TCP, UDP, ICMP, other); 0: never.
  std::array<std::chrono::nanoseconds, TCF_IDLE_MAX> idle = {
      std::chrono::minutes(5), std::chrono::seconds(60), std::chrono::seconds(60),
      std::chrono::seconds(60)};
  // After FIN both ways or RST, late ACKs and retransmitted FINs still belong
  // to the closed connection for this long (Zeek's tcp_close_delay).
  std::chrono::nanoseconds linger = std::chrono::seconds(5);
  // Unix epoch ns minus CLOCK_BOOTTIME ns, measured by the agent.
  int64_t boot_to_epoch_ns = 0;
  // Tells boots apart in uids (the packet clock restarts at boot): the agent
  // derives it from the kernel's boot id.
  uint64_t uid_salt = 0;
  // The seed of the records' Community ID (record --community-id-seed).
  uint16_t community_id_seed = 0;
  // Rows the live tables may show (top_open, flow_totals); 0: no live table.
  size_t live_rows = 0;
  // Count the open connections by conn_state at each sweep (for the metrics).
  bool count_states = false;
  // Flow keys whose connections all ended that the live table still shows.
  size_t max_retired = 65536;
  // Updates handed to the sink at a time.
  size_t chunk = 4096;
};

// Cumulative traffic of one flow key since the tracker started: its open
// connection and every finished one, for the live `--by flow` table.
struct FlowTotals {
  tcf_flow_key key;
  uint64_t pkts[2];
  uint64_t bytes[2];
};

// What the tracker did that the status line and metrics show.
struct TrackerStats {
  uint64_t finished = 0;       // final records produced
  uint64_t orphans_joined = 0; // connections whose first packets landed in a slot
                               // whose mapping the agent was removing: joined
  uint64_t orphans_alone = 0;  // such slots that no later slot continued: recorded alone
  uint64_t totals_dropped = 0; // live-table totals of keys gone, dropped past max_retired
  uint64_t sweeps = 0;
  // With TrackerConfig::count_states: open connections by conn_state, as of
  // the last sweep.
  std::array<uint64_t, 13> open_by_state{};
};

// What one sweep found.
struct SweepResult {
  uint64_t seq = 0;  // this sweep's number: pass it to durable() once its records are
  size_t finals = 0; // final updates handed out
  size_t open = 0;   // connections open
  uint32_t free = 0; // slots free for the program after the sweep (stacked or never used)
  uint32_t used = 0; // slots taken at least once (the rest of the table never was)
};

using UpdateSink = std::function<void(std::span<const ConnUpdate>)>;

// Which open connections a sweep reports: those whose slot falls in its share
// (slot % shares == share), so that the checkpoints of a large table spread
// over the sweeps of an interval; none when `shares` is 0.
struct Checkpoint {
  uint32_t share = 0;
  uint32_t shares = 0;
  static Checkpoint all() { return {0, 1}; }
  bool covers(uint32_t slot) const { return shares && slot % shares == share; }
};

class Tracker {
public:
  // Arms the doorbell.
  Tracker(TrackerConfig config, ConnTable &table);
  ~Tracker();
  Tracker(const Tracker &) = delete;
  Tracker &operator=(const Tracker &) = delete;

  // One pass over the table at now_boot_ns. Finals: connections ended or
  // sealed by the previous sweep, now that no program can add to them.
  // Seals those that are over (closed and lingered, or idle). Hands `sink`
  // the final updates and an update of every open connection `checkpoint`
  // covers whose counters changed since its last one; in chunks.
  SweepResult sweep(uint64_t now_boot_ns, Checkpoint checkpoint, const UpdateSink &sink);

  // The records of sweeps up to `seq` are durable (written, committed):
  // their slots go back to the program at the next sweep.
  void durable(uint64_t seq);

  // The agent stops, its programs detached (or a capture read offline
  // ended): every connection not final yet as a final update, close_reason
  // `open_reason` when it was open (fin or rst when it had closed and was
  // lingering).
  void shutdown(uint64_t now_boot_ns, const UpdateSink &sink,
                CloseReason open_reason = CloseReason::shutdown);

  // Connections an earlier agent left open in the database: when the same
  // connection (by uid) turns up in the table, its first update counts only
  // the traffic after those counters.
  void resume(std::vector<StoredOpenConn> conns);
  // Resumed connections that no slot matched (they ended while no agent
  // ran): handed out once, after the first sweep, for the store to close.
  std::vector<Uid> take_unresumed();
  // At the first sweep, a slot that ended before this agent started is
  // skipped when this says its record is final already (an earlier agent
  // wrote it but was stopped before giving the slot back).
  void set_already_final(std::function<bool(const Uid &)> already_final);

  // For the live tables, as of the last sweep: the `n` open connections
  // with the most bytes, and flow totals (open and finished connections).
  std::vector<ConnRecord> top_open(size_t n) const;
  std::vector<FlowTotals> flow_totals(size_t n) const;
  size_t open_count() const;

  TrackerStats stats() const;

  // The wall clock's offset from the packet clock as measured now (see
  // TrackerConfig): records from now on use it once it differs by more than
  // a measurement's noise (NTP stepped or slewed the wall clock), so that a
  // connection's start does not move from one update to the next otherwise.
  void follow_wall_clock(int64_t boot_to_epoch_ns);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace tcflows
