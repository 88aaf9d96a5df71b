#include "report/traffic.h"

#include "report/filter_values.h"
#include "report/flat_index.h"
#include "report/format.h"
#include "report/query.h"
#include "util/error.h"
#include "util/timestamp.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <optional>
#include <string_view>

namespace tcflows {
namespace {

// The strings of the connections read, each kept once: keys and rows hold
// their ids and views of them.
using Names = FlatIndex<std::string, std::string_view, std::hash<std::string_view>>;

// The pid key of connections without a process (pids stay below 2^22).
constexpr uint32_t no_pid = UINT32_MAX;

// A connection's key fields, strings as ids in Names.
struct Conn {
  uint32_t proto = 0, iface = 0, src = 0, dst = 0, src_port = 0, dst_port = 0;
  bool ports = false;
  uint32_t comm = 0, pid = no_pid; // its socket's owner
};

// One traffic row's counts.
struct Counts {
  int64_t orig_pkts = 0, orig_bytes = 0, resp_pkts = 0, resp_bytes = 0;
};

// A row's key: name ids and ports, in the order of the key columns.
using Key = std::array<uint32_t, 6>;

struct KeyHash {
  size_t operator()(const Key &key) const {
    uint64_t hash = 0;
    for (uint32_t part : key) { // splitmix64's finaliser on each part
      hash = (hash ^ part) + 0x9e3779b97f4a7c15ull;
      hash = (hash ^ hash >> 30) * 0xbf58476d1ce4e5b9ull;
      hash = (hash ^ hash >> 27) * 0x94d049bb133111ebull;
      hash ^= hash >> 31;
    }
    return static_cast<size_t>(hash);
  }
};

struct Totals {
  int64_t connections = 0, packets = 0, bytes = 0;
  int64_t sent_pkts = 0, sent_bytes = 0, recv_pkts = 0, recv_bytes = 0;
};

using Volume = std::pair<std::string, int64_t Totals::*>;
const Volume connections{"connections", &Totals::connections}, packets{"packets", &Totals::packets},
    bytes{"bytes", &Totals::bytes};

// The key columns of each --by, which of them are names, and the volumes.
struct Shape {
  std::vector<std::string> keys;
  std::vector<bool> is_name;
  std::vector<Volume> volumes;
};

Shape shape_of(ReportBy by) {
  switch (by) {
  case ReportBy::flow:
    return {{"proto", "src_addr", "src_port", "dst_addr", "dst_port", "iface"},
            {true, true, false, true, false, true},
            {packets, bytes}};
  case ReportBy::host:
    return {{"host"},
            {true},
            {connections, packets, bytes, Volume{"sent_pkts", &Totals::sent_pkts},
             Volume{"sent_bytes", &Totals::sent_bytes}, Volume{"recv_pkts", &Totals::recv_pkts},
             Volume{"recv_bytes", &Totals::recv_bytes}}};
  case ReportBy::port:
    return {{"proto", "port"}, {true, false}, {connections, packets, bytes}};
  case ReportBy::proto:
    return {{"proto"}, {true}, {connections, packets, bytes}};
  case ReportBy::process:
    return {{"comm", "pid"}, {true, false}, {connections, packets, bytes}};
  case ReportBy::total:
  case ReportBy::conn:
    break;
  }
  return {{}, {}, {connections, packets, bytes}};
}

// --by total without a filter: the traffic table alone, the directions
// summed (as originator's counts).
constexpr const char *traffic_only_sql =
    "SELECT t.to_ns, t.conn_id, t.orig_pkts + t.resp_pkts, t.orig_bytes + t.resp_bytes "
    "FROM traffic t WHERE t.to_ns > :since AND t.to_ns <= :until";

// With the connection of each row. CROSS JOIN keeps the traffic table
// outside: SQLite could otherwise start from an address index and scan the
// window once per connection found.
std::string joined_sql(const FilterSql &o) {
  return "SELECT t.to_ns, t.conn_id, t.orig_pkts, t.orig_bytes, t.resp_pkts, t.resp_bytes, "
         "c.proto, c.iface, c.src_addr, c.src_port, c.dst_addr, c.dst_port, c.comm, c.pid "
         "FROM traffic t "
         "CROSS JOIN connections c ON c.id = t.conn_id "
         "WHERE t.to_ns > :since AND t.to_ns <= :until" +
         filters_sql(o);
}

std::optional<int64_t> one_number(sql::Database &db, const char *query,
                                  const ReportOptions &options) {
  sql::Statement statement(db, query);
  sql::ResetGuard guard(statement);
  bind_query(statement, options, {});
  if (!statement.step() || statement.is_null(0))
    return std::nullopt;
  return statement.int64(0);
}

// Reads the traffic rows in time order and adds each to the totals of its
// key in its bucket; a bucket's rows are made when the next one begins.
class TrafficReport {
public:
  TrafficReport(sql::Database &db, const ReportOptions &o, ChartData *chart)
      : o_(o), shape_(shape_of(o.by)), chart_(chart), width_(o.every ? o.every->count() : 0) {
    rows_.storage = names_;
    rows_.columns = shape_.keys;
    for (const auto &volume : shape_.volumes)
      rows_.columns.push_back(volume.first);
    if (width_) {
      rows_.columns.insert(rows_.columns.begin(), {"time", "start_ns"});
      plan_buckets(db);
    }
  }

