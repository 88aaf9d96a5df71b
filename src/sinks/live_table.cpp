#include "sinks/live_table.h"

#include "track/flow.h"
#include "util/units.h"

#include <fmt/format.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <limits>

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

nlohmann::json counters_json(const Stats &stats) {
  nlohmann::json counters = nlohmann::json::object();
  for (const auto &counter : kernel_counters)
    counters[std::string(counter.name)] = stats.counters[counter.id];
  for (const auto &counter : agent_counters)
    counters[std::string(counter.name)] = counter.value(stats);
  counters["open_connections"] = stats.open_connections;
  counters["finished_connections"] = stats.finished_connections;
  counters["sweep_us"] = stats.sweep_us;
  if (stats.store)
    for (const auto &counter : store_counters)
      counters[std::string(counter.name)] = (*stats.store).*counter.value;
  if (stats.ipfix) {
    auto sum = totals(*stats.ipfix);
    counters["ipfix_sent"] = sum.records_sent;
    counters["ipfix_failed"] = sum.records_failed;
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

// The address of key side `side` with the record's port, for protocols
// that have ports.
std::string conn_endpoint(const ConnRecord &c, int side, uint16_t port) {
  std::string addr = addr_text(c.key, side);
  uint8_t p = c.key.proto;
  bool ports =
      c.key.kind != TCF_KIND_LINK && (p == IPPROTO_TCP || p == IPPROTO_UDP || p == IPPROTO_SCTP ||
                                      p == IPPROTO_DCCP || p == IPPROTO_UDPLITE);
  if (!ports)
    return addr;
  return c.key.ethertype == ETH_P_IPV6 ? fmt::format("[{}]:{}", addr, port)
                                       : fmt::format("{}:{}", addr, port);
}

std::vector<std::array<std::string, 6>> text_cells(const std::vector<DirectionRow> &rows,
                                                   size_t top, const InterfaceNames &names) {
  std::vector<std::array<std::string, 6>> cells;
  cells.push_back({"PROTOCOL", "SOURCE", "DESTINATION", "PACKETS", "BYTES", "IFACE"});
  for (size_t i = 0; i < rows.size() && i < top; i++) {
    const auto &row = rows[i];
    int src = src_side(row);
    cells.push_back({proto_name(row.key), endpoint_text(row.key, src),
                     endpoint_text(row.key, 1 - src), std::to_string(row.packets),
                     human_bytes(row.bytes), names.name_of(row.key.ifindex)});
  }
  return cells;
}

} // namespace

std::vector<DirectionRow> direction_rows(std::span<const FlowTotals> flows) {
  std::vector<DirectionRow> rows;
  rows.reserve(flows.size() * 2);
  for (const auto &flow : flows)
    for (int dir : {TCF_DIR_FWD, TCF_DIR_REV})
      if (flow.pkts[dir])
        rows.push_back({flow.key, dir, flow.pkts[dir], flow.bytes[dir]});
  std::sort(rows.begin(), rows.end(), [](const DirectionRow &a, const DirectionRow &b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.packets > b.packets;
  });
  return rows;
}

// The kernel counters that have a place in the status line, each format
// once, summed over the counters that share it.
std::string kernel_status(const Counters &counters) {
  std::string text;
  for (size_t i = 0; i < kernel_counters.size(); i++) {
    std::string_view format = kernel_counters[i].status;
    bool first = std::none_of(kernel_counters.begin(), kernel_counters.begin() + i,
                              [&](const KernelCounter &c) { return c.status == format; });
    if (format.empty() || !first)
      continue;
    uint64_t sum = 0;
    for (const auto &counter : kernel_counters)
      sum += counter.status == format ? counters[counter.id] : 0;
    text += "  " + fmt::format(fmt::runtime(format), sum);
  }
  return text;
}

std::string status_line(const Stats &stats) {
  std::string line = fmt::format("flows {}/{}  conns {} open {} done", stats.flows, stats.max_flows,
                                 stats.open_connections, stats.finished_connections);
  line += kernel_status(stats.counters);
  for (const auto &counter : agent_counters)
    if (uint64_t value = counter.value(stats); value && !counter.status.empty())
      line += "  " + fmt::format(fmt::runtime(counter.status), value);
  if (stats.store)
    line += "  " + status_text(*stats.store);
  if (stats.ipfix) {
    auto sum = totals(*stats.ipfix);
    line += fmt::format("  ipfix {} sent {} failed", sum.records_sent, sum.records_failed);
  }
  return line;
}

std::string format_table(const std::vector<DirectionRow> &rows, size_t top, bool show_iface,
                         const Stats &stats, const InterfaceNames &names) {
  return align(text_cells(rows, top, names), show_iface ? 6 : 5) + status_line(stats) + '\n';
}

std::string format_json(uint64_t ts_ns, const std::vector<DirectionRow> &rows, size_t top,
                        const Stats &stats, const InterfaceNames &names) {
  nlohmann::json flows = nlohmann::json::array();
  for (size_t i = 0; i < rows.size() && i < top; i++) {
    const auto &row = rows[i];
    int src = src_side(row);
    flows.push_back({{"proto", proto_name(row.key)},
                     {"src_addr", addr_text(row.key, src)},
                     {"src_port", row.key.port[src]},
                     {"dst_addr", addr_text(row.key, 1 - src)},
                     {"dst_port", row.key.port[1 - src]},
                     {"iface", names.name_of(row.key.ifindex)},
                     {"vlan", row.key.vlan[0]},
                     {"packets", row.packets},
                     {"bytes", row.bytes}});
  }
  nlohmann::json snapshot = {
      {"ts_ns", ts_ns}, {"flows", flows}, {"counters", counters_json(stats)}};
  return snapshot.dump();
}

std::string format_conn_table(std::vector<ConnRecord> conns, size_t top, const Stats &stats) {
  keep_top(conns, top);
  std::vector<std::array<std::string, 10>> cells;
  cells.push_back({"PROTOCOL", "ORIGINATOR", "RESPONDER", "START", "DURATION", "STATE", "ORIG PKTS",
                   "ORIG BYTES", "RESP PKTS", "RESP BYTES"});
  for (const auto &c : conns) {
    time_t start = static_cast<time_t>(c.start_ns / 1'000'000'000);
    tm utc{};
    gmtime_r(&start, &utc);
    cells.push_back({proto_name(c.key), conn_endpoint(c, c.orig, c.src_port),
                     conn_endpoint(c, c.resp(), c.dst_port),
                     fmt::format("{:02}:{:02}:{:02}", utc.tm_hour, utc.tm_min, utc.tm_sec),
                     human_duration(std::chrono::nanoseconds(c.end_ns - c.start_ns)),
                     std::string(state_name(c.state)), std::to_string(c.orig_pkts),
                     human_bytes(c.orig_bytes), std::to_string(c.resp_pkts),
                     human_bytes(c.resp_bytes)});
  }
  return align(cells, 10) + status_line(stats) + '\n';
}

std::string format_conn_json(uint64_t ts_ns, std::vector<ConnRecord> conns, size_t top,
                             const Stats &stats, const InterfaceNames &names) {
  keep_top(conns, top);
  nlohmann::json list = nlohmann::json::array();
  for (const auto &c : conns)
    list.push_back({{"uid", c.uid.view()},
                    {"proto", proto_name(c.key)},
                    {"src_addr", addr_text(c.key, c.orig)},
                    {"src_port", c.src_port},
                    {"dst_addr", addr_text(c.key, c.resp())},
                    {"dst_port", c.dst_port},
                    {"iface", names.name_of(c.ifindex())},
                    {"start_ns", c.start_ns},
                    {"end_ns", c.end_ns},
                    {"state", state_name(c.state)},
                    {"history", c.history.view()},
                    {"orig_pkts", c.orig_pkts},
                    {"orig_bytes", c.orig_bytes},
                    {"resp_pkts", c.resp_pkts},
                    {"resp_bytes", c.resp_bytes}});
  nlohmann::json snapshot = {
      {"ts_ns", ts_ns}, {"connections", list}, {"counters", counters_json(stats)}};
  return snapshot.dump();
}

LiveTable::LiveTable(LiveTableConfig config, std::FILE *out)
    : config_(config), out_(out), tty_(::isatty(::fileno(out))) {}

size_t LiveTable::rows() const {
  if (config_.format == LiveFormat::json && !config_.top_given)
    return std::numeric_limits<size_t>::max();
  return config_.top;
}

void LiveTable::draw_flows(std::span<const FlowTotals> flows, const Stats &stats,
                           const InterfaceNames &names, uint64_t now_ns) {
  auto directions = direction_rows(flows);
  put(config_.format == LiveFormat::json
          ? format_json(now_ns, directions, rows(), stats, names)
          : format_table(directions, rows(), config_.show_iface, stats, names));
}

void LiveTable::draw_connections(std::vector<ConnRecord> conns, const Stats &stats,
                                 const InterfaceNames &names, uint64_t now_ns) {
  put(config_.format == LiveFormat::json
          ? format_conn_json(now_ns, std::move(conns), rows(), stats, names)
          : format_conn_table(std::move(conns), rows(), stats));
}

// A JSON snapshot is a line; a table starts on a cleared terminal, or after
// an empty line when the output is not one.
void LiveTable::put(std::string frame) {
  if (config_.format == LiveFormat::json)
    frame += '\n';
  else
    frame.insert(0, tty_ ? "\x1b[H\x1b[2J" : "\n");
  std::fputs(frame.c_str(), out_);
  std::fflush(out_);
}

} // namespace tcflows
