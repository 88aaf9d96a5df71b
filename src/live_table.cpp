#include "live_table.h"

#include "flow.h"
#include "netif.h"
#include "units.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace tcflows {
namespace {

int src_side(const DirectionRow &row) { return row.dir == TCF_DIR_FWD ? 0 : 1; }

std::vector<std::array<std::string, 6>> text_cells(const std::vector<DirectionRow> &rows,
                                                   size_t top) {
  std::vector<std::array<std::string, 6>> cells;
  cells.push_back({"PROTOCOL", "SOURCE", "DESTINATION", "PACKETS", "BYTES", "IFACE"});
  for (size_t i = 0; i < rows.size() && i < top; i++) {
    const auto &row = rows[i];
    int src = src_side(row);
    cells.push_back({proto_name(row.key), endpoint_text(row.key, src),
                     endpoint_text(row.key, 1 - src), std::to_string(row.packets),
                     human_bytes(row.bytes), interface_name(static_cast<int>(row.key.ifindex))});
  }
  return cells;
}

} // namespace

std::vector<DirectionRow> direction_rows(const std::vector<FlowEntry> &flows) {
  std::vector<DirectionRow> rows;
  rows.reserve(flows.size() * 2);
  for (const auto &flow : flows)
    for (int dir : {TCF_DIR_FWD, TCF_DIR_REV})
      if (flow.val.pkts[dir])
        rows.push_back({flow.key, dir, flow.val.pkts[dir], flow.val.bytes[dir]});
  std::sort(rows.begin(), rows.end(), [](const DirectionRow &a, const DirectionRow &b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.packets > b.packets;
  });
  return rows;
}

std::string status_line(const Status &status) {
  const auto &c = status.counters;
  return fmt::format("flows {}/{}  malformed {}  failed inserts {}  untracked {} pkts  "
                     "lost events {}",
                     status.flows, status.max_flows, c[TCF_CTR_MALFORMED],
                     c[TCF_CTR_FLOW_FULL] + c[TCF_CTR_FLOW_ERROR], c[TCF_CTR_UNTRACKED_PKTS],
                     c[TCF_CTR_RINGBUF_FULL]);
}

std::string format_table(const std::vector<DirectionRow> &rows, size_t top, bool show_iface,
                         const Status &status) {
  auto cells = text_cells(rows, top);
  size_t columns = show_iface ? 6 : 5;
  std::array<size_t, 6> width{};
  for (const auto &line : cells)
    for (size_t c = 0; c < columns; c++)
      width[c] = std::max(width[c], line[c].size());
  std::string out;
  for (const auto &line : cells) {
    for (size_t c = 0; c < columns; c++) {
      bool last = c + 1 == columns;
      out += last ? line[c] : fmt::format("{:<{}} ", line[c], width[c]);
    }
    out += '\n';
  }
  out += status_line(status);
  out += '\n';
  return out;
}

std::string format_json(uint64_t ts_ns, const std::vector<DirectionRow> &rows, size_t top,
                        const Status &status) {
  nlohmann::json flows = nlohmann::json::array();
  for (size_t i = 0; i < rows.size() && i < top; i++) {
    const auto &row = rows[i];
    int src = src_side(row);
    flows.push_back({{"proto", proto_name(row.key)},
                     {"src_addr", addr_text(row.key, src)},
                     {"src_port", row.key.port[src]},
                     {"dst_addr", addr_text(row.key, 1 - src)},
                     {"dst_port", row.key.port[1 - src]},
                     {"iface", interface_name(static_cast<int>(row.key.ifindex))},
                     {"packets", row.packets},
                     {"bytes", row.bytes}});
  }
  nlohmann::json counters = nlohmann::json::object();
  for (int i = 0; i < TCF_CTR_MAX; i++)
    counters[std::string(counter_name(i))] = status.counters[i];
  counters["flows"] = status.flows;
  counters["max_flows"] = status.max_flows;
  nlohmann::json snapshot = {{"ts_ns", ts_ns}, {"flows", flows}, {"counters", counters}};
  return snapshot.dump();
}

} // namespace tcflows
