// Store benchmark (not a test): rows per second through the real writer,
// report latency on a large database, database size per million connections.
//
//   build/tools/bench_store [--connections N] [--batch N] [--dir DIR] [--sql SQL]
//                           [--address-indexes] [--ordered-uids] [--keep] [--no-writes]
//                           [--only TEXT]
//
// --keep leaves the large database in DIR, where a later run with the same
// --dir reuses it; --no-writes skips the write figures (for report timings);
// --only times only the reports whose name has TEXT.
//
// --sql runs on each new database before the writes, to try another schema
// (e.g. --sql "CREATE INDEX h ON connections(src_addr)"); --address-indexes
// adds report/filter.h's address_index_sql, to measure what they cost.
//
// Numbers depend on the machine and on what else runs on it; each speed is
// also given as a ratio to a same-run baseline (bare INSERTs of the same rows
// into an unindexed table through the same SQLite).
#include "report/report.h"
#include "sinks/store.h"
#include "track/flow.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace tcflows;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t interval = 5 * sec;
constexpr int64_t t_start = 1'764'000'000 * sec;
constexpr int64_t week = 7 * 86400 * sec;

struct Args {
  size_t connections = 10'000'000;
  size_t batch = 100'000;
  std::string dir;
  std::string sql;           // run on each new database before writing: CREATE INDEX ...
  bool ordered_uids = false; // uids that grow with time, not random ones
  bool keep = false;
  bool writes = true; // --no-writes: only build (or reuse) the large database and time reports
  std::string only;   // --only TEXT: only the reports whose name has TEXT
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool ordered_uids = false;

const InterfacesSnapshot bench_interfaces = std::make_shared<const InterfaceNames>(
    std::vector<InterfaceNames::Entry>{{2, "eth0", false}, {3, "eth1", false}});

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Rows per second of wall time (what the machine gave) and per second of
// this process's CPU time (what the writes cost, steadier on a shared machine).
struct Rate {
  double wall = 0, cpu = 0;
};

// Measures from construction to rate().
class Stopwatch {
public:
  Rate rate(size_t rows) const {
    auto n = static_cast<double>(rows);
    return {n / seconds_since(wall_), n / (cpu_seconds() - cpu_)};
  }

private:
  Clock::time_point wall_ = Clock::now();
  double cpu_ = cpu_seconds();
};

// A Zeek-like uid: 'C' and 17 base62 characters, random-looking; with
// --ordered-uids the first 8 grow with n (with time, as if they were the
// connection's start time), so the uid index appends.
Uid uid_of(uint64_t n) {
  static constexpr char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint64_t x = n * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  Uid uid;
  uid.chars[0] = 'C';
  for (size_t i = 1; i < Uid::capacity; i++) {
    uid.chars[i] = digits[x % 62];
    x = x / 62 ^ (x << 7) ^ n;
  }
  if (ordered_uids)
    for (int i = 8, m = static_cast<int>(n); i >= 1; i--, m /= 62)
      uid.chars[static_cast<size_t>(i)] = digits[m % 62];
  return uid;
}

// Internal host i talks to external host j: 10.x.y.z to 198.18-19.y.z, or
// for one external host in four, fd00::i to 2001:db8:...:j over IPv6.
void set_hosts(tcf_flow_key &key, uint32_t i, uint32_t j) {
  if (j % 4) {
    key.ethertype = ETH_P_IP;
    key.addr[0][0] = htonl(10u << 24 | (i & 0xffffff));
    key.addr[1][0] = htonl(198u << 24 | (18 + j % 2) << 16 | (j & 0xffff));
    return;
  }
  key.ethertype = ETH_P_IPV6;
  key.addr[0][0] = htonl(0xfd000000);
  key.addr[0][3] = htonl(i);
  key.addr[1][0] = htonl(0x20010db8);
  key.addr[1][1] = htonl(j >> 16);
  key.addr[1][3] = htonl(j & 0xffff);
}

// The addresses set_hosts gives, as a filter names them: internal host i
// over IPv4, external host j.
std::string internal_host(uint32_t i) {
  return fmt::format("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
}
std::string external_host(uint32_t j) {
  return j % 4 ? fmt::format("198.{}.{}.{}", 18 + j % 2, j >> 8 & 255, j & 255)
               : fmt::format("2001:db8:{:x}::{:x}", j >> 16, j & 0xffff);
}

// Connection n of `total`, spread evenly over a week: 5000 internal hosts
// talk to 100000 external ones, mostly TCP to a few service ports.
ConnUpdate connection(uint64_t n, uint64_t total, std::mt19937_64 &rng) {
  static const uint16_t services[] = {443, 443, 443, 80, 53, 22, 8080, 5201};
  ConnUpdate u;
  auto &r = u.record;
  r.uid = uid_of(n);
  auto &key = r.key;
  key.ifindex = n % 8 ? 2 : 3;
  key.proto = n % 10 < 7 ? IPPROTO_TCP : n % 10 < 9 ? IPPROTO_UDP : IPPROTO_ICMP;
  uint32_t internal = static_cast<uint32_t>(rng() % 5000);
  uint32_t external = static_cast<uint32_t>(rng() % 100'000);
  if (key.proto == IPPROTO_ICMP) {
    set_hosts(key, internal, external % 4 ? external : 1); // ICMP over IPv4
    key.kind = TCF_KIND_ICMP;
    r.src_port = 8;
  } else {
    set_hosts(key, internal, external);
    key.kind = TCF_KIND_PORTS;
    r.src_port = key.port[0] = static_cast<uint16_t>(32768 + rng() % 28000);
    r.dst_port = key.port[1] = services[rng() % std::size(services)];
  }
  r.orig = canonicalise(key) == TCF_DIR_FWD ? 0 : 1;
  int64_t start = t_start + static_cast<int64_t>(n * (week / total));
  int64_t to = (start / interval + 1) * interval;
  r.start_ns = start;
  r.end_ns = start + static_cast<int64_t>(rng() % (to - start));
  r.orig_pkts = 1 + rng() % 40;
  r.orig_bytes = r.orig_pkts * (52 + rng() % 1400);
  r.resp_pkts = rng() % 60;
  r.resp_bytes = r.resp_pkts * (52 + rng() % 1400);
  r.state = ConnState::S1;
  r.history = History("ShADad"); // open: close_reason NULL
  r.rtt_ns = 100'000 + rng() % 50'000'000;
  u.delta = {static_cast<uint64_t>(start),
             static_cast<uint64_t>(to),
             r.orig_pkts,
             r.orig_bytes,
             r.resp_pkts,
             r.resp_bytes};
  return u;
}

// The connection closed: its final record.
ConnUpdate closed(ConnUpdate u) {
  u.record.state = ConnState::SF;
  u.record.history = History("ShADadFf");
  u.record.close_reason = CloseReason::fin;
  return u;
}

// The next interval of an open connection: the record updated, a new delta;
// final, closed, when `last`.
ConnUpdate checkpoint(const ConnUpdate &u, bool last) {
  ConnUpdate c = u;
  c.delta.from_ns = u.delta.to_ns;
  c.delta.to_ns = u.delta.to_ns + interval;
  c.record.end_ns = c.delta.to_ns - 1;
  c.record.orig_pkts += u.delta.orig_pkts;
  c.record.orig_bytes += u.delta.orig_bytes;
  c.record.resp_pkts += u.delta.resp_pkts;
  c.record.resp_bytes += u.delta.resp_bytes;
  return last ? closed(c) : c;
}

// The same rows, bare: one unindexed table, prepared INSERTs, one transaction.
Rate baseline_rows_per_second(const std::string &path, const std::vector<ConnUpdate> &batch) {
  const InterfaceNames &names = *bench_interfaces;
  sqlite3 *db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(
      db,
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE c (uid, iface, "
      "proto, sa, sp, da, dp, start, end, op, ob, rp, rb, state, history, reason, rtt); "
      "CREATE TABLE t (id, f, t, op, ob, rp, rb)",
      nullptr, nullptr, nullptr);
  sqlite3_stmt *c = nullptr, *t = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO c VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &c,
                     nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?,?,?,?,?,?,?)", -1, &t, nullptr);
  Stopwatch watch;
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (const auto &u : batch) {
    const auto &r = u.record;
    int i = 1;
    // The text the store makes too: the records are binary until written.
    for (const std::string &s : {std::string(r.uid.view()), names.name_of(r.ifindex()),
                                 proto_name(r.key), addr_text(r.key, r.orig)})
      sqlite3_bind_text(c, i++, s.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(c, i++, r.src_port);
    sqlite3_bind_text(c, i++, addr_text(r.key, r.resp()).c_str(), -1, SQLITE_TRANSIENT);
    for (uint64_t v : {uint64_t{r.dst_port}, r.start_ns, r.end_ns, r.orig_pkts, r.orig_bytes,
                       r.resp_pkts, r.resp_bytes})
      sqlite3_bind_int64(c, i++, static_cast<int64_t>(v));
    for (std::string_view s :
         {state_name(r.state), r.history.view(), close_reason_name(r.close_reason)})
      sqlite3_bind_text(c, i++, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(c, i++, static_cast<int64_t>(*r.rtt_ns));
    sqlite3_step(c);
    sqlite3_reset(c);
    sqlite3_bind_int64(t, 1, sqlite3_last_insert_rowid(db));
    i = 2;
    for (uint64_t v : {u.delta.from_ns, u.delta.to_ns, u.delta.orig_pkts, u.delta.orig_bytes,
                       u.delta.resp_pkts, u.delta.resp_bytes})
      sqlite3_bind_int64(t, i++, static_cast<int64_t>(v));
    sqlite3_step(t);
    sqlite3_reset(t);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  auto rate = watch.rate(2 * batch.size());
  sqlite3_finalize(c);
  sqlite3_finalize(t);
  sqlite3_close(db);
  return rate;
}

// Runs SQL on the database (not through the store); returns the seconds it took.
double run_sql(const std::string &path, const std::string &statements) {
  sqlite3 *db = nullptr;
  sqlite3_open(path.c_str(), &db);
  auto start = Clock::now();
  char *error = nullptr;
  int rc = sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &error);
  double seconds = seconds_since(start);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  if (rc != SQLITE_OK)
    throw std::runtime_error(statements + ": " + message);
  return seconds;
}

// Opens the store on a new database, with --sql run on it.
std::unique_ptr<Store> open_store(const Args &args, const std::string &path) {
  StoreConfig config;
  config.path = path;
  auto store = std::make_unique<Store>(config);
  store->set_interfaces(bench_interfaces);
  if (!args.sql.empty())
    run_sql(path, args.sql);
  return store;
}

// Writes `batches` batches through the store; returns rows (connection
// upserts plus traffic rows) per second.
Rate store_rows_per_second(Store &store, const std::vector<std::vector<ConnUpdate>> &batches,
                           int64_t now) {
  size_t rows = 0;
  Stopwatch watch;
  for (const auto &batch : batches) {
    if (!store.write(batch, {}, static_cast<uint64_t>(now)))
      throw std::runtime_error("write failed: " + store.last_error());
    rows += 2 * batch.size();
  }
  return watch.rate(rows);
}

void print_rate(const char *what, Rate rate, Rate baseline) {
  fmt::print("  {:<46} {:>10.0f} rows/s  ({:.2f} x baseline), {:>10.0f} per CPU second\n", what,
             rate.wall, rate.wall / baseline.wall, rate.cpu);
}

void bench_writes(const Args &args) {
  std::mt19937_64 rng(1);
  std::vector<std::vector<ConnUpdate>> inserts(10), checkpoints(10);
  for (size_t b = 0; b < inserts.size(); b++)
    for (size_t i = 0; i < args.batch; i++) {
      inserts[b].push_back(connection(b * args.batch + i, 10 * args.batch, rng));
      checkpoints[b].push_back(checkpoint(inserts[b].back(), false));
    }
  auto path = args.dir + "/writes.db";
  auto baseline = baseline_rows_per_second(args.dir + "/baseline.db", inserts[0]);
  Rate new_rows, updated_rows;
  {
    auto store = open_store(args, path);
    new_rows = store_rows_per_second(*store, inserts, t_start + week);
    updated_rows = store_rows_per_second(*store, checkpoints, t_start + week);
  }
  fmt::print("writes, batches of {} updates (each a connection upsert and a traffic row, "
             "2 rows):\n",
             args.batch);
  print_rate("baseline, bare INSERTs into unindexed tables", baseline, baseline);
  print_rate("store, new open connections", new_rows, baseline);
  print_rate("store, checkpoints of these connections", updated_rows, baseline);
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  std::filesystem::remove(args.dir + "/baseline.db");
}

// Builds the large database through the store: every connection once, a
// quarter of them with a second interval. Returns the rows per second.
Rate build(const Args &args, const std::string &path) {
  auto store = open_store(args, path);
  std::mt19937_64 rng(2);
  size_t rows = 0;
  Stopwatch watch;
  for (size_t first = 0; first < args.connections; first += args.batch) {
    std::vector<ConnUpdate> batch;
    size_t last = std::min(args.connections, first + args.batch);
    for (size_t n = first; n < last; n++) {
      // Three in four end within their first interval; the fourth lasts two.
      auto first_interval = connection(n, args.connections, rng);
      batch.push_back(n % 4 ? closed(first_interval) : first_interval);
      if (n % 4 == 0)
        batch.push_back(checkpoint(first_interval, true));
    }
    if (!store->write(batch, {}, batch.back().delta.to_ns))
      throw std::runtime_error("write failed: " + store->last_error());
    rows += 2 * batch.size();
    if (first / args.batch % 10 == 9)
      fmt::print(stderr, "  {} connections, {:.0f} rows/s\n", last, watch.rate(rows).wall);
  }
  return watch.rate(rows);
}

// Wall time (what a user waits for on this machine, shared or not) and CPU
// time (what the report costs), medians of 5 runs, the open included.
std::string only_reports; // --only

bool wanted(const std::string &name) { return name.find(only_reports) != std::string::npos; }

void time_report(const std::string &path, const std::string &name, ReportOptions o) {
  if (!wanted(name))
    return;
  o.db = path;
  std::vector<double> wall, cpu;
  size_t bytes = 0, lines = 0;
  for (int i = 0; i < 5; i++) {
    auto start = Clock::now();
    double cpu_start = cpu_seconds();
    auto db = open_database_read_only(path);
    auto text = make_report(db, o);
    wall.push_back(seconds_since(start) * 1000);
    cpu.push_back((cpu_seconds() - cpu_start) * 1000);
    bytes = text.size();
    lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  fmt::print("  {:<52} wall {:>7.1f} ms  cpu {:>7.1f} ms  ({} lines)\n", name, wall[2], cpu[2],
             lines);
  (void)bytes;
}

// The options with a filter expression.
ReportOptions filtered(ReportOptions o, const std::string &expression) {
  auto parsed = Filter::parse(expression);
  if (auto *error = std::get_if<FilterError>(&parsed))
    throw std::runtime_error(expression + ": " + error->text());
  o.filter = std::get<Filter>(parsed);
  return o;
}

// Host and net filters: over the last hour (the window's traffic rows are
// read and joined), and over the whole database with --by conn (the hour
// indexes of the addresses).
// The --by conn host and net reports over the whole database.
void bench_history(const std::string &path, const ReportOptions &hour, const char *note) {
  auto all = hour;
  all.by = ReportBy::conn;
  all.since_ns = 0;
  auto host = "host " + internal_host(1234), external = "host " + external_host(4321);
  time_report(path, fmt::format("report --since 1000w --by conn --host X{}", note),
              filtered(all, host));
  time_report(path, fmt::format("report --since 1000w --by conn host (external){}", note),
              filtered(all, external));
  time_report(path, fmt::format("report --since 1000w --by conn net 10.0.19.128/29{}", note),
              filtered(all, "net 10.0.19.128/29"));
  time_report(path, fmt::format("report --since 1000w --by conn net 2001:db8::1230/124{}", note),
              filtered(all, "net 2001:db8::1230/124"));
}

// The pages in use (a dropped index leaves free pages in the file).
double used_bytes(const std::string &path) {
  auto db = open_database_read_only(path);
  sql::Statement pages(db, "SELECT (page_count - freelist_count) * page_size FROM "
                           "pragma_page_count, pragma_freelist_count, pragma_page_size");
  pages.step();
  return static_cast<double>(pages.int64(0));
}

bool has_address_indexes(const std::string &path) {
  auto db = open_database_read_only(path);
  sql::Statement count(db, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                           "('connections_src_hour', 'connections_dst_hour')");
  return count.step() && count.int64(0) == 2;
}

// Host and net filters: over the last hour (the window's traffic rows are
// read and joined), and over the whole database with --by conn, without and
// with the address indexes (report/filter.h, address_index_sql): a database
// built without them gets them for a while.
void bench_filters(const std::string &path, const ReportOptions &hour) {
  auto host = "host " + internal_host(1234);
  time_report(path, "report --since 1h host X", filtered(hour, host));
  time_report(path, "report --since 1h net 10.0.19.0/24", filtered(hour, "net 10.0.19.0/24"));
  auto conn = hour;
  conn.by = ReportBy::conn;
  // (The names of the first two are those tools/bench looks for.)
  time_report(path, "report --since 1h --by conn --host X", filtered(conn, host));
  time_report(path, "  ... --port 443", filtered(conn, host + " and port 443"));
  if (has_address_indexes(path)) {
    bench_history(path, hour, ", address indexes");
    return;
  }
  bench_history(path, hour, "");
  if (!wanted("report --since 1000w --by conn, address indexes"))
    return;
  fmt::print("  adding the address indexes took {:.1f} s\n", run_sql(path, address_index_sql));
  bench_history(path, hour, ", address indexes");
  run_sql(path, "DROP INDEX connections_src_hour; DROP INDEX connections_dst_hour");
}

// Time buckets over a day.
void bench_buckets(const std::string &path, const ReportOptions &hour) {
  auto day = hour;
  day.since_ns = hour.now_ns - 86400 * sec;
  day.by = ReportBy::total;
  day.every = std::chrono::minutes(1);
  time_report(path, "report --since 1d --every 1m", day);
  day.format = ReportFormat::json;
  time_report(path, "report --since 1d --every 1m --format json", day);
  day.format = ReportFormat::table;
  day.by = ReportBy::proto;
  time_report(path, "report --since 1d --every 1m --by proto", day);
  day.every.reset();
  time_report(path, "report --since 1d --by proto (one row per protocol)", day);
}

void bench_reports(const std::string &path) {
  int64_t now = t_start + week;
  ReportOptions hour;
  hour.since_ns = now - 3600 * sec;
  hour.now_ns = now;
  fmt::print("report latency (warm page cache, medians of 5 runs, open included):\n");
  time_report(path, "report --since 1h (--by flow, table)", hour);
  auto top = hour;
  top.top = 20;
  time_report(path, "report --since 1h --top 20", top);
  auto json = hour;
  json.format = ReportFormat::json;
  time_report(path, "report --since 1h --format json", json);
  for (auto [by, name] : {std::pair{ReportBy::host, "--by host"},
                          {ReportBy::port, "--by port"},
                          {ReportBy::proto, "--by proto"}}) {
    auto o = hour;
    o.by = by;
    time_report(path, fmt::format("report --since 1h {}", name), o);
  }
  bench_filters(path, hour);
  bench_buckets(path, hour);
}

Args parse(int argc, char **argv) {
  Args args;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--connections")
      args.connections = std::stoull(value());
    else if (arg == "--batch")
      args.batch = std::stoull(value());
    else if (arg == "--dir")
      args.dir = value();
    else if (arg == "--sql")
      args.sql += value();
    else if (arg == "--address-indexes")
      args.sql += address_index_sql;
    else if (arg == "--ordered-uids")
      args.ordered_uids = true;
    else if (arg == "--keep")
      args.keep = true;
    else if (arg == "--no-writes")
      args.writes = false;
    else if (arg == "--only")
      args.only = value();
    else
      throw std::runtime_error("usage: bench_store [--connections N] [--batch N] [--dir DIR] "
                               "[--sql STATEMENTS] [--address-indexes] [--ordered-uids] [--keep] "
                               "[--no-writes] [--only TEXT]");
  }
  if (args.dir.empty()) {
    char pattern[] = "/tmp/tcflows-bench-XXXXXX";
    if (!mkdtemp(pattern))
      throw std::runtime_error("mkdtemp failed");
    args.dir = pattern;
  }
  std::filesystem::create_directories(args.dir);
  return args;
}

} // namespace

int main(int argc, char **argv) try {
  auto args = parse(argc, argv);
  ordered_uids = args.ordered_uids;
  only_reports = args.only;
  fmt::print("SQLite {}, database in {}\n", sqlite3_libversion(), args.dir);
  if (args.writes)
    bench_writes(args);

  auto path = args.dir + "/large.db";
  if (!std::filesystem::exists(path)) {
    fmt::print("building a database of {} connections through the store ...\n", args.connections);
    auto rate = build(args, path);
    fmt::print("  {:.0f} rows/s over the whole build, {:.0f} per CPU second\n", rate.wall,
               rate.cpu);
  } else {
    fmt::print("reusing {}\n", path);
  }
  auto size = used_bytes(path);
  fmt::print("database size: {:.1f} MiB, {:.1f} MiB per million connections\n", size / (1 << 20),
             size / (1 << 20) / (static_cast<double>(args.connections) / 1e6));
  bench_reports(path);
  if (!args.keep)
    std::filesystem::remove_all(args.dir);
  return 0;
} catch (const std::exception &e) {
  fmt::print(stderr, "bench_store: {}\n", e.what());
  return 1;
}
