// `tcflows report` against a database written through the store, checked
// against totals this file computes from the data it generated.
#include "helpers.h"
#include "report/report.h"
#include "sinks/store.h"
#include "track/community_id.h"
#include "util/units.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

using namespace tcflows;
using namespace tcflows::test;
using Json = nlohmann::json;

namespace {

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t t0 = 1'764'090'000 * sec; // 2025-11-25T17:00:00Z
constexpr int64_t interval = 5 * sec;
constexpr int intervals = 12;

// What the test generated: each connection and the traffic of each
// interval it was active in.
struct Model {
  TextRecord record;                  // final state
  std::map<int, TrafficDelta> deltas; // by interval number
};

bool has_ports(const std::string &proto) { return proto == "TCP" || proto == "UDP"; }

std::vector<Model> generate(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](auto &list) { return list[rng() % list.size()]; };
  const std::vector<std::string> hosts4 = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.7.9"};
  const std::vector<std::string> hosts6 = {"2001:db8::1", "2001:db8::2", "fe80::1"};
  const std::vector<std::string> macs = {"02:00:00:00:00:01", "02:00:00:00:00:02"};
  const std::vector<std::string> protos = {"TCP", "TCP", "TCP", "UDP", "UDP", "ICMP", "ARP"};
  const std::vector<uint16_t> services = {443, 53, 80, 8080};
  std::vector<Model> models;
  for (int i = 0; i < 150; i++) {
    Model m;
    auto &r = m.record;
    r.uid = "C" + std::to_string(i);
    r.iface = rng() % 3 ? "eth0" : "eth1";
    r.proto = pick(protos);
    bool v6 = r.proto != "ARP" && rng() % 3 == 0;
    auto &pool = r.proto == "ARP" ? macs : v6 ? hosts6 : hosts4;
    r.src_addr = pick(pool);
    do
      r.dst_addr = pick(pool);
    while (r.dst_addr == r.src_addr);
    if (has_ports(r.proto)) {
      // A few connections share one 5-tuple, as a reused port does.
      r.src_port = static_cast<uint16_t>(i % 10 == 0 ? 40000 : 32768 + rng() % 28000);
      r.dst_port = pick(services);
    } else if (r.proto == "ICMP") {
      r.src_port = 8;
    }
    int first = static_cast<int>(rng() % intervals);
    int last = std::min(intervals - 1, first + static_cast<int>(rng() % 5));
    int64_t from = t0 + first * interval + static_cast<int64_t>(rng() % interval);
    r.start_ns = from;
    for (int k = first; k <= last; k++) {
      if (k != first && rng() % 3 == 0)
        continue; // quiet in this interval: no update
      TrafficDelta d;
      d.from_ns = from;
      d.to_ns = t0 + (k + 1) * interval;
      d.orig_pkts = 1 + rng() % 50;
      d.orig_bytes = d.orig_pkts * (40 + rng() % 1400);
      d.resp_pkts = rng() % 4 ? rng() % 80 : 0;
      d.resp_bytes = d.resp_pkts * (40 + rng() % 1400);
      m.deltas[k] = d;
      from = d.to_ns;
      r.end_ns = d.to_ns - 1 - rng() % (interval / 2);
    }
    r.state = "SF";
    r.history = "ShADadFf";
    r.close_reason = "fin";
    if (i % 4 == 0)
      r.rtt_ns = 1000 + rng() % 100000;
    for (const auto &[k, d] : m.deltas) {
      r.orig_pkts += d.orig_pkts;
      r.orig_bytes += d.orig_bytes;
      r.resp_pkts += d.resp_pkts;
      r.resp_bytes += d.resp_bytes;
    }
    models.push_back(m);
  }
  return models;
}

// Writes the models interval by interval, as the agent would: a checkpoint
// of each connection that carried traffic, the final record at its last.
void write_all(const std::string &path, const std::vector<Model> &models) {
  TestStore store(store_config(path));
  for (int k = 0; k < intervals; k++) {
    std::vector<ConnUpdate> updates;
    for (const auto &m : models) {
      auto it = m.deltas.find(k);
      if (it == m.deltas.end())
        continue;
      TextRecord r = m.record;
      if (std::next(it) != m.deltas.end()) { // still open: counts so far
        r.close_reason.reset();
        r.orig_pkts = r.orig_bytes = r.resp_pkts = r.resp_bytes = 0;
        for (auto j = m.deltas.begin(); j != std::next(it); ++j) {
          r.orig_pkts += j->second.orig_pkts;
          r.orig_bytes += j->second.orig_bytes;
          r.resp_pkts += j->second.resp_pkts;
          r.resp_bytes += j->second.resp_bytes;
        }
        r.end_ns = it->second.to_ns - 1;
      }
      updates.push_back(update_of(r, it->second));
    }
    REQUIRE(store.write(updates, {}, static_cast<uint64_t>(t0 + (k + 1) * interval)));
  }
}

