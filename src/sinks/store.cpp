#include "sinks/store.h"

#include "sinks/schema.h"
#include "track/community_id.h"
#include "track/flow.h"
#include "util/error.h"
#include "util/log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>

namespace tcflows {
namespace {

// Counter rows kept while writes fail. They are cumulative, so dropping the
// oldest loses resolution, not counts.
constexpr size_t max_snapshots = 10'000;

int latest_version() { return migrations().back().version; }
int latest_version(std::span<const Migration> list) { return list.back().version; }

int64_t as_sql(uint64_t value) {
  return static_cast<int64_t>(std::min<uint64_t>(value, std::numeric_limits<int64_t>::max()));
}

// What a failed SQLite call at open means for the user.
[[noreturn]] void fail_open(const sql::Error &error, const std::string &path) {
  switch (error.primary()) {
  case SQLITE_NOTADB:
    fail(exit_usage, "{} is not a tcflows database (not an SQLite file); use another --db", path);
  case SQLITE_CORRUPT:
    fail(exit_usage, "{} is corrupt ({}); use another --db", path, error.what());
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    fail(exit_failure, "{} is locked by another process; try again when it is done", path);
  default:
    fail(exit_failure, "{}", error.what());
  }
}

// The schema version of an open database, 0 for a new empty file. Throws
// Fatal when it is not a tcflows database or is newer than `latest`,
// sql::Error when it cannot be read.
int check_schema(sql::Database &db, int latest = latest_version()) {
  const std::string &path = db.path();
  int64_t app = db.pragma_int("application_id");
  int64_t version = db.pragma_int("user_version");
  sql::Statement count(db, "SELECT count(*) FROM sqlite_schema");
  count.step();
  int64_t objects = count.int64(0);
  if (app == 0 && version == 0 && objects == 0)
    return 0;
  if (app != application_id || version < 1)
    fail(exit_usage, "{} is not a tcflows database (it holds other data); use another --db", path);
  if (version > latest)
    fail(exit_usage,
         "{} comes from a newer tcflows (schema {}, this one knows up to {}); "
         "use a newer tcflows or another --db",
         path, version, latest);
  return static_cast<int>(version);
}

void make_directories(const std::filesystem::path &dir) {
  if (dir.empty() || std::filesystem::exists(dir))
    return;
  make_directories(dir.parent_path());
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    fail(exit_failure, "cannot create the directory {}: {}", dir.string(), errno_text(errno));
  ::chmod(dir.c_str(), 0750); // exactly, whatever the umask
}

// Creates a missing database file 0640 (and its directories 0750) so that
// SQLite, which gives its -wal and -shm files the database's mode, never
// makes a world-readable file. Returns whether the file existed.
bool create_file(const std::string &path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      fail(exit_usage, "{} is a directory; --db takes a file name", path);
    return true;
  }
  if (errno != ENOENT)
    fail(exit_failure, "cannot use {}: {}", path, errno_text(errno));
  make_directories(std::filesystem::path(path).parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0)
    fail(exit_failure, "cannot create {}: {}", path, errno_text(errno));
  ::fchmod(fd, 0640);
  ::close(fd);
  return false;
}

void set_busy_timeout(sql::Database &db, std::chrono::milliseconds timeout) {
  auto text = std::to_string(timeout.count());
  db.set_pragma("busy_timeout", text, text);
}

// Opens a database read-only and returns it with its schema version.
std::pair<sql::Database, int>
open_checked(const std::string &path, sql::Database::Mode mode = sql::Database::Mode::read_only) {
  try {
    auto db = sql::Database::open(path, mode);
    set_busy_timeout(db, std::chrono::milliseconds(2000));
    int version = check_schema(db);
    return {std::move(db), version};
  } catch (const sql::Error &e) {
    // A WAL database without its -wal and -shm files, in a directory we may
    // not write: SQLite cannot make its WAL index. With no -wal file nothing
    // writes it, and it can be read as an immutable file.
    bool cannot_index = e.primary() == SQLITE_READONLY || e.primary() == SQLITE_CANTOPEN;
    if (cannot_index && mode == sql::Database::Mode::read_only &&
        ::access((path + "-wal").c_str(), F_OK) != 0)
      return open_checked(path, sql::Database::Mode::immutable);
    fail_open(e, path);
  }
}

// Checks an existing file read-only first, so that a database we refuse is
// never opened for writing (closing a writer may checkpoint into it).
sql::Database open_for_writing(const StoreConfig &config) {
  if (create_file(config.path))
    open_checked(config.path);
  try {
    auto db = sql::Database::open(config.path, sql::Database::Mode::read_write);
    set_busy_timeout(db, config.busy_timeout);
    check_schema(db);
    db.set_pragma("journal_mode", "WAL", "wal");
    db.set_pragma("synchronous", "NORMAL", "1");
    // A batch touches index pages all over: a page cache too small spills
    // them to the WAL again and again within one transaction. 8 MiB holds
    // the pages of the largest batch a sweep makes (see bench_store).
    db.set_pragma("cache_size", "-4096", "-4096");
    // Truncates the WAL after checkpoints rather than keeping its largest size.
    db.set_pragma("journal_size_limit", "67108864", "67108864");
    db.persist_wal();
    migrate_database(db, migrations());
    return db;
  } catch (const sql::Error &e) {
    fail_open(e, config.path);
  }
}

// Parameters ?1 to ?36 are the record's fields, in this order, in both:
// ?21 to ?36 the TCP health fields (tcp_health_columns()), in their order;
// ?38 to ?40 its process (pid, comm, cgroup).
constexpr const char *insert_sql = R"(
INSERT INTO connections (uid, iface, proto, src_addr, src_port, dst_addr, dst_port, vlan,
  start_ns, end_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes, state, history,
  close_reason, rtt_ns, orig_guessed, community_id,
  orig_retx_pkts, orig_retx_bytes, orig_ooo_pkts, orig_zero_windows, orig_rtt_samples,
  orig_rtt_min_ns, orig_rtt_mean_ns, orig_rtt_max_ns,
  resp_retx_pkts, resp_retx_bytes, resp_ooo_pkts, resp_zero_windows, resp_rtt_samples,
  resp_rtt_min_ns, resp_rtt_mean_ns, resp_rtt_max_ns, pid, comm, cgroup)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
  ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36,
  ?38, ?39, ?40)