  void read(sql::Database &db) {
    auto filter = o_.filter.sql(false);
    join_ = o_.by != ReportBy::total || !filter.sql.empty();
    sql::Statement s(db, join_ ? joined_sql(filter) : traffic_only_sql);
    sql::ResetGuard guard(s);
    bind_query(s, o_, filter);
    while (s.step()) {
      int64_t bucket = width_ ? floor_div(s.int64(0) - 1, width_) : 0;
      if (bucket != current_) {
        flush();
        current_ = bucket;
      }
      int64_t id = s.int64(1);
      bool first = bucket_conns_.insert(id).second; // the connection's first row in the bucket
      if (join_)
        add(conn_of(s, id), {s.int64(2), s.int64(3), s.int64(4), s.int64(5)}, first);
      else
        add_volume(at({}), {s.int64(2), s.int64(3), 0, 0}, first);
    }
    flush();
  }

  Rows finish() {
    if (o_.by == ReportBy::total)
      emit_empty_until(width_ ? last_ + 1 : 1);
    if (chart_)
      draw_series();
    return std::move(rows_);
  }

private:
  // The buckets from the one holding --since (or the first traffic, if
  // later) to the one holding --until (without it: now, or the last
  // traffic, if later).
  void plan_buckets(sql::Database &db) {
    auto first_to = one_number(db, "SELECT min(to_ns) FROM traffic WHERE to_ns > :since", o_);
    auto last_to = one_number(db, "SELECT max(to_ns) FROM traffic WHERE to_ns <= :until", o_);
    first_ = floor_div(std::max(o_.since_ns, first_to.value_or(o_.since_ns + 1) - 1), width_);
    last_ = o_.until_ns ? floor_div(*o_.until_ns - 1, width_)
                        : floor_div(std::max(o_.now_ns, last_to.value_or(0)) - 1, width_);
    if (last_ - first_ + 1 > max_buckets)
      fail(exit_usage,
           "--every {} makes {} buckets in this window, more than {}; use a longer --every or "
           "a shorter window",
           o_.every->count(), last_ - first_ + 1, max_buckets);
    next_ = current_ = first_;
  }

  const Conn &conn_of(sql::Statement &s, int64_t id) {
    auto [index, added] = conn_at_.insert(id);
    if (added) {
      auto proto = s.text(6);
      conns_.push_back({name(proto), name(s.text(7)), name(s.text(8)), name(s.text(10)),
                        static_cast<uint32_t>(s.int64(9)), static_cast<uint32_t>(s.int64(11)),
                        has_ports(proto), name(s.is_null(12) ? "" : s.text(12)),
                        s.is_null(13) ? no_pid : static_cast<uint32_t>(s.int64(13))});
    }
    return conns_[index];
  }

  uint32_t name(std::string_view text) { return names_->insert(text).first; }

  Totals &at(const Key &key) {
    if (!totals_.empty() && key == last_key_) // --by total: always
      return totals_[last_index_];
    auto [index, added] = keys_.insert(key);
    if (added)
      totals_.emplace_back();
    last_key_ = key;
    last_index_ = index;
    return totals_[index];
  }