struct Window {
  int64_t since;
  std::optional<int64_t> until;
  bool holds_end(int64_t to_ns) const { return to_ns > since && (!until || to_ns <= *until); }
};

struct Filter {
  std::optional<std::string> proto{}, host{}, iface{};
  std::optional<uint16_t> port{};
  bool admits(const TextRecord &r) const {
    if (proto && r.proto != *proto)
      return false;
    if (host && r.src_addr != *host && r.dst_addr != *host)
      return false;
    if (port && !(has_ports(r.proto) && (r.src_port == *port || r.dst_port == *port)))
      return false;
    return !iface || r.iface == *iface;
  }
};

struct Volume {
  int64_t packets = 0, bytes = 0, connections = 0;
  bool operator==(const Volume &) const = default;
};

// The traffic of a connection inside the window.
TrafficDelta in_window(const Model &m, const Window &w) {
  TrafficDelta sum;
  for (const auto &[k, d] : m.deltas)
    if (w.holds_end(static_cast<int64_t>(d.to_ns))) {
      sum.orig_pkts += d.orig_pkts;
      sum.orig_bytes += d.orig_bytes;
      sum.resp_pkts += d.resp_pkts;
      sum.resp_bytes += d.resp_bytes;
      sum.to_ns = 1; // marks "had a delta in the window"
    }
  return sum;
}

using FlowKey = std::tuple<std::string, std::string, int64_t, std::string, int64_t, std::string>;

std::map<FlowKey, Volume> expected_flows(const std::vector<Model> &models, const Window &w,
                                         const Filter &f) {
  std::map<FlowKey, Volume> out;
  for (const auto &m : models) {
    const auto &r = m.record;
    auto d = in_window(m, w);
    if (!f.admits(r))
      continue;
    if (d.orig_pkts) {
      auto &v = out[{r.proto, r.src_addr, r.src_port, r.dst_addr, r.dst_port, r.iface}];
      v.packets += d.orig_pkts;
      v.bytes += d.orig_bytes;
    }
    if (d.resp_pkts) {
      auto &v = out[{r.proto, r.dst_addr, r.dst_port, r.src_addr, r.src_port, r.iface}];
      v.packets += d.resp_pkts;
      v.bytes += d.resp_bytes;
    }
  }
  return out;
}

// --by host, port or proto: the key of each row as text.
std::map<std::string, Volume> expected_totals(const std::vector<Model> &models, const Window &w,
                                              const Filter &f, ReportBy by) {
  std::map<std::string, Volume> out;
  for (const auto &m : models) {
    const auto &r = m.record;
    auto d = in_window(m, w);
    if (!f.admits(r) || !d.to_ns)
      continue;
    auto add = [&](const std::string &key, uint64_t pkts, uint64_t bytes) {
      auto &v = out[key];
      v.connections++;
      v.packets += static_cast<int64_t>(pkts);
      v.bytes += static_cast<int64_t>(bytes);
    };
    uint64_t pkts = d.orig_pkts + d.resp_pkts, bytes = d.orig_bytes + d.resp_bytes;
    if (by == ReportBy::host) {
      add(r.src_addr, pkts, bytes);
      add(r.dst_addr, pkts, bytes);
    } else if (by == ReportBy::port) {
      if (has_ports(r.proto))
        add(r.proto + "/" + std::to_string(r.dst_port), pkts, bytes);
    } else {
      add(r.proto, pkts, bytes);
    }
  }
  return out;
}

std::vector<const Model *> expected_conns(const std::vector<Model> &models, const Window &w,
                                          const Filter &f) {
  std::vector<const Model *> out;
  for (const auto &m : models) {
    const auto &r = m.record;
    bool active = static_cast<int64_t>(r.end_ns) >= w.since &&
                  (!w.until || static_cast<int64_t>(r.start_ns) < *w.until);
    if (active && f.admits(r))
      out.push_back(&m);
  }
  return out;
}

ReportOptions options_for(const std::string &path, const Window &w, const Filter &f, ReportBy by,
                          ReportFormat format) {
  ReportOptions o;
  o.db = path;
  o.since_ns = w.since;
  o.until_ns = w.until;
  o.by = by;
  // The options --proto, --host, --port and --iface.
  for (const auto &[field, value] :
       {std::pair{"proto", f.proto},
        {"host", f.host},
        {"port", f.port ? std::optional(std::to_string(*f.port)) : std::nullopt},
        {"iface", f.iface}})
    if (value)
      o.filter = o.filter && std::get<tcflows::Filter>(tcflows::Filter::primitive(field, *value));
  o.format = format;
  return o;
}