ON CONFLICT (uid) DO NOTHING)";

// The uid stays, so its index is not touched; it is checked, since a deleted
// row's id may be given to a new one.
constexpr const char *update_sql = R"(
UPDATE connections SET iface = ?2, proto = ?3, src_addr = ?4, src_port = ?5, dst_addr = ?6,
  dst_port = ?7, vlan = ?8, start_ns = ?9, end_ns = ?10, orig_pkts = ?11, orig_bytes = ?12,
  resp_pkts = ?13, resp_bytes = ?14, state = ?15, history = ?16, close_reason = ?17,
  rtt_ns = ?18, orig_guessed = ?19, community_id = ?20,
  orig_retx_pkts = ?21, orig_retx_bytes = ?22, orig_ooo_pkts = ?23, orig_zero_windows = ?24,
  orig_rtt_samples = ?25, orig_rtt_min_ns = ?26, orig_rtt_mean_ns = ?27, orig_rtt_max_ns = ?28,
  resp_retx_pkts = ?29, resp_retx_bytes = ?30, resp_ooo_pkts = ?31, resp_zero_windows = ?32,
  resp_rtt_samples = ?33, resp_rtt_min_ns = ?34, resp_rtt_mean_ns = ?35, resp_rtt_max_ns = ?36,
  pid = COALESCE(?38, pid), comm = COALESCE(?39, comm), cgroup = COALESCE(?40, cgroup)
WHERE id = ?37 AND uid = ?1)";
constexpr int update_id_param = 37;

constexpr const char *select_id_sql = "SELECT id FROM connections WHERE uid = ?1";

// Ids of the open connections written, so that a checkpoint updates its row
// by id. Only a cache: emptied when it grows past this.
constexpr size_t max_cached_ids = 4'000'000;

// A connection's delta for an interval end it already has (two updates of
// one connection at the same instant) adds up rather than failing the batch.
// Served by the partial index connections_open.
constexpr const char *open_sql = R"(
SELECT uid, orig_pkts, orig_bytes, resp_pkts, resp_bytes, end_ns
FROM connections WHERE close_reason IS NULL)";

