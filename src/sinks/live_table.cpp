#include "sinks/live_table.h"

#include "sinks/jsonl.h"

#include "track/flow.h"
#include "util/text_table.h"
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

// A column of `header` with a cell per row, the first `top` of `rows`.
template <typename Row, typename Cell>
TextColumn column(std::string_view header, const std::vector<Row> &rows, size_t top, Cell cell) {
  TextColumn c{column_header(header), {}};
  for (size_t i = 0; i < rows.size() && i < top; i++)
    c.cells.push_back(cell(rows[i]));
  return c;
}

TextTable flow_table(const std::vector<DirectionRow> &rows, size_t top, bool show_iface,
                     const InterfaceNames &names) {
  using Row = DirectionRow;
  TextTable t;
  t.push_back(column("proto", rows, top, [](const Row &r) { return proto_name(r.key); }));
  t.push_back(
      column("src", rows, top, [](const Row &r) { return endpoint_text(r.key, src_side(r)); }));
  t.push_back(
      column("dst", rows, top, [](const Row &r) { return endpoint_text(r.key, 1 - src_side(r)); }));
  t.push_back(column("packets", rows, top, [](const Row &r) { return std::to_string(r.packets); }));
  t.push_back(column("bytes", rows, top, [](const Row &r) { return human_bytes(r.bytes); }));
  if (show_iface)
    t.push_back(
        column("iface", rows, top, [&](const Row &r) { return names.name_of(r.key.ifindex); }));
  return t;
}

std::string time_of_day(uint64_t ns) {
  time_t seconds = static_cast<time_t>(ns / 1'000'000'000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:02}:{:02}:{:02}", utc.tm_hour, utc.tm_min, utc.tm_sec);
}

// The owner of the connection's socket as "comm[pid]", "-" when none.
std::string process_text(const ConnRecord &c) {
  return c.process ? fmt::format("{}[{}]", c.process->comm(), c.process->pid) : "-";
}

TextTable conn_table(const std::vector<ConnRecord> &conns, size_t top) {
  using C = ConnRecord;
  auto count = [&](std::string_view name, uint64_t C::*field, bool bytes) {
    return column(name, conns, top, [=](const C &c) {
      return bytes ? human_bytes(c.*field) : std::to_string(c.*field);
    });
  };
  TextTable t;
  t.push_back(column("proto", conns, top, [](const C &c) { return proto_name(c.key); }));
  t.push_back(column("orig", conns, top, [](const C &c) { return endpoint_text(c.key, c.orig); }));
  t.push_back(
      column("resp", conns, top, [](const C &c) { return endpoint_text(c.key, c.resp()); }));
  t.push_back(column("start_ns", conns, top, [](const C &c) { return time_of_day(c.start_ns); }));
  t.push_back(column("duration", conns, top, [](const C &c) {
    return human_duration(std::chrono::nanoseconds(c.end_ns - c.start_ns));
  }));
  t.push_back(
      column("state", conns, top, [](const C &c) { return std::string(state_name(c.state)); }));
  t.push_back(count("orig_pkts", &C::orig_pkts, false));
  t.push_back(count("orig_bytes", &C::orig_bytes, true));
  t.push_back(count("resp_pkts", &C::resp_pkts, false));
  t.push_back(count("resp_bytes", &C::resp_bytes, true));
  // TCP health as `report --by conn` shows it: retransmissions per side,
  // the originator's mean round trip.
  t.push_back(column("retx", conns, top, [](const C &c) {
    return c.orig_tcp ? fmt::format("{}/{}", c.orig_tcp->retx_pkts, c.resp_tcp->retx_pkts) : "-";
  }));
  t.push_back(column("rtt", conns, top, [](const C &c) {
    if (!c.orig_tcp || !c.orig_tcp->rtt_samples)
      return std::string("-");
    return human_round_trip(std::chrono::nanoseconds(c.orig_tcp->rtt_mean_ns));
  }));
  t.push_back(column("process", conns, top, [](const C &c) { return process_text(c); }));
  return t;
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
  return aligned(flow_table(rows, top, show_iface, names)) + status_line(stats) + '\n';
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
  return aligned(conn_table(conns, top)) + status_line(stats) + '\n';
}

std::string format_conn_json(uint64_t ts_ns, std::vector<ConnRecord> conns, size_t top,
                             const Stats &stats, const InterfaceNames &names) {
  keep_top(conns, top);
  nlohmann::json list = nlohmann::json::array();
  for (const auto &c : conns) {
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
                    {"resp_bytes", c.resp_bytes},
                    {"pid", c.process ? nlohmann::json(c.process->pid) : nlohmann::json()},
                    {"comm", c.process ? nlohmann::json(c.process->comm()) : nlohmann::json()}});
    add_tcp_health(list.back(), c);
  }
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