std::string report(const ReportOptions &o) {
  auto db = open_database_read_only(o.db);
  return make_report(db, o);
}

std::vector<std::vector<std::string>> parse_csv(const std::string &text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto &row = rows.emplace_back();
    std::istringstream fields(line);
    for (std::string field; std::getline(fields, field, ',');)
      row.push_back(field);
    if (!line.empty() && line.back() == ',')
      row.push_back("");
  }
  return rows;
}

// Table lines with runs of blanks folded, header dropped.
std::multiset<std::string> table_lines(const std::string &text, std::string *header = nullptr) {
  std::multiset<std::string> lines;
  std::istringstream in(text);
  bool first = true;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string folded, word;
    while (words >> word)
      folded += (folded.empty() ? "" : " ") + word;
    if (first && header)
      *header = folded;
    if (!first)
      lines.insert(folded);
    first = false;
  }
  return lines;
}

std::string endpoint(const std::string &proto, const std::string &addr, int64_t port) {
  if (!has_ports(proto))
    return addr;
  bool v6 = addr.find(':') != std::string::npos;
  return (v6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port);
}

// UTC with milliseconds, by the C library.
std::string utc_text(int64_t ns) {
  time_t seconds = ns / sec;
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  snprintf(ms, sizeof(ms), ".%03dZ", static_cast<int>(ns / 1'000'000 % 1000));
  return std::string(text) + ms;
}

class ReportFixture {
public:
  ReportFixture() : models(generate(7)), path(dir.file("report.db")) { write_all(path, models); }

protected:
  TempDir dir;
  std::vector<Model> models;
  std::string path;
};

const Window all{0, std::nullopt};
// Starts inside interval 2, ends at the end of interval 6: deltas ending at
// 15 s through 35 s count, the one ending at 10 s and those from 40 s do not.
const Window middle{t0 + 12 * sec + sec / 2, t0 + 35 * sec};

const std::vector<Filter> filters = {
    {},
    {.host = "10.0.0.1"},
    {.port = 443},
    {.proto = "UDP"},
    {.iface = "eth1"},
    {.proto = "TCP", .host = "2001:db8::1", .port = 443},
};

} // namespace

TEST_CASE_FIXTURE(ReportFixture, "--by flow: per direction in the window, json, csv and table") {
  for (const auto &w : {all, middle})
    for (const auto &f : filters) {
      auto expected = expected_flows(models, w, f);
      CAPTURE(w.since);
      CAPTURE(f.host.value_or("-"));
      CAPTURE(f.port.value_or(0));
      CAPTURE(f.proto.value_or("-"));
      CAPTURE(f.iface.value_or("-"));
      if (f.host || f.port || f.proto || f.iface) // the filters select something
        CHECK(!expected.empty());

      auto json = Json::parse(report(options_for(path, w, f, ReportBy::flow, ReportFormat::json)));
      std::map<FlowKey, Volume> got;
      int64_t previous = INT64_MAX;
      for (const auto &row : json) {
        CHECK(row.size() == 8);
        FlowKey key{row["proto"],    row["src_addr"], row["src_port"],
                    row["dst_addr"], row["dst_port"], row["iface"]};
        CHECK(got.count(key) == 0);
        got[key] = {row["packets"], row["bytes"], 0};
        CHECK(row["bytes"].get<int64_t>() <= previous); // largest first
        previous = row["bytes"];
      }
      CHECK(got == expected);

      auto csv = parse_csv(report(options_for(path, w, f, ReportBy::flow, ReportFormat::csv)));
      REQUIRE(!csv.empty());
      CHECK(csv[0] == std::vector<std::string>{"proto", "src_addr", "src_port", "dst_addr",
                                               "dst_port", "iface", "packets", "bytes"});
      std::map<FlowKey, Volume> from_csv;
      for (size_t i = 1; i < csv.size(); i++) {
        const auto &c = csv[i];
        REQUIRE(c.size() == 8);
        from_csv[{c[0], c[1], std::stoll(c[2]), c[3], std::stoll(c[4]), c[5]}] = {
            std::stoll(c[6]), std::stoll(c[7]), 0};
      }
      CHECK(from_csv == expected);

      std::set<std::string> ifaces;
      for (const auto &[key, v] : expected)
        ifaces.insert(std::get<5>(key));
      std::multiset<std::string> lines;
      for (const auto &[key, v] : expected) {
        const auto &[proto, sa, sp, da, dp, iface] = key;
        lines.insert(proto + " " + endpoint(proto, sa, sp) + " " + endpoint(proto, da, dp) + " " +
                     std::to_string(v.packets) + " " + human_bytes(v.bytes) +
                     (ifaces.size() > 1 ? " " + iface : ""));
      }
      std::string header;
      CHECK(table_lines(report(options_for(path, w, f, ReportBy::flow, ReportFormat::table)),
                        &header) == lines);
      CHECK(header == std::string("PROTOCOL SOURCE DESTINATION PACKETS BYTES") +
                          (ifaces.size() > 1 ? " IFACE" : ""));
    }
}

