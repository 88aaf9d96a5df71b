// The SQLite store: connection records, their traffic per interval and the
// counters, written once per interval in one transaction.
#pragma once

#include "kernel/maps.h"
#include "sinks/schema.h"
#include "sinks/sqlite.h"
#include "track/conn.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace tcflows {

struct StoreConfig {
  std::string path = "tcflows.db";
  std::optional<std::chrono::nanoseconds> retention; // none: keep everything
  size_t max_queued = 100'000;                       // connections held in memory while writes fail
  std::chrono::milliseconds busy_timeout{200};
};

// For the status line and the counters table (store_*).
struct StoreStats {
  uint64_t queued = 0;       // connections waiting for a successful write
  uint64_t written = 0;      // connection updates committed
  uint64_t write_errors = 0; // failed write attempts
  uint64_t dropped = 0;      // connection updates lost: the queue was full
  uint64_t expired = 0;      // rows deleted by retention
};

// "db written 1234  queued 0  write errors 0  dropped 0", for the status line.
std::string status_text(const StoreStats &stats);

class Store {
public:
  // Opens the database, creating it (file 0640, missing directories 0750) or
  // migrating an older schema in one transaction. Throws Fatal, exit 2 when
  // the file is not a tcflows database, is corrupt or comes from a newer
  // tcflows (the file is left as it was), exit 1 when it cannot be opened or
  // written.
  explicit Store(StoreConfig config);
  ~Store();
  Store(const Store &) = delete;
  Store &operator=(const Store &) = delete;

  // One interval: the updates, the counters as read at now_ns and a row of the
  // store's own. Everything still queued is written with them in one
  // transaction. When it fails (disk full, read-only, locked, file deleted),
  // all of it stays queued, merged per connection, and the next call retries
  // on a fresh connection. Returns true when the write committed.
  bool write(const std::vector<ConnUpdate> &updates, const Counters &counters, uint64_t now_ns);

  // Deletes at most max_rows rows older than now_ns minus the retention, in
  // one short transaction; nothing without a retention. Returns the number
  // deleted: when it equals max_rows, more are due.
  size_t expire(uint64_t now_ns, size_t max_rows = 5000);

  // The connections the database holds as open (close_reason NULL).
  std::vector<StoredOpenConn> open_connections();

  // Closes, with the next write, connections left open by an agent that
  // stopped without closing them (they ended while no agent ran).
  void close_stale(std::vector<std::string> uids);

  const StoreStats &stats() const { return stats_; }
  // Why the last write failed; empty once a write succeeds again.
  const std::string &last_error() const { return last_error_; }
  const std::string &path() const { return config_.path; }

private:
  struct Connection;
  struct Snapshot {
    uint64_t ts_ns;
    Counters counters;
    StoreStats stats;
  };

  Connection &connection();
  void commit(const std::vector<ConnUpdate> &updates);
  void queue(const std::vector<ConnUpdate> &updates);
  void failed(const std::string &error);

  StoreConfig config_;
  std::unique_ptr<Connection> connection_;
  std::vector<ConnUpdate> pending_;                    // merged per uid
  std::unordered_map<std::string, size_t> pending_at_; // uid -> index in pending_
  std::deque<Snapshot> snapshots_;                     // counters rows not yet written
  std::vector<std::string> stale_;                     // uids to close with the next write
  StoreStats stats_;
  std::string last_error_;
};

// Brings an open database to the last version of `list` (the store passes
// migrations(); tests pass their own) in one transaction: on any failure
// nothing changes. Returns the version it had, 0 for a new file.
int migrate_database(sql::Database &db, std::span<const Migration> list);

// Opens an existing tcflows database read-only (for `report`), with the
// caller's rights. Throws Fatal, exit 2, when it is missing, not a tcflows
// database, corrupt or from another schema version.
sql::Database open_database_read_only(const std::string &path);

} // namespace tcflows