  // A row's counts to the totals of its key(s); the connection counts once
  // per key and bucket, at its first row there.
  void add(const Conn &c, const Counts &n, bool first) {
    switch (o_.by) {
    case ReportBy::flow:
      for (bool orig : {true, false}) {
        int64_t pkts = orig ? n.orig_pkts : n.resp_pkts;
        if (pkts == 0)
          continue;
        auto &t = orig ? at({c.proto, c.src, c.src_port, c.dst, c.dst_port, c.iface})
                       : at({c.proto, c.dst, c.dst_port, c.src, c.src_port, c.iface});
        t.packets += pkts;
        t.bytes += orig ? n.orig_bytes : n.resp_bytes;
      }
      return;
    case ReportBy::host:
      add_host(at({c.src}), n, first, c.src == c.dst ? 2 : 0);
      if (c.src != c.dst) // a host talking to itself: one connection of it
        add_host(at({c.dst}), n, first, 1);
      return;
    case ReportBy::port:
      if (c.ports)
        add_volume(at({c.proto, c.dst_port}), n, first);
      return;
    case ReportBy::proto:
      add_volume(at({c.proto}), n, first);
      return;
    case ReportBy::process:
      add_volume(at({c.comm, c.pid}), n, first);
      return;
    case ReportBy::total:
    case ReportBy::conn:
      add_volume(at({}), n, first);
      return;
    }
  }

  static void add_volume(Totals &t, const Counts &n, bool first) {
    t.connections += first;
    t.packets += n.orig_pkts + n.resp_pkts;
    t.bytes += n.orig_bytes + n.resp_bytes;
  }

  // A host's totals; end 0: it is the originator, 1: the responder, 2: both.
  static void add_host(Totals &t, const Counts &n, bool first, int end) {
    add_volume(t, n, first);
    bool sends = end != 1, receives = end != 0;
    t.sent_pkts += (sends ? n.orig_pkts : 0) + (receives ? n.resp_pkts : 0);
    t.sent_bytes += (sends ? n.orig_bytes : 0) + (receives ? n.resp_bytes : 0);
    t.recv_pkts += (sends ? n.resp_pkts : 0) + (receives ? n.orig_pkts : 0);
    t.recv_bytes += (sends ? n.resp_bytes : 0) + (receives ? n.orig_bytes : 0);
  }

  // The current bucket's rows, largest first, at most --top.
  void flush() {
    if (keys_.size() == 0)
      return;
    if (chart_)
      for (uint32_t i = 0; i < keys_.size(); i++)
        points_.push_back({current_, keys_[i], totals_[i].bytes});
    auto order = largest_first();
    if (o_.by == ReportBy::total)
      emit_empty_until(current_);
    rows_.values.reserve(rows_.values.size() + order.size());
    for (uint32_t i : order)
      rows_.values.push_back(row(current_, keys_[i], totals_[i]));
    next_ = current_ + 1;
    keys_.clear();
    totals_.clear();
    bucket_conns_.clear();
  }

  // Keys in the order of their cells: names as text, ports as numbers.
  bool key_less(const Key &a, const Key &b) const {
    for (size_t i = 0; i < shape_.keys.size(); i++)
      if (a[i] != b[i])
        return shape_.is_name[i] ? (*names_)[a[i]] < (*names_)[b[i]] : a[i] < b[i];
    return false;
  }

  // Indices of the current keys, largest first (bytes, or packets with
  // --sort packets), then by key; the first --top of them.
  std::vector<uint32_t> largest_first() const {
    struct Rank {
      int64_t first, second;
      uint32_t index;
    };
    bool by_packets = o_.sort == ReportSort::packets;
    std::vector<Rank> ranks;
    ranks.reserve(totals_.size());
    for (uint32_t i = 0; i < totals_.size(); i++) {
      const auto &t = totals_[i];
      ranks.push_back(by_packets ? Rank{t.packets, t.bytes, i} : Rank{t.bytes, t.packets, i});
    }
    auto before = [this](const Rank &a, const Rank &b) {
      if (a.first != b.first || a.second != b.second)
        return a.first != b.first ? a.first > b.first : a.second > b.second;
      return key_less(keys_[a.index], keys_[b.index]);
    };
    size_t count = std::min(o_.top.value_or(ranks.size()), ranks.size());
    if (count < ranks.size())
      std::partial_sort(ranks.begin(), ranks.begin() + static_cast<ptrdiff_t>(count), ranks.end(),
                        before);
    else
      std::sort(ranks.begin(), ranks.end(), before);
    std::vector<uint32_t> order(count);
    for (size_t i = 0; i < count; i++)
      order[i] = ranks[i].index;
    return order;
  }