TEST_CASE_FIXTURE(ReportFixture, "--by host, port and proto: totals in the window") {
  struct By {
    ReportBy by;
    std::vector<std::string> keys; // key columns, then the volumes
  };
  for (const auto &[by, keys] :
       {By{ReportBy::host, {"host"}}, By{ReportBy::port, {"proto", "port"}},
        By{ReportBy::proto, {"proto"}}})
    for (const auto &w : {all, middle})
      for (const auto &f : filters) {
        auto expected = expected_totals(models, w, f, by);
        CAPTURE(static_cast<int>(by));
        CAPTURE(w.since);
        auto key_of = [&, &keys = keys](auto cell) {
          std::string key;
          for (const auto &k : keys)
            key += (key.empty() ? "" : "/") + cell(k);
          return key;
        };
        auto json = Json::parse(report(options_for(path, w, f, by, ReportFormat::json)));
        std::map<std::string, Volume> got;
        for (const auto &row : json) {
          auto key = key_of([&](const std::string &k) {
            return row[k].is_string() ? row[k].get<std::string>() : row[k].dump();
          });
          got[key] = {row["packets"], row["bytes"], row["connections"]};
        }
        CHECK(got == expected);

        auto csv = parse_csv(report(options_for(path, w, f, by, ReportFormat::csv)));
        REQUIRE(!csv.empty());
        auto column = [&](const std::string &name) {
          auto it = std::find(csv[0].begin(), csv[0].end(), name);
          REQUIRE(it != csv[0].end());
          return static_cast<size_t>(it - csv[0].begin());
        };
        std::map<std::string, Volume> from_csv;
        for (size_t i = 1; i < csv.size(); i++) {
          auto key = key_of([&](const std::string &k) { return csv[i][column(k)]; });
          from_csv[key] = {std::stoll(csv[i][column("packets")]),
                           std::stoll(csv[i][column("bytes")]),
                           std::stoll(csv[i][column("connections")])};
        }
        CHECK(from_csv == expected);

        // The table: key cells, then connections, packets and bytes in human units.
        std::multiset<std::string> lines;
        for (const auto &[key, v] : expected) {
          std::string cells = key;
          std::replace(cells.begin(), cells.end(), '/', ' ');
          lines.insert(cells + " " + std::to_string(v.connections) + " " +
                       std::to_string(v.packets) + " " + human_bytes(v.bytes));
        }
        auto table = table_lines(report(options_for(path, w, f, by, ReportFormat::table)));
        std::multiset<std::string> trimmed; // host rows go on with sent/received columns
        for (const auto &line : table) {
          std::istringstream words(line);
          std::vector<std::string> cells;
          for (std::string word; words >> word;)
            cells.push_back(word);
          size_t wanted = keys.size() + 2; // keys, connections, packets
          std::string text;
          for (size_t i = 0; i < wanted && i < cells.size(); i++)
            text += (text.empty() ? "" : " ") + cells[i];
          // bytes: one word below 1 KiB, else a number and a unit
          if (wanted < cells.size()) {
            text += " " + cells[wanted];
            if (wanted + 1 < cells.size() && cells[wanted + 1].ends_with("iB"))
              text += " " + cells[wanted + 1];
          }
          trimmed.insert(text);
        }
        CHECK(trimmed == lines);
      }
}