constexpr const char *is_final_sql =
    "SELECT close_reason IS NOT NULL FROM connections WHERE uid = ?1";

constexpr const char *close_stale_sql = R"(
UPDATE connections SET close_reason = 'shutdown' WHERE uid = ?1 AND close_reason IS NULL)";

constexpr const char *traffic_sql = R"(
INSERT INTO traffic (conn_id, from_ns, to_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (to_ns, conn_id) DO UPDATE SET from_ns = min(from_ns, excluded.from_ns),
  orig_pkts = orig_pkts + excluded.orig_pkts, orig_bytes = orig_bytes + excluded.orig_bytes,
  resp_pkts = resp_pkts + excluded.resp_pkts, resp_bytes = resp_bytes + excluded.resp_bytes)";

constexpr const char *counter_sql = R"(
INSERT INTO counters (ts_ns, name, value) VALUES (?1, ?2, ?3)
ON CONFLICT (ts_ns, name) DO UPDATE SET value = excluded.value)";

constexpr const char *expire_traffic_sql = R"(
DELETE FROM traffic WHERE (to_ns, conn_id) IN
  (SELECT to_ns, conn_id FROM traffic WHERE to_ns < ?1 ORDER BY to_ns LIMIT ?2))";

constexpr const char *expire_connections_sql = R"(
DELETE FROM connections WHERE id IN
  (SELECT id FROM connections WHERE end_ns < ?1 ORDER BY end_ns LIMIT ?2))";

constexpr const char *expire_counters_sql = R"(
DELETE FROM counters WHERE (ts_ns, name) IN
  (SELECT ts_ns, name FROM counters WHERE ts_ns < ?1 ORDER BY ts_ns LIMIT ?2))";

bool carries_traffic(const TrafficDelta &d) {
  return d.orig_pkts || d.orig_bytes || d.resp_pkts || d.resp_bytes;
}

// Two deltas of one connection as one: the interval spanning both.
void merge(TrafficDelta &into, const TrafficDelta &next) {
  if (!carries_traffic(next))
    return;
  if (!carries_traffic(into)) {
    into = next;
    return;
  }
  into.from_ns = std::min(into.from_ns, next.from_ns);
  into.to_ns = std::max(into.to_ns, next.to_ns);
  into.orig_pkts += next.orig_pkts;
  into.orig_bytes += next.orig_bytes;
  into.resp_pkts += next.resp_pkts;
  into.resp_bytes += next.resp_bytes;
}

} // namespace

std::string status_text(const StoreStats &stats) {
  std::string text = "db";
  const char *separator = " ";
  for (const auto &counter : store_counters) {
    if (counter.status.empty())
      continue;
    text += separator + fmt::format(fmt::runtime(counter.status), stats.*counter.value);
    separator = "  ";
  }
  return text;
}

struct Store::Connection {
  explicit Connection(const StoreConfig &config)
      : db(open_for_writing(config)), insert(db, insert_sql), update(db, update_sql),
        select_id(db, select_id_sql), traffic(db, traffic_sql), counter(db, counter_sql),
        close_stale(db, close_stale_sql), expire_traffic(db, expire_traffic_sql),
        expire_connections(db, expire_connections_sql), expire_counters(db, expire_counters_sql) {
    struct stat st {};
    if (::stat(config.path.c_str(), &st) == 0)
      file = {st.st_dev, st.st_ino};
  }

  // SQLite goes on writing to a database file deleted or renamed under it,
  // and what it writes there is lost: throws when the path no longer names
  // the file opened.
  void check_file() const {
    struct stat st {};
    if (::stat(db.path().c_str(), &st) != 0 || std::pair{st.st_dev, st.st_ino} != file)
      throw std::runtime_error(db.path() + " was deleted or replaced; opening it afresh");
  }

  using IdCache = std::unordered_map<Uid, int64_t, UidHash>; // ids of open connections

