// The SQLite store on a thread of its own, so that a slow disk or a locked
// database never stalls the capture loop. The loop hands an interval over in
// chunks and ends it; the writer writes every ended interval that has piled
// up in one transaction, in order, applies the retention after each write,
// and says up to which interval everything is committed.
#pragma once

#include "sinks/store.h"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tcflows {

class StoreWriter {
public:
  // Called on the writer's thread after each commit, with committed().
  using OnCommit = std::function<void(uint64_t sequence)>;

  // Opens the store here, in the caller's thread, so that a database that
  // cannot be used is a fatal error at start (Fatal from Store).
  explicit StoreWriter(StoreConfig config, OnCommit on_commit = {});
  // Writes what was ended and handed over, then stops the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter &) = delete;
  StoreWriter &operator=(const StoreWriter &) = delete;

  // The loop's side: any number of chunks, then end(). Nothing of an interval
  // is written before its end, and all of it in one transaction.
  void add(std::vector<ConnUpdate> chunk);
  // Ends the interval: `counters` as read at its end (null: no counters row
  // for it), `now_ns` its end (Unix epoch ns). Returns its sequence number:
  // 1, 2, 3, ...
  uint64_t end(const Counters *counters, uint64_t now_ns, InterfacesSnapshot interfaces);

  // The highest sequence number whose updates are committed to the database
  // (with every earlier one's); 0 before the first commit. While writes fail
  // it stays behind: the updates wait in memory, and those the full queue
  // drops (StoreStats::dropped) are never committed.
  uint64_t committed() const;

  // The connections the database held as open when it was opened (an
  // earlier agent's); handed out once.
  std::vector<StoredOpenConn> take_open_connections();
  // Closes, with the next write, connections left open by an earlier agent.
  void close_stale(std::vector<Uid> uids);
  // Whether the database holds the connection's final record (an earlier
  // agent's). Waits for a write in progress.
  bool is_final(const Uid &uid);

  // As of the last write, with `queued` counting also the updates handed
  // over and not yet taken by the writer. On the loop's thread, like add().
  StoreStats stats() const;
  std::string last_error() const;

private:
  void run();

  Store store_;
  std::mutex store_mutex_; // the store's connection: the writer's, and is_final()
  OnCommit on_commit_;
  std::vector<StoredOpenConn> open_at_start_;
  StoreBatch building_; // the loop's: the interval not yet ended
  uint64_t sequence_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<StoreBatch> ended_; // ended, not yet taken by the writer
  size_t ended_updates_ = 0;
  std::vector<Uid> stale_;
  bool stop_ = false;
  uint64_t committed_ = 0;
  StoreStats stats_;
  std::string last_error_;
  std::thread thread_;
};

} // namespace tcflows