TEST_CASE_FIXTURE(ReportFixture, "--by conn: the connections active in the window") {
  for (const auto &w : {all, middle})
    for (const auto &f : filters) {
      auto expected = expected_conns(models, w, f);
      CAPTURE(w.since);
      auto json = Json::parse(report(options_for(path, w, f, ReportBy::conn, ReportFormat::json)));
      REQUIRE(json.size() == expected.size());
      std::map<std::string, const Json *> by_uid;
      for (const auto &row : json)
        by_uid[row["uid"]] = &row;
      for (const auto *m : expected) {
        const auto &r = m->record;
        REQUIRE(by_uid.count(r.uid));
        const auto &row = *by_uid[r.uid];
        CHECK(row["iface"] == r.iface);
        CHECK(row["proto"] == r.proto);
        CHECK(row["src_addr"] == r.src_addr);
        CHECK(row["src_port"] == r.src_port);
        CHECK(row["dst_addr"] == r.dst_addr);
        CHECK(row["dst_port"] == r.dst_port);
        CHECK(row["start_ns"] == r.start_ns);
        CHECK(row["end_ns"] == r.end_ns);
        CHECK(row["orig_pkts"] == r.orig_pkts);
        CHECK(row["orig_bytes"] == r.orig_bytes);
        CHECK(row["resp_pkts"] == r.resp_pkts);
        CHECK(row["resp_bytes"] == r.resp_bytes);
        CHECK(row["state"] == r.state);
        CHECK(row["history"] == r.history);
        CHECK(row["close_reason"] == *r.close_reason);
        if (r.rtt_ns)
          CHECK(row["rtt_ns"] == *r.rtt_ns);
        else
          CHECK(row["rtt_ns"].is_null());
      }

      auto csv = parse_csv(report(options_for(path, w, f, ReportBy::conn, ReportFormat::csv)));
      REQUIRE(csv.size() == expected.size() + 1);
      CHECK(csv[0] == std::vector<std::string>{"id",
                                               "uid",
                                               "iface",
                                               "proto",
                                               "src_addr",
                                               "src_port",
                                               "dst_addr",
                                               "dst_port",
                                               "vlan",
                                               "start_ns",
                                               "end_ns",
                                               "orig_pkts",
                                               "orig_bytes",
                                               "resp_pkts",
                                               "resp_bytes",
                                               "state",
                                               "history",
                                               "close_reason",
                                               "rtt_ns",
                                               "orig_guessed",
                                               "community_id",
                                               "orig_retx_pkts",
                                               "orig_retx_bytes",
                                               "orig_ooo_pkts",
                                               "orig_zero_windows",
                                               "orig_rtt_samples",
                                               "orig_rtt_min_ns",
                                               "orig_rtt_mean_ns",
                                               "orig_rtt_max_ns",
                                               "resp_retx_pkts",
                                               "resp_retx_bytes",
                                               "resp_ooo_pkts",
                                               "resp_zero_windows",
                                               "resp_rtt_samples",
                                               "resp_rtt_min_ns",
                                               "resp_rtt_mean_ns",
                                               "resp_rtt_max_ns",
                                               "pid",
                                               "comm",
                                               "cgroup"});
      std::set<std::string> csv_uids, expected_uids;
      for (size_t i = 1; i < csv.size(); i++) {
        CHECK(csv[i].size() == 40);
        csv_uids.insert(csv[i][1]);
      }
      std::multiset<std::string> lines;
      std::set<std::string> ifaces;
      for (const auto *m : expected)
        ifaces.insert(m->record.iface);
      for (const auto *m : expected) {
        const auto &r = m->record;
        expected_uids.insert(r.uid);
        lines.insert(r.proto + " " + endpoint(r.proto, r.src_addr, r.src_port) + " " +
                     endpoint(r.proto, r.dst_addr, r.dst_port) + " " + utc_text(r.start_ns) + " " +
                     human_duration(std::chrono::nanoseconds(r.end_ns - r.start_ns)) + " " +
                     r.state + " " + std::to_string(r.orig_pkts) + " " + human_bytes(r.orig_bytes) +
                     " " + std::to_string(r.resp_pkts) + " " + human_bytes(r.resp_bytes) + " - -" +
                     (ifaces.size() > 1 ? " " + r.iface : ""));
      }
      CHECK(csv_uids == expected_uids);
      auto table = report(options_for(path, w, f, ReportBy::conn, ReportFormat::table));
      CHECK(table_lines(table) == lines);
      // The headers of the live --by conn table, and the database's names.
      std::string header = table.substr(0, table.find('\n'));
      std::string words;
      for (size_t i = 0; i < header.size(); i++)
        if (header[i] != ' ' || (i > 0 && header[i - 1] != ' '))
          words += header[i];
      CHECK(words == std::string("PROTOCOL ORIGINATOR RESPONDER START DURATION STATE ORIG_PKTS "
                                 "ORIG_BYTES RESP_PKTS RESP_BYTES RETX RTT") +
                         (ifaces.size() > 1 ? " IFACE" : "") + " COMMUNITY_ID PID COMM");
    }
}