  int64_t upsert_record(const ConnRecord &r, const InterfaceNames &names);
  void remember_id(const ConnRecord &r, IdCache::iterator cached, int64_t id);
  bool update_record(const ConnRecord &r, const InterfaceNames &names, int64_t id);
  std::optional<int64_t> find_id(const Uid &uid);
  void insert_traffic(int64_t conn_id, const TrafficDelta &d);
  void insert_counter(uint64_t ts_ns, std::string_view name, uint64_t value);
  size_t delete_batch(sql::Statement &statement, uint64_t cutoff_ns, size_t max_rows);

  sql::Database db;
  std::pair<dev_t, ino_t> file{};
  sql::Statement insert, update, select_id, traffic, counter, close_stale;
  sql::Statement expire_traffic, expire_connections, expire_counters;
  IdCache ids;
};

// The owner of the connection's socket (a checkpoint without one keeps what
// an earlier one wrote); the cgroup NULL when its path was not found.
void bind_process(sql::Statement &s, const ConnRecord &r) {
  if (!r.process)
    return;
  s.bind(38, int64_t{r.process->pid}).bind(39, r.process->comm());
  if (!r.process->cgroup.empty())
    s.bind(40, r.process->cgroup);
}

// The record's text is made here. What the record or a table of constants
// holds is bound without a copy: both outlive the statement's use, which a
// ResetGuard ends; the text made here is copied.
void bind_record(sql::Statement &s, const ConnRecord &r, const InterfaceNames &names) {
  s.bind_ref(1, r.uid.view()).bind(2, names.name_of(r.ifindex())).bind(3, proto_name(r.key));
  s.bind(4, addr_text(r.key, r.orig)).bind(5, int64_t{r.src_port});
  s.bind(6, addr_text(r.key, r.resp())).bind(7, int64_t{r.dst_port});
  s.bind(8, int64_t{r.vlan()}).bind(9, as_sql(r.start_ns)).bind(10, as_sql(r.end_ns));
  s.bind(11, as_sql(r.orig_pkts)).bind(12, as_sql(r.orig_bytes));
  s.bind(13, as_sql(r.resp_pkts)).bind(14, as_sql(r.resp_bytes));
  s.bind_ref(15, state_name(r.state)).bind_ref(16, r.history.view());
  if (r.final())
    s.bind_ref(17, close_reason_name(r.close_reason));
  if (r.rtt_ns)
    s.bind(18, as_sql(*r.rtt_ns));
  s.bind(19, int64_t{r.orig_guessed});
  if (r.community_id)
    s.bind(20, community_id_text(*r.community_id));
  int param = 21;
  for (const auto &value : tcp_health_values(r)) {
    if (value)
      s.bind(param, as_sql(*value));
    param++;
  }
  bind_process(s, r);
}

bool Store::Connection::update_record(const ConnRecord &r, const InterfaceNames &names,
                                      int64_t id) {
  sql::ResetGuard guard(update);
  bind_record(update, r, names);
  update.bind(update_id_param, id).run();
  return sqlite3_changes(db.get()) == 1;
}

std::optional<int64_t> Store::Connection::find_id(const Uid &uid) {
  sql::ResetGuard guard(select_id);
  select_id.bind_ref(1, uid.view());
  if (!select_id.step())
    return std::nullopt;
  return select_id.int64(0);
}

// The row of the record's uid, inserted or brought up to date. Returns its id.
int64_t Store::Connection::upsert_record(const ConnRecord &r, const InterfaceNames &names) {
  std::optional<int64_t> id;
  auto cached = ids.find(r.uid);
  if (cached != ids.end()) {
    if (update_record(r, names, cached->second)) {
      id = cached->second;
    } else {
      ids.erase(cached); // deleted meanwhile (retention)
      cached = ids.end();
    }
  }
  if (!id) {
    sql::ResetGuard guard(insert);
    bind_record(insert, r, names);
    insert.run();
    if (sqlite3_changes(db.get()) == 1)
      id = sqlite3_last_insert_rowid(db.get());
  }
  if (!id) { // written before, by an earlier run or before the cache emptied
    id = find_id(r.uid);
    if (!id || !update_record(r, names, *id))
      throw sql::Error(SQLITE_ERROR,
                       fmt::format("the row of connection {} vanished", r.uid.view()));
  }
  remember_id(r, cached, *id);
  return *id;
}

