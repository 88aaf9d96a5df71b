#include "sinks/live_table.h"

#include "track/flow.h"
#include "util/units.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace tcflows {
namespace {

int src_side(const DirectionRow &row) { return row.dir == TCF_DIR_FWD ? 0 : 1; }

template <size_t N>
std::string align(const std::vector<std::array<std::string, N>> &cells, size_t columns) {
  std::array<size_t, N> width{};
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
  return out;
}

nlohmann::json counters_json(const Status &status) {
  nlohmann::json counters = nlohmann::json::object();
  for (int i = 0; i < TCF_CTR_MAX; i++)
    counters[std::string(counter_name(i))] = status.counters[i];
  counters["flows"] = status.flows;
  counters["max_flows"] = status.max_flows;
  counters["open_connections"] = status.open_connections;
  counters["finished_connections"] = status.finished_connections;
  counters["events"] = status.events;
  counters["finals_from_snapshot"] = status.finals_from_snapshot;
  counters["counter_regressions"] = status.counter_regressions;
  counters["events_unmatched"] = status.events_unmatched;
  if (status.store) {
    counters["store_written"] = status.store->written;
    counters["store_queued"] = status.store->queued;
    counters["store_write_errors"] = status.store->write_errors;
    counters["store_dropped"] = status.store->dropped;
  }
  if (status.ipfix) {
    counters["ipfix_sent"] = status.ipfix_sent;
    counters["ipfix_failed"] = status.ipfix_failed;
  }
  return counters;
}

// Largest first, then the `top` of them.
void keep_top(std::vector<ConnRecord> &conns, size_t top) {
  auto total = [](const ConnRecord &c) { return c.orig_bytes + c.resp_bytes; };
  std::sort(conns.begin(), conns.end(), [&](const ConnRecord &a, const ConnRecord &b) {
    return total(a) != total(b) ? total(a) > total(b) : a.start_ns < b.start_ns;
  });
  if (conns.size() > top)
    conns.resize(top);
}

std::string conn_endpoint(const std::string &addr, uint16_t port, const std::string &proto) {
  bool ports =
      proto == "TCP" || proto == "UDP" || proto == "SCTP" || proto == "DCCP" || proto == "UDPLite";
  if (!ports)
    return addr;
  return addr.find(':') != std::string::npos ? fmt::format("[{}]:{}", addr, port)
                                             : fmt::format("{}:{}", addr, port);
}

std::vector<std::array<std::string, 6>> text_cells(const std::vector<DirectionRow> &rows,
                                                   size_t top, const IfaceNames &names) {
  std::vector<std::array<std::string, 6>> cells;
  cells.push_back({"PROTOCOL", "SOURCE", "DESTINATION", "PACKETS", "BYTES", "IFACE"});
  for (size_t i = 0; i < rows.size() && i < top; i++) {
    const auto &row = rows[i];
    int src = src_side(row);
    cells.push_back({proto_name(row.key), endpoint_text(row.key, src),
                     endpoint_text(row.key, 1 - src), std::to_string(row.packets),
                     human_bytes(row.bytes), names(row.key.ifindex)});
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
  std::string line = fmt::format(
      "flows {}/{}  conns {} open {} done  malformed {}  failed inserts {}  "
      "untracked {} pkts  lost events {}",
      status.flows, status.max_flows, status.open_connections, status.finished_connections,
      c[TCF_CTR_MALFORMED], c[TCF_CTR_FLOW_FULL] + c[TCF_CTR_FLOW_ERROR], c[TCF_CTR_UNTRACKED_PKTS],
      c[TCF_CTR_RINGBUF_FULL]);
  if (status.finals_from_snapshot)
    line += fmt::format("  finals from snapshot {}", status.finals_from_snapshot);
  if (status.counter_regressions)
    line += fmt::format("  torn reads {}", status.counter_regressions);
  if (status.store)
    line += "  " + status_text(*status.store);
  if (status.ipfix)
    line += fmt::format("  ipfix {} sent {} failed", status.ipfix_sent, status.ipfix_failed);
  return line;
}

std::string format_table(const std::vector<DirectionRow> &rows, size_t top, bool show_iface,
                         const Status &status, const IfaceNames &names) {
  return align(text_cells(rows, top, names), show_iface ? 6 : 5) + status_line(status) + '\n';
}

std::string format_json(uint64_t ts_ns, const std::vector<DirectionRow> &rows, size_t top,
                        const Status &status, const IfaceNames &names) {
  nlohmann::json flows = nlohmann::json::array();
  for (size_t i = 0; i < rows.size() && i < top; i++) {
    const auto &row = rows[i];
    int src = src_side(row);
    flows.push_back({{"proto", proto_name(row.key)},
                     {"src_addr", addr_text(row.key, src)},
                     {"src_port", row.key.port[src]},
                     {"dst_addr", addr_text(row.key, 1 - src)},
                     {"dst_port", row.key.port[1 - src]},
                     {"iface", names(row.key.ifindex)},
                     {"vlan", row.key.vlan[0]},
                     {"packets", row.packets},
                     {"bytes", row.bytes}});
  }
  nlohmann::json snapshot = {
      {"ts_ns", ts_ns}, {"flows", flows}, {"counters", counters_json(status)}};
  return snapshot.dump();
}

std::string format_conn_table(std::vector<ConnRecord> conns, size_t top, const Status &status) {
  keep_top(conns, top);
  std::vector<std::array<std::string, 10>> cells;
  cells.push_back({"PROTOCOL", "ORIGINATOR", "RESPONDER", "START", "DURATION", "STATE", "ORIG PKTS",
                   "ORIG BYTES", "RESP PKTS", "RESP BYTES"});
  for (const auto &c : conns) {
    time_t start = static_cast<time_t>(c.start_ns / 1'000'000'000);
    tm utc{};
    gmtime_r(&start, &utc);
    cells.push_back({c.proto, conn_endpoint(c.src_addr, c.src_port, c.proto),
                     conn_endpoint(c.dst_addr, c.dst_port, c.proto),
                     fmt::format("{:02}:{:02}:{:02}", utc.tm_hour, utc.tm_min, utc.tm_sec),
                     human_duration(std::chrono::nanoseconds(c.end_ns - c.start_ns)), c.state,
                     std::to_string(c.orig_pkts), human_bytes(c.orig_bytes),
                     std::to_string(c.resp_pkts), human_bytes(c.resp_bytes)});
  }
  return align(cells, 10) + status_line(status) + '\n';
}

std::string format_conn_json(uint64_t ts_ns, std::vector<ConnRecord> conns, size_t top,
                             const Status &status) {
  keep_top(conns, top);
  nlohmann::json list = nlohmann::json::array();
  for (const auto &c : conns)
    list.push_back({{"uid", c.uid},
                    {"proto", c.proto},
                    {"src_addr", c.src_addr},
                    {"src_port", c.src_port},
                    {"dst_addr", c.dst_addr},
                    {"dst_port", c.dst_port},
                    {"iface", c.iface},
                    {"start_ns", c.start_ns},
                    {"end_ns", c.end_ns},
                    {"state", c.state},
                    {"history", c.history},
                    {"orig_pkts", c.orig_pkts},
                    {"orig_bytes", c.orig_bytes},
                    {"resp_pkts", c.resp_pkts},
                    {"resp_bytes", c.resp_bytes}});
  nlohmann::json snapshot = {
      {"ts_ns", ts_ns}, {"connections", list}, {"counters", counters_json(status)}};
  return snapshot.dump();
}

} // namespace tcflows