TEST_CASE_FIXTURE(ReportFixture, "--sort and --top") {
  auto o = options_for(path, all, {}, ReportBy::conn, ReportFormat::json);
  auto expected = expected_conns(models, all, {});
  auto total = [](const Json &row) {
    return row["orig_bytes"].get<int64_t>() + row["resp_bytes"].get<int64_t>();
  };
  auto packets = [](const Json &row) {
    return row["orig_pkts"].get<int64_t>() + row["resp_pkts"].get<int64_t>();
  };
  auto duration = [](const Json &row) {
    return row["end_ns"].get<int64_t>() - row["start_ns"].get<int64_t>();
  };
  for (auto sort :
       {ReportSort::bytes, ReportSort::packets, ReportSort::start, ReportSort::duration}) {
    o.sort = sort;
    o.top.reset();
    auto rows = Json::parse(report(o));
    REQUIRE(rows.size() == expected.size());
    for (size_t i = 1; i < rows.size(); i++) {
      const auto &a = rows[i - 1], &b = rows[i];
      if (sort == ReportSort::bytes)
        CHECK(total(a) >= total(b));
      if (sort == ReportSort::packets)
        CHECK(packets(a) >= packets(b));
      if (sort == ReportSort::start)
        CHECK(a["start_ns"].get<int64_t>() <= b["start_ns"].get<int64_t>());
      if (sort == ReportSort::duration)
        CHECK(duration(a) >= duration(b));
    }
    o.top = 7;
    auto top = Json::parse(report(o));
    REQUIRE(top.size() == 7);
    for (size_t i = 0; i < 7; i++)
      CHECK(top[i] == rows[i]);
  }
  // Flows by packets, top 5: the five largest of the expected ones.
  auto flows = expected_flows(models, all, {});
  std::vector<int64_t> counts;
  for (const auto &[key, v] : flows)
    counts.push_back(v.packets);
  std::sort(counts.rbegin(), counts.rend());
  auto fo = options_for(path, all, {}, ReportBy::flow, ReportFormat::json);
  fo.sort = ReportSort::packets;
  fo.top = 5;
  auto top = Json::parse(report(fo));
  REQUIRE(top.size() == 5);
  for (size_t i = 0; i < 5; i++)
    CHECK(top[i]["packets"] == counts[i]);
}