// The cache keeps open connections only; a closed one leaves it. (`cached`
// is the record's entry, found once, or end().)
void Store::Connection::remember_id(const ConnRecord &r, IdCache::iterator cached, int64_t id) {
  if (cached != ids.end()) {
    if (r.final())
      ids.erase(cached);
  } else if (!r.final()) {
    if (ids.size() >= max_cached_ids)
      ids.clear();
    ids.emplace(r.uid, id);
  }
}

void Store::Connection::insert_traffic(int64_t conn_id, const TrafficDelta &d) {
  sql::ResetGuard guard(traffic);
  traffic.bind(1, conn_id).bind(2, as_sql(d.from_ns)).bind(3, as_sql(d.to_ns));
  traffic.bind(4, as_sql(d.orig_pkts)).bind(5, as_sql(d.orig_bytes));
  traffic.bind(6, as_sql(d.resp_pkts)).bind(7, as_sql(d.resp_bytes));
  traffic.run();
}

void Store::Connection::insert_counter(uint64_t ts_ns, std::string_view name, uint64_t value) {
  sql::ResetGuard guard(counter);
  counter.bind(1, as_sql(ts_ns)).bind(2, name).bind(3, as_sql(value));
  counter.run();
}

size_t Store::Connection::delete_batch(sql::Statement &statement, uint64_t cutoff_ns,
                                       size_t max_rows) {
  sql::ResetGuard guard(statement);
  statement.bind(1, as_sql(cutoff_ns)).bind(2, as_sql(max_rows));
  statement.run();
  return static_cast<size_t>(sqlite3_changes(db.get()));
}

Store::Store(StoreConfig config) : config_(std::move(config)) { connection(); }

Store::~Store() = default;

Store::Connection &Store::connection() {
  if (!connection_)
    connection_ = std::make_unique<Connection>(config_);
  return *connection_;
}

void Store::commit(const Chunks &chunks) {
  auto &c = connection();
  c.check_file();
  static const InterfaceNames no_names;
  const InterfaceNames &names = interfaces_ ? *interfaces_ : no_names;
  sql::Transaction transaction(c.db);
  for (const auto &uid : stale_) {
    sql::ResetGuard guard(c.close_stale);
    c.close_stale.bind_ref(1, uid.view()).run();
  }
  for (const auto &chunk : chunks) {
    for (const auto &update : chunk) {
      int64_t id = c.upsert_record(update.record, names);
      if (carries_traffic(update.delta))
        c.insert_traffic(id, update.delta);
    }
  }
  for (const auto &snapshot : snapshots_) {
    for (const auto &counter : kernel_counters)
      c.insert_counter(snapshot.ts_ns, counter.name, snapshot.counters[counter.id]);
    for (const auto &counter : store_counters)
      c.insert_counter(snapshot.ts_ns, counter.name, snapshot.stats.*counter.value);
  }
  transaction.commit();
  c.check_file(); // deleted meanwhile: the batch stays queued for the new file
  stale_.clear();
}

void Store::queue(std::span<const ConnUpdate> updates) {
  for (const auto &update : updates) {
    auto it = pending_at_.find(update.record.uid);
    if (it != pending_at_.end()) {
      auto &queued = pending_[it->second];
      queued.record = update.record;
      merge(queued.delta, update.delta);
    } else if (pending_.size() < config_.max_queued) {
      pending_at_.emplace(update.record.uid, pending_.size());
      pending_.push_back(update);
    } else {
      stats_.dropped++;
    }
  }
  stats_.queued = pending_.size();
}

void Store::failed(const std::string &error) {
  stats_.write_errors++;
  if (last_error_.empty())
    log::warn("cannot write the database: {}; keeping up to {} connections in memory and "
              "retrying every interval",
              error, config_.max_queued);
  last_error_ = error;
  connection_.reset(); // the next attempt opens the file afresh
}

