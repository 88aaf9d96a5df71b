// The SQLite store: connection records, their traffic per interval and the
// counters, written once per interval in one transaction.
#pragma once

#include "kernel/counters.h"
#include "sinks/interfaces.h"
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
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tcflows {

struct StoreConfig {
  std::string path = "tcflows.db";
  std::optional<std::chrono::nanoseconds> retention; // none: keep everything
  size_t max_queued = 100'000;                       // connections held in memory while writes fail
  std::chrono::milliseconds busy_timeout{200};
};

struct StoreStats {
  uint64_t queued = 0; // connections waiting for a successful write
  uint64_t written = 0;
  uint64_t write_errors = 0;
  uint64_t dropped = 0;
  uint64_t expired = 0;
};

// What each of the store's numbers is called and means: the rows store_* of
// the counters table and the JSON snapshot, the Prometheus families, and the
// status line's "db written ..." part.
struct StoreCounter {
  uint64_t StoreStats::*value;
  std::string_view name;   // counters table and JSON snapshot
  std::string_view metric; // Prometheus family
  std::string_view type;   // "counter" or "gauge"
  std::string_view help;
  std::string_view status; // in the status line after "db", a format with one {}; "" when not
};

inline constexpr std::array<StoreCounter, 5> store_counters{{
    {&StoreStats::written, "store_written", "tcflows_store_written_total", "counter",
     "Connection updates committed to SQLite.", "written {}"},
    {&StoreStats::queued, "store_queued", "tcflows_store_queue_depth", "gauge",
     "Records waiting to be written to SQLite.", "queued {}"},
    {&StoreStats::write_errors, "store_write_errors", "tcflows_store_write_errors_total", "counter",
     "SQLite writes that failed (their records stay queued and are retried).", "write errors {}"},
    {&StoreStats::dropped, "store_dropped", "tcflows_store_dropped_total", "counter",
     "Connection updates lost because the write queue was full.", "dropped {}"},
    {&StoreStats::expired, "store_expired", "tcflows_store_expired_total", "counter",
     "Rows deleted by the retention (--retention).", ""},
}};

// "db written 1234  queued 0  write errors 0  dropped 0", for the status line.
std::string status_text(const StoreStats &stats);

// One interval for the store: its updates in the chunks they were handed over
// in, the counters read at its end and the names of the interfaces its
// records name.
struct StoreBatch {
  std::vector<std::vector<ConnUpdate>> chunks;
  std::optional<Counters> counters; // none: no counters row for this interval
  uint64_t now_ns = 0;              // the interval's end, Unix epoch ns
  uint64_t sequence = 0;            // the interval's number (StoreWriter)
  InterfacesSnapshot interfaces;
};

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

  // Intervals: their updates, a counters row for each (the counters as read
  // at its end and the store's own) and everything still queued, all in one
  // transaction. When it fails (disk full, read-only, locked, file deleted),
  // all of it stays queued, merged per connection, and the next call retries
  // on a fresh connection. Returns true when the write committed.
  bool write(std::span<const StoreBatch> batches);
  // One interval of `updates` with the interface names of set_interfaces().
  bool write(std::vector<ConnUpdate> updates, const Counters &counters, uint64_t now_ns);

  // Interface names for the records written from now on (the batches of
  // write() bring their own).
  void set_interfaces(InterfacesSnapshot interfaces) { interfaces_ = std::move(interfaces); }

  // Deletes at most max_rows rows older than now_ns minus the retention, in
  // one short transaction; nothing without a retention. Returns the number
  // deleted: when it equals max_rows, more are due.
  size_t expire(uint64_t now_ns, size_t max_rows = 5000);

  // The connections the database holds as open (close_reason NULL).
  std::vector<StoredOpenConn> open_connections();
  // Whether the connection's final record is written (false also when the
  // database cannot say).
  bool is_final(const Uid &uid);

  // Closes, with the next write, connections left open by an agent that
  // stopped without closing them (they ended while no agent ran).
  void close_stale(std::vector<Uid> uids);

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

  using Chunks = std::vector<std::span<const ConnUpdate>>;

  Connection &connection();
  void commit(const Chunks &chunks);
  void queue(std::span<const ConnUpdate> updates);
  void failed(const std::string &error);

  StoreConfig config_;
  std::unique_ptr<Connection> connection_;
  InterfacesSnapshot interfaces_;
  std::vector<ConnUpdate> pending_;                     // merged per uid
  std::unordered_map<Uid, size_t, UidHash> pending_at_; // uid -> index in pending_
  std::deque<Snapshot> snapshots_;                      // counters rows not yet written
  std::vector<Uid> stale_;                              // uids to close with the next write
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