TEST_CASE("window accuracy: a large burst, a pause, a small burst") {
  TempDir dir;
  auto path = dir.file("burst.db");
  {
    TestStore store(store_config(path));
    TextRecord r = make_record("Cburst", t0 + sec, t0 + 4 * sec);
    r.dst_addr = "10.0.2.2";
    r.orig_pkts = 10'000;
    r.orig_bytes = 14'000'000;
    r.resp_pkts = 5'000;
    r.resp_bytes = 260'000;
    // The large burst in the first interval; nothing for a minute (the
    // tracker hands on no update for a connection that did not change).
    REQUIRE(store.write({update_of(r, {t0, t0 + interval, 10'000, 14'000'000, 5'000, 260'000})}, {},
                        t0 + interval));
    for (int k = 2; k <= 13; k++)
      REQUIRE(store.write({}, {}, t0 + k * interval));
    // The small burst in the 14th interval: its delta spans the pause.
    r.end_ns = t0 + 68 * sec;
    r.orig_pkts += 3;
    r.orig_bytes += 180;
    r.resp_pkts += 2;
    r.resp_bytes += 120;
    REQUIRE(store.write({update_of(r, {t0 + interval, t0 + 14 * interval, 3, 180, 2, 120})}, {},
                        t0 + 14 * interval));
  }
  auto flows = [&](int64_t since, std::optional<int64_t> until) {
    ReportOptions o;
    o.db = path;
    o.since_ns = since;
    o.until_ns = until;
    o.format = ReportFormat::json;
    std::map<std::string, std::pair<int64_t, int64_t>> out; // source -> packets, bytes
    for (const auto &row : Json::parse(report(o)))
      out[row["src_addr"]] = {row["packets"], row["bytes"]};
    return out;
  };
  // A window covering only the second burst counts only it.
  auto second = flows(t0 + 30 * sec, std::nullopt);
  CHECK(second["10.0.2.15"] == std::pair<int64_t, int64_t>{3, 180});
  CHECK(second["10.0.2.2"] == std::pair<int64_t, int64_t>{2, 120});
  // One covering only the first counts only it.
  auto first = flows(t0, t0 + 30 * sec);
  CHECK(first["10.0.2.15"] == std::pair<int64_t, int64_t>{10'000, 14'000'000});
  CHECK(first["10.0.2.2"] == std::pair<int64_t, int64_t>{5'000, 260'000});
  // One covering both counts both; one covering the pause alone nothing.
  auto both = flows(t0 - sec, std::nullopt);
  CHECK(both["10.0.2.15"] == std::pair<int64_t, int64_t>{10'003, 14'000'180});
  CHECK(flows(t0 + 10 * sec, t0 + 60 * sec).empty());
}

TEST_CASE("json and csv carry odd text exactly") {
  TempDir dir;
  auto path = dir.file("odd.db");
  {
    TestStore store(store_config(path));
    auto r = make_record("Codd", t0, t0 + sec);
    r.iface = "we\"ird,\\\x01";
    r.history = "S\nh";
    REQUIRE(store.write({make_update(r, t0, t0 + interval, 1, 60, 0, 0)}, {}, t0 + interval));
  }
  ReportOptions o;
  o.db = path;
  o.by = ReportBy::conn;
  o.format = ReportFormat::json;
  auto json = Json::parse(report(o));
  REQUIRE(json.size() == 1);
  CHECK(json[0]["iface"] == "we\"ird,\\\x01");
  CHECK(json[0]["history"] == "S\nh");
  o.format = ReportFormat::csv;
  auto csv = report(o);
  CHECK(csv.find(",\"we\"\"ird,\\\x01\",") != std::string::npos);
  CHECK(csv.find(",\"S\nh\",") != std::string::npos);
}

TEST_CASE("community id: stored with the record, shown by --by conn, found by its filter") {
  TempDir dir;
  auto path = dir.file("cid.db");
  std::string wanted;
  {
    TestStore store(store_config(path));
    std::vector<ConnUpdate> updates;
    for (uint16_t port : {41234, 41235}) {
      auto r = make_record("Ccid" + std::to_string(port), t0, t0 + sec);
      r.src_port = port;
      auto update = make_update(r, t0, t0 + interval, 1, 60, 1, 60);
      update.record.community_id = community_id(update.record, 0);
      wanted = community_id_text(*update.record.community_id);
      updates.push_back(update);
    }
    REQUIRE(store.write(updates, {}, t0 + interval));
  }
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections WHERE community_id LIKE '1:%'") == 2);
  CHECK(db.integer("SELECT count(*) FROM sqlite_master WHERE name = 'connections_community_id'") ==
        1);
  ReportOptions o;
  o.db = path;
  o.since_ns = 0;
  o.by = ReportBy::conn;
  o.format = ReportFormat::json;
  CHECK(Json::parse(report(o)).size() == 2);
  // The base64 padding ('=') is part of the value, not a comparison.
  o.filter = std::get<tcflows::Filter>(tcflows::Filter::parse("community-id " + wanted));
  auto json = Json::parse(report(o));
  REQUIRE(json.size() == 1);
  CHECK(json[0]["uid"] == "Ccid41235");
  CHECK(json[0]["community_id"] == wanted);
  o.format = ReportFormat::table;
  CHECK(report(o).find(wanted) != std::string::npos);
}

TEST_CASE("tcp health: stored per side, none for other protocols, sorted and filtered") {
  TempDir dir;
  auto path = dir.file("health.db");
  {
    TestStore store(store_config(path));
    std::vector<ConnUpdate> updates;
    for (int i = 0; i < 3; i++) {
      auto r = make_record("Chealth" + std::to_string(i), t0, t0 + sec);
      r.src_port = uint16_t(41000 + i);
      r.proto = i < 2 ? "TCP" : "UDP";
      auto update = make_update(r, t0, t0 + interval, 1, 60, 1, 60);
      if (i < 2) {
        uint64_t retx = 3 * uint64_t(i), mean = 2000 + uint64_t(i);
        update.record.orig_tcp = TcpHealth{retx, retx * 1500, 1, 0, 0, 0, 0, 0};
        update.record.resp_tcp = TcpHealth{0, 0, 0, 2, 4, 1000, mean, 5000};
      }
      updates.push_back(update);
    }
    REQUIRE(store.write(updates, {}, t0 + interval));
  }
  RawDb db(path, true);
  CHECK(db.integer("SELECT orig_retx_pkts FROM connections WHERE uid = 'Chealth1'") == 3);
  CHECK(db.integer("SELECT orig_retx_bytes FROM connections WHERE uid = 'Chealth1'") == 4500);
  CHECK(db.integer("SELECT resp_zero_windows FROM connections WHERE uid = 'Chealth1'") == 2);
  CHECK(db.integer("SELECT resp_rtt_mean_ns FROM connections WHERE uid = 'Chealth1'") == 2001);
  // No round trip measured: no minimum, mean or maximum; other protocols: nothing.
  CHECK(db.integer("SELECT count(*) FROM connections WHERE orig_rtt_samples = 0 AND "
                   "orig_rtt_min_ns IS NULL AND orig_rtt_mean_ns IS NULL") == 2);
  CHECK(db.integer("SELECT count(*) FROM connections WHERE uid = 'Chealth2' AND "
                   "orig_retx_pkts IS NULL AND resp_zero_windows IS NULL") == 1);
  CHECK(db.integer("SELECT count(*) FROM conn_log WHERE resp_rtt_mean_ms = 0.002001") == 1);
  ReportOptions o;
  o.db = path;
  o.since_ns = 0;
  o.by = ReportBy::conn;
  o.format = ReportFormat::json;
  o.sort = ReportSort::retx;
  auto json = Json::parse(report(o));
  REQUIRE(json.size() == 3);
  CHECK(json[0]["uid"] == "Chealth1");
  CHECK(json[0]["orig_retx_pkts"] == 3);
  CHECK(json[2]["orig_retx_pkts"].is_null());
  o.sort = ReportSort::rtt;
  CHECK(Json::parse(report(o))[0]["uid"] == "Chealth1");
  o.filter = std::get<tcflows::Filter>(tcflows::Filter::parse("src retx > 0"));
  json = Json::parse(report(o));
  REQUIRE(json.size() == 1);
  CHECK(json[0]["uid"] == "Chealth1");
  o.filter = std::get<tcflows::Filter>(tcflows::Filter::parse("not zero-windows > 0"));
  CHECK(Json::parse(report(o)).size() == 1); // UDP: neither true nor NULL
  o.filter = {};
  o.format = ReportFormat::table;
  auto table = report(o);
  CHECK(table.find("3/0") != std::string::npos);
  CHECK(table.find("RETX") != std::string::npos);
}

TEST_CASE("process: stored with the record, grouped by --by process, found by --pid and --comm") {
  TempDir dir;
  auto path = dir.file("proc.db");
  {
    TestStore store(store_config(path));
    std::vector<ConnUpdate> updates;
    // Two connections of curl[100], one of sshd[200], one without a process.
    std::vector<std::pair<uint32_t, const char *>> owners = {
        {100, "curl"}, {100, "curl"}, {200, "sshd"}, {0, nullptr}};
    for (uint16_t i = 0; i < owners.size(); i++) {
      auto r = make_record("Cproc" + std::to_string(i), t0, t0 + sec);
      r.src_port = uint16_t(40000 + i);
      auto update = make_update(r, t0, t0 + interval, 1, 100, 1, 1000);
      if (owners[i].second) {
        ProcessOwner owner;
        owner.pid = owners[i].first;
        std::strcpy(owner.comm_chars.data(), owners[i].second);
        owner.cgroup = "/web.slice";
        update.record.process = owner;
      }
      updates.push_back(update);
    }
    REQUIRE(store.write(updates, {}, t0 + interval));
  }
  ReportOptions o;
  o.db = path;
  o.since_ns = 0;
  o.by = ReportBy::process;
  o.format = ReportFormat::json;
  auto json = Json::parse(report(o));
  REQUIRE(json.size() == 3);
  CHECK(json[0] ==
        Json{{"comm", "curl"}, {"pid", 100}, {"connections", 2}, {"packets", 4}, {"bytes", 2200}});
  // Equal traffic: ordered by key, the row without a process (NULL) first.
  CHECK(json[1] == Json{{"comm", nullptr},
                        {"pid", nullptr},
                        {"connections", 1},
                        {"packets", 2},
                        {"bytes", 1100}});
  CHECK(json[2]["comm"] == "sshd");
  o.by = ReportBy::conn;
  o.filter = std::get<tcflows::Filter>(tcflows::Filter::parse("pid 200"));
  json = Json::parse(report(o));
  REQUIRE(json.size() == 1);
  CHECK(json[0]["uid"] == "Cproc2");
  CHECK(json[0]["cgroup"] == "/web.slice");
  o.filter = std::get<tcflows::Filter>(tcflows::Filter::parse("comm curl"));
  CHECK(Json::parse(report(o)).size() == 2);
  // A connection without a process is not curl's: the negation keeps it.
  o.filter = std::get<tcflows::Filter>(tcflows::Filter::parse("not comm curl"));
  json = Json::parse(report(o));
  REQUIRE(json.size() == 2);
  CHECK(json[0]["comm"].is_null() != json[1]["comm"].is_null());
}