bool Store::write(std::span<const StoreBatch> batches) {
  Chunks given;
  for (const auto &batch : batches) {
    if (batch.interfaces)
      interfaces_ = batch.interfaces;
    if (batch.counters)
      snapshots_.push_back({batch.now_ns, *batch.counters, stats_});
    if (snapshots_.size() > max_snapshots)
      snapshots_.pop_front();
    given.insert(given.end(), batch.chunks.begin(), batch.chunks.end());
  }
  bool direct = pending_.empty();
  if (!direct)
    for (auto chunk : given)
      queue(chunk);
  try {
    commit(direct ? given : Chunks{pending_});
  } catch (const std::exception &e) {
    if (direct)
      for (auto chunk : given)
        queue(chunk);
    failed(e.what());
    return false;
  }
  for (auto chunk : direct ? given : Chunks{pending_})
    stats_.written += chunk.size();
  pending_.clear();
  pending_at_.clear();
  snapshots_.clear();
  stats_.queued = 0;
  if (!last_error_.empty()) {
    log::info("the database {} is written again", config_.path);
    last_error_.clear();
  }
  return true;
}

bool Store::write(std::vector<ConnUpdate> updates, const Counters &counters, uint64_t now_ns) {
  StoreBatch batch;
  batch.chunks.push_back(std::move(updates));
  batch.counters = counters;
  batch.now_ns = now_ns;
  return write(std::span(&batch, 1));
}

std::vector<StoredOpenConn> Store::open_connections() {
  std::vector<StoredOpenConn> open;
  sql::Statement select(connection().db, open_sql);
  while (select.step()) {
    auto uid = Uid::from(select.text(0));
    if (!uid) // not a uid tcflows makes: no agent will resume it
      continue;
    open.push_back({*uid, uint64_t(select.int64(1)), uint64_t(select.int64(2)),
                    uint64_t(select.int64(3)), uint64_t(select.int64(4)),
                    uint64_t(select.int64(5))});
  }
  return open;
}

bool Store::is_final(const Uid &uid) {
  try {
    sql::Statement select(connection().db, is_final_sql);
    select.bind_ref(1, uid.view());
    return select.step() && select.int64(0) != 0;
  } catch (const sql::Error &) {
    return false;
  }
}

void Store::close_stale(std::vector<Uid> uids) {
  stale_.insert(stale_.end(), std::make_move_iterator(uids.begin()),
                std::make_move_iterator(uids.end()));
}

size_t Store::expire(uint64_t now_ns, size_t max_rows) {
  if (!config_.retention)
    return 0;
  auto retention = static_cast<uint64_t>(config_.retention->count());
  if (now_ns <= retention)
    return 0;
  uint64_t cutoff = now_ns - retention;
  size_t deleted = 0;
  try {
    auto &c = connection();
    sql::Transaction transaction(c.db);
    for (auto *statement : {&c.expire_traffic, &c.expire_connections, &c.expire_counters})
      if (deleted < max_rows)
        deleted += c.delete_batch(*statement, cutoff, max_rows - deleted);
    transaction.commit();
  } catch (const std::exception &e) {
    log::debug("retention: {}", e.what());
    connection_.reset();
    return 0;
  }
  stats_.expired += deleted;
  return deleted;
}

int migrate_database(sql::Database &db, std::span<const Migration> list) {
  int latest = latest_version(list);
  sql::Transaction transaction(db);
  int version = check_schema(db, latest); // again, under the write lock
  for (const auto &migration : list)
    if (migration.version > version)
      db.exec(std::string(migration.sql));
  if (version < latest) {
    db.set_pragma("application_id", std::to_string(application_id), std::to_string(application_id));
    db.set_pragma("user_version", std::to_string(latest), std::to_string(latest));
  }
  transaction.commit();
  if (version > 0 && version < latest)
    log::info("{}: schema {} migrated to {}", db.path(), version, latest);
  return version;
}

sql::Database open_database_read_only(const std::string &path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail(exit_usage, "no database at {}: {}", path, errno_text(errno));
  if (!S_ISREG(st.st_mode))
    fail(exit_usage, "{} is not a database file", path);
  if (::access(path.c_str(), R_OK) != 0)
    fail(exit_usage, "cannot read {}: {}", path, errno_text(errno));
  auto [db, version] = open_checked(path);
  if (version == 0)
    fail(exit_usage, "{} is empty, not a tcflows database", path);
  if (version < latest_version())
    fail(exit_usage,
         "{} has schema {}, this tcflows reads schema {}: record to it once to migrate it", path,
         version, latest_version());
  return std::move(db);
}

} // namespace tcflows
