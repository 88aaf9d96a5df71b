// The live view of `tcflows record`: every interval a table of the traffic
// (one row per flow direction, or per open connection), largest first, and
// the status line, redrawn in place on a terminal; or one JSON snapshot per
// line for scripts.
#pragma once

#include "sinks/interfaces.h"
#include "sinks/stats.h"
#include "track/conn.h"
#include "track/tracker.h"

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace tcflows {

enum class LiveFormat { table, json };
enum class LiveBy { flow, conn };

struct DirectionRow {
  tcf_flow_key key; // canonical key of the flow
  int dir;          // TCF_DIR_FWD: endpoint 0 to 1
  uint64_t packets;
  uint64_t bytes;
};

// Rows for both directions of every flow that carried traffic, by bytes
// (then packets) descending.
std::vector<DirectionRow> direction_rows(std::span<const FlowTotals> flows);

// "flows 12/65536  conns 3 open 57 done  malformed 0  failed inserts 0 ..."
std::string status_line(const Stats &stats);

// The table, at most `top` rows, then the status line. With `show_iface`
// an IFACE column follows BYTES.
std::string format_table(const std::vector<DirectionRow> &rows, size_t top, bool show_iface,
                         const Stats &stats, const InterfaceNames &names);

// One JSON line: {"ts_ns", "flows": [...], "counters": {...}} with exact numbers.
std::string format_json(uint64_t ts_ns, const std::vector<DirectionRow> &rows, size_t top,
                        const Stats &stats, const InterfaceNames &names);

// The live `--by conn` table: one row per open connection (largest first),
// with start time, duration, state and traffic each way.
std::string format_conn_table(std::vector<ConnRecord> conns, size_t top, const Stats &stats);

// The same as one JSON line: {"ts_ns", "connections": [...], "counters": {...}}.
std::string format_conn_json(uint64_t ts_ns, std::vector<ConnRecord> conns, size_t top,
                             const Stats &stats, const InterfaceNames &names);

struct LiveTableConfig {
  bool enabled = true; // false: --quiet, or the records themselves go to standard output
  LiveFormat format = LiveFormat::table;
  LiveBy by = LiveBy::flow;
  size_t top = 20;
  bool top_given = false; // without --top, a JSON snapshot carries every row
  bool show_iface = false;
};

class LiveTable {
public:
  // Draws on `out`; a terminal is cleared before each table.
  explicit LiveTable(LiveTableConfig config, std::FILE *out = stdout);

  bool enabled() const { return config_.enabled; }
  // What draw() wants: flow totals (flow) or open connections (conn).
  LiveBy by() const { return config_.by; }
  // The rows a drawing shows at most: what the tracker keeps for it.
  size_t rows() const;

  void draw_flows(std::span<const FlowTotals> flows, const Stats &stats,
                  const InterfaceNames &names, uint64_t now_ns);
  void draw_connections(std::vector<ConnRecord> conns, const Stats &stats,
                        const InterfaceNames &names, uint64_t now_ns);

private:
  void put(std::string frame);

  LiveTableConfig config_;
  std::FILE *out_;
  bool tty_;
};

} // namespace tcflows