  // --by total: a row of zeros for each bucket without traffic.
  void emit_empty_until(int64_t bucket) {
    for (; next_ < bucket; next_++)
      rows_.values.push_back(row(next_, {}, {}));
  }

  std::vector<Value> row(int64_t bucket, const Key &key, const Totals &t) const {
    std::vector<Value> values;
    values.reserve(2 + shape_.keys.size() + shape_.volumes.size());
    if (width_) {
      int64_t start = bucket * width_;
      values.insert(values.end(), {format_utc(start), start});
    }
    for (size_t i = 0; i < shape_.keys.size(); i++)
      values.push_back(key_cell(key, i));
    for (const auto &[name, member] : shape_.volumes)
      values.emplace_back(t.*member);
    return values;
  }

  // Key part i as its cell: a name, a number, or NULL for the process of
  // connections without one.
  Value key_cell(const Key &key, size_t i) const {
    if (o_.by == ReportBy::process && key[1] == no_pid)
      return {};
    return shape_.is_name[i] ? Value(std::string_view((*names_)[key[i]])) : Value(int64_t{key[i]});
  }

  std::string label(const Key &key) const {
    const auto &names = *names_;
    switch (o_.by) {
    case ReportBy::flow: {
      const auto &proto = names[key[0]];
      return fmt::format("{} {} → {} ({})", proto, endpoint(proto, names[key[1]], key[2]),
                         endpoint(proto, names[key[3]], key[4]), names[key[5]]);
    }
    case ReportBy::host:
    case ReportBy::proto:
      return names[key[0]];
    case ReportBy::port:
      return fmt::format("{}/{}", names[key[0]], key[1]);
    case ReportBy::process:
      return key[1] == no_pid ? "no process" : fmt::format("{}[{}]", names[key[0]], key[1]);
    case ReportBy::total:
    case ReportBy::conn:
      break;
    }
    return "all traffic";
  }

  // The keys with the most bytes in the window, each with its bytes per bucket.
  void draw_series() {
    std::map<Key, int64_t> window;
    for (const auto &p : points_)
      window[p.key] += p.bytes;
    std::vector<std::pair<Key, int64_t>> keys(window.begin(), window.end());
    std::sort(keys.begin(), keys.end(), [this](const auto &a, const auto &b) {
      return a.second != b.second ? a.second > b.second : key_less(a.first, b.first);
    });
    keys.resize(std::min(keys.size(), o_.top.value_or(5)));
    chart_->first_ns = first_ * width_;
    chart_->width_ns = width_;
    auto buckets = static_cast<size_t>(last_ - first_ + 1);
    for (const auto &[key, bytes] : keys)
      chart_->series.push_back({label(key), std::vector<int64_t>(buckets)});
    if (o_.by == ReportBy::total && keys.empty())
      chart_->series.push_back({label({}), std::vector<int64_t>(buckets)});
    for (const auto &p : points_)
      for (size_t k = 0; k < keys.size(); k++)
        if (keys[k].first == p.key && p.bucket >= first_ && p.bucket <= last_)
          chart_->series[k].bytes[static_cast<size_t>(p.bucket - first_)] += p.bytes;
  }

  struct Point {
    int64_t bucket;
    Key key;
    int64_t bytes;
  };

  const ReportOptions &o_;
  Shape shape_;
  ChartData *chart_;
  int64_t width_;                  // ns; 0: one bucket, the window
  int64_t first_ = 0, last_ = 0;   // bucket numbers (start / width)
  int64_t current_ = 0, next_ = 0; // the bucket being read; the next one to print
  bool join_ = false;
  std::shared_ptr<Names> names_ = std::make_shared<Names>();
  std::vector<Conn> conns_;
  FlatIndex<int64_t> conn_at_;                // conn_id -> index in conns_
  const Conn no_conn_{};                      // without the join
  FlatIndex<int64_t> bucket_conns_;           // the connections seen in the current bucket
  FlatIndex<Key, const Key &, KeyHash> keys_; // of the current bucket
  std::vector<Totals> totals_;                // of keys_, by index
  Key last_key_{};                            // the key at() gave last, at this index
  uint32_t last_index_ = 0;
  std::vector<Point> points_; // every key's bytes per bucket, for the chart
  Rows rows_;
};

} // namespace

Rows traffic_rows(sql::Database &db, const ReportOptions &options, ChartData *chart) {
  TrafficReport report(db, options, chart);
  report.read(db);
  return report.finish();
}

} // namespace tcflows
